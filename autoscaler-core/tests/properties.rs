//! Invariants of the decision over random snapshots, each checked against an oracle computed
//! from the raw snapshot (never from the core's own correlation).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use autoscaler_core::labels::satisfies;
use autoscaler_core::{
    Action, ApiBudget, Config, CreateFailure, CreateFailureKind, ForgeCapabilities, Job, JobStatus,
    Node, PodPhase, Policy, PoolConfig, Runner, RunnerPod, Server, ServerSpec, ServerStatus,
    SignedDuration, Snapshot, Source, Timestamp, decide, keys, period_end,
};
use proptest::prelude::*;

const ALPHABET: [&str; 4] = ["a", "b", "c", "d"];
const OURS: &str = "default";
const OUR_CLUSTER: &str = "our-cluster";

fn mask_labels(mask: u8) -> Vec<String> {
    ALPHABET
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, l)| (*l).to_owned())
        .collect()
}

#[derive(Debug, Clone)]
struct RunnerSpec {
    online: bool,
    disabled: bool,
    busy_flag: bool,
    labels: u8,
    running_job: bool,
    /// The running job's expected duration in seconds, when the shell learned one.
    expected_secs: Option<u16>,
}

#[derive(Debug, Clone)]
struct PodSpec {
    terminal: bool,
    runners: Vec<RunnerSpec>,
}

#[derive(Debug, Clone)]
struct MachineSpec {
    shape: u8,
    pool: u8,
    foreign_server: bool,
    foreign_node: bool,
    status: u8,
    age: u16,
    joined: bool,
    teardown: Option<u16>,
    node_missing: Option<u8>,
    ready: bool,
    not_ready_for: u16,
    cordoned: bool,
    node_age: u16,
    idle_since: Option<u16>,
    garbled: bool,
    drained: bool,
    server_missing: Option<u8>,
    provider_id: bool,
    pods: Vec<PodSpec>,
}

#[derive(Debug, Clone)]
struct PoolSpec {
    labels: u8,
    rpn: u32,
    min: u32,
    max: u32,
    warm: u32,
    idle_secs: i64,
}

#[derive(Debug, Clone)]
struct WorldSpec {
    now_offset: u16,
    pools: Vec<PoolSpec>,
    global_max: u32,
    per_tick: u32,
    machines: Vec<MachineSpec>,
    queued: Vec<(u8, bool)>,
    unmanaged: Vec<RunnerSpec>,
    sources: [u8; 5],
    duplicate: Option<u8>,
    can_disable: bool,
    failures: Vec<(u8, bool, u16)>,
    budget: Option<u16>,
    stray_jobs: u8,
    /// Whether the snapshot names our cluster, and per machine which cluster its server names:
    /// 0 ours, 1 another installation's of the same name, 2 none.
    clusters: (bool, Vec<u8>),
}

fn runner_spec() -> impl Strategy<Value = RunnerSpec> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        1u8..16,
        prop::bool::weighted(0.3),
        prop::option::of(0u16..600),
    )
        .prop_map(
            |(online, disabled, busy_flag, labels, running_job, expected_secs)| RunnerSpec {
                online,
                disabled,
                busy_flag,
                labels,
                running_job,
                expected_secs,
            },
        )
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        prop::bool::weighted(0.1),
        prop::collection::vec(runner_spec(), 0..3),
    )
        .prop_map(|(terminal, runners)| PodSpec { terminal, runners })
}

