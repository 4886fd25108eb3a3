//! One test per rule of the decision, through the public API.

mod common;

use autoscaler_core::{
    Action, ApiBudget, CreateFailure, CreateFailureKind, ForgeCapabilities, JobStatus, NodeState,
    PoolConfig, ServerSpec, SignedDuration, Snapshot, Source, TeardownStep, WarningKind, keys,
    synthetic,
};
use common::*;

fn default_world() -> World {
    World::new(config(&["ubuntu-latest:docker://node:20", "linux"]))
}

/// A world with one idle machine `m1` created `age` ago and idle since `idle` ago.
fn one_idle(age: i64, idle: i64) -> World {
    let mut w = default_world();
    w.machine("linux", "m1", mins(age));
    w.idle_for("m1", mins(idle));
    w
}

/// The plan changes nothing, and `name`'s reason says why.
fn assert_kept(plan: &autoscaler_core::Plan, name: &str, why: &str) {
    assert!(plan.actions.is_empty(), "{:?}", kinds(plan));
    assert!(
        reason_of(plan, name).contains(why),
        "{}",
        reason_of(plan, name)
    );
}

/// Five decisions a minute apart change nothing, and `name`'s reason says why.
fn assert_held(w: &mut World, name: &str, why: &str) {
    for _ in 0..5 {
        let plan = w.step();
        assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
        assert!(
            reason_of(&plan, name).contains(why),
            "{}",
            reason_of(&plan, name)
        );
        w.advance(mins(1));
    }
}

// --- Scale down and the billing window -------------------------------------------------------

#[test]
fn an_idle_node_in_its_window_starts_teardown() {
    let w = one_idle(57, 10);
    let plan = w.decide();
    assert_eq!(kinds(&plan), vec!["begin_teardown"]);
    assert!(
        plan.actions[0].reason.contains("paid period"),
        "{}",
        plan.actions[0].reason
    );
}

#[test]
fn an_idle_node_before_its_window_is_kept_for_reuse() {
    let w = one_idle(30, 10);
    let plan = w.decide();
    assert_kept(&plan, "m1", "teardown window opens");
}

#[test]
fn too_late_in_the_period_the_node_is_kept_for_the_next() {
    // 30 s before the period ends, less than teardown_lead (45 s).
    let mut w = default_world();
    w.machine("linux", "m1", secs(59 * 60 + 30));
    w.idle_for("m1", mins(10));
    let plan = w.decide();
    assert_kept(&plan, "m1", "too late");
}

/// A world whose pool keeps idle nodes for at least five minutes (the seed's idle timeout).
fn with_idle_minimum() -> World {
    let mut c = config(&["ubuntu-latest:docker://node:20", "linux"]);
    c.pools[0].idle_timeout = mins(5);
    World::new(c)
}

#[test]
fn idle_shorter_than_a_configured_idle_minimum_is_kept_and_woken_for() {
    let mut w = with_idle_minimum();
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(2));
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    // The next decision is due when the minimum is reached, inside the window.
    assert_eq!(plan.wake_at, Some(w.now() + mins(3)));
}

#[test]
fn by_default_a_node_idle_for_moments_goes_at_its_window() {
    // A job ended seconds ago; the period is paid to its end either way, and keeping the node
    // past it would pay a whole new one.
    let mut w = default_world();
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", secs(5));
    assert_eq!(kinds(&w.decide()), vec!["begin_teardown"]);
}

#[test]
fn by_default_the_call_is_made_in_the_last_90_seconds() {
    let mut w = World::new(autoscaler_core::Config {
        pools: vec![PoolConfig {
            labels: vec!["linux".into()],
            ..PoolConfig::default()
        }],
        ..config(&["linux"])
    });
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(10));
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert_eq!(plan.wake_at, Some(w.now() + secs(90)));
    w.advance(secs(90));
    assert_eq!(kinds(&w.decide()), vec!["begin_teardown"]);
}

#[test]
fn an_idle_node_before_its_window_wakes_the_decision_when_it_opens() {
    let w = one_idle(30, 10);
    let plan = w.decide();
    // Created 30 minutes ago: the window (the last 5 minutes) opens in 25.
    assert_eq!(plan.wake_at, Some(w.now() + mins(25)));
}

