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
use crate::time;
use crate::keys::{self, Identity, NodeMarks, ServerMarks};
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
    pub(crate) server_marks: ServerMarks,
    /// What the core wrote on the node (all absent without a node).
    pub(crate) node_marks: NodeMarks,
    /// Runner pods bound to the node (owned nodes only). A node holds a few, stored inline.
    pub(crate) pods: SmallVec<[&'a RunnerPod; 2]>,
    /// Runners registered under those pods' names, sorted by id.
    pub(crate) runners: SmallVec<[MachineRunner<'a>; 2]>,
    /// Running jobs placed on this machine's runners.
    pub(crate) jobs: u32,
    /// Of those, jobs expected to end within the pool's `reuse_within`.
    pub(crate) ending_soon: u32,
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
    let node_marks: Vec<(Identity<'a>, NodeMarks)> = nodes
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
    // One pass reads each server once: its id for the duplicate check, its marks, its owner.
    let mut ids: Vec<u64> = Vec::with_capacity(snapshot.servers.items().len());
    let mut owned: Vec<(&Server, Identity<'a>, ServerMarks)> =
        Vec::with_capacity(snapshot.servers.items().len());
    for server in snapshot.servers.items() {
        ids.push(server.id);
        let (identity, marks) = keys::server_marks(&server.labels);
        if identity.owner == owner {
            owned.push((server, identity, marks));
        }
    }
    if has_repeats(&mut ids) {
        note(&mut duplicates, "servers");
        let mut seen = FxHashSet::default();
        owned.retain(|(s, _, _)| seen.insert(s.id));
    }
    owned.sort_unstable_by_key(|(s, _, _)| s.id);
    let mut claimed = vec![false; nodes.len()];
    // (name, server index in `owned`, node index): small, so sorting them moves little.
    let mut drafts: Vec<(&str, Option<usize>, Option<usize>)> = Vec::with_capacity(owned.len() + 8);
    for (k, (server, _, _)) in owned.iter().enumerate() {
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
        if !claimed[i] && node_marks[i].0.owner == owner {
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
        let (server, server_id, server_marks) = server
            .map_or((None, Identity::default(), ServerMarks::default()), |k| {
                (Some(owned[k].0), owned[k].1, owned[k].2)
            });
        let (node_id, marks) = node.map(|i| node_marks[i]).unwrap_or_default();
        if let Some(i) = node {
            machine_of_node[i] = Some(machines.len());
        }
        machines.push(Machine {
            name,
            server,
            node: node.map(|i| nodes[i]),
            node_owned: node.is_some() && node_id.owner == owner,
            pool: pool_ref(policy, server_id.pool.or(node_id.pool).unwrap_or("")),
            server_marks,
            node_marks: marks,
            pods: SmallVec::new(),
            runners: SmallVec::new(),
            jobs: 0,
            ending_soon: 0,
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
    // Runners by id (the index doubles as the duplicate check; the first occurrence counts).
    let runners = snapshot.runners.items();
    let mut runner_at: FxHashMap<u64, usize> = map_with_capacity(runners.len());
    let mut first = vec![true; runners.len()];
    for (k, runner) in runners.iter().enumerate() {
        match runner_at.entry(runner.id) {
            Entry::Occupied(_) => {
                first[k] = false;
                note(&mut duplicates, "runners");
            }
            Entry::Vacant(v) => {
                v.insert(k);
            }
        }
    }

    // Running jobs are the proof of work: by runner id where Gitea gives one we know, else by
    // runner name. One pass reads each job once.
    let mut ids: Vec<u64> = Vec::with_capacity(snapshot.jobs.items().len());
    let mut busy_ids: FxHashSet<u64> = FxHashSet::default();
    let mut busy_names: FxHashSet<&str> = FxHashSet::default();
    let mut running: Vec<(&Job, Option<usize>)> = Vec::new();
    let mut queued: Vec<&Job> = Vec::new();
    for job in snapshot.jobs.items() {
        ids.push(job.id);
        match job.status {
            JobStatus::Queued => queued.push(job),
            JobStatus::InProgress => {
                let runner = job.runner_id.and_then(|id| runner_at.get(&id).copied());
                match runner {
                    Some(k) => {
                        busy_ids.insert(runners[k].id);
                    }
                    None => busy_names.extend(job.runner_name.as_deref()),
                }
                running.push((job, runner));
            }
            JobStatus::Waiting | JobStatus::Completed => {}
        }
    }
    if has_repeats(&mut ids) {
        note(&mut duplicates, "jobs");
        let mut seen = FxHashSet::default();
        queued.retain(|j| seen.insert(j.id));
        running.retain(|(j, _)| seen.insert(j.id));
    }
    queued.sort_unstable_by_key(|j| j.id);

    let mut machine_of_runner: Vec<Option<usize>> = vec![None; runners.len()];
    let mut unmanaged_free = Vec::new();
    for (k, runner) in runners.iter().enumerate().filter(|(k, _)| first[*k]) {
        let busy = busy_ids.contains(&runner.id)
            || (!busy_names.is_empty() && busy_names.contains(runner.name.as_str()));
        if let Some(&Some(i)) = home_of_pod.get(runner.name.as_str()) {
            machines[i].runners.push(MachineRunner { runner, busy });
            machine_of_runner[k] = Some(i);
        } else if runner.online && !runner.disabled && !busy {
            unmanaged_free.push(UnmanagedRunner { runner });
        }
    }
    for m in &mut machines {
        m.runners.sort_unstable_by_key(|r| r.runner.id);
    }
    for (job, runner) in running {
        let machine = match runner {
            Some(k) => machine_of_runner[k],
            None => job
                .runner_name
                .as_deref()
                .and_then(|n| home_of_pod.get(n).copied().flatten()),
        };
        if let Some(i) = machine {
            let m = &mut machines[i];
            m.jobs += 1;
            if let PoolRef::Configured(p) = m.pool
                && ends_within(job, snapshot.now, policy.pools()[p].config.reuse_within)
            {
                m.ending_soon += 1;
            }
        }
    }

    Inventory {
        machines,
        unmanaged_free,
        queued,
        duplicates,
    }
}

/// The job is expected to end after `now` and no later than `now + horizon`. A job past its
/// expected end proves the estimate wrong and no longer counts.
fn ends_within(job: &Job, now: jiff::Timestamp, horizon: jiff::SignedDuration) -> bool {
    let (Some(started), Some(expected)) = (job.started, job.expected_duration) else {
        return false;
    };
    if horizon.is_zero() {
        return false;
    }
    // Any instants and any expectation may arrive; the difference saturates instead of panicking.
    let left = time::minus(expected, time::between(started, now));
    left.is_positive() && left <= horizon
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

/// Whether `ids` holds a value twice. Services list items in id order, so the sort is near
/// linear; it replaces a hash set for the common case of no repeats.
fn has_repeats(ids: &mut [u64]) -> bool {
    ids.sort_unstable();
    ids.windows(2).any(|w| w[0] == w[1])
}
