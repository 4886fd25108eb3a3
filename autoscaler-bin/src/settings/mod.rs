//! The daemon's configuration: the seed's environment variables with the seed's defaults, `*_FILE`
//! variants for every secret, and an optional TOML file for several pools and every knob of the
//! core. Every problem is collected and reported at once, each naming its variable or key.

mod file;
mod known;
mod transport;

use std::net::SocketAddr;
use std::time::Duration;

use autoscaler_core::Config;
use autoscaler_gitea::Scope;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Where values come from: the process environment in the daemon, a map in tests.
pub(crate) trait Env {
    /// A variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// A file's contents.
    fn read(&self, path: &str) -> Result<String, String>;
    /// The names of every variable set.
    fn names(&self) -> Vec<String>;
}

/// The real environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per line.
    Json,
}

/// A secret and the variable it came from (for `check-config`).
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) value: SecretString,
    pub(crate) from: String,
}

impl Secret {
    fn describe(&self) -> String {
        format!(
            "[redacted: {} bytes from {}]",
            self.value.expose_secret().len(),
            self.from
        )
    }
}

/// Gitea.
#[derive(Debug, Clone)]
pub(crate) struct GiteaSettings {
    pub(crate) url: String,
    pub(crate) token: Secret,
    pub(crate) scope: Scope,
    pub(crate) webhook_secret: Option<Secret>,
}

/// Hetzner Cloud: the token, and the settings the Hetzner crate declares.
#[derive(Debug, Clone)]
pub(crate) struct HetznerAccess {
    pub(crate) token: Secret,
    pub(crate) settings: autoscaler_hetzner::HetznerSettings,
}

/// The K3s cluster.
#[derive(Debug, Clone)]
pub(crate) struct K3sSettings {
    /// How new servers get their join credential.
    pub(crate) join: JoinTokens,
    /// `None`: read from the `kubernetes` service's endpoints.
    pub(crate) server_url: Option<String>,
    /// `None`: the API server's own version.
    pub(crate) version: Option<String>,
    pub(crate) agent_args: Vec<String>,
    pub(crate) runner_namespace: String,
    pub(crate) runner_selector: String,
}

/// How new servers get their join credential (`JOIN_TOKENS`).
#[derive(Debug, Clone)]
pub(crate) enum JoinTokens {
    /// The default: the daemon mints a bootstrap token per server, expiring after the
    /// provisioning timeout and revoked once the node has joined.
    PerServer,
    /// One configured token for every server (`CLUSTER_SECRET`), readable on every node for as
    /// long as it is valid: for clusters that cannot grant the daemon token rights.
    Static(Secret),
}

impl JoinTokens {
    /// The static token, if that is the mode.
    pub(crate) fn static_token(&self) -> Option<&Secret> {
        match self {
            Self::Static(s) => Some(s),
            Self::PerServer => None,
        }
    }
}

/// The daemon itself.
#[derive(Debug, Clone)]
pub(crate) struct DaemonSettings {
    pub(crate) poll_interval: Duration,
    pub(crate) call_timeout: Duration,
    /// Metrics and health checks.
    pub(crate) listen: SocketAddr,
    /// The Gitea webhook, on a port of its own.
    pub(crate) webhook_listen: SocketAddr,
    pub(crate) log_format: LogFormat,
    pub(crate) pushgateway_url: Option<String>,
    pub(crate) leader_election: bool,
    pub(crate) lease_name: String,
    /// This replica's name in the lease (`POD_NAME`, else the host name).
    pub(crate) identity: String,
    /// The namespace of the lease (`POD_NAMESPACE`).
    pub(crate) namespace: String,
    /// `http://` service URLs to other hosts are allowed (`ALLOW_INSECURE_HTTP`).
    pub(crate) allow_insecure_http: bool,
}

