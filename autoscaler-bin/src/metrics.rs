//! Prometheus metrics: what the autoscaler sees, does and costs.
//!
//! Names the seed daemon used keep their names where they still mean the same
//! (`autoscaler_managed_nodes`, `autoscaler_nodes_created_total`, the `*_api_duration_seconds`
//! histograms, `autoscaler_loop_duration_seconds`, `autoscaler_provisioning_duration_seconds`,
//! `autoscaler_last_success_timestamp_seconds`, …), so existing dashboards keep working.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use autoscaler_core::cost::Meter;
use autoscaler_core::ports::{Price, Service};
use autoscaler_core::{Action, JobStatus, Server, ServerSpec, Timestamp};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::daemon::TickReport;
use crate::daemon::execute::Done;

type Labels2 = [(&'static str, String); 2];
type Labels1 = [(&'static str, String); 1];
type FloatGauge = Gauge<f64, AtomicU64>;

fn histogram(buckets: Vec<f64>) -> Histogram {
    Histogram::new(buckets)
}

/// A gauge that is absent while its value is unknown (its source unreadable, Hetzner not asked
/// yet, another replica leading): a panel then shows no data and an absence alert can fire,
/// where a 0 would say "nothing waits" or "the budget is spent".
struct Known<G>(Family<Vec<(String, String)>, G>);

impl<G: Default> Default for Known<G> {
    fn default() -> Self {
        Self(Family::default())
    }
}

impl<G> Clone for Known<G> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Known<Gauge> {
    fn set(&self, value: i64) {
        self.0.get_or_create(&Vec::new()).set(value);
    }
}

impl Known<FloatGauge> {
    fn set(&self, value: f64) {
        self.0.get_or_create(&Vec::new()).set(value);
    }
}

impl<G> Known<G> {
    fn unknown(&self) {
        self.0.clear();
    }
}

/// The sources a snapshot is read from, by the name `autoscaler_source_readable` gives them.
const SOURCES: [&str; 5] = [
    "gitea_jobs",
    "gitea_runners",
    "hetzner_servers",
    "kubernetes_nodes",
    "kubernetes_pods",
];

/// What is remembered to record each event once.
#[derive(Default)]
struct Seen {
    started_jobs: BTreeSet<u64>,
    joined_nodes: BTreeSet<String>,
    /// What our servers have cost, each started billing period once.
    meter: Meter,
}

/// Every metric the daemon exposes.
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    managed_nodes: Family<Labels2, Gauge>,
    desired_nodes: Known<Gauge>,
    jobs_waiting: Known<Gauge>,
    jobs_running: Known<Gauge>,
    source_readable: Family<Labels1, Gauge>,
    /// The configured pools, each shown with a zero for every state.
    pools: Vec<String>,
    nodes_created: Counter,
    created_by_placement: Family<Labels2, Counter>,
    placement_unavailable: Family<Labels2, Counter>,
    nodes_deleted: Counter,
    scale_up_errors: Counter,
    scale_down_errors: Counter,
    runners_deregistered: Counter,
    actions: Family<Labels2, Counter>,
    api_errors: Family<Labels2, Counter>,
    api_duration: [Histogram; 3],
    loop_duration: Histogram,
    queue_wait: Histogram,
    provisioning: Histogram,
    join: Histogram,
    last_success: Gauge,
    hetzner_remaining: Known<Gauge>,
    euros_per_hour: Known<FloatGauge>,
    euros_spent: Counter<f64, AtomicU64>,
    leader: Gauge,
    webhooks: Family<Labels1, Counter>,
    prices: Mutex<BTreeMap<(String, String), f64>>,
    seen: Mutex<Seen>,
}

impl Metrics {
    /// The metrics of a daemon running `config`: every labelled family starts with a zero for
    /// each label set it can have (each action kind and result, each service and error kind,
    /// each configured server type and location, each state of each pool), so a panel or a
    /// `rate()` has a series before the first event.
    pub(crate) fn new(config: &autoscaler_core::Config) -> Self {
        let mut r = Registry::default();
        let m = Self {
            managed_nodes: Family::default(),
            desired_nodes: Known::default(),
            jobs_waiting: Known::default(),
            jobs_running: Known::default(),
            source_readable: Family::default(),
            pools: config.pools.iter().map(|p| p.name.clone()).collect(),
            nodes_created: Counter::default(),
            created_by_placement: Family::default(),
            placement_unavailable: Family::default(),
            nodes_deleted: Counter::default(),
            scale_up_errors: Counter::default(),
            scale_down_errors: Counter::default(),
            runners_deregistered: Counter::default(),
            actions: Family::default(),
            api_errors: Family::default(),
            api_duration: std::array::from_fn(|_| {
                histogram(exponential_buckets(0.01, 2.0, 12).collect())
            }),
            loop_duration: histogram(exponential_buckets(0.01, 2.0, 12).collect()),
            queue_wait: histogram(vec![
                1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0,
            ]),
            provisioning: histogram(vec![30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 600.0]),
            join: histogram(vec![5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
            last_success: Gauge::default(),
            hetzner_remaining: Known::default(),
            euros_per_hour: Known::default(),
            euros_spent: Counter::default(),
            leader: Gauge::default(),
            webhooks: Family::default(),
            prices: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(Seen::default()),
            registry: Registry::default(),
        };
        r.register(
            "autoscaler_managed_nodes",
            "Managed machines by state and pool",
            m.managed_nodes.clone(),
        );
        r.register(
            "autoscaler_desired_nodes",
            "Servers wanted after the last plan, all pools",
            m.desired_nodes.0.clone(),
        );
        r.register(
            "autoscaler_jobs_waiting",
            "Runnable jobs waiting for a runner; absent while the jobs cannot be read",
            m.jobs_waiting.0.clone(),
        );
        r.register(
            "autoscaler_jobs_running",
            "Jobs a runner is working on; absent while the jobs cannot be read",
            m.jobs_running.0.clone(),
        );
        r.register(
            "autoscaler_source_readable",
            "1 when the last tick read the source in full, 0 when it could not",
            m.source_readable.clone(),
        );
        r.register(
            "autoscaler_nodes_created",
            "Servers created",
            m.nodes_created.clone(),
        );
        r.register(
            "autoscaler_nodes_created_by_placement",
            "Servers created per server type and location",
            m.created_by_placement.clone(),
        );
        r.register(
            "autoscaler_placement_unavailable",
            "Times Hetzner had no capacity for a server type in a location",
            m.placement_unavailable.clone(),
        );
        r.register(
            "autoscaler_nodes_deleted",
            "Servers deleted",
            m.nodes_deleted.clone(),
        );
        r.register(
            "autoscaler_scale_up_errors",
            "Failed create calls",
            m.scale_up_errors.clone(),
        );
        r.register(
            "autoscaler_scale_down_errors",
            "Failed teardown steps",
            m.scale_down_errors.clone(),
        );
        r.register(
            "autoscaler_runners_deregistered",
            "Runners deleted from Gitea",
            m.runners_deregistered.clone(),
        );
        r.register(
            "autoscaler_actions",
            "Actions carried out, by kind and result",
            m.actions.clone(),
        );
        r.register(
            "autoscaler_api_errors",
            "Failed API calls by service and kind",
            m.api_errors.clone(),
        );
        r.register(
            "autoscaler_gitea_api_duration_seconds",
            "Gitea API latency",
            m.api_duration[0].clone(),
        );
        r.register(
            "autoscaler_hetzner_api_duration_seconds",
            "Hetzner API latency",
            m.api_duration[1].clone(),
        );
        r.register(
            "autoscaler_k8s_api_duration_seconds",
            "Kubernetes API latency",
            m.api_duration[2].clone(),
        );
        r.register(
            "autoscaler_loop_duration_seconds",
            "Tick duration",
            m.loop_duration.clone(),
        );
        r.register(
            "autoscaler_queue_wait_seconds",
            "From a job's creation to a runner starting it",
            m.queue_wait.clone(),
        );
        r.register(
            "autoscaler_provisioning_duration_seconds",
            "From server creation to its node registering",
            m.provisioning.clone(),
        );
        r.register(
            "autoscaler_join_duration_seconds",
            "From a node registering to it being Ready",
            m.join.clone(),
        );
        r.register(
            "autoscaler_last_success_timestamp_seconds",
            "Unix time of the last tick that read every source",
            m.last_success.clone(),
        );
        r.register(
            "autoscaler_hetzner_requests_remaining",
            "Hetzner API requests left in the hour; absent until Hetzner has answered",
            m.hetzner_remaining.0.clone(),
        );
        r.register(
            "autoscaler_cost_euros_per_hour",
            "Hourly price of the servers that exist now (net, EUR); absent while they cannot be read",
            m.euros_per_hour.0.clone(),
        );
        r.register(
            "autoscaler_cost_euros",
            "Started server hours paid since this process started (net, EUR)",
            m.euros_spent.clone(),
        );
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
        m.zeros(config);
        Self { registry: r, ..m }
    }

    /// A zero for every label set a labelled counter can have.
    fn zeros(&self, config: &autoscaler_core::Config) {
        use autoscaler_core::ports::ErrorKind;
        for kind in Action::KINDS {
            for result in ["ok", "error"] {
                self.actions
                    .get_or_create(&[("action", kind.to_owned()), ("result", result.to_owned())])
                    .inc_by(0);
            }
        }
        for service in Service::ALL {
            for kind in ErrorKind::ALL {
                self.api_errors
                    .get_or_create(&[
                        ("service", service.as_str().to_owned()),
                        ("kind", kind.as_str().to_owned()),
                    ])
                    .inc_by(0);
            }
        }
        for pool in &config.pools {
            for server_type in &pool.server_types {
                for location in &pool.locations {
                    let labels = [
                        ("server_type", server_type.clone()),
                        ("location", location.clone()),
                    ];
                    self.created_by_placement.get_or_create(&labels).inc_by(0);
                    self.placement_unavailable.get_or_create(&labels).inc_by(0);
                }
            }
        }
        for result in crate::http::WEBHOOK_RESULTS {
            self.webhooks
                .get_or_create(&[("result", result.to_owned())])
                .inc_by(0);
        }
    }

    /// This replica follows: the fleet, the queue and the cost are the leader's to report (so
    /// a `sum()` over replicas counts them once), and this one reads nothing.
    pub(crate) fn follow(&self) {
        self.set_leader(false);
        self.managed_nodes.clear();
        self.desired_nodes.unknown();
        self.jobs_waiting.unknown();
        self.jobs_running.unknown();
        self.source_readable.clear();
        self.hetzner_remaining.unknown();
        self.euros_per_hour.unknown();
    }

    /// Hourly prices by (server type, location), read from Hetzner.
    pub(crate) fn set_prices(&self, prices: &[Price]) {
        let mut p = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        for price in prices {
            p.insert(
                (price.server_type.clone(), price.location.clone()),
                price.hourly_net,
            );
        }
    }

    pub(crate) fn webhook(&self, result: &str) {
        debug_assert!(
            crate::http::WEBHOOK_RESULTS.contains(&result),
            "{result} is not in WEBHOOK_RESULTS"
        );
        self.webhooks
            .get_or_create(&[("result", result.to_owned())])
            .inc();
    }

    pub(crate) fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    fn histogram_of(&self, s: Service) -> &Histogram {
        &self.api_duration[match s {
            Service::Gitea => 0,
            Service::Hetzner => 1,
            Service::Kubernetes => 2,
        }]
    }

    /// Records everything one tick saw and did.
    pub(crate) fn record(&self, r: &TickReport, now: Timestamp) {
        self.loop_duration.observe(r.seconds);
        if r.read_everything() {
            self.last_success.set(now.as_second());
        }
        for c in &r.calls {
            self.histogram_of(c.service).observe(c.seconds);
            if let Some(kind) = c.error {
                self.api_errors
                    .get_or_create(&[
                        ("service", c.service.as_str().to_owned()),
                        ("kind", kind.as_str().to_owned()),
                    ])
                    .inc();
            }
        }
        if let Some(b) = r.snapshot.hetzner_budget {
            self.hetzner_remaining.set(i64::from(b.remaining));
        }
        let snap = &r.snapshot;
        for (source, complete) in SOURCES.into_iter().zip([
            snap.jobs.is_complete(),
            snap.runners.is_complete(),
            snap.servers.is_complete(),
            snap.nodes.is_complete(),
            snap.pods.is_complete(),
        ]) {
            self.source_readable
                .get_or_create(&[("source", source.to_owned())])
                .set(i64::from(complete));
        }
        self.managed_nodes.clear();
        // The machines' states need both the servers and the nodes; without either they are
        // unknown, not zero.
        if snap.servers.is_complete() && snap.nodes.is_complete() {
            let pools = self
                .pools
                .iter()
                .chain(r.plan.nodes.iter().map(|n| &n.pool))
                .collect::<BTreeSet<_>>();
            for pool in pools {
                for state in autoscaler_core::NodeState::NAMES {
                    self.managed_nodes
                        .get_or_create(&[("state", state.to_owned()), ("pool", pool.clone())])
                        .set(0);
                }
            }
            for n in &r.plan.nodes {
                self.managed_nodes
                    .get_or_create(&[
                        ("state", n.state.name().to_owned()),
                        ("pool", n.pool.clone()),
                    ])
                    .inc();
            }
        }
        self.desired_nodes
            .set(r.plan.pools.iter().map(|p| i64::from(p.desired)).sum());
        if snap.jobs.is_complete() {
            let jobs = snap.jobs.items();
            let count = |status: JobStatus| {
                i64::try_from(jobs.iter().filter(|j| j.status == status).count())
                    .unwrap_or(i64::MAX)
            };
            self.jobs_waiting.set(count(JobStatus::Queued));
            self.jobs_running.set(count(JobStatus::InProgress));
        } else {
            self.jobs_waiting.unknown();
            self.jobs_running.unknown();
        }
        self.record_outcomes(r);
        self.record_first_times(r);
    }

    fn record_outcomes(&self, r: &TickReport) {
        for o in &r.outcomes {
            let ok = o.result.is_ok();
            self.actions
                .get_or_create(&[
                    ("action", o.action.kind().to_owned()),
                    ("result", if ok { "ok" } else { "error" }.to_owned()),
                ])
                .inc();
            match (&o.action, &o.result) {
                (
                    Action::CreateServer(ServerSpec {
                        server_type,
                        location,
                        ..
                    }),
                    Ok(_),
                ) => {
                    self.nodes_created.inc();
                    self.created_by_placement
                        .get_or_create(&[
                            ("server_type", server_type.clone()),
                            ("location", location.clone()),
                        ])
                        .inc();
                }
                (
                    Action::CreateServer(ServerSpec {
                        server_type,
                        location,
                        ..
                    }),
                    Err(e),
                ) => {
                    self.scale_up_errors.inc();
                    if e.kind == autoscaler_core::ports::ErrorKind::Capacity {
                        self.placement_unavailable
                            .get_or_create(&[
                                ("server_type", server_type.clone()),
                                ("location", location.clone()),
                            ])
                            .inc();
                    }
                }
                (Action::DeleteServer { .. }, Ok(_)) => {
                    self.nodes_deleted.inc();
                }
                (Action::DeleteRunner { .. }, Ok(_)) => {
                    self.runners_deregistered.inc();
                }
                (a, Err(_)) if a.is_destructive() => {
                    self.scale_down_errors.inc();
                }
                (Action::RecordJoined { server_id, at }, Ok(Done::Ok)) => {
                    if let Some(s) = r
                        .snapshot
                        .servers
                        .items()
                        .iter()
                        .find(|s| s.id == *server_id)
                    {
                        self.provisioning
                            .observe(at.duration_since(s.created).as_secs_f64().max(0.0));
                    }
                }
                _ => {}
            }
        }
    }

    /// Queue waits, join times and paid hours: each recorded once, when first seen.
    fn record_first_times(&self, r: &TickReport) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let running: BTreeSet<u64> = r
            .snapshot
            .jobs
            .items()
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .map(|j| j.id)
            .collect();
        for j in r.snapshot.jobs.items() {
            if let (JobStatus::InProgress, Some(started)) = (j.status, j.started)
                && seen.started_jobs.insert(j.id)
            {
                self.queue_wait
                    .observe(started.duration_since(j.created).as_secs_f64().max(0.0));
            }
        }
        if r.snapshot.jobs.is_complete() {
            seen.started_jobs.retain(|id| running.contains(id));
        }
        // Our machines only: the node list holds other installations' nodes too.
        let ours: std::collections::BTreeSet<&str> =
            r.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        for n in r.snapshot.nodes.items() {
            if !ours.contains(n.name.as_str()) {
                continue;
            }
            if let (true, Some(ready), Some(created)) = (n.ready, n.ready_since, n.created)
                && seen.joined_nodes.insert(n.name.clone())
            {
                self.join
                    .observe(ready.duration_since(created).as_secs_f64().max(0.0));
            }
        }
        let prices = self.prices.lock().unwrap_or_else(|e| e.into_inner());
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
                .inc_by(seen.meter.bill(id, s.created, paid_until, price));
        }
        if r.snapshot.servers.is_complete() {
            self.euros_per_hour.set(per_hour);
            seen.meter.retain(|id| servers.contains_key(&id));
        } else {
            self.euros_per_hour.unknown();
        }
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
mod tests {
    use autoscaler_core::ports::{ErrorKind, ProviderError};
    use autoscaler_core::{Config, Snapshot, Source, decide, synthetic};

    use super::*;
    use crate::daemon::{Call, Outcome};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn report(now: Timestamp) -> TickReport {
        report_with(now, &Config::default(), None)
    }

    /// The report of a tick at `now` under `config`, in the cluster `cluster` when known.
    fn report_with(now: Timestamp, config: &Config, cluster: Option<&str>) -> TickReport {
        let policy = config.validate().unwrap();
        let mut snapshot = Snapshot::new(now);
        let mut job =
            synthetic::queued_job(1, &["ubuntu-latest".to_owned()], t("2026-11-25T10:00:00Z"));
        job.status = JobStatus::InProgress;
        job.started = Some(t("2026-11-25T10:00:42Z"));
        job.runner_id = Some(3);
        snapshot.jobs = Source::complete(vec![
            job,
            synthetic::queued_job(2, &["ubuntu-latest".to_owned()], now),
        ]);
        snapshot.runners = Source::complete(vec![]);
        snapshot.servers = Source::complete(vec![synthetic::server(
            "default",
            "linux",
            5,
            "default-linux-5",
            t("2026-11-25T09:30:00Z"),
        )]);
        snapshot.nodes = Source::complete(vec![]);
        snapshot.pods = Source::complete(vec![]);
        snapshot.cluster = cluster.map(str::to_owned);
        let plan = decide(&policy, &snapshot);
        let create = |location: &str| {
            Action::CreateServer(ServerSpec {
                pool: "linux".into(),
                name: "x".into(),
                server_type: "ccx33".into(),
                location: location.into(),
                image: "ubuntu-24.04".into(),
                labels: Default::default(),
                node_labels: Default::default(),
            })
        };
        let call = Call {
            service: Service::Hetzner,
            name: "create_server",
            seconds: 0.2,
            error: None,
        };
        TickReport {
            outcomes: vec![
                Outcome {
                    action: create("nbg1"),
                    reason: String::new(),
                    result: Ok(Done::Ok),
                    call: call.clone(),
                },
                Outcome {
                    action: create("fsn1"),
                    reason: String::new(),
                    result: Err(ProviderError::new(
                        Service::Hetzner,
                        ErrorKind::Capacity,
                        "412",
                    )),
                    call: Call {
                        error: Some(ErrorKind::Capacity),
                        ..call.clone()
                    },
                },
            ],
            calls: vec![
                call.clone(),
                Call {
                    error: Some(ErrorKind::Capacity),
                    ..call
                },
            ],
            snapshot,
            plan,
            read_errors: vec![],
            next_decision: None,
            seconds: 0.3,
        }
    }

    #[test]
    fn a_tick_becomes_the_documented_series() {
        let m = Metrics::new(&Config::default());
        m.set_prices(&[Price {
            server_type: "cx33".into(),
            location: "nbg1".into(),
            hourly_net: 0.08,
            hourly_gross: 0.0952,
        }]);
        let now = t("2026-11-25T10:10:00Z");
        m.record(&report(now), now);
        // The same server, still in its first paid hour, is not paid twice.
        let later = t("2026-11-25T10:20:00Z");
        m.record(&report(later), later);
        let text = m.encode();
        for line in [
            "autoscaler_nodes_created_total 2",
            r#"autoscaler_nodes_created_by_placement_total{server_type="ccx33",location="nbg1"} 2"#,
            r#"autoscaler_placement_unavailable_total{server_type="ccx33",location="fsn1"} 2"#,
            "autoscaler_scale_up_errors_total 2",
            r#"autoscaler_api_errors_total{service="hetzner",kind="capacity"} 2"#,
            "autoscaler_jobs_waiting 1",
            "autoscaler_jobs_running 1",
            "autoscaler_queue_wait_seconds_sum 42.0",
            "autoscaler_queue_wait_seconds_count 1",
            "autoscaler_cost_euros_per_hour 0.08",
            "autoscaler_cost_euros_total 0.08",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        let last = format!(
            "autoscaler_last_success_timestamp_seconds {}",
            t("2026-11-25T10:20:00Z").as_second()
        );
        assert!(text.contains(&last), "{text}");
        // Past the paid hour, the next started hour is paid.
        let past = t("2026-11-25T10:31:00Z");
        m.record(&report(past), past);
        assert!(m.encode().contains("autoscaler_cost_euros_total 0.16"));
        assert!(
            m.encode_for_push()
                .contains("# TYPE autoscaler_nodes_created_total counter")
        );
    }

    #[test]
    fn cost_follows_the_pools_billing_period_and_counts_only_our_servers() {
        let price = |m: &Metrics| {
            m.set_prices(&[Price {
                server_type: "cx33".into(),
                location: "nbg1".into(),
                hourly_net: 0.06,
                hourly_gross: 0.07,
            }]);
        };
        let mut config = Config::default();
        config.pools[0].billing_period = jiff::SignedDuration::from_mins(25);
        let m = Metrics::new(&Config::default());
        price(&m);
        let line = |m: &Metrics, name: &str| {
            m.encode()
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .map(str::to_owned)
        };
        // Created 09:30; at 10:10 the second 25-minute period (09:55–10:20) has started:
        // 50 minutes paid, where an hourly period would make it 60.
        let now = t("2026-11-25T10:10:00Z");
        m.record(&report_with(now, &config, None), now);
        let total = line(&m, "autoscaler_cost_euros_total").unwrap();
        let euros: f64 = total.split(' ').nth(1).unwrap().parse().unwrap();
        assert!((euros - 0.05).abs() < 1e-9, "{total}");
        // A server of the same name from another cluster is not ours to pay.
        let m = Metrics::new(&Config::default());
        price(&m);
        let mut r = report_with(now, &Config::default(), Some("ours"));
        let mut foreign = r.snapshot.servers.items()[0].clone();
        foreign
            .labels
            .insert(autoscaler_core::keys::CLUSTER.into(), "theirs".into());
        r.snapshot.servers = Source::complete(vec![foreign]);
        r.plan = decide(&Config::default().validate().unwrap(), &r.snapshot);
        m.record(&r, now);
        assert_eq!(
            line(&m, "autoscaler_cost_euros_total").as_deref(),
            Some("autoscaler_cost_euros_total 0.0")
        );
        assert_eq!(
            line(&m, "autoscaler_cost_euros_per_hour").as_deref(),
            Some("autoscaler_cost_euros_per_hour 0.0")
        );
    }

    /// Every `autoscaler_*` series the alerts and the dashboard query exists.
    #[test]
    fn the_alerts_and_the_dashboard_query_only_real_metrics() {
        // Families appear once they have a child: fill every one.
        let m = Metrics::new(&Config::default());
        let now = t("2026-11-25T10:10:00Z");
        let mut r = report(now);
        r.snapshot.hetzner_budget = Some(autoscaler_core::ApiBudget { remaining: 3_000 });
        m.record(&r, now);
        m.webhook("queued");
        let text = m.encode();
        let types: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let exists = |name: &str| {
            if types.contains_key(name) {
                return true;
            }
            let suffixes = [
                ("_total", "counter"),
                ("_bucket", "histogram"),
                ("_sum", "histogram"),
                ("_count", "histogram"),
            ];
            suffixes.iter().any(|(suffix, kind)| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| types.get(base) == Some(kind))
            })
        };
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
        let mut checked = 0;
        for file in ["prometheusrule.yaml", "grafana-dashboard.json"] {
            let body = std::fs::read_to_string(root.join(file)).unwrap();
            let mut rest = body.as_str();
            while let Some(i) = rest.find("autoscaler_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                assert!(
                    exists(&name),
                    "{file} queries {name}, which the daemon does not export"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked}");
    }

    fn sample(m: &Metrics, series: &str) -> Option<String> {
        m.encode()
            .lines()
            .find(|l| l.starts_with(series))
            .map(|l| l[series.len()..].trim().to_owned())
    }

    #[test]
    fn what_a_source_could_not_read_is_absent_not_zero() {
        let m = Metrics::new(&Config::default());
        let now = t("2026-11-25T10:10:00Z");
        m.record(&report(now), now);
        assert_eq!(sample(&m, "autoscaler_jobs_waiting ").as_deref(), Some("1"));
        assert_eq!(
            sample(&m, r#"autoscaler_source_readable{source="gitea_jobs"}"#).as_deref(),
            Some("1")
        );
        // Gitea's jobs and Hetzner's servers unreadable: the queue, the fleet and the price
        // are unknown, and the source gauge says which.
        let mut r = report(now);
        r.snapshot.jobs = Source::unavailable("gitea down");
        r.snapshot.servers = Source::unavailable("hetzner down");
        m.record(&r, now);
        let text = m.encode();
        for absent in [
            "autoscaler_jobs_waiting ",
            "autoscaler_jobs_running ",
            "autoscaler_managed_nodes{",
            "autoscaler_cost_euros_per_hour ",
        ] {
            assert!(!text.contains(absent), "{absent} in an outage:\n{text}");
        }
        assert_eq!(
            sample(&m, r#"autoscaler_source_readable{source="gitea_jobs"}"#).as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &m,
                r#"autoscaler_source_readable{source="hetzner_servers"}"#
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &m,
                r#"autoscaler_source_readable{source="kubernetes_nodes"}"#
            )
            .as_deref(),
            Some("1")
        );
        // Readable again: back.
        m.record(&report(now), now);
        assert_eq!(sample(&m, "autoscaler_jobs_waiting ").as_deref(), Some("1"));
    }

    #[test]
    fn the_hetzner_budget_is_absent_until_hetzner_has_answered() {
        let m = Metrics::new(&Config::default());
        assert!(
            !m.encode()
                .contains("autoscaler_hetzner_requests_remaining ")
        );
        let now = t("2026-11-25T10:10:00Z");
        m.record(&report(now), now);
        assert!(
            !m.encode()
                .contains("autoscaler_hetzner_requests_remaining "),
            "no answer, no figure"
        );
        let mut r = report(now);
        r.snapshot.hetzner_budget = Some(autoscaler_core::ApiBudget { remaining: 3_412 });
        m.record(&r, now);
        assert_eq!(
            sample(&m, "autoscaler_hetzner_requests_remaining ").as_deref(),
            Some("3412")
        );
        m.follow();
        assert!(
            !m.encode()
                .contains("autoscaler_hetzner_requests_remaining ")
        );
    }

    #[test]
    fn every_state_pool_action_and_error_kind_has_a_series_before_the_first_event() {
        let mut config = Config::default();
        config.pools[0].server_types = vec!["cx33".into(), "cx43".into()];
        config.pools[0].locations = vec!["nbg1".into(), "fsn1".into()];
        let m = Metrics::new(&config);
        let text = m.encode();
        for series in [
            r#"autoscaler_actions_total{action="delete_server",result="error"} 0"#,
            r#"autoscaler_api_errors_total{service="kubernetes",kind="auth"} 0"#,
            r#"autoscaler_nodes_created_by_placement_total{server_type="cx43",location="fsn1"} 0"#,
            r#"autoscaler_placement_unavailable_total{server_type="cx33",location="nbg1"} 0"#,
            r#"autoscaler_webhook_deliveries_total{result="unauthorized"} 0"#,
        ] {
            assert!(text.contains(series), "{series} not in\n{text}");
        }
        // An empty fleet, read in full: a zero for every state of the pool.
        let now = t("2026-11-25T10:10:00Z");
        let mut r = report(now);
        r.snapshot.servers = Source::complete(vec![]);
        r.plan = autoscaler_core::decide(&config.validate().unwrap(), &r.snapshot);
        m.record(&r, now);
        let pool = &config.pools[0].name;
        for state in autoscaler_core::NodeState::NAMES {
            let series = format!(r#"autoscaler_managed_nodes{{state="{state}",pool="{pool}"}}"#);
            assert_eq!(sample(&m, &series).as_deref(), Some("0"), "{series}");
        }
    }
}
