//! Label and annotation keys: ownership, pool, and the core's memory between ticks.
//!
//! The core keeps nothing in process memory. What it must remember (when a node became idle,
//! that a teardown was started, that a server was seen without its node) is written to the
//! machines themselves through actions and read back from the next snapshot, so a restart, a
//! second replica or a crash between two steps loses nothing. Server labels hold Unix seconds
//! (Hetzner label values allow no `:`); node annotations hold RFC 3339 times.

use std::collections::BTreeMap;

use jiff::Timestamp;

/// The prefix of every key this project writes.
pub const PREFIX: &str = "gitea-ci-autoscaler";

/// Server and node label: the installation that owns the machine. Nothing without it is touched.
pub const OWNER: &str = "gitea-ci-autoscaler/owner";
/// Server and node label: the pool the machine belongs to.
pub const POOL: &str = "gitea-ci-autoscaler/pool";
/// Server label: the cluster its node joins (the `kube-system` namespace's UID). Two
/// installations that share a Hetzner project and a name still differ here.
pub const CLUSTER: &str = "gitea-ci-autoscaler/cluster";
/// Server label: the id of the bootstrap token minted for this server's join (`[a-z0-9]{6}`, the
/// public half of a Kubernetes bootstrap token). Removed once the token is revoked.
pub const JOIN_TOKEN: &str = "gitea-ci-autoscaler/join-token";
/// Server and image label: the content hash of a bake (`image bake`). On a server it marks the
/// bake's temporary machine, which is never a runner node: the core leaves it alone for
/// [`BAKE_SERVER_LIMIT`](crate::BAKE_SERVER_LIMIT), then deletes it as left behind.
pub const BAKE: &str = "gitea-ci-autoscaler/bake";
/// Image label: the K3s release baked into it, `+` written `_` (`v1.33.4_k3s1`).
pub const K3S_VERSION: &str = "gitea-ci-autoscaler/k3s-version";
/// Server label: when its node was first seen (Unix seconds).
pub const JOINED: &str = "gitea-ci-autoscaler/joined";
/// Server label: a teardown was started at this instant (Unix seconds).
pub const TEARDOWN: &str = "gitea-ci-autoscaler/teardown";
/// Server label: first seen without its node at this instant (Unix seconds).
pub const NODE_MISSING: &str = "gitea-ci-autoscaler/node-missing";
/// Node annotation: idle since (RFC 3339).
pub const IDLE_SINCE: &str = "gitea-ci-autoscaler/idle-since";
/// Node annotation: every evictable pod was evicted at this instant (RFC 3339); written by the
/// shell's drain when it completes.
pub const DRAINED: &str = "gitea-ci-autoscaler/drained";
/// Node annotation: first seen without its server at this instant (RFC 3339).
pub const SERVER_MISSING: &str = "gitea-ci-autoscaler/server-missing";
/// Node annotation: which Gitea runner id each runner pod on the node registered as, and which
/// runners of the same name were seen beside it (foreign ones), `pod=id;foreign;…,pod=id`
/// sorted by pod. Gitea does not keep runner names unique; with this, a foreign runner that
/// shares a pod's name is told apart from the pod's own registration, also after ours is gone.
pub const RUNNERS: &str = "gitea-ci-autoscaler/runners";

/// The most foreign namesakes remembered per pod; more only make the pod's binding unclear.
pub const MAX_REMEMBERED_NAMESAKES: usize = 32;

/// One pod's recorded binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerBinding<'a> {
    /// The runner pod.
    pub pod: &'a str,
    /// The Gitea runner it registered as.
    pub ours: u64,
    /// Runners of the same name seen beside it, sorted.
    pub foreign: Vec<u64>,
}

/// The `runners` annotation's value for `bindings`, sorted by pod.
pub fn runners_value(bindings: &mut [RunnerBinding<'_>]) -> String {
    bindings.sort_unstable_by(|a, b| a.pod.cmp(b.pod));
    let mut out = String::new();
    for (i, b) in bindings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(b.pod);
        out.push('=');
        out.push_str(&b.ours.to_string());
        for f in &b.foreign {
            out.push(';');
            out.push_str(&f.to_string());
        }
    }
    out
}

/// A pod's binding as read from the annotation, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded<'v, 'p> {
    pub(crate) pod: &'p str,
    pub(crate) ours: u64,
    /// `;`-separated foreign ids, all readable.
    foreign: &'v str,
}

