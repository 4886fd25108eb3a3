//! The cluster port against a loopback fake API server, through kube's real client stack.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use autoscaler_core::ports::{Cluster, DrainProgress, ErrorKind, Leadership};
use autoscaler_core::{PodPhase, Source, Timestamp, keys};
use autoscaler_fakes::kube::{FakeKube, State, node, pod};
use autoscaler_k3s::{ClusterConfig, K3sCluster, LeaseLock, client_config};
use serde_json::json;

async fn client(url: &str, timeout: Duration) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = client_config(kube::Config::new(url.parse().unwrap()), timeout);
    kube::Client::try_from(config).unwrap()
}

async fn cluster(state: State) -> (FakeKube, K3sCluster) {
    cluster_with(state, |_| {}).await
}

async fn cluster_with(
    state: State,
    tweak: impl FnOnce(&mut ClusterConfig),
) -> (FakeKube, K3sCluster) {
    let fake = FakeKube::with(state);
    let url = fake.start().await;
    let mut config = ClusterConfig::new("ci");
    config.page_size = 2;
    tweak(&mut config);
    let c = client(&url, config.timeout).await;
    (fake, K3sCluster::new(c, config))
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The owned nodes, with one runner pod on `ci-linux-1`.
fn one_runner_on_node_1() -> State {
    let mut s = state_with_nodes();
    s.pods = vec![pod(
        "gitea-runners",
        "act-1",
        "ci-linux-1",
        Some("StatefulSet"),
        "Running",
    )];
    s
}

fn state_with_nodes() -> State {
    let mut s = State::default();
    for i in 1..=5 {
        let name = format!("ci-linux-{i}");
        s.nodes
            .insert(name.clone(), node(&name, Some("ci"), i != 5));
    }
    s.nodes
        .insert("control".into(), node("control", None, true));
    s.nodes
        .insert("other-1".into(), node("other-1", Some("other"), true));
    s
}

#[tokio::test]
async fn nodes_with_an_ownership_label_are_listed_across_pages() {
    let (fake, c) = cluster(state_with_nodes()).await;
    let Source::Complete { items } = c.nodes().await.unwrap() else {
        panic!("expected a complete list")
    };
    // Ours and the other installation's (the core keeps its own and counts the rest); never
    // the control plane, which carries no ownership label.
    let names: Vec<&str> = items.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ci-linux-1",
            "ci-linux-2",
            "ci-linux-3",
            "ci-linux-4",
            "ci-linux-5",
            "other-1"
        ]
    );
    assert!(
        items[0].ready && !items[4].ready,
        "Ready=Unknown is not ready"
    );
    assert_eq!(items[0].ready_since, Some(t("2026-11-25T10:01:30Z")));
    assert_eq!(items[0].created, Some(t("2026-11-25T10:01:00Z")));
    let uris: Vec<String> = fake.requests().into_iter().map(|(_, u, _)| u).collect();
    assert_eq!(uris.len(), 3, "{uris:?}");
    // Every installation's nodes (the key alone): the core keeps its own.
    assert!(
        uris[0].starts_with("/api/v1/nodes?")
            && uris[0].contains("labelSelector=gitea-ci-autoscaler%2Fowner")
            && !uris[0].contains("owner%3D")
            && uris[0].contains("limit=2"),
        "{}",
        uris[0]
    );
    assert!(
        uris[1].contains("continue=2") && uris[2].contains("continue=4"),
        "{uris:?}"
    );
}

#[tokio::test]
async fn runner_pods_are_the_selected_pods_of_the_runner_namespace() {
    let mut logs = pod(
        "gitea-runners",
        "logs-x",
        "ci-linux-1",
        Some("DaemonSet"),
        "Running",
    );
    logs["metadata"]["labels"] = json!({"app": "logs"});
    let s = State {
        pods: vec![
            pod(
                "gitea-runners",
                "act-1",
                "ci-linux-1",
                Some("StatefulSet"),
                "Running",
            ),
            pod("gitea-runners", "act-2", "ci-linux-2", None, "Pending"),
            // The seed's setups run one runner per node as a DaemonSet.
            pod(
                "gitea-runners",
                "act-ds",
                "ci-linux-3",
                Some("DaemonSet"),
                "Running",
            ),
            logs,
            pod("default", "web", "ci-linux-1", None, "Running"),
        ],
        ..State::default()
    };
    let (fake, c) = cluster(s).await;
    let Source::Complete { items } = c.runner_pods().await.unwrap() else {
        panic!("expected a complete list")
    };
    let got: Vec<(&str, Option<&str>, PodPhase)> = items
        .iter()
        .map(|p| (p.name.as_str(), p.node.as_deref(), p.phase))
        .collect();
    assert_eq!(
        got,
        [
            ("act-1", Some("ci-linux-1"), PodPhase::Running),
            ("act-2", Some("ci-linux-2"), PodPhase::Pending),
            ("act-ds", Some("ci-linux-3"), PodPhase::Running),
        ]
    );
    let (_, uri, _) = &fake.requests()[0];
    assert!(
        uri.starts_with("/api/v1/namespaces/gitea-runners/pods?")
            && uri.contains("labelSelector=app%3Dgitea-actions-runner"),
        "{uri}"
    );
}