fn machine_spec() -> impl Strategy<Value = MachineSpec> {
    let a = (
        0u8..3,
        0u8..4,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        0u8..6,
        0u16..7200,
        any::<bool>(),
    );
    let b = (
        prop::option::weighted(0.3, 0u16..4000),
        prop::option::weighted(0.15, 0u8..60),
        prop::bool::weighted(0.85),
        0u16..1200,
        prop::bool::weighted(0.2),
        0u16..7200,
    );
    let c = (
        prop::option::weighted(0.5, 0u16..1800),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.1, 0u8..60),
        any::<bool>(),
        prop::collection::vec(pod_spec(), 0..3),
    );
    (a, b, c).prop_map(
        |(
            (shape, pool, foreign_server, foreign_node, status, age, joined),
            (teardown, node_missing, ready, not_ready_for, cordoned, node_age),
            (idle_since, garbled, drained, server_missing, provider_id, pods),
        )| MachineSpec {
            shape,
            pool,
            foreign_server,
            foreign_node,
            status,
            age,
            joined,
            teardown,
            node_missing,
            ready,
            not_ready_for,
            cordoned,
            node_age,
            idle_since,
            garbled,
            drained,
            server_missing,
            provider_id,
            pods,
        },
    )
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (1u8..16, 1u32..4, 0u32..3, 0u32..7, 0u32..4, 0i64..600).prop_map(
        |(labels, rpn, min, max, warm, idle_secs)| {
            let max = max.max(min);
            PoolSpec {
                labels,
                rpn,
                min,
                max,
                warm: warm.min(max * rpn),
                idle_secs,
            }
        },
    )
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    let a = (
        0u16..7200,
        prop::collection::vec(pool_spec(), 1..4),
        0u32..12,
        1u32..6,
        prop::collection::vec(machine_spec(), 0..10),
        prop::collection::vec((1u8..16, prop::bool::weighted(0.15)), 0..15),
    );
    let b = (
        prop::collection::vec(runner_spec(), 0..3),
        prop::array::uniform5(0u8..10),
        prop::option::weighted(0.05, 0u8..5),
        prop::bool::weighted(0.8),
        prop::collection::vec((0u8..3, any::<bool>(), 0u16..1200), 0..3),
        prop::option::weighted(0.2, 0u16..300),
        0u8..3,
        (
            any::<bool>(),
            prop::collection::vec(
                prop_oneof![6 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8)],
                10,
            ),
        ),
    );
    (a, b).prop_map(
        |(
            (now_offset, pools, global_max, per_tick, machines, queued),
            (unmanaged, sources, duplicate, can_disable, failures, budget, stray_jobs, clusters),
        )| WorldSpec {
            now_offset,
            pools,
            global_max,
            per_tick,
            machines,
            queued,
            unmanaged,
            sources,
            duplicate,
            can_disable,
            failures,
            budget,
            stray_jobs,
            clusters,
        },
    )
}

fn pool_name(i: u8) -> String {
    format!("p{i}")
}

