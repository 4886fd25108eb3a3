//! The binary's simulator commands, end to end.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gitea-ci-autoscaler"))
}

/// Runs `cmd`, which must succeed, and parses what it printed as JSON.
fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gca-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn simulate_prints_both_reports_as_json_and_writes_the_chart() {
    let trace = temp("t.csv");
    std::fs::write(
        &trace,
        "arrival_unix_s,duration_s,labels,repo\n1700000000,300,a;b,o/r\n1700000000,200,a,o/r\n1700003000,100,a,o/s\n",
    )
    .unwrap();
    let chart = temp("t.svg");
    let doc = json_of(
        bin()
            .args(["simulate", "--json", "--seed", "3", "--trace"])
            .arg(&trace)
            .arg("--chart")
            .arg(&chart),
    );
    let reports = doc["reports"].as_array().unwrap();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ours", "baseline"]);
    for r in reports {
        assert_eq!(r["served"], 3);
        assert_eq!(r["killed"], 0);
        assert_eq!(r["leaked_servers"], 0);
    }
    assert_eq!(doc["trace"]["jobs"], 3);
    assert!(std::fs::read_to_string(&chart).unwrap().starts_with("<svg"));
}

#[test]
fn simulate_sweep_prints_the_cost_wait_curve_and_draws_it() {
    let trace = temp("sweep.csv");
    let rows: String = (0..40)
        .map(|i| format!("{},{},a,o/r\n", 1_700_000_000 + i * 90, 240))
        .collect();
    std::fs::write(
        &trace,
        format!("arrival_unix_s,duration_s,labels,repo\n{rows}"),
    )
    .unwrap();
    let chart = temp("sweep.svg");
    let doc = json_of(
        bin()
            .args(["simulate", "--json", "--sweep", "0,300", "--trace"])
            .arg(&trace)
            .arg("--sweep-chart")
            .arg(&chart),
    );
    let points = doc["sweep"]["points"].as_array().unwrap();
    let targets: Vec<i64> = points
        .iter()
        .map(|p| p["target_wait_s"].as_i64().unwrap())
        .collect();
    assert_eq!(targets, [0, 300]);
    for p in points {
        assert_eq!(p["report"]["served"], 40);
        assert_eq!(p["report"]["killed"], 0);
    }
    assert_eq!(doc["sweep"]["baseline"]["policy"], "baseline");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("tight bound"),
        "{svg}"
    );
    // The table form names every point.
    let out = bin()
        .args(["simulate", "--sweep", "0,300", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("300 s") && text.contains("baseline"),
        "{text}"
    );
}

#[test]
fn bad_input_is_named_and_exits_2() {
    let trace = temp("bad.csv");
    std::fs::write(&trace, "arrival_unix_s,duration_s,labels,repo\n1,0,a,o/r\n").unwrap();
    let out = bin()
        .arg("simulate")
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("duration_s"),
        "{err}"
    );

    let config = temp("bad.json");
    std::fs::write(&config, r#"{"world": {"boot_min": 90, "boot_max": 30}}"#).unwrap();
    let good = temp("good.csv");
    std::fs::write(&good, "arrival_unix_s,duration_s,labels,repo\n1,5,a,o/r\n").unwrap();
    let out = bin()
        .arg("simulate")
        .arg("--trace")
        .arg(&good)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("world.boot_max"));
}

#[test]
fn the_demo_needs_nothing_and_reports_both_policies() {
    let chart = temp("demo.svg");
    let doc = json_of(bin().args(["demo", "--json", "--chart"]).arg(&chart));
    assert_eq!(doc["trace"]["jobs"], 1022);
    for r in doc["reports"].as_array().unwrap() {
        assert_eq!(r["served"], 1022);
        assert_eq!(r["killed"], 0);
        assert_eq!(r["leaked_servers"], 0);
    }
    assert!(chart.exists());
}

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/data")
        .join(name)
}

