//! Every variable the daemon reads, named once: for the warning about a variable nothing reads
//! (a typo, a setting of another tool), and for the test that keeps the README's table and the
//! loader in step. The loader's test records every name it asks for and checks it is here.

/// The variables, secrets without their `_FILE` twins.
pub(crate) const VARIABLES: &[&str] = &[
    "ALLOW_INSECURE_HTTP",
    "BILLING_WINDOW_MINS",
    "CALL_TIMEOUT_SECS",
    "CLUSTER_SECRET",
    "CONFIG_FILE",
    "GITEA_ADMIN_TOKEN",
    "GITEA_API_URL",
    "GITEA_SCOPE",
    "GITEA_WEBHOOK_SECRET",
    "HETZNER_API_TOKEN",
    "HETZNER_API_URL",
    "HETZNER_ENABLE_IPV4",
    "HETZNER_FIREWALLS",
    "HETZNER_IMAGE",
    "HETZNER_LOCATION",
    "HETZNER_NETWORKS",
    "HETZNER_SERVER_TYPE",
    "HETZNER_SSH_KEYS",
    "HOSTNAME",
    "IDLE_TIMEOUT_MINS",
    "INSTALLATION",
    "JOIN_TOKENS",
    "K3S_AGENT_ARGS",
    "K3S_URL",
    "K3S_VERSION",
    "LEADER_ELECTION",
    "LEASE_NAME",
    "LISTEN_ADDR",
    "LOG_FORMAT",
    "MAX_NODES",
    "PLACEMENT_COOLDOWN_SECS",
    "POD_NAME",
    "POD_NAMESPACE",
    "POLL_INTERVAL_SECS",
    "PROVISIONING_TIMEOUT_SECS",
    "PUSHGATEWAY_URL",
    "RUNNER_LABELS",
    "RUNNER_NAMESPACE",
    "RUNNER_SELECTOR",
    "TARGET_WAIT_SECS",
    "WEBHOOK_ADDR",
];

/// The secrets: each also as `NAME_FILE`.
pub(crate) const SECRETS: &[&str] = &[
    "CLUSTER_SECRET",
    "GITEA_ADMIN_TOKEN",
    "GITEA_WEBHOOK_SECRET",
    "HETZNER_API_TOKEN",
];

/// Variables read by others in the same process: the log filter, and the panic handler.
const OTHERS: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "KUBECONFIG"];

/// Prefixes that mark a variable as meant for this tool.
const PREFIXES: &[&str] = &["GITEA_", "HETZNER_", "K3S_", "RUNNER_", "AUTOSCALER_"];

/// Whether the daemon reads `name`.
pub(crate) fn is_known(name: &str) -> bool {
    VARIABLES.contains(&name)
        || OTHERS.contains(&name)
        || name
            .strip_suffix("_FILE")
            .is_some_and(|base| SECRETS.contains(&base))
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
            let near = VARIABLES
                .iter()
                .map(|k| (strsim::levenshtein(k, &n), *k))
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
