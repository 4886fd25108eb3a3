//! Destroy only on positive evidence: one test per way a complete but inconsistent snapshot
//! once tore down a busy node or crashed the decision (the classes of the safety issue).

mod common;

use autoscaler_core::{
    Action, JobStatus, NodeState, Plan, PodPhase, ServerSpec, SignedDuration, Snapshot, Source,
    TeardownStep, Timestamp, WarningKind, decide,
};
use common::*;

fn world() -> World {
    World::new(config(&["ubuntu-latest:docker://node:20", "linux"]))
}

/// `n` idle machines `m0…` a minute past their window's opening, and jobs on the first `busy`.
fn fleet(n: usize, busy: usize) -> World {
    let mut w = world();
    for i in 0..n {
        let name = format!("m{i}");
        w.machine("linux", &name, mins(57));
        w.idle_for(&name, mins(10));
    }
    for i in 0..busy {
        let runner = w.runners_of(&format!("m{i}"))[0].name.clone();
        w.start_on(&runner);
    }
    w
}

fn without_pods(truth: &Snapshot) -> Snapshot {
    let mut s = truth.clone();
    s.pods = Source::complete(vec![]);
    s
}

fn assert_warns(plan: &Plan, kind: WarningKind) {
    assert!(plan.has_warning(kind), "{:#?}", plan.warnings);
}

/// No destructive action targets the machine `name` (its server, node or runners).
fn untouched(w: &World, plan: &Plan, name: &str) {
    let server = w.server(name).map(|s| s.id);
    let runners: Vec<u64> = w.runners_of(name).iter().map(|r| r.id).collect();
    for a in plan.action_list().filter(|a| a.is_destructive()) {
        assert!(a.server_id().is_none() || a.server_id() != server, "{a:?}");
        assert!(a.node() != Some(name), "{a:?}");
        assert!(
            a.runner_id().is_none_or(|id| !runners.contains(&id)),
            "{a:?}"
        );
    }
}

fn no_destructive(plan: &Plan) {
    let bad: Vec<&Action> = plan.action_list().filter(|a| a.is_destructive()).collect();
    assert!(bad.is_empty(), "{bad:?}\n{:#?}", plan.warnings);
}

/// Decides on `glitch` and applies the plan to the world's truth, `ticks` times.
fn run_glitched(w: &mut World, ticks: usize, glitch: impl Fn(&Snapshot) -> Snapshot) {
    for _ in 0..ticks {
        let plan = decide(&w.policy, &glitch(&w.truth));
        let actions: Vec<Action> = plan.action_list().cloned().collect();
        w.apply(&actions);
        w.advance(secs(5));
    }
}

// --- 1. Runner pods missing from a complete pod list -----------------------------------------

#[test]
fn an_empty_pod_list_while_runners_run_jobs_tears_nothing_down() {
    let mut w = fleet(3, 2);
    w.advance(mins(10));
    let plan = decide(&w.policy, &without_pods(&w.truth));
    no_destructive(&plan);
    assert_warns(&plan, WarningKind::ListsDisagree);
    assert_warns(&plan, WarningKind::MassVanish);
    assert_eq!(state_of(&plan, "m2"), NodeState::NoRunner);
    assert!(
        reason_of(&plan, "m2").contains("held:"),
        "{}",
        reason_of(&plan, "m2")
    );
    // Ten ticks of the same broken list, every plan carried out: no job is lost.
    run_glitched(&mut w, 10, without_pods);
    assert!(w.killed.is_empty(), "{:?}", w.killed);
    assert_eq!(w.truth.servers.items().len(), 3);
}

#[test]
fn a_single_node_whose_pods_vanished_while_its_runner_works_is_kept() {
    // One machine: no mass to notice; the job on a runner no machine shows is the evidence.
    let mut w = fleet(1, 1);
    w.advance(mins(10));
    run_glitched(&mut w, 10, without_pods);
    assert!(w.killed.is_empty(), "{:?}", w.killed);
    assert!(
        !w.applied.iter().any(Action::is_destructive),
        "{:?}",
        w.applied
    );
}

#[test]
fn an_idle_runner_without_a_pod_keeps_a_node_without_pods() {
    // Nobody works, but an online runner of ours has no pod: it may be this node's, and a job
    // could land on it before the node goes.
    let mut w = fleet(1, 0);
    w.advance(mins(10));
    let plan = decide(&w.policy, &without_pods(&w.truth));
    no_destructive(&plan);
    assert_warns(&plan, WarningKind::ListsDisagree);
    assert!(
        plan.warnings
            .iter()
            .any(|x| x.message.contains("have no runner pod listed")),
        "{:#?}",
        plan.warnings
    );
}