#[test]
fn a_first_idle_sighting_starts_the_idle_timer() {
    let mut w = with_idle_minimum();
    w.machine("linux", "m1", mins(57));
    let plan = w.decide();
    assert_eq!(
        plan.action_list().cloned().collect::<Vec<_>>(),
        vec![Action::MarkIdle {
            node: "m1".into(),
            since: w.now()
        }]
    );
}

#[test]
fn the_pool_minimum_is_kept() {
    let mut c = config(&["linux"]);
    c.pools[0].min_nodes = 1;
    let mut w = World::new(c);
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(10));
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert!(reason_of(&plan, "m1").contains("minimum"));
}

#[test]
fn a_waiting_job_keeps_an_idle_node_and_creates_nothing() {
    let mut w = one_idle(57, 10);
    w.queue(&["linux"]);
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
}

#[test]
fn warm_slots_keep_idle_nodes() {
    let mut c = config(&["linux"]);
    c.pools[0].warm_slots = 1;
    let mut w = World::new(c);
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(10));
    assert!(w.decide().actions.is_empty());
}

// --- Busy: the in-progress job list is the proof ---------------------------------------------

#[test]
fn a_running_job_makes_a_node_busy_whatever_the_busy_flag_says() {
    let mut w = one_idle(57, 10);
    let runner = w.runners_of("m1")[0].name.clone();
    w.start_on(&runner);
    assert!(!w.runners_of("m1")[0].busy, "Gitea's flag says idle");
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::Busy { jobs: 1 });
    assert_eq!(kinds(&plan), vec!["clear_idle"]);
}

#[test]
fn the_busy_flag_alone_holds_runner_deletion() {
    let mut w = one_idle(57, 10);
    let runner_id = w.runners_of("m1")[0].id;
    items_mut(&mut w.truth.runners)
        .iter_mut()
        .find(|r| r.id == runner_id)
        .expect("runner")
        .busy = true;
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    assert_eq!(kinds(&w.step()), vec!["disable_runner"]);
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert_eq!(
        state_of(&plan, "m1"),
        NodeState::Teardown {
            step: TeardownStep::ConfirmIdle
        }
    );
    items_mut(&mut w.truth.runners)
        .iter_mut()
        .find(|r| r.id == runner_id)
        .expect("runner")
        .busy = false;
    assert_eq!(kinds(&w.decide()), vec!["delete_runner", "cordon"]);
}

// --- Correlation -----------------------------------------------------------------------------

#[test]
fn servers_correlate_to_nodes_by_provider_id() {
    let mut w = default_world();
    let id = w.machine("linux", "m1", mins(20));
    let node = w.node_mut("m1");
    node.name = "renamed-by-ccm".into();
    node.provider_id = Some(format!("hcloud://{id}"));
    for p in items_mut(&mut w.truth.pods) {
        p.node = Some("renamed-by-ccm".into());
    }
    let plan = w.decide();
    let report = plan
        .nodes
        .iter()
        .find(|n| n.server_id == Some(id))
        .expect("one machine");
    assert!(matches!(report.state, NodeState::Idle { .. }), "{report:?}");
    assert_eq!(plan.nodes.len(), 1);
}

#[test]
fn several_runner_pods_share_a_node() {
    let mut c = config(&["linux"]);
    c.pools[0].runners_per_node = 2;
    let mut w = World::new(c);
    w.machine("linux", "m1", mins(57));
    w.idle_for("m1", mins(10));
    let first = w.runners_of("m1")[0].name.clone();
    w.start_on(&first);
    w.queue(&["linux"]);
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::Busy { jobs: 1 });
    // The second runner is free and takes the waiting job: nothing is created.
    assert_eq!(kinds(&plan), vec!["clear_idle"]);
    assert_eq!(plan.pools[0].slots.idle, 1);
}

// --- Demand and label matching ---------------------------------------------------------------

#[test]
fn only_runnable_jobs_are_demand() {
    let mut w = default_world();
    let id = w.queue(&["linux"]);
    items_mut(&mut w.truth.jobs)[0].status = JobStatus::Waiting;
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "job {id} is blocked on needs");
}

