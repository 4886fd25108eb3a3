//! The client-side request budget.
//!
//! Hetzner allows 3,600 requests an hour per project, refilled at one a second, and reports
//! what is left on every response (`RateLimit-Remaining`, `RateLimit-Reset`). The budget keeps
//! the last report, estimates the refill since, and refuses to send when nothing is left or a
//! 429 came recently (backing off 1 s, 2 s, 4 s … up to 60 s, the official clients' policy), so
//! a failing create cannot spend the budget that teardowns need. It reads no clock: callers
//! pass `now`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the client knows of its Hetzner request budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBudget {
    limit: Option<u32>,
    remaining: Option<u32>,
    observed_at: Option<Timestamp>,
    reset: Option<Timestamp>,
    refill_per_second: u32,
    backoff: Duration,
    blocked_until: Option<Timestamp>,
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self {
            limit: None,
            remaining: None,
            observed_at: None,
            reset: None,
            refill_per_second: 1,
            backoff: Duration::ZERO,
            blocked_until: None,
        }
    }
}

impl RequestBudget {
    /// Records the `RateLimit-*` headers of a response received at `now`.
    pub fn observe(
        &mut self,
        now: Timestamp,
        limit: Option<u32>,
        remaining: Option<u32>,
        reset: Option<i64>,
    ) {
        if limit.is_some() {
            self.limit = limit;
        }
        if let Some(r) = remaining {
            self.remaining = Some(r);
            self.observed_at = Some(now);
        }
        if let Some(reset) = reset.and_then(|s| Timestamp::from_second(s).ok()) {
            self.reset = Some(reset);
        }
    }

    /// A request succeeded: any backoff is over.
    pub fn succeeded(&mut self) {
        self.backoff = Duration::ZERO;
        self.blocked_until = None;
    }

    /// Hetzner answered 429 at `now`: wait before the next request, longer each time.
    pub fn rate_limited(&mut self, now: Timestamp) {
        self.backoff = if self.backoff.is_zero() {
            FIRST_BACKOFF
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        self.remaining = Some(0);
        self.observed_at = Some(now);
        self.blocked_until = Some(now + SignedDuration::try_from(self.backoff).unwrap_or_default());
    }

    /// Requests left at `now`: the last report plus the refill since, capped at the limit.
    pub fn remaining(&self, now: Timestamp) -> Option<u32> {
        let (remaining, at) = (self.remaining?, self.observed_at?);
        if self.reset.is_some_and(|reset| now >= reset) {
            return self.limit.or(Some(remaining));
        }
        let elapsed = u32::try_from(now.duration_since(at).as_secs().max(0)).unwrap_or(u32::MAX);
        let refilled = remaining.saturating_add(elapsed.saturating_mul(self.refill_per_second));
        Some(self.limit.map_or(refilled, |l| refilled.min(l)))
    }

    /// Whether a request may go out at `now`; `Err` holds how long to wait.
    pub fn admit(&self, now: Timestamp) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until
            && now < until
        {
            return Err(until.duration_since(now).unsigned_abs());
        }
        match self.remaining(now) {
            Some(0) => Err(Duration::from_secs(1)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn an_unknown_budget_admits() {
        let b = RequestBudget::default();
        assert_eq!(b.remaining(t(0)), None);
        assert!(b.admit(t(0)).is_ok());
    }

    #[test]
    fn the_budget_refills_one_a_second_up_to_the_limit() {
        let mut b = RequestBudget::default();
        b.observe(t(0), Some(3600), Some(10), Some(1_800_000_000 + 3590));
        assert_eq!(b.remaining(t(0)), Some(10));
        assert_eq!(b.remaining(t(30)), Some(40));
        assert_eq!(b.remaining(t(3000)), Some(3010));
        assert_eq!(b.remaining(t(3590)), Some(3600), "full at the reset");
        b.observe(t(0), None, Some(3599), None);
        assert_eq!(b.remaining(t(100)), Some(3600), "never above the limit");
    }

    #[test]
    fn an_empty_budget_refuses_until_it_refills() {
        let mut b = RequestBudget::default();
        b.observe(t(0), Some(3600), Some(0), Some(1_800_000_000 + 3600));
        assert_eq!(b.admit(t(0)), Err(Duration::from_secs(1)));
        assert!(b.admit(t(1)).is_ok());
    }

    #[test]
    fn repeated_429s_back_off_exponentially_to_a_minute() {
        let mut b = RequestBudget::default();
        let mut waits = Vec::new();
        for i in 0..9 {
            b.rate_limited(t(i * 100));
            waits.push(b.admit(t(i * 100)).unwrap_err().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(b.admit(t(801)).is_err());
        assert!(b.admit(t(860)).is_ok());
        b.succeeded();
        b.rate_limited(t(900));
        assert_eq!(
            b.admit(t(900)).unwrap_err().as_secs(),
            1,
            "a success resets the backoff"
        );
    }
}
