use std::collections::BTreeMap;

use jiff::SignedDuration;

use super::*;

#[derive(Default)]
struct MapEnv {
    vars: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
}

impl MapEnv {
    fn seed() -> Self {
        let mut e = Self::default();
        e.set("HETZNER_API_TOKEN", "hz-secret-token")
            .set("GITEA_ADMIN_TOKEN", "gitea-secret-token")
            .set("GITEA_API_URL", "https://git.example.com/api/v1");
        e
    }

    /// The seed's variables in static-token mode.
    fn seed_static() -> Self {
        let mut e = Self::seed();
        e.set("JOIN_TOKENS", "static")
            .set("CLUSTER_SECRET", "K10cafe::abcdef.0123456789abcdef");
        e
    }

    fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    fn unset(&mut self, k: &str) -> &mut Self {
        self.vars.remove(k);
        self
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read(&self, path: &str) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "No such file or directory (os error 2)".to_owned())
    }

    fn names(&self) -> Vec<String> {
        self.vars.keys().cloned().collect()
    }
}

fn problems(env: &MapEnv) -> Vec<String> {
    load(env, None).expect_err("expected problems").0
}

#[test]
fn the_seed_variables_alone_give_the_seed_defaults() {
    let s = load(&MapEnv::seed(), None).unwrap();
    let pool = &s.core.pools[0];
    assert_eq!((s.core.max_nodes, pool.max_nodes), (5, 5));
    // Except the teardown timing (the README's migration section says so): a node goes at the
    // last call of its paid period however briefly idle; IDLE_TIMEOUT_MINS sets a minimum and
    // BILLING_WINDOW_MINS a wider window.
    assert_eq!(pool.idle_timeout, SignedDuration::ZERO);
    assert_eq!(pool.teardown_window, SignedDuration::from_secs(90));
    assert_eq!(pool.target_wait, None);
    assert_eq!(pool.provisioning_timeout, SignedDuration::from_secs(600));
    assert_eq!(
        (
            pool.server_types[0].as_str(),
            pool.locations[0].as_str(),
            pool.image.as_str()
        ),
        ("ccx33", "nbg1", "ubuntu-24.04")
    );
    assert_eq!(s.daemon.poll_interval, Duration::from_secs(5));
    assert_eq!(s.k3s.runner_namespace, "gitea-runners");
    assert_eq!(s.daemon.pushgateway_url, None);
    assert_eq!(s.hetzner.settings.url, "https://api.hetzner.cloud/v1");
    assert_eq!(s.gitea.scope, Scope::Admin);
    assert_eq!(
        s.k3s.agent_args,
        [
            "--node-label=managed-by=gitea-ci-autoscaler",
            "--node-label=node-role=ci-runner"
        ]
    );
    assert!(s.k3s.server_url.is_none());
}

#[test]
fn every_seed_variable_is_read() {
    let mut env = MapEnv::seed();
    env.set("RUNNER_NAMESPACE", "ci-runners")
        .set("MAX_NODES", "12")
        .set("POLL_INTERVAL_SECS", "3")
        .set("IDLE_TIMEOUT_MINS", "7")
        .set("BILLING_WINDOW_MINS", "4")
        .set("PROVISIONING_TIMEOUT_SECS", "900")
        .set("HETZNER_SERVER_TYPE", "cx33")
        .set("HETZNER_LOCATION", "fsn1")
        .set("HETZNER_IMAGE", "ubuntu-22.04")
        .set(
            "K3S_AGENT_ARGS",
            "--node-taint ci=true:NoSchedule  --kubelet-arg=max-pods=20",
        )
        .set("PUSHGATEWAY_URL", "http://pushgateway:9091")
        .set("HETZNER_API_URL", "http://127.0.0.1:4000/v1")
        .set("PLACEMENT_COOLDOWN_SECS", "300");
    let s = load(&env, None).unwrap();
    let pool = &s.core.pools[0];
    assert_eq!(s.k3s.runner_namespace, "ci-runners");
    assert_eq!((s.core.max_nodes, pool.max_nodes), (12, 12));
    assert_eq!(s.daemon.poll_interval, Duration::from_secs(3));
    assert_eq!(pool.idle_timeout, SignedDuration::from_mins(7));
    assert_eq!(pool.teardown_window, SignedDuration::from_mins(4));
    assert_eq!(pool.provisioning_timeout, SignedDuration::from_secs(900));
    assert_eq!(
        (
            pool.server_types[0].as_str(),
            pool.locations[0].as_str(),
            pool.image.as_str()
        ),
        ("cx33", "fsn1", "ubuntu-22.04")
    );
    assert_eq!(
        s.k3s.agent_args,
        [
            "--node-taint",
            "ci=true:NoSchedule",
            "--kubelet-arg=max-pods=20"
        ]
    );
    assert_eq!(
        s.daemon.pushgateway_url.as_deref(),
        Some("http://pushgateway:9091")
    );
    assert_eq!(s.hetzner.settings.url, "http://127.0.0.1:4000/v1");
    assert_eq!(s.core.capacity_cooldown, SignedDuration::from_secs(300));
}