#[test]
fn a_job_is_matched_by_runner_label_names() {
    let mut w = default_world();
    w.queue(&["ubuntu-latest"]);
    let plan = w.decide();
    assert_eq!(kinds(&plan), vec!["create_server"]);
    let Action::CreateServer(ServerSpec {
        labels,
        node_labels,
        pool,
        ..
    }) = &plan.actions[0].action
    else {
        unreachable!()
    };
    assert_eq!(pool, "linux");
    assert_eq!(
        labels.get(keys::OWNER).map(String::as_str),
        Some(INSTALLATION)
    );
    assert_eq!(labels, node_labels);
}

#[test]
fn jobs_no_pool_serves_are_reported_and_create_nothing() {
    let mut w = default_world();
    let id = w.queue(&["windows"]);
    let plan = w.decide();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.unservable.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![id]
    );
    assert!(plan.has_warning(WarningKind::UnservableJobs));
}

#[test]
fn waiting_jobs_create_servers_within_every_limit() {
    let mut c = config(&["ubuntu-latest:docker://node:20", "linux"]);
    c.max_creates_per_tick = 10;
    let mut w = World::new(c);
    w.queue_n(30, &["linux"]);
    let plan = w.decide();
    assert_eq!(kinds(&plan).len(), 10, "max_creates_per_tick");
    assert!(plan.has_warning(WarningKind::MaxReached));

    let mut c = config(&["linux"]);
    c.max_nodes = 8;
    let mut w = World::new(c);
    for i in 0..5 {
        let name = format!("m{i}");
        w.machine("linux", &name, mins(10));
        let r = w.runners_of(&name)[0].name.clone();
        w.start_on(&r);
    }
    w.queue_n(30, &["linux"]);
    let creates = kinds(&w.decide())
        .iter()
        .filter(|k| **k == "create_server")
        .count();
    assert_eq!(creates, 3, "global max 8 with 5 servers");
}

#[test]
fn idle_runners_and_capacity_on_the_way_are_counted() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(10));
    w.apply(&[Action::CreateServer(ServerSpec {
        pool: "linux".into(),
        name: "m2".into(),
        server_type: "cx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: synthetic::labels(INSTALLATION, "linux"),
        node_labels: synthetic::labels(INSTALLATION, "linux"),
    })]);
    w.queue_n(3, &["linux"]);
    let plan = w.decide();
    assert_eq!(
        kinds(&plan)
            .iter()
            .filter(|k| **k == "create_server")
            .count(),
        1,
        "3 jobs − 1 idle − 1 provisioning"
    );
    assert_eq!(state_of(&plan, "m2"), NodeState::Provisioning);
}

/// One busy machine whose job started 2 minutes ago and is expected to take `expected`, and
/// one waiting job; returns how many servers the plan creates.
fn creates_beside_a_job_expected_to_take(expected: Option<SignedDuration>) -> usize {
    creates_at_target(expected, SignedDuration::ZERO, SignedDuration::ZERO)
}

/// Like `creates_beside_a_job_expected_to_take`, under a target wait, the waiting job queued
/// `waited` ago.
fn creates_at_target(
    expected: Option<SignedDuration>,
    target: SignedDuration,
    waited: SignedDuration,
) -> usize {
    let mut w = default_world();
    w.policy_mut(|c| c.pools[0].target_wait = Some(target));
    w.machine("linux", "m1", mins(10));
    let runner = w.runners_of("m1")[0].name.clone();
    w.advance(mins(-2));
    let job = w.start_on(&runner);
    w.advance(mins(2));
    for j in items_mut(&mut w.truth.jobs) {
        if j.id == job {
            j.expected_duration = expected;
        }
    }
    w.advance(-waited);
    w.queue(&["linux"]);
    w.advance(waited);
    let plan = w.decide();
    kinds(&plan)
        .iter()
        .filter(|k| **k == "create_server")
        .count()
}

#[test]
fn a_target_wait_trades_a_longer_wait_for_a_server_not_bought() {
    let five = mins(5);
    // Free in 5 minutes: at the default target a new server is quicker; at a 5-minute target
    // the job waits for the runner.
    assert_eq!(
        creates_at_target(Some(mins(7)), SignedDuration::ZERO, SignedDuration::ZERO),
        1
    );
    assert_eq!(
        creates_at_target(Some(mins(7)), five, SignedDuration::ZERO),
        0
    );
    // Queued 2 minutes ago, the job would wait 7 in all: more than the target, a server is
    // bought.
    assert_eq!(creates_at_target(Some(mins(7)), five, mins(2)), 1);
    // A runner past its estimate is never counted on, whatever the target.
    assert_eq!(
        creates_at_target(Some(secs(90)), five, SignedDuration::ZERO),
        1
    );
    assert_eq!(creates_at_target(None, five, SignedDuration::ZERO), 1);
}

