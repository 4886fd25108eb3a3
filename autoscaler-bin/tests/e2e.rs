//! End to end: the real `gitea-ci-autoscaler run` process against a loopback world of Gitea,
//! Hetzner Cloud and Kubernetes fakes that moves by itself (servers boot and join, runners take
//! jobs). Billing periods are shortened to a minute so a whole life fits in a test.

mod common;

use std::time::{Duration, Instant};

use autoscaler_fakes::world::World;
use common::*;

fn done_now(w: &World) -> bool {
    w.verdict().served == 4 && w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_served_torn_down_in_the_window_and_nothing_is_left() {
    let s = world().await;
    let (mut d, port) = daemon_on(&s, &[]);
    ready(port).await;
    // Gitea announces each job with a signed webhook delivery.
    for id in push_jobs(&s.world, 5, 4) {
        deliver(port, id).await;
    }
    let world = s.world.clone();
    let served = until(&mut d, Duration::from_secs(60), || {
        world.lock().unwrap().verdict().served == 5
    })
    .await;
    let emptied = until(&mut d, Duration::from_secs(120), || {
        let w = world.lock().unwrap();
        w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
    })
    .await;
    let (status, logs) = stop(d).await;
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    assert!(served, "served {} of 5: {v:?}\n{logs}", v.served);
    assert!(
        emptied,
        "left: {} servers, {} nodes, {} runners\n{logs}",
        w.servers(),
        w.nodes(),
        w.runners()
    );
    assert!(v.created >= 1);
    // No job killed, never above 3, every server gone in the last 30 s of its paid minute.
    assert_promises(&w, 3);
    assert!(status.success(), "{logs}");
    assert_no_secret(&logs);
    drop(w);
    // One token per server, each revoked once its node joined.
    assert_join_tokens_retired(&s, &logs);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leads_and_the_other_takes_over_when_it_is_killed() {
    let s = world().await;
    let mut a = daemon(
        &s,
        &[
            ("LEADER_ELECTION", "true"),
            ("POD_NAME", "pod-a"),
            ("POD_NAMESPACE", "ci"),
        ],
    );
    let b = daemon(
        &s,
        &[
            ("LEADER_ELECTION", "true"),
            ("POD_NAME", "pod-b"),
            ("POD_NAMESPACE", "ci"),
        ],
    );
    push_jobs(&s.world, 5, 4);
    let world = s.world.clone();
    let created = until(&mut a, Duration::from_secs(30), || {
        world.lock().unwrap().verdict().created > 0
    })
    .await;
    assert!(created, "nothing was created");
    let holder =
        s.kube.0.lock().unwrap().leases["ci/gitea-ci-autoscaler"]["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .to_owned();
    // kill -9 the leader mid-work: no release, the lease has to expire.
    let (leader, mut survivor, survivor_name) = if holder == "pod-a" {
        (a, b, "pod-b")
    } else {
        (b, a, "pod-a")
    };
    let _ = leader.kill();
    let emptied = until(&mut survivor, Duration::from_secs(150), || {
        let w = world.lock().unwrap();
        w.verdict().served == 5 && w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
    })
    .await;
    let (status, logs) = stop(survivor).await;
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    assert!(emptied, "{v:?}; {} servers left\n{logs}", w.servers());
    // Two replicas never exceed the maximum together.
    assert_promises(&w, 3);
    assert!(status.success(), "{logs}");
    assert!(logs.contains("leadership changed"), "{logs}");
    let lease = &s.kube.0.lock().unwrap().leases["ci/gitea-ci-autoscaler"];
    assert!(
        lease["spec"]["holderIdentity"].is_null()
            || lease["spec"]["holderIdentity"] == survivor_name,
        "{lease}"
    );
    assert_no_secret(&logs);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_service_failing_now_and_then_nothing_busy_is_lost_and_nothing_leaks() {
    let s = world().await;
    let faults = inject_faults(&s);
    let mut d = daemon(&s, &[]);
    push_jobs(&s.world, 6, 5);
    let world = s.world.clone();
    let served = until(&mut d, Duration::from_secs(90), || {
        world.lock().unwrap().verdict().served == 6
    })
    .await;
    // Faults stop once the work is done, so the teardown can be checked to finish.
    let emptied = until(&mut d, Duration::from_secs(150), || {
        let w = world.lock().unwrap();
        if w.verdict().served == 6 {
            faults.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
    })
    .await;
    let (status, logs) = stop(d).await;
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    assert!(
        served && emptied,
        "{v:?}; {} servers left\n{logs}",
        w.servers()
    );
    assert_promises(&w, 3);
    assert!(status.success(), "{logs}");
    assert!(
        logs.contains("could not read"),
        "the faults were seen: {logs}"
    );
    assert_no_secret(&logs);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_minus_9_again_and_again_it_resumes_and_leaks_nothing() {
    let s = world().await;
    push_jobs(&s.world, 4, 4);
    let world = s.world.clone();
    let done = || done_now(&world.lock().unwrap());
    let started = Instant::now();
    let mut kills = 0;
    // Kill it right after each thing it writes (a create, a label, an annotation, a cordon, a
    // runner disabled or deleted...), so every teardown step is followed by a crash; or after
    // 1.5–6 s when it writes nothing.
    let lives = [2.0, 3.5, 5.0, 1.5, 4.0, 2.5, 6.0, 3.0];
    while !done() && started.elapsed() < Duration::from_secs(170) {
        let before = world.lock().unwrap().fingerprint();
        let mut d = daemon(&s, &[]);
        let life = Duration::from_secs_f64(lives[kills % lives.len()]);
        let changed = || world.lock().unwrap().fingerprint() != before;
        until(&mut d, life, changed).await;
        if done() {
            let (status, logs) = stop(d).await;
            assert!(status.success(), "{logs}");
            assert_no_secret(&logs);
            break;
        }
        let (_, logs) = d.kill();
        assert_no_secret(&logs);
        kills += 1;
    }
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    assert!(
        done_now(&w),
        "{v:?} after {kills} kills: {} servers, {} nodes, {} runners left",
        w.servers(),
        w.nodes(),
        w.runners()
    );
    // Every write is followed by a kill; fewer than this would mean the run stopped early.
    assert!(kills >= 15, "killed only {kills} times");
    assert_promises(&w, 3);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// The long version: `E2E_SOAK_MINUTES` (default 10) of bursts with every service failing now
/// and then and the daemon killed with -9 every 20–40 s; afterwards, the same promises.
///
/// ```sh
/// E2E_SOAK_MINUTES=30 cargo test --release -p autoscaler-bin --test e2e soak -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the soak: minutes long; run with --ignored"]
async fn soak() {
    let minutes: u64 = std::env::var("E2E_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let s = world().await;
    let faults = inject_faults(&s);
    let until_time = Instant::now() + Duration::from_secs(minutes * 60);
    let (mut pushed, mut kills, mut round) = (0u64, 0, 0u64);
    while Instant::now() < until_time {
        let mut d = daemon(&s, &[]);
        let life = Duration::from_secs(20 + (round * 7) % 21);
        {
            let mut w = s.world.lock().unwrap();
            for i in 0..(1 + round % 5) {
                w.push_job(&["ubuntu-latest"], Duration::from_secs(2 + (i * 3) % 9));
                pushed += 1;
            }
        }
        let world = s.world.clone();
        let _ = until(&mut d, life, || {
            !world.lock().unwrap().verdict().killed.is_empty()
        })
        .await;
        let (_, logs) = d.kill();
        assert_no_secret(&logs);
        kills += 1;
        round += 1;
    }
    faults.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut d = daemon(&s, &[]);
    let world = s.world.clone();
    let emptied = until(&mut d, Duration::from_secs(240), || {
        let w = world.lock().unwrap();
        w.verdict().served == pushed && w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
    })
    .await;
    let (status, logs) = stop(d).await;
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    println!(
        "soak: {minutes} min, {pushed} jobs, {kills} kills, {} servers created, peak {}",
        v.created, v.peak_servers
    );
    let tail: String = {
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert!(
        emptied,
        "{v:?}; {} servers left; the daemon {status}; its last lines:\n{tail}",
        w.servers()
    );
    assert_promises(&w, 3);
    assert!(status.success(), "{logs}");
    assert_no_secret(&logs);
}
