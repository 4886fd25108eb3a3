//! Correlation: which server, node, runner pods, runners and running jobs make up one machine.
//!
//! ```text
//!  Server ──name / hcloud://id── Node ──spec.nodeName── RunnerPod ──name── Runner ──runner_id── Job
//! ```
//!
//! Everything is indexed once with hash maps, so the whole correlation is linear in the size of
//! the snapshot (the design we replace compared every server with every node: 594 ms per tick at
//! 10,000 nodes). Machines come out sorted by name, so the plan never depends on input order.

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::collections::hash_map::Entry;

use crate::config::Policy;
use crate::keys::{self, NodeMarks, ServerMarks};
use crate::snapshot::{Job, JobStatus, Node, PodPhase, Runner, RunnerPod, Server, Snapshot};

/// Which pool a machine belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolRef<'a> {
    /// A configured pool, by index.
    Configured(usize),
    /// A pool label no configured pool has (a pool was removed): its machines only drain.
    Unknown(&'a str),
}

/// A runner on a managed machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MachineRunner<'a> {
    pub(crate) runner: &'a Runner,
    /// A running job names it: the proof that it works.
    pub(crate) busy: bool,
}

impl MachineRunner<'_> {
    /// Can take a job now.
    pub(crate) fn is_free(&self) -> bool {
        self.runner.online && !self.runner.disabled && !self.busy
    }
}

/// One managed machine: an owned server, an owned node, or both.
#[derive(Debug, Clone)]
pub(crate) struct Machine<'a> {
    pub(crate) name: &'a str,
    pub(crate) server: Option<&'a Server>,
    pub(crate) node: Option<&'a Node>,
    /// The node carries our ownership label. A node matched to our server without it is a
    /// conflict: nothing on it is touched.
    pub(crate) node_owned: bool,
    pub(crate) pool: PoolRef<'a>,
    /// What the core wrote on the server (all absent without a server).
    pub(crate) server_marks: ServerMarks<'a>,
    /// What the core wrote on the node (all absent without a node).
    pub(crate) node_marks: NodeMarks<'a>,
    /// Runner pods bound to the node (owned nodes only). A node holds a few, stored inline.
    pub(crate) pods: SmallVec<[&'a RunnerPod; 2]>,
    /// Runners registered under those pods' names, sorted by id.
    pub(crate) runners: SmallVec<[MachineRunner<'a>; 2]>,
    /// Running jobs placed on this machine's runners.
    pub(crate) jobs: u32,
}

impl Machine<'_> {
    pub(crate) fn busy_runners(&self) -> u32 {
        count(self.runners.iter().filter(|r| r.busy))
    }

    pub(crate) fn free_runners(&self) -> impl Iterator<Item = &MachineRunner<'_>> {
        self.runners.iter().filter(|r| r.is_free())
    }

    /// At least one of its runners has a job: never touched.
    pub(crate) fn is_busy(&self) -> bool {
        self.jobs > 0 || self.runners.iter().any(|r| r.busy)
    }

    /// Runner pods that still hold the node's name (evidence the node is not really gone).
    pub(crate) fn live_pods(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed))
            .count()
    }
}

/// A free runner outside managed machines, e.g. a static self-hosted runner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnmanagedRunner<'a> {
    pub(crate) runner: &'a Runner,
}

/// The correlated snapshot.
#[derive(Debug)]
pub(crate) struct Inventory<'a> {
    pub(crate) machines: Vec<Machine<'a>>,
    /// Free runners not on managed machines.
    pub(crate) unmanaged_free: Vec<UnmanagedRunner<'a>>,
    /// Runnable jobs, sorted by id.
    pub(crate) queued: Vec<&'a Job>,
    /// Sources in which the same id appeared twice (a page shifted while it was read).
    pub(crate) duplicates: Vec<&'static str>,
}

pub(crate) fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