/// Everything the daemon runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The core's configuration, validated.
    pub(crate) core: Config,
    pub(crate) gitea: GiteaSettings,
    pub(crate) hetzner: HetznerAccess,
    pub(crate) k3s: K3sSettings,
    pub(crate) daemon: DaemonSettings,
    /// What is allowed but probably wrong (a variable no setting reads, a K3s server token):
    /// shown by `check-config` and logged at start.
    pub(crate) warnings: Vec<String>,
}

/// The configuration has problems; every one is listed.
#[derive(Debug)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Reads values, noting every problem instead of stopping at the first.
struct Reader<'a> {
    env: &'a dyn Env,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Reader<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.env
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let raw = self.text(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problems
                    .push(format!("{name}={raw:?} is not a whole number"));
                None
            }
        }
    }

    /// A whole number of minutes as a duration; one too large for any duration is refused here
    /// (the core refuses anything beyond its own bound with a finer message).
    fn minutes(&mut self, name: &str) -> Option<jiff::SignedDuration> {
        let m = self.number::<i64>(name)?;
        match m.checked_mul(60) {
            Some(secs) => Some(jiff::SignedDuration::from_secs(secs)),
            None => {
                self.problems
                    .push(format!("{name}={m} is far too many minutes"));
                None
            }
        }
    }

    /// The number `name`, else the file's, else its declared default, refused outside its
    /// declared bounds naming both the variable and the file key; the value returned is always
    /// within them.
    fn bounded(&mut self, name: &str, from_file: Option<u64>) -> u64 {
        let var = known::get(name);
        let value = self
            .number::<u64>(name)
            .or(from_file)
            .unwrap_or_else(|| known::default(name));
        let Some((lo, hi)) = var.range else {
            return value;
        };
        if !(lo..=hi).contains(&value) {
            self.problems.push(format!(
                "{name} (or {}) = {value} must be between {lo} and {hi}",
                var.key
            ));
        }
        value.clamp(lo, hi)
    }

    /// An address from `name`, else from the file, else `default`.
    fn address(
        &mut self,
        name: &str,
        from_file: Option<SocketAddr>,
        default: SocketAddr,
    ) -> SocketAddr {
        match self.text(name) {
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.problems.push(format!(
                    "{name}={raw:?} is not an address like 0.0.0.0:8080"
                ));
                default
            }),
            None => from_file.unwrap_or(default),
        }
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        let raw = self.text(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => {
                self.problems
                    .push(format!("{name}={raw:?} is not true or false"));
                None
            }
        }
    }

    fn list(&self, name: &str) -> Option<Vec<String>> {
        self.text(name).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    fn ids(&mut self, name: &str) -> Option<Vec<u64>> {
        let items = self.list(name)?;
        let mut out = Vec::new();
        for i in items {
            match i.parse() {
                Ok(v) => out.push(v),
                Err(_) => self
                    .problems
                    .push(format!("{name}: {i:?} is not a numeric id")),
            }
        }
        Some(out)
    }

    /// A secret still holding the example's placeholder is refused: every call with it would
    /// be refused too, each time with a less helpful message.
    fn real(&mut self, from: &str, value: &str) {
        if PLACEHOLDERS
            .iter()
            .any(|p| value.trim().eq_ignore_ascii_case(p))
        {
            self.problems.push(format!(
                "{from} is still the example's placeholder {:?}: put the real value there",
                value.trim()
            ));
        }
    }

    /// `NAME` or `NAME_FILE` (not both); `required` reports its absence.
    fn secret(&mut self, name: &str, required: bool) -> Option<Secret> {
        let file_var = format!("{name}_FILE");
        match (self.env.var(name), self.text(&file_var)) {
            (Some(_), Some(_)) => {
                self.problems
                    .push(format!("{name} and {file_var} are both set; set one"));
                None
            }
            (Some(v), None) if !v.trim().is_empty() => {
                self.real(name, &v);
                Some(Secret {
                    value: SecretString::from(v.trim().to_owned()),
                    from: name.to_owned(),
                })
            }
            (_, Some(path)) => match self.env.read(&path) {
                Ok(v) if !v.trim().is_empty() => {
                    self.real(&format!("{file_var}={path}"), &v);
                    Some(Secret {
                        value: SecretString::from(v.trim().to_owned()),
                        from: format!("{file_var}={path}"),
                    })
                }
                Ok(_) => {
                    self.problems
                        .push(format!("{file_var}: the file {path} is empty"));
                    None
                }
                Err(e) => {
                    self.problems
                        .push(format!("{file_var}: cannot read {path}: {e}"));
                    None
                }
            },
            _ => {
                if required {
                    self.problems
                        .push(format!("{name} (or {file_var}) is required"));
                }
                None
            }
        }
    }
}