fn build(spec: &WorldSpec) -> (Policy, Snapshot) {
    let base: Timestamp = "2026-11-25T10:00:00Z".parse().expect("ts");
    let now = base + SignedDuration::from_secs(i64::from(spec.now_offset));
    let ago = |s: i64| now - SignedDuration::from_secs(s);
    let config = Config {
        installation: OURS.into(),
        max_nodes: spec.global_max,
        max_creates_per_tick: spec.per_tick,
        pools: spec
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolConfig {
                name: pool_name(i as u8),
                labels: mask_labels(p.labels),
                runners_per_node: p.rpn,
                min_nodes: p.min,
                max_nodes: p.max,
                warm_slots: p.warm,
                idle_timeout: SignedDuration::from_secs(p.idle_secs),
                ..PoolConfig::default()
            })
            .collect(),
        ..Config::default()
    };
    let policy = config.validate().expect("generated configuration is valid");

    let mut servers = Vec::new();
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    let mut runners = Vec::new();
    let mut jobs = Vec::new();
    let mut next_id = 100u64;
    let mut id = || {
        next_id += 1;
        next_id
    };
    for (i, m) in spec.machines.iter().enumerate() {
        let name = format!("m{i}");
        let server_id = id();
        let owner = |foreign: bool| if foreign { "other" } else { OURS };
        let mut labels = BTreeMap::from([
            (keys::OWNER.to_owned(), owner(m.foreign_server).to_owned()),
            (keys::POOL.to_owned(), pool_name(m.pool)),
        ]);
        match spec.clusters.1[i % spec.clusters.1.len()] {
            0 => {
                labels.insert(keys::CLUSTER.into(), OUR_CLUSTER.into());
            }
            1 => {
                labels.insert(keys::CLUSTER.into(), "their-cluster".into());
            }
            _ => {}
        }
        if m.joined {
            labels.insert(
                keys::JOINED.into(),
                keys::unix_value(ago(i64::from(m.age) / 2)),
            );
        }
        if let Some(s) = m.teardown {
            let v = if m.garbled {
                "soon".to_owned()
            } else {
                keys::unix_value(ago(i64::from(s)))
            };
            labels.insert(keys::TEARDOWN.into(), v);
        }
        if let Some(s) = m.node_missing {
            labels.insert(
                keys::NODE_MISSING.into(),
                keys::unix_value(ago(i64::from(s))),
            );
        }
        if m.shape != 2 {
            servers.push(Server {
                id: server_id,
                name: name.clone(),
                labels,
                created: ago(i64::from(m.age)),
                status: match m.status {
                    1 => ServerStatus::Initializing,
                    2 => ServerStatus::Deleting,
                    _ => ServerStatus::Running,
                },
                server_type: "cx33".into(),
                location: "nbg1".into(),
            });
        }
        if m.shape != 1 {
            let mut annotations = BTreeMap::new();
            if let Some(s) = m.idle_since {
                let v = if m.garbled {
                    "a while".to_owned()
                } else {
                    ago(i64::from(s)).to_string()
                };
                annotations.insert(keys::IDLE_SINCE.to_owned(), v);
            }
            if m.drained {
                annotations.insert(keys::DRAINED.to_owned(), now.to_string());
            }
            if let Some(s) = m.server_missing {
                annotations.insert(
                    keys::SERVER_MISSING.to_owned(),
                    ago(i64::from(s)).to_string(),
                );
            }
            nodes.push(Node {
                name: name.clone(),
                labels: BTreeMap::from([
                    (keys::OWNER.to_owned(), owner(m.foreign_node).to_owned()),
                    (keys::POOL.to_owned(), pool_name(m.pool)),
                ]),
                annotations,
                ready: m.ready,
                ready_since: Some(ago(i64::from(m.not_ready_for))),
                cordoned: m.cordoned,
                provider_id: m.provider_id.then(|| format!("hcloud://{server_id}")),
                created: Some(ago(i64::from(m.node_age))),
            });
        }
        // Pods exist even for server-only machines: a node list that lost a node keeps its pods.
        for (k, p) in m.pods.iter().enumerate() {
            let pod_name = format!("{name}-p{k}");
            pods.push(RunnerPod {
                name: pod_name.clone(),
                node: Some(name.clone()),
                phase: if p.terminal {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Running
                },
            });
            for r in &p.runners {
                let runner = make_runner(id(), &pod_name, r);
                if r.running_job {
                    jobs.push(running(id(), &runner, now, r.expected_secs));
                }
                runners.push(runner);
            }
        }
    }
    for (k, r) in spec.unmanaged.iter().enumerate() {
        let runner = make_runner(id(), &format!("static-{k}"), r);
        if r.running_job {
            jobs.push(running(id(), &runner, now, r.expected_secs));
        }
        runners.push(runner);
    }
    for k in 0..spec.stray_jobs {
        // Running jobs naming runners nobody knows (deleted, or on another instance).
        jobs.push(Job {
            id: id(),
            labels: vec![],
            status: JobStatus::InProgress,
            runner_id: Some(9_000 + u64::from(k)),
            runner_name: Some(format!("ghost-{k}")),
            created: now,
            started: Some(now),
            repo: "acme/app".into(),
            expected_duration: None,
        });
    }
    for (mask, odd) in &spec.queued {
        let mut labels = mask_labels(*mask);
        if *odd {
            labels.push("windows".into());
        }
        jobs.push(Job {
            id: id(),
            labels,
            status: JobStatus::Queued,
            runner_id: None,
            runner_name: None,
            created: now,
            started: None,
            repo: "acme/app".into(),
            expected_duration: None,
        });
    }

    let mut snapshot = Snapshot::new(now);
    snapshot.cluster = spec.clusters.0.then(|| OUR_CLUSTER.to_owned());
    snapshot.forge = ForgeCapabilities::read(spec.can_disable);
    snapshot.jobs = source(jobs, spec.sources[0], spec.duplicate == Some(0));
    snapshot.runners = source(runners, spec.sources[1], spec.duplicate == Some(1));
    snapshot.servers = source(servers, spec.sources[2], spec.duplicate == Some(2));
    snapshot.nodes = source(nodes, spec.sources[3], spec.duplicate == Some(3));
    snapshot.pods = source(pods, spec.sources[4], spec.duplicate == Some(4));
    snapshot.create_failures = spec
        .failures
        .iter()
        .map(|(pool, capacity, ago_s)| CreateFailure {
            pool: pool_name(*pool),
            server_type: "ccx33".into(),
            location: "nbg1".into(),
            at: ago(i64::from(*ago_s)),
            kind: if *capacity {
                CreateFailureKind::Capacity
            } else {
                CreateFailureKind::Other
            },
            message: String::new(),
        })
        .collect();
    snapshot.hetzner_budget = spec.budget.map(|r| ApiBudget {
        remaining: u32::from(r),
    });
    (policy, snapshot)
}

