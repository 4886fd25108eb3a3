//! Every variable the daemon reads, declared once: its name, the configuration file's key for
//! it, its default and what it means. The README's variable table is this list (a test renders
//! it and compares), the warning about a variable nothing reads uses it, and the loader's test
//! records every name it asks for and checks it is here and that each file key exists.

/// One variable.
pub(crate) struct Var {
    /// The environment variable.
    pub(crate) name: &'static str,
    /// Its key in the configuration file (`[section] key`, pools as `autoscaler.pools[].key`),
    /// empty when only the variable sets it.
    pub(crate) key: &'static str,
    /// Its default, as the README says it.
    pub(crate) default: &'static str,
    /// What it means.
    pub(crate) meaning: &'static str,
    /// A secret: also read as `NAME_FILE`, never from the file, never shown.
    pub(crate) secret: bool,
    /// The bounds of a number the daemon itself checks (the core checks its own fields).
    pub(crate) range: Option<(u64, u64)>,
}

impl Var {
    /// The same variable, refused outside `[lo, hi]`.
    const fn within(self, lo: u64, hi: u64) -> Self {
        Self {
            range: Some((lo, hi)),
            ..self
        }
    }
}

const fn var(
    name: &'static str,
    key: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Var {
    Var {
        name,
        key,
        default,
        meaning,
        secret: false,
        range: None,
    }
}

const fn secret(name: &'static str, default: &'static str, meaning: &'static str) -> Var {
    Var {
        name,
        key: "",
        default,
        meaning,
        secret: true,
        range: None,
    }
}

/// Every variable, in the README's order.
pub(crate) const VARS: &[Var] = &[
    secret(
        "HETZNER_API_TOKEN",
        "required",
        "read-write token of the Hetzner project",
    ),
    secret(
        "GITEA_ADMIN_TOKEN",
        "required",
        "Gitea token (`read:admin`/`write:admin` at the admin scope)",
    ),
    var(
        "JOIN_TOKENS",
        "k3s.join_tokens",
        "`per-server`",
        "`per-server`: a bootstrap token minted for each new server and revoked once it joined; \
         `static`: every server gets `CLUSTER_SECRET`",
    ),
    secret(
        "CLUSTER_SECRET",
        "only with `JOIN_TOKENS=static`",
        "the one join token (a bootstrap token from `k3s token create --ttl 0`; a server token is \
         refused)",
    ),
    var(
        "GITEA_API_URL",
        "gitea.url",
        "required",
        "e.g. `https://git.example.com/api/v1` (`/api/v1` may be left out)",
    ),
    var(
        "RUNNER_NAMESPACE",
        "k3s.runner_namespace",
        "`gitea-runners`",
        "where the runner pods run",
    ),
    var(
        "MAX_NODES",
        "autoscaler.max_nodes",
        "`5`",
        "most servers at once (and of the one pool, without a file)",
    ),
    var(
        "POLL_INTERVAL_SECS",
        "daemon.poll_interval_secs",
        "`5`",
        "seconds between ticks; slower, and teardowns miss their windows",
    )
    .within(1, 3_600),
    var(
        "IDLE_TIMEOUT_MINS",
        "autoscaler.pools[].idle_timeout",
        "`0` (the seed: `5`)",
        "idle minutes before a node may go; see the migration notes",
    ),
    var(
        "TARGET_WAIT_SECS",
        "autoscaler.pools[].target_wait",
        "a quarter more than the measured cold start",
        "seconds a waiting job may wait for a busy or booting runner before a server is bought \
         for it",
    ),
    var(
        "BILLING_WINDOW_MINS",
        "autoscaler.pools[].teardown_window",
        "90 s (the seed: `5`)",
        "teardown only in the last minutes of the paid hour; see the migration notes",
    ),
    var(
        "PROVISIONING_TIMEOUT_SECS",
        "autoscaler.pools[].provisioning_timeout",
        "`600`",
        "a server with no node after this is given up",
    ),
    var(
        "HETZNER_SERVER_TYPE",
        "autoscaler.pools[].server_types",
        "`ccx33`",
        "comma list: fallbacks after a capacity error",
    ),
    var(
        "HETZNER_LOCATION",
        "autoscaler.pools[].locations",
        "`nbg1`",
        "comma list, in order of preference",
    ),
    var(
        "HETZNER_IMAGE",
        "autoscaler.pools[].image",
        "`ubuntu-24.04`",
        "the image of new servers",
    ),
    var(
        "HETZNER_BAKED_IMAGE",
        "autoscaler.pools[].baked_image",
        "none",
        "`auto`, an image id or a label selector: boot a baked image (`image bake`) of the \
         cluster's K3s version instead, else the base image with a warning",
    ),
    var(
        "K3S_AGENT_ARGS",
        "k3s.agent_args",
        "`--node-label=managed-by=gitea-ci-autoscaler --node-label=node-role=ci-runner` (the \
         seed's)",
        "extra `k3s agent` flags, split at spaces",
    ),
    var(
        "PUSHGATEWAY_URL",
        "daemon.pushgateway_url",
        "none",
        "push metrics there as well (optional now)",
    ),
    var(
        "PLACEMENT_COOLDOWN_SECS",
        "autoscaler.capacity_cooldown",
        "`600`",
        "how long a server type and location without capacity is skipped (the seed's later \
         variable; its default was 300)",
    ),
    var(
        "HETZNER_API_URL",
        "hetzner.url",
        "`https://api.hetzner.cloud/v1`",
        "another endpoint (a proxy, a fake)",
    ),
    var(
        "ALLOW_INSECURE_HTTP",
        "",
        "`false`",
        "allow `http://` Gitea and Hetzner URLs to other hosts (the tokens then travel in \
         cleartext; `http://` to this machine is always allowed); warned at start",
    ),
    var(
        "GITEA_SCOPE",
        "gitea.scope",
        "`admin`",
        "`admin`, `user`, `org:NAME` or `repo:OWNER/NAME`",
    ),
    secret(
        "GITEA_WEBHOOK_SECRET",
        "none",
        "the `workflow_job` webhook's secret; without it the webhook is off",
    ),
    var(
        "INSTALLATION",
        "autoscaler.installation",
        "`default`",
        "ownership label value and server-name prefix",
    ),
    var(
        "RUNNER_LABELS",
        "autoscaler.pools[].labels",
        "act_runner's defaults",
        "comma list, the one pool's runner labels",
    ),
    var(
        "RUNNER_SELECTOR",
        "k3s.runner_selector",
        "`app=gitea-actions-runner` (the seed's label)",
        "label selector of the runner pods; each registers as a Gitea runner under its pod name",
    ),
    var(
        "K3S_URL",
        "k3s.server_url",
        "the `kubernetes` service's endpoint",
        "`https://HOST:6443` agents join",
    ),
    var(
        "K3S_VERSION",
        "k3s.version",
        "the API server's version",
        "e.g. `v1.33.4+k3s1`",
    ),
    var(
        "HETZNER_SSH_KEYS",
        "hetzner.ssh_keys",
        "every SSH key of the project (as the seed)",
        "comma list of SSH key names for new servers",
    ),
    var(
        "HETZNER_ENABLE_IPV4",
        "hetzner.enable_ipv4",
        "`true`",
        "a public IPv4 address for new servers",
    ),
    var(
        "HETZNER_NETWORKS",
        "hetzner.networks",
        "none",
        "comma list of private network ids new servers join",
    ),
    var(
        "HETZNER_FIREWALLS",
        "hetzner.firewalls",
        "none",
        "comma list of firewall ids for new servers",
    ),
    var(
        "CALL_TIMEOUT_SECS",
        "daemon.call_timeout_secs",
        "`10`",
        "the longest one API call may take",
    )
    .within(1, 600),
    var(
        "LISTEN_ADDR",
        "daemon.listen",
        "`0.0.0.0:8080`",
        "metrics and health checks",
    ),
    var(
        "WEBHOOK_ADDR",
        "daemon.webhook_listen",
        "`0.0.0.0:8081`",
        "the `workflow_job` webhook (`POST /webhook`), on a port of its own",
    ),
    var(
        "LOG_FORMAT",
        "daemon.log_format",
        "`human`",
        "or `json`; `RUST_LOG` filters",
    ),
    var(
        "LEADER_ELECTION",
        "daemon.leader_election",
        "`false`",
        "leader election on a Lease",
    ),
    var(
        "LEASE_NAME",
        "daemon.lease_name",
        "`gitea-ci-autoscaler`",
        "the Lease's name",
    ),
    var(
        "POD_NAME",
        "",
        "`HOSTNAME`",
        "this replica's name in the Lease (the Downward API's pod name)",
    ),
    var(
        "HOSTNAME",
        "",
        "`gitea-ci-autoscaler`",
        "this replica's name when `POD_NAME` is unset",
    ),
    var(
        "POD_NAMESPACE",
        "",
        "`gitea-ci-autoscaler`",
        "the Lease's namespace",
    ),
    var(
        "CONFIG_FILE",
        "",
        "none",
        "a TOML file (below; `deploy/config.example.toml`): several pools and every knob of \
         the core, and any key of this table's second column",
    ),
];

/// The README's variable table, rendered from [`VARS`].
pub(crate) fn table() -> String {
    let mut out = String::from("| variable | file key | default | meaning |\n|---|---|---|---|\n");
    for v in VARS {
        let key = if v.key.is_empty() {
            String::new()
        } else {
            format!("`{}`", v.key)
        };
        let bounds = v.range.map_or_else(String::new, |(lo, hi)| {
            format!(" ({} to {})", grouped(lo), grouped(hi))
        });
        out.push_str(&format!(
            "| `{}` | {key} | {} | {}{bounds} |\n",
            v.name, v.default, v.meaning
        ));
        if v.name == "PLACEMENT_COOLDOWN_SECS" {
            out.push_str(
                "| `*_FILE` | | | every secret above also as `NAME_FILE=/path` (not both) |\n",
            );
        }
    }
    out
}

/// `n` with thousands separated by commas, as the README writes numbers.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The declaration of `name`.
///
/// # Panics
/// When `name` is not declared: a mistake in this crate that its tests find.
pub(crate) fn get(name: &str) -> &'static Var {
    VARS.iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} is not declared in settings/known.rs"))
}

