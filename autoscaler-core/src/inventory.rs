//! Correlation: which server, node, runner pods, runners and running jobs make up one machine.
//!
//! ```text
//!  Server ──name / hcloud://id── Node ──spec.nodeName── RunnerPod ──name── Runner ──runner_id── Job
//! ```
//!
//! Everything is indexed once with hash maps, so the whole correlation is linear in the size of
//! the snapshot (the design we replace compared every server with every node: 594 ms per tick at
//! 10,000 nodes). Machines come out sorted by name, so the plan never depends on input order.

use std::collections::{HashMap, HashSet};

use crate::config::Policy;
use crate::keys;
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
    /// Runner pods bound to the node (owned nodes only).
    pub(crate) pods: Vec<&'a RunnerPod>,
    /// Runners registered under those pods' names, sorted by id.
    pub(crate) runners: Vec<MachineRunner<'a>>,
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
pub(crate) fn build<'a>(policy: &'a Policy, snapshot: &'a Snapshot) -> Inventory<'a> {
    let owner = policy.config().installation.as_str();
    let mut duplicates = Vec::new();

    let servers = unique_by(
        snapshot.servers.items(),
        |s| s.id,
        "servers",
        &mut duplicates,
    );
    let nodes = unique_by(
        snapshot.nodes.items(),
        |n| n.name.as_str(),
        "nodes",
        &mut duplicates,
    );
    let pods = unique_by(
        snapshot.pods.items(),
        |p| p.name.as_str(),
        "pods",
        &mut duplicates,
    );
    let runners = unique_by(
        snapshot.runners.items(),
        |r| r.id,
        "runners",
        &mut duplicates,
    );
    let jobs = unique_by(snapshot.jobs.items(), |j| j.id, "jobs", &mut duplicates);

    let is_ours = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(keys::OWNER).is_some_and(|v| v == owner)
    };

    // Server ↔ node: the provider id is exact when the cloud controller set it; the name is the
    // contract of our own join (node name = server name).
    let node_by_name: HashMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), *n)).collect();
    let node_by_provider: HashMap<u64, &Node> = nodes
        .iter()
        .filter_map(|n| {
            let id = n
                .provider_id
                .as_deref()?
                .strip_prefix("hcloud://")?
                .parse()
                .ok()?;
            Some((id, *n))
        })
        .collect();

    let mut owned_servers: Vec<&Server> = servers
        .iter()
        .copied()
        .filter(|s| is_ours(&s.labels))
        .collect();
    owned_servers.sort_unstable_by_key(|s| s.id);

    let mut claimed: HashSet<&str> = HashSet::with_capacity(owned_servers.len());
    let mut machines: Vec<Machine<'a>> = Vec::with_capacity(owned_servers.len() + 8);
    for server in owned_servers {
        let node = node_by_provider
            .get(&server.id)
            .or_else(|| node_by_name.get(server.name.as_str()))
            .copied()
            .filter(|n| !claimed.contains(n.name.as_str()));
        if let Some(n) = node {
            claimed.insert(n.name.as_str());
        }
        let pool_name = server
            .labels
            .get(keys::POOL)
            .or_else(|| node.and_then(|n| n.labels.get(keys::POOL)))
            .map_or("", String::as_str);
        machines.push(Machine {
            name: server.name.as_str(),
            server: Some(server),
            node,
            node_owned: node.is_some_and(|n| is_ours(&n.labels)),
            pool: pool_ref(policy, pool_name),
            pods: Vec::new(),
            runners: Vec::new(),
            jobs: 0,
        });
    }
    for node in &nodes {
        if is_ours(&node.labels) && !claimed.contains(node.name.as_str()) {
            let pool_name = node.labels.get(keys::POOL).map_or("", String::as_str);
            machines.push(Machine {
                name: node.name.as_str(),
                server: None,
                node: Some(node),
                node_owned: true,
                pool: pool_ref(policy, pool_name),
                pods: Vec::new(),
                runners: Vec::new(),
                jobs: 0,
            });
        }
    }
    machines.sort_unstable_by(|a, b| {
        a.name
            .cmp(b.name)
            .then_with(|| a.server.map(|s| s.id).cmp(&b.server.map(|s| s.id)))
    });

    // Node → machine, for owned nodes only: pods on other nodes are not ours to retire.
    let machine_by_node: HashMap<&str, usize> = machines
        .iter()
        .enumerate()
        .filter(|(_, m)| m.node_owned)
        .filter_map(|(i, m)| Some((m.node?.name.as_str(), i)))
        .collect();

    let mut pods_sorted = pods;
    pods_sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut machine_of_pod: HashMap<&str, usize> = HashMap::with_capacity(pods_sorted.len());
    for pod in &pods_sorted {
        if let Some(&i) = pod.node.as_deref().and_then(|n| machine_by_node.get(n)) {
            machines[i].pods.push(pod);
            machine_of_pod.insert(pod.name.as_str(), i);
        }
    }
    // Pods that name the node of a server whose node is missing prove the node is not really
    // gone; nothing on them is retired, since the node is not there to retire them from.
    let names_of_missing_nodes: HashMap<&str, usize> = machines
        .iter()
        .enumerate()
        .filter(|(_, m)| m.node.is_none())
        .map(|(i, m)| (m.name, i))
        .collect();
    for pod in &pods_sorted {
        if let Some(&i) = pod
            .node
            .as_deref()
            .and_then(|n| names_of_missing_nodes.get(n))
        {
            machines[i].pods.push(pod);
            // A job on such a pod's runner still makes the server busy.
            machine_of_pod.insert(pod.name.as_str(), i);
        }
    }

    // Running jobs are the proof of work. Place each on a runner name, then on a machine.
    let runner_by_id: HashMap<u64, &Runner> = runners.iter().map(|r| (r.id, *r)).collect();
    let mut busy_names: HashSet<&str> = HashSet::new();
    let mut queued: Vec<&Job> = Vec::new();
    for job in &jobs {
        match job.status {
            JobStatus::Queued => queued.push(job),
            JobStatus::InProgress => {
                let by_id = job
                    .runner_id
                    .and_then(|id| runner_by_id.get(&id))
                    .map(|r| r.name.as_str());
                let by_name = job.runner_name.as_deref();
                busy_names.extend(by_id);
                busy_names.extend(by_name);
                let machine = [by_id, by_name]
                    .into_iter()
                    .flatten()
                    .find_map(|name| machine_of_pod.get(name));
                if let Some(&i) = machine {
                    machines[i].jobs += 1;
                }
            }
            JobStatus::Waiting | JobStatus::Completed => {}
        }
    }
    queued.sort_unstable_by_key(|j| j.id);

    let mut runners_sorted = runners;
    runners_sorted.sort_unstable_by_key(|r| r.id);
    let mut unmanaged_free = Vec::new();
    for runner in runners_sorted {
        let busy = busy_names.contains(runner.name.as_str());
        if let Some(&i) = machine_of_pod.get(runner.name.as_str()) {
            machines[i].runners.push(MachineRunner { runner, busy });
        } else if runner.online && !runner.disabled && !busy {
            unmanaged_free.push(UnmanagedRunner { runner });
        }
    }

    Inventory {
        machines,
        unmanaged_free,
        queued,
        duplicates,
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
    let mut seen = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if seen.insert(key(item)) {
            out.push(item);
        }
    }
    if out.len() != items.len() {
        duplicates.push(source);
    }
    out
}