fn make_runner(id: u64, name: &str, r: &RunnerSpec) -> Runner {
    Runner {
        id,
        name: name.to_owned(),
        labels: mask_labels(r.labels),
        online: r.online,
        busy: r.busy_flag,
        disabled: r.disabled,
        ephemeral: false,
    }
}

fn running(id: u64, runner: &Runner, now: Timestamp, expected_secs: Option<u16>) -> Job {
    Job {
        id,
        labels: runner.labels.clone(),
        status: JobStatus::InProgress,
        runner_id: Some(runner.id),
        runner_name: Some(runner.name.clone()),
        created: now,
        // Started a minute ago, so some expectations are past, some end soon, some later.
        started: Some(now - SignedDuration::from_mins(1)),
        repo: "acme/app".into(),
        expected_duration: expected_secs.map(|s| SignedDuration::from_secs(i64::from(s))),
    }
}

fn source<T: Clone>(mut items: Vec<T>, how: u8, duplicate: bool) -> Source<T> {
    if duplicate && let Some(first) = items.first().cloned() {
        items.push(first);
    }
    match how {
        0..=7 => Source::complete(items),
        8 => {
            items.truncate(items.len() / 2);
            Source::Partial {
                items,
                reason: "a page failed".into(),
            }
        }
        _ => Source::unavailable("unreachable"),
    }
}

/// Facts computed straight from the raw snapshot.
struct Oracle {
    busy_runner_names: HashSet<String>,
    busy_nodes: HashSet<String>,
    owned_servers: HashMap<u64, Server>,
    owned_nodes: HashSet<String>,
    managed_runner_ids: HashSet<u64>,
    node_of_server: HashMap<u64, Node>,
}

