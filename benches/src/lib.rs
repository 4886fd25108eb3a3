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
