//! The failures measured in the design we replace (rustunit/gitea-ci-autoscaler v0.2), each
//! replayed here and shown safe.

mod common;

use autoscaler_core::synthetic::Fleet;
use autoscaler_core::{Action, NodeState, Source};
use common::*;

fn idle_fleet(n: usize, age_mins: i64) -> World {
    let mut w = World::new(config(&["linux"]));
    for i in 0..n {
        let name = format!("m{i:02}");
        w.machine("linux", &name, mins(age_mins));
        w.idle_for(&name, mins(10));
    }
    w
}

/// Seed: "kill a job when it gets assigned between the idle check and the runner delete".
#[test]
fn a_job_assigned_between_the_idle_check_and_the_disable_survives() {
    let mut w = idle_fleet(1, 57);
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    let plan = w.decide();
    assert_eq!(kinds(&plan), vec!["disable_runner"]);
    // The race: a job arrives and Gitea assigns it after the snapshot, before the disable lands.
    w.queue(&["linux"]);
    w.assign_waiting();
    assert_eq!(w.running().len(), 1);
    w.apply(&plan.action_list().cloned().collect::<Vec<_>>());

    // The next snapshot shows the disabled runner with a job: it is enabled again, never deleted.
    let plan = w.step();
    assert_eq!(kinds(&plan), vec!["enable_runner"]);
    assert_eq!(kinds(&w.step()), vec!["abort_teardown"]);
    for _ in 0..20 {
        let plan = w.step();
        assert!(
            !plan.action_list().any(Action::is_destructive),
            "{:?}",
            kinds(&plan)
        );
        w.advance(common::secs(5));
    }
    assert!(w.killed.is_empty());
    assert_eq!(w.running().len(), 1, "the job is still running");
}

/// The same race one step later: the job lands right after the teardown label is written.
#[test]
fn a_job_assigned_after_the_teardown_began_aborts_it() {
    let mut w = idle_fleet(1, 57);
    assert_eq!(kinds(&w.step()), vec!["begin_teardown"]);
    w.queue(&["linux"]);
    w.assign_waiting();
    let plan = w.step();
    assert_eq!(kinds(&plan), vec!["abort_teardown"]);
    assert!(
        plan.actions[0].reason.contains("job(s) started on it"),
        "{}",
        plan.actions[0].reason
    );
    assert!(w.killed.is_empty());
}

/// Seed: "delete every busy server when the node list came back empty once".
#[test]
fn an_empty_node_list_once_deletes_nothing() {
    let mut w = idle_fleet(5, 30);
    for name in ["m00", "m02", "m04"] {
        let r = w.runners_of(name)[0].name.clone();
        w.start_on(&r);
    }
    // Empty node list, pods still listed: pods prove the nodes exist.
    let mut glitch = w.truth.clone();
    glitch.nodes = Source::complete(vec![]);
    let plan = autoscaler_core::decide(&w.policy, &glitch);
    assert!(
        !plan.action_list().any(Action::is_destructive),
        "{:?}",
        kinds(&plan)
    );

    // Empty node AND pod lists: most joined nodes vanishing at once is not believed.
    glitch.pods = Source::complete(vec![]);
    let plan = autoscaler_core::decide(&w.policy, &glitch);
    assert!(
        !plan.action_list().any(Action::is_destructive),
        "{:?}",
        kinds(&plan)
    );
    assert!(plan.has_warning(autoscaler_core::WarningKind::MassVanish));
    assert!(
        plan.nodes
            .iter()
            .all(|n| n.state == NodeState::NodeVanished)
    );

    // Unreadable node list: nothing destructive either.
    glitch.nodes = Source::unavailable("timeout");
    let plan = autoscaler_core::decide(&w.policy, &glitch);
    assert!(!plan.action_list().any(Action::is_destructive));

    // The real list is back: nothing was lost.
    for _ in 0..10 {
        w.step();
        w.advance(secs(5));
    }
    assert_eq!(w.truth.servers.items().len(), 5);
    assert!(w.killed.is_empty());
}