impl Oracle {
    fn of(s: &Snapshot) -> Self {
        let runner_name: HashMap<u64, &str> = s
            .runners
            .items()
            .iter()
            .map(|r| (r.id, r.name.as_str()))
            .collect();
        let mut busy_runner_names = HashSet::new();
        for j in s
            .jobs
            .items()
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
        {
            if let Some(n) = j.runner_id.and_then(|id| runner_name.get(&id)) {
                busy_runner_names.insert((*n).to_owned());
            }
            if let Some(n) = &j.runner_name {
                busy_runner_names.insert(n.clone());
            }
        }
        let busy_nodes = s
            .pods
            .items()
            .iter()
            .filter(|p| busy_runner_names.contains(&p.name))
            .filter_map(|p| p.node.clone())
            .collect();
        // Another installation's servers carry our name but another cluster: not ours.
        let theirs = |x: &Server| {
            s.cluster.as_ref().is_some_and(|c| {
                x.labels
                    .get(keys::CLUSTER)
                    .is_some_and(|theirs| theirs != c)
            })
        };
        let owned_servers: HashMap<u64, Server> = s
            .servers
            .items()
            .iter()
            .filter(|x| x.labels.get(keys::OWNER).map(String::as_str) == Some(OURS))
            .filter(|x| !theirs(x))
            .map(|x| (x.id, x.clone()))
            .collect();
        let owned_nodes: HashSet<String> = s
            .nodes
            .items()
            .iter()
            .filter(|n| n.labels.get(keys::OWNER).map(String::as_str) == Some(OURS))
            .map(|n| n.name.clone())
            .collect();
        let managed_pods: HashSet<&str> = s
            .pods
            .items()
            .iter()
            .filter(|p| p.node.as_ref().is_some_and(|n| owned_nodes.contains(n)))
            .map(|p| p.name.as_str())
            .collect();
        let managed_runner_ids = s
            .runners
            .items()
            .iter()
            .filter(|r| managed_pods.contains(r.name.as_str()))
            .map(|r| r.id)
            .collect();
        let node_of_server = owned_servers
            .values()
            .filter_map(|srv| {
                let by_provider = format!("hcloud://{}", srv.id);
                s.nodes
                    .items()
                    .iter()
                    .find(|n| n.provider_id.as_deref() == Some(by_provider.as_str()))
                    .or_else(|| s.nodes.items().iter().find(|n| n.name == srv.name))
                    .map(|n| (srv.id, n.clone()))
            })
            .collect();
        Self {
            busy_runner_names,
            busy_nodes,
            owned_servers,
            owned_nodes,
            managed_runner_ids,
            node_of_server,
        }
    }

    /// Whether anything on server `id` (its node, or pods bound to its name) has a job.
    fn server_busy(&self, id: u64) -> bool {
        let name = self
            .owned_servers
            .get(&id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let node = self.node_of_server.get(&id).map(|n| n.name.clone());
        self.busy_nodes.contains(&name) || node.is_some_and(|n| self.busy_nodes.contains(&n))
    }
}

fn all_complete(s: &Snapshot) -> bool {
    fn ok<T, K: std::hash::Hash + Eq>(src: &Source<T>, key: impl Fn(&T) -> K) -> bool {
        let mut seen = HashSet::new();
        src.is_complete() && src.items().iter().all(|x| seen.insert(key(x)))
    }
    ok(&s.jobs, |j| j.id)
        && ok(&s.runners, |r| r.id)
        && ok(&s.servers, |x| x.id)
        && ok(&s.nodes, |n| n.name.clone())
        && ok(&s.pods, |p| p.name.clone())
}

fn complete_unique<T, K: std::hash::Hash + Eq>(src: &Source<T>, key: impl Fn(&T) -> K) -> bool {
    let mut seen = HashSet::new();
    src.is_complete() && src.items().iter().all(|x| seen.insert(key(x)))
}

fn creates_by_pool(plan: &autoscaler_core::Plan) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for a in plan.action_list() {
        if let Action::CreateServer(ServerSpec { pool, .. }) = a {
            *out.entry(pool.clone()).or_default() += 1;
        }
    }
    out
}