/// Every variable, its file key, default and meaning, as the README's Markdown table.
pub(crate) fn variables() -> String {
    known::table()
}

/// The placeholders of the shipped examples (deploy/secret.example.yaml, the chart's values).
const PLACEHOLDERS: &[&str] = &["replace-me", "changeme", "change-me", "...", "…"];

/// The seed's default agent flags: runner pods of an existing installation select these labels.
pub(crate) const DEFAULT_AGENT_ARGS: &str =
    "--node-label=managed-by=gitea-ci-autoscaler --node-label=node-role=ci-runner";

/// The variables that shape the one pool of the seed's configuration.
const POOL_VARIABLES: [&str; 9] = [
    "RUNNER_LABELS",
    "IDLE_TIMEOUT_MINS",
    "TARGET_WAIT_SECS",
    "BILLING_WINDOW_MINS",
    "PROVISIONING_TIMEOUT_SECS",
    "HETZNER_SERVER_TYPE",
    "HETZNER_LOCATION",
    "HETZNER_IMAGE",
    "HETZNER_BAKED_IMAGE",
];

fn placeholder() -> Secret {
    Secret {
        value: SecretString::from(String::new()),
        from: "nowhere".to_owned(),
    }
}

/// The TOML file `config_file`, else `CONFIG_FILE`, else an empty one.
fn read_file(r: &Reader<'_>, config_file: Option<&str>) -> Result<file::File, Problems> {
    let path = config_file
        .map(str::to_owned)
        .or_else(|| r.text("CONFIG_FILE"));
    match &path {
        Some(p) => r
            .env
            .read(p)
            .map_err(|e| format!("cannot read {p}: {e}"))
            .and_then(|text| file::parse(p, &text))
            .map_err(|e| Problems(vec![format!("CONFIG_FILE: {e}")])),
        None => Ok(file::File::default()),
    }
}

/// Where Gitea is, which scope, and the token: what every command that reads Gitea needs.
fn gitea_access(
    r: &mut Reader<'_>,
    section: file::GiteaSection,
) -> (Option<String>, Option<Scope>, Option<Secret>) {
    let url = r.text("GITEA_API_URL").or(section.url);
    if url.is_none() {
        r.problems
            .push("GITEA_API_URL is required (e.g. https://git.example.com/api/v1)".to_owned());
    }
    let scope_raw = r
        .text("GITEA_SCOPE")
        .or(section.scope)
        .unwrap_or_else(|| known::default("GITEA_SCOPE"));
    let scope = match scope_raw.parse::<Scope>() {
        Ok(s) => Some(s),
        Err(e) => {
            r.problems.push(format!("GITEA_SCOPE: {e}"));
            None
        }
    };
    let token = r.secret("GITEA_ADMIN_TOKEN", true);
    (url, scope, token)
}

