//! End to end: the real `gitea-ci-autoscaler run` process against a loopback world of Gitea,
//! Hetzner Cloud and Kubernetes fakes that moves by itself (servers boot and join, runners take
//! jobs). Billing periods are shortened to seconds so a whole life fits in a test.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autoscaler_fakes::world::{World, WorldConfig};
use autoscaler_fakes::{gitea, hetzner, kube};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

const JOIN_SECRET: &str = "K10-e2e-join-secret";
const WEBHOOK_SECRET: &str = "e2e-webhook-secret";

/// A one-minute "hour" (the shortest the core accepts): teardown only in its last 30 seconds,
/// after 3 idle seconds, starting at least 25 s before the period ends (the shortest lead the
/// core accepts: a teardown waits the 15 s node-missing confirmation, plus about seven decisions).
const CONFIG: &str = r#"
[autoscaler]
installation = "ci"
max_nodes = 3

[[autoscaler.pools]]
name = "linux"
max_nodes = 3
reuse_within = "0s"
idle_timeout = "3s"
billing_period = "60s"
teardown_window = "30s"
teardown_lead = "25s"
provisioning_timeout = "60s"
join_timeout = "30s"
not_ready_timeout = "30s"
"#;

struct Setup {
    world: Arc<Mutex<World>>,
    kube: kube::FakeKube,
    gitea: MockServer,
    hetzner: MockServer,
    kubeconfig: std::path::PathBuf,
    config: std::path::PathBuf,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn world() -> Setup {
    let gitea_fake = gitea::FakeGitea::new(gitea::State::default());
    let gitea = MockServer::start().await;
    Mock::given(any())
        .respond_with(gitea_fake.clone())
        .mount(&gitea)
        .await;
    let hetzner_fake = hetzner::FakeHetzner::new(hetzner::State::default());
    let hetzner = MockServer::start().await;
    Mock::given(any())
        .respond_with(hetzner_fake.clone())
        .mount(&hetzner)
        .await;
    let kube_fake = kube::FakeKube::with(kube::State {
        control_plane: vec![("10.0.0.2".into(), true)],
        ..kube::State::default()
    });
    let kube_url = kube_fake.start().await;
    let world = Arc::new(Mutex::new(World::new(
        gitea_fake,
        hetzner_fake,
        kube_fake.clone(),
        WorldConfig::default(),
    )));
    let stepper = world.clone();
    tokio::spawn(async move {
        loop {
            stepper.lock().unwrap_or_else(|e| e.into_inner()).step();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let port = kube_url.rsplit(':').next().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("gca-e2e-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: {kube_url}\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: f\ncurrent-context: f\nusers:\n- name: f\n  user: {{}}\n"),
    )
    .unwrap();
    let config = dir.join("autoscaler.toml");
    std::fs::write(&config, CONFIG).unwrap();
    Setup {
        world,
        kube: kube_fake,
        gitea,
        hetzner,
        kubeconfig,
        config,
        dir,
    }
}

/// Starts `gitea-ci-autoscaler run` against the world; `extra` adds variables.
fn daemon(s: &Setup, extra: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"));
    cmd.arg("run")
        .env_clear()
        .env("KUBECONFIG", &s.kubeconfig)
        .env("CONFIG_FILE", &s.config)
        .env("GITEA_API_URL", s.gitea.uri())
        .env("GITEA_ADMIN_TOKEN", gitea::TOKEN)
        .env("GITEA_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("HETZNER_API_URL", format!("{}/v1", s.hetzner.uri()))
        .env("HETZNER_API_TOKEN", hetzner::TOKEN)
        .env("HETZNER_SSH_KEYS", "ops")
        .env("CLUSTER_SECRET", JOIN_SECRET)
        .env("POLL_INTERVAL_SECS", "1")
        .env("CALL_TIMEOUT_SECS", "5")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,gitea_ci_autoscaler=debug")
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits until `done` holds, up to `limit`, or until the daemon exits.
async fn until(daemon: &mut Child, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        if daemon.try_wait().ok().flatten().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// SIGTERM, then the daemon's log.
async fn stop(daemon: Child) -> (std::process::ExitStatus, String) {
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || daemon.wait_with_output().unwrap())
        .await
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_served_torn_down_in_the_window_and_nothing_is_left() {
    let s = world().await;
    let mut d = daemon(&s, &[]);
    {
        let mut w = s.world.lock().unwrap();
        for _ in 0..5 {
            w.push_job(&["ubuntu-latest"], Duration::from_secs(4));
        }
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
    assert!(
        v.killed.is_empty(),
        "busy runners torn down: {:?}",
        v.killed
    );
    assert!(v.peak_servers <= 3, "peak {}", v.peak_servers);
    assert!(v.created >= 1);
    // Every server went in the last 30 s of a paid one-minute period, never just after it.
    for age in &v.lifetimes {
        assert!(
            age % 60 >= 30,
            "a server went {age} s after its creation, outside the window: {v:?}\n{logs}"
        );
    }
    assert!(status.success(), "{logs}");
    assert_no_secret(&logs);
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn assert_no_secret(logs: &str) {
    for secret in [gitea::TOKEN, hetzner::TOKEN, JOIN_SECRET, WEBHOOK_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
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
    {
        let mut w = s.world.lock().unwrap();
        for _ in 0..5 {
            w.push_job(&["ubuntu-latest"], Duration::from_secs(4));
        }
    }
    let world = s.world.clone();
    let created = until(&mut a, Duration::from_secs(30), || {
        world.lock().unwrap().verdict().created > 0
    })
    .await;
    assert!(created, "nothing was created");
    let holder = s.kube.0.lock().unwrap().leases["gitea-ci-autoscaler"]["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned();
    // kill -9 the leader mid-work: no release, the lease has to expire.
    let (mut leader, mut survivor, survivor_name) = if holder == "pod-a" {
        (a, b, "pod-b")
    } else {
        (b, a, "pod-a")
    };
    leader.kill().unwrap();
    let _ = leader.wait();
    let emptied = until(&mut survivor, Duration::from_secs(150), || {
        let w = world.lock().unwrap();
        w.verdict().served == 5 && w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
    })
    .await;
    let (status, logs) = stop(survivor).await;
    let w = s.world.lock().unwrap();
    let v = w.verdict();
    assert!(emptied, "{v:?}; {} servers left\n{logs}", w.servers());
    assert!(v.killed.is_empty(), "{:?}", v.killed);
    assert!(
        v.peak_servers <= 3,
        "two replicas never exceed the maximum: {v:?}"
    );
    assert!(status.success(), "{logs}");
    assert!(logs.contains("leadership changed"), "{logs}");
    let lease = &s.kube.0.lock().unwrap().leases["gitea-ci-autoscaler"];
    assert!(
        lease["spec"]["holderIdentity"].is_null()
            || lease["spec"]["holderIdentity"] == survivor_name,
        "{lease}"
    );
    assert_no_secret(&logs);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Every 700 ms one more fault, in turn: a 500 or a cut-off body from Gitea; a 503, a 429 with
/// its rate-limit headers, a 409 or a cut-off body from Hetzner; a 503 from Kubernetes.
fn inject_faults(s: &Setup) -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, world) = (stop.clone(), s.world.clone());
    tokio::spawn(async move {
        let mut n = 0u32;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            {
                let w = world.lock().unwrap_or_else(|e| e.into_inner());
                match n % 7 {
                    0 => w.gitea.0.lock().unwrap().fail_next += 1,
                    1 => w
                        .hetzner
                        .0
                        .lock()
                        .unwrap()
                        .faults
                        .push_back((503, "unavailable")),
                    2 => w.kube.0.lock().unwrap().fail_next += 1,
                    3 => w
                        .hetzner
                        .0
                        .lock()
                        .unwrap()
                        .faults
                        .push_back((429, "rate_limit_exceeded")),
                    4 => w.gitea.0.lock().unwrap().garble_next += 1,
                    5 => w
                        .hetzner
                        .0
                        .lock()
                        .unwrap()
                        .faults
                        .push_back((409, "conflict")),
                    _ => w.hetzner.0.lock().unwrap().garble_next += 1,
                }
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_service_failing_now_and_then_nothing_busy_is_lost_and_nothing_leaks() {
    let s = world().await;
    let faults = inject_faults(&s);
    let mut d = daemon(&s, &[]);
    {
        let mut w = s.world.lock().unwrap();
        for _ in 0..6 {
            w.push_job(&["ubuntu-latest"], Duration::from_secs(5));
        }
    }
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
    assert!(v.killed.is_empty(), "{:?}", v.killed);
    assert!(v.peak_servers <= 3, "{v:?}");
    for age in &v.lifetimes {
        assert!(
            age % 60 >= 30,
            "deleted at {age} s, outside the window: {v:?}"
        );
    }
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
    {
        let mut w = s.world.lock().unwrap();
        for _ in 0..4 {
            w.push_job(&["ubuntu-latest"], Duration::from_secs(4));
        }
    }
    let world = s.world.clone();
    let done = || done_now(&world.lock().unwrap());
    let started = Instant::now();
    let mut kills = 0;
    // Kill points move through creation, work, idle marking and every teardown step.
    let lives = [2.0, 3.5, 5.0, 1.5, 4.0, 2.5, 6.0, 3.0];
    while !done() && started.elapsed() < Duration::from_secs(170) {
        let mut d = daemon(&s, &[]);
        let life = Duration::from_secs_f64(lives[kills % lives.len()]);
        let finished = until(&mut d, life, done).await;
        if finished {
            let (status, logs) = stop(d).await;
            assert!(status.success(), "{logs}");
            assert_no_secret(&logs);
            break;
        }
        d.kill().unwrap();
        let out = d.wait_with_output().unwrap();
        assert_no_secret(&String::from_utf8_lossy(&out.stderr));
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
    assert!(kills >= 8, "{kills}");
    assert!(v.killed.is_empty(), "{:?}", v.killed);
    assert!(v.peak_servers <= 3, "{v:?}");
    for age in &v.lifetimes {
        assert!(
            age % 60 >= 30,
            "deleted at {age} s, outside the window: {v:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn done_now(w: &World) -> bool {
    w.verdict().served == 4 && w.servers() == 0 && w.nodes() == 0 && w.runners() == 0
}
