//! Which node is which server's.
//!
//! Two facts link a node to a server: `spec.providerID` (`hcloud://<id>`, set by the Hetzner
//! cloud controller, exact) and the name (our join sets node name = server name). Claiming nodes
//! one server at a time by "provider id or name" lets a name match take a node whose provider id
//! names another server, which then looks node-less and is deleted while its node works. Here
//! every link of both kinds is drawn first, and only a server and a node that link to each other
//! and to nothing else are a pair. Anything more tangled (a name pointing one way and a provider
//! id the other, two nodes claiming one server, a provider id naming a server that is not ours
//! on a node that carries our server's name) is a fault in which nothing is touched.

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::snapshot::{Node, Server};

/// One machine's server and node, by index into the caller's lists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub(crate) name: &'a str,
    pub(crate) server: Option<usize>,
    pub(crate) node: Option<usize>,
    /// Part of a tangle of links: nothing on it may be touched.
    pub(crate) tangled: bool,
}

/// What a node's `spec.providerID` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProviderId {
    /// Not a Hetzner Cloud id (absent, or another provider's such as `k3s://…`).
    Unknown,
    /// `hcloud://<id>`.
    Hetzner(u64),
    /// `hcloud://…` that names no Hetzner Cloud server id (a dedicated `bm-` server, garbage).
    Elsewhere,
}

fn provider_id(node: &Node) -> ProviderId {
    match node
        .provider_id
        .as_deref()
        .and_then(|p| p.strip_prefix("hcloud://"))
    {
        None => ProviderId::Unknown,
        Some(rest) => rest
            .parse()
            .map_or(ProviderId::Elsewhere, ProviderId::Hetzner),
    }
}

/// Disjoint sets over servers `0..S` and nodes `S..S+N`.
struct Sets(Vec<u32>);

impl Sets {
    fn new(n: usize) -> Self {
        Self(
            (0..n)
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect(),
        )
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] as usize != x {
            let grand = self.0[self.0[x] as usize];
            self.0[x] = grand;
            x = grand as usize;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index becomes the root: the result does not depend on edge order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = u32::try_from(lo).unwrap_or(u32::MAX);
        }
    }
}

/// What one group of linked servers and nodes holds.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    servers: u32,
    nodes: u32,
    /// A node in it names, by provider id, a server that is not ours.
    elsewhere: bool,
    /// Its node, when it has exactly one.
    node: Option<usize>,
}

impl Group {
    fn tangled(&self) -> bool {
        self.servers > 1 || self.nodes > 1 || (self.servers > 0 && self.elsewhere)
    }
}

