//! The client against a loopback fake Hetzner Cloud: exact requests, every page, every
//! documented error, the request budget.

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_core::ports::{Cloud, ErrorKind, NewServer};
use autoscaler_core::{ServerId, ServerSpec, ServerStatus, Source};
use autoscaler_fakes::hetzner::{FakeHetzner, State, TOKEN, server};
use autoscaler_hetzner::{HetznerClient, HetznerConfig, K3sJoin};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const JOIN_TOKEN: &str = "K10join-secret::abcdef.0123456789abcdef";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn config(server: &MockServer) -> HetznerConfig {
    let join = K3sJoin::new(
        "https://10.0.0.2:6443",
        Some(SecretString::from(JOIN_TOKEN)),
        "v1.33.4+k3s1",
    );
    let mut c = HetznerConfig::new(SecretString::from(TOKEN), "ci", join);
    c.settings.url = format!("{}/v1", server.uri());
    c
}

async fn serve(state: State) -> (MockServer, FakeHetzner, HetznerClient) {
    let server = MockServer::start().await;
    let fake = FakeHetzner::new(state);
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let client = HetznerClient::new(http(), config(&server)).unwrap();
    (server, fake, client)
}

fn owned(id: u64) -> Value {
    server(
        id,
        &format!("ci-linux-{id}"),
        json!({"gitea-ci-autoscaler/owner": "ci", "gitea-ci-autoscaler/pool": "linux"}),
        "running",
    )
}

fn new_server(name: &str) -> NewServer {
    NewServer::new(ServerSpec {
        pool: "linux".into(),
        name: name.into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: BTreeMap::from([
            ("gitea-ci-autoscaler/owner".into(), "ci".into()),
            ("gitea-ci-autoscaler/pool".into(), "linux".into()),
        ]),
        node_labels: BTreeMap::from([("gitea-ci-autoscaler/owner".into(), "ci".into())]),
    })
}

#[tokio::test]
async fn servers_with_an_ownership_label_are_listed_and_every_page_is_read() {
    let mut servers: Vec<Value> = (1..=60).map(owned).collect();
    // Another installation's and a hand-made server in the same project.
    servers.push(server(
        900,
        "other-1",
        json!({"gitea-ci-autoscaler/owner": "other"}),
        "running",
    ));
    servers.push(server(901, "db", json!({}), "running"));
    let (mock, _, client) = serve(State {
        servers,
        ..State::default()
    })
    .await;
    let Source::Complete { items } = client.servers().await.unwrap() else {
        panic!("expected a complete list")
    };
    // Ours and the other installation's (the core keeps its own and counts the rest); never
    // a server without the label.
    assert_eq!(items.len(), 61);
    assert!(
        items
            .iter()
            .all(|s| s.labels.contains_key("gitea-ci-autoscaler/owner"))
    );
    assert_eq!(
        items
            .iter()
            .filter(|s| s.labels["gitea-ci-autoscaler/owner"] == "ci")
            .count(),
        60
    );
    assert_eq!(
        (items[0].server_type.as_str(), items[0].location.as_str()),
        ("ccx33", "nbg1")
    );
    let reqs = mock.received_requests().await.unwrap();
    let urls: Vec<String> = reqs
        .iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r.method,
                r.url.path(),
                r.url.query().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        urls,
        [
            "GET /v1/servers?label_selector=gitea-ci-autoscaler%2Fowner&per_page=50&page=1",
            "GET /v1/servers?label_selector=gitea-ci-autoscaler%2Fowner&per_page=50&page=2",
        ]
    );
    assert_eq!(
        reqs[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {TOKEN}")
    );
}

