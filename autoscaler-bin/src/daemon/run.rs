//! The loop: tick every poll interval, at once after a webhook (a burst is one tick), a second
//! after a teardown step (so a teardown takes seconds, not minutes), and only the leader acts.
//! On shutdown the tick under way finishes (every call is bounded), the lease is released, and
//! the loop ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autoscaler_core::ports::Leadership;
use autoscaler_core::shell::Shell;
use autoscaler_core::{Policy, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Providers, Warned, tick};
use crate::health::Health;
use crate::metrics::Metrics;

/// How long the loop waits after a webhook before it ticks, so a burst is one tick.
pub(crate) const COALESCE: Duration = Duration::from_secs(1);
/// How soon the loop ticks again after a teardown step.
pub(crate) const FOLLOW_UP: Duration = Duration::from_secs(1);
/// The least time between two ticks a webhook brought forward: a flood of deliveries (or of
/// replays) cannot turn the loop into one read of every service a second.
pub(crate) const EARLY_GAP: Duration = Duration::from_secs(3);
/// How often prices are read again.
const PRICES_EVERY: Duration = Duration::from_secs(3600);

/// Pushes the metrics to a Pushgateway after every tick.
#[derive(Clone)]
pub(crate) struct Pusher {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
}

impl Pusher {
    async fn push(&self, metrics: &Metrics) {
        let url = format!(
            "{}/metrics/job/gitea-ci-autoscaler",
            self.url.trim_end_matches('/')
        );
        let result = self
            .http
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .timeout(Duration::from_secs(5))
            .body(metrics.encode_for_push())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = result {
            tracing::warn!(error = %e, "pushing metrics failed");
        }
    }
}

/// Everything the loop needs.
pub(crate) struct Loop {
    pub(crate) providers: Providers,
    pub(crate) policy: Policy,
    pub(crate) poll: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) lease: Option<Arc<dyn Leadership>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Arc<Health>,
    pub(crate) trigger: Arc<Notify>,
    pub(crate) pusher: Option<Pusher>,
}

impl Loop {
    /// Whether this replica leads now; when the lease cannot be read, it follows and says why.
    async fn leading(&self, now: Timestamp) -> (bool, Option<String>) {
        let Some(lease) = &self.lease else {
            return (true, None);
        };
        match lease.acquire_or_renew(now).await {
            Ok(leads) => (leads, None),
            Err(e) => {
                // Without the lease confirmed, act as a follower: never two leaders.
                tracing::warn!(error = %e, "cannot renew the lease; not acting this tick");
                (false, Some(format!("cannot read the lease: {e}")))
            }
        }
    }

    /// Waits `wait`, or less when a webhook asks for an early tick (coalesced, and at most one
    /// per [`EARLY_GAP`]). `false` when shutting down.
    async fn pause(
        &self,
        shutdown: &CancellationToken,
        wait: Duration,
        last_early: &mut Option<tokio::time::Instant>,
    ) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
            () = self.trigger.notified() => {
                let gap = last_early.map_or(Duration::ZERO, |t| EARLY_GAP.saturating_sub(t.elapsed()));
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(COALESCE.max(gap)) => {}
                }
                *last_early = Some(tokio::time::Instant::now());
            }
        }
        true
    }

    /// Runs until `shutdown` is cancelled. Returns the number of rounds, leading or following
    /// (for tests).
    pub(crate) async fn run(self, shutdown: CancellationToken) -> u64 {
        let mut shell = Shell::new(self.policy.clone());
        let mut warned = Warned::default();
        let mut rounds = 0;
        let mut prices_read: Option<Instant> = None;
        let mut was_leading = false;
        let mut last_early: Option<tokio::time::Instant> = None;
        loop {
            let now = Timestamp::now();
            let (leading, lease_problem) = self.leading(now).await;
            rounds += 1;
            if leading != was_leading {
                tracing::info!(leading, "leadership changed");
                was_leading = leading;
                // What this replica remembered of an earlier term may be stale: the leader in
                // between has moved on. It starts as after a restart, from the labels.
                shell = Shell::new(self.policy.clone());
            }
            if !leading {
                // A follower reads nothing (the leader's reads are enough, and Hetzner's budget
                // is shared) and reports nothing of the fleet (the leader does, so a sum over
                // replicas counts it once). It is ready when the lease answered.
                self.metrics.follow();
                self.health.following(now, lease_problem);
                if !self.pause(&shutdown, self.poll, &mut last_early).await {
                    break;
                }
                continue;
            }
            if prices_read.is_none_or(|t| t.elapsed() >= PRICES_EVERY) {
                match self.providers.cloud.prices().await {
                    Ok(p) => {
                        self.metrics.set_prices(&p);
                        prices_read = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read prices; cost metrics lag"),
                }
            }
            self.metrics.set_leader(true);
            let report = tick(&self.providers, &mut shell, now, true, self.call_timeout).await;
            self.metrics.record(&report, now);
            self.health.ticked(now, report.unread());
            let failed = report.outcomes.iter().filter(|o| o.result.is_err()).count();
            tracing::info!(
                actions = report.plan.actions.len(),
                failed,
                unreadable = report.read_errors.len(),
                seconds = report.seconds,
                "tick"
            );
            for a in &report.plan.actions {
                tracing::debug!(action = a.action.kind(), reason = %a.reason, "planned");
            }
            warned.log(&report.plan);
            // Only the leader pushes: a follower's push would replace the leader's figures in
            // the Pushgateway's group.
            if let Some(p) = &self.pusher {
                p.push(&self.metrics).await;
            }
            // The plan's early decision, no sooner than FOLLOW_UP, never later than the poll.
            let wait = report.next_decision.map_or(self.poll, |at| {
                let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
                until.clamp(FOLLOW_UP, self.poll.max(FOLLOW_UP))
            });
            if !self.pause(&shutdown, wait, &mut last_early).await {
                break;
            }
        }
        if let Some(lease) = &self.lease
            && let Err(e) = lease.release().await
        {
            tracing::warn!(error = %e, "cannot release the lease; another replica waits for it to expire");
        }
        rounds
    }
}

#[cfg(test)]
mod tests;