#[test]
fn a_runner_about_to_free_up_is_capacity_on_the_way() {
    // Ends in 30 s, within the default cold start of 60 s: the waiting job waits for it.
    assert_eq!(creates_beside_a_job_expected_to_take(Some(secs(150))), 0);
    // Ends in 5 minutes: a new server is quicker.
    assert_eq!(creates_beside_a_job_expected_to_take(Some(mins(7))), 1);
    // Past its expected end: the estimate was wrong, nothing is assumed.
    assert_eq!(creates_beside_a_job_expected_to_take(Some(secs(90))), 1);
    // No estimate.
    assert_eq!(creates_beside_a_job_expected_to_take(None), 1);
}
#[test]
fn idle_unmanaged_runners_are_capacity() {
    let mut w = default_world();
    w.queue(&["linux"]);
    items_mut(&mut w.truth.runners).push(synthetic::runner(
        999,
        "static-runner",
        &["linux".to_owned()],
    ));
    assert!(w.decide().actions.is_empty());
}

#[test]
fn warm_slots_are_created_ahead_of_demand() {
    let mut c = config(&["linux"]);
    c.pools[0].warm_slots = 2;
    let w = World::new(c);
    assert_eq!(kinds(&w.decide()), vec!["create_server", "create_server"]);
}

#[test]
fn the_pool_minimum_is_created() {
    let mut c = config(&["linux"]);
    c.pools[0].min_nodes = 1;
    let w = World::new(c);
    assert_eq!(kinds(&w.decide()), vec!["create_server"]);
}

#[test]
fn failed_creates_back_off_and_capacity_errors_move_on() {
    let mut c = config(&["linux"]);
    c.pools[0].locations = vec!["nbg1".into(), "fsn1".into()];
    let mut w = World::new(c);
    w.queue(&["linux"]);
    let at = w.now() - secs(10);
    let failure = |kind| CreateFailure {
        pool: "linux".into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        at,
        kind,
        message: "error during placement".into(),
    };
    w.truth.create_failures = vec![failure(CreateFailureKind::Capacity)];
    let plan = w.decide();
    let Action::CreateServer(ServerSpec { location, .. }) = &plan.actions[0].action else {
        panic!("{:?}", kinds(&plan))
    };
    assert_eq!(location, "fsn1");

    w.truth.create_failures = vec![failure(CreateFailureKind::Other)];
    let plan = w.decide();
    assert!(plan.actions.is_empty());
    assert!(plan.pools[0].backoff_until.is_some());
    assert!(plan.has_warning(WarningKind::CreateBackoff));
}

#[test]
fn the_request_budget_limits_creates() {
    let mut w = default_world();
    w.queue_n(5, &["linux"]);
    w.truth.hetzner_budget = Some(ApiBudget { remaining: 102 });
    let plan = w.decide();
    assert_eq!(kinds(&plan).len(), 2, "100 requests are kept in reserve");
    assert!(plan.has_warning(WarningKind::BudgetLow));
}

// --- Lifecycle faults --------------------------------------------------------------------------

#[test]
fn a_young_server_without_node_is_provisioning() {
    let mut w = default_world();
    w.apply(&[create("m1")]);
    w.advance(mins(5));
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::Provisioning);
    assert!(plan.actions.is_empty());
}

fn create(name: &str) -> Action {
    Action::CreateServer(ServerSpec {
        pool: "linux".into(),
        name: name.into(),
        server_type: "cx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: synthetic::labels(INSTALLATION, "linux"),
        node_labels: synthetic::labels(INSTALLATION, "linux"),
    })
}

#[test]
fn stuck_provisioning_is_given_up_after_confirmation() {
    let mut w = default_world();
    w.apply(&[create("m1")]);
    w.advance(mins(11));
    let plan = w.step();
    assert_eq!(state_of(&plan, "m1"), NodeState::StuckProvisioning);
    assert_eq!(kinds(&plan), vec!["mark_node_missing"]);
    w.advance(secs(5));
    assert!(
        w.step().actions.is_empty(),
        "a later snapshot must agree for long enough"
    );
    w.advance(secs(10));
    assert_eq!(kinds(&w.step()), vec!["delete_server"]);
    assert!(w.truth.servers.items().is_empty());
}

