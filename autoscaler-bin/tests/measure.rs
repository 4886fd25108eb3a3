//! Measurements of the real daemon against the loopback world (ignored by default; they take
//! about three minutes):
//!
//! ```sh
//! cargo test --release -p autoscaler-bin --test measure -- --ignored --nocapture
//! ```
//!
//! It writes `target/e2e-measurements.md`.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::*;

/// Seconds from a job being queued to the daemon's create request.
async fn reaction(webhook: bool, phase: Duration) -> f64 {
    let s = world().await;
    let (mut d, port) = daemon_on(&s, &[("POLL_INTERVAL_SECS", "5")]);
    ready(port).await;
    tokio::time::sleep(phase).await;
    let queued = Instant::now();
    let id = s
        .world
        .lock()
        .unwrap()
        .push_job(&["ubuntu-latest"], Duration::from_secs(5));
    if webhook {
        deliver(port, id).await;
    }
    let hetzner = s.world.lock().unwrap().hetzner.clone();
    let created = until(&mut d, Duration::from_secs(20), || {
        !hetzner.0.lock().unwrap().create_requests.is_empty()
    })
    .await;
    assert!(created);
    let at = hetzner.0.lock().unwrap().create_requests[0];
    let _ = stop(d).await;
    at.duration_since(queued).as_secs_f64()
}

async fn metric(port: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

const BURST_CONFIG: &str = r#"
[autoscaler]
installation = "ci"
max_nodes = 50

[[autoscaler.pools]]
name = "linux"
max_nodes = 50
cold_start = "0s"
idle_timeout = "3s"
billing_period = "60s"
teardown_window = "30s"
teardown_lead = "25s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurements: about three minutes; run with --ignored"]
async fn measure() {
    let mut table = String::from("| measurement | value |\n|---|---|\n");
    // 1. Reaction: job queued → create request, 5 s poll, the job arriving at varied phases.
    for webhook in [true, false] {
        let mut samples = Vec::new();
        for phase_ms in [300, 1300, 2300, 3300, 4300] {
            samples.push(reaction(webhook, Duration::from_millis(phase_ms)).await);
        }
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let max = samples.iter().copied().fold(0.0, f64::max);
        let mode = if webhook {
            "webhook"
        } else {
            "polling only (5 s)"
        };
        writeln!(
            table,
            "| job queued → create request, {mode} | mean {mean:.2} s, max {max:.2} s ({} runs) |",
            samples.len()
        )
        .unwrap();
    }
    // 2. Tick wall time with 50 ms added to every API call, with work to do.
    {
        let s = world().await;
        {
            let w = s.world.lock().unwrap();
            w.gitea.0.lock().unwrap().delay = Duration::from_millis(50);
            w.hetzner.0.lock().unwrap().delay = Duration::from_millis(50);
            w.kube.0.lock().unwrap().delay = Duration::from_millis(50);
        }
        let (d, port) = daemon_on(&s, &[]);
        ready(port).await;
        for _ in 0..3 {
            s.world
                .lock()
                .unwrap()
                .push_job(&["ubuntu-latest"], Duration::from_secs(3));
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        let sum = metric(port.http, "autoscaler_loop_duration_seconds_sum").await;
        let count = metric(port.http, "autoscaler_loop_duration_seconds_count").await;
        let _ = stop(d).await;
        writeln!(table, "| tick wall time, 50 ms per API call (reads and acts) | mean {:.0} ms over {count} ticks (the design we replace: 358 ms for 7 sequential calls) |", sum / count * 1000.0).unwrap();
    }
    // 3. Hetzner requests: steady state (nothing to do), then a 50-job burst; peak RSS.
    {
        let s = world_with(BURST_CONFIG).await;
        let (d, port) = daemon_on(&s, &[("POLL_INTERVAL_SECS", "5")]);
        ready(port).await;
        let before = s.hetzner.received_requests().await.unwrap().len();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let steady = s.hetzner.received_requests().await.unwrap().len() - before;
        writeln!(
            table,
            "| Hetzner requests, steady state (5 s poll, idle) | {} /h (budget 3,600) |",
            steady * 120
        )
        .unwrap();
        let before = s.hetzner.received_requests().await.unwrap().len();
        {
            let mut w = s.world.lock().unwrap();
            for _ in 0..50 {
                w.push_job(&["ubuntu-latest"], Duration::from_secs(20));
            }
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        let burst = s.hetzner.received_requests().await.unwrap().len() - before;
        let served = s.world.lock().unwrap().verdict();
        writeln!(
            table,
            "| Hetzner requests, the minute of a 50-job burst | {burst} in that minute ({:.1} % of the 3,600/h budget); {} servers created, {} jobs served |",
            burst as f64 / 36.0,
            served.created,
            served.served
        )
        .unwrap();
        let rss = peak_rss_kib(d.id());
        let _ = stop(d).await;
        writeln!(
            table,
            "| daemon peak RSS (VmHWM), through the burst | {:.1} MiB (goal ≤ 20 MiB) |",
            rss as f64 / 1024.0
        )
        .unwrap();
    }
    println!("{table}");
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-measurements.md");
    std::fs::write(&out, &table).unwrap();
}
