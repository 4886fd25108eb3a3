//! Contract tests: every request the client can send exists in Hetzner Cloud's spec (method,
//! path, query parameters, body), and every body the fake answers with fits the spec's schema.

use std::collections::BTreeMap;

use autoscaler_contract::{Request, Spec};
use autoscaler_core::ports::{Cloud, NewServer};
use autoscaler_core::{ServerId, ServerSpec};
use autoscaler_fakes::hetzner::{FakeHetzner, State, TOKEN, query_of, selects, server};
use autoscaler_hetzner::{HetznerClient, HetznerConfig, K3sJoin};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

fn state() -> State {
    let owner = json!({"gitea-ci-autoscaler/owner": "ci", "gitea-ci-autoscaler/pool": "linux"});
    State {
        servers: (1..=55)
            .map(|i| server(i, &format!("ci-linux-{i}"), owner.clone(), "running"))
            .collect(),
        ..State::default()
    }
}

async fn exercise() -> Vec<wiremock::Request> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(FakeHetzner::new(state()))
        .mount(&mock)
        .await;
    let join = K3sJoin::new(
        "https://10.0.0.2:6443",
        Some(SecretString::from("K10x")),
        "v1.33.4+k3s1",
    );
    let mut config = HetznerConfig::new(SecretString::from(TOKEN), "ci", join);
    config.settings.url = format!("{}/v1", mock.uri());
    config.settings.ssh_keys = vec!["ops".into()];
    config.settings.networks = vec![4711];
    config.settings.firewalls = vec![38];
    let c = HetznerClient::new(reqwest::Client::new(), config).unwrap();
    assert!(c.servers().await.unwrap().is_complete());
    let new = NewServer::new(ServerSpec {
        pool: "linux".into(),
        name: "ci-linux-new".into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: BTreeMap::from([("gitea-ci-autoscaler/owner".into(), "ci".into())]),
        node_labels: BTreeMap::new(),
    });
    let created = c.create_server(&new).await.unwrap();
    c.create_server(&new).await.unwrap_err(); // uniqueness_error
    let id = ServerId(created.id);
    c.label_server(
        id,
        "gitea-ci-autoscaler/teardown",
        Some("1795000000".into()),
    )
    .await
    .unwrap();
    c.delete_server(id).await.unwrap();
    c.delete_server(id).await.unwrap(); // 404
    c.prices().await.unwrap();
    assert_eq!(c.ssh_key_names().await.unwrap(), ["ops"]);
    mock.received_requests().await.unwrap()
}

#[tokio::test]
async fn every_request_the_client_sends_is_in_the_spec() {
    let spec = Spec::hetzner();
    let reqs = exercise().await;
    assert_eq!(
        reqs.len(),
        9,
        "2 list pages, 2 creates, relabel, 2 deletes, types, keys"
    );
    for r in &reqs {
        spec.check_request(&Request::recorded(r))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn the_fake_answers_with_bodies_the_spec_accepts() {
    let spec = Spec::hetzner();
    let reqs = exercise().await;
    let fake = FakeHetzner::new(state());
    let mut statuses = Vec::new();
    for r in &reqs {
        let auth = format!("Bearer {TOKEN}");
        let (status, body, _) = fake.answer(
            r.method.as_str(),
            r.url.path(),
            &query_of(r),
            Some(&auth),
            &r.body,
        );
        statuses.push(status);
        spec.check_response(r.method.as_str(), r.url.path(), status, &body)
            .unwrap_or_else(|e| panic!("{} {}: {e}", r.method, r.url));
    }
    statuses.sort_unstable();
    statuses.dedup();
    assert_eq!(statuses, [200, 201, 404, 409]);
    // The fault answers fit too.
    let mut s = state();
    s.faults
        .extend([(412, "resource_unavailable"), (429, "rate_limit_exceeded")]);
    let fake = FakeHetzner::new(s);
    for _ in 0..2 {
        let (status, body, _) = fake.answer(
            "POST",
            "/v1/servers",
            &[],
            Some(&format!("Bearer {TOKEN}")),
            b"{}",
        );
        spec.check_response("POST", "/v1/servers", status, &body)
            .unwrap();
    }
}

#[test]
fn a_body_missing_a_required_server_field_is_refused() {
    let spec = Spec::hetzner();
    let mut s = server(1, "a", json!({}), "running");
    s.as_object_mut().unwrap().remove("location");
    let body = json!({"servers": [s], "meta": {"pagination": {"page": 1, "per_page": 25, "previous_page": null,
        "next_page": null, "last_page": 1, "total_entries": 1}}});
    let e = spec
        .check_response("GET", "/v1/servers", 200, &body)
        .unwrap_err();
    assert!(e.contains("location"), "{e}");
}

#[test]
fn the_fake_label_selector_follows_the_grammar() {
    let labels = json!({"env": "prod", "tier": "web"});
    assert!(selects("env==prod,tier", &labels));
    assert!(selects("env=prod,!gpu", &labels));
    assert!(!selects("env!=prod", &labels));
    assert!(!selects("gpu", &labels));
}
