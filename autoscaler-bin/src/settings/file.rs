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
    /// Declared by the Hetzner crate, which uses it.
    #[serde(default)]
    pub(crate) hetzner: autoscaler_hetzner::HetznerSettings,
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

/// Parses the file. A key no setting has is reported with every other such key at once, each
/// by its path; any other problem names its line and key.
pub(crate) fn parse(path: &str, text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|e| {
        let unknown = text
            .parse::<toml::Table>()
            .map(|t| unknown_keys(&t))
            .unwrap_or_default();
        if unknown.is_empty() {
            format!("{path}: {}", e.to_string().trim_end())
        } else {
            format!(
                "{path}: {} key(s) that no setting has: {} (see the README's configuration \
                 tables; durations are strings like \"90s\" or \"5m\")",
                unknown.len(),
                unknown.join(", ")
            )
        }
    })
}

/// Every key of the file that no setting has, by its path (`daemon.poll_interval`,
/// `autoscaler.pools[1].idle`). Each table is deserialized on its own, innermost first, and
/// what its type refuses as unknown is taken out and noted until it refuses nothing more, so
/// the types stay the one declaration of which keys exist.
pub(crate) fn unknown_keys(file: &toml::Table) -> Vec<String> {
    use autoscaler_core::{Backoff, Config, PoolConfig, WarmWindow};
    let mut out = Vec::new();
    // The sections, each with its content set aside, against the file's shape.
    let mut shallow: toml::Table = file
        .keys()
        .map(|k| (k.clone(), toml::Value::Table(toml::Table::new())))
        .collect();
    strip::<File>(&mut shallow, "", &mut out);
    let section = |name: &str| match file.get(name) {
        Some(toml::Value::Table(t)) if shallow.contains_key(name) => Some(t.clone()),
        _ => None,
    };
    if let Some(mut t) = section("gitea") {
        strip::<GiteaSection>(&mut t, "gitea.", &mut out);
    }
    if let Some(mut t) = section("hetzner") {
        strip::<autoscaler_hetzner::HetznerSettings>(&mut t, "hetzner.", &mut out);
    }
    if let Some(mut t) = section("k3s") {
        strip::<K3sSection>(&mut t, "k3s.", &mut out);
    }
    if let Some(mut t) = section("daemon") {
        strip::<DaemonSection>(&mut t, "daemon.", &mut out);
    }
    if let Some(mut core) = section("autoscaler") {
        if let Some(toml::Value::Array(pools)) = core.get_mut("pools") {
            for (i, pool) in pools.iter_mut().enumerate() {
                let toml::Value::Table(pool) = pool else {
                    continue;
                };
                if let Some(toml::Value::Array(windows)) = pool.get_mut("warm_schedule") {
                    for (j, w) in windows.iter_mut().enumerate() {
                        if let toml::Value::Table(w) = w {
                            let at = format!("autoscaler.pools[{i}].warm_schedule[{j}].");
                            strip::<WarmWindow>(w, &at, &mut out);
                        }
                    }
                }
                strip::<PoolConfig>(pool, &format!("autoscaler.pools[{i}]."), &mut out);
            }
        }
        if let Some(toml::Value::Table(b)) = core.get_mut("create_backoff") {
            strip::<Backoff>(b, "autoscaler.create_backoff.", &mut out);
        }
        strip::<Config>(&mut core, "autoscaler.", &mut out);
    }
    out
}

/// Takes out of `table` each key `T` refuses as unknown, noting it as `{at}{key}`.
fn strip<T: serde::de::DeserializeOwned>(table: &mut toml::Table, at: &str, out: &mut Vec<String>) {
    // Each round removes one key, so there are at most as many rounds as keys.
    for _ in 0..=table.len() {
        let Err(e) = toml::Value::Table(table.clone()).try_into::<T>() else {
            return;
        };
        let text = e.to_string();
        let Some(key) = text
            .split_once("unknown field `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(key, _)| key.to_owned())
        else {
            return;
        };
        if table.remove(&key).is_none() {
            return;
        }
        out.push(format!("{at}{key}"));
    }
}
