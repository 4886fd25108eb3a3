//! Prometheus metrics: what the autoscaler sees, does and costs, in groups registered together
//! and fed from the tick's plan, snapshot and outcomes (kube-rs controller-rs's layout).
//!
//! Names the seed daemon used keep their names where they still mean the same
//! (`autoscaler_managed_nodes`, `autoscaler_nodes_created_total`, the `*_api_duration_seconds`
//! histograms, `autoscaler_loop_duration_seconds`, `autoscaler_provisioning_duration_seconds`,
//! `autoscaler_last_success_timestamp_seconds`, …), so existing dashboards keep working.

mod activity;
mod calls;
mod cost;
mod fleet;
mod known;
mod labels;
mod waits;

use autoscaler_core::ports::Price;
use autoscaler_core::{Config, Timestamp};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::daemon::TickReport;
use labels::Delivery;

/// Every metric the daemon exposes.
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    /// The fleet and the queue after the last tick (the leader's).
    fleet: fleet::Fleet,
    /// Actions carried out.
    activity: activity::Activity,
    /// Calls, their latency and failures, and the tick.
    calls: calls::Calls,
    /// Queue waits and join times.
    waits: waits::Waits,
    /// What the servers cost.
    cost: cost::Cost,
    leader: Gauge,
    webhooks: Family<Delivery, Counter>,
}

impl Metrics {
    /// The metrics of a daemon running `config`: every labelled family starts with a zero for
    /// each label set it can have (each action kind and result, each service and error kind,
    /// each configured server type and location, each state of each pool, each webhook
    /// result), so a panel or a `rate()` has a series before the first event.
    pub(crate) fn new(config: &Config) -> Self {
        let mut m = Self {
            registry: Registry::default(),
            fleet: fleet::Fleet::new(config),
            activity: activity::Activity::new(config),
            calls: calls::Calls::new(),
            waits: waits::Waits::new(),
            cost: cost::Cost::default(),
            leader: Gauge::default(),
            webhooks: Family::default(),
        };
        for result in crate::http::WEBHOOK_RESULTS {
            m.webhooks.get_or_create(&Delivery { result }).inc_by(0);
        }
        let mut r = Registry::default();
        m.fleet.register(&mut r);
        m.activity.register(&mut r);
        m.calls.register(&mut r);
        m.waits.register(&mut r);
        m.cost.register(&mut r);
        r.register(
            "autoscaler_leader",
            "1 when this replica leads",
            m.leader.clone(),
        );
        r.register(
            "autoscaler_webhook_deliveries",
            "Webhook deliveries by result",
            m.webhooks.clone(),
        );
        m.registry = r;
        m
    }

    /// Hourly prices by (server type, location), read from Hetzner.
    pub(crate) fn set_prices(&self, prices: &[Price]) {
        self.cost.set_prices(prices);
    }

    /// A webhook delivery, by one of [`crate::http::WEBHOOK_RESULTS`].
    pub(crate) fn webhook(&self, result: &'static str) {
        debug_assert!(
            crate::http::WEBHOOK_RESULTS.contains(&result),
            "{result} is not in WEBHOOK_RESULTS"
        );
        self.webhooks.get_or_create(&Delivery { result }).inc();
    }

    pub(crate) fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// This replica follows: the fleet, the queue and the cost are the leader's to report (so
    /// a `sum()` over replicas counts them once), and this one reads nothing.
    pub(crate) fn follow(&self) {
        self.set_leader(false);
        self.fleet.unknown();
        self.calls.unknown();
        self.cost.unknown();
    }

    /// Records everything one tick saw and did.
    pub(crate) fn record(&self, r: &TickReport, now: Timestamp) {
        self.calls.record(r, now);
        self.fleet.record(r);
        self.activity.record(r);
        self.waits.record(r);
        self.cost.record(r);
    }

    /// The registry in Prometheus' text format (OpenMetrics for `/metrics`).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap_or_default();
        out
    }

    /// The registry in the 0.0.4 text format the Pushgateway keeps types of.
    pub(crate) fn encode_for_push(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .unwrap_or_default();
        out
    }
}

#[cfg(test)]
mod tests;