#[test]
fn decide_prints_the_plan_of_a_snapshot_file_or_stdin() {
    let plan = json_of(
        bin()
            .args(["decide", "--snapshot"])
            .arg(data("snapshot.json"))
            .arg("--config")
            .arg(data("config.json")),
    );
    assert!(
        plan["actions"].is_array() && plan["nodes"].is_array(),
        "{plan}"
    );
    let mut child = bin()
        .args(["decide", "--snapshot", "-", "--config"])
        .arg(data("config.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(data("snapshot.json")).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &text).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin, plan, "the same snapshot gives the same plan");
}

#[test]
fn decide_without_the_config_says_the_servers_belong_to_another_installation() {
    let out = bin()
        .args(["decide", "--snapshot"])
        .arg(data("snapshot.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "other_installations")
        .unwrap_or_else(|| panic!("{plan}"));
    let text = warning["message"].as_str().unwrap();
    assert!(
        text.contains("gitea-ci-autoscaler/owner=ci: ") && text.contains("(\"default\")"),
        "{text}"
    );
    assert!(err.contains("warning (other_installations): "), "{err}");
    // With the installation's own configuration, no such warning.
    let plan = json_of(
        bin()
            .args(["decide", "--snapshot"])
            .arg(data("snapshot.json"))
            .arg("--config")
            .arg(data("config.json")),
    );
    assert!(!plan.to_string().contains("other_installations"), "{plan}");
}

#[test]
fn decide_refuses_a_broken_snapshot_with_exit_code_2() {
    let bad = temp("bad-snapshot.json");
    std::fs::write(&bad, r#"{"now": "yesterday"}"#).unwrap();
    let out = bin()
        .args(["decide", "--snapshot"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the snapshot"), "{err}");
}

fn seed_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("HETZNER_API_TOKEN", "hz-token-never-printed")
        .env("GITEA_ADMIN_TOKEN", "gitea-token-never-printed")
        .env("JOIN_TOKENS", "static")
        .env("CLUSTER_SECRET", "K10-join-never-printed")
        .env("GITEA_API_URL", "https://git.example.com/api/v1")
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let out = seed_env(bin().arg("check-config"))
        .env("MAX_NODES", "9")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("max_nodes = 9"), "{text}");
    assert!(!text.contains("never-printed"), "{text}");
    assert!(
        text.contains("[redacted: 22 bytes from HETZNER_API_TOKEN]"),
        "{text}"
    );
}

#[test]
fn check_config_lists_every_problem_and_exits_2() {
    let out = bin()
        .arg("check-config")
        .env_clear()
        .env("POLL_INTERVAL_SECS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "invalid configuration (4 problems)",
        "POLL_INTERVAL_SECS=\"soon\" is not a whole number",
        "HETZNER_API_TOKEN (or HETZNER_API_TOKEN_FILE) is required",
        "GITEA_API_URL is required",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[test]
fn out_of_range_numbers_are_refused_by_check_config_not_a_crash() {
    let out = seed_env(bin().arg("check-config"))
        .env("IDLE_TIMEOUT_MINS", "9223372036854775807")
        .env("PROVISIONING_TIMEOUT_SECS", "9223372036854775807")
        .env("POLL_INTERVAL_SECS", "18446744073709551615")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    for needle in [
        "IDLE_TIMEOUT_MINS",
        "provisioning_timeout",
        "POLL_INTERVAL_SECS",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[test]
fn decide_gives_a_plan_for_a_snapshot_at_the_end_of_time() {
    // The sample snapshot moved to the last representable second, with a job expected to run
    // for the longest duration there is.
    let mut snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("snapshot.json")).unwrap()).unwrap();
    snapshot["now"] = serde_json::json!("9999-12-30T22:00:00Z");
    if let Some(jobs) = snapshot["jobs"]["items"].as_array_mut() {
        for j in jobs {
            j["expected_duration"] = serde_json::json!(i64::MAX);
            j["created"] = serde_json::json!("-009999-01-02T01:59:59Z");
        }
    }
    let file = temp("end-of-time.json");
    std::fs::write(&file, snapshot.to_string()).unwrap();
    let plan = json_of(
        bin()
            .args(["decide", "--snapshot"])
            .arg(&file)
            .arg("--config")
            .arg(data("config.json")),
    );
    assert!(plan["actions"].is_array(), "{plan}");
}

#[test]
fn version_names_the_commit_and_completions_cover_every_command() {
    let out = bin().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!(
            "gitea-ci-autoscaler {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let commit = text
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in [
            "run",
            "plan",
            "simulate",
            "trace",
            "check-config",
            "decide",
            "demo",
        ] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is refused");
}

#[test]
fn check_config_output_reads_back_and_the_example_file_passes() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config.example.toml");
    let out = seed_env(bin().args(["check-config", "--config", example]))
        .env_remove("GITEA_API_URL")
        .env("POLL_INTERVAL_SEC", "3")
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: POLL_INTERVAL_SEC is set but read by nothing: did you mean POLL_INTERVAL_SECS?"),
        "{err}"
    );
    let file = temp("effective.toml");
    std::fs::write(&file, &first).unwrap();
    let out = seed_env(bin().arg("check-config").arg("--config").arg(&file))
        .env_remove("GITEA_API_URL")
        .env("POLL_INTERVAL_SEC", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        first,
        "it reads back as itself"
    );
    for secret in [
        "hz-token-never-printed",
        "gitea-token-never-printed",
        "K10-join-never-printed",
    ] {
        assert!(!first.contains(secret));
    }
}

#[test]
fn the_demo_timeline_says_what_its_columns_are() {
    let chart = temp("legend.svg");
    let out = bin()
        .args(["demo", "--chart"])
        .arg(&chart)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for words in [
        "jobs: arriving in the block",
        "nodes: the most machines at once",
        "waiting: the longest queue",
        "€: billed from the start of the day",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
}