#[test]
fn secrets_come_from_files_too() {
    let mut env = MapEnv::seed();
    env.unset("HETZNER_API_TOKEN")
        .set("HETZNER_API_TOKEN_FILE", "/run/secrets/hcloud");
    env.files
        .insert("/run/secrets/hcloud".into(), "from-file-token\n".into());
    let s = load(&env, None).unwrap();
    assert_eq!(s.hetzner.token.value.expose_secret(), "from-file-token");
    assert_eq!(
        s.hetzner.token.from,
        "HETZNER_API_TOKEN_FILE=/run/secrets/hcloud"
    );

    env.set("HETZNER_API_TOKEN", "x");
    assert_eq!(
        problems(&env),
        ["HETZNER_API_TOKEN and HETZNER_API_TOKEN_FILE are both set; set one"]
    );
    env.unset("HETZNER_API_TOKEN")
        .set("HETZNER_API_TOKEN_FILE", "/nope");
    let p = problems(&env);
    assert!(
        p[0].starts_with("HETZNER_API_TOKEN_FILE: cannot read /nope"),
        "{p:?}"
    );
}

#[test]
fn every_problem_is_listed_at_once_naming_its_variable() {
    let mut env = MapEnv::default();
    env.set("MAX_NODES", "lots")
        .set("LOG_FORMAT", "xml")
        .set("K3S_URL", "http://k3s:6443")
        .set("GITEA_SCOPE", "team:x");
    let p = problems(&env);
    let expected = [
        "MAX_NODES=\"lots\" is not a whole number",
        "GITEA_API_URL is required",
        "GITEA_SCOPE: invalid Gitea configuration: scope `team:x`",
        "GITEA_ADMIN_TOKEN (or GITEA_ADMIN_TOKEN_FILE) is required",
        "HETZNER_API_TOKEN (or HETZNER_API_TOKEN_FILE) is required",
        "K3S_URL=\"http://k3s:6443\" must start with https://",
        "LOG_FORMAT=\"xml\" must be human or json",
    ];
    for e in expected {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    let text = Problems(p).to_string();
    assert!(
        text.starts_with("invalid configuration (7 problems):\n  - "),
        "{text}"
    );
}

#[test]
fn core_problems_name_the_field() {
    let mut env = MapEnv::seed();
    env.set("HETZNER_SERVER_TYPE", ",");
    let p = problems(&env);
    assert!(!p.is_empty());
    assert!(
        p.iter()
            .all(|x| x.starts_with("autoscaler.pools[0].server_types")),
        "{p:?}"
    );
}

const FILE: &str = r#"
[autoscaler]
installation = "ci"
max_nodes = 20

[[autoscaler.pools]]
name = "linux"
labels = ["ubuntu-latest"]
server_types = ["ccx33", "cx33"]
locations = ["nbg1", "fsn1"]
max_nodes = 15
idle_timeout = "10m"

[[autoscaler.pools]]
name = "arm"
labels = ["linux-arm64"]
server_types = ["cax31"]
locations = ["fsn1"]
max_nodes = 5
warm_slots = 1

[gitea]
url = "https://git.example.com"
scope = "org:acme"

[hetzner]
ssh_keys = ["ops"]
enable_ipv4 = false

[k3s]
server_url = "https://10.0.0.2:6443"
agent_args = ["--node-taint", "ci=true:NoSchedule"]

[daemon]
poll_interval_secs = 2
leader_election = true
"#;

#[test]
fn a_file_gives_several_pools_and_every_knob() {
    let mut env = MapEnv::seed();
    env.unset("GITEA_API_URL")
        .set("CONFIG_FILE", "/etc/autoscaler.toml");
    env.files.insert("/etc/autoscaler.toml".into(), FILE.into());
    let s = load(&env, None).unwrap();
    assert_eq!(s.core.installation, "ci");
    assert_eq!(s.core.pools.len(), 2);
    assert_eq!(s.core.pools[0].idle_timeout, SignedDuration::from_mins(10));
    assert_eq!(s.core.pools[1].warm_slots, 1);
    assert_eq!(s.gitea.scope.to_string(), "org:acme");
    assert!(!s.hetzner.settings.enable_ipv4);
    assert_eq!(s.daemon.poll_interval, Duration::from_secs(2));
    assert!(s.daemon.leader_election);
    // A variable still wins over the file for settings that are not per pool.
    env.set("MAX_NODES", "8");
    assert_eq!(load(&env, None).unwrap().core.max_nodes, 8);
    // Per-pool seed variables would be ambiguous with several pools.
    env.set("IDLE_TIMEOUT_MINS", "3");
    assert_eq!(
        problems(&env),
        ["IDLE_TIMEOUT_MINS is set, but the pools come from the configuration file; set it there"]
    );
}

#[test]
fn a_bad_file_names_the_key() {
    let mut env = MapEnv::seed();
    env.set("CONFIG_FILE", "/etc/a.toml");
    env.files
        .insert("/etc/a.toml".into(), "[daemon]\npoll_interval = 5\n".into());
    let p = problems(&env);
    assert!(
        p[0].starts_with("CONFIG_FILE: /etc/a.toml: ") && p[0].contains("poll_interval"),
        "{p:?}"
    );
    env.set("CONFIG_FILE", "/etc/missing.toml");
    assert!(problems(&env)[0].contains("/etc/missing.toml"));
}

#[test]
fn the_rendered_configuration_holds_no_secret() {
    let mut env = MapEnv::seed_static();
    env.set("GITEA_WEBHOOK_SECRET", "hook-secret-value");
    let s = load(&env, None).unwrap();
    let text = s.render();
    for secret in [
        "hz-secret-token",
        "gitea-secret-token",
        "0123456789abcdef",
        "hook-secret-value",
    ] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
        assert!(!format!("{s:?}").contains(secret));
    }
    assert!(
        text.contains("[redacted: 15 bytes from HETZNER_API_TOKEN]"),
        "{text}"
    );
    assert!(text.contains("max_nodes = 5"), "{text}");
    // What it prints is a configuration file again, apart from the secrets.
    assert!(toml::from_str::<toml::Table>(&text).is_ok());
}

