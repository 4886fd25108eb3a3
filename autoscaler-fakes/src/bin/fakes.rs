//! Starts the three fakes on loopback ports, seeded with a small installation, and prints where
//! each listens as `NAME=value` lines: for CI's checks with real clients (kubectl, the hcloud
//! Python library) and for a person who wants to poke at them. Pods evicted or deleted finish
//! terminating a second later. Runs until its standard input closes.
//!
//! usage: `cargo run -p autoscaler-fakes --bin fakes` (then e.g.
//! `kubectl --server "$KUBE_URL" get nodes`)

use std::io::Read;
use std::time::Duration;

use autoscaler_fakes::{gitea, hetzner, kube};
use serde_json::json;
use wiremock::{Mock, MockServer};

fn main() {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fakes: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(serve());
}

async fn serve() {
    // Hetzner: two servers of installation `ci`, one of another.
    let mut h = hetzner::State::default();
    for (id, name, owner, pool) in [
        (1, "ci-linux-a", "ci", "linux"),
        (2, "ci-arm-b", "ci", "arm"),
        (3, "other-c", "other", "linux"),
    ] {
        h.servers.push(hetzner::server(
            id,
            name,
            json!({"gitea-ci-autoscaler/owner": owner, "gitea-ci-autoscaler/pool": pool}),
            "running",
        ));
    }
    let hetzner_fake = hetzner::FakeHetzner::new(h);
    let hetzner_server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(hetzner_fake)
        .mount(&hetzner_server)
        .await;

    // Gitea: a waiting job and a runner on each CI machine.
    let g = gitea::State {
        jobs: vec![gitea::job(1, "queued", &["ubuntu-latest"], None)],
        runners: vec![
            gitea::runner(10, "runner-a", true, false),
            gitea::runner(11, "runner-b", true, false),
        ],
        ..gitea::State::default()
    };
    let gitea_server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(gitea::FakeGitea::new(g))
        .mount(&gitea_server)
        .await;

    // Kubernetes: the two CI nodes, a control-plane node, runner pods (a DaemonSet's) and an
    // ordinary pod on the first CI node.
    let mut k = kube::State::default();
    for (name, owner, pool) in [
        ("ci-linux-a", Some("ci"), "linux"),
        ("ci-arm-b", Some("ci"), "arm"),
        ("control", None, ""),
    ] {
        let mut n = kube::node(name, owner, true);
        if !pool.is_empty() {
            n["metadata"]["labels"]["gitea-ci-autoscaler/pool"] = json!(pool);
        }
        k.nodes.insert(name.to_owned(), n);
    }
    k.pods.push(kube::pod(
        "gitea-runners",
        "runner-a",
        "ci-linux-a",
        Some("DaemonSet"),
        "Running",
    ));
    k.pods.push(kube::pod(
        "gitea-runners",
        "runner-b",
        "ci-arm-b",
        Some("DaemonSet"),
        "Running",
    ));
    let mut web = kube::pod(
        "default",
        "web",
        "ci-linux-a",
        Some("ReplicaSet"),
        "Running",
    );
    web["metadata"]["labels"] = json!({"app": "web"});
    k.pods.push(web);
    let kube_fake = kube::FakeKube::with(k);
    let kube_url = kube_fake.start().await;
    let terminating = kube_fake.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            terminating.finish_terminating();
        }
    });

    println!("GITEA_URL={}", gitea_server.uri());
    println!("GITEA_TOKEN={}", gitea::TOKEN);
    println!("HETZNER_URL={}/v1", hetzner_server.uri());
    println!("HETZNER_TOKEN={}", hetzner::TOKEN);
    println!("KUBE_URL={kube_url}");
    // Until standard input closes.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
}
