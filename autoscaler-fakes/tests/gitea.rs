//! The Gitea fake behaves as Gitea does where a client could tell: each scope sees its own
//! runners and jobs and an unknown owner is a 404, the whole status vocabulary, the paging
//! header of 1.26, and no request that panics it.

use std::io::{Read, Write};

use autoscaler_fakes::gitea::{FakeGitea, State, TOKEN, finished, job, runner};
use serde_json::Value;
use wiremock::{Mock, MockServer};

fn call(fake: &FakeGitea, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    fake.answer("GET", path, &query, Some(&format!("token {TOKEN}")), b"")
}

fn ids(body: &Value, key: &str) -> Vec<u64> {
    body[key]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect()
}

/// Jobs in acme/widgets, acme/gadgets and alice/dots; runners at every level.
fn world() -> FakeGitea {
    let mut s = State {
        jobs: vec![
            job(1, "queued", &["ubuntu-latest"], None),
            finished(2, 7, "acme/gadgets", "2026-11-20T08:00:00Z", 4, Some(60)),
            finished(3, 8, "alice/dots", "2026-11-20T08:00:00Z", 4, None),
        ],
        runners: vec![
            runner(10, "global", true, false),
            runner(11, "org-acme", true, false),
            runner(12, "repo-widgets", true, false),
            runner(13, "user-alice", true, false),
        ],
        ..State::default()
    };
    s.runner_scopes.insert(11, "org:acme".into());
    s.runner_scopes.insert(12, "repo:acme/widgets".into());
    s.runner_scopes.insert(13, "user:alice".into());
    FakeGitea::new(s)
}

#[test]
fn each_scope_sees_only_its_own_runners_and_jobs() {
    let f = world();
    let runners = |prefix: &str| {
        ids(
            &call(&f, &format!("/api/v1/{prefix}/actions/runners"), &[]).1,
            "runners",
        )
    };
    let jobs = |prefix: &str| {
        ids(
            &call(&f, &format!("/api/v1/{prefix}/actions/jobs"), &[]).1,
            "jobs",
        )
    };
    assert_eq!(runners("admin"), [10, 11, 12, 13]);
    assert_eq!(runners("orgs/acme"), [11]);
    assert_eq!(runners("repos/acme/widgets"), [12]);
    assert_eq!(runners("user"), [13]);
    assert_eq!(jobs("admin"), [1, 2, 3]);
    assert_eq!(jobs("orgs/acme"), [1, 2]);
    assert_eq!(jobs("repos/acme/gadgets"), [2]);
    assert_eq!(jobs("user"), [3]);
    // A runner of another scope is "not found" here, as Gitea says.
    assert_eq!(call(&f, "/api/v1/orgs/acme/actions/runners/12", &[]).0, 404);
    assert_eq!(
        call(&f, "/api/v1/repos/acme/widgets/actions/runners/12", &[]).0,
        200
    );
    // Owners and repositories that do not exist.
    assert_eq!(call(&f, "/api/v1/orgs/nobody/actions/runners", &[]).0, 404);
    assert_eq!(
        call(&f, "/api/v1/repos/acme/nothing/actions/jobs", &[]).0,
        404
    );
}

#[test]
fn the_whole_status_vocabulary_filters_as_gitea_does() {
    let mut s = State::default();
    let mut blocked = job(5, "waiting", &["x"], None);
    blocked["status"] = "waiting".into();
    s.jobs = vec![
        job(1, "queued", &["x"], None),
        job(2, "in_progress", &["x"], Some((9, "r"))),
        finished(3, 1, "acme/widgets", "2026-11-20T08:00:00Z", 4, Some(60)),
        finished(4, 1, "acme/widgets", "2026-11-20T08:00:00Z", 4, None),
        blocked,
    ];
    let mut skipped = finished(6, 1, "acme/widgets", "2026-11-20T08:00:00Z", 4, Some(1));
    skipped["conclusion"] = "skipped".into();
    let mut failed = finished(7, 1, "acme/widgets", "2026-11-20T08:00:00Z", 4, Some(1));
    failed["conclusion"] = "failure".into();
    s.jobs.extend([skipped, failed]);
    let f = FakeGitea::new(s);
    let with = |status: &str| {
        ids(
            &call(&f, "/api/v1/admin/actions/jobs", &[("status", status)]).1,
            "jobs",
        )
    };
    assert_eq!(with("queued"), [1]);
    assert_eq!(with("in_progress"), [2]);
    assert_eq!(with("completed"), [3, 4, 6, 7]);
    assert_eq!(with("success"), [3]);
    assert_eq!(with("failure"), [7]);
    assert_eq!(with("cancelled"), [4]);
    assert_eq!(with("timed_out"), [4]);
    assert_eq!(with("skipped"), [6]);
    assert_eq!(with("neutral"), [6]);
    for blocked in ["waiting", "pending", "requested", "action_required"] {
        assert_eq!(with(blocked), [5], "{blocked} means blocked, not runnable");
    }
    let (code, body) = call(&f, "/api/v1/admin/actions/jobs", &[("status", "sleeping")]);
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("Invalid status sleeping"))
    );
    let both = ids(
        &call(
            &f,
            "/api/v1/admin/actions/jobs",
            &[("status", "queued"), ("status", "in_progress")],
        )
        .1,
        "jobs",
    );
    assert_eq!(both, [1, 2]);
}

/// A plain HTTP GET over loopback: status line and headers.
fn head(uri: &str, path: &str) -> String {
    let addr = uri.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: token {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_lists_carry_the_total_count_header_from_1_26() {
    for (version, expected) in [("1.26.4", true), ("1.25.3", false)] {
        let fake = FakeGitea::new(State {
            version: version.into(),
            jobs: (1..=3).map(|i| job(i, "queued", &["x"], None)).collect(),
            ..State::default()
        });
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(fake)
            .mount(&server)
            .await;
        let uri = server.uri();
        let headers =
            tokio::task::spawn_blocking(move || head(&uri, "/api/v1/admin/actions/jobs?limit=2"))
                .await
                .unwrap();
        assert_eq!(
            headers.contains("x-total-count: 3"),
            expected,
            "{version}: {headers}"
        );
    }
}

#[test]
fn no_request_panics_it_and_a_panic_elsewhere_does_not_poison_it() {
    let f = world();
    for (path, query) in [
        (
            "/api/v1/admin/actions/jobs",
            vec![("page", "9223372036854775807"), ("limit", "50")],
        ),
        (
            "/api/v1/admin/actions/jobs",
            vec![("page", "-5"), ("limit", "-9223372036854775808")],
        ),
        (
            "/api/v1/admin/actions/runners",
            vec![("page", "99999999999999999999999")],
        ),
        ("/api/v1/admin/actions/runners/18446744073709551615", vec![]),
        ("/api/v1/orgs", vec![]),
        ("/api/v1/repos/only-owner", vec![]),
        ("/nothing", vec![]),
    ] {
        let (code, _) = call(&f, path, &query);
        assert!((200..600).contains(&code), "{path} {query:?}");
    }
    let (code, _) = f.answer(
        "PATCH",
        "/api/v1/admin/actions/runners/10",
        &[],
        Some(&format!("token {TOKEN}")),
        b"{not json",
    );
    assert_eq!(code, 422);
    let held = f.clone();
    let _ = std::thread::spawn(move || {
        let _guard = held.state();
        panic!("a test failed mid-update");
    })
    .join();
    assert_eq!(call(&f, "/api/v1/admin/actions/runners", &[]).0, 200);
}
