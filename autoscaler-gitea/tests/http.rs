//! The client against a loopback fake Gitea: exact requests, every page, every documented error.

use std::time::Duration;

use autoscaler_core::ports::{ErrorKind, Forge};
use autoscaler_core::{JobStatus, RunnerId, Source};
use autoscaler_fakes::gitea::{self, FakeGitea, State, TOKEN, job, runner};
use autoscaler_gitea::{GiteaClient, GiteaConfig, Scope};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn serve(state: State) -> (MockServer, FakeGitea) {
    let server = MockServer::start().await;
    let fake = FakeGitea::new(state);
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

fn client(server: &MockServer, scope: Scope) -> GiteaClient {
    let config = GiteaConfig::new(server.uri(), SecretString::from(TOKEN), scope);
    GiteaClient::new(http(), config).expect("valid config")
}

fn many_jobs(n: u64) -> Vec<serde_json::Value> {
    (1..=n)
        .map(|i| {
            if i % 3 == 0 {
                job(i, "in_progress", &["ubuntu-latest"], Some((i, "runner-x")))
            } else {
                job(i, "queued", &["ubuntu-latest"], None)
            }
        })
        .collect()
}

#[tokio::test]
async fn jobs_are_read_across_every_page_with_the_exact_requests() {
    let mut jobs = many_jobs(120);
    jobs.push(job(500, "waiting", &["ubuntu-latest"], None));
    let (server, _) = serve(State {
        jobs,
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let Source::Complete { items } = c.list_jobs().await.unwrap() else {
        panic!("expected a complete list");
    };
    assert_eq!(items.len(), 120, "blocked (`waiting`) jobs are not demand");
    assert_eq!(
        items
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .count(),
        40
    );
    assert!(
        items
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .all(|j| j.runner_id.is_some())
    );
    let reqs = server.received_requests().await.unwrap();
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
            "GET /api/v1/version?",
            "GET /api/v1/admin/actions/jobs?status=queued&status=in_progress&limit=50&page=1",
            "GET /api/v1/admin/actions/jobs?status=queued&status=in_progress&limit=50&page=2",
            "GET /api/v1/admin/actions/jobs?status=queued&status=in_progress&limit=50&page=3",
        ]
    );
    for r in &reqs {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {TOKEN}")
        );
    }
}

#[tokio::test]
async fn runners_are_read_across_pages_for_an_organisation() {
    let runners = (1..=75)
        .map(|i| runner(i, &format!("r{i}"), i % 2 == 0, i % 5 == 0))
        .collect();
    let mut state = State {
        runners,
        ..State::default()
    };
    state.register_runners_at("org:acme");
    let (server, _) = serve(state).await;
    let c = client(&server, "org:acme".parse().unwrap());
    let Source::Complete { items } = c.list_runners().await.unwrap() else {
        panic!("expected a complete list");
    };
    assert_eq!(items.len(), 75);
    assert_eq!(items.iter().filter(|r| r.online).count(), 37);
    assert_eq!(items[0].labels, ["ubuntu-latest"]);
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or("")))
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v1/orgs/acme/actions/runners?limit=50&page=1",
            "/api/v1/orgs/acme/actions/runners?limit=50&page=2",
        ]
    );
}