#[tokio::test]
async fn a_failed_later_page_gives_a_partial_list() {
    let servers: Vec<Value> = (1..=60).map(owned).collect();
    let server_mock = MockServer::start().await;
    let fake = FakeHetzner::new(State {
        servers,
        ..State::default()
    });
    // Page 2 answers 503 once.
    Mock::given(wiremock::matchers::query_param("page", "2"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": "unavailable", "message": "down", "details": null}}),
        ))
        .with_priority(1)
        .mount(&server_mock)
        .await;
    Mock::given(any())
        .respond_with(fake)
        .with_priority(2)
        .mount(&server_mock)
        .await;
    let client = HetznerClient::new(http(), config(&server_mock)).unwrap();
    match client.servers().await.unwrap() {
        Source::Partial { items, reason } => {
            assert_eq!(items.len(), 50);
            assert!(
                reason.contains("page 2 failed") && reason.contains("unavailable"),
                "{reason}"
            );
        }
        other => panic!("expected partial, got {other:?}"),
    }
}

#[tokio::test]
async fn create_sends_the_documented_body_with_the_join_in_user_data() {
    let (mock, fake, _) = serve(State::default()).await;
    let mut c = config(&mock);
    c.settings.ssh_keys = vec!["ops".into()];
    c.settings.enable_ipv4 = false;
    c.settings.firewalls = vec![38];
    let client = HetznerClient::new(http(), c).unwrap();
    let s = client
        .create_server(&new_server("ci-linux-a1b2"))
        .await
        .unwrap();
    assert_eq!(
        (s.name.as_str(), s.status),
        ("ci-linux-a1b2", ServerStatus::Initializing)
    );
    assert_eq!(s.labels["gitea-ci-autoscaler/pool"], "linux");
    let req = mock.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(
        (req.method.as_str(), req.url.path()),
        ("POST", "/v1/servers")
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["server_type"], "ccx33");
    assert_eq!(body["location"], "nbg1");
    assert_eq!(body["image"], "ubuntu-24.04");
    assert_eq!(body["ssh_keys"], json!(["ops"]));
    assert_eq!(body["firewalls"], json!([{"firewall": 38}]));
    assert_eq!(
        body["public_net"],
        json!({"enable_ipv4": false, "enable_ipv6": true})
    );
    assert!(
        body.get("datacenter").is_none(),
        "datacenter was removed from the API"
    );
    let user_data = fake.0.lock().unwrap().last_user_data.clone().unwrap();
    assert!(user_data.starts_with("#cloud-config\n"));
    assert!(
        user_data.contains("node-name: ci-linux-a1b2"),
        "{user_data}"
    );
    assert!(
        user_data.contains("INSTALL_K3S_VERSION=v1.33.4+k3s1"),
        "{user_data}"
    );
}

#[tokio::test]
async fn a_servers_own_token_goes_in_its_user_data_and_its_id_on_its_labels() {
    let (mock, fake, _) = serve(State::default()).await;
    let mut c = config(&mock);
    c.join.token = None; // per-server mode: no fleet-wide token
    let client = HetznerClient::new(http(), c).unwrap();
    let e = client
        .create_server(&new_server("ci-linux-none"))
        .await
        .unwrap_err();
    assert!(e.message.contains("no join token"), "{e}");
    let mut new = new_server("ci-linux-own");
    new.join_token = Some(autoscaler_core::ports::JoinToken {
        id: "abc123".into(),
        token: SecretString::from("K10ca::abc123.fedcba9876543210"),
        expires: "2026-11-25T10:15:00Z".parse().unwrap(),
    });
    let s = client.create_server(&new).await.unwrap();
    assert_eq!(s.labels[autoscaler_core::keys::JOIN_TOKEN], "abc123");
    let user_data = fake.0.lock().unwrap().user_data[&s.id].clone();
    assert_eq!(
        autoscaler_fakes::world::join_token_in(&user_data).as_deref(),
        Some("K10ca::abc123.fedcba9876543210")
    );
    assert!(
        user_data.contains("169.254.169.254"),
        "the metadata firewall"
    );
}

