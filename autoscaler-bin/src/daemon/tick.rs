//! One tick: read, let the pure shell decide, act (when leading), report the outcomes back.

use std::time::{Duration, Instant};

use autoscaler_core::ports::{DrainProgress, ProviderError};
use autoscaler_core::shell::{self, Decision, Shell};
use autoscaler_core::{Plan, Snapshot, Timestamp};

use super::execute::{Done, execute};
use super::observe::{Extras, observe};
use super::{Call, Outcome, Providers};

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
    /// What this tick could not read, for `/readyz`; `None` when it read every source.
    pub(crate) fn unread(&self) -> Option<String> {
        if self.read_everything() {
            return None;
        }
        let mut said: Vec<String> = self.read_errors.iter().map(ToString::to_string).collect();
        let lists = [
            ("jobs", self.snapshot.jobs.is_complete()),
            ("runners", self.snapshot.runners.is_complete()),
            ("servers", self.snapshot.servers.is_complete()),
            ("nodes", self.snapshot.nodes.is_complete()),
            ("runner pods", self.snapshot.pods.is_complete()),
        ];
        if said.is_empty() {
            let partial: Vec<&str> = lists
                .iter()
                .filter(|(_, complete)| !complete)
                .map(|(name, _)| *name)
                .collect();
            said.push(format!("incomplete lists: {}", partial.join(", ")));
        }
        Some(said.join("; "))
    }

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

/// What the pure shell is told about one action.
fn settled(o: &Outcome) -> shell::Outcome {
    match &o.result {
        Ok(Done::Ok | Done::Created(_) | Done::Drain(DrainProgress::Drained)) => {
            shell::Outcome::Done
        }
        Ok(Done::Drain(DrainProgress::Pending { .. })) => shell::Outcome::Waiting,
        Err(e) => shell::Outcome::Failed {
            kind: e.kind,
            message: e.message.clone(),
        },
    }
}

/// Every action carried out is logged at info with its target and the core's reason, so the
/// default log says which server was created or deleted and why; a failed one is a warning with
/// the cause.
fn log_outcome(o: &Outcome) {
    let a = &o.action;
    let server = a.server_id();
    let node = a.node();
    let runner = a.runner_id();
    match &o.result {
        Ok(Done::Created(s)) => {
            tracing::info!(action = a.kind(), server = s.id, "done: {a}: {}", o.reason)
        }
        Ok(Done::Drain(DrainProgress::Pending { .. })) => {
            tracing::info!(action = a.kind(), node, "under way: {a}: {}", o.reason)
        }
        Ok(_) => tracing::info!(
            action = a.kind(),
            server,
            node,
            runner,
            "done: {a}: {}",
            o.reason
        ),
        Err(e) => tracing::warn!(
            action = a.kind(),
            server,
            node,
            runner,
            kind = e.kind.as_str(),
            error = %e,
            "failed: {a} ({}): {e}",
            o.reason
        ),
    }
}

/// Runs one tick at `now`. Only a leading replica carries the plan out.
pub(crate) async fn tick(
    p: &Providers,
    shell: &mut Shell,
    now: Timestamp,
    leading: bool,
    limit: Duration,
) -> TickReport {
    let started = Instant::now();
    let extras = Extras {
        identity: shell.wants_identity(),
        images: shell.wants_images(now),
    };
    let observation = observe(p, now, extras, limit).await;
    let Decision { snapshot, plan } = shell.decide(observation.reading);
    let outcomes = if leading {
        execute(p, shell.policy(), &plan, now, limit).await
    } else {
        Vec::new()
    };
    let mut calls = observation.calls;
    for o in &outcomes {
        calls.push(o.call.clone());
        log_outcome(o);
    }
    for e in &observation.errors {
        tracing::warn!(service = %e.service, kind = e.kind.as_str(), error = %e, "could not read");
    }
    let settled: Vec<shell::Outcome> = outcomes.iter().map(settled).collect();
    let next_decision = shell.settle(&plan, &settled);
    TickReport {
        snapshot,
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