#[tokio::test]
async fn a_failed_later_page_gives_a_partial_list_not_a_short_complete_one() {
    let (server, _) = serve(State {
        jobs: many_jobs(120),
        failing_pages: vec![2],
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    match c.list_jobs().await.unwrap() {
        Source::Partial { items, reason } => {
            assert_eq!(items.len(), 50);
            assert!(reason.contains("page 2 failed"), "{reason}");
        }
        other => panic!("expected partial, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_that_changes_while_read_is_partial() {
    let runners = (1..=60)
        .map(|i| runner(i, &format!("r{i}"), true, false))
        .collect();
    let mut state = State {
        runners,
        drift_after_first_page: 1,
        ..State::default()
    };
    state.register_runners_at("user");
    let (server, _) = serve(state).await;
    let c = client(&server, Scope::User);
    let reason = c
        .list_runners()
        .await
        .unwrap()
        .problem()
        .unwrap()
        .to_owned();
    assert!(reason.contains("changed while it was read"), "{reason}");
}

/// Gitea 1.26 orders runners by when they last checked in: a runner checking in between two page
/// reads shifts every later page by one, so one runner comes twice and another never, and the
/// count still adds up. Counted once each, the list is one short; it is read again.
#[tokio::test]
async fn a_list_whose_order_shifts_between_pages_is_read_again_until_whole() {
    let runners = (1..=120)
        .map(|i| runner(i, &format!("r{i}"), true, false))
        .collect();
    let (server, _) = serve(State {
        runners,
        reorder_next: 1,
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let Source::Complete { items } = c.list_runners().await.unwrap() else {
        panic!("a read without a shift is complete");
    };
    let ids: std::collections::BTreeSet<u64> = items.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 120, "every runner, once");
    assert_eq!(items.len(), 120);
    let pages = server.received_requests().await.unwrap().len();
    assert_eq!(pages, 3 + 3, "two reads of three pages");
}

#[tokio::test]
async fn a_list_that_keeps_shifting_is_partial_never_complete_and_short() {
    let jobs = many_jobs(120);
    let (server, _) = serve(State {
        jobs,
        reorder_next: u32::MAX,
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let src = c.list_jobs().await.unwrap();
    assert!(!src.is_complete(), "{src:?}");
    assert!(
        src.problem().unwrap().contains("order shifted"),
        "{:?}",
        src.problem()
    );
    let runners = (1..=120)
        .map(|i| runner(i, &format!("r{i}"), true, false))
        .collect();
    let (server, _) = serve(State {
        runners,
        reorder_next: u32::MAX,
        ..State::default()
    })
    .await;
    let src = client(&server, Scope::Admin).list_runners().await.unwrap();
    assert!(!src.is_complete());
}

#[tokio::test]
async fn a_short_list_against_its_total_is_partial() {
    // The server claims 80 runners but its pages end after 40: some were not read.
    let server = MockServer::start().await;
    let body = json!({"runners": (1..=40).map(|i| runner(i, "r", true, false)).collect::<Vec<_>>(), "total_count": 80});
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/actions/runners"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let c = client(&server, Scope::Admin);
    let src = c.list_runners().await.unwrap();
    assert!(!src.is_complete());
    assert!(
        src.problem()
            .unwrap()
            .contains("read 40 items, but the total is 80")
    );
}

#[tokio::test]
async fn the_first_page_failing_is_an_error_with_its_kind() {
    let (server, _) = serve(State {
        jobs: many_jobs(3),
        failing_pages: vec![1],
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let e = Forge::jobs(&c).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.contains("HTTP 500"), "{e}");
}

#[tokio::test]
async fn old_gitea_versions_are_refused_by_feature() {
    let (server, _) = serve(State {
        version: "1.24.6".into(),
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let e = Forge::jobs(&c).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("1.25 or newer"), "{e}");

    let (server, _) = serve(State {
        version: "1.25.5".into(),
        runners: vec![runner(1, "r1", true, false)],
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    assert!(!c.capabilities().await.unwrap().can_disable_runners);
    let e = Forge::set_runner_disabled(&c, RunnerId(1), true)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    // The version is read once.
    let versions = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/v1/version")
        .count();
    assert_eq!(versions, 1);
}

#[tokio::test]
async fn disable_enable_and_delete_send_the_documented_requests() {
    let mut state = State {
        runners: vec![runner(17, "as-hcloud-7f3a", true, false)],
        ..State::default()
    };
    state.register_runners_at("repo:acme/widgets");
    let (server, fake) = serve(state).await;
    let c = client(&server, "repo:acme/widgets".parse().unwrap());
    Forge::set_runner_disabled(&c, RunnerId(17), true)
        .await
        .unwrap();
    assert_eq!(fake.0.lock().unwrap().runners[0]["disabled"], true);
    Forge::set_runner_disabled(&c, RunnerId(17), false)
        .await
        .unwrap();
    assert_eq!(fake.0.lock().unwrap().runners[0]["disabled"], false);
    Forge::delete_runner(&c, RunnerId(17)).await.unwrap();
    assert!(fake.0.lock().unwrap().runners.is_empty());
    // Already gone: still deleted.
    Forge::delete_runner(&c, RunnerId(17)).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let patch = reqs.iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    assert_eq!(
        patch.url.path(),
        "/api/v1/repos/acme/widgets/actions/runners/17"
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&patch.body).unwrap(),
        json!({"disabled": true})
    );
    assert_eq!(
        patch.headers.get("content-type").unwrap(),
        "application/json"
    );
    // Disabling a runner that does not exist is an error (nothing to disable), not a success.
    let e = Forge::set_runner_disabled(&c, RunnerId(99), true)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("Runner not found"), "{e}");
}

#[tokio::test]
async fn documented_errors_map_to_kinds() {
    let cases = [
        (
            401,
            json!({"message": "token is required", "url": "u"}),
            ErrorKind::Auth,
        ),
        (
            403,
            json!({"message": "user should be the site admin", "url": "u"}),
            ErrorKind::Auth,
        ),
        (
            404,
            json!({"message": "Runner not found", "url": "u"}),
            ErrorKind::NotFound,
        ),
        (
            400,
            json!({"message": "Invalid status bogus", "url": "u"}),
            ErrorKind::Invalid,
        ),
        (
            422,
            json!({"message": "[Disabled]: Required", "url": "u"}),
            ErrorKind::Invalid,
        ),
        (
            503,
            json!({"message": "Service Unavailable", "url": "u"}),
            ErrorKind::Transient,
        ),
    ];
    for (status, body, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/api/v1/admin/actions/runners"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let e = Forge::runners(&client(&server, Scope::Admin))
            .await
            .unwrap_err();
        assert_eq!(e.kind, kind, "HTTP {status}");
        assert!(e.message.contains(body["message"].as_str().unwrap()), "{e}");
    }
}

#[tokio::test]
async fn bodies_that_break_the_contract_and_slow_answers_are_named() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/admin/actions/runners"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"runners\": [{\"id\": \"x\"}]"))
        .mount(&server)
        .await;
    let e = Forge::runners(&client(&server, Scope::Admin))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("GET /admin/actions/runners"), "{e}");

    let server = MockServer::start().await;
    Mock::given(path("/api/v1/admin/actions/runners"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut config = GiteaConfig::new(server.uri(), SecretString::from(TOKEN), Scope::Admin);
    config.timeout = Duration::from_millis(200);
    let c = GiteaClient::new(http(), config).unwrap();
    let e = Forge::runners(&c).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn a_job_with_an_unknown_status_makes_the_list_partial() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/version"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"version": "1.26.4"})))
        .mount(&server)
        .await;
    let mut odd = job(2, "queued", &[], None);
    odd["status"] = json!("running");
    Mock::given(path("/api/v1/admin/actions/jobs"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"jobs": [job(1, "queued", &[], None), odd], "total_count": 2}),
            ),
        )
        .mount(&server)
        .await;
    match client(&server, Scope::Admin).list_jobs().await.unwrap() {
        Source::Partial { items, reason } => {
            assert_eq!(items.len(), 1);
            assert!(reason.contains("job 2: unknown status"), "{reason}");
        }
        other => panic!("expected partial, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_never_reaches_debug_output_or_errors() {
    let (server, _) = serve(State::default()).await;
    let config = GiteaConfig::new(server.uri(), SecretString::from(TOKEN), Scope::Admin);
    assert!(!format!("{config:?}").contains(TOKEN));
    let c = GiteaClient::new(http(), config).unwrap();
    assert!(!format!("{c:?}").contains(TOKEN));
    let e = Forge::set_runner_disabled(&c, RunnerId(5), true)
        .await
        .unwrap_err();
    assert!(!format!("{e:?} {e}").contains(TOKEN));
}

#[test]
fn bad_configuration_is_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let e = GiteaClient::new(
        reqwest::Client::new(),
        GiteaConfig::new("git.example.com", SecretString::from("t"), Scope::Admin),
    )
    .unwrap_err();
    assert!(e.to_string().contains("must start with https://"), "{e}");
}

#[tokio::test]
async fn newer_gitea_is_asked_for_a_stable_order_and_its_header_is_checked() {
    let (server, _) = serve(State {
        version: "1.27.0".into(),
        jobs: many_jobs(60),
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    assert!(c.list_jobs().await.unwrap().is_complete());
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs[1].url.query().unwrap().ends_with("&sort=id&order=asc"),
        "{}",
        reqs[1].url
    );

    let server = MockServer::start().await;
    Mock::given(path("/api/v1/version"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"version": "1.27.1"})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/admin/actions/jobs"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Total-Count", "5")
                .set_body_json(json!({"jobs": [job(1, "queued", &[], None)], "total_count": 1})),
        )
        .mount(&server)
        .await;
    let e = Forge::jobs(&client(&server, Scope::Admin))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("X-Total-Count 5 disagrees"), "{e}");
}

#[tokio::test]
async fn an_answer_larger_than_8_mib_is_refused_not_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/actions/runners"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(9 << 20)))
        .mount(&server)
        .await;
    let e = client(&server, Scope::Admin)
        .list_runners()
        .await
        .expect_err("too large");
    assert!(e.to_string().contains("larger than 8 MiB"), "{e}");
}

fn history_jobs(n: u64) -> Vec<serde_json::Value> {
    (1..=n)
        .map(|i| {
            // One job a minute from 2026-11-01, three jobs a run; every tenth never started.
            let created = jiff::Timestamp::from_second(1_793_491_200 + 60 * i as i64)
                .unwrap()
                .to_string();
            let runs = (i % 10 != 0).then_some(100 + i as i64);
            gitea::finished(i, 1 + (i - 1) / 3, "acme/widgets", &created, 5, runs)
        })
        .collect()
}

#[tokio::test]
async fn finished_jobs_are_read_on_every_page_and_kept_in_the_period() {
    let mut jobs = history_jobs(120);
    // Demand that has not finished is not history.
    jobs.push(job(900, "queued", &["ubuntu-latest"], None));
    let (server, _) = serve(State {
        jobs,
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Org("acme".into()));
    let from = jiff::Timestamp::from_second(1_793_491_200 + 60 * 11).unwrap();
    let to = jiff::Timestamp::from_second(1_793_491_200 + 60 * 101).unwrap();
    let mut heard = Vec::new();
    let h = c
        .finished_jobs(from, to, |page, total| heard.push((page, total)))
        .await
        .unwrap();
    assert_eq!(heard, [(1, 120), (2, 120), (3, 120)]);
    assert_eq!((h.read, h.pages), (120, 3));
    assert!(h.problems.is_empty(), "{:?}", h.problems);
    let ids: Vec<u64> = h.jobs.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        (11..=100).collect::<Vec<_>>(),
        "[from, to) by creation"
    );
    let j = &h.jobs[0];
    assert_eq!(
        (j.run_id, j.name.as_str(), j.repo.as_str(), j.attempt),
        (4, "job-11", "acme/widgets", 1)
    );
    assert_eq!(
        j.started.unwrap().duration_since(j.created),
        jiff::SignedDuration::from_secs(5)
    );
    assert_eq!(
        j.completed.unwrap().duration_since(j.started.unwrap()),
        jiff::SignedDuration::from_secs(111)
    );
    let never = h.jobs.iter().find(|j| j.id == 20).unwrap();
    assert_eq!(
        (never.started, never.conclusion.as_str()),
        (None, "cancelled")
    );
    let urls: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or("")))
        .collect();
    assert_eq!(
        urls,
        [
            "/api/v1/version?",
            "/api/v1/orgs/acme/actions/jobs?status=completed&limit=50&page=1",
            "/api/v1/orgs/acme/actions/jobs?status=completed&limit=50&page=2",
            "/api/v1/orgs/acme/actions/jobs?status=completed&limit=50&page=3",
        ]
    );
}

#[tokio::test]
async fn a_history_page_that_fails_is_tried_again_and_then_ends_the_read() {
    let (server, fake) = serve(State {
        jobs: history_jobs(120),
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let (from, to) = (jiff::Timestamp::MIN, jiff::Timestamp::MAX);
    // Two failures are retried: the history is whole.
    fake.0.lock().unwrap().fail_next = 0;
    c.version().await.unwrap();
    fake.0.lock().unwrap().fail_next = 2;
    let h = c.finished_jobs(from, to, |_, _| {}).await.unwrap();
    assert_eq!(h.read, 120);
    // A page failing every time ends the read, naming the page: no history with a hole.
    fake.0.lock().unwrap().failing_pages = vec![2];
    let e = c.finished_jobs(from, to, |_, _| {}).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("page 2 failed 3 times"), "{text}");
}

#[tokio::test]
async fn history_rows_that_break_the_contract_are_named_and_a_shifting_list_is_said() {
    let mut jobs = history_jobs(60);
    jobs[4]["created_at"] = json!("yesterday");
    let (server, _) = serve(State {
        jobs,
        reorder_next: 1,
        ..State::default()
    })
    .await;
    let c = client(&server, Scope::Admin);
    let h = c
        .finished_jobs(jiff::Timestamp::MIN, jiff::Timestamp::MAX, |_, _| {})
        .await
        .unwrap();
    // The list shifted by one after page 1: job 50 came twice and job 60 was never seen; the
    // bad row is skipped and the rest kept.
    assert_eq!(h.jobs.len(), 58);
    assert!(!h.jobs.iter().any(|j| j.id == 5 || j.id == 60));
    assert!(
        h.problems.iter().any(|p| p.contains("job 5: `created_at`")),
        "{:?}",
        h.problems
    );
    assert!(
        h.problems.iter().any(|p| p.contains("came on two pages")),
        "{:?}",
        h.problems
    );
}

#[tokio::test]
async fn a_gitea_without_the_jobs_list_is_refused_for_history() {
    let (server, _) = serve(State {
        version: "1.24.6".into(),
        jobs: history_jobs(3),
        ..State::default()
    })
    .await;
    let e = client(&server, Scope::Admin)
        .finished_jobs(jiff::Timestamp::MIN, jiff::Timestamp::MAX, |_, _| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1.25 or newer"), "{e}");
}

#[tokio::test]
async fn newer_gitea_is_asked_for_the_history_in_ascending_ids() {
    let (server, _) = serve(State {
        version: "1.27.0".into(),
        jobs: history_jobs(3),
        ..State::default()
    })
    .await;
    let h = client(&server, Scope::Admin)
        .finished_jobs(jiff::Timestamp::MIN, jiff::Timestamp::MAX, |_, _| {})
        .await
        .unwrap();
    assert_eq!(h.jobs.len(), 3);
    let queries: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/actions/jobs"))
        .map(|r| r.url.query().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        queries,
        ["status=completed&limit=50&page=1&sort=id&order=asc"]
    );
}