#[test]
fn out_of_range_numbers_are_refused_naming_the_variable_never_a_panic() {
    for (var, value, named) in [
        (
            "IDLE_TIMEOUT_MINS",
            "9223372036854775807",
            "IDLE_TIMEOUT_MINS",
        ),
        (
            "IDLE_TIMEOUT_MINS",
            "-9223372036854775808",
            "IDLE_TIMEOUT_MINS",
        ),
        (
            "BILLING_WINDOW_MINS",
            "9223372036854775807",
            "BILLING_WINDOW_MINS",
        ),
        (
            "IDLE_TIMEOUT_MINS",
            "100000",
            "autoscaler.pools[0].idle_timeout",
        ),
        (
            "PROVISIONING_TIMEOUT_SECS",
            "9223372036854775807",
            "provisioning_timeout",
        ),
        (
            "PLACEMENT_COOLDOWN_SECS",
            "-9223372036854775808",
            "capacity_cooldown",
        ),
        (
            "POLL_INTERVAL_SECS",
            "18446744073709551615",
            "POLL_INTERVAL_SECS",
        ),
        ("POLL_INTERVAL_SECS", "0", "POLL_INTERVAL_SECS"),
        (
            "CALL_TIMEOUT_SECS",
            "18446744073709551615",
            "CALL_TIMEOUT_SECS",
        ),
        ("MAX_NODES", "4294967295", "max_nodes"),
    ] {
        let mut env = MapEnv::seed();
        env.set(var, value);
        let found = problems(&env);
        assert!(
            found.iter().any(|p| p.contains(named)),
            "{var}={value}: {found:?}"
        );
    }
}

