//! Contract tests: every request the client can send exists in Gitea 1.26.4's spec (method,
//! path, query parameters, body), and every body the fake answers with fits the spec's schema.

use autoscaler_contract::{Request, Spec};
use autoscaler_core::ports::Forge;
use autoscaler_fakes::gitea::{FakeGitea, State, TOKEN, finished, job, query_of, runner};
use autoscaler_gitea::{GiteaClient, GiteaConfig, Scope};
use secrecy::SecretString;
use wiremock::{Mock, MockServer};

/// 61 live jobs, 52 finished ones and 55 runners registered at `scope`: more than one page of
/// each. The token's user owns the repository, so the `user` scope sees its jobs too.
fn state(scope: &str) -> State {
    let mut jobs: Vec<_> = (1..=60)
        .map(|i| job(i, "queued", &["ubuntu-latest"], None))
        .collect();
    jobs.push(job(61, "in_progress", &["ubuntu-latest"], Some((3, "r3"))));
    jobs.extend((100..152).map(|i| {
        let runs = (i % 7 != 0).then_some(90);
        finished(i, i / 3, "acme/widgets", "2026-11-20T08:00:00Z", 4, runs)
    }));
    let runners = (1..=55)
        .map(|i| runner(i, &format!("r{i}"), true, i == 3))
        .collect();
    let mut s = State {
        jobs,
        runners,
        user: "acme".to_owned(),
        ..State::default()
    };
    s.register_runners_at(scope);
    s
}

async fn exercise(scope: Scope) -> (Vec<wiremock::Request>, FakeGitea) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = MockServer::start().await;
    let fake = FakeGitea::new(state(&scope.to_string()));
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let c = GiteaClient::new(
        reqwest::Client::new(),
        GiteaConfig::new(server.uri(), SecretString::from(TOKEN), scope),
    )
    .unwrap();
    c.capabilities().await.unwrap();
    assert!(c.jobs().await.unwrap().is_complete());
    assert!(c.runners().await.unwrap().is_complete());
    let history = c
        .finished_jobs(jiff::Timestamp::MIN, jiff::Timestamp::MAX, |_, _| {})
        .await
        .unwrap();
    assert_eq!((history.jobs.len(), history.pages), (52, 2));
    c.set_runner_disabled(4, true).await.unwrap();
    c.set_runner_disabled(4, false).await.unwrap();
    c.delete_runner(4).await.unwrap();
    c.delete_runner(4).await.unwrap(); // 404: already gone
    (server.received_requests().await.unwrap(), fake)
}

#[tokio::test]
async fn every_request_the_client_sends_is_in_the_spec_at_every_scope() {
    let spec = Spec::gitea();
    for scope in ["admin", "user", "org:acme", "repo:acme/widgets"] {
        let (reqs, _) = exercise(scope.parse().unwrap()).await;
        assert!(reqs.len() >= 9, "{scope}: {} requests", reqs.len());
        for r in &reqs {
            spec.check_request(&Request::recorded(r))
                .unwrap_or_else(|e| panic!("{scope}: {e}"));
        }
    }
}

#[tokio::test]
async fn the_fake_answers_with_bodies_the_spec_accepts() {
    let spec = Spec::gitea();
    let (reqs, _) = exercise(Scope::Admin).await;
    // Replay every request against a fresh fake in the same state and check each answer.
    let fake = FakeGitea::new(state("admin"));
    let mut statuses = Vec::new();
    for r in &reqs {
        let auth = format!("Bearer {TOKEN}");
        let (status, body) = fake.answer(
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
    assert!(statuses.contains(&204) && statuses.contains(&404) && statuses.contains(&200));
    // The error answers fit the spec too.
    for (path, query) in [
        (
            "/api/v1/admin/actions/jobs",
            vec![("status".to_owned(), "bogus".to_owned())],
        ),
        ("/api/v1/admin/actions/runners/999", vec![]),
    ] {
        let (status, body) =
            fake.answer("GET", path, &query, Some(&format!("Bearer {TOKEN}")), b"");
        assert!(status >= 400);
        spec.check_response("GET", path, status, &body).unwrap();
    }
}

#[test]
fn a_webhook_payload_fits_the_spec_job_schema() {
    let spec = Spec::gitea();
    spec.validate_named("ActionWorkflowJob", &job(1, "queued", &["a"], None))
        .unwrap();
    spec.validate_named("ActionRunner", &runner(1, "r", true, false))
        .unwrap();
    let mut bad = job(1, "queued", &["a"], None);
    bad["labels"] = serde_json::json!("ubuntu-latest");
    assert!(spec.validate_named("ActionWorkflowJob", &bad).is_err());
}