#[tokio::test]
async fn every_documented_error_maps_to_its_kind() {
    let cases: [(u16, &str, ErrorKind); 14] = [
        (412, "resource_unavailable", ErrorKind::Capacity),
        (422, "placement_error", ErrorKind::Capacity),
        (403, "resource_limit_exceeded", ErrorKind::Quota),
        (409, "uniqueness_error", ErrorKind::Conflict),
        (409, "conflict", ErrorKind::Conflict),
        (423, "locked", ErrorKind::Conflict),
        (423, "protected", ErrorKind::Invalid),
        (401, "unauthorized", ErrorKind::Auth),
        (401, "token_readonly", ErrorKind::Auth),
        (403, "forbidden", ErrorKind::Auth),
        (422, "invalid_input", ErrorKind::Invalid),
        (500, "server_error", ErrorKind::Transient),
        (503, "unavailable", ErrorKind::Transient),
        (504, "timeout", ErrorKind::Timeout),
    ];
    for (status, code, kind) in cases {
        let mut state = State::default();
        state.faults.push_back((status, code));
        let (_, _, client) = serve(state).await;
        let e = client
            .create_server(&new_server("ci-linux-x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, kind, "{status} {code}");
        assert!(
            e.message.contains(code) && e.message.contains("correlation id fake-7f3a"),
            "{e}"
        );
    }
}

/// What creating one server gives against a fake in `state`.
async fn create_error(state: State, name: &str) -> autoscaler_core::ports::ProviderError {
    let (_, _, client) = serve(state).await;
    client.create_server(&new_server(name)).await.unwrap_err()
}

#[tokio::test]
async fn real_capacity_quota_and_name_errors_come_from_the_fake_rules() {
    let no_capacity = State {
        no_capacity: vec![("ccx33".into(), "nbg1".into())],
        ..State::default()
    };
    assert_eq!(
        create_error(no_capacity, "a").await.kind,
        ErrorKind::Capacity
    );
    let full = State {
        max_servers: 0,
        ..State::default()
    };
    assert_eq!(create_error(full, "a").await.kind, ErrorKind::Quota);
    let taken = State {
        servers: vec![owned(1)],
        ..State::default()
    };
    let e = create_error(taken, "ci-linux-1").await;
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("uniqueness_error"), "{e}");
}

#[tokio::test]
async fn a_non_json_error_body_is_classified_by_status() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&mock)
        .await;
    let client = HetznerClient::new(http(), config(&mock)).unwrap();
    let e = client.servers().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(
        e.message.contains("http_502") && e.message.contains("bad gateway"),
        "{e}"
    );
}

#[tokio::test]
async fn the_budget_follows_the_headers_and_stops_sending_when_spent() {
    let (mock, _, client) = serve(State {
        remaining: 3,
        servers: vec![owned(1)],
        ..State::default()
    })
    .await;
    assert_eq!(client.budget(), None, "unknown before the first answer");
    client.servers().await.unwrap();
    assert_eq!(client.budget().unwrap().remaining, 2);
    client.servers().await.unwrap();
    client.servers().await.unwrap();
    assert_eq!(client.budget().unwrap().remaining, 0);
    let sent = mock.received_requests().await.unwrap().len();
    let e = client.servers().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(e.message.contains("budget is spent"), "{e}");
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        sent,
        "nothing was sent"
    );
}

#[tokio::test]
async fn a_429_backs_off_before_the_next_request() {
    let mut state = State::default();
    state.faults.push_back((429, "rate_limit_exceeded"));
    let (mock, _, client) = serve(state).await;
    let e = client.servers().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    let e = client.create_server(&new_server("a")).await.unwrap_err();
    assert!(e.message.contains("not sent"), "{e}");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.servers().await.unwrap();
}

