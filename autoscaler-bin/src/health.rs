//! Liveness and readiness, from the loop's own clock, and why it is not ready.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use autoscaler_core::Timestamp;

/// When the loop last ticked, and last read every source.
#[derive(Debug)]
pub(crate) struct Health {
    started: i64,
    /// Still connecting at start: alive (it retries by design; a restart would not help) and
    /// not ready.
    starting: AtomicBool,
    last_tick: AtomicI64,
    last_success: AtomicI64,
    interval: i64,
    call_timeout: i64,
    /// What the last tick (or connection attempt) could not read; empty when it read everything.
    problem: Mutex<String>,
}

impl Health {
    pub(crate) fn new(now: Timestamp, interval: Duration, call_timeout: Duration) -> Self {
        Self {
            started: now.as_second(),
            starting: AtomicBool::new(true),
            last_tick: AtomicI64::new(0),
            last_success: AtomicI64::new(0),
            interval: i64::try_from(interval.as_secs()).unwrap_or(i64::MAX),
            call_timeout: i64::try_from(call_timeout.as_secs()).unwrap_or(i64::MAX),
            problem: Mutex::new("connecting to Gitea, Hetzner and Kubernetes".to_owned()),
        }
    }

    fn say(&self, problem: String) {
        // A poisoned lock only means a panic elsewhere mid-write; the text is still a text.
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }

    /// Connecting at start failed for `why`; it is retried.
    pub(crate) fn connecting(&self, why: &str) {
        self.say(format!("cannot start yet (retrying): {why}"));
    }

    /// Connected: the loop takes over.
    pub(crate) fn connected(&self, now: Timestamp) {
        self.last_tick.store(now.as_second(), Ordering::Relaxed);
        self.starting.store(false, Ordering::Relaxed);
        self.say("no tick has ended yet".to_owned());
    }

    /// A tick ended at `now`; `problem` says what it could not read, `None` when it read every
    /// source.
    pub(crate) fn ticked(&self, now: Timestamp, problem: Option<String>) {
        self.last_tick.store(now.as_second(), Ordering::Relaxed);
        match problem {
            None => {
                self.last_success.store(now.as_second(), Ordering::Relaxed);
                self.say(String::new());
            }
            Some(p) => self.say(p),
        }
    }

    /// A follower's round ended at `now`: it reads nothing but the lease, so it is ready when
    /// the lease answered (`problem` is `None`), and a rolling update can go on while another
    /// replica leads.
    pub(crate) fn following(&self, now: Timestamp, problem: Option<String>) {
        self.ticked(now, problem);
    }

    /// Alive: connecting at start, or the loop ticked recently (a tick may take a read and an
    /// act, each up to the call timeout, besides the interval), or it only just started.
    pub(crate) fn alive(&self, now: Timestamp) -> bool {
        if self.starting.load(Ordering::Relaxed) {
            return true;
        }
        let limit = 3 * self.interval + 2 * self.call_timeout;
        let last = self.last_tick.load(Ordering::Relaxed).max(self.started);
        now.as_second() - last <= limit
    }

    /// Ready: a tick read every source within three intervals. Otherwise, why not.
    pub(crate) fn readiness(&self, now: Timestamp) -> Result<(), String> {
        let problem = self
            .problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if self.starting.load(Ordering::Relaxed) {
            return Err(problem);
        }
        let last = self.last_success.load(Ordering::Relaxed);
        let limit = 3 * self.interval;
        if last == 0 {
            return Err(format!("no tick has read every source yet: {problem}"));
        }
        let ago = now.as_second() - last;
        if ago <= limit {
            return Ok(());
        }
        let since = if problem.is_empty() {
            "the loop has not ticked since".to_owned()
        } else {
            problem
        };
        Err(format!(
            "the last tick that read every source ended {ago} s ago (ready means within {limit} s): \
             {since}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn ready_needs_a_complete_tick_within_three_intervals() {
        let h = Health::new(t(0), Duration::from_secs(5), Duration::from_secs(10));
        h.connected(t(0));
        assert!(
            h.readiness(t(1)).is_err(),
            "not before the first complete tick"
        );
        assert!(h.alive(t(1)));
        h.ticked(t(5), Some("gitea: connection refused".into()));
        let why = h.readiness(t(5)).unwrap_err();
        assert!(why.contains("no tick has read every source yet: gitea: connection refused"));
        h.ticked(t(10), None);
        assert!(h.readiness(t(25)).is_ok());
        let why = h.readiness(t(26)).unwrap_err();
        assert!(why.contains("16 s ago (ready means within 15 s)"), "{why}");
        assert!(
            h.alive(t(45)) && !h.alive(t(46)),
            "3 × 5 s + 2 × 10 s after the last tick"
        );
    }

    #[test]
    fn while_connecting_it_is_alive_and_says_why_it_is_not_ready() {
        let h = Health::new(t(0), Duration::from_secs(5), Duration::from_secs(10));
        h.connecting("Kubernetes: connection refused");
        assert!(
            h.alive(t(3_600)),
            "retrying at start is no reason to restart"
        );
        assert_eq!(
            h.readiness(t(3_600)).unwrap_err(),
            "cannot start yet (retrying): Kubernetes: connection refused"
        );
        h.connected(t(3_600));
        assert!(!h.alive(t(3_636)));
    }
}
