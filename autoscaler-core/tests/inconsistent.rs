//! Snapshots that are complete but inconsistent: a fleet is built consistent, with running jobs
//! on some machines, then random pods, runners and nodes are dropped from their lists or listed
//! twice, while every list still says it is complete (a relabelled runner DaemonSet, a wrong
//! namespace or scope, a page that shifted). The truth is known from the consistent fleet, so
//! the oracle never reads the core's correlation: no destructive action may touch a machine a
//! running job is on.

use std::collections::{BTreeMap, HashSet};

use autoscaler_core::{
    Action, Config, Job, JobStatus, Node, PodPhase, PoolConfig, Runner, RunnerPod, Server,
    ServerStatus, SignedDuration, Snapshot, Source, Timestamp, WarningKind, decide, keys,
};
use proptest::prelude::*;

const OURS: &str = "default";
const POOL_LABELS: [&str; 2] = ["linux", "ubuntu-latest"];

/// Where a machine is in its life when the snapshot is taken.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Joined, runners online.
    Running,
    /// Teardown begun (label only).
    TeardownBegun,
    /// Teardown begun, runners disabled.
    RunnersDisabled,
    /// Teardown past the runners: cordoned, runners deleted.
    Cordoned,
    /// Node NotReady for long.
    NotReady,
}

#[derive(Debug, Clone)]
struct MachineSpec {
    stage: Stage,
    /// Per runner slot: a job runs on it.
    jobs: Vec<bool>,
    /// Seconds since creation: around the end of the paid hour half of the time.
    age: u16,
    provider_id: bool,
}

#[derive(Debug, Clone)]
struct FleetSpec {
    rpn: u32,
    machines: Vec<MachineSpec>,
    /// Static runners outside the cluster: (has a job, carries the pools' labels).
    statics: Vec<(bool, bool)>,
    queued: u8,
}

/// What is done to the consistent lists, each entry a per-item coin (index modulo length).
#[derive(Debug, Clone)]
struct Damage {
    drop_pods: Vec<bool>,
    drop_all_pods: bool,
    drop_runners: Vec<bool>,
    drop_all_runners: bool,
    drop_nodes: Vec<bool>,
    /// List one item of this source twice, altered: 0 pods, 1 runners, 2 nodes, 3 jobs.
    repeat: Option<(u8, u8)>,
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        5 => Just(Stage::Running),
        1 => Just(Stage::TeardownBegun),
        1 => Just(Stage::RunnersDisabled),
        1 => Just(Stage::Cordoned),
        1 => Just(Stage::NotReady),
    ]
}

fn machine_spec() -> impl Strategy<Value = MachineSpec> {
    (
        stage(),
        prop::collection::vec(prop::bool::weighted(0.35), 3),
        prop_oneof![3300u16..3550, 0u16..7200],
        any::<bool>(),
    )
        .prop_map(|(stage, jobs, age, provider_id)| MachineSpec {
            stage,
            jobs,
            age,
            provider_id,
        })
}

fn fleet_spec() -> impl Strategy<Value = FleetSpec> {
    (
        1u32..4,
        prop::collection::vec(machine_spec(), 1..8),
        prop::collection::vec((any::<bool>(), any::<bool>()), 0..3),
        0u8..4,
    )
        .prop_map(|(rpn, machines, statics, queued)| FleetSpec {
            rpn,
            machines,
            statics,
            queued,
        })
}

fn damage() -> impl Strategy<Value = Damage> {
    let coins = || prop::collection::vec(prop::bool::weighted(0.4), 1..24);
    (
        coins(),
        prop::bool::weighted(0.25),
        coins(),
        prop::bool::weighted(0.15),
        coins(),
        prop::option::weighted(0.2, (0u8..4, any::<u8>())),
    )
        .prop_map(
            |(drop_pods, drop_all_pods, drop_runners, drop_all_runners, drop_nodes, repeat)| {
                Damage {
                    drop_pods,
                    drop_all_pods,
                    drop_runners,
                    drop_all_runners,
                    drop_nodes,
                    repeat,
                }
            },
        )
}

/// The consistent fleet, and what is busy in truth.
struct Truth {
    snapshot: Snapshot,
    busy_servers: HashSet<u64>,
    busy_nodes: HashSet<String>,
    busy_machine_runners: HashSet<u64>,
    /// Server ids of machines that are idle, running and in their teardown window.
    due: Vec<u64>,
    /// Nodes in teardown past their runners' deletion, with no job: next is the drain.
    draining: Vec<String>,
}

fn labels(ours: bool) -> Vec<String> {
    if ours {
        POOL_LABELS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec!["windows".to_owned()]
    }
}