/// A single node missing from one snapshot is marked, and unmarked when it is back: one snapshot
/// never deletes a server. While its runner still runs a job, it is not even marked: the job is
/// on a machine the lists cannot show, and that is no evidence of anything gone.
#[test]
fn a_single_missing_node_needs_a_second_snapshot() {
    let mut w = idle_fleet(1, 30);
    let r = w.runners_of("m00")[0].name.clone();
    let job = w.start_on(&r);
    let mut glitch = w.truth.clone();
    glitch.nodes = Source::complete(vec![]);
    glitch.pods = Source::complete(vec![]);
    let plan = autoscaler_core::decide(&w.policy, &glitch);
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert!(plan.has_warning(autoscaler_core::WarningKind::ListsDisagree));
    // The job ends and the runner goes offline with its node: now the absence is believed,
    // but only once.
    w.finish(job);
    for r in items_mut(&mut w.truth.runners) {
        r.online = false;
    }
    let mut glitch = w.truth.clone();
    glitch.nodes = Source::complete(vec![]);
    glitch.pods = Source::complete(vec![]);
    let plan = autoscaler_core::decide(&w.policy, &glitch);
    assert_eq!(kinds(&plan), vec!["mark_node_missing"]);
    for r in items_mut(&mut w.truth.runners) {
        r.online = true;
    }
    w.apply(&plan.action_list().cloned().collect::<Vec<_>>());
    w.advance(secs(20));
    let plan = w.step();
    assert!(
        kinds(&plan).contains(&"clear_node_missing"),
        "{:?}",
        kinds(&plan)
    );
    assert!(!plan.action_list().any(Action::is_destructive));
    assert!(w.killed.is_empty());
}

/// Seed: "misclassify servers past the first page (25 servers, 30 runners) and delete busy ones".
#[test]
fn servers_and_runners_past_the_first_page_are_never_misread() {
    let mut w = idle_fleet(40, 57);
    let busy: Vec<String> = (30..40).map(|i| format!("m{i:02}")).collect();
    for name in &busy {
        let r = w.runners_of(name)[0].name.clone();
        w.start_on(&r);
    }
    // A shell that read only the first page must say so; then nothing is destroyed.
    let mut first_pages = w.truth.clone();
    let runners: Vec<_> = w.truth.runners.items()[..30].to_vec();
    first_pages.runners = Source::Partial {
        items: runners,
        reason: "read 30 of 40".into(),
    };
    let servers: Vec<_> = w.truth.servers.items()[..25].to_vec();
    first_pages.servers = Source::Partial {
        items: servers,
        reason: "read 25 of 40".into(),
    };
    let plan = autoscaler_core::decide(&w.policy, &first_pages);
    assert!(
        !plan.action_list().any(Action::is_destructive),
        "{:?}",
        kinds(&plan)
    );

    // With every page read, the idle ones go and the busy ones stay, through a whole teardown.
    for _ in 0..12 {
        w.step();
        w.advance(secs(5));
    }
    let left: Vec<String> = w
        .truth
        .servers
        .items()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(left, busy);
    assert!(w.killed.is_empty());
}

/// Seed: "leak a paid server forever after a crash between runner delete and drain".
#[test]
fn a_crash_between_any_two_teardown_steps_leaks_nothing() {
    for crash_after in 1..=8 {
        let mut w = idle_fleet(1, 57);
        let mut steps = 0;
        for _ in 0..40 {
            let plan = w.decide();
            let actions: Vec<Action> = plan.action_list().cloned().collect();
            steps += usize::from(!actions.is_empty());
            if steps == crash_after {
                // The daemon dies before carrying out this plan; a new one starts from scratch
                // (the core has no memory: the next decide() is the restarted daemon).
            } else {
                w.apply(&actions);
            }
            w.advance(secs(5));
        }
        assert!(
            w.truth.servers.items().is_empty(),
            "crash after step {crash_after}: server leaked"
        );
        assert!(
            w.truth.nodes.items().is_empty(),
            "crash after step {crash_after}: node leaked"
        );
        assert!(
            w.truth.runners.items().is_empty(),
            "crash after step {crash_after}: runner leaked"
        );
        assert!(w.killed.is_empty());
    }
}

