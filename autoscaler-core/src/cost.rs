//! What servers cost: every started billing period is paid in full, at the server's hourly
//! price. One rule for the daemon's cost metrics and the simulator's bill, and the same one the
//! decision keeps and tears down by ([`period_end`]).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::billing::period_end;

/// The hours paid for a server created at `created` that lives until `until`: up to the end of
/// the billing period `until` lies in, so at least one period. Never panics.
pub fn paid_hours(created: Timestamp, until: Timestamp, period: SignedDuration) -> f64 {
    hours_between(created, period_end(created, until, period))
}

fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    // Within jiff's range the difference always fits; a paid end before the creation is none.
    to.duration_since(from)
        .max(SignedDuration::ZERO)
        .as_secs_f64()
        / 3600.0
}

/// Counts what servers have cost so far as their billing periods start, each period once.
///
/// Tell it, as often as you like, until when each server is paid (a plan's `paid_until`, or
/// [`period_end`] at the instant it is deleted); it adds what was not counted yet. A server that
/// is gone can be forgotten: what it cost stays counted.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// Per server: until when it was counted.
    counted: BTreeMap<u64, Timestamp>,
    euros: f64,
    hours: f64,
}

impl Meter {
    /// A meter that has counted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Server `id`, created at `created` and priced at `hourly` euros per hour, is paid until
    /// `paid_until`: counts the hours beyond what was counted for it before and returns their
    /// euros. An earlier `paid_until` than before counts nothing.
    pub fn bill(&mut self, id: u64, created: Timestamp, paid_until: Timestamp, hourly: f64) -> f64 {
        let from = self.counted.get(&id).copied().unwrap_or(created);
        if paid_until <= from {
            return 0.0;
        }
        self.counted.insert(id, paid_until);
        let hours = hours_between(from, paid_until);
        let euros = hours * hourly;
        self.hours += hours;
        self.euros += euros;
        euros
    }

    /// Forgets every server `keep` says is gone; what they cost stays counted.
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.counted.retain(|id, _| keep(*id));
    }

    /// Forgets server `id`.
    pub fn forget(&mut self, id: u64) {
        self.counted.remove(&id);
    }

    /// Euros counted so far.
    pub fn euros(&self) -> f64 {
        self.euros
    }

    /// Server-hours paid so far.
    pub fn hours(&self) -> f64 {
        self.hours
    }

    /// Servers it is keeping track of.
    pub fn servers(&self) -> usize {
        self.counted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const HOUR: SignedDuration = SignedDuration::from_hours(1);

    #[test]
    fn every_started_period_is_paid_in_full() {
        let c = t("2026-11-25T10:00:00Z");
        assert_eq!(paid_hours(c, c, HOUR), 1.0);
        assert_eq!(paid_hours(c, t("2026-11-25T10:59:59Z"), HOUR), 1.0);
        assert_eq!(
            paid_hours(c, t("2026-11-25T11:00:00Z"), HOUR),
            2.0,
            "the instant a period ends, the next has started, as the decision counts it"
        );
        let minute = SignedDuration::from_mins(1);
        assert_eq!(paid_hours(c, t("2026-11-25T10:02:30Z"), minute), 3.0 / 60.0);
        assert_eq!(paid_hours(c, t("2026-11-25T09:00:00Z"), HOUR), 1.0);
    }

    #[test]
    fn each_period_is_counted_once_and_a_forgotten_server_stays_paid() {
        let c = t("2026-11-25T10:00:00Z");
        let mut m = Meter::new();
        let end = |now| period_end(c, t(now), HOUR);
        assert_eq!(m.bill(1, c, end("2026-11-25T10:00:00Z"), 0.5), 0.5);
        assert_eq!(m.bill(1, c, end("2026-11-25T10:30:00Z"), 0.5), 0.0);
        assert_eq!(m.bill(1, c, end("2026-11-25T11:10:00Z"), 0.5), 0.5);
        assert_eq!(
            m.bill(1, c, end("2026-11-25T10:10:00Z"), 0.5),
            0.0,
            "never back"
        );
        m.bill(2, c, end("2026-11-25T10:00:00Z"), 1.0);
        m.retain(|id| id == 2);
        assert_eq!(m.servers(), 1);
        assert_eq!(m.euros(), 2.0);
        assert_eq!(m.hours(), 3.0);
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let mut m = Meter::new();
        let end = period_end(Timestamp::MIN, Timestamp::MAX, HOUR);
        assert!(m.bill(1, Timestamp::MIN, end, 1.0) > 0.0);
        assert!(paid_hours(Timestamp::MAX, Timestamp::MIN, SignedDuration::MAX) >= 0.0);
    }
}
