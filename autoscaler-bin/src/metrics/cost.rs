//! What this installation's servers cost: the hourly price of those that exist now, and every
//! started billing period paid, each once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use autoscaler_core::Server;
use autoscaler_core::cost::Meter;
use autoscaler_core::ports::Price;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use super::known::{FloatGauge, Known};
use crate::daemon::TickReport;

#[derive(Default)]
pub(super) struct Cost {
    euros_per_hour: Known<FloatGauge>,
    euros_spent: Counter<f64, AtomicU64>,
    /// Hourly net prices by (server type, location), read from Hetzner.
    prices: Mutex<BTreeMap<(String, String), f64>>,
    /// Each started billing period once.
    meter: Mutex<Meter>,
}

impl Cost {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "autoscaler_cost_euros_per_hour",
            "Hourly price of the servers that exist now (net, EUR); absent while they cannot be read",
            self.euros_per_hour.family(),
        );
        r.register(
            "autoscaler_cost_euros",
            "Started server hours paid since this process started (net, EUR)",
            self.euros_spent.clone(),
        );
    }

    pub(super) fn set_prices(&self, prices: &[Price]) {
        let mut p = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        for price in prices {
            p.insert(
                (price.server_type.clone(), price.location.clone()),
                price.hourly_net,
            );
        }
    }

    pub(super) fn record(&self, r: &TickReport) {
        let prices = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        let mut meter = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        let servers: BTreeMap<u64, &Server> = r
            .snapshot
            .servers
            .items()
            .iter()
            .map(|s| (s.id, s))
            .collect();
        let mut per_hour = 0.0;
        // Our machines as the plan reports them: paid until the end of the period their pool's
        // billing period says has started (another installation's servers are not ours to pay).
        for n in &r.plan.nodes {
            let (Some(id), Some(paid_until)) = (n.server_id, n.paid_until) else {
                continue;
            };
            let Some(s) = servers.get(&id) else { continue };
            let price = prices
                .get(&(s.server_type.clone(), s.location.clone()))
                .copied()
                .unwrap_or(0.0);
            per_hour += price;
            self.euros_spent
                .inc_by(meter.bill(id, s.created, paid_until, price));
        }
        if r.snapshot.servers.is_complete() {
            self.euros_per_hour.set(per_hour);
            meter.retain(|id| servers.contains_key(&id));
        } else {
            self.euros_per_hour.unknown();
        }
    }

    /// Another replica leads: the fleet's price is its to report.
    pub(super) fn unknown(&self) {
        self.euros_per_hour.unknown();
    }
}