#[test]
fn http_to_another_host_needs_the_opt_in_and_passwords_in_urls_are_never_shown() {
    let mut env = MapEnv::seed();
    env.set(
        "GITEA_API_URL",
        "http://admin:hunter2@git.example.com/api/v1",
    )
    .set("HETZNER_API_URL", "http://hetzner-proxy.internal/v1");
    let found = problems(&env);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found.iter().all(|p| p.contains("ALLOW_INSECURE_HTTP")),
        "{found:?}"
    );
    assert!(!found.iter().any(|p| p.contains("hunter2")), "{found:?}");
    env.set("ALLOW_INSECURE_HTTP", "true");
    let s = load(&env, None).expect("allowed");
    assert!(s.daemon.allow_insecure_http);
    // A local test server needs no opt-in.
    let mut env = MapEnv::seed();
    env.set("GITEA_API_URL", "http://127.0.0.1:3000");
    assert!(load(&env, None).is_ok());
}

#[test]
fn per_server_join_tokens_are_the_default_and_need_no_secret() {
    let s = load(&MapEnv::seed(), None).unwrap();
    assert!(matches!(s.k3s.join, JoinTokens::PerServer));
    assert!(
        s.render().contains("join_tokens = \"per-server\""),
        "{}",
        s.render()
    );
}

#[test]
fn a_static_secret_beside_per_server_tokens_is_refused_as_ambiguous() {
    let mut env = MapEnv::seed();
    env.set("CLUSTER_SECRET", "K10cafe::abcdef.0123456789abcdef");
    let p = problems(&env);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("JOIN_TOKENS=static"), "{p:?}");
}

#[test]
fn static_mode_needs_a_secret_and_refuses_a_server_token() {
    let s = load(&MapEnv::seed_static(), None).unwrap();
    assert!(matches!(s.k3s.join, JoinTokens::Static(_)));
    let mut env = MapEnv::seed_static();
    env.unset("CLUSTER_SECRET");
    assert_eq!(
        problems(&env),
        ["CLUSTER_SECRET (or CLUSTER_SECRET_FILE) is required"]
    );
    env.set("CLUSTER_SECRET", "K10cafe::server:hunter2");
    let p = problems(&env);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("CLUSTER_SECRET: "), "{p:?}");
    assert!(p[0].contains("K3s server token"), "{p:?}");
    assert!(!p[0].contains("hunter2"), "{p:?}");
    env.set("JOIN_TOKENS", "sometimes");
    assert!(problems(&env)[0].contains("is not per-server or static"));
}

/// An environment that records every name the loader asks for.
struct Recording<'a> {
    inner: &'a MapEnv,
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Env for Recording<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.inner.var(name)
    }

    fn read(&self, path: &str) -> Result<String, String> {
        self.inner.read(path)
    }

    fn names(&self) -> Vec<String> {
        self.inner.names()
    }
}