#[test]
fn a_node_that_comes_back_clears_the_missing_mark() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(30));
    // The node object vanished, PodGC removed its pods and their runners went offline.
    let node = items_mut(&mut w.truth.nodes).remove(0);
    let pods = std::mem::take(items_mut(&mut w.truth.pods));
    for r in items_mut(&mut w.truth.runners) {
        r.online = false;
    }
    assert_eq!(kinds(&w.step()), vec!["mark_node_missing"]);
    items_mut(&mut w.truth.nodes).push(node);
    items_mut(&mut w.truth.pods).extend(pods);
    for r in items_mut(&mut w.truth.runners) {
        r.online = true;
    }
    w.advance(secs(5));
    let plan = w.decide();
    assert!(
        kinds(&plan).contains(&"clear_node_missing"),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn runner_pods_that_still_name_a_missing_node_hold_the_server() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(30));
    items_mut(&mut w.truth.nodes).clear();
    assert_held(&mut w, "m1", "runner pod(s) still name node m1");
}

/// Found by the property tests: the node is gone and its runner pod has finished, but Gitea still
/// shows a job running on that pod's runner. The job is the proof; the server stays.
#[test]
fn a_job_on_a_finished_pod_of_a_vanished_node_holds_the_server() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(30));
    let runner = w.runners_of("m1")[0].name.clone();
    w.start_on(&runner);
    items_mut(&mut w.truth.nodes).clear();
    items_mut(&mut w.truth.pods)[0].phase = autoscaler_core::PodPhase::Succeeded;
    assert_held(&mut w, "m1", "running job");
}

#[test]
fn a_node_without_runner_in_time_is_torn_down() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(20));
    items_mut(&mut w.truth.runners).clear();
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::NoRunner);
    assert_eq!(kinds(&plan), vec!["begin_teardown"]);
}

#[test]
fn a_joining_node_is_given_its_join_timeout() {
    let mut w = default_world();
    w.apply(&[create("m1")]);
    w.advance(mins(2));
    w.join("m1", w.now());
    items_mut(&mut w.truth.runners).clear();
    w.advance(mins(1));
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::Joining);
    assert_eq!(kinds(&plan), vec!["record_joined"]);
}

#[test]
fn a_node_not_ready_too_long_is_torn_down_without_drain() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(20));
    let since = w.now() - mins(6);
    let node = w.node_mut("m1");
    node.ready = false;
    node.ready_since = Some(since);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let plan = w.step();
        seen.extend(kinds(&plan));
        w.advance(secs(10));
    }
    assert_eq!(
        seen,
        vec![
            "begin_teardown",
            "disable_runner",
            "delete_runner",
            "cordon",
            "delete_node",
            "mark_node_missing",
            "delete_server"
        ]
    );
}

#[test]
fn a_managed_node_without_server_is_removed_after_confirmation() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(20));
    items_mut(&mut w.truth.servers).clear();
    let node = w.node_mut("m1");
    node.ready = false;
    let mut seen = Vec::new();
    for _ in 0..8 {
        let plan = w.step();
        assert!(
            plan.nodes
                .iter()
                .all(|n| n.state == NodeState::ServerVanished)
        );
        seen.extend(kinds(&plan));
        w.advance(secs(10));
    }
    assert_eq!(
        seen,
        vec![
            "mark_server_missing",
            "disable_runner",
            "delete_runner",
            "cordon",
            "delete_node"
        ]
    );
    assert!(w.truth.nodes.items().is_empty());
}

#[test]
fn a_node_without_our_label_is_never_touched() {
    let mut w = default_world();
    w.machine("linux", "m1", mins(57));
    w.node_mut("m1").labels.clear();
    w.advance(mins(1));
    let plan = w.decide();
    assert_eq!(state_of(&plan, "m1"), NodeState::OwnershipConflict);
    assert!(plan.actions.is_empty());
    assert!(plan.has_warning(WarningKind::OwnershipConflict));
}