/// The default of `name` as declared (the literal between its default's first backticks),
/// parsed: the loader's defaults are these, so each is written once.
///
/// # Panics
/// When `name` is not declared with a literal default of that type: a mistake in this file,
/// which the loader's tests (they take every default) find before any user does.
pub(crate) fn default<T: std::str::FromStr>(name: &str) -> T {
    VARS.iter()
        .find(|v| v.name == name)
        .and_then(|v| v.default.strip_prefix('`'))
        .and_then(|d| d.split_once('`'))
        .and_then(|(literal, _)| literal.parse().ok())
        .unwrap_or_else(|| panic!("{name} has no default of this type in settings/known.rs"))
}

/// Whether `name` is a variable of [`VARS`] (not its `_FILE` twin).
fn declared(name: &str) -> bool {
    VARS.iter().any(|v| v.name == name)
}

/// Variables read by others in the same process: the log filter, and the panic handler.
const OTHERS: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "KUBECONFIG"];

/// Prefixes that mark a variable as meant for this tool.
const PREFIXES: &[&str] = &["GITEA_", "HETZNER_", "K3S_", "RUNNER_", "AUTOSCALER_"];

/// Whether the daemon reads `name`.
pub(crate) fn is_known(name: &str) -> bool {
    declared(name)
        || OTHERS.contains(&name)
        || name
            .strip_suffix("_FILE")
            .is_some_and(|base| VARS.iter().any(|v| v.secret && v.name == base))
}

