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

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

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

/// Pairs `servers` (ours, one per id, sorted by id) with `nodes` (one per name). Every server
/// gets a pair; a node gets one when it carries our ownership label (`owned[i]`) or is linked to
/// one of our servers. Also says whether two servers share a name (a list Hetzner would never
/// give, so the list is not to be trusted).
///
/// Links form a graph of servers and nodes. A pair is a group of exactly one server and one
/// node (or one alone); any bigger group is a tangle. In a connected group of three or more,
/// every member has two links or is linked to one that has, so a tangle is found from link
/// counts alone, with no search, at the cost of two lookups per server.
pub(crate) fn pair<'a>(
    servers: &[&'a Server],
    nodes: &[&'a Node],
    node_by_name: &FxHashMap<&str, usize>,
    owned: &[bool],
) -> (Vec<Pair<'a>>, bool) {
    // Node by provider id. Two nodes naming one id are rare: the later ones wait in `more`.
    let mut by_provider: FxHashMap<u64, u32> =
        FxHashMap::with_capacity_and_hasher(nodes.len(), Default::default());
    let mut more: Vec<(u64, u32)> = Vec::new();
    let mut elsewhere = vec![false; nodes.len()];
    let mut hetzner_id = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        match provider_id(node) {
            ProviderId::Hetzner(id) => {
                hetzner_id[i] = true;
                if let Some(first) = by_provider.insert(id, index) {
                    by_provider.insert(id, first);
                    more.push((id, index));
                }
            }
            ProviderId::Elsewhere => elsewhere[i] = true,
            ProviderId::Unknown => {}
        }
    }
    // Links from each server: the node of its name, and the nodes naming its id.
    let mut server_links: Vec<SmallVec<[usize; 2]>> = Vec::with_capacity(servers.len());
    let mut node_links = vec![0u32; nodes.len()];
    let mut node_server: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut claimed = vec![false; nodes.len()];
    let mut names_repeat = false;
    for (k, server) in servers.iter().enumerate() {
        let mut links: SmallVec<[usize; 2]> = SmallVec::new();
        if let Some(&i) = node_by_name.get(server.name.as_str()) {
            links.push(i);
        }
        let also = more
            .iter()
            .filter(|(id, _)| *id == server.id)
            .map(|(_, i)| *i);
        for i in by_provider.get(&server.id).copied().into_iter().chain(also) {
            let i = i as usize;
            claimed[i] = true;
            if !links.contains(&i) {
                links.push(i);
            }
        }
        for &i in &links {
            node_links[i] += 1;
            if let Some(other) = node_server[i]
                && servers[other].name == server.name
            {
                names_repeat = true;
            }
            node_server[i].get_or_insert(k);
        }
        server_links.push(links);
    }
    // A node whose hcloud:// id names no server of ours belongs elsewhere.
    for i in 0..nodes.len() {
        elsewhere[i] |= hetzner_id[i] && !claimed[i];
    }
    let node_tangled = |i: usize, via: usize| -> bool {
        node_links[i] >= 2 || server_links[via].len() >= 2 || elsewhere[i]
    };
    let server_tangled = |k: usize| -> bool {
        match server_links[k].as_slice() {
            [] => false,
            [i] => node_links[*i] >= 2 || elsewhere[*i],
            _ => true,
        }
    };

    let mut used = vec![false; nodes.len()];
    let mut out = Vec::with_capacity(servers.len() + 8);
    for (k, server) in servers.iter().enumerate() {
        let tangled = server_tangled(k);
        let node = if tangled {
            // Keep a server and the node of its name together in the report; both are held.
            node_by_name
                .get(server.name.as_str())
                .copied()
                .filter(|&i| !used[i])
        } else {
            server_links[k].first().copied()
        };
        if let Some(i) = node {
            used[i] = true;
        }
        out.push(Pair {
            name: server.name.as_str(),
            server: Some(k),
            node,
            tangled,
        });
    }
    for (i, node) in nodes.iter().enumerate() {
        if used[i] || !owned[i] {
            continue;
        }
        out.push(Pair {
            name: node.name.as_str(),
            server: None,
            node: Some(i),
            tangled: node_server[i].is_some_and(|k| node_tangled(i, k)),
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
