//! `plan` and `run` end to end: the real binary against loopback Gitea, Hetzner and Kubernetes fakes.
//! `plan` must print the plan with its reasons and change nothing; `run` must serve, act, log
//! only JSON without secrets, and stop cleanly on SIGTERM.

mod common;

use std::process::Command;

use autoscaler_fakes::{gitea, hetzner, kube};
use serde_json::json;
use wiremock::matchers::{any, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Services {
    gitea: MockServer,
    hetzner: MockServer,
    hetzner_fake: hetzner::FakeHetzner,
    kube_url: String,
    dir: std::path::PathBuf,
}

async fn services() -> Services {
    let gitea = MockServer::start().await;
    let g = gitea::FakeGitea::new(gitea::State {
        jobs: vec![gitea::job(1, "queued", &["ubuntu-latest"], None)],
        ..gitea::State::default()
    });
    Mock::given(any()).respond_with(g).mount(&gitea).await;
    let hetzner = MockServer::start().await;
    let hetzner_fake = hetzner::FakeHetzner::new(hetzner::State::default());
    Mock::given(any())
        .respond_with(hetzner_fake.clone())
        .mount(&hetzner)
        .await;
    let k = kube::FakeKube::with(kube::State {
        control_plane: vec![("10.0.0.2".into(), true)],
        ..kube::State::default()
    });
    let kube_url = k.start().await;
    // One directory per fake API server: tests run in parallel in one process.
    let port = kube_url.rsplit(':').next().unwrap_or("0").to_owned();
    let dir = std::env::temp_dir().join(format!("gca-plan-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Services {
        gitea,
        hetzner,
        hetzner_fake,
        kube_url,
        dir,
    }
}

fn plan_command(s: &Services, json: bool) -> Command {
    let mut args = vec!["plan"];
    if json {
        args.push("--json");
    }
    command(s, &args)
}

/// The binary with `args`, an empty environment but what it needs to reach the fakes.
fn command(s: &Services, args: &[&str]) -> Command {
    let kubeconfig = common::write_kubeconfig(&s.dir, &s.kube_url);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"));
    cmd.args(args)
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .env("GITEA_API_URL", s.gitea.uri())
        .env("GITEA_ADMIN_TOKEN", gitea::TOKEN)
        .env("HETZNER_API_URL", format!("{}/v1", s.hetzner.uri()))
        .env("HETZNER_API_TOKEN", hetzner::TOKEN)
        .env("INSTALLATION", "ci");
    cmd
}

async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_plan_and_changes_nothing() {
    let s = services().await;
    let out = output(plan_command(&s, false)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(
        text.contains("create ci-linux-") && text.contains("(ccx33, nbg1)"),
        "{text}"
    );
    assert!(text.contains("(read-only: nothing was changed)"), "{text}");
    assert!(!text.contains("K10-join-secret") && !err.contains("K10-join-secret"));
    // Read-only: Hetzner saw only reads.
    let reqs = s.hetzner.received_requests().await.unwrap();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| r.method.as_str() == "GET"), "{reqs:?}");
    assert!(s.hetzner_fake.server_labels().is_empty());

    let out = output(plan_command(&s, true)).await;
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["actions"][0]["action"], json!("create_server"));
    assert_eq!(plan["actions"][0]["location"], json!("nbg1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_is_a_preflight_that_stops_on_refused_credentials_with_what_to_do() {
    let s = services().await;
    // Gitea knows the token but the scope is not its to read; Hetzner refuses its token.
    Mock::given(path_regex("^/api/v1/admin/actions/"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "token does not have at least one of required scope(s): [read:admin]", "url": ""})),
        )
        .with_priority(1)
        .mount(&s.gitea)
        .await;
    let mut cmd = plan_command(&s, true);
    cmd.env("HETZNER_API_TOKEN", "a-refused-hetzner-token");
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The plan is still printed (JSON on stdout), the problems go to stderr, each once.
    let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(err.contains("preflight failed"), "{err}");
    assert!(
        err.contains("HTTP 403")
            && err.contains("GITEA_SCOPE=admin needs a token with write:admin"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 401") && err.contains("Read & Write API token"),
        "{err}"
    );
    assert_eq!(err.matches("HTTP 401").count(), 1, "{err}");
    assert!(!err.contains("before 1.26"), "{err}");
    assert!(!err.contains("a-refused-hetzner-token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_with_every_service_unreachable_names_the_root_cause_once_per_service() {
    let s = services().await;
    let mut cmd = plan_command(&s, false);
    cmd.env("GITEA_API_URL", "http://127.0.0.1:9")
        .env("HETZNER_API_URL", "http://127.0.0.1:9/v1");
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        err.contains("is GITEA_API_URL=http://127.0.0.1:9 right"),
        "{err}"
    );
    assert!(
        err.contains("is HETZNER_API_URL=http://127.0.0.1:9/v1 right"),
        "{err}"
    );
    assert_eq!(
        err.matches("gitea: ").count(),
        1,
        "one problem for Gitea: {err}"
    );
    // The plan does not say each failure again, nor claims an old Gitea.
    assert!(
        !text.contains("Connection refused") && !text.contains("before 1.26"),
        "{text}"
    );
    assert!(text.contains("version is unknown"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_says_when_servers_carry_another_installations_name() {
    let s = services().await;
    for (id, name) in [(71, "seed-linux-a"), (72, "seed-linux-b")] {
        s.hetzner_fake
            .0
            .lock()
            .unwrap()
            .servers
            .push(hetzner::server(
                id,
                name,
                json!({"gitea-ci-autoscaler/owner": "default", "gitea-ci-autoscaler/pool": "linux"}),
                "running",
            ));
    }
    let out = output(plan_command(&s, false)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("2 server(s) and 0 node(s) carry another installation's ownership label (gitea-ci-autoscaler/owner=default: 2 server(s), 0 node(s))")
            && text.contains("(\"ci\")"),
        "{text}"
    );
    assert!(!text.contains("seed-linux-a "), "never one of ours: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_needs_no_ssh_keys() {
    let s = services().await;
    Mock::given(path("/v1/ssh_keys"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&s.hetzner)
        .await;
    let out = output(plan_command(&s, false)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = s.hetzner.received_requests().await.unwrap();
    assert!(!asked.iter().any(|r| r.url.path() == "/v1/ssh_keys"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_the_default_name_when_a_namesake_shares_the_project() {
    let s = services().await;
    // A server of another installation called `default`, in another cluster.
    s.hetzner_fake
        .0
        .lock()
        .unwrap()
        .servers
        .push(hetzner::server(
            4242,
            "default-linux-theirs",
            json!({"gitea-ci-autoscaler/owner": "default", "gitea-ci-autoscaler/pool": "linux",
               "gitea-ci-autoscaler/cluster": "their-cluster-uid"}),
            "running",
        ));
    let mut cmd = command(&s, &["run"]);
    cmd.env_remove("INSTALLATION")
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("WEBHOOK_ADDR", format!("127.0.0.1:{}", free_port()));
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another installation called \"default\"") && err.contains("INSTALLATION"),
        "{err}"
    );
    assert_eq!(
        s.hetzner_fake.server_labels().len(),
        1,
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_without_a_cluster_says_so_and_exits_1() {
    let s = services().await;
    let mut cmd = plan_command(&s, false);
    cmd.env("KUBECONFIG", s.dir.join("missing-kubeconfig"));
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Kubernetes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_waits_for_a_cluster_it_cannot_reach_at_start_instead_of_exiting() {
    let s = services().await;
    let mut cmd = command(&s, &["run"]);
    // Human logs (the default) into a pipe: no colour codes.
    let port = free_port();
    cmd.env("KUBECONFIG", s.dir.join("missing-kubeconfig"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("WEBHOOK_ADDR", format!("127.0.0.1:{}", free_port()))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon gave up instead of retrying"
    );
    // Served meanwhile: alive (no restart would help), not ready, and saying why.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let healthz = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(healthz.status().is_success());
    let readyz = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let why = readyz.text().await.unwrap();
    assert!(
        why.starts_with("not ready: cannot start yet (retrying): Kubernetes"),
        "{why}"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cannot start yet; retrying") && err.contains("Kubernetes"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");
}

/// A free loopback port (released again for the daemon to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_acts_and_stops_cleanly_on_sigterm() {
    let s = services().await;
    let port = free_port();
    let mut cmd = command(&s, &["run"]);
    cmd.env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("WEBHOOK_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("LOG_FORMAT", "json")
        .env("POLL_INTERVAL_SECS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let mut became_ready = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(&ready).send().await
            && r.status().is_success()
        {
            became_ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = match http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.text().await.ok(),
        _ => None,
    };
    // Kept for CI, which lints the live exposition with promtool (.ci/deploy-check).
    if let Some(text) = &metrics {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-metrics.txt");
        std::fs::write(path, text).unwrap();
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(became_ready, "never ready:\n{logs}");
    let metrics = metrics.expect("/metrics answered");
    assert!(metrics.contains("autoscaler_leader 1"), "{metrics}");
    assert!(out.status.success(), "exit {:?}:\n{logs}", out.status);
    // It acted: the waiting job got a server.
    let servers = s.hetzner_fake.server_labels();
    assert_eq!(servers.len(), 1, "{logs}");
    // Every log line is JSON, none holds a secret, and shutdown was orderly.
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    // The create is logged at info with its target and reason.
    let created: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == "create_server")
        .collect();
    assert_eq!(created.len(), 1, "{logs}");
    let message = created[0]["message"].as_str().unwrap_or("");
    assert_eq!(created[0]["level"], "INFO");
    assert!(
        message.starts_with("done: create ci-linux-") && message.contains("(ccx33, nbg1): "),
        "{message}"
    );
    assert!(created[0]["server"].as_u64().is_some(), "{}", created[0]);
    for secret in [gitea::TOKEN, hetzner::TOKEN, "K10-join-secret"] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    assert!(
        logs.contains("shutting down") && logs.contains("stopped"),
        "{logs}"
    );
}

/// `image bake` makes the pool's image with the cluster's K3s version and leaves no server;
/// `plan` then boots new servers from it, and falls back with a warning for another version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_bake_makes_an_image_that_plan_then_boots() {
    let s = services().await;
    let mut bake = command(&s, &["image", "bake", "--poll-ms", "5"]);
    bake.env("HETZNER_SERVER_TYPE", "ccx33");
    let out = output(bake).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let id: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    for step in [
        "creating the temporary server",
        "powers off when done",
        "taking the snapshot",
        "is available",
    ] {
        assert!(err.contains(step), "{step}: {err}");
    }
    assert!(
        err.contains("K3s v1.33.4+k3s1"),
        "the cluster's version: {err}"
    );
    {
        let state = s.hetzner_fake.state();
        assert!(state.servers.is_empty(), "the temporary server is gone");
        assert_eq!(state.snapshots.len(), 1);
        assert_eq!(state.snapshots[0]["id"], id);
    }
    // Again: nothing to do, the same image.
    let mut again = command(&s, &["image", "bake", "--poll-ms", "5"]);
    again.env("HETZNER_SERVER_TYPE", "ccx33");
    let out = output(again).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id.to_string());

    let mut plan = command(&s, &["plan"]);
    plan.env("HETZNER_BAKED_IMAGE", "auto");
    let out = output(plan).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("(ccx33, nbg1, baked image {id})")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut plan = command(&s, &["plan", "--json"]);
    plan.env("HETZNER_BAKED_IMAGE", "auto")
        .env("K3S_VERSION", "v1.34.1+k3s1");
    let out = output(plan).await;
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["actions"][0]["image"], json!("ubuntu-24.04"));
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "baked_image_fallback"),
        "{plan}"
    );
    // A bad value is refused, naming the variable.
    let mut bad = command(&s, &["plan"]);
    bad.env("HETZNER_BAKED_IMAGE", "a b");
    let out = output(bad).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HETZNER_BAKED_IMAGE"));
}