impl<'p> Recorded<'_, 'p> {
    pub(crate) fn is_foreign(&self, id: u64) -> bool {
        self.ids().any(|f| f == id)
    }

    pub(crate) fn foreign_count(&self) -> usize {
        self.ids().count()
    }

    fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.foreign
            .split(';')
            .filter(|f| !f.is_empty())
            .filter_map(|f| f.parse().ok())
    }

    pub(crate) fn to_binding(self) -> RunnerBinding<'p> {
        let mut foreign: Vec<u64> = self.ids().collect();
        foreign.sort_unstable();
        RunnerBinding {
            pod: self.pod,
            ours: self.ours,
            foreign,
        }
    }
}

/// The binding recorded for `pod` in a `runners` annotation; `None` when it holds none or it
/// cannot be read (then the binding is learned again). Read once per runner pod per decision,
/// so it scans bytes instead of splitting.
pub(crate) fn recorded_runner<'v, 'p>(value: &'v str, pod: &'p str) -> Option<Recorded<'v, 'p>> {
    let mut rest = value;
    loop {
        let end = rest.bytes().position(|b| b == b',').unwrap_or(rest.len());
        let entry = &rest[..end];
        if let Some(ids) = entry.strip_prefix(pod).and_then(|e| e.strip_prefix('=')) {
            let cut = ids.bytes().position(|b| b == b';');
            let (ours, foreign) = cut.map_or((ids, ""), |c| (&ids[..c], &ids[c + 1..]));
            let ours = ours.parse().ok()?;
            let readable = foreign.bytes().all(|b| b.is_ascii_digit() || b == b';');
            return readable.then_some(Recorded { pod, ours, foreign });
        }
        if end == rest.len() {
            return None;
        }
        rest = &rest[end + 1..];
    }
}

/// How long a server's join token outlives its provisioning timeout: room for clock skew between
/// this daemon and the API server. After the timeout the server is deleted anyway.
pub const JOIN_TOKEN_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// Whether `id` is a bootstrap token id as Kubernetes defines it (`[a-z0-9]{6}`). A label that is
/// not one (edited by hand or by another tool) names no token of ours and is never acted on.
pub fn is_token_id(id: &str) -> bool {
    id.len() == 6
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// How a stored instant reads back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Not written.
    #[default]
    Absent,
    /// Written and readable.
    At(Timestamp),
    /// Written but unreadable (edited by hand, or by another tool).
    Garbled,
}

impl Stored {
    pub(crate) fn is_present(self) -> bool {
        !matches!(self, Self::Absent)
    }

    pub(crate) fn at(self) -> Option<Timestamp> {
        match self {
            Self::At(t) => Some(t),
            Self::Absent | Self::Garbled => None,
        }
    }
}

/// Who owns a machine and which pool it is in: needed only while the inventory is built.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Identity<'a> {
    pub(crate) owner: Option<&'a str>,
    pub(crate) pool: Option<&'a str>,
    /// Servers only.
    pub(crate) cluster: Option<&'a str>,
}

/// What the core wrote on a server's labels.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerMarks {
    pub(crate) joined: Stored,
    pub(crate) teardown: Stored,
    pub(crate) node_missing: Stored,
}

/// What the core wrote on a node's annotations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeMarks<'a> {
    pub(crate) idle_since: Stored,
    pub(crate) drained: Stored,
    pub(crate) server_missing: Stored,
    /// The `runners` annotation, read when a pod's binding is needed.
    pub(crate) runners: Option<&'a str>,
}

/// Reads a server's labels in one pass.
pub(crate) fn server_marks(labels: &BTreeMap<String, String>) -> (Identity<'_>, ServerMarks) {
    let (mut id, mut m) = (Identity::default(), ServerMarks::default());
    for (k, v) in labels {
        match k.as_str() {
            OWNER => id.owner = Some(v),
            POOL => id.pool = Some(v),
            CLUSTER => id.cluster = Some(v),
            JOINED => m.joined = unix(v),
            TEARDOWN => m.teardown = unix(v),
            NODE_MISSING => m.node_missing = unix(v),
            _ => {}
        }
    }
    (id, m)
}

/// Reads a node's labels and annotations in one pass each.
pub(crate) fn node_marks<'a>(
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
) -> (Identity<'a>, NodeMarks<'a>) {
    let (mut id, mut m) = (Identity::default(), NodeMarks::default());
    for (k, v) in labels {
        match k.as_str() {
            OWNER => id.owner = Some(v),
            POOL => id.pool = Some(v),
            _ => {}
        }
    }
    for (k, v) in annotations {
        match k.as_str() {
            IDLE_SINCE => m.idle_since = rfc3339(v),
            DRAINED => m.drained = rfc3339(v),
            SERVER_MISSING => m.server_missing = rfc3339(v),
            RUNNERS => m.runners = Some(v),
            _ => {}
        }
    }
    (id, m)
}