/// A crash in the middle of a plan, on every other tick: only the first half of that plan's
/// actions is carried out.
#[test]
fn half_applied_plans_still_converge() {
    let mut c = config(&["linux"]);
    c.pools[0].runners_per_node = 2;
    let mut w = World::new(c);
    for i in 0..4 {
        let name = format!("m{i}");
        w.machine("linux", &name, mins(57));
        w.idle_for(&name, mins(10));
    }
    for tick in 0..24 {
        let actions: Vec<Action> = w.decide().action_list().cloned().collect();
        let carried_out = if tick % 2 == 0 {
            actions.len().div_ceil(2)
        } else {
            actions.len()
        };
        w.apply(&actions[..carried_out]);
        w.advance(secs(5));
    }
    assert!(w.truth.servers.items().is_empty(), "{:?}", w.decide().nodes);
    assert!(w.now() < t("2026-11-25T10:03:00Z"), "within the paid hour");
    assert!(w.killed.is_empty());
}

/// Seed: "lose idle timers on restart (one extra billed hour)".
#[test]
fn idle_timers_survive_a_restart() {
    // With the seed's five-minute idle timeout configured: the node has been idle for 10
    // minutes, written on the node. A freshly started daemon sees it and tears the node down in
    // this hour's window.
    let with_timeout = |w: &mut World| w.policy_mut(|c| c.pools[0].idle_timeout = mins(5));
    let mut w = idle_fleet(1, 57);
    with_timeout(&mut w);
    assert_eq!(kinds(&w.decide()), vec!["begin_teardown"]);

    // Had the timer lived in process memory, the restart would restart it: the idle timeout then
    // ends after the window, and one more hour is paid.
    let mut lost = idle_fleet(1, 57);
    with_timeout(&mut lost);
    lost.node_mut("m00")
        .annotations
        .remove(autoscaler_core::keys::IDLE_SINCE);
    assert_eq!(kinds(&lost.step()), vec!["mark_idle"]);
    lost.advance(mins(5));
    let plan = lost.decide();
    assert!(plan.actions.is_empty());
    let paid_until = plan.nodes[0].paid_until.expect("server");
    assert!(
        paid_until > lost.now() + mins(50),
        "a new hour started: {paid_until}"
    );
}

/// Seed: O(N²) correlation, 594 ms per tick at 10,000 nodes. The speed is measured by the
/// benchmark (`cargo bench -p autoscaler-benches`); this checks the decision on that size is right.
#[test]
fn a_fleet_of_ten_thousand_is_decided_within_the_limits() {
    let fleet = Fleet::benchmark(10_000, t("2026-11-25T10:00:00Z"));
    let snapshot = fleet.build();
    let mut config = autoscaler_core::Config {
        max_nodes: 12_000,
        max_creates_per_tick: 50,
        ..autoscaler_core::Config::default()
    };
    config.pools[0].max_nodes = 12_000;
    let policy = config.validate().expect("valid");
    let plan = autoscaler_core::decide(&policy, &snapshot);
    assert_eq!(plan.nodes.len(), 10_000);
    let creates = plan
        .action_list()
        .filter(|a| matches!(a, Action::CreateServer { .. }))
        .count();
    assert_eq!(
        creates, 50,
        "20,000 waiting jobs want servers; the per-tick limit holds"
    );
    let busy = plan
        .nodes
        .iter()
        .filter(|n| matches!(n.state, NodeState::Busy { .. }))
        .count();
    assert_eq!(busy, 5_000);
    assert!(
        !plan
            .action_list()
            .any(|a| matches!(a, Action::BeginTeardown { .. })),
        "idle nodes are all needed by the waiting jobs"
    );
}
