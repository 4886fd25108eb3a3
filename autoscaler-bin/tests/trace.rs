//! `trace` end to end: the real binary reads a Gitea fake's finished jobs over several pages and
//! writes a trace that `simulate` replays; a Gitea without the jobs list is refused by name.

use std::process::{Command, Output};

use autoscaler_fakes::gitea::{self, FakeGitea, State};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

/// 2026-11-01T00:00:00Z.
const NOV_1: i64 = 1_793_491_200;

async fn gitea_with(state: State) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(FakeGitea::new(state))
        .mount(&server)
        .await;
    server
}

/// 130 finished jobs, one every 10 minutes from 2026-11-01, three per run, each waiting 20 s
/// and running 100–229 s; every thirteenth was cancelled before a runner took it.
fn history() -> Vec<serde_json::Value> {
    (1..=130)
        .map(|i: i64| {
            let created = jiff::Timestamp::from_second(NOV_1 + 600 * i)
                .unwrap()
                .to_string();
            let runs = (i % 13 != 0).then_some(100 + i - 1);
            gitea::finished(
                i as u64,
                (1 + (i - 1) / 3) as u64,
                "acme/widgets",
                &created,
                20,
                runs,
            )
        })
        .collect()
}

async fn run(server: &MockServer, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"));
    cmd.arg("trace")
        .args(args)
        .env_clear()
        .env("GITEA_API_URL", server.uri())
        .env("GITEA_ADMIN_TOKEN", gitea::TOKEN)
        .env("GITEA_SCOPE", "org:acme");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_history_of_a_period_becomes_a_trace_that_simulate_replays() {
    let server = gitea_with(State {
        jobs: history(),
        ..State::default()
    })
    .await;
    let dir = std::env::temp_dir().join(format!("gca-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ours.csv");
    // Jobs 7..=120: created from 2026-11-01T01:10Z, before 2026-11-01T20:10Z.
    let out = run(
        &server,
        &[
            "--since",
            "2026-11-01T01:10:00Z",
            "--until",
            "2026-11-01T20:10:00Z",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // 114 jobs in the period, 9 of them (13, 26, …, 117) never started.
    assert!(stderr.contains("wrote 105 jobs"), "{stderr}");
    assert!(
        stderr.contains("130 finished jobs read on 3 pages"),
        "{stderr}"
    );
    assert!(
        stderr.contains("left out: 9 cancelled or skipped"),
        "{stderr}"
    );
    assert!(!stderr.contains(gitea::TOKEN));
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("arrival_unix_s,duration_s,labels,repo,run_id,job_name")
    );
    assert_eq!(
        lines.next(),
        Some(format!("{},106,ubuntu-latest,acme/widgets,3,job-7", NOV_1 + 4200).as_str())
    );
    assert_eq!(text.lines().count(), 106);
    assert!(!dir.join("ours.csv.partial").exists());
    // Every page was asked for, completed jobs only.
    let pages: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/actions/jobs"))
        .map(|r| r.url.query().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        pages,
        [
            "status=completed&limit=50&page=1",
            "status=completed&limit=50&page=2",
            "status=completed&limit=50&page=3"
        ]
    );

    let sim = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"))
        .args(["simulate", "--json", "--trace"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
    assert_eq!(doc["trace"]["jobs"], 105);
}

#[tokio::test]
async fn a_gitea_without_the_jobs_list_is_refused_and_nothing_is_written() {
    let server = gitea_with(State {
        version: "1.24.6".into(),
        jobs: history(),
        ..State::default()
    })
    .await;
    let file = std::env::temp_dir().join(format!("gca-trace-old-{}.csv", std::process::id()));
    let out = run(&server, &["--output", file.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Gitea 1.24.6 has no Actions jobs list") && stderr.contains("1.25"),
        "{stderr}"
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn a_refused_token_names_the_scope_it_needs_and_bad_flags_exit_2() {
    let server = gitea_with(State {
        jobs: history(),
        ..State::default()
    })
    .await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"));
    cmd.args(["trace", "--days", "3"])
        .env_clear()
        .env("GITEA_API_URL", server.uri())
        .env("GITEA_ADMIN_TOKEN", "not-the-token")
        .env("GITEA_SCOPE", "org:acme");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("read:organization"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token"));

    let out = run(&server, &["--since", "last week"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"last week\""));
    // Only Gitea is needed: without its URL the problem is named, and nothing else is asked for.
    let out = Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"))
        .arg("trace")
        .env_clear()
        .env("GITEA_ADMIN_TOKEN", gitea::TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GITEA_API_URL is required"), "{stderr}");
    assert!(!stderr.contains("HETZNER"), "{stderr}");
}
