//! Liveness and readiness, from the loop's own clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use autoscaler_core::Timestamp;

/// When the loop last ticked, and last read every source.
#[derive(Debug)]
pub(crate) struct Health {
    started: i64,
    last_tick: AtomicI64,
    last_success: AtomicI64,
    interval: i64,
    call_timeout: i64,
}

impl Health {
    pub(crate) fn new(now: Timestamp, interval: Duration, call_timeout: Duration) -> Self {
        Self {
            started: now.as_second(),
            last_tick: AtomicI64::new(0),
            last_success: AtomicI64::new(0),
            interval: i64::try_from(interval.as_secs()).unwrap_or(i64::MAX),
            call_timeout: i64::try_from(call_timeout.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// A tick ended at `now`; `complete` when every source was read.
    pub(crate) fn ticked(&self, now: Timestamp, complete: bool) {
        self.last_tick.store(now.as_second(), Ordering::Relaxed);
        if complete {
            self.last_success.store(now.as_second(), Ordering::Relaxed);
        }
    }

    /// Alive: the loop ticked recently (a tick may take a read and an act, each up to the call
    /// timeout, besides the interval), or it only just started.
    pub(crate) fn alive(&self, now: Timestamp) -> bool {
        let limit = 3 * self.interval + 2 * self.call_timeout;
        let last = self.last_tick.load(Ordering::Relaxed).max(self.started);
        now.as_second() - last <= limit
    }

    /// Ready: a tick read every source within three intervals.
    pub(crate) fn ready(&self, now: Timestamp) -> bool {
        let last = self.last_success.load(Ordering::Relaxed);
        last > 0 && now.as_second() - last <= 3 * self.interval
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
        assert!(!h.ready(t(1)), "not before the first complete tick");
        assert!(h.alive(t(1)));
        h.ticked(t(5), false);
        assert!(!h.ready(t(5)), "an incomplete read is not ready");
        h.ticked(t(10), true);
        assert!(h.ready(t(25)) && !h.ready(t(26)));
        assert!(
            h.alive(t(45)) && !h.alive(t(46)),
            "3 × 5 s + 2 × 10 s after the last tick"
        );
    }
}
