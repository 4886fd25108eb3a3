//! The pure shell between two decisions: what it remembers from readings and outcomes, what it
//! falls back to, and when it wants the next decision. The daemon and the simulator both run it.

mod common;

use autoscaler_core::ports::ErrorKind;
use autoscaler_core::shell::{Identity, Outcome, Reading, Shell};
use autoscaler_core::{
    Action, CreateFailureKind, ServerSpec, Source, Timestamp, WarningKind, synthetic,
};
use common::{config, secs, t};
use proptest::prelude::*;

const NOW: &str = "2026-11-25T10:00:00Z";

fn labels() -> Vec<String> {
    vec!["ubuntu-latest".to_owned()]
}

fn shell() -> Shell {
    let mut c = config(&["ubuntu-latest"]);
    c.pools[0].locations = vec!["nbg1".into(), "fsn1".into()];
    Shell::new(c.validate().unwrap())
}

/// Everything read and empty, but `jobs`; the identity when the shell asks for it.
fn reading(shell: &Shell, now: Timestamp, jobs: Vec<autoscaler_core::Job>) -> Reading {
    let mut r = Reading::new(now);
    r.forge = Some(Default::default());
    if shell.wants_identity() {
        r.identity = Identity::Read("cluster-1".into());
    }
    r.jobs = Source::complete(jobs);
    r.runners = Source::complete(vec![]);
    r.servers = Source::complete(vec![]);
    r.nodes = Source::complete(vec![]);
    r.pods = Source::complete(vec![]);
    r
}

fn location(a: &Action) -> Option<&str> {
    match a {
        Action::CreateServer(ServerSpec { location, .. }) => Some(location),
        _ => None,
    }
}

fn failed(kind: ErrorKind) -> Outcome {
    Outcome::Failed {
        kind,
        message: "POST /servers failed".into(),
    }
}

#[test]
fn a_capacity_error_moves_the_next_creation_to_the_next_location() {
    let mut s = shell();
    let now = t(NOW);
    let job = synthetic::queued_job(1, &labels(), now);
    let first = s.decide(reading(&s, now, vec![job.clone()]));
    let creates: Vec<_> = first.plan.action_list().filter_map(location).collect();
    assert_eq!(creates, ["nbg1"]);
    assert_eq!(s.settle(&first.plan, &[failed(ErrorKind::Capacity)]), None);

    let second = s.decide(reading(&s, now + secs(5), vec![job]));
    assert_eq!(second.snapshot.create_failures.len(), 1);
    assert_eq!(
        second.snapshot.create_failures[0].kind,
        CreateFailureKind::Capacity
    );
    assert_eq!(second.snapshot.create_failures[0].at, now);
    let creates: Vec<_> = second.plan.action_list().filter_map(location).collect();
    assert_eq!(creates, ["fsn1"]);
}

#[test]
fn any_other_failed_creation_backs_the_pool_off_and_is_forgotten_after_the_window() {
    let mut s = shell();
    let now = t(NOW);
    let job = synthetic::queued_job(1, &labels(), now);
    let first = s.decide(reading(&s, now, vec![job.clone()]));
    s.settle(&first.plan, &[failed(ErrorKind::Transient)]);
    let second = s.decide(reading(&s, now + secs(1), vec![job.clone()]));
    assert_eq!(
        second.snapshot.create_failures[0].kind,
        CreateFailureKind::Other
    );
    assert!(second.plan.has_warning(WarningKind::CreateBackoff));
    assert_eq!(second.plan.action_list().filter_map(location).count(), 0);
    // The default backoff cap and capacity cooldown are 10 minutes.
    let later = s.decide(reading(&s, now + secs(601), vec![job]));
    assert!(later.snapshot.create_failures.is_empty());
}

#[test]
fn a_failure_of_anything_but_a_creation_is_not_remembered() {
    let mut s = shell();
    let now = t(NOW);
    let first = s.decide(reading(&s, now, vec![]));
    let mut plan = first.plan;
    plan.actions.push(autoscaler_core::PlannedAction {
        action: Action::Cordon { node: "n".into() },
        reason: "test".into(),
    });
    s.settle(&plan, &[failed(ErrorKind::Capacity)]);
    let next = s.decide(reading(&s, now + secs(1), vec![]));
    assert!(next.snapshot.create_failures.is_empty());
}

#[test]
fn without_the_clusters_identity_the_server_list_proves_nothing() {
    let mut s = shell();
    let now = t(NOW);
    assert!(s.wants_identity());
    let mut r = reading(&s, now, vec![synthetic::queued_job(1, &labels(), now)]);
    r.identity = Identity::Unreadable("kube-system: forbidden".into());
    let d = s.decide(r);
    assert!(s.wants_identity(), "asked for again");
    assert!(!d.snapshot.servers.is_complete());
    assert!(d.plan.has_warning(WarningKind::IncompleteData));
    assert!(d.plan.is_empty(), "nothing created, nothing destroyed");

    let d = s.decide(reading(&s, now + secs(5), vec![]));
    assert!(!s.wants_identity(), "read once, never again");
    assert_eq!(d.snapshot.cluster.as_deref(), Some("cluster-1"));
    let mut r = reading(&s, now + secs(10), vec![]);
    r.identity = Identity::Unreadable("timeout".into());
    let d = s.decide(r);
    assert!(
        d.snapshot.servers.is_complete(),
        "a known identity stands when a later read fails"
    );
    assert_eq!(d.snapshot.cluster.as_deref(), Some("cluster-1"));
}

