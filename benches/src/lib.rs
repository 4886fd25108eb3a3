//! Shared setup of the benchmarks: the synthetic shape (N servers, nodes and runners,
//! 2N waiting and N/2 running jobs) under a policy whose limits do not hide the work.

use autoscaler_core::synthetic::Fleet;
use autoscaler_core::{Config, Policy, Snapshot, Timestamp};

/// The sizes every benchmark runs.
pub const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// The default configuration with room for `n` machines, so scale-up and scale-down both run.
pub fn policy(n: usize) -> Policy {
    let max = u32::try_from(2 * n).unwrap_or(u32::MAX);
    let mut config = Config {
        max_nodes: max,
        max_creates_per_tick: 50,
        ..Config::default()
    };
    config.pools[0].max_nodes = max;
    config
        .validate()
        .expect("the benchmark configuration is valid")
}

/// The synthetic fleet of size `n` at a fixed instant.
pub fn snapshot(n: usize) -> Snapshot {
    let now: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");
    Fleet::benchmark(n, now).build()
}

/// The label-matching shape: 50,000 waiting jobs, each with a label set of its own, against
/// 2,000 idle runners, each with a label set of its own. Runner `j` carries `ubuntu-latest`,
/// `r<j>` and `j0`…`j24`; job `i` asks for `ubuntu-latest`, `r<i mod 2000>` and `j<i / 2000>`,
/// so every job fits exactly one runner and no two jobs or runners share a shape.
pub fn label_matching() -> (Policy, Snapshot) {
    use autoscaler_core::{JobStatus, Source};
    const RUNNERS: usize = 2_000;
    const JOBS: usize = 50_000;
    let now: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");
    let mut fleet = Fleet::benchmark(RUNNERS, now);
    fleet.waiting = 0;
    fleet.running = 0;
    let mut snapshot = fleet.build();
    let common: Vec<String> = (0..JOBS / RUNNERS).map(|k| format!("j{k}")).collect();
    let mut runners = snapshot.runners.items().to_vec();
    for (j, r) in runners.iter_mut().enumerate() {
        r.labels = ["ubuntu-latest".to_owned(), format!("r{j}")]
            .into_iter()
            .chain(common.iter().cloned())
            .collect();
    }
    let jobs = (0..JOBS)
        .map(|i| {
            let mut job = autoscaler_core::synthetic::queued_job(
                1_000_000 + i as u64,
                &[
                    "ubuntu-latest".to_owned(),
                    format!("r{}", i % RUNNERS),
                    format!("j{}", i / RUNNERS),
                ],
                now,
            );
            job.status = JobStatus::Queued;
            job
        })
        .collect();
    snapshot.runners = Source::complete(runners);
    snapshot.jobs = Source::complete(jobs);
    (policy(RUNNERS), snapshot)
}