#[test]
fn foreign_machines_are_ignored_and_not_counted() {
    let mut c = config(&["linux"]);
    c.max_nodes = 1;
    let mut w = World::new(c);
    w.machine("linux", "theirs", mins(57));
    w.server_mut("theirs")
        .labels
        .insert(keys::OWNER.into(), "other".into());
    w.node_mut("theirs")
        .labels
        .insert(keys::OWNER.into(), "other".into());
    w.idle_for("theirs", mins(30));
    let runner = w.runners_of("theirs")[0].name.clone();
    w.start_on(&runner);
    w.queue(&["linux"]);
    let plan = w.decide();
    assert!(plan.nodes.is_empty());
    assert_eq!(
        kinds(&plan),
        vec!["create_server"],
        "their server does not count against our maximum"
    );
}

// --- The teardown sequence -------------------------------------------------------------------

#[test]
fn the_full_teardown_order() {
    let mut w = one_idle(57, 10);
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(kinds(&w.step()));
        w.advance(secs(5));
    }
    assert_eq!(
        seen,
        vec![
            "begin_teardown",
            "disable_runner",
            "delete_runner",
            "cordon",
            "drain",
            "delete_node",
            "mark_node_missing",
            "delete_server"
        ]
    );
    assert!(
        w.truth.servers.items().is_empty()
            && w.truth.nodes.items().is_empty()
            && w.truth.runners.items().is_empty()
    );
    assert!(
        w.now() < t("2026-11-25T10:03:00Z"),
        "finished before the paid hour ended"
    );
}

#[test]
fn without_disable_the_order_skips_disabling_and_warns() {
    let mut w = one_idle(57, 10);
    w.truth.forge = ForgeCapabilities::read(false);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let plan = w.step();
        assert!(plan.has_warning(WarningKind::WeakTeardownOrder));
        seen.extend(kinds(&plan));
        w.advance(secs(5));
    }
    assert_eq!(&seen[..3], &["begin_teardown", "delete_runner", "cordon"]);
    assert_eq!(seen.last(), Some(&"delete_server"));
}

#[test]
fn a_teardown_is_given_up_when_jobs_wait() {
    let mut w = one_idle(57, 10);
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    assert_eq!(kinds(&w.step()), vec!["disable_runner"]);
    w.queue(&["linux"]);
    let plan = w.step();
    assert_eq!(kinds(&plan), vec!["enable_runner"]);
    assert!(
        plan.actions[0].reason.contains("waiting job"),
        "{}",
        plan.actions[0].reason
    );
    assert_eq!(kinds(&w.step()), vec!["abort_teardown"]);
    w.assign_waiting();
    assert_eq!(w.running().len(), 1, "the kept node took the job");
    assert!(w.step().actions.iter().all(|a| !a.action.is_destructive()));
}

#[test]
fn a_teardown_that_missed_its_paid_period_is_given_up() {
    let mut w = one_idle(57, 10);
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    // Stuck (e.g. Gitea unreachable for the disable) until the next period began.
    w.advance(mins(4));
    let plan = w.decide();
    assert_eq!(kinds(&plan), vec!["abort_teardown"]);
    assert!(
        plan.actions[0].reason.contains("paid"),
        "{}",
        plan.actions[0].reason
    );
}

#[test]
fn a_reversible_teardown_past_its_point_of_no_return_is_kept_for_the_next_window() {
    // Begun at 57:00 of the hour; the default lead is 45 s and the confirmation 15 s, so the
    // runners must be deleted by 59:30 (15 s + half of the other 30 s before the end).
    let mut w = one_idle(57, 10);
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    assert_eq!(kinds(&w.step()), vec!["disable_runner"]);
    // A restart (or a slow step) costs until 59:31: deleting now would end in the next period.
    w.advance(secs(151));
    let plan = w.step();
    assert_eq!(kinds(&plan), vec!["enable_runner"]);
    assert!(
        plan.actions[0].reason.contains("next"),
        "{}",
        plan.actions[0].reason
    );
    assert_eq!(kinds(&w.step()), vec!["abort_teardown"]);
    // One second earlier it would have gone on.
    let mut on_time = one_idle(57, 10);
    on_time.step();
    on_time.step();
    on_time.advance(secs(150));
    assert_eq!(kinds(&on_time.step()), vec!["delete_runner", "cordon"]);
}

