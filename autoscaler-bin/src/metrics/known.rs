//! A gauge that is absent while its value is unknown.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// A float gauge.
pub(super) type FloatGauge = Gauge<f64, AtomicU64>;

/// No labels: the family's one series, present or not.
type Unlabelled = [(&'static str, &'static str); 0];

/// A gauge absent while its value is unknown (its source unreadable, Hetzner not asked yet,
/// another replica leading): a panel then shows no data and an absence alert can fire, where a
/// 0 would say "nothing waits" or "the budget is spent".
pub(super) struct Known<G>(Family<Unlabelled, G>);

impl<G: Default> Default for Known<G> {
    fn default() -> Self {
        Self(Family::default())
    }
}

impl<G> Known<G> {
    /// The family, to register.
    pub(super) fn family(&self) -> Family<Unlabelled, G> {
        self.0.clone()
    }

    pub(super) fn unknown(&self) {
        self.0.clear();
    }
}

impl Known<Gauge> {
    pub(super) fn set(&self, value: i64) {
        self.0.get_or_create(&[]).set(value);
    }
}

impl Known<FloatGauge> {
    pub(super) fn set(&self, value: f64) {
        self.0.get_or_create(&[]).set(value);
    }
}