/// Builds the inventory of `snapshot` for `policy`'s installation.
///
/// Cost: every string key is hashed about once per item (nodes, pods, runners); everything
/// else is keyed by numeric id or index, and machines are laid out once, in name order.
pub(crate) fn build<'a>(policy: &'a Policy, snapshot: &'a Snapshot) -> Inventory<'a> {
    let owner = Some(policy.config().installation.as_str());
    let mut duplicates = Vec::new();

    // Nodes by name (the index doubles as the duplicate check) and by Hetzner id.
    let mut node_by_name: FxHashMap<&str, usize> = map_with_capacity(snapshot.nodes.items().len());
    let mut nodes: Vec<&Node> = Vec::with_capacity(snapshot.nodes.items().len());
    for n in snapshot.nodes.items() {
        match node_by_name.entry(n.name.as_str()) {
            // Keep the first occurrence, as everywhere else.
            Entry::Occupied(_) => note(&mut duplicates, "nodes"),
            Entry::Vacant(v) => {
                v.insert(nodes.len());
                nodes.push(n);
            }
        }
    }
    let node_marks: Vec<NodeMarks<'a>> = nodes
        .iter()
        .map(|n| keys::node_marks(&n.labels, &n.annotations))
        .collect();
    let node_by_provider: FxHashMap<u64, usize> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            Some((
                n.provider_id
                    .as_deref()?
                    .strip_prefix("hcloud://")?
                    .parse()
                    .ok()?,
                i,
            ))
        })
        .collect();

    // Server ↔ node: the provider id is exact when the cloud controller set it; the name is the
    // contract of our own join (node name = server name). Servers claim nodes in id order.
    let servers = unique_by_id(
        snapshot.servers.items(),
        |s| s.id,
        "servers",
        &mut duplicates,
    );
    let mut owned: Vec<(&Server, ServerMarks<'a>)> = servers
        .into_iter()
        .map(|s| (s, keys::server_marks(&s.labels)))
        .filter(|(_, m)| m.owner == owner)
        .collect();
    owned.sort_unstable_by_key(|(s, _)| s.id);
    let mut claimed = vec![false; nodes.len()];
    // (name, server index in `owned`, node index): small, so sorting them moves little.
    let mut drafts: Vec<(&str, Option<usize>, Option<usize>)> = Vec::with_capacity(owned.len() + 8);
    for (k, (server, _)) in owned.iter().enumerate() {
        let node = node_by_provider
            .get(&server.id)
            .or_else(|| node_by_name.get(server.name.as_str()))
            .copied()
            .filter(|&i| !claimed[i]);
        if let Some(i) = node {
            claimed[i] = true;
        }
        drafts.push((server.name.as_str(), Some(k), node));
    }
    for (i, node) in nodes.iter().enumerate() {
        if !claimed[i] && node_marks[i].owner == owner {
            drafts.push((node.name.as_str(), None, Some(i)));
        }
    }
    // Sorted by name, so the plan never depends on input order.
    drafts.sort_unstable_by(|a, b| {
        let id = |d: &(&str, Option<usize>, Option<usize>)| d.1.map(|k| owned[k].0.id);
        a.0.cmp(b.0).then_with(|| id(a).cmp(&id(b)))
    });
    let mut machine_of_node: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut machines: Vec<Machine<'a>> = Vec::with_capacity(drafts.len());
    for (name, server, node) in drafts {
        let (server, server_marks) = server.map_or((None, ServerMarks::default()), |k| {
            (Some(owned[k].0), owned[k].1)
        });
        let marks = node.map(|i| node_marks[i]).unwrap_or_default();
        if let Some(i) = node {
            machine_of_node[i] = Some(machines.len());
        }
        machines.push(Machine {
            name,
            server,
            node: node.map(|i| nodes[i]),
            node_owned: node.is_some() && marks.owner == owner,
            pool: pool_ref(policy, server_marks.pool.or(marks.pool).unwrap_or("")),
            server_marks,
            node_marks: marks,
            pods: SmallVec::new(),
            runners: SmallVec::new(),
            jobs: 0,
        });
    }

    // Which machine a pod's node name stands for: owned nodes, and the names of servers whose
    // node is missing (their pods prove the node is not really gone, and a job on such a pod's
    // runner still makes the server busy). Pods on other nodes are not ours to retire.
    let missing_node: FxHashMap<&str, usize> = machines
        .iter()
        .enumerate()
        .filter(|(_, m)| m.node.is_none())
        .map(|(i, m)| (m.name, i))
        .collect();
    let home_of_node = |name: &str| -> Option<usize> {
        match node_by_name.get(name) {
            Some(&n) => machine_of_node[n].filter(|&i| machines[i].node_owned),
            None => missing_node.get(name).copied(),
        }
    };
    // One map from pod name to its machine, for every pod: it is also the duplicate check.
    let mut home_of_pod: FxHashMap<&str, Option<usize>> =
        map_with_capacity(snapshot.pods.items().len());
    let mut placed: Vec<(usize, &RunnerPod)> = Vec::with_capacity(snapshot.pods.items().len());
    for pod in snapshot.pods.items() {
        match home_of_pod.entry(pod.name.as_str()) {
            Entry::Occupied(_) => note(&mut duplicates, "pods"),
            Entry::Vacant(v) => {
                let home = pod.node.as_deref().and_then(home_of_node);
                v.insert(home);
                if let Some(i) = home {
                    placed.push((i, pod));
                }
            }
        }
    }
    for (i, pod) in placed {
        machines[i].pods.push(pod);
    }
    for m in &mut machines {
        m.pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    }

    // Running jobs are the proof of work: by runner id where Gitea gives one we know, else by
    // runner name.
    let mut runners = unique_by_id(
        snapshot.runners.items(),
        |r| r.id,
        "runners",
        &mut duplicates,
    );
    runners.sort_unstable_by_key(|r| r.id);
    let runner_index = |id: u64| runners.binary_search_by_key(&id, |r| r.id).ok();
    let jobs = unique_by_id(snapshot.jobs.items(), |j| j.id, "jobs", &mut duplicates);
    let mut busy_ids: FxHashSet<u64> = FxHashSet::default();
    let mut busy_names: FxHashSet<&str> = FxHashSet::default();
    let mut running: Vec<(&Job, Option<usize>)> = Vec::new();
    let mut queued: Vec<&Job> = Vec::new();
    for job in jobs {
        match job.status {
            JobStatus::Queued => queued.push(job),
            JobStatus::InProgress => {
                let runner = job.runner_id.and_then(runner_index);
                match runner {
                    Some(r) => {
                        busy_ids.insert(runners[r].id);
                    }
                    None => busy_names.extend(job.runner_name.as_deref()),
                }
                running.push((job, runner));
            }
            JobStatus::Waiting | JobStatus::Completed => {}
        }
    }
    queued.sort_unstable_by_key(|j| j.id);

    let mut machine_of_runner: Vec<Option<usize>> = vec![None; runners.len()];
    let mut unmanaged_free = Vec::new();
    for (k, runner) in runners.iter().enumerate() {
        let busy = busy_ids.contains(&runner.id)
            || (!busy_names.is_empty() && busy_names.contains(runner.name.as_str()));
        if let Some(&Some(i)) = home_of_pod.get(runner.name.as_str()) {
            machines[i].runners.push(MachineRunner { runner, busy });
            machine_of_runner[k] = Some(i);
        } else if runner.online && !runner.disabled && !busy {
            unmanaged_free.push(UnmanagedRunner { runner });
        }
    }
    for (job, runner) in running {
        let machine = match runner {
            Some(r) => machine_of_runner[r],
            None => job
                .runner_name
                .as_deref()
                .and_then(|n| home_of_pod.get(n).copied().flatten()),
        };
        if let Some(i) = machine {
            machines[i].jobs += 1;
        }
    }

    Inventory {
        machines,
        unmanaged_free,
        queued,
        duplicates,
    }
}

