//! Arithmetic on instants and durations that never panics.
//!
//! Every instant in a snapshot comes from outside (a service, a file, a person), so anything
//! between jiff's `Timestamp::MIN` and `Timestamp::MAX` can arrive: a server created in the
//! future, a job "expected" to run for a century, `now` on the last day jiff represents. jiff's
//! operators panic when a result leaves that range; the decision uses these helpers instead,
//! which saturate at the ends. A saturated instant is always a *later* deadline or an *earlier*
//! start than the true one would be, which the rules read as "not yet", never as "act now".

use jiff::{SignedDuration, Timestamp};

/// `t + d`, clamped to the representable range.
pub(crate) fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `t - d`, clamped to the representable range.
pub(crate) fn sub(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_sub(d).unwrap_or(if d.is_negative() {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

/// How long `from` lies before `to`; negative when `from` is later. Exact: the difference of
/// two instants always fits a duration.
pub(crate) fn between(from: Timestamp, to: Timestamp) -> SignedDuration {
    to.duration_since(from)
}

/// `a - b`, clamped to the representable range.
pub(crate) fn minus(a: SignedDuration, b: SignedDuration) -> SignedDuration {
    a.saturating_sub(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_saturate_instead_of_panicking() {
        assert_eq!(add(Timestamp::MAX, SignedDuration::MAX), Timestamp::MAX);
        assert_eq!(add(Timestamp::MIN, SignedDuration::MIN), Timestamp::MIN);
        assert_eq!(sub(Timestamp::MIN, SignedDuration::MAX), Timestamp::MIN);
        assert_eq!(sub(Timestamp::MAX, SignedDuration::MIN), Timestamp::MAX);
        assert_eq!(
            minus(SignedDuration::MIN, SignedDuration::MAX),
            SignedDuration::MIN
        );
        let span = between(Timestamp::MIN, Timestamp::MAX);
        assert!(span.is_positive());
        assert_eq!(between(Timestamp::MAX, Timestamp::MIN), -span);
    }

    #[test]
    fn inside_the_range_it_is_plain_arithmetic() {
        let t: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");
        let d = SignedDuration::from_mins(5);
        assert_eq!(add(t, d), t + d);
        assert_eq!(sub(t, d), t - d);
        assert_eq!(between(t, t + d), d);
    }
}
