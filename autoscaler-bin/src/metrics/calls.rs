//! The calls a tick made: latency per service, failures by kind, Hetzner's request budget, and
//! the tick itself.

use autoscaler_core::Timestamp;
use autoscaler_core::ports::{ErrorKind, Service};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::known::Known;
use super::labels::ServiceKind;
use crate::daemon::TickReport;

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

pub(super) struct Calls {
    api_errors: Family<ServiceKind, Counter>,
    /// Gitea, Hetzner, Kubernetes.
    api_duration: [Histogram; 3],
    loop_duration: Histogram,
    last_success: Gauge,
    hetzner_remaining: Known<Gauge>,
}

impl Calls {
    /// A zero for every service and error kind.
    pub(super) fn new() -> Self {
        let c = Self {
            api_errors: Family::default(),
            api_duration: std::array::from_fn(|_| latency()),
            loop_duration: latency(),
            last_success: Gauge::default(),
            hetzner_remaining: Known::default(),
        };
        for service in Service::ALL {
            for kind in ErrorKind::ALL {
                c.api_errors
                    .get_or_create(&ServiceKind {
                        service: service.as_str(),
                        kind: kind.as_str(),
                    })
                    .inc_by(0);
            }
        }
        c
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "autoscaler_api_errors",
            "Failed API calls by service and kind",
            self.api_errors.clone(),
        );
        for (service, histogram) in Service::ALL.into_iter().zip(&self.api_duration) {
            let (name, help) = match service {
                Service::Gitea => ("autoscaler_gitea_api_duration_seconds", "Gitea API latency"),
                Service::Hetzner => (
                    "autoscaler_hetzner_api_duration_seconds",
                    "Hetzner API latency",
                ),
                Service::Kubernetes => (
                    "autoscaler_k8s_api_duration_seconds",
                    "Kubernetes API latency",
                ),
            };
            r.register(name, help, histogram.clone());
        }
        r.register(
            "autoscaler_loop_duration_seconds",
            "Tick duration",
            self.loop_duration.clone(),
        );
        r.register(
            "autoscaler_last_success_timestamp_seconds",
            "Unix time of the last tick that read every source",
            self.last_success.clone(),
        );
        r.register(
            "autoscaler_hetzner_requests_remaining",
            "Hetzner API requests left in the hour; absent until Hetzner has answered",
            self.hetzner_remaining.family(),
        );
    }

    fn histogram_of(&self, s: Service) -> &Histogram {
        &self.api_duration[match s {
            Service::Gitea => 0,
            Service::Hetzner => 1,
            Service::Kubernetes => 2,
        }]
    }

    pub(super) fn record(&self, r: &TickReport, now: Timestamp) {
        self.loop_duration.observe(r.seconds);
        if r.read_everything() {
            self.last_success.set(now.as_second());
        }
        for c in &r.calls {
            self.histogram_of(c.service).observe(c.seconds);
            if let Some(kind) = c.error {
                self.api_errors
                    .get_or_create(&ServiceKind {
                        service: c.service.as_str(),
                        kind: kind.as_str(),
                    })
                    .inc();
            }
        }
        if let Some(b) = r.snapshot.hetzner_budget {
            self.hetzner_remaining.set(i64::from(b.remaining));
        }
    }

    /// Another replica leads: the budget it spends is not ours to show.
    pub(super) fn unknown(&self) {
        self.hetzner_remaining.unknown();
    }
}
