//! Label and annotation keys: ownership, pool, and the core's memory between ticks.
//!
//! The core keeps nothing in process memory. What it must remember (when a node became idle,
//! that a teardown was started, that a server was seen without its node) is written to the
//! machines themselves through actions and read back from the next snapshot, so a restart, a
//! second replica or a crash between two steps loses nothing. Server labels hold Unix seconds
//! (Hetzner label values allow no `:`); node annotations hold RFC 3339 times.

use jiff::Timestamp;

/// The prefix of every key this project writes.
pub const PREFIX: &str = "gitea-ci-autoscaler";

/// Server and node label: the installation that owns the machine. Nothing without it is touched.
pub const OWNER: &str = "gitea-ci-autoscaler/owner";
/// Server and node label: the pool the machine belongs to.
pub const POOL: &str = "gitea-ci-autoscaler/pool";
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

/// How a stored instant reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Not written.
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

/// Reads a server label holding Unix seconds.
pub(crate) fn read_unix(labels: &std::collections::BTreeMap<String, String>, key: &str) -> Stored {
    match labels.get(key) {
        None => Stored::Absent,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map_or(Stored::Garbled, Stored::At),
    }
}

/// Reads a node annotation holding an RFC 3339 instant.
pub(crate) fn read_rfc3339(
    annotations: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Stored {
    match annotations.get(key) {
        None => Stored::Absent,
        Some(v) => v.parse::<Timestamp>().map_or(Stored::Garbled, Stored::At),
    }
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
        assert_eq!(read_unix(&labels, TEARDOWN), Stored::At(at));
        assert_eq!(read_unix(&labels, JOINED), Stored::Absent);
        let garbled = BTreeMap::from([(IDLE_SINCE.to_owned(), "yesterday".to_owned())]);
        assert_eq!(read_rfc3339(&garbled, IDLE_SINCE), Stored::Garbled);
    }

    #[test]
    fn keys_are_valid_kubernetes_and_hetzner_label_keys() {
        for key in [
            OWNER,
            POOL,
            JOINED,
            TEARDOWN,
            NODE_MISSING,
            IDLE_SINCE,
            DRAINED,
            SERVER_MISSING,
        ] {
            let (prefix, name) = key.split_once('/').expect("prefixed");
            assert_eq!(prefix, PREFIX);
            assert!(
                name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            );
        }
    }
}