#[test]
fn idle_nodes_near_the_end_of_their_hour_are_steered_away_from_new_jobs_and_come_back_on_demand() {
    let mut w = default_world();
    // m1 has 10 minutes of its hour left (within the last quarter), m2 40: m1 is steered.
    w.machine("linux", "m1", mins(50));
    w.machine("linux", "m2", mins(20));
    w.idle_for("m1", mins(3));
    w.idle_for("m2", mins(3));
    let plan = w.step();
    assert_eq!(kinds(&plan), vec!["begin_teardown"]);
    assert!(
        plan.actions[0].reason.contains("steering"),
        "{}",
        plan.actions[0].reason
    );
    assert_eq!(kinds(&w.step()), vec!["disable_runner"]);
    // Held before its point of no return until its window opens, and woken for it.
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert_eq!(
        state_of(&plan, "m1"),
        NodeState::Teardown {
            step: TeardownStep::Steered
        }
    );
    assert!(plan.wake_at.is_some());
    // A job takes m2, the last enabled free runner: m1 comes back at once.
    w.queue(&["linux"]);
    w.assign_waiting();
    assert_eq!(w.running().len(), 1);
    let plan = w.step();
    assert!(
        kinds(&plan).contains(&"enable_runner"),
        "{:?}",
        kinds(&plan)
    );
    assert_eq!(kinds(&w.step()), vec!["abort_teardown"]);
    assert!(w.killed.is_empty());
}

#[test]
fn without_runner_disabling_nothing_is_steered() {
    let mut w = default_world();
    w.truth.forge = ForgeCapabilities::read(false);
    w.machine("linux", "m1", mins(50));
    w.machine("linux", "m2", mins(20));
    w.idle_for("m1", mins(3));
    w.idle_for("m2", mins(3));
    let plan = w.decide();
    assert!(
        plan.action_list()
            .all(|a| !matches!(a, Action::BeginTeardown { .. }))
    );
    assert!(plan.has_warning(WarningKind::WeakTeardownOrder));
}

// --- Fail-static -----------------------------------------------------------------------------

fn with_source_broken(w: &World, which: &str, partial: bool) -> Snapshot {
    let mut s = w.truth.clone();
    macro_rules! brk {
        ($field:ident) => {{
            let items = s.$field.items().to_vec();
            s.$field = if partial {
                Source::Partial {
                    items,
                    reason: "page 2 failed".into(),
                }
            } else {
                Source::unavailable("connection refused")
            };
        }};
    }
    match which {
        "jobs" => brk!(jobs),
        "runners" => brk!(runners),
        "servers" => brk!(servers),
        "nodes" => brk!(nodes),
        "pods" => brk!(pods),
        _ => unreachable!(),
    }
    s
}

#[test]
fn each_incomplete_source_holds_destructive_actions() {
    let mut w = one_idle(57, 10);
    w.machine("linux", "m2", mins(57));
    assert!(
        w.decide().action_list().any(Action::is_destructive),
        "complete data would tear down"
    );
    for which in ["jobs", "runners", "servers", "nodes", "pods"] {
        for partial in [false, true] {
            let s = with_source_broken(&w, which, partial);
            let plan = autoscaler_core::decide(&w.policy, &s);
            assert!(
                !plan.action_list().any(Action::is_destructive),
                "{which} partial={partial}: {:?}",
                kinds(&plan)
            );
            assert!(
                plan.warnings
                    .iter()
                    .any(|x| x.kind == WarningKind::IncompleteData && x.message.contains(which))
            );
        }
    }
}

#[test]
fn creates_need_complete_servers_and_jobs() {
    let mut w = default_world();
    w.queue(&["linux"]);
    for (which, creates) in [
        ("runners", true),
        ("nodes", true),
        ("pods", true),
        ("servers", false),
        ("jobs", false),
    ] {
        let s = with_source_broken(&w, which, true);
        let plan = autoscaler_core::decide(&w.policy, &s);
        assert_eq!(
            !plan.actions.is_empty(),
            creates,
            "{which}: {:?}",
            kinds(&plan)
        );
    }
}

#[test]
fn an_unreadable_node_list_does_not_buy_replacements() {
    let mut w = default_world();
    for i in 0..3 {
        w.machine("linux", &format!("m{i}"), mins(30));
    }
    w.queue_n(3, &["linux"]);
    let s = with_source_broken(&w, "nodes", false);
    let plan = autoscaler_core::decide(&w.policy, &s);
    assert!(
        plan.actions.is_empty(),
        "the 3 servers are counted as capacity: {:?}",
        kinds(&plan)
    );
}