#[tokio::test]
async fn a_label_change_keeps_the_other_labels_and_deletes_are_idempotent() {
    let (mock, fake, client) = serve(State {
        servers: vec![owned(7)],
        ..State::default()
    })
    .await;
    let teardown = autoscaler_core::keys::TEARDOWN;
    let joined = autoscaler_core::keys::JOINED;
    // Never listed: its labels are unknown, and a guessed set is never written.
    let e = client
        .label_server(ServerId(7), teardown, Some("1795000000".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("server 7"), "{e}");
    assert!(mock.received_requests().await.unwrap().is_empty());

    let listed = fake.server_labels()[&7].clone();
    client.servers().await.unwrap();
    client
        .label_server(ServerId(7), teardown, Some("1795000000".into()))
        .await
        .unwrap();
    let mut expected = listed.clone();
    expected[teardown] = json!("1795000000");
    assert_eq!(
        fake.server_labels()[&7],
        expected,
        "one label added, none lost"
    );
    // The next change builds on the last write, not on the older listing.
    client
        .label_server(ServerId(7), joined, Some("1794999000".into()))
        .await
        .unwrap();
    client
        .label_server(ServerId(7), teardown, None)
        .await
        .unwrap();
    let mut expected = listed;
    expected[joined] = json!("1794999000");
    assert_eq!(fake.server_labels()[&7], expected);

    client.delete_server(ServerId(7)).await.unwrap();
    assert!(fake.server_labels().is_empty());
    client.delete_server(ServerId(7)).await.unwrap();
    let e = client
        .label_server(ServerId(7), teardown, None)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Invalid,
        "a deleted server's labels are forgotten"
    );
}

#[tokio::test]
async fn a_label_change_for_a_server_gone_since_the_listing_is_not_found() {
    let (_, fake, client) = serve(State {
        servers: vec![owned(7)],
        ..State::default()
    })
    .await;
    client.servers().await.unwrap();
    fake.remove_server(7);
    let e = client
        .label_server(ServerId(7), autoscaler_core::keys::TEARDOWN, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn prices_are_read_from_the_decimal_strings() {
    let (_, _, client) = serve(State::default()).await;
    let types = client.server_types().await.unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(
        types[0].orderable_in,
        ["nbg1"],
        "fsn1 is listed but unavailable"
    );
    let prices = client.prices().await.unwrap();
    let p = prices
        .iter()
        .find(|p| p.server_type == "ccx33" && p.location == "nbg1")
        .unwrap();
    assert!((p.hourly_net - 0.08).abs() < 1e-12 && (p.hourly_gross - 0.0952).abs() < 1e-12);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&mock)
        .await;
    let mut c = config(&mock);
    c.timeout = Duration::from_millis(200);
    let client = HetznerClient::new(http(), c).unwrap();
    assert_eq!(client.servers().await.unwrap_err().kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn no_token_reaches_debug_output_or_errors() {
    let mut state = State::default();
    state.faults.push_back((401, "unauthorized"));
    let (mock, _, client) = serve(state).await;
    let c = config(&mock);
    for text in [format!("{c:?}"), format!("{client:?}")] {
        assert!(
            !text.contains(TOKEN) && !text.contains(JOIN_TOKEN),
            "{text}"
        );
    }
    let e = client.create_server(&new_server("a")).await.unwrap_err();
    assert!(!format!("{e:?}{e}").contains(TOKEN));
}

#[test]
fn bad_configuration_is_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let join = K3sJoin::new(
        "http://k3s:6443",
        Some(SecretString::from("t")),
        "v1.33.4+k3s1",
    );
    let mut c = HetznerConfig::new(SecretString::from("x"), "ci", join);
    let e = HetznerClient::new(reqwest::Client::new(), c.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must start with https://"), "{e}");
    c.join.server_url = "https://k3s:6443".into();
    c.settings.url = "api.hetzner.cloud".into();
    let e = HetznerClient::new(reqwest::Client::new(), c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`api.hetzner.cloud`"), "{e}");
}

#[tokio::test]
async fn an_answer_larger_than_8_mib_is_refused_not_read() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(9 << 20)))
        .mount(&server)
        .await;
    let client = HetznerClient::new(http(), config(&server)).unwrap();
    let e = client.servers().await.unwrap_err();
    assert!(e.to_string().contains("larger than 8 MiB"), "{e}");
}