#[test]
fn most_nodes_losing_their_runners_at_once_is_not_believed() {
    // Gitea restarted: every runner shows offline for a minute.
    let mut w = fleet(4, 0);
    w.advance(mins(10));
    for r in items_mut(&mut w.truth.runners) {
        r.online = false;
    }
    let plan = w.decide();
    no_destructive(&plan);
    assert!(
        plan.warnings
            .iter()
            .any(|x| x.kind == WarningKind::MassVanish && x.message.contains("no online runner")),
        "{:#?}",
        plan.warnings
    );
    // One node of four losing its runner is a fault and is retired.
    for r in items_mut(&mut w.truth.runners).iter_mut().skip(1) {
        r.online = true;
    }
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m0"), NodeState::NoRunner);
    assert!(
        plan.action_list()
            .any(|a| matches!(a, Action::BeginTeardown { .. })),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn a_teardown_under_way_stops_when_its_runner_pods_vanish_while_a_job_runs() {
    // m0 is being torn down (runners disabled); m1 runs a job. Then the pod list comes back
    // empty: m0 would be cordoned and drained on "no runners left", with m1's job on a runner
    // no machine shows.
    let mut w = fleet(2, 1);
    w.advance(mins(1));
    let plan = w.step();
    assert!(
        kinds(&plan).contains(&"begin_teardown"),
        "{:?}",
        kinds(&plan)
    );
    w.advance(secs(5));
    w.step();
    let plan = w.decide();
    assert_eq!(
        state_of(&plan, "m1"),
        NodeState::Teardown {
            step: TeardownStep::DeleteRunners
        },
        "{:?}",
        kinds(&plan)
    );
    let plan = decide(&w.policy, &without_pods(&w.truth));
    no_destructive(&plan);
    assert_eq!(
        state_of(&plan, "m1"),
        NodeState::Teardown {
            step: TeardownStep::Held
        }
    );
}

#[test]
fn another_clusters_runners_at_work_do_not_stall_a_teardown() {
    // Two installations share one Gitea: the other's runners carry our labels, have no pod in
    // our cluster and run jobs the whole time. Our idle machine is still torn down in its window.
    let mut w = fleet(1, 0);
    items_mut(&mut w.truth.runners).push(autoscaler_core::synthetic::runner(
        9_001,
        "other-cluster-runner",
        &["linux".to_owned(), "ubuntu-latest".to_owned()],
    ));
    w.start_on("other-cluster-runner");
    let server = w.server("m0").map(|s| s.id);
    for _ in 0..20 {
        w.step();
        w.advance(secs(2));
    }
    assert!(w.killed.is_empty(), "{:?}", w.killed);
    assert!(
        w.applied.iter().any(
            |a| matches!(a, Action::DeleteServer { server_id, .. } if Some(*server_id) == server)
        ),
        "{:?}",
        w.applied.iter().map(Action::kind).collect::<Vec<_>>()
    );
}

// --- 2. A running job naming a runner the complete runner list lacks ------------------------

#[test]
fn a_job_on_a_runner_the_list_lacks_holds_the_nodes_that_could_host_it() {
    let mut w = fleet(2, 1);
    let runner = w.runners_of("m0")[0].clone();
    // The runner list lost m0's runner; its job names it by id only.
    items_mut(&mut w.truth.runners).retain(|r| r.id != runner.id);
    for j in items_mut(&mut w.truth.jobs) {
        j.runner_name = None;
    }
    let plan = w.decide();
    untouched(&w, &plan, "m0");
    assert_eq!(state_of(&plan, "m0"), NodeState::NoRunner);
    assert!(
        plan.warnings
            .iter()
            .any(|x| x.kind == WarningKind::ListsDisagree
                && x.message.contains("not in the runner list")),
        "{:#?}",
        plan.warnings
    );
    assert!(
        reason_of(&plan, "m0").contains("held:"),
        "{}",
        reason_of(&plan, "m0")
    );
    // m1's runner pod and runner are both in view and idle, and m1 has room for no other
    // runner pod: the job cannot be there, and m1 is torn down as usual.
    let m1 = w.server("m1").map(|s| s.id);
    assert!(
        plan.action_list().any(
            |a| matches!(a, Action::BeginTeardown { server_id, .. } if Some(*server_id) == m1)
        ),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn a_job_naming_its_runner_by_pod_name_keeps_the_node_busy() {
    let mut w = fleet(1, 1);
    let runner = w.runners_of("m0")[0].clone();
    items_mut(&mut w.truth.runners).retain(|r| r.id != runner.id);
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m0"), NodeState::Busy { jobs: 1 });
    no_destructive(&plan);
}

// --- 3. Correlation order --------------------------------------------------------------------

#[test]
fn a_name_match_never_takes_a_node_whose_provider_id_names_another_server() {
    // Server x (older id) and server y. Node x runs a job and says it is server y's.
    // Claimed by name, x takes node x; y looks node-less and would be deleted with the job.
    let mut w = world();
    let x = w.machine("linux", "x", mins(30));
    let y = w.machine("linux", "y", mins(30));
    assert!(x < y);
    w.node_mut("x").provider_id = Some(format!("hcloud://{y}"));
    items_mut(&mut w.truth.nodes).retain(|n| n.name != "y");
    items_mut(&mut w.truth.pods).retain(|p| p.node.as_deref() != Some("y"));
    let runner = w.runners_of("x")[0].name.clone();
    w.start_on(&runner);
    for _ in 0..6 {
        let plan = w.step();
        no_destructive(&plan);
        assert_eq!(state_of(&plan, "x"), NodeState::IdentityConflict);
        assert_eq!(state_of(&plan, "y"), NodeState::IdentityConflict);
        assert!(plan.has_warning(WarningKind::IdentityConflict));
        w.advance(secs(20));
    }
    assert!(w.killed.is_empty());
}

#[test]
fn exact_provider_ids_pair_first_and_names_only_among_the_rest() {
    // Node b carries a's id and node a carries b's: the provider ids are exact, the names are
    // crossed, and the two disagree: nothing is torn down.
    let mut w = world();
    let a = w.machine("linux", "a", mins(57));
    let b = w.machine("linux", "b", mins(57));
    w.node_mut("a").provider_id = Some(format!("hcloud://{b}"));
    w.node_mut("b").provider_id = Some(format!("hcloud://{a}"));
    let plan = w.decide();
    no_destructive(&plan);
    // With provider ids and names agreeing, they pair.
    w.node_mut("a").provider_id = Some(format!("hcloud://{a}"));
    w.node_mut("b").provider_id = Some(format!("hcloud://{b}"));
    let plan = w.decide();
    assert!(matches!(state_of(&plan, "a"), NodeState::Idle { .. }));
    assert!(matches!(state_of(&plan, "b"), NodeState::Idle { .. }));
}

// --- 4. Job labels cut at `:` ------------------------------------------------------------------

#[test]
fn a_job_label_with_a_colon_is_unservable_and_never_buys_or_keeps_a_server() {
    // The pool's runners register `ubuntu-latest:docker://node:20`: their label *name* is
    // `ubuntu-latest`. Gitea never gives them a job asking for the whole string.
    let mut w = world();
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(10));
    let job = w.queue(&["ubuntu-latest:docker://node:20"]);
    let plan = w.decide();
    assert_eq!(
        plan.unservable.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![job]
    );
    assert!(
        !kinds(&plan).contains(&"create_server"),
        "{:?}",
        kinds(&plan)
    );
    assert!(
        kinds(&plan).contains(&"begin_teardown"),
        "the idle node is not kept for it"
    );
    assert!(plan.has_warning(WarningKind::UnservableJobs));
}

// --- 5. Panics instead of errors -------------------------------------------------------------

#[test]
fn instants_at_the_ends_of_time_and_absurd_durations_decide_without_panicking() {
    let mut w = world();
    w.machine("linux", "m1", mins(30));
    let runner = w.runners_of("m1")[0].name.clone();
    w.start_on(&runner);
    w.queue(&["linux"]);
    for (now, created, expected) in [
        (Timestamp::MAX, Timestamp::MIN, SignedDuration::MAX),
        (Timestamp::MIN, Timestamp::MAX, SignedDuration::MIN),
        (Timestamp::MAX, Timestamp::MAX, SignedDuration::MIN),
    ] {
        let mut s = w.truth.clone();
        s.now = now;
        for x in items_mut(&mut s.servers) {
            x.created = created;
        }
        for j in items_mut(&mut s.jobs) {
            j.expected_duration = Some(expected);
            j.started = Some(created);
        }
        let plan = decide(&w.policy, &s);
        let _ = plan.to_string();
    }
}

// --- 6. Order dependence ---------------------------------------------------------------------

#[test]
fn an_item_listed_twice_with_different_content_gives_one_plan_in_any_order() {
    let mut w = fleet(2, 0);
    w.queue(&["linux"]);
    w.queue(&["linux"]);
    // The same pod twice, bound to two nodes; the same job queued and running.
    let mut pod = w.truth.pods.items()[0].clone();
    pod.node = Some("m1".into());
    items_mut(&mut w.truth.pods).push(pod);
    let mut job = w.truth.jobs.items()[0].clone();
    job.status = JobStatus::InProgress;
    items_mut(&mut w.truth.jobs).push(job);
    let a = w.decide();
    let mut reversed = w.truth.clone();
    items_mut(&mut reversed.pods).reverse();
    items_mut(&mut reversed.jobs).reverse();
    let b = decide(&w.policy, &reversed);
    assert_eq!(a, b);
    no_destructive(&a);
    assert!(
        !kinds(&a).contains(&"create_server"),
        "a job list that repeats an id is incomplete for creates too"
    );
}

#[test]
fn a_finished_pod_and_its_runner_do_not_make_a_node_look_short() {
    // A Succeeded pod left behind by a rollout is not a runner pod the node lacks.
    let mut w = fleet(1, 0);
    items_mut(&mut w.truth.pods).push(autoscaler_core::RunnerPod {
        name: "old-runner".into(),
        node: Some("m0".into()),
        phase: PodPhase::Succeeded,
    });
    let plan = w.decide();
    assert!(
        kinds(&plan).contains(&"begin_teardown"),
        "{:?}",
        kinds(&plan)
    );
}

// --- Ownership: another installation of the same name in the same Hetzner project ------------

fn with_cluster(mut w: World) -> World {
    w.truth.cluster = Some("our-cluster".into());
    w
}

#[test]
fn a_namesake_installations_servers_are_never_touched() {
    // Both installations are called `default`. Theirs has a joined server whose node is in
    // their cluster, so ours sees it node-less: before cluster identities it was marked and
    // deleted 15 s later.
    let mut w = with_cluster(world());
    let theirs = w.machine("linux", "theirs-1", mins(30));
    w.server_mut("theirs-1").labels.insert(
        autoscaler_core::keys::CLUSTER.into(),
        "their-cluster".into(),
    );
    items_mut(&mut w.truth.nodes).retain(|n| n.name != "theirs-1");
    items_mut(&mut w.truth.pods).retain(|p| p.node.as_deref() != Some("theirs-1"));
    for r in items_mut(&mut w.truth.runners) {
        r.online = false;
    }
    for _ in 0..6 {
        let plan = w.step();
        assert!(
            plan.action_list().all(|a| a.server_id() != Some(theirs)),
            "{:?}",
            kinds(&plan)
        );
        assert_warns(&plan, WarningKind::ForeignCluster);
        assert!(
            plan.nodes.iter().all(|n| n.name != "theirs-1"),
            "not ours to report"
        );
        w.advance(secs(20));
    }
    assert!(w.server("theirs-1").is_some());
}

#[test]
fn a_server_without_a_cluster_identity_is_adopted_when_its_node_is_here() {
    let mut w = with_cluster(world());
    let id = w.machine("linux", "m1", mins(20));
    let plan = w.step();
    assert!(
        plan.action_list().any(|a| matches!(a,
            Action::RecordCluster { server_id, cluster } if *server_id == id && cluster == "our-cluster")),
        "{:?}",
        kinds(&plan)
    );
    assert_eq!(
        w.server("m1")
            .and_then(|s| s.labels.get(autoscaler_core::keys::CLUSTER))
            .map(String::as_str),
        Some("our-cluster")
    );
    assert!(!kinds(&w.step()).contains(&"record_cluster"), "once");
}

#[test]
fn a_server_without_a_cluster_identity_and_no_node_here_is_held() {
    let mut w = with_cluster(world());
    w.machine("linux", "stray", mins(30));
    items_mut(&mut w.truth.nodes).clear();
    items_mut(&mut w.truth.pods).clear();
    for r in items_mut(&mut w.truth.runners) {
        r.online = false;
    }
    for _ in 0..4 {
        let plan = w.step();
        no_destructive(&plan);
        assert_warns(&plan, WarningKind::ForeignCluster);
        assert!(
            reason_of(&plan, "stray").contains("held:"),
            "{}",
            reason_of(&plan, "stray")
        );
        w.advance(secs(20));
    }
}

#[test]
fn new_servers_name_the_cluster_they_join() {
    let mut w = with_cluster(world());
    w.queue(&["linux"]);
    let plan = w.decide();
    let Some(Action::CreateServer(ServerSpec {
        labels,
        node_labels,
        ..
    })) = plan.action_list().next()
    else {
        panic!("a create: {:?}", kinds(&plan));
    };
    assert_eq!(
        labels
            .get(autoscaler_core::keys::CLUSTER)
            .map(String::as_str),
        Some("our-cluster")
    );
    assert!(!node_labels.contains_key(autoscaler_core::keys::CLUSTER));
}
