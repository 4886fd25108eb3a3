//! Correlation: which server, node, runner pods, runners and running jobs make up one machine,
//! and what the lists show that no machine accounts for.
//!
//! ```text
//!  Server ──hcloud://id, name── Node ──spec.nodeName── RunnerPod ──name── Runner ──runner_id── Job
//! ```
//!
//! Everything is indexed once with hash maps, so the whole correlation is linear in the size of
//! the snapshot (the design we replace compared every server with every node: 594 ms per tick at
//! 10,000 nodes). Machines come out sorted by name, and repeated items are reduced to one copy
//! chosen by content, so the plan never depends on input order.
//!
//! What cannot be placed is kept, not dropped: a running job whose runner no machine shows, and
//! an online runner with no pod, are evidence that the lists disagree (a relabelled runner
//! DaemonSet, the wrong namespace or Gitea scope), and the decision holds teardowns on it.

mod pairing;
mod unique;

use rustc_hash::FxHashSet;
use smallvec::SmallVec;

use crate::config::Policy;
use crate::keys::{self, Identity, NodeMarks, ServerMarks};
use crate::labels::{label_name, satisfies};
use crate::snapshot::{Job, JobStatus, Node, PodPhase, Runner, RunnerPod, Server, Snapshot};
use crate::time;

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
    /// Provider ids and names disagree about which node is whose: nothing on it is touched.
    pub(crate) tangled: bool,
    /// The server carries no cluster identity although the snapshot names ours: it was created
    /// before identities were written, or by another installation of the same name.
    pub(crate) unclaimed: bool,
    pub(crate) pool: PoolRef<'a>,
    /// What the core wrote on the server (all absent without a server).
    pub(crate) server_marks: ServerMarks,
    /// What the core wrote on the node (all absent without a node).
    pub(crate) node_marks: NodeMarks<'a>,
    /// Runner pods bound to the node (owned nodes only). A node holds a few, stored inline.
    pub(crate) pods: SmallVec<[&'a RunnerPod; 2]>,
    /// Runners registered under those pods' names, sorted by id.
    pub(crate) runners: SmallVec<[MachineRunner<'a>; 2]>,
    /// Running jobs placed on this machine's runners.
    pub(crate) jobs: u32,
    /// When those of them with an estimate are expected to end, where that is still ahead: a
    /// job past its expected end proves the estimate wrong and is not counted on.
    pub(crate) frees_at: SmallVec<[jiff::Timestamp; 2]>,
    /// The node's `runners` annotation should read this (a pod's runner was bound anew).
    pub(crate) record_runners: Option<String>,
    /// Runner pods on it with several runners of their name and none known to be theirs.
    pub(crate) unclear_pods: u32,
}

impl Machine<'_> {
    pub(crate) fn busy_runners(&self) -> u32 {
        count(self.runners.iter().filter(|r| r.busy))
    }

    pub(crate) fn free_runners(&self) -> impl Iterator<Item = &MachineRunner<'_>> {
        self.runners.iter().filter(|r| r.is_free())
    }

    /// Its busy runners expected to be free by `at`.
    pub(crate) fn free_by(&self, at: jiff::Timestamp) -> u32 {
        count(self.frees_at.iter().filter(|&&t| t <= at))
    }

    /// At least one of its runners has a job: never touched.
    pub(crate) fn is_busy(&self) -> bool {
        self.jobs > 0 || self.runners.iter().any(|r| r.busy)
    }

    /// Runner pods that still hold the node's name (evidence the node is not really gone).
    pub(crate) fn live_pods(&self) -> usize {
        self.pods.iter().filter(|p| is_live(p)).count()
    }

    /// Live runner pods with no runner registered under their name: a runner the runner list
    /// does not show may be theirs.
    pub(crate) fn unregistered_pods(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| is_live(p) && !self.runners.iter().any(|r| r.runner.name == p.name))
            .count()
    }

    /// Fewer live runner pods than the pool runs per node: a pod the list does not show fits.
    pub(crate) fn has_room(&self, per_node: u32) -> bool {
        u32::try_from(self.live_pods()).unwrap_or(u32::MAX) < per_node
    }
}

fn is_live(p: &RunnerPod) -> bool {
    !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed)
}

/// A free runner outside managed machines, e.g. a static self-hosted runner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnmanagedRunner<'a> {
    pub(crate) runner: &'a Runner,
}

