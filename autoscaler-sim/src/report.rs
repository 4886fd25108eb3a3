//! The figures of a replay, and the tables people read them in.

use std::fmt::Write;

use serde::Serialize;

/// What one policy did on one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The policy's name.
    pub policy: String,
    /// The trace's name.
    pub trace: String,
    /// Jobs in the trace.
    pub jobs: u64,
    /// Jobs that ran to their end.
    pub served: u64,
    /// Jobs whose runner was taken away while they ran. Must be 0.
    pub killed: u64,
    /// Jobs never started or still running when the run ended.
    pub unserved: u64,
    /// The trace's total run time, hours.
    pub job_hours: f64,
    /// Billed server-hours (every started hour in full).
    pub server_hours: u64,
    /// Billed euros (net).
    pub euros: f64,
    /// Euros per served job.
    pub euros_per_job: f64,
    /// The lower bound: the job-hours billed as if perfectly packed onto the pool's runners,
    /// by the second, with no wait.
    pub lower_bound_euros: f64,
    /// `euros / lower_bound_euros`: how far from the physical limit.
    pub cost_ratio: f64,
    /// The fewest whole paid periods any autoscaler needs for this trace if no job may wait
    /// longer than this run's p95 wait (see `tight_bound_wait`), in euros: each job's mandatory
    /// run (from arrival plus that wait to arrival plus its duration) covered at every instant.
    pub tight_bound_euros: f64,
    /// The wait the tight bound allows every job, seconds: this run's p95.
    pub tight_bound_wait: f64,
    /// `euros / tight_bound_euros`: how far from the best any autoscaler could do at this wait.
    pub cost_to_tight_bound: f64,
    /// Queue waits, from runnable to started.
    pub wait: Waits,
    /// The most servers at once.
    pub peak_nodes: u32,
    /// Servers created.
    pub servers_created: u64,
    /// Create requests that failed.
    pub create_failures: u64,
    /// Requests per service: Gitea, Hetzner, Kubernetes.
    pub api_calls: [u64; 3],
    /// Of those, failed (outages, Hetzner's rate limit).
    pub api_failures: [u64; 3],
    /// Requests per simulated hour, per service.
    pub api_calls_per_hour: [f64; 3],
    /// Hetzner requests in the busiest hour (the budget is 3,600).
    pub hetzner_peak_hour: u32,
    /// Servers left at the end beyond what the policy keeps on purpose. Must be 0.
    pub leaked_servers: u32,
    /// Servers left at the end on purpose (minimums, warm slots).
    pub kept_servers: u32,
    /// Length of the run, hours.
    pub simulated_hours: f64,
    /// Decisions taken.
    pub ticks: u64,
}

/// Queue-wait percentiles, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Waits {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

impl Waits {
    /// Nearest-rank percentiles of `waits` (seconds).
    pub fn of(mut waits: Vec<f64>) -> Self {
        if waits.is_empty() {
            return Self {
                mean: 0.0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let rank = (q * waits.len() as f64).ceil() as usize;
            waits[rank.clamp(1, waits.len()) - 1]
        };
        Self {
            mean: waits.iter().sum::<f64>() / waits.len() as f64,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: waits[waits.len() - 1],
        }
    }
}

/// Policies side by side, one column each, plus the lower bound.
pub fn table(reports: &[&Report]) -> String {
    let mut out = String::new();
    let Some(first) = reports.first() else {
        return out;
    };
    let width = reports
        .iter()
        .map(|r| r.policy.len())
        .max()
        .unwrap_or(0)
        .max(11);
    let _ = write!(out, "{:<28}", format!("trace: {}", short(&first.trace)));
    for r in reports {
        let _ = write!(out, " {:>width$}", r.policy);
    }
    let _ = writeln!(out, " {:>width$}", "lower bound");
    type Row = (&'static str, fn(&Report) -> String, Option<String>);
    let bound = format!("{:.2}", first.lower_bound_euros);
    let rows: Vec<Row> = vec![
        ("jobs served", |r| format!("{}/{}", r.served, r.jobs), None),
        (
            "killed jobs (must be 0)",
            |r| r.killed.to_string(),
            Some("0".into()),
        ),
        (
            "leaked servers (must be 0)",
            |r| r.leaked_servers.to_string(),
            Some("0".into()),
        ),
        (
            "billed server-hours",
            |r| r.server_hours.to_string(),
            Some(format!("{:.1}", first.job_hours)),
        ),
        ("cost, €", |r| format!("{:.2}", r.euros), Some(bound)),
        ("€ per job", |r| format!("{:.4}", r.euros_per_job), None),
        (
            "cost / lower bound",
            |r| format!("{:.2}×", r.cost_ratio),
            Some("1.00×".into()),
        ),
        (
            "tight bound at p95 wait, €",
            |r| format!("{:.2}", r.tight_bound_euros),
            None,
        ),
        (
            "cost / tight bound",
            |r| format!("{:.2}×", r.cost_to_tight_bound),
            None,
        ),
        (
            "wait p50, s",
            |r| format!("{:.1}", r.wait.p50),
            Some("0".into()),
        ),
        (
            "wait p95, s",
            |r| format!("{:.1}", r.wait.p95),
            Some("0".into()),
        ),
        (
            "wait p99, s",
            |r| format!("{:.1}", r.wait.p99),
            Some("0".into()),
        ),
        (
            "wait max, s",
            |r| format!("{:.0}", r.wait.max),
            Some("0".into()),
        ),
        (
            "wait mean, s",
            |r| format!("{:.1}", r.wait.mean),
            Some("0".into()),
        ),
        ("peak nodes", |r| r.peak_nodes.to_string(), None),
        ("servers created", |r| r.servers_created.to_string(), None),
        (
            "Gitea calls / h",
            |r| format!("{:.0}", r.api_calls_per_hour[0]),
            None,
        ),
        (
            "Hetzner calls / h",
            |r| format!("{:.0}", r.api_calls_per_hour[1]),
            None,
        ),
        (
            "Hetzner calls, peak hour",
            |r| r.hetzner_peak_hour.to_string(),
            None,
        ),
        (
            "Kubernetes calls / h",
            |r| format!("{:.0}", r.api_calls_per_hour[2]),
            None,
        ),
    ];
    for (name, cell, bound) in rows {
        let _ = write!(out, "{name:<28}");
        for r in reports {
            let _ = write!(out, " {:>width$}", cell(r));
        }
        let _ = writeln!(out, " {:>width$}", bound.unwrap_or_else(|| "-".into()));
    }
    out
}

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let w = Waits::of((1..=100).map(f64::from).collect());
        assert_eq!((w.p50, w.p95, w.p99, w.max), (50.0, 95.0, 99.0, 100.0));
        assert!((w.mean - 50.5).abs() < 1e-9);
        assert_eq!(Waits::of(vec![]).max, 0.0);
        assert_eq!(Waits::of(vec![7.0]).p50, 7.0);
    }
}
