//! The series a tick becomes, read back from the exposition.

use std::collections::BTreeMap;

use autoscaler_core::ports::{ErrorKind, ProviderError, Service};
use autoscaler_core::{Action, JobStatus, ServerSpec, Snapshot, Source, decide, synthetic};

use super::*;
use crate::daemon::execute::Done;
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
            baked_image: None,
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