/// A running job that may be on one of our machines, though no machine shows its runner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnseenWork<'a> {
    pub(crate) job: &'a Job,
    /// Its runner, when the runner list holds it (then no runner pod of that name is listed).
    pub(crate) runner: Option<&'a Runner>,
}

/// What the lists show that no machine accounts for.
#[derive(Debug, Default)]
pub(crate) struct Unplaced<'a> {
    /// Running jobs that our pools could serve whose runner is on no machine: not in the runner
    /// list, or in it without a runner pod. Sorted by job id.
    pub(crate) work: Vec<UnseenWork<'a>>,
    /// Online, enabled, idle runners that share a label with our pools, with no runner pod
    /// listed anywhere. Sorted by runner id.
    pub(crate) idle: Vec<&'a Runner>,
}

/// Runners that share a runner pod's name.
#[derive(Debug, Clone)]
pub(crate) struct Namesake<'a> {
    /// The machine the pod is on.
    pub(crate) machine: &'a str,
    /// The pod.
    pub(crate) pod: &'a str,
    /// Every runner of that name, sorted by id.
    pub(crate) runners: SmallVec<[&'a Runner; 2]>,
    /// The pod's own registration, when known (recorded on the node, or the only one there was).
    pub(crate) ours: Option<u64>,
}

/// The correlated snapshot.
#[derive(Debug)]
pub(crate) struct Inventory<'a> {
    pub(crate) machines: Vec<Machine<'a>>,
    /// Free runners not on managed machines.
    pub(crate) unmanaged_free: Vec<UnmanagedRunner<'a>>,
    /// Runnable jobs, sorted by id.
    pub(crate) queued: Vec<&'a Job>,
    /// Sources in which the same id or name appeared twice (a page shifted while it was read).
    pub(crate) duplicates: Vec<&'static str>,
    /// Work and runners no machine accounts for.
    pub(crate) unplaced: Unplaced<'a>,
    /// Servers with our ownership label but another cluster's identity: another installation
    /// of the same name shares the Hetzner project. Never touched. Sorted by id.
    pub(crate) foreign: Vec<&'a Server>,
    /// Our servers that are a bake's temporary machine (labelled [`keys::BAKE`]): never runner
    /// nodes, never counted. Sorted by id.
    pub(crate) baking: Vec<&'a Server>,
    /// Runner pods whose name several runners carry, sorted by machine and pod.
    pub(crate) namesakes: Vec<Namesake<'a>>,
    /// Other installations whose ownership label servers or nodes carry: name, servers, nodes.
    pub(crate) others: Vec<(&'a str, u32, u32)>,
}

pub(crate) fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

/// Where a runner pod of some name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    /// On this managed machine.
    Machine(usize),
    /// Listed, but not on a managed machine (another node, or not scheduled yet).
    Elsewhere,
}