fn build(spec: &FleetSpec) -> (autoscaler_core::Policy, Truth) {
    let now: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");
    let ago = |s: i64| now - SignedDuration::from_secs(s);
    let config = Config {
        installation: OURS.into(),
        max_nodes: 20,
        pools: vec![PoolConfig {
            name: "linux".into(),
            labels: labels(true),
            max_nodes: 20,
            runners_per_node: spec.rpn,
            // The seed's five-minute window: the fleet's "due" machines are 57 minutes old.
            teardown_window: SignedDuration::from_mins(5),
            ..PoolConfig::default()
        }],
        ..Config::default()
    };
    let policy = config.validate().expect("valid");
    let pool_labels = BTreeMap::from([
        (keys::OWNER.to_owned(), OURS.to_owned()),
        (keys::POOL.to_owned(), "linux".to_owned()),
    ]);
    let (mut servers, mut nodes, mut pods, mut runners, mut jobs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut truth = Truth {
        snapshot: Snapshot::new(now),
        busy_servers: HashSet::new(),
        busy_nodes: HashSet::new(),
        busy_machine_runners: HashSet::new(),
        due: Vec::new(),
        draining: Vec::new(),
    };
    let mut next = 100u64;
    let mut id = || {
        next += 1;
        next
    };
    for (i, m) in spec.machines.iter().enumerate() {
        let name = format!("m{i}");
        let server_id = id();
        let created = ago(i64::from(m.age));
        let mut slabels = pool_labels.clone();
        slabels.insert(keys::JOINED.into(), keys::unix_value(created));
        let teardown = !matches!(m.stage, Stage::Running | Stage::NotReady);
        if teardown {
            slabels.insert(keys::TEARDOWN.into(), keys::unix_value(ago(60)));
        }
        servers.push(Server {
            id: server_id,
            name: name.clone(),
            labels: slabels,
            created,
            status: ServerStatus::Running,
            server_type: "cx33".into(),
            location: "nbg1".into(),
        });
        let cordoned = matches!(m.stage, Stage::Cordoned);
        nodes.push(Node {
            name: name.clone(),
            labels: pool_labels.clone(),
            annotations: BTreeMap::from([(keys::IDLE_SINCE.to_owned(), ago(3000).to_string())]),
            ready: !matches!(m.stage, Stage::NotReady),
            ready_since: Some(ago(3000)),
            cordoned,
            provider_id: m.provider_id.then(|| format!("hcloud://{server_id}")),
            created: Some(created),
        });
        let mut busy = false;
        for k in 0..spec.rpn as usize {
            let pod = format!("{name}-runner-{k}");
            pods.push(RunnerPod {
                name: pod.clone(),
                node: Some(name.clone()),
                phase: PodPhase::Running,
            });
            let job = m.jobs[k % m.jobs.len()];
            // Past the runners' deletion, only a runner that registered again has a job.
            if cordoned && !job {
                continue;
            }
            let runner = Runner {
                id: id(),
                name: pod,
                labels: labels(true),
                online: true,
                busy: job,
                disabled: matches!(m.stage, Stage::RunnersDisabled) && !job,
                ephemeral: false,
            };
            if job {
                busy = true;
                truth.busy_machine_runners.insert(runner.id);
                jobs.push(running(id(), &runner, now));
            }
            runners.push(runner);
        }
        if busy {
            truth.busy_servers.insert(server_id);
            truth.busy_nodes.insert(name.clone());
            nodes.last_mut().expect("pushed").annotations.clear();
        } else if matches!(m.stage, Stage::Running) && (3300..=3555).contains(&m.age) {
            truth.due.push(server_id);
        } else if matches!(m.stage, Stage::Cordoned) {
            truth.draining.push(name.clone());
        }
    }
    for (k, (job, ours)) in spec.statics.iter().enumerate() {
        let runner = Runner {
            id: id(),
            name: format!("static-{k}"),
            labels: labels(*ours),
            online: true,
            busy: *job,
            disabled: false,
            ephemeral: false,
        };
        if *job {
            jobs.push(running(id(), &runner, now));
        }
        runners.push(runner);
    }
    for _ in 0..spec.queued {
        jobs.push(Job {
            id: id(),
            labels: vec!["linux".into()],
            status: JobStatus::Queued,
            runner_id: None,
            runner_name: None,
            created: now,
            started: None,
            repo: "acme/app".into(),
            expected_duration: None,
        });
    }
    let s = &mut truth.snapshot;
    s.jobs = Source::complete(jobs);
    s.runners = Source::complete(runners);
    s.servers = Source::complete(servers);
    s.nodes = Source::complete(nodes);
    s.pods = Source::complete(pods);
    (policy, truth)
}

fn running(id: u64, runner: &Runner, now: Timestamp) -> Job {
    Job {
        id,
        labels: vec![runner.labels[0].clone()],
        status: JobStatus::InProgress,
        runner_id: Some(runner.id),
        runner_name: Some(runner.name.clone()),
        created: now,
        started: Some(now - SignedDuration::from_mins(2)),
        repo: "acme/app".into(),
        expected_duration: None,
    }
}

fn items<T: Clone>(s: &Source<T>) -> Vec<T> {
    s.items().to_vec()
}

fn keep<T>(list: Vec<T>, drop: &[bool], all: bool) -> Vec<T> {
    if all {
        return Vec::new();
    }
    list.into_iter()
        .enumerate()
        .filter(|(i, _)| !drop[i % drop.len()])
        .map(|(_, x)| x)
        .collect()
}

/// The damaged snapshot: every list still complete.
fn damaged(truth: &Snapshot, d: &Damage) -> Snapshot {
    let mut s = truth.clone();
    let mut pods = keep(items(&s.pods), &d.drop_pods, d.drop_all_pods);
    let mut runners = keep(items(&s.runners), &d.drop_runners, d.drop_all_runners);
    let mut nodes = keep(items(&s.nodes), &d.drop_nodes, false);
    let mut jobs = items(&s.jobs);
    if let Some((which, k)) = d.repeat {
        let k = usize::from(k);
        match which {
            0 if !pods.is_empty() => {
                let mut p = pods[k % pods.len()].clone();
                p.node = Some("elsewhere".into());
                pods.push(p);
            }
            1 if !runners.is_empty() => {
                let mut r = runners[k % runners.len()].clone();
                r.online = !r.online;
                runners.push(r);
            }
            2 if !nodes.is_empty() => {
                let mut n = nodes[k % nodes.len()].clone();
                n.cordoned = !n.cordoned;
                nodes.push(n);
            }
            _ if !jobs.is_empty() => {
                let mut j = jobs[k % jobs.len()].clone();
                j.status = JobStatus::Queued;
                jobs.push(j);
            }
            _ => {}
        }
    }
    s.pods = Source::complete(pods);
    s.runners = Source::complete(runners);
    s.nodes = Source::complete(nodes);
    s.jobs = Source::complete(jobs);
    s
}

fn runner_of(a: &Action) -> Option<u64> {
    a.runner_id()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn no_destructive_action_touches_a_machine_a_running_job_is_on(spec in fleet_spec(), d in damage()) {
        let (policy, truth) = build(&spec);
        let snapshot = damaged(&truth.snapshot, &d);
        let plan = decide(&policy, &snapshot);
        for a in plan.action_list().filter(|a| a.is_destructive()) {
            if let Some(id) = a.server_id() {
                prop_assert!(!truth.busy_servers.contains(&id), "{a:?}\n{:#?}", plan.warnings);
            }
            if let Some(node) = a.node() {
                prop_assert!(!truth.busy_nodes.contains(node), "{a:?}\n{:#?}", plan.warnings);
            }
            if let Some(id) = runner_of(a) {
                prop_assert!(!truth.busy_machine_runners.contains(&id), "{a:?}");
            }
        }
        // Every message reads as one sentence (no line-continuation slips).
        for text in plan.warnings.iter().map(|w| w.message.as_str())
            .chain(plan.nodes.iter().map(|n| n.reason.as_ref()))
            .chain(plan.actions.iter().map(|a| a.reason.as_ref()))
        {
            prop_assert!(!text.contains("  "), "{text:?}");
        }
        // Holding is never silent: a machine held by a disagreement says so, and so does the plan.
        if plan.nodes.iter().any(|n| n.reason.contains("held:")) {
            prop_assert!(!plan.warnings.is_empty(), "held without a warning: {:#?}", plan.nodes);
        }
    }

    /// The consistent fleet still tears down what is idle in its window: the guards do not
    /// hold everything.
    #[test]
    fn on_consistent_lists_idle_machines_in_their_window_are_torn_down(spec in fleet_spec()) {
        let (policy, truth) = build(&spec);
        let plan = decide(&policy, &truth.snapshot);
        prop_assert!(!plan.has_warning(WarningKind::MassVanish), "{:#?}", plan.warnings);
        prop_assert!(!plan.has_warning(WarningKind::IncompleteData), "{:#?}", plan.warnings);
        // Runners elsewhere (static ones, another cluster's on the same Gitea), even at work,
        // never stall a teardown past its runners: what is missing there, we took away.
        for node in &truth.draining {
            prop_assert!(
                plan.action_list().any(|a| matches!(a, Action::Drain { node: n } if n == node)),
                "{node} is cordoned with its runners deleted: {:?}\n{:#?}", plan.actions, plan.nodes
            );
        }
        if spec.queued == 0 {
            // Static runners, even ones with a job, never keep a machine whose runners are all
            // in view from its teardown.
            for id in &truth.due {
                prop_assert!(
                    plan.action_list().any(|a| matches!(a, Action::BeginTeardown { server_id, .. } if server_id == id)),
                    "server {id} is idle in its window: {:?}\n{:#?}", plan.actions, plan.nodes
                );
            }
        }
    }
}
