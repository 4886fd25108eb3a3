//! Runners are bound to machines by id: Gitea does not keep runner names unique, so a foreign
//! runner that shares a runner pod's name must never pin, count for or be deleted with our
//! machine.

mod common;

use autoscaler_core::{Action, NodeState, WarningKind, keys, synthetic};
use common::*;

fn world() -> World {
    World::new(config(&["linux"]))
}

/// A foreign runner named `pod`, online, with the pool's labels, running a job that never ends.
fn busy_namesake(w: &mut World, pod: &str, id: u64) -> u64 {
    let labels = w.pool("linux").labels.clone();
    items_mut(&mut w.truth.runners).push(synthetic::runner(id, pod, &labels));
    let job = 9_000 + id;
    let r = w
        .truth
        .runners
        .items()
        .iter()
        .find(|r| r.id == id)
        .unwrap()
        .clone();
    let now = w.now();
    items_mut(&mut w.truth.jobs).push(synthetic::running_job(job, &r, now));
    job
}

fn touched(w: &World, runner: u64) -> Vec<&'static str> {
    w.applied
        .iter()
        .filter(|a| a.runner_id() == Some(runner))
        .map(Action::kind)
        .collect()
}

#[test]
fn the_first_sighting_of_a_pods_runner_is_recorded_on_its_node() {
    let mut w = world();
    w.machine("linux", "m1", mins(10));
    w.node_mut("m1").annotations.remove(keys::RUNNERS);
    let ours = w.runners_of("m1")[0].clone();
    let plan = w.step();
    let expected = format!("{}={}", ours.name, ours.id);
    assert!(
        plan.action_list().any(|a| matches!(a,
            Action::RecordRunners { node, runners } if node == "m1" && *runners == expected)),
        "{:?}",
        kinds(&plan)
    );
    assert_eq!(
        w.node("m1").unwrap().annotations.get(keys::RUNNERS),
        Some(&expected)
    );
    assert!(!kinds(&w.step()).contains(&"record_runners"), "once");
}

#[test]
fn a_busy_foreign_namesake_never_pins_an_idle_machine_and_is_never_touched() {
    let mut w = world();
    w.machine("linux", "m1", mins(30));
    w.step(); // records the pod's own runner
    let pod = w.runners_of("m1")[0].name.clone();
    let foreign_job = busy_namesake(&mut w, &pod, 777);
    w.idle_for("m1", mins(20));
    let mut deleted = false;
    let mut warned = false;
    for _ in 0..200 {
        w.advance(secs(15));
        let plan = w.step();
        warned |= plan.has_warning(WarningKind::NamesakeRunners);
        if let Some(n) = plan.nodes.iter().find(|n| n.name == "m1") {
            assert!(
                !matches!(n.state, NodeState::Busy { .. }),
                "the namesake's job kept m1 busy: {}",
                n.reason
            );
        }
        if w.server("m1").is_none() {
            deleted = true;
            break;
        }
    }
    assert!(deleted, "m1 was never torn down");
    assert!(warned, "the namesake was never reported");
    assert_eq!(
        touched(&w, 777),
        Vec::<&str>::new(),
        "the foreign runner was touched"
    );
    assert!(w.truth.runners.items().iter().any(|r| r.id == 777));
    // (The test world ends jobs by runner name when pods go, so the foreign job's fate there
    // says nothing; the foreign runner was never disabled or deleted.)
    let _ = foreign_job;
}

#[test]
fn while_it_is_unclear_which_namesake_is_the_pods_none_counts_and_a_job_on_any_keeps_the_machine() {
    let mut w = world();
    w.machine("linux", "m1", mins(57));
    w.node_mut("m1").annotations.remove(keys::RUNNERS);
    w.idle_for("m1", mins(20));
    // No runner recorded yet, and two runners carry the pod's name, one of them at work.
    let pod = w.runners_of("m1")[0].name.clone();
    busy_namesake(&mut w, &pod, 777);
    for _ in 0..10 {
        let plan = w.step();
        assert!(
            plan.has_warning(WarningKind::NamesakeRunners),
            "{:#?}",
            plan.warnings
        );
        let m1 = plan.nodes.iter().find(|n| n.name == "m1").unwrap();
        assert!(
            matches!(m1.state, NodeState::Busy { .. }),
            "{:?}: {}",
            m1.state,
            m1.reason
        );
        assert_eq!(m1.slots.idle, 0, "a namesake counted as capacity");
        assert!(!kinds(&plan).contains(&"record_runners"));
        w.advance(secs(30));
    }
    assert!(touched(&w, 777).is_empty());
}

#[test]
fn a_pod_that_registered_again_is_bound_to_its_new_runner() {
    let mut w = world();
    w.machine("linux", "m1", mins(10));
    w.step();
    let old = w.runners_of("m1")[0].clone();
    // The runner's registration was lost and made anew: a new id under the same name.
    items_mut(&mut w.truth.runners).retain(|r| r.id != old.id);
    let labels = w.pool("linux").labels.clone();
    items_mut(&mut w.truth.runners).push(synthetic::runner(4242, &old.name, &labels));
    let plan = w.step();
    let expected = format!("{}=4242", old.name);
    assert!(
        plan.action_list().any(|a| matches!(a,
            Action::RecordRunners { runners, .. } if *runners == expected)),
        "{:?}",
        kinds(&plan)
    );
    assert!(!plan.has_warning(WarningKind::NamesakeRunners));
}