/// Builds the inventory of `snapshot` for `policy`'s installation.
///
/// Cost: every string key is hashed about once per item (nodes, pods, runners); everything
/// else is keyed by numeric id or index, and machines are laid out once, in name order.
pub(crate) fn build<'a>(policy: &'a Policy, snapshot: &'a Snapshot) -> Inventory<'a> {
    let owner = Some(policy.config().installation.as_str());
    let mut duplicates = Vec::new();

    // Nodes, one per name (the index doubles as the duplicate check).
    let nodes = unique::by_key(snapshot.nodes.items(), |n: &Node| n.name.as_str());
    if nodes.repeats {
        note(&mut duplicates, "nodes");
    }
    let node_marks: Vec<(Identity<'a>, NodeMarks<'a>)> = nodes
        .items
        .iter()
        .map(|n| keys::node_marks(&n.labels, &n.annotations))
        .collect();
    let node_owned: Vec<bool> = node_marks.iter().map(|(id, _)| id.owner == owner).collect();
    let mut others: std::collections::BTreeMap<&'a str, (u32, u32)> = Default::default();
    for (id, _) in &node_marks {
        if let Some(o) = id.owner.filter(|o| Some(*o) != owner) {
            let e = others.entry(o).or_default();
            e.1 = e.1.saturating_add(1);
        }
    }

    // Our servers, one per id, in id order. One pass reads each server's marks and owner.
    let (servers, repeats) = unique::by_id(snapshot.servers.items(), |s: &Server| s.id);
    if repeats {
        note(&mut duplicates, "servers");
    }
    let cluster = snapshot.cluster.as_deref();
    let mut foreign: Vec<&Server> = Vec::new();
    let mut baking: Vec<&Server> = Vec::new();
    let mut owned: Vec<(&Server, Identity<'a>, ServerMarks)> = servers
        .into_iter()
        .filter_map(|server| {
            let (identity, marks) = keys::server_marks(&server.labels);
            if identity.owner != owner {
                if let Some(o) = identity.owner {
                    let e = others.entry(o).or_default();
                    e.0 = e.0.saturating_add(1);
                }
                return None;
            }
            if let (Some(ours), Some(theirs)) = (cluster, identity.cluster)
                && ours != theirs
            {
                foreign.push(server);
                return None;
            }
            if server.labels.contains_key(keys::BAKE) {
                baking.push(server);
                return None;
            }
            Some((server, identity, marks))
        })
        .collect();
    owned.sort_unstable_by_key(|(s, _, _)| s.id);
    foreign.sort_unstable_by_key(|s| s.id);
    baking.sort_unstable_by_key(|s| s.id);
    let owned_servers: Vec<&Server> = owned.iter().map(|(s, _, _)| *s).collect();

    // Server ↔ node: exact provider ids and names, drawn together; tangles are held.
    let (mut pairs, names_repeat) =
        pairing::pair(&owned_servers, &nodes.items, &nodes.index, &node_owned);
    if names_repeat {
        note(&mut duplicates, "servers");
    }
    // Sorted by name, so the plan never depends on input order.
    let server_id = |p: &pairing::Pair<'_>| p.server.map(|k| owned[k].0.id);
    pairs.sort_unstable_by(|a, b| {
        a.name
            .cmp(b.name)
            .then_with(|| server_id(a).cmp(&server_id(b)))
    });
    let mut machine_of_node: Vec<Option<usize>> = vec![None; nodes.items.len()];
    let mut machines: Vec<Machine<'a>> = Vec::with_capacity(pairs.len());
    for p in pairs {
        let (server, server_ident, server_marks) = p
            .server
            .map_or((None, Identity::default(), ServerMarks::default()), |k| {
                (Some(owned[k].0), owned[k].1, owned[k].2)
            });
        let (node_ident, marks) = p.node.map(|i| node_marks[i]).unwrap_or_default();
        if let Some(i) = p.node {
            machine_of_node[i] = Some(machines.len());
        }
        machines.push(Machine {
            name: p.name,
            server,
            node: p.node.map(|i| nodes.items[i]),
            node_owned: p.node.is_some_and(|i| node_owned[i]),
            tangled: p.tangled,
            unclaimed: server.is_some() && cluster.is_some() && server_ident.cluster.is_none(),
            pool: pool_ref(policy, server_ident.pool.or(node_ident.pool).unwrap_or("")),
            server_marks,
            node_marks: marks,
            pods: SmallVec::new(),
            runners: SmallVec::new(),
            jobs: 0,
            frees_at: SmallVec::new(),
            record_runners: None,
            unclear_pods: 0,
        });
    }

    // Which machine a pod's node name stands for: owned nodes, and the names of servers whose
    // node is missing (their pods prove the node is not really gone, and a job on such a pod's
    // runner still makes the server busy). Pods on other nodes are not ours to retire.
    let missing_node: rustc_hash::FxHashMap<&str, usize> = machines
        .iter()
        .enumerate()
        .filter(|(_, m)| m.node.is_none() && m.server.is_some())
        .map(|(i, m)| (m.name, i))
        .collect();
    let home_of_node = |name: &str| -> Option<usize> {
        match nodes.index.get(name) {
            Some(&n) => machine_of_node[n].filter(|&i| machines[i].node_owned),
            None => missing_node.get(name).copied(),
        }
    };
    // Pods, one per name: where each name lives.
    let pods = unique::by_key(snapshot.pods.items(), |p: &RunnerPod| p.name.as_str());
    if pods.repeats {
        note(&mut duplicates, "pods");
    }
    let homes: Vec<Home> = pods
        .items
        .iter()
        .map(|pod| {
            pod.node
                .as_deref()
                .and_then(home_of_node)
                .map_or(Home::Elsewhere, Home::Machine)
        })
        .collect();
    let home_of_pod = |name: &str| -> Option<Home> { pods.index.get(name).map(|&k| homes[k]) };
    for (pod, home) in pods.items.iter().zip(&homes) {
        if let Home::Machine(i) = home {
            machines[*i].pods.push(pod);
        }
    }
    for m in &mut machines {
        m.pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    }

    // Runners, one per id.
    let runners = unique::by_key(snapshot.runners.items(), |r: &Runner| r.id);
    if runners.repeats {
        note(&mut duplicates, "runners");
    }

    // Running jobs are the proof of work: by runner id where Gitea gives one we know, else by
    // runner name. One pass reads each job once.
    let (jobs, repeats) = unique::by_id(snapshot.jobs.items(), |j: &Job| j.id);
    if repeats {
        note(&mut duplicates, "jobs");
    }
    let mut busy_ids: FxHashSet<u64> = FxHashSet::default();
    let mut busy_names: FxHashSet<&str> = FxHashSet::default();
    let mut running: Vec<(&Job, Option<usize>)> = Vec::new();
    let mut queued: Vec<&Job> = Vec::new();
    for job in jobs {
        match job.status {
            JobStatus::Queued => queued.push(job),
            JobStatus::InProgress => {
                let runner = job.runner_id.and_then(|id| runners.index.get(&id).copied());
                match runner {
                    Some(k) => {
                        busy_ids.insert(runners.items[k].id);
                    }
                    None => busy_names.extend(job.runner_name.as_deref()),
                }
                running.push((job, runner));
            }
            JobStatus::Waiting | JobStatus::Completed => {}
        }
    }
    queued.sort_unstable_by_key(|j| j.id);

    // A running job names it, by id or (when Gitea gave no id we know) by name.
    let works = |r: &Runner| {
        busy_ids.contains(&r.id) || (!busy_names.is_empty() && busy_names.contains(r.name.as_str()))
    };
    let mut machine_of_runner: Vec<Option<usize>> = vec![None; runners.items.len()];
    // Runners known to be another's namesake of one of our pods: their jobs are elsewhere.
    let mut namesake_of_ours: Vec<bool> = vec![false; runners.items.len()];
    let mut homeless: Vec<usize> = Vec::new();
    let mut unmanaged_free = Vec::new();
    // Runners named after a pod on one of our machines, by the pod's index (no second hash):
    // the first in `first_of_pod` (runner index + 1), any more in `more_of_pod`, which stays
    // empty unless names repeat. `on_machines` lists those pods in first-seen order.
    let mut first_of_pod: Vec<u32> = Vec::new();
    let mut more_of_pod: Vec<(usize, usize)> = Vec::new();
    let mut on_machines: Vec<(usize, usize)> = Vec::new();
    for (k, runner) in runners.items.iter().enumerate() {
        let slot = pods.index.get(runner.name.as_str()).copied();
        let home = slot.map(|p| homes[p]);
        if let (Some(p), Some(Home::Machine(i))) = (slot, home) {
            if first_of_pod.is_empty() {
                first_of_pod = vec![0; pods.items.len()];
            }
            if first_of_pod[p] == 0 {
                first_of_pod[p] = u32::try_from(k + 1).unwrap_or(u32::MAX);
                on_machines.push((p, i));
            } else {
                more_of_pod.push((p, k));
            }
            continue;
        }
        if home.is_none() {
            homeless.push(k);
        }
        if runner.online && !runner.disabled && !works(runner) {
            unmanaged_free.push(UnmanagedRunner { runner });
        }
    }
    more_of_pod.sort_unstable();
    // Every runner named after pod `p`, in runner order.
    let of_pod = |p: usize| -> SmallVec<[usize; 2]> {
        let mut ks: SmallVec<[usize; 2]> = SmallVec::new();
        if let Some(&first) = first_of_pod.get(p)
            && first > 0
        {
            ks.push(first as usize - 1);
        }
        if !more_of_pod.is_empty() {
            let from = more_of_pod.partition_point(|&(q, _)| q < p);
            ks.extend(
                more_of_pod[from..]
                    .iter()
                    .take_while(|&&(q, _)| q == p)
                    .map(|&(_, k)| k),
            );
        }
        ks
    };
    // Which of a pod's namesakes is the pod's own: the id recorded on its node, else the only
    // runner of that name. When the recorded one is gone from a complete list (the pod
    // registered again), the one runner of the name that was never seen beside it takes its
    // place; runners recorded as foreign never do, so our own teardown deleting our runner
    // never hands the machine to a namesake.
    let complete_runners = snapshot.runners.is_complete();
    let mut namesakes: Vec<Namesake<'a>> = Vec::new();
    let mut changed: Vec<bool> = vec![false; machines.len()];
    // The pod's own runner per listed pod, for rewriting a changed record.
    let mut own_of_pod: Vec<Option<usize>> = Vec::new();
    for &(p, i) in &on_machines {
        let pod = pods.items[p].name.as_str();
        let ks = &of_pod(p);
        let recorded = machines[i]
            .node_marks
            .runners
            .and_then(|v| keys::recorded_runner(v, pod));
        let id_of = |k: usize| runners.items[k].id;
        let known_foreign = |k: usize| recorded.as_ref().is_some_and(|r| r.is_foreign(id_of(k)));
        let ours = match &recorded {
            Some(r) => ks
                .iter()
                .copied()
                .find(|&k| id_of(k) == r.ours)
                .or_else(|| {
                    let mut fresh = ks.iter().copied().filter(|&k| !known_foreign(k));
                    match (fresh.next(), fresh.next()) {
                        (Some(k), None)
                            if complete_runners && !runners.index.contains_key(&r.ours) =>
                        {
                            Some(k)
                        }
                        _ => None,
                    }
                }),
            None => (ks.len() == 1).then(|| ks[0]),
        };
        let mut unclear = false;
        for &k in ks {
            let runner = runners.items[k];
            match ours {
                Some(o) if o != k => namesake_of_ours[k] = true,
                Some(_) => {
                    machines[i].runners.push(MachineRunner {
                        runner,
                        busy: works(runner),
                    });
                    machine_of_runner[k] = Some(i);
                }
                // Known to be another's: it is not on this machine.
                None if known_foreign(k) => namesake_of_ours[k] = true,
                // Unclear which is the pod's: none counts as capacity, and a job on any of
                // them stays on this machine.
                None => {
                    machine_of_runner[k] = Some(i);
                    unclear = true;
                }
            }
        }
        if unclear {
            machines[i].unclear_pods = machines[i].unclear_pods.saturating_add(1);
        }
        if let Some(o) = ours {
            // The record changes when the pod's own runner or its set of namesakes does.
            let same = recorded.as_ref().is_some_and(|r| {
                r.ours == id_of(o)
                    && r.foreign_count() == (ks.len() - 1).min(keys::MAX_REMEMBERED_NAMESAKES)
                    && ks.iter().all(|&k| k == o || r.is_foreign(id_of(k)))
            });
            if !same {
                changed[i] = true;
                if own_of_pod.is_empty() {
                    own_of_pod = vec![None; pods.items.len()];
                }
            }
        }
        if !own_of_pod.is_empty() {
            own_of_pod[p] = ours;
        }
        if ks.len() > 1 || ours.is_none() {
            let mut rs: SmallVec<[&'a Runner; 2]> = ks.iter().map(|&k| runners.items[k]).collect();
            rs.sort_unstable_by_key(|r| r.id);
            namesakes.push(Namesake {
                machine: machines[i].name,
                pod,
                runners: rs,
                ours: ours.map(id_of),
            });
        }
    }
    namesakes.sort_unstable_by(|a, b| (a.machine, a.pod).cmp(&(b.machine, b.pod)));
    for m in &mut machines {
        m.runners.sort_unstable_by_key(|r| r.runner.id);
    }
    // Rewrite the record of machines whose bindings changed, from every listed pod on them;
    // what is recorded for a pod whose binding is unclear stays as it was.
    if complete_runners && changed.iter().any(|&c| c) {
        let mut bindings: Vec<Vec<keys::RunnerBinding<'a>>> = vec![Vec::new(); machines.len()];
        for &(p, i) in &on_machines {
            if !changed[i] {
                continue;
            }
            let pod = pods.items[p].name.as_str();
            let binding = match own_of_pod.get(p).copied().flatten() {
                Some(o) => {
                    let mut foreign: Vec<u64> = of_pod(p)
                        .iter()
                        .filter(|&&k| k != o)
                        .map(|&k| runners.items[k].id)
                        .collect();
                    foreign.sort_unstable();
                    foreign.truncate(keys::MAX_REMEMBERED_NAMESAKES);
                    Some(keys::RunnerBinding {
                        pod,
                        ours: runners.items[o].id,
                        foreign,
                    })
                }
                None => machines[i]
                    .node_marks
                    .runners
                    .and_then(|v| keys::recorded_runner(v, pod))
                    .map(|r| r.to_binding()),
            };
            bindings[i].extend(binding);
        }
        for ((m, mut bound), changed) in machines.iter_mut().zip(bindings).zip(&changed) {
            if *changed && m.node_owned {
                m.record_runners = Some(keys::runners_value(&mut bound));
            }
        }
    }

    let mut unseen: Vec<UnseenWork<'a>> = Vec::new();
    for (job, runner) in running {
        let machine = match runner {
            Some(k) if namesake_of_ours[k] => Some(Home::Elsewhere),
            Some(k) => machine_of_runner[k].map(Home::Machine).or_else(|| {
                // A runner with a pod elsewhere is not ours; one with no pod may be.
                home_of_pod(runners.items[k].name.as_str())
            }),
            None => job.runner_name.as_deref().and_then(home_of_pod),
        };
        match machine {
            Some(Home::Machine(i)) => {
                let m = &mut machines[i];
                m.jobs += 1;
                if let Some(end) = expected_end(job, snapshot.now) {
                    m.frees_at.push(end);
                }
            }
            Some(Home::Elsewhere) => {}
            None => unseen.push(UnseenWork {
                job,
                runner: runner.map(|k| runners.items[k]),
            }),
        }
    }

    let idle: Vec<&Runner> = homeless
        .into_iter()
        .map(|k| runners.items[k])
        .filter(|r| r.online && !r.disabled && !works(r))
        .collect();
    // Both are empty on a consistent snapshot; the labels are read only when they are not.
    let unplaced = if unseen.is_empty() && idle.is_empty() {
        Unplaced::default()
    } else {
        let ours = OurLabels::of(policy, &machines);
        let mut work: Vec<UnseenWork<'a>> = unseen
            .into_iter()
            .filter(|w| ours.could_serve(&w.job.labels))
            .collect();
        work.sort_unstable_by_key(|w| w.job.id);
        let mut idle: Vec<&Runner> = idle
            .into_iter()
            .filter(|r| ours.shares_a_label(&r.labels))
            .collect();
        idle.sort_unstable_by_key(|r| r.id);
        Unplaced { work, idle }
    };

    Inventory {
        machines,
        unmanaged_free,
        queued,
        duplicates,
        unplaced,
        foreign,
        baking,
        namesakes,
        others: others
            .into_iter()
            .map(|(name, (servers, nodes))| (name, servers, nodes))
            .collect(),
    }
}

/// The labels our machines' runners carry: the pools' label names, and those of every runner
/// seen on a managed machine (in case the configuration and the runners drifted apart).
struct OurLabels<'p> {
    policy: &'p Policy,
    /// Distinct label-name sets of runners on managed machines, sorted.
    seen: Vec<Vec<&'p str>>,
    /// A machine of a pool no longer configured exists: its runners' labels are unknown.
    retired: bool,
}

impl<'p> OurLabels<'p> {
    fn of(policy: &'p Policy, machines: &[Machine<'p>]) -> Self {
        let mut seen: Vec<Vec<&'p str>> = Vec::new();
        for m in machines {
            for r in &m.runners {
                let mut names: Vec<&str> = r.runner.labels.iter().map(|l| label_name(l)).collect();
                names.sort_unstable();
                names.dedup();
                seen.push(names);
            }
        }
        seen.sort_unstable();
        seen.dedup();
        Self {
            policy,
            seen,
            retired: machines
                .iter()
                .any(|m| matches!(m.pool, PoolRef::Unknown(_))),
        }
    }

    /// Gitea could give a job asking for `runs_on` to one of our runners.
    fn could_serve(&self, runs_on: &[String]) -> bool {
        self.retired
            || self
                .policy
                .pools()
                .iter()
                .any(|p| satisfies(&p.label_names, runs_on))
            || self.seen.iter().any(|names| satisfies(names, runs_on))
    }

    /// A runner with `labels` could be one of ours.
    fn shares_a_label(&self, labels: &[String]) -> bool {
        self.retired
            || labels.iter().map(|l| label_name(l)).any(|name| {
                self.policy
                    .pools()
                    .iter()
                    .any(|p| p.label_names.iter().any(|n| n == name))
                    || self.seen.iter().any(|set| set.contains(&name))
            })
    }
}

/// When the job is expected to end, if that is after `now`. A job past its expected end proves
/// the estimate wrong and is not counted on.
fn expected_end(job: &Job, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let (Some(started), Some(expected)) = (job.started, job.expected_duration) else {
        return None;
    };
    // Any instants and any expectation may arrive; the sum saturates instead of panicking.
    let end = time::add(started, expected.max(jiff::SignedDuration::ZERO));
    (end > now).then_some(end)
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
