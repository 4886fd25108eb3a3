//! Shared by the end-to-end tests and the measurements: a moving world of fakes, and the real
//! daemon process against it.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autoscaler_fakes::world::{World, WorldConfig};
use autoscaler_fakes::{gitea, hetzner, kube};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";

/// A one-minute "hour" (the shortest the core accepts): teardown only in its last 30 seconds,
/// after 3 idle seconds, starting at least 25 s before the period ends (the shortest lead the
/// core accepts: a teardown waits the 15 s node-missing confirmation, plus about seven decisions).
pub const CONFIG: &str = r#"
[autoscaler]
installation = "ci"
max_nodes = 3

[[autoscaler.pools]]
name = "linux"
max_nodes = 3
cold_start = "0s"
idle_timeout = "3s"
billing_period = "60s"
teardown_window = "30s"
teardown_lead = "25s"
provisioning_timeout = "60s"
join_timeout = "30s"
not_ready_timeout = "30s"
"#;

pub struct Setup {
    pub world: Arc<Mutex<World>>,
    pub kube: kube::FakeKube,
    pub gitea: MockServer,
    pub hetzner: MockServer,
    pub kubeconfig: std::path::PathBuf,
    pub config: std::path::PathBuf,
    pub dir: std::path::PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn world() -> Setup {
    world_with(CONFIG).await
}

/// A world with the daemon configured by `config` (TOML).
pub async fn world_with(config_text: &str) -> Setup {
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
    let kubeconfig = write_kubeconfig(&dir, &kube_url);
    let config = dir.join("autoscaler.toml");
    std::fs::write(&config, config_text).unwrap();
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

/// A running daemon whose log is read while it runs. A pipe holds about 64 KiB: a daemon whose
/// stderr nobody reads blocks in its next log line once that is full, and then looks hung.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// `kill -9`, then its exit status and everything it logged.
    pub fn kill(mut self) -> (ExitStatus, String) {
        let _ = self.child.kill();
        self.wait()
    }

    /// Waits for it to exit; its exit status and everything it logged.
    fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (status, String::from_utf8_lossy(&log).into_owned())
    }
}

/// Starts `gitea-ci-autoscaler run` against the world; `extra` adds variables.
pub fn daemon(s: &Setup, extra: &[(&str, &str)]) -> Daemon {
    daemon_on(s, extra).0
}

/// Where a daemon serves: metrics and health checks, and the webhook.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub webhook: u16,
}

/// Like `daemon`, also giving the ports it serves HTTP on.
pub fn daemon_on(s: &Setup, extra: &[(&str, &str)]) -> (Daemon, Ports) {
    let port = free_port();
    let webhook = free_port();
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
        .env("POLL_INTERVAL_SECS", "1")
        .env("CALL_TIMEOUT_SECS", "5")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,gitea_ci_autoscaler=debug")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("WEBHOOK_ADDR", format!("127.0.0.1:{webhook}"))
        .stdout(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    (
        Daemon::spawn(cmd),
        Ports {
            http: port,
            webhook,
        },
    )
}

/// Waits until `done` holds, up to `limit`, or until the daemon exits.
pub async fn until(daemon: &mut Daemon, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        if daemon.exited() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// SIGTERM, then the daemon's exit status and log. A daemon that already exited on its own is
/// not signalled: its own status and log come back, for the caller to show.
pub async fn stop(mut daemon: Daemon) -> (ExitStatus, String) {
    if !daemon.exited() {
        let killed = Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
    tokio::task::spawn_blocking(move || daemon.wait())
        .await
        .unwrap()
}

/// The peak resident memory of process `pid` (VmHWM), in KiB; 0 where /proc does not say.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn assert_no_secret(logs: &str) {
    for secret in [gitea::TOKEN, hetzner::TOKEN, WEBHOOK_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

/// Every 700 ms one more fault, in turn: a 500, a cut-off body or a truncated list from Gitea; a
/// 503, a 429 with its rate-limit headers, a 409, a cut-off body or 700 ms of answers slower than
/// the call timeout from Hetzner; a 503 from Kubernetes. Setting the flag ends the faults, the
/// lasting one (a slow Hetzner) included: a stop right after a slow round once left Hetzner
/// slower than the call timeout for good, so nothing could be torn down.
pub fn inject_faults(s: &Setup) -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, world) = (stop.clone(), s.world.clone());
    tokio::spawn(async move {
        let mut n = 0u32;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            {
                let w = world.lock().unwrap_or_else(|e| e.into_inner());
                // A slow Hetzner lasts one round: longer than the call timeout, then gone.
                w.hetzner.0.lock().unwrap().delay = Duration::ZERO;
                match n % 9 {
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
                    6 => w.hetzner.0.lock().unwrap().garble_next += 1,
                    7 => w.gitea.0.lock().unwrap().short_next += 1,
                    _ => w.hetzner.0.lock().unwrap().delay = Duration::from_secs(6),
                }
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let w = world.lock().unwrap_or_else(|e| e.into_inner());
        w.hetzner.0.lock().unwrap().delay = Duration::ZERO;
        w.gitea.0.lock().unwrap().delay = Duration::ZERO;
    });
    stop
}

/// Delivers a signed `workflow_job` webhook for job `id`, as Gitea does.
pub async fn deliver(ports: Ports, id: u64) {
    let port = ports.webhook;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = format!(
        r#"{{"action": "queued", "workflow_job": {{"id": {id}, "labels": ["ubuntu-latest"],
        "status": "queued", "created_at": "2026-11-25T10:00:00Z",
        "url": "https://g/api/v1/repos/a/b/actions/jobs/{id}"}}}}"#
    );
    let secret = secrecy::SecretString::from(WEBHOOK_SECRET);
    let sig = autoscaler_gitea::webhook::sign(&secret, body.as_bytes());
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook"))
        .header("X-Gitea-Event", "workflow_job")
        .header("X-Gitea-Signature", sig)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