fn map_with_capacity<K, V>(n: usize) -> FxHashMap<K, V> {
    FxHashMap::with_capacity_and_hasher(n, FxBuildHasher)
}

fn note(duplicates: &mut Vec<&'static str>, source: &'static str) {
    if !duplicates.contains(&source) {
        duplicates.push(source);
    }
}

fn pool_ref<'a>(policy: &Policy, name: &'a str) -> PoolRef<'a> {
    policy
        .pool_index(name)
        .map_or(PoolRef::Unknown(name), PoolRef::Configured)
}

/// The items with the first occurrence of each key; records `source` when a key repeats.
fn unique_by<'a, T, K: std::hash::Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    source: &'static str,
    duplicates: &mut Vec<&'static str>,
) -> Vec<&'a T> {
    let mut seen: FxHashSet<K> = FxHashSet::with_capacity_and_hasher(items.len(), FxBuildHasher);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if seen.insert(key(item)) {
            out.push(item);
        }
    }
    if out.len() != items.len() {
        note(duplicates, source);
    }
    out
}

/// [`unique_by`] for numeric ids, which services list in id order: a sort of the ids (near
/// linear on sorted input) proves them unique without hashing; only a repeat falls back.
fn unique_by_id<'a, T>(
    items: &'a [T],
    id: impl Fn(&'a T) -> u64 + Copy,
    source: &'static str,
    duplicates: &mut Vec<&'static str>,
) -> Vec<&'a T> {
    let mut ids: Vec<u64> = items.iter().map(id).collect();
    ids.sort_unstable();
    if ids.windows(2).all(|w| w[0] != w[1]) {
        return items.iter().collect();
    }
    unique_by(items, id, source, duplicates)
}