#[test]
fn unreadable_capabilities_are_the_last_read_or_the_older_gitea() {
    let mut s = shell();
    let now = t(NOW);
    let mut r = reading(&s, now, vec![]);
    r.forge = None;
    let d = s.decide(r);
    assert!(!d.snapshot.forge.can_disable_runners && !d.snapshot.forge.known);
    // Said as unknown, never as an old Gitea.
    let said: Vec<&str> = d.plan.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        said.iter().any(|w| w.contains("version is unknown")),
        "{said:?}"
    );
    assert!(!said.iter().any(|w| w.contains("before 1.26")), "{said:?}");
    let d = s.decide(reading(&s, now, vec![]));
    assert!(d.snapshot.forge.can_disable_runners && d.snapshot.forge.known);
    let mut r = reading(&s, now, vec![]);
    r.forge = None;
    assert!(s.decide(r).snapshot.forge.can_disable_runners);
}

#[test]
fn durations_learned_from_readings_annotate_the_next_jobs() {
    let mut s = shell();
    let now = t(NOW);
    let runner = synthetic::runner(1, "r", &labels());
    s.decide(reading(
        &s,
        now,
        vec![synthetic::running_job(1, &runner, now)],
    ));
    s.decide(reading(&s, now + secs(300), vec![]));
    let d = s.decide(reading(
        &s,
        now + secs(310),
        vec![synthetic::queued_job(2, &labels(), now + secs(305))],
    ));
    assert_eq!(
        d.snapshot.jobs.items()[0].expected_duration,
        Some(secs(300))
    );
}

fn plan_wanting_early(s: &mut Shell) -> autoscaler_core::Plan {
    let mut plan = s.decide(reading(s, t(NOW), vec![])).plan;
    for node in ["a", "b"] {
        plan.actions.push(autoscaler_core::PlannedAction {
            action: Action::Cordon { node: node.into() },
            reason: "test".into(),
        });
    }
    plan.next_decision = Some(t(NOW));
    plan
}

#[test]
fn the_plans_early_decision_stands_only_when_every_action_went_through() {
    let mut s = shell();
    let plan = plan_wanting_early(&mut s);
    let done = Outcome::Done;
    assert_eq!(s.settle(&plan, &[done.clone(), done.clone()]), Some(t(NOW)));
    assert_eq!(
        s.settle(&plan, &[done.clone(), Outcome::Waiting]),
        None,
        "a drain still waiting waits for the poll"
    );
    assert_eq!(
        s.settle(&plan, &[done.clone(), failed(ErrorKind::Timeout)]),
        None,
        "a failed call waits for the poll"
    );
    assert_eq!(s.settle(&plan, &[]), None, "a follower carries nothing out");
    assert_eq!(
        s.settle(&plan, std::slice::from_ref(&done)),
        None,
        "an action that was not reported did not go through"
    );
    let mut quiet = plan;
    quiet.next_decision = None;
    assert_eq!(s.settle(&quiet, &[done.clone(), done]), None, "not asked");
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Done),
        Just(Outcome::Waiting),
        Just(failed(ErrorKind::Capacity)),
        Just(failed(ErrorKind::Transient)),
    ]
}

proptest! {
    /// Whatever the instants (going back, jumping decades) and outcomes, the shell decides
    /// without panicking, its memory of failures never outlives its window, and it never
    /// invents a wish for an early decision the plan did not hold.
    #[test]
    fn the_shell_never_panics_and_forgets_on_time(
        steps in prop::collection::vec(
            (-1_000_000_000i64..3_000_000_000, prop::collection::vec(outcome(), 0..4), 0u64..4),
            1..12,
        ),
    ) {
        let mut s = shell();
        let keep = secs(600);
        for (at, outcomes, jobs) in steps {
            let now = Timestamp::from_second(at).unwrap();
            let queued = (0..jobs).map(|i| synthetic::queued_job(i, &labels(), now)).collect();
            let d = s.decide(reading(&s, now, queued));
            for f in &d.snapshot.create_failures {
                prop_assert!(now.duration_since(f.at) <= keep);
            }
            let next = s.settle(&d.plan, &outcomes);
            prop_assert!(next.is_none() || next == d.plan.next_decision);
        }
    }
}

#[test]
fn an_unreadable_identity_never_hides_why_the_server_list_is_missing() {
    let mut s = shell();
    let now = t(NOW);
    let mut r = reading(&s, now, vec![]);
    r.identity = Identity::Unreadable("timeout".into());
    r.servers = Source::unavailable("Hetzner: 503");
    let d = s.decide(r);
    assert_eq!(d.snapshot.servers, Source::unavailable("Hetzner: 503"));
}

#[test]
fn deciding_on_a_held_snapshot_is_deciding_on_a_reading() {
    let now = t(NOW);
    let runner = synthetic::runner(1, "r", &labels());
    let steps = [
        vec![synthetic::running_job(1, &runner, now)],
        vec![synthetic::queued_job(2, &labels(), now)],
        vec![],
    ];
    let (mut by_reading, mut in_place) = (shell(), shell());
    for (i, jobs) in steps.into_iter().enumerate() {
        let at = now + secs(60 * i as i64);
        let r = reading(&by_reading, at, jobs);
        let mut held = autoscaler_core::Snapshot::new(at);
        held.jobs = r.jobs.clone();
        held.runners = r.runners.clone();
        held.servers = r.servers.clone();
        held.nodes = r.nodes.clone();
        held.pods = r.pods.clone();
        let (forge, identity) = (r.forge, r.identity.clone());
        let d = by_reading.decide(r);
        let plan = in_place.decide_in(&mut held, forge, identity);
        assert_eq!(plan, d.plan);
        assert_eq!(held, d.snapshot);
    }
}