/// Only what reading Gitea needs (for `trace`): `GITEA_API_URL`, `GITEA_SCOPE`, the token, and
/// `CALL_TIMEOUT_SECS`, from the environment and the configuration file; nothing about Hetzner or
/// the cluster is asked for.
pub(crate) fn load_gitea(
    env: &dyn Env,
    config_file: Option<&str>,
) -> Result<(GiteaSettings, Duration), Problems> {
    let mut r = Reader {
        env,
        problems: Vec::new(),
        warnings: known::unread(env.names()),
    };
    let file = read_file(&r, config_file)?;
    let (url, scope, token) = gitea_access(&mut r, file.gitea);
    let allow_insecure_http = r
        .boolean(transport::ALLOW_INSECURE_HTTP)
        .unwrap_or_else(|| known::default(transport::ALLOW_INSECURE_HTTP));
    if let Some(u) = &url
        && let Err(problem) = transport::check("GITEA_API_URL", u, allow_insecure_http)
    {
        r.problems.push(problem);
    }
    // A page of a long history may take longer than the daemon's calls: unless set, three
    // times their default.
    let call_timeout = r.bounded(
        "CALL_TIMEOUT_SECS",
        file.daemon
            .call_timeout_secs
            .or(Some(3 * known::default::<u64>("CALL_TIMEOUT_SECS"))),
    );
    match (url, scope, token) {
        (Some(url), Some(scope), Some(token)) if r.problems.is_empty() => Ok((
            GiteaSettings {
                url,
                token,
                scope,
                webhook_secret: None,
            },
            Duration::from_secs(call_timeout),
        )),
        _ => Err(Problems(r.problems)),
    }
}

