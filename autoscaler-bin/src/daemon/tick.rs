//! One tick: observe, decide, act (when leading), remember.

use std::time::{Duration, Instant};

use autoscaler_core::ports::{DrainProgress, ErrorKind, ProviderError};
use autoscaler_core::{
    Action, CreateFailure, CreateFailureKind, Plan, Policy, Snapshot, Timestamp, decide,
};

use super::execute::{Done, execute};
use super::observe::observe;
use super::{Call, Memory, Outcome, Providers};

/// What one tick saw and did.
#[derive(Debug)]
pub(crate) struct TickReport {
    /// What was read.
    pub(crate) snapshot: Snapshot,
    /// What the core decided.
    pub(crate) plan: Plan,
    /// What became of each action; empty when another replica leads.
    pub(crate) outcomes: Vec<Outcome>,
    /// Every call made, reads and actions.
    pub(crate) calls: Vec<Call>,
    /// Sources that could not be read.
    pub(crate) read_errors: Vec<ProviderError>,
    /// When the plan wants the next decision, sooner than the poll: honoured only when every
    /// action went through.
    pub(crate) next_decision: Option<Timestamp>,
    /// How long the tick took.
    pub(crate) seconds: f64,
}

impl TickReport {
    /// Every source was read (actions may still have failed; they are retried by design).
    pub(crate) fn read_everything(&self) -> bool {
        self.read_errors.is_empty()
            && [
                self.snapshot.jobs.is_complete(),
                self.snapshot.runners.is_complete(),
                self.snapshot.servers.is_complete(),
                self.snapshot.nodes.is_complete(),
                self.snapshot.pods.is_complete(),
            ]
            .iter()
            .all(|c| *c)
    }
}

/// The plan's `next_decision`, when every action went through: a failed call, or a drain still
/// waiting for pods (or refused by a PodDisruptionBudget), waits for the next poll, so a stuck
/// teardown cannot turn the loop into one read of every service a second. Which actions want
/// an early decision is the core's to say, not this shell's.
fn early_decision(plan: &Plan, outcomes: &[Outcome]) -> Option<Timestamp> {
    let through = !outcomes.is_empty()
        && outcomes.iter().all(|o| {
            matches!(
                o.result,
                Ok(Done::Ok | Done::Created(_) | Done::Drain(DrainProgress::Drained))
            )
        });
    plan.next_decision.filter(|_| through)
}

/// Runs one tick at `now`. Only a leading replica carries the plan out.
pub(crate) async fn tick(
    p: &Providers,
    policy: &Policy,
    memory: &mut Memory,
    now: Timestamp,
    leading: bool,
    limit: Duration,
) -> TickReport {
    let started = Instant::now();
    let observation = observe(p, memory, now, limit).await;
    let plan = decide(policy, &observation.snapshot);
    let outcomes = if leading {
        execute(p, policy, &plan, &observation.snapshot, now, limit).await
    } else {
        Vec::new()
    };
    let mut calls = observation.calls;
    for o in &outcomes {
        calls.push(o.call.clone());
        let Err(e) = &o.result else { continue };
        tracing::warn!(action = o.action.kind(), kind = e.kind.as_str(), error = %e, "action failed");
        if let Action::CreateServer {
            pool,
            server_type,
            location,
            ..
        } = &o.action
        {
            memory.record_failure(CreateFailure {
                pool: pool.clone(),
                server_type: server_type.clone(),
                location: location.clone(),
                at: now,
                kind: if e.kind == ErrorKind::Capacity {
                    CreateFailureKind::Capacity
                } else {
                    CreateFailureKind::Other
                },
                message: e.message.clone(),
            });
        }
    }
    for e in &observation.errors {
        tracing::warn!(service = %e.service, kind = e.kind.as_str(), error = %e, "could not read");
    }
    let next_decision = early_decision(&plan, &outcomes);
    TickReport {
        snapshot: observation.snapshot,
        plan,
        outcomes,
        calls,
        read_errors: observation.errors,
        next_decision,
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests;