fn unix(v: &str) -> Stored {
    v.parse::<i64>()
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or(Stored::Garbled, Stored::At)
}

fn rfc3339(v: &str) -> Stored {
    v.parse::<Timestamp>().map_or(Stored::Garbled, Stored::At)
}

/// The label value for an instant: Unix seconds.
pub fn unix_value(at: Timestamp) -> String {
    at.as_second().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn stored_instants_read_back() {
        let at: Timestamp = "2026-11-25T10:00:00Z".parse().expect("ts");
        let labels = BTreeMap::from([(TEARDOWN.to_owned(), unix_value(at))]);
        assert_eq!(server_marks(&labels).1.teardown, Stored::At(at));
        assert_eq!(server_marks(&labels).1.joined, Stored::Absent);
        let garbled = BTreeMap::from([(IDLE_SINCE.to_owned(), "yesterday".to_owned())]);
        assert_eq!(
            node_marks(&BTreeMap::new(), &garbled).1.idle_since,
            Stored::Garbled
        );
    }

    #[test]
    fn marks_are_read_in_one_pass_and_foreign_keys_ignored() {
        let at: Timestamp = "2026-11-25T10:00:00Z".parse().expect("ts");
        let labels = BTreeMap::from([
            (OWNER.to_owned(), "ci".to_owned()),
            (POOL.to_owned(), "linux".to_owned()),
            (TEARDOWN.to_owned(), unix_value(at)),
            ("gitea-ci-autoscaler-other/owner".to_owned(), "x".to_owned()),
            ("team".to_owned(), "infra".to_owned()),
        ]);
        let (id, m) = server_marks(&labels);
        assert_eq!((id.owner, id.pool), (Some("ci"), Some("linux")));
        assert_eq!((m.teardown, m.joined), (Stored::At(at), Stored::Absent));
        let annotations = BTreeMap::from([(DRAINED.to_owned(), at.to_string())]);
        let (_, n) = node_marks(&labels, &annotations);
        assert_eq!((n.drained, n.idle_since), (Stored::At(at), Stored::Absent));
    }

    #[test]
    fn recorded_runners_read_back_and_garbage_reads_as_none() {
        let b = |pod, ours, foreign: &[u64]| RunnerBinding {
            pod,
            ours,
            foreign: foreign.to_vec(),
        };
        let v = runners_value(&mut [b("pod-b", 7, &[]), b("pod-a", 12, &[3, 40])]);
        assert_eq!(v, "pod-a=12;3;40,pod-b=7");
        let a = recorded_runner(&v, "pod-a").unwrap();
        assert_eq!((a.ours, a.foreign_count()), (12, 2));
        assert!(a.is_foreign(40) && !a.is_foreign(12));
        assert_eq!(a.to_binding(), b("pod-a", 12, &[3, 40]));
        assert_eq!(
            recorded_runner(&v, "pod-b").unwrap().to_binding(),
            b("pod-b", 7, &[])
        );
        assert_eq!(recorded_runner(&v, "pod"), None);
        assert_eq!(recorded_runner("pod-a=x,,=", "pod-a"), None);
        assert_eq!(recorded_runner("pod-a=1;x", "pod-a"), None);
        assert_eq!(runners_value(&mut []), "");
    }

    #[test]
    fn token_ids_follow_kubernetes_grammar() {
        assert!(is_token_id("a1b2c3"));
        for bad in ["", "a1b2c", "a1b2c3d", "A1B2C3", "a1b2c.", "../../"] {
            assert!(!is_token_id(bad), "{bad}");
        }
    }

    #[test]
    fn keys_are_valid_kubernetes_and_hetzner_label_keys() {
        for key in [
            OWNER,
            POOL,
            CLUSTER,
            JOIN_TOKEN,
            JOINED,
            TEARDOWN,
            NODE_MISSING,
            IDLE_SINCE,
            DRAINED,
            SERVER_MISSING,
            RUNNERS,
        ] {
            let (prefix, name) = key.split_once('/').expect("prefixed");
            assert_eq!(prefix, PREFIX);
            assert!(
                name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            );
        }
    }
}