#[tokio::test]
async fn annotations_are_set_and_removed_and_cordon_is_a_merge_patch() {
    let (fake, c) = cluster(state_with_nodes()).await;
    c.annotate_node(
        "ci-linux-1",
        keys::IDLE_SINCE,
        Some("2026-11-25T10:10:00Z".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.0.lock().unwrap().nodes["ci-linux-1"]["metadata"]["annotations"][keys::IDLE_SINCE],
        "2026-11-25T10:10:00Z"
    );
    c.annotate_node("ci-linux-1", keys::IDLE_SINCE, None)
        .await
        .unwrap();
    assert!(
        fake.0.lock().unwrap().nodes["ci-linux-1"]["metadata"]["annotations"]
            .get(keys::IDLE_SINCE)
            .is_none()
    );
    c.cordon("ci-linux-1").await.unwrap();
    assert_eq!(
        fake.0.lock().unwrap().nodes["ci-linux-1"]["spec"]["unschedulable"],
        true
    );
    let reqs = fake.requests();
    let (m, uri, body) = reqs.last().unwrap();
    assert_eq!(
        (m.as_str(), uri.as_str()),
        ("PATCH", "/api/v1/nodes/ci-linux-1?")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        json!({"spec": {"unschedulable": true}})
    );
    let nodes = c.nodes().await.unwrap();
    assert!(
        nodes
            .items()
            .iter()
            .find(|n| n.name == "ci-linux-1")
            .unwrap()
            .cordoned
    );
    let e = c.cordon("ghost").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_drain_evicts_what_it_may_and_finishes_when_nothing_is_left() {
    let mut s = state_with_nodes();
    s.pods = vec![
        pod(
            "gitea-runners",
            "act-1",
            "ci-linux-1",
            Some("StatefulSet"),
            "Running",
        ),
        pod(
            "kube-system",
            "svclb-1",
            "ci-linux-1",
            Some("DaemonSet"),
            "Running",
        ),
        pod("kube-system", "static-1", "ci-linux-1", None, "Running"),
        pod("ci", "done-1", "ci-linux-1", Some("Job"), "Succeeded"),
        pod(
            "gitea-runners",
            "act-2",
            "ci-linux-2",
            Some("StatefulSet"),
            "Running",
        ),
    ];
    s.pods[2]["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    let (fake, c) = cluster(s).await;
    let now = t("2026-11-25T10:55:00Z");
    let first = c.drain("ci-linux-1", now).await.unwrap();
    assert_eq!(
        first,
        DrainProgress::Pending {
            evicted: 1,
            blocked: vec![],
            terminating: 0
        }
    );
    let evictions: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|(m, u, _)| m == "POST" && u.contains("eviction"))
        .map(|(_, u, _)| u)
        .collect();
    assert_eq!(
        evictions,
        ["/api/v1/namespaces/gitea-runners/pods/act-1/eviction?"]
    );
    // Still terminating: pending, nothing new evicted.
    let second = c.drain("ci-linux-1", now).await.unwrap();
    assert_eq!(
        second,
        DrainProgress::Pending {
            evicted: 0,
            blocked: vec![],
            terminating: 1
        }
    );
    fake.finish_terminating();
    assert_eq!(
        c.drain("ci-linux-1", now).await.unwrap(),
        DrainProgress::Drained
    );
    assert_eq!(
        fake.0.lock().unwrap().nodes["ci-linux-1"]["metadata"]["annotations"][keys::DRAINED],
        "2026-11-25T10:55:00Z"
    );
    // The other node's runner was not touched.
    assert!(
        fake.0
            .lock()
            .unwrap()
            .pods
            .iter()
            .any(|p| p["metadata"]["name"] == "act-2"
                && p["metadata"]["deletionTimestamp"].is_null())
    );
}

#[tokio::test]
async fn a_disruption_budget_refusal_is_reported_at_once_and_never_retried_inside_the_call() {
    let mut s = one_runner_on_node_1();
    s.pdb_blocked = BTreeSet::from(["gitea-runners/act-1".to_owned()]);
    let (fake, c) = cluster(s).await;
    let started = Instant::now();
    let progress = c
        .drain("ci-linux-1", t("2026-11-25T10:55:00Z"))
        .await
        .unwrap();
    assert_eq!(
        progress,
        DrainProgress::Pending {
            evicted: 0,
            blocked: vec!["gitea-runners/act-1".into()],
            terminating: 0
        }
    );
    let evictions = fake
        .requests()
        .iter()
        .filter(|(m, u, _)| m == "POST" && u.contains("eviction"))
        .count();
    assert_eq!(evictions, 1, "kube's default retry of 429 is off");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        fake.0.lock().unwrap().nodes["ci-linux-1"]["metadata"]["annotations"]
            .get(keys::DRAINED)
            .is_none()
    );
}

#[tokio::test]
async fn other_eviction_failures_are_errors_naming_the_pod() {
    let mut s = one_runner_on_node_1();
    s.eviction_broken = BTreeSet::from(["gitea-runners/act-1".to_owned()]);
    let (_, c) = cluster(s).await;
    let e = c
        .drain("ci-linux-1", t("2026-11-25T10:55:00Z"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(
        e.message.contains("evict pod gitea-runners/act-1")
            && e.message.contains("more than one PodDisruptionBudget"),
        "{e}"
    );
}

#[tokio::test]
async fn a_hanging_eviction_times_out_instead_of_stalling_the_tick() {
    let mut s = one_runner_on_node_1();
    s.eviction_delay = Some(Duration::from_secs(10));
    let (_, c) = cluster_with(s, |c| c.timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let e = c
        .drain("ci-linux-1", t("2026-11-25T10:55:00Z"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn deleting_a_node_twice_is_fine_and_the_version_is_read() {
    let (fake, c) = cluster(state_with_nodes()).await;
    c.delete_node("ci-linux-3").await.unwrap();
    c.delete_node("ci-linux-3").await.unwrap();
    assert!(!fake.0.lock().unwrap().nodes.contains_key("ci-linux-3"));
    assert_eq!(c.server_version().await.unwrap(), "v1.33.4+k3s1");
}

#[tokio::test]
async fn the_join_address_is_the_ready_api_server_endpoint() {
    let s = State {
        control_plane: vec![("10.0.0.9".into(), false), ("10.0.0.2".into(), true)],
        ..State::default()
    };
    let (_, c) = cluster(s).await;
    assert_eq!(
        c.control_plane_url().await.unwrap(),
        "https://10.0.0.2:6443"
    );
    let s = State {
        control_plane: vec![("2001:db8::2".into(), true)],
        ..State::default()
    };
    let (_, c) = cluster(s).await;
    assert_eq!(
        c.control_plane_url().await.unwrap(),
        "https://[2001:db8::2]:6443"
    );
    let (_, c) = cluster(State::default()).await;
    let e = c.control_plane_url().await.unwrap_err();
    assert!(
        e.message.contains("set the K3s server URL explicitly"),
        "{e}"
    );
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_after_expiry_or_release() {
    let fake = FakeKube::default();
    let url = fake.start().await;
    let kc = client(&url, Duration::from_secs(5)).await;
    let a = LeaseLock::new(
        kc.clone(),
        "ci",
        "gitea-ci-autoscaler",
        "pod-a",
        Duration::from_secs(15),
    );
    let b = LeaseLock::new(
        kc,
        "ci",
        "gitea-ci-autoscaler",
        "pod-b",
        Duration::from_secs(15),
    );
    let t0 = t("2026-11-25T10:00:00Z");
    assert!(a.acquire_or_renew(t0).await.unwrap(), "created");
    assert!(!b.acquire_or_renew(t0).await.unwrap(), "held by a");
    let t10 = t("2026-11-25T10:00:10Z");
    assert!(a.acquire_or_renew(t10).await.unwrap(), "renewed");
    assert!(
        !b.acquire_or_renew(t("2026-11-25T10:00:20Z")).await.unwrap(),
        "renewed at 10 s, valid to 25 s"
    );
    // a stops renewing: b takes over after the lease ran out.
    let t26 = t("2026-11-25T10:00:26Z");
    assert!(b.acquire_or_renew(t26).await.unwrap());
    assert!(!a.acquire_or_renew(t26).await.unwrap(), "a lost it");
    let lease = fake.0.lock().unwrap().leases["ci/gitea-ci-autoscaler"].clone();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
    // b releases on shutdown: a leads at once.
    b.release().await.unwrap();
    assert!(a.acquire_or_renew(t("2026-11-25T10:00:27Z")).await.unwrap());
    // Releasing a lease one does not hold changes nothing.
    b.release().await.unwrap();
    assert_eq!(
        fake.0.lock().unwrap().leases["ci/gitea-ci-autoscaler"]["spec"]["holderIdentity"],
        "pod-a"
    );
}

#[tokio::test]
async fn two_replicas_racing_for_an_expired_lease_cannot_both_win() {
    let fake = FakeKube::default();
    let url = fake.start().await;
    let kc = client(&url, Duration::from_secs(5)).await;
    let a = LeaseLock::new(kc.clone(), "ci", "l", "pod-a", Duration::from_secs(15));
    assert!(a.acquire_or_renew(t("2026-11-25T10:00:00Z")).await.unwrap());
    let later = t("2026-11-25T11:00:00Z");
    let locks: Vec<LeaseLock> = (0..4)
        .map(|i| {
            LeaseLock::new(
                kc.clone(),
                "ci",
                "l",
                format!("pod-{i}"),
                Duration::from_secs(15),
            )
        })
        .collect();
    let results = futures_join(
        locks
            .into_iter()
            .map(|l| async move { l.acquire_or_renew(later).await }),
    )
    .await;
    let winners = results.iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(winners, 1, "{results:?}");
}

async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut out = Vec::new();
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_clusters_identity_is_the_kube_system_namespaces_uid() {
    let s = State {
        cluster_uid: "0b5e3a8c-1f2d-4e6a-9b7c-3d8e2f1a0c4b".into(),
        ..State::default()
    };
    let (fake, c) = cluster(s).await;
    assert_eq!(
        c.identity().await.unwrap(),
        "0b5e3a8c-1f2d-4e6a-9b7c-3d8e2f1a0c4b"
    );
    let reqs = fake.0.lock().unwrap().requests.clone();
    assert!(
        reqs.iter()
            .any(|(m, uri, _)| m == "GET" && uri == "/api/v1/namespaces/kube-system"),
        "{reqs:?}"
    );
    // A namespace without a uid is not an identity.
    fake.0.lock().unwrap().cluster_uid = String::new();
    let e = c.identity().await.unwrap_err();
    assert!(e.to_string().contains("no uid"), "{e}");
}

#[tokio::test]
async fn a_join_token_is_a_bootstrap_secret_the_cluster_accepts_once_and_never_after_its_revocation()
 {
    use secrecy::ExposeSecret;
    let (fake, c) = cluster(State::default()).await;
    let expires = t("2026-11-25T10:15:00Z");
    let token = c.mint_join_token("ci-linux-7", expires).await.unwrap();
    assert!(keys::is_token_id(&token.id), "{}", token.id);
    assert_eq!(token.expires, expires);
    let text = token.token.expose_secret().to_owned();
    assert!(!format!("{token:?}").contains(text.rsplit('.').next().unwrap()));
    // What the API server stored: a bootstrap token of K3s's agent group, ours by description.
    {
        let s = fake.0.lock().unwrap();
        let data = s
            .secret_data("kube-system", &format!("bootstrap-token-{}", token.id))
            .unwrap();
        assert_eq!(data["token-id"], token.id);
        assert_eq!(data["expiration"], "2026-11-25T10:15:00Z");
        assert_eq!(
            data["auth-extra-groups"],
            autoscaler_k3s::join_token::TOKEN_GROUP
        );
        assert!(data["description"].starts_with("gitea-ci-autoscaler: ci joins server ci-linux-7"));
        // The agent's view: this CA, this id and secret, not yet expired.
        assert_eq!(
            s.accepts_join_token(&text, t("2026-11-25T10:00:00Z")),
            Ok(())
        );
        assert!(
            s.accepts_join_token(&text, t("2026-11-25T10:16:00Z"))
                .is_err()
        );
    }
    let second = c.mint_join_token("ci-linux-8", expires).await.unwrap();
    assert_ne!(second.id, token.id);
    assert_ne!(second.token.expose_secret(), token.token.expose_secret());
    c.revoke_join_token(&token.id).await.unwrap();
    c.revoke_join_token(&token.id).await.unwrap(); // gone counts as revoked
    assert!(
        fake.0
            .lock()
            .unwrap()
            .accepts_join_token(&text, t("2026-11-25T10:00:00Z"))
            .is_err()
    );
    // No id that is not a token id ever reaches the API server.
    let before = fake.requests().len();
    assert_eq!(
        c.revoke_join_token("../x").await.unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert_eq!(fake.requests().len(), before);
    // The CA was read once; no Secret was ever read.
    let reqs = fake.requests();
    assert_eq!(
        reqs.iter()
            .filter(|(_, u, _)| u.contains("kube-root-ca.crt"))
            .count(),
        1
    );
    assert!(
        reqs.iter()
            .all(|(m, u, _)| !(m == "GET" && u.contains("/secrets")))
    );
}
