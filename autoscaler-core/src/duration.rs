//! Durations in configuration files: `"5m"`, `"1h 30m"`, `"PT90S"` or a plain number of seconds.
//!
//! People write configuration by hand; jiff's friendly format reads what they type and prints
//! back the same shape, so `check-config` output can be pasted into a file again.

use jiff::SignedDuration;
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Serializes as the friendly format, e.g. `"5m"`.
pub(crate) fn serialize<S: Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{d:#}"))
}

/// Deserializes from a friendly or ISO 8601 string, or from a number of seconds.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = SignedDuration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration such as \"5m\", \"1h 30m\" or a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(SignedDuration::from_secs)
            .map_err(|_| E::custom(format!("{v} seconds is too long")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(SignedDuration::from_secs(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        SignedDuration::try_from_secs_f64(v).map_err(|e| E::custom(format!("{v} seconds: {e}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse::<SignedDuration>()
            .map_err(|e| E::custom(format!("{v:?} is not a duration ({e}); write e.g. \"5m\"")))
    }
}

/// The same forms for an optional duration; absent or `null` is `None`.
pub(crate) mod option {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        d: &Option<SignedDuration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SignedDuration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] SignedDuration);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(d)| d))
    }
}