/// Loads the configuration from `env` and the TOML file `CONFIG_FILE` (or `config_file`).
pub(crate) fn load(env: &dyn Env, config_file: Option<&str>) -> Result<Settings, Problems> {
    let mut r = Reader {
        env,
        problems: Vec::new(),
        warnings: known::unread(env.names()),
    };
    let file = read_file(&r, config_file)?;
    let pools_from_file = file.autoscaler.is_some();
    let mut core = file.autoscaler.unwrap_or_default();
    if let Some(name) = r.text("INSTALLATION") {
        core.installation = name;
    }
    if let Some(max) = r.number::<u32>("MAX_NODES") {
        core.max_nodes = max;
        if !pools_from_file {
            core.pools[0].max_nodes = max;
        }
    }
    if let Some(secs) = r.number::<i64>("PLACEMENT_COOLDOWN_SECS") {
        core.capacity_cooldown = jiff::SignedDuration::from_secs(secs);
    }
    if pools_from_file {
        for v in POOL_VARIABLES {
            if r.text(v).is_some() {
                r.problems.push(format!(
                    "{v} is set, but the pools come from the configuration file; set it there"
                ));
            }
        }
    } else {
        let pool = &mut core.pools[0];
        if let Some(m) = r.minutes("IDLE_TIMEOUT_MINS") {
            pool.idle_timeout = m;
        }
        if let Some(s) = r.number::<i64>("TARGET_WAIT_SECS") {
            pool.target_wait = Some(jiff::SignedDuration::from_secs(s));
        }
        if let Some(m) = r.minutes("BILLING_WINDOW_MINS") {
            pool.teardown_window = m;
        }
        if let Some(s) = r.number::<i64>("PROVISIONING_TIMEOUT_SECS") {
            pool.provisioning_timeout = jiff::SignedDuration::from_secs(s);
        }
        if let Some(t) = r.list("HETZNER_SERVER_TYPE") {
            pool.server_types = t;
        }
        if let Some(l) = r.list("HETZNER_LOCATION") {
            pool.locations = l;
        }
        if let Some(i) = r.text("HETZNER_IMAGE") {
            pool.image = i;
        }
        if let Some(b) = r.text("HETZNER_BAKED_IMAGE") {
            match b.parse() {
                Ok(b) => pool.baked_image = Some(b),
                Err(e) => r.problems.push(format!("HETZNER_BAKED_IMAGE: `{b}`: {e}")),
            }
        }
        if let Some(labels) = r.list("RUNNER_LABELS") {
            pool.labels = labels;
        }
    }
    let valid = match core.validate() {
        Ok(_) => Some(()),
        Err(autoscaler_core::Error::InvalidConfig { problems }) => {
            r.problems
                .extend(problems.iter().map(|p| format!("autoscaler.{p}")));
            None
        }
        Err(e) => {
            r.problems.push(e.to_string());
            None
        }
    };

    // Gitea.
    let (gitea_url, scope, gitea_token) = gitea_access(&mut r, file.gitea);
    let webhook_secret = r.secret("GITEA_WEBHOOK_SECRET", false);

    // Hetzner.
    let hetzner_token = r.secret("HETZNER_API_TOKEN", true);
    // The file's section (or its defaults), each variable set taking precedence.
    let mut settings = file.hetzner;
    if let Some(url) = r.text("HETZNER_API_URL") {
        settings.url = url;
    }
    if let Some(keys) = r.list("HETZNER_SSH_KEYS") {
        settings.ssh_keys = keys;
    }
    if let Some(on) = r.boolean("HETZNER_ENABLE_IPV4") {
        settings.enable_ipv4 = on;
    }
    if let Some(ids) = r.ids("HETZNER_NETWORKS") {
        settings.networks = ids;
    }
    if let Some(ids) = r.ids("HETZNER_FIREWALLS") {
        settings.firewalls = ids;
    }
    let hetzner = HetznerAccess {
        token: hetzner_token.clone().unwrap_or_else(placeholder),
        settings,
    };
    let allow_insecure_http = r
        .boolean(transport::ALLOW_INSECURE_HTTP)
        .unwrap_or_else(|| known::default(transport::ALLOW_INSECURE_HTTP));
    for (what, url) in [
        ("GITEA_API_URL", gitea_url.as_deref()),
        ("HETZNER_API_URL", Some(hetzner.settings.url.as_str())),
    ] {
        if let Some(u) = url
            && let Err(problem) = transport::check(what, u, allow_insecure_http)
        {
            r.problems.push(problem);
        }
    }

    // K3s.
    let mode = r.text("JOIN_TOKENS").or(file.k3s.join_tokens);
    let mode: String = mode.unwrap_or_else(|| known::default("JOIN_TOKENS"));
    let join = match mode.as_str() {
        "per-server" => {
            if r.secret("CLUSTER_SECRET", false).is_some() {
                r.problems.push(
                    "CLUSTER_SECRET is set, but JOIN_TOKENS is per-server (the default), which \
                     mints a token for each server and never uses it: remove CLUSTER_SECRET, or \
                     set JOIN_TOKENS=static to give every server that one token"
                        .to_owned(),
                );
            }
            Some(JoinTokens::PerServer)
        }
        "static" => r.secret("CLUSTER_SECRET", true).and_then(|secret| {
            match autoscaler_hetzner::check_join_token(secret.value.expose_secret()) {
                Ok(()) => {
                    if secret.value.expose_secret().contains("::node:") {
                        r.warnings.push(format!(
                            "{} is the cluster's agent token (K10…::node:…): every server gets \
                             it, it never expires and cannot be revoked for one server; prefer \
                             per-server tokens (JOIN_TOKENS=per-server) or a bootstrap token \
                             from `k3s token create`",
                            secret.from
                        ));
                    }
                    Some(JoinTokens::Static(secret))
                }
                Err(problem) => {
                    r.problems.push(format!("{}: {problem}", secret.from));
                    None
                }
            }
        }),
        other => {
            r.problems.push(format!(
                "JOIN_TOKENS (or k3s.join_tokens) = {other:?} is not per-server or static"
            ));
            None
        }
    };
    let server_url = r.text("K3S_URL").or(file.k3s.server_url);
    if let Some(u) = &server_url
        && !u.starts_with("https://")
    {
        r.problems.push(format!(
            "K3S_URL={u:?} must start with https:// (K3s agents accept nothing else)"
        ));
    }
    let agent_args = r
        .text("K3S_AGENT_ARGS")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .or(file.k3s.agent_args)
        .unwrap_or_else(|| {
            DEFAULT_AGENT_ARGS
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        });
    let k3s = K3sSettings {
        join: join.clone().unwrap_or(JoinTokens::PerServer),
        server_url,
        version: r.text("K3S_VERSION").or(file.k3s.version),
        agent_args,
        runner_namespace: r
            .text("RUNNER_NAMESPACE")
            .or(file.k3s.runner_namespace)
            .unwrap_or_else(|| known::default("RUNNER_NAMESPACE")),
        runner_selector: r
            .text("RUNNER_SELECTOR")
            .or(file.k3s.runner_selector)
            .unwrap_or_else(|| known::default("RUNNER_SELECTOR")),
    };

    // The daemon.
    let poll = r.bounded("POLL_INTERVAL_SECS", file.daemon.poll_interval_secs);
    let call_timeout = r.bounded("CALL_TIMEOUT_SECS", file.daemon.call_timeout_secs);
    let listen = r.address(
        "LISTEN_ADDR",
        file.daemon.listen,
        known::default("LISTEN_ADDR"),
    );
    let webhook_listen = r.address(
        "WEBHOOK_ADDR",
        file.daemon.webhook_listen,
        known::default("WEBHOOK_ADDR"),
    );
    if listen == webhook_listen {
        r.problems.push(format!(
            "LISTEN_ADDR and WEBHOOK_ADDR are both {listen}: the webhook needs a port of its own, \
             so a flood of deliveries cannot take the health checks down"
        ));
    }
    let format_raw = r
        .text("LOG_FORMAT")
        .or(file.daemon.log_format)
        .unwrap_or_else(|| known::default("LOG_FORMAT"));
    let log_format = match format_raw.as_str() {
        "human" | "text" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => {
            r.problems
                .push(format!("LOG_FORMAT={other:?} must be human or json"));
            LogFormat::Human
        }
    };
    let identity = r
        .text("POD_NAME")
        .or_else(|| r.text("HOSTNAME"))
        .unwrap_or_else(|| known::default("HOSTNAME"));
    let daemon = DaemonSettings {
        poll_interval: Duration::from_secs(poll),
        call_timeout: Duration::from_secs(call_timeout),
        listen,
        webhook_listen,
        log_format,
        pushgateway_url: r.text("PUSHGATEWAY_URL").or(file.daemon.pushgateway_url),
        leader_election: r
            .boolean("LEADER_ELECTION")
            .or(file.daemon.leader_election)
            .unwrap_or_else(|| known::default("LEADER_ELECTION")),
        lease_name: r
            .text("LEASE_NAME")
            .or(file.daemon.lease_name)
            .unwrap_or_else(|| known::default("LEASE_NAME")),
        identity,
        namespace: r
            .text("POD_NAMESPACE")
            .unwrap_or_else(|| known::default("POD_NAMESPACE")),
        allow_insecure_http,
    };

    match (valid, gitea_url, scope, gitea_token, hetzner_token, join) {
        (Some(()), Some(url), Some(scope), Some(token), Some(_), Some(_))
            if r.problems.is_empty() =>
        {
            Ok(Settings {
                core,
                gitea: GiteaSettings {
                    url,
                    token,
                    scope,
                    webhook_secret,
                },
                hetzner,
                k3s,
                daemon,
                warnings: r.warnings,
            })
        }
        _ => Err(Problems(r.problems)),
    }
}