#[test]
fn every_variable_the_loader_reads_is_declared_and_every_declared_one_is_read() {
    let mut asked = std::collections::BTreeSet::new();
    let mut with_file = MapEnv::seed_static();
    with_file.set("CONFIG_FILE", "/etc/autoscaler.toml");
    with_file
        .files
        .insert("/etc/autoscaler.toml".into(), "[autoscaler]\n".into());
    for env in [MapEnv::seed(), MapEnv::seed_static(), with_file] {
        let rec = Recording {
            inner: &env,
            asked: Default::default(),
        };
        let _ = load(&rec, None);
        asked.extend(rec.asked.into_inner());
    }
    for name in &asked {
        assert!(
            super::known::is_known(name),
            "{name} is read but not declared in known.rs"
        );
    }
    for v in super::known::VARS {
        assert!(
            asked.contains(v.name),
            "{} is declared but never read",
            v.name
        );
        if v.secret {
            assert!(
                asked.contains(&format!("{}_FILE", v.name)),
                "{}_FILE is never read",
                v.name
            );
        }
    }
}

#[test]
fn the_readmes_variable_table_is_the_declared_one() {
    let readme = include_str!("../../../README.md");
    let table = super::known::table();
    assert!(
        readme.contains(&table),
        "the README's variable table is not the one declared in settings/known.rs; it should be:\n{table}"
    );
}

#[test]
fn every_declared_file_key_exists() {
    for v in super::known::VARS.iter().filter(|v| !v.key.is_empty()) {
        // Alone in its table, a key is unknown (and reported) or known (its value's type may
        // still be wrong, which is no unknown key).
        let text = match v.key.split_once("pools[].") {
            Some((_, key)) => format!("[[autoscaler.pools]]\n{key} = \"?\"\n"),
            None => {
                let (section, key) = v.key.split_once('.').unwrap();
                format!("[{section}]\n{key} = \"?\"\n")
            }
        };
        let table: toml::Table = text.parse().unwrap();
        let unknown = super::file::unknown_keys(&table);
        assert!(
            unknown.is_empty(),
            "{}: {} is no key of the file",
            v.name,
            v.key
        );
    }
}

#[test]
fn placeholders_are_refused_and_an_agent_token_is_warned_about() {
    let mut env = MapEnv::seed();
    env.set("HETZNER_API_TOKEN", "replace-me");
    let p = problems(&env);
    assert!(
        p.iter()
            .any(|p| p.contains("HETZNER_API_TOKEN is still the example's placeholder")),
        "{p:?}"
    );
    let mut env = MapEnv::seed_static();
    env.set("CLUSTER_SECRET", "K10cafe::node:0123456789abcdef");
    let s = load(&env, None).unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("agent token")),
        "{:?}",
        s.warnings
    );
    assert!(
        s.render()
            .contains("# warning: CLUSTER_SECRET is the cluster's agent token")
    );
}

#[test]
fn a_mistyped_variable_is_warned_about() {
    let mut env = MapEnv::seed();
    env.set("POLL_INTERVAL_SEC", "30");
    let s = load(&env, None).unwrap();
    assert_eq!(
        s.warnings,
        ["POLL_INTERVAL_SEC is set but read by nothing: did you mean POLL_INTERVAL_SECS?"]
    );
}

#[test]
fn the_rendered_configuration_reads_back_as_the_same_configuration() {
    let mut env = MapEnv::seed_static();
    env.set("MAX_NODES", "12")
        .set("K3S_URL", "https://10.0.0.2:6443")
        .set("PUSHGATEWAY_URL", "https://user:pushpass@push.example.com")
        .set("POD_NAME", "replica-1")
        .set("POD_NAMESPACE", "ci");
    let first = load(&env, None).unwrap().render();
    assert!(!first.contains("pushpass"), "{first}");
    env.set("CONFIG_FILE", "/tmp/effective.toml");
    env.files
        .insert("/tmp/effective.toml".into(), first.clone());
    let second = load(&env, None)
        .unwrap_or_else(|p| panic!("the output does not read back: {p}\n{first}"))
        .render();
    assert_eq!(first, second);
}