/// Waits until the daemon on `port` answers `/readyz` with 200.
pub async fn ready(ports: Ports) {
    let port = ports.http;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the daemon never became ready");
}

/// The promises every run keeps: no job's runner, pod, node or server taken away; never more
/// than `max` servers; every server deleted in the last 30 s of its paid minute.
pub fn assert_promises(w: &World, max: usize) {
    let v = w.verdict();
    assert!(
        v.join_refused.is_empty(),
        "the cluster refused agents: {:?}",
        v.join_refused
    );
    assert!(
        v.killed.is_empty(),
        "busy runners torn down: {:?}",
        v.killed
    );
    assert!(
        v.peak_servers <= max,
        "peak {} above {max}: {v:?}",
        v.peak_servers
    );
    for age in &v.lifetimes {
        assert!(
            age % 60 >= 30,
            "a server went {age} s after its creation, outside the window: {v:?}"
        );
    }
}

/// Queues `n` jobs of `secs` seconds; their ids.
pub fn push_jobs(world: &Mutex<World>, n: usize, secs: u64) -> Vec<u64> {
    let mut w = world.lock().unwrap();
    (0..n)
        .map(|_| w.push_job(&["ubuntu-latest"], Duration::from_secs(secs)))
        .collect()
}

/// A kubeconfig in `dir` pointing at the fake API server `url` (plain HTTP, no credentials).
pub fn write_kubeconfig(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

/// Every join token the daemon minted (read back from the servers' user data, which Hetzner
/// keeps): none is left in the cluster, and none reached the log.
pub fn assert_join_tokens_retired(s: &Setup, logs: &str) {
    let w = s.world.lock().unwrap();
    let user_data: Vec<String> = w
        .hetzner
        .0
        .lock()
        .unwrap()
        .user_data
        .values()
        .cloned()
        .collect();
    assert!(!user_data.is_empty(), "no server was created");
    let mut ids = std::collections::BTreeSet::new();
    for u in &user_data {
        let token = autoscaler_fakes::world::join_token_in(u).expect("a join token in user data");
        let (id, secret) = token
            .rsplit("::")
            .next()
            .and_then(|c| c.split_once('.'))
            .expect("a bootstrap token");
        assert!(ids.insert(id.to_owned()), "token {id} given to two servers");
        assert!(
            !logs.contains(secret),
            "a join token's secret reached the logs"
        );
    }
    let left: Vec<String> = s.kube.0.lock().unwrap().secrets.keys().cloned().collect();
    assert!(left.is_empty(), "join tokens left in the cluster: {left:?}");
}