/// What `check-config` prints: exactly the keys the file accepts, so the output reads back as
/// `--config`. What only variables set (the secrets, this replica's name and namespace, the
/// insecure-HTTP opt-in) is said in comments above it.
#[derive(Serialize)]
struct Effective<'a> {
    autoscaler: &'a Config,
    gitea: EffectiveGitea,
    hetzner: autoscaler_hetzner::HetznerSettings,
    k3s: EffectiveK3s<'a>,
    daemon: EffectiveDaemon<'a>,
}

#[derive(Serialize)]
struct EffectiveGitea {
    url: String,
    scope: String,
}

#[derive(Serialize)]
struct EffectiveK3s<'a> {
    join_tokens: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    agent_args: &'a [String],
    runner_namespace: &'a str,
    runner_selector: &'a str,
}

#[derive(Serialize)]
struct EffectiveDaemon<'a> {
    poll_interval_secs: u64,
    call_timeout_secs: u64,
    listen: String,
    webhook_listen: String,
    log_format: LogFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pushgateway_url: Option<String>,
    leader_election: bool,
    lease_name: &'a str,
}

impl Settings {
    /// The effective configuration as TOML that reads back as `--config`; secrets are named by
    /// where they came from, never shown, and a password in a URL is left out.
    pub(crate) fn render(&self) -> String {
        let view = Effective {
            autoscaler: &self.core,
            gitea: EffectiveGitea {
                url: transport::redacted(&self.gitea.url),
                scope: self.gitea.scope.to_string(),
            },
            hetzner: autoscaler_hetzner::HetznerSettings {
                url: transport::redacted(&self.hetzner.settings.url),
                ..self.hetzner.settings.clone()
            },
            k3s: EffectiveK3s {
                join_tokens: match self.k3s.join {
                    JoinTokens::PerServer => "per-server",
                    JoinTokens::Static(_) => "static",
                },
                server_url: self.k3s.server_url.as_deref(),
                version: self.k3s.version.as_deref(),
                agent_args: &self.k3s.agent_args,
                runner_namespace: &self.k3s.runner_namespace,
                runner_selector: &self.k3s.runner_selector,
            },
            daemon: EffectiveDaemon {
                poll_interval_secs: self.daemon.poll_interval.as_secs(),
                call_timeout_secs: self.daemon.call_timeout.as_secs(),
                listen: self.daemon.listen.to_string(),
                webhook_listen: self.daemon.webhook_listen.to_string(),
                log_format: self.daemon.log_format,
                pushgateway_url: self
                    .daemon
                    .pushgateway_url
                    .as_deref()
                    .map(transport::redacted),
                leader_election: self.daemon.leader_election,
                lease_name: &self.daemon.lease_name,
            },
        };
        let mut out = String::from(
            "# The effective configuration. It reads back as --config FILE.toml; what only\n\
             # variables set is below, secrets never shown.\n",
        );
        let mut note = |what: &str, value: String| {
            out.push_str(&format!("#   {what}: {value}\n"));
        };
        note("GITEA_ADMIN_TOKEN", self.gitea.token.describe());
        note(
            "GITEA_WEBHOOK_SECRET",
            self.gitea
                .webhook_secret
                .as_ref()
                .map_or_else(|| "(none: the webhook is off)".to_owned(), Secret::describe),
        );
        note("HETZNER_API_TOKEN", self.hetzner.token.describe());
        if let Some(t) = self.k3s.join.static_token() {
            note("CLUSTER_SECRET", t.describe());
        }
        if self.k3s.server_url.is_none() {
            note(
                "K3S_URL",
                "unset: the kubernetes service's endpoints".to_owned(),
            );
        }
        if self.k3s.version.is_none() {
            note("K3S_VERSION", "unset: the API server's version".to_owned());
        }
        note(
            "POD_NAME (the lease identity)",
            self.daemon.identity.clone(),
        );
        note(
            "POD_NAMESPACE (the lease namespace)",
            self.daemon.namespace.clone(),
        );
        note(
            transport::ALLOW_INSECURE_HTTP,
            self.daemon.allow_insecure_http.to_string(),
        );
        for w in &self.warnings {
            out.push_str(&format!("# warning: {w}\n"));
        }
        out.push('\n');
        match toml::to_string(&view) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("# cannot render: {e}\n")),
        }
        out
    }
}

#[cfg(test)]
mod tests;