#[test]
fn the_shipped_example_file_is_valid_and_says_what_it_claims() {
    let mut env = MapEnv::seed();
    env.unset("GITEA_API_URL")
        .set("CONFIG_FILE", "deploy/config.example.toml");
    env.files.insert(
        "deploy/config.example.toml".into(),
        include_str!("../../../deploy/config.example.toml").into(),
    );
    let s = load(&env, None).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(s.core.installation, "ci");
    assert_eq!(
        s.core
            .pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["linux", "arm"]
    );
    assert_eq!(
        s.core.pools[0].target_wait,
        Some(SignedDuration::from_mins(2))
    );
    assert_eq!(s.gitea.scope.to_string(), "org:acme");
    assert!(s.daemon.leader_election);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn every_unknown_key_of_the_file_is_reported_at_once_by_its_path() {
    let mut env = MapEnv::seed();
    env.set("CONFIG_FILE", "/etc/a.toml");
    env.files.insert(
        "/etc/a.toml".into(),
        r#"
colour = "blue"

[autoscaler]
max_node = 3

[[autoscaler.pools]]
name = "linux"
idle = "5m"
warm_schedule = [{ start = "08:00", end = "12:00", slots = 1, weekdays = ["mon"] }]

[[autoscaler.pools]]
name = "arm"

[daemon]
poll_interval = 5
"#
        .into(),
    );
    let p = problems(&env);
    assert_eq!(p.len(), 1, "{p:?}");
    for key in [
        "colour",
        "autoscaler.max_node",
        "autoscaler.pools[0].idle",
        "autoscaler.pools[0].warm_schedule[0].weekdays",
        "daemon.poll_interval",
    ] {
        assert!(p[0].contains(key), "{key} is not named: {}", p[0]);
    }
    assert!(p[0].contains("5 key(s) that no setting has"), "{}", p[0]);
}

/// The README's defaults are what the loader does: each default written as a literal is the
/// value `check-config` shows for its key with nothing set (durations, shown in another unit,
/// are left to their own tests).
#[test]
fn the_declared_defaults_are_the_loaders() {
    let rendered: toml::Table = load(&MapEnv::seed(), None)
        .unwrap()
        .render()
        .parse()
        .unwrap();
    let mut checked = 0;
    for v in super::known::VARS.iter().filter(|v| !v.key.is_empty()) {
        let Some(literal) = v
            .default
            .strip_prefix('`')
            .and_then(|d| d.split_once('`'))
            .map(|(d, _)| d)
        else {
            continue;
        };
        let (table, key) = match v.key.split_once(".pools[].") {
            Some((_, key)) => (rendered["autoscaler"]["pools"][0].as_table().unwrap(), key),
            None => {
                let (section, key) = v.key.split_once('.').unwrap();
                (rendered[section].as_table().unwrap(), key)
            }
        };
        let shown = match &table[key] {
            toml::Value::String(_) if literal.parse::<f64>().is_ok() => continue,
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        assert_eq!(shown, literal, "{}: the README says `{literal}`", v.name);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} defaults checked");
}

/// Every declared bound is the loader's: its ends are accepted, one past either is refused
/// naming the variable and its file key, and the file's key is held to the same bounds.
#[test]
fn the_declared_bounds_are_the_loaders() {
    let bounded: Vec<_> = super::known::VARS
        .iter()
        .filter_map(|v| v.range.map(|r| (v, r)))
        .collect();
    assert!(bounded.len() >= 2);
    for (v, (lo, hi)) in bounded {
        for ok in [lo, hi] {
            let mut env = MapEnv::seed();
            env.set(v.name, &ok.to_string());
            assert!(load(&env, None).is_ok(), "{}={ok} refused", v.name);
        }
        for bad in [lo.checked_sub(1), hi.checked_add(1)].into_iter().flatten() {
            let mut env = MapEnv::seed();
            env.set(v.name, &bad.to_string());
            let found = problems(&env);
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(v.name) && p.contains(v.key)),
                "{}={bad}: {found:?}",
                v.name
            );
            let (section, key) = v.key.split_once('.').unwrap();
            let mut env = MapEnv::seed();
            env.files
                .insert("/c.toml".into(), format!("[{section}]\n{key} = {bad}\n"));
            env.set("CONFIG_FILE", "/c.toml");
            let found = problems(&env);
            assert!(
                found.iter().any(|p| p.contains(v.key)),
                "{} = {bad} in the file: {found:?}",
                v.key
            );
        }
    }
}