/// Reverses and rotates every list: the plan must not care.
fn shuffled(s: &Snapshot, k: usize) -> Snapshot {
    fn mix<T: Clone>(src: &Source<T>, k: usize) -> Source<T> {
        let mut items = src.items().to_vec();
        items.reverse();
        if !items.is_empty() {
            let n = items.len();
            items.rotate_left(k % n);
        }
        match src {
            Source::Complete { .. } => Source::complete(items),
            Source::Partial { reason, .. } => Source::Partial {
                items,
                reason: reason.clone(),
            },
            Source::Unavailable { reason } => Source::unavailable(reason.clone()),
        }
    }
    let mut out = s.clone();
    out.jobs = mix(&s.jobs, k);
    out.runners = mix(&s.runners, k + 1);
    out.servers = mix(&s.servers, k + 2);
    out.nodes = mix(&s.nodes, k + 3);
    out.pods = mix(&s.pods, k + 4);
    out.create_failures.reverse();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn the_next_decision_is_never_in_the_past_and_only_for_actions_that_wait_on_it(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let confirm = policy.config().node_missing_confirm;
        let due: Option<Timestamp> = plan
            .action_list()
            .filter_map(|a| a.continues_at(snapshot.now, confirm))
            .min();
        prop_assert_eq!(plan.next_decision, due);
        if let Some(t) = plan.next_decision {
            prop_assert!(t >= snapshot.now);
        }
    }

    #[test]
    fn a_runner_whose_name_others_share_is_touched_only_when_recorded_as_the_pods_own(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for r in snapshot.runners.items() {
            *by_name.entry(r.name.as_str()).or_default() += 1;
        }
        let recorded: Vec<&String> = snapshot.nodes.items().iter()
            .filter_map(|n| n.annotations.get(keys::RUNNERS))
            .collect();
        for a in plan.action_list() {
            let Some(id) = a.runner_id() else { continue };
            let Some(r) = snapshot.runners.items().iter().find(|r| r.id == id) else { continue };
            if by_name[r.name.as_str()] > 1 {
                let own = format!("{}={id}", r.name);
                prop_assert!(
                    recorded.iter().any(|v| v.split(',').any(|p| p == own || p.starts_with(&format!("{own};")))),
                    "{a:?} touches a runner that shares its name, not recorded as the pod's"
                );
            }
        }
    }

    #[test]
    fn no_teardown_action_touches_a_busy_node_or_a_runner_with_a_job(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let o = Oracle::of(&snapshot);
        for a in plan.action_list() {
            match a {
                Action::DisableRunner { runner_name, .. } | Action::DeleteRunner { runner_name, .. } => {
                    prop_assert!(!o.busy_runner_names.contains(runner_name), "{a:?}");
                }
                Action::Cordon { node } | Action::Drain { node } | Action::DeleteNode { node } => {
                    prop_assert!(!o.busy_nodes.contains(node), "{a:?}");
                }
                Action::BeginTeardown { server_id, .. }
                | Action::MarkNodeMissing { server_id, .. }
                | Action::DeleteServer { server_id, .. } => {
                    prop_assert!(!o.server_busy(*server_id), "{a:?}");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn never_above_a_maximum(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let o = Oracle::of(&snapshot);
        let by_pool = creates_by_pool(&plan);
        let creates: u32 = by_pool.values().sum();
        if creates > 0 {
            prop_assert!(o.owned_servers.len() as u32 + creates <= policy.config().max_nodes);
            prop_assert!(creates <= policy.config().max_creates_per_tick);
        }
        for (pool, n) in by_pool {
            let cfg = policy.config().pools.iter().find(|p| p.name == pool).expect("configured pool");
            let existing = o.owned_servers.values().filter(|s| s.labels.get(keys::POOL) == Some(&pool)).count() as u32;
            prop_assert!(existing + n <= cfg.max_nodes, "pool {pool}: {existing} + {n} > {}", cfg.max_nodes);
        }
    }

    #[test]
    fn fail_static_on_missing_data(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        if !all_complete(&snapshot) {
            prop_assert!(!plan.action_list().any(Action::is_destructive), "{:?}", plan.actions);
            prop_assert!(plan.action_list().all(is_create), "only creates may remain");
        }
        let creates_ok = complete_unique(&snapshot.jobs, |j| j.id) && complete_unique(&snapshot.servers, |s| s.id);
        if !creates_ok {
            prop_assert!(!plan.action_list().any(is_create), "no creates");
        }
    }

    #[test]
    fn only_own_resources_are_touched(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let o = Oracle::of(&snapshot);
        for a in plan.action_list() {
            if let Some(id) = a.server_id() {
                prop_assert!(o.owned_servers.contains_key(&id), "{a:?}");
            }
            if let Some(node) = a.node() {
                prop_assert!(o.owned_nodes.contains(node), "{a:?}");
            }
            if let Some(id) = a.runner_id() {
                prop_assert!(o.managed_runner_ids.contains(&id), "{a:?}");
            }
            if let Action::CreateServer(ServerSpec { labels, node_labels, .. }) = a {
                prop_assert_eq!(labels.get(keys::OWNER).map(String::as_str), Some(OURS));
                prop_assert_eq!(node_labels.get(keys::OWNER).map(String::as_str), Some(OURS));
            }
        }
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order(spec in world_spec(), k in 0usize..7) {
        let (policy, snapshot) = build(&spec);
        let a = decide(&policy, &snapshot);
        let b = decide(&policy, &shuffled(&snapshot, k));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, decide(&policy, &snapshot), "same input, same plan");
    }

    #[test]
    fn idle_teardown_only_in_the_billing_window(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let o = Oracle::of(&snapshot);
        for a in plan.action_list() {
            let Action::BeginTeardown { server_id, .. } = a else { continue };
            let server = &o.owned_servers[server_id];
            let Some(node) = o.node_of_server.get(server_id) else { continue };
            let has_online_runner = snapshot.pods.items().iter()
                .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
                .any(|p| snapshot.runners.items().iter().any(|r| r.name == p.name && r.online));
            if !node.ready || !has_online_runner {
                continue; // a fault (NotReady, no runner): retired at once by design
            }
            let pool = policy.config().pools.iter()
                .find(|p| Some(&p.name) == server.labels.get(keys::POOL))
                .cloned()
                .unwrap_or_default();
            let end = period_end(server.created, snapshot.now, pool.billing_period);
            prop_assert!(snapshot.now >= end - pool.teardown_window, "{a:?} before the window");
            prop_assert!(snapshot.now <= end - pool.teardown_lead, "{a:?} after the window");
        }
    }

    #[test]
    fn no_servers_for_jobs_no_pool_serves(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let pools = &policy.config().pools;
        let mut served: HashMap<String, u32> = HashMap::new();
        for j in snapshot.jobs.items().iter().filter(|j| j.status == JobStatus::Queued) {
            if let Some(p) = pools.iter().find(|p| satisfies(&p.labels, &j.labels)) {
                *served.entry(p.name.clone()).or_default() += 1;
            }
        }
        for (pool, n) in creates_by_pool(&plan) {
            let cfg = pools.iter().find(|p| p.name == pool).expect("configured");
            let warm = cfg.warm_schedule.iter().map(|w| w.slots).chain([cfg.warm_slots]).max().unwrap_or(0);
            let slots = served.get(&pool).copied().unwrap_or(0) + warm;
            let bound = slots.div_ceil(cfg.runners_per_node) + cfg.min_nodes;
            prop_assert!(n <= bound, "pool {pool}: {n} creates for {slots} slots, min {}", cfg.min_nodes);
        }
        if snapshot.jobs.items().iter().all(|j| j.status != JobStatus::Queued || !pools.iter().any(|p| satisfies(&p.labels, &j.labels)))
            && pools.iter().all(|p| p.min_nodes == 0 && p.warm_slots == 0)
        {
            prop_assert!(!plan.action_list().any(is_create), "no creates");
        }
    }

    #[test]
    fn every_message_reads_as_one_sentence(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        for text in plan.warnings.iter().map(|w| w.message.as_str())
            .chain(plan.nodes.iter().map(|n| n.reason.as_ref()))
            .chain(plan.actions.iter().map(|a| a.reason.as_ref()))
        {
            prop_assert!(!text.contains("  ") && !text.contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn at_most_one_label_write_per_server_and_the_plan_reads_back(spec in world_spec()) {
        let (policy, snapshot) = build(&spec);
        let plan = decide(&policy, &snapshot);
        let mut writes: HashMap<u64, u32> = HashMap::new();
        for a in plan.action_list() {
            if a.writes_server_labels() {
                *writes.entry(a.server_id().expect("server action")).or_default() += 1;
            }
        }
        prop_assert!(writes.values().all(|n| *n == 1), "{:?}", plan.actions);
        let text = serde_json::to_string(&plan).expect("serializes");
        let back: autoscaler_core::Plan = serde_json::from_str(&text).expect("parses");
        prop_assert_eq!(back, plan);
    }
}

/// One random event between ticks of a multi-tick run.
#[derive(Debug, Clone)]
enum Event {
    Wait(u16),
    Queue(u8),
    Assign,
    Finish(u8),
    /// The node list comes back empty (and complete) for one tick.
    EmptyNodeList,
    /// The runner-pod list comes back empty (and complete) for one tick: a relabelled DaemonSet.
    EmptyPodList,
    /// The runner list comes back empty (and complete) for one tick: the wrong Gitea scope.
    EmptyRunnerList,
    /// The daemon dies halfway through a plan.
    Crash,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (1u16..120).prop_map(Event::Wait),
        3 => (1u8..4).prop_map(Event::Queue),
        3 => Just(Event::Assign),
        2 => (0u8..8).prop_map(Event::Finish),
        1 => Just(Event::EmptyNodeList),
        1 => Just(Event::EmptyPodList),
        1 => Just(Event::EmptyRunnerList),
        1 => Just(Event::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Over many ticks with jobs arriving, being assigned in races, node-, pod- and runner-list
    /// glitches (each list complete but empty), crashes and time passing, no job ever loses its
    /// runner and the maximum always holds.
    #[test]
    fn no_job_is_ever_killed_over_many_ticks(events in prop::collection::vec(event(), 1..120), machines in 0usize..5) {
        let mut config = common::config(&["a", "b"]);
        config.max_nodes = 6;
        config.pools[0].max_nodes = 6;
        let mut w = common::World::new(config);
        for i in 0..machines {
            w.machine("linux", &format!("m{i}"), common::mins(40 + 4 * i as i64));
        }
        for e in events {
            w.join_booted(common::secs(60));
            match e {
                Event::Wait(s) => w.advance(common::secs(i64::from(s))),
                Event::Queue(n) => {
                    for _ in 0..n {
                        w.queue(&["a"]);
                    }
                }
                Event::Assign => w.assign_waiting(),
                Event::Finish(k) => {
                    let running: Vec<u64> = w.running().iter().map(|j| j.id).collect();
                    if !running.is_empty() {
                        w.finish(running[k as usize % running.len()]);
                    }
                }
                Event::EmptyNodeList | Event::EmptyPodList | Event::EmptyRunnerList => {
                    let mut glitch = w.truth.clone();
                    if matches!(e, Event::EmptyNodeList) {
                        glitch.nodes = Source::complete(vec![]);
                    }
                    if !matches!(e, Event::EmptyRunnerList) {
                        glitch.pods = Source::complete(vec![]);
                    } else {
                        glitch.runners = Source::complete(vec![]);
                    }
                    let plan = decide(&w.policy, &glitch);
                    let actions: Vec<Action> = plan.action_list().cloned().collect();
                    w.apply(&actions);
                }
                Event::Crash => {
                    let actions: Vec<Action> = w.decide().action_list().cloned().collect();
                    w.apply(&actions[..actions.len() / 2]);
                }
            }
            // The race: the plan is decided, Gitea assigns jobs, then the plan is carried out.
            let plan = w.decide();
            w.assign_waiting();
            let actions: Vec<Action> = plan.action_list().cloned().collect();
            w.apply(&actions);
            prop_assert!(w.killed.is_empty(), "killed {:?} after {:?}", w.killed, kinds_of(&actions));
            prop_assert!(w.truth.servers.items().len() <= 6);
            w.advance(common::secs(5));
        }
    }
}

fn is_create(a: &Action) -> bool {
    matches!(a, Action::CreateServer { .. })
}

fn kinds_of(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::kind).collect()
}
