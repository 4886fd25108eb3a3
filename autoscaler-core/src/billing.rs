//! Billing periods: a started period is paid in full, so a paid node is kept (and reused) until
//! the end of its period and torn down only in a window just before that end.

use jiff::{SignedDuration, Timestamp};

use crate::time;

/// The end of the billing period that contains `now`, for a server created at `created`.
///
/// Periods run `[created + k·period, created + (k+1)·period)`; at exactly `created` the first
/// period has just started.
///
/// Never panics: instants anywhere in jiff's range and any period work; the result saturates
/// at `Timestamp::MAX`.
pub fn period_end(created: Timestamp, now: Timestamp, period: SignedDuration) -> Timestamp {
    let period_s = period.as_secs().max(1);
    // Both are within jiff's range (about ±10^12 s), so neither the difference nor the next
    // multiple of the period can overflow an i64.
    let age = now.as_second().saturating_sub(created.as_second());
    let started = if age < 0 { 0 } else { age / period_s };
    let elapsed = started.saturating_add(1).saturating_mul(period_s);
    time::add(created, SignedDuration::from_secs(elapsed))
}

/// Where `now` lies relative to the teardown window of the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// Too early: the period has more than `window` left.
    Before { opens: Timestamp },
    /// Teardown may start now.
    Open { closes: Timestamp },
    /// Too late to finish before the period ends; wait for the next period's window.
    Missed { next_opens: Timestamp },
}

pub(crate) fn teardown_window(
    created: Timestamp,
    now: Timestamp,
    period: SignedDuration,
    window: SignedDuration,
    lead: SignedDuration,
) -> Window {
    let end = period_end(created, now, period);
    let opens = time::sub(end, window);
    let closes = time::sub(end, lead);
    if now < opens {
        Window::Before { opens }
    } else if now <= closes {
        Window::Open { closes }
    } else {
        Window::Missed {
            next_opens: time::sub(time::add(end, period), window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    const HOUR: SignedDuration = SignedDuration::from_hours(1);

    #[test]
    fn a_started_hour_ends_an_hour_after_it_started() {
        let c = t("2026-11-25T10:17:00Z");
        assert_eq!(period_end(c, c, HOUR), t("2026-11-25T11:17:00Z"));
        assert_eq!(
            period_end(c, t("2026-11-25T11:16:59Z"), HOUR),
            t("2026-11-25T11:17:00Z")
        );
        assert_eq!(
            period_end(c, t("2026-11-25T11:17:00Z"), HOUR),
            t("2026-11-25T12:17:00Z")
        );
    }

    #[test]
    fn a_creation_time_in_the_future_counts_as_just_started() {
        let c = t("2026-11-25T10:17:00Z");
        assert_eq!(
            period_end(c, t("2026-11-25T10:00:00Z"), HOUR),
            t("2026-11-25T11:17:00Z")
        );
    }

    #[test]
    fn the_window_opens_before_the_end_and_closes_at_the_lead() {
        let c = t("2026-11-25T10:00:00Z");
        let (w, l) = (SignedDuration::from_mins(5), SignedDuration::from_mins(2));
        assert_eq!(
            teardown_window(c, t("2026-11-25T10:54:59Z"), HOUR, w, l),
            Window::Before {
                opens: t("2026-11-25T10:55:00Z")
            }
        );
        assert_eq!(
            teardown_window(c, t("2026-11-25T10:55:00Z"), HOUR, w, l),
            Window::Open {
                closes: t("2026-11-25T10:58:00Z")
            }
        );
        assert_eq!(
            teardown_window(c, t("2026-11-25T10:58:01Z"), HOUR, w, l),
            Window::Missed {
                next_opens: t("2026-11-25T11:55:00Z")
            }
        );
    }
}