/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_…` for the services of
/// its namespace: a service called `gitea` is no typo of ours.
fn from_kubernetes(name: &str) -> bool {
    name.ends_with("_SERVICE_HOST")
        || name.contains("_SERVICE_PORT")
        || name.ends_with("_PORT")
        || name.contains("_PORT_")
}

/// A warning for each variable in `names` that looks meant for this tool but is read by
/// nothing: one of its prefixes, or a near miss of a known name. Sorted.
pub(crate) fn unread(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| !is_known(n) && !from_kubernetes(n))
        .filter_map(|n| {
            let near = VARS
                .iter()
                .map(|v| (strsim::levenshtein(v.name, &n), v.name))
                .min();
            match near {
                Some((d, k)) if d <= 2 => {
                    Some(format!("{n} is set but read by nothing: did you mean {k}?"))
                }
                _ if PREFIXES.iter().any(|p| n.starts_with(p)) => Some(format!(
                    "{n} is set but read by nothing (no setting has that name; see the README's \
                     variable table)"
                )),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_unknown_names_of_ours_are_warned_about_and_nothing_else() {
        let names = [
            "POLL_INTERVAL_SEC",
            "HETZNER_API_TOKN",
            "GITEA_TOKEN",
            "HETZNER_API_TOKEN_FILE",
            "GITEA_SERVICE_HOST",
            "GITEA_PORT_3000_TCP",
            "PATH",
            "HOME",
            "RUST_LOG",
            "MAX_NODES",
        ]
        .map(str::to_owned);
        assert_eq!(
            unread(names),
            [
                "GITEA_TOKEN is set but read by nothing (no setting has that name; see the \
                 README's variable table)",
                "HETZNER_API_TOKN is set but read by nothing: did you mean HETZNER_API_TOKEN?",
                "POLL_INTERVAL_SEC is set but read by nothing: did you mean POLL_INTERVAL_SECS?",
            ]
        );
    }
}