/// Pairs `servers` (ours, one per id, sorted by id) with `nodes` (one per name). Every server
/// gets a pair; a node gets one when it carries our ownership label (`owned[i]`) or is linked to
/// one of our servers. Also says whether two servers share a name (a list Hetzner would never
/// give, so the list is not to be trusted).
pub(crate) fn pair<'a>(
    servers: &[&'a Server],
    nodes: &[&'a Node],
    node_by_name: &FxHashMap<&str, usize>,
    owned: &[bool],
) -> (Vec<Pair<'a>>, bool) {
    let s = servers.len();
    let mut sets = Sets::new(s + nodes.len());
    let by_id: FxHashMap<u64, usize> = servers.iter().enumerate().map(|(k, x)| (x.id, k)).collect();
    let mut by_name: FxHashMap<&str, usize> = FxHashMap::with_capacity_and_hasher(s, FxBuildHasher);
    let mut names_repeat = false;
    for (k, server) in servers.iter().enumerate() {
        if let Some(&other) = by_name.get(server.name.as_str()) {
            names_repeat = true;
            sets.union(other, k);
        } else {
            by_name.insert(server.name.as_str(), k);
        }
    }
    let mut elsewhere = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        match provider_id(node) {
            ProviderId::Hetzner(id) => match by_id.get(&id) {
                Some(&k) => sets.union(k, s + i),
                None => elsewhere[i] = true,
            },
            ProviderId::Elsewhere => elsewhere[i] = true,
            ProviderId::Unknown => {}
        }
        if let Some(&k) = by_name.get(node.name.as_str()) {
            sets.union(k, s + i);
        }
    }
    let mut groups = vec![Group::default(); s + nodes.len()];
    for k in 0..s {
        let root = sets.find(k);
        groups[root].servers += 1;
    }
    for i in 0..nodes.len() {
        let root = sets.find(s + i);
        let g = &mut groups[root];
        g.nodes += 1;
        g.elsewhere |= elsewhere[i];
        g.node = Some(i);
    }

    let mut used = vec![false; nodes.len()];
    let mut out = Vec::with_capacity(s + 8);
    for (k, server) in servers.iter().enumerate() {
        let g = groups[sets.find(k)];
        let node = if g.tangled() {
            // Keep a server and the node of its name together in the report; both are held.
            let root = sets.find(k);
            node_by_name
                .get(server.name.as_str())
                .copied()
                .filter(|&i| sets.find(s + i) == root)
        } else {
            g.node
        };
        if let Some(i) = node {
            used[i] = true;
        }
        out.push(Pair {
            name: server.name.as_str(),
            server: Some(k),
            node,
            tangled: g.tangled(),
        });
    }
    for (i, node) in nodes.iter().enumerate() {
        if used[i] || !owned[i] {
            continue;
        }
        let g = groups[sets.find(s + i)];
        out.push(Pair {
            name: node.name.as_str(),
            server: None,
            node: Some(i),
            tangled: g.tangled(),
        });
    }
    (out, names_repeat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn at() -> jiff::Timestamp {
        "2026-11-25T10:00:00Z".parse().expect("timestamp")
    }

    fn server(id: u64, name: &str) -> Server {
        synthetic::server("default", "linux", id, name, at())
    }

    fn node(name: &str, provider: Option<&str>) -> Node {
        let mut n = synthetic::node("default", "linux", name, at());
        n.provider_id = provider.map(str::to_owned);
        n
    }

    fn pairs(
        servers: &[Server],
        nodes: &[Node],
    ) -> Vec<(String, Option<u64>, Option<String>, bool)> {
        let s: Vec<&Server> = servers.iter().collect();
        let n: Vec<&Node> = nodes.iter().collect();
        let owned = vec![true; n.len()];
        let by_name = n
            .iter()
            .enumerate()
            .map(|(i, x)| (x.name.as_str(), i))
            .collect();
        let (p, _) = pair(&s, &n, &by_name, &owned);
        p.iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    p.server.map(|k| s[k].id),
                    p.node.map(|i| n[i].name.clone()),
                    p.tangled,
                )
            })
            .collect()
    }

    #[test]
    fn a_provider_id_pairs_even_when_the_names_differ() {
        let got = pairs(&[server(1, "a")], &[node("renamed", Some("hcloud://1"))]);
        assert_eq!(
            got,
            vec![("a".into(), Some(1), Some("renamed".into()), false)]
        );
    }

    #[test]
    fn a_name_pointing_one_way_and_a_provider_id_the_other_is_a_tangle() {
        // Server 1 is called `x`; node `x` says it runs on server 2.
        let got = pairs(
            &[server(1, "x"), server(2, "y")],
            &[node("x", Some("hcloud://2")), node("y", None)],
        );
        assert!(got.iter().all(|p| p.3), "{got:?}");
        assert_eq!(
            got.len(),
            2,
            "server x with node x, server y with node y: {got:?}"
        );
    }

    #[test]
    fn a_node_that_names_a_server_not_ours_is_not_our_servers_node() {
        let got = pairs(&[server(1, "x")], &[node("x", Some("hcloud://77"))]);
        assert_eq!(got, vec![("x".into(), Some(1), Some("x".into()), true)]);
    }

    #[test]
    fn two_nodes_claiming_one_server_are_a_tangle() {
        let got = pairs(
            &[server(1, "x")],
            &[
                node("x", Some("hcloud://1")),
                node("old-x", Some("hcloud://1")),
            ],
        );
        assert!(got.iter().all(|p| p.3), "{got:?}");
    }

    #[test]
    fn unlinked_servers_and_nodes_stand_alone() {
        let got = pairs(
            &[server(1, "a")],
            &[node("b", None), node("c", Some("k3s://c"))],
        );
        assert_eq!(
            got,
            vec![
                ("a".into(), Some(1), None, false),
                ("b".into(), None, Some("b".into()), false),
                ("c".into(), None, Some("c".into()), false),
            ]
        );
    }
}