#[test]
fn duplicated_items_make_a_source_incomplete() {
    let mut w = one_idle(57, 10);
    let dup = w.truth.servers.items()[0].clone();
    items_mut(&mut w.truth.servers).push(dup);
    let plan = w.decide();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert!(
        plan.warnings
            .iter()
            .any(|x| x.message.contains("same item twice"))
    );
}

// --- Pools -------------------------------------------------------------------------------------

#[test]
fn a_machine_of_a_removed_pool_drains() {
    let mut w = default_world();
    // In the default window (a removed pool has the default timings).
    w.machine("linux", "m1", secs(58 * 60 + 40));
    w.server_mut("m1")
        .labels
        .insert(keys::POOL.into(), "old".into());
    w.node_mut("m1")
        .labels
        .insert(keys::POOL.into(), "old".into());
    w.idle_for("m1", mins(10));
    let plan = w.decide();
    assert_eq!(kinds(&plan), vec!["begin_teardown"]);
    let old = plan
        .pools
        .iter()
        .find(|p| p.name == "old")
        .expect("reported");
    assert!(!old.configured);
}

#[test]
fn pools_are_tried_in_order() {
    let mut c = config(&["linux"]);
    c.pools.push(PoolConfig {
        name: "big".into(),
        labels: vec!["linux".into(), "big".into()],
        ..PoolConfig::default()
    });
    let mut w = World::new(c);
    w.queue(&["linux"]);
    w.queue(&["big"]);
    let plan = w.decide();
    let pools: Vec<String> = plan
        .action_list()
        .filter_map(|a| match a {
            Action::CreateServer(ServerSpec { pool, .. }) => Some(pool.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(pools, vec!["linux", "big"]);
}

// --- The JSON forms ------------------------------------------------------------------------------

#[test]
fn plan_and_snapshot_json_round_trip() {
    let mut w = one_idle(57, 10);
    w.queue(&["linux"]);
    w.queue(&["windows"]);
    let plan = w.decide();
    let text = serde_json::to_string_pretty(&plan).expect("serializes");
    let back: autoscaler_core::Plan = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, plan);
    assert!(text.contains("\"version\": 1"));
    let snapshot = serde_json::to_string(&w.truth).expect("serializes");
    assert_eq!(Snapshot::from_json(&snapshot).expect("parses"), w.truth);
}

#[test]
fn a_snapshot_of_another_version_is_refused() {
    let err = Snapshot::from_json(r#"{"version": 7, "now": "2026-11-25T10:00:00Z"}"#)
        .expect_err("refused");
    assert!(err.to_string().contains("version 7"), "{err}");
}

#[test]
fn a_snapshot_without_a_source_treats_it_as_unavailable() {
    let s = Snapshot::from_json(
        r#"{"now": "2026-11-25T10:00:00Z", "jobs": {"status": "complete", "items": []}}"#,
    )
    .expect("parses");
    assert!(!s.servers.is_complete());
}

#[test]
fn the_plan_says_when_it_wants_the_next_decision() {
    // Nothing due early: no instant.
    assert_eq!(one_idle(20, 10).decide().next_decision, None);
    // A teardown step: the next decision continues it at once.
    let mut w = one_idle(57, 10);
    let plan = w.step();
    assert!(
        kinds(&plan).contains(&"begin_teardown"),
        "{:?}",
        kinds(&plan)
    );
    assert_eq!(plan.next_decision, Some(w.now()));
    // A mark that a later snapshot must confirm: due after the confirmation delay.
    w = default_world();
    w.apply(&[create("m1")]);
    w.advance(mins(11));
    let plan = w.decide();
    assert!(
        kinds(&plan).contains(&"mark_node_missing"),
        "{:?}",
        kinds(&plan)
    );
    assert_eq!(
        plan.next_decision,
        Some(w.now() + w.policy.config().node_missing_confirm)
    );
    // The JSON form leaves it out when absent, and older plans without it still read.
    let json = serde_json::to_value(one_idle(20, 10).decide()).unwrap();
    assert!(json.get("next_decision").is_none());
}
