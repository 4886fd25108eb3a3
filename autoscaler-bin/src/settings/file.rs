//! The optional TOML file: several pools and every knob of the core, plus the daemon's own
//! settings. Secrets are never read from it (they come from variables or `*_FILE` files), so the
//! file can live in a ConfigMap.

use std::net::SocketAddr;

use autoscaler_core::Config;
use serde::Deserialize;

/// The file's shape; every section optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    /// The core's configuration, the same fields as its JSON form.
    pub(crate) autoscaler: Option<Config>,
    #[serde(default)]
    pub(crate) gitea: GiteaSection,
    #[serde(default)]
    pub(crate) hetzner: HetznerSection,
    #[serde(default)]
    pub(crate) k3s: K3sSection,
    #[serde(default)]
    pub(crate) daemon: DaemonSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GiteaSection {
    pub(crate) url: Option<String>,
    pub(crate) scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HetznerSection {
    pub(crate) url: Option<String>,
    pub(crate) ssh_keys: Option<Vec<String>>,
    pub(crate) enable_ipv4: Option<bool>,
    pub(crate) networks: Option<Vec<u64>>,
    pub(crate) firewalls: Option<Vec<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct K3sSection {
    pub(crate) join_tokens: Option<String>,
    pub(crate) server_url: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) agent_args: Option<Vec<String>>,
    pub(crate) runner_namespace: Option<String>,
    pub(crate) runner_selector: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonSection {
    pub(crate) poll_interval_secs: Option<u64>,
    pub(crate) call_timeout_secs: Option<u64>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) webhook_listen: Option<SocketAddr>,
    pub(crate) log_format: Option<String>,
    pub(crate) pushgateway_url: Option<String>,
    pub(crate) leader_election: Option<bool>,
    pub(crate) lease_name: Option<String>,
}

/// Parses the file, naming the line and key of the first problem.
pub(crate) fn parse(path: &str, text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|e| format!("{path}: {}", e.to_string().trim_end()))
}
