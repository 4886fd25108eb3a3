//! The user data that turns a fresh Ubuntu server into a K3s agent of the cluster.
//!
//! It is a typed `#cloud-config` document serialised with serde-saphyr, never a text template,
//! so a token holding `#`, `:` or quotes cannot break the YAML or inject commands. Commands run
//! in cloud-init's list (execve) form, so no shell quoting is involved either.
//!
//! The agent's name is the server's name (`node-name`), so the core can pair server and node;
//! the node's ownership and pool labels are set at registration (`node-label`). The K3s version
//! is pinned to the control plane's own (`INSTALL_K3S_VERSION`), which the version-skew policy
//! always allows.
//!
//! Hetzner keeps user data for the server's whole life and serves it at
//! `http://169.254.169.254/hetzner/v1/userdata` to anything on the server, pods included. So:
//! - by default every server gets a join token of its own (minted by the daemon, expiring after
//!   the provisioning timeout, revoked once the node joined), never a fleet-wide secret;
//! - `bootcmd` closes the metadata service on every boot to forwarded traffic (every pod that is
//!   not on the host network) and to local processes other than root, before K3s starts; root
//!   (cloud-init itself) still reads it;
//! - a K3s *server* token, which would let a runner node join the control plane, is refused.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::HetznerError;

/// Hetzner's limit on `user_data`: 32 KiB.
pub const USER_DATA_LIMIT: usize = 32 * 1024;

/// Where the agent's configuration goes.
pub const AGENT_CONFIG_PATH: &str = "/etc/rancher/k3s/config.yaml";

/// Where a baked image keeps the K3s install script, run again at boot with
/// `INSTALL_K3S_SKIP_DOWNLOAD=true`: it writes the agent's service with this server's flags and
/// starts it, and downloads nothing.
pub const BAKED_INSTALLER: &str = "/usr/local/lib/gitea-ci-autoscaler/k3s-install.sh";

/// How a new server gets K3s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// A base image: download the install script and install K3s, then start the agent.
    Install,
    /// A baked image (`image bake`): K3s, its images and the runner images are on it already;
    /// only the agent's config is written and the agent started.
    Baked,
}

/// Everything a new server needs to join the cluster.
#[derive(Debug, Clone)]
pub struct K3sJoin {
    /// The control plane's URL, `https://HOST:6443` (K3s accepts only https).
    pub server_url: String,
    /// A fleet-wide join token (static-token mode, `CLUSTER_SECRET`); `None` when every server
    /// brings its own ([`NewServer::join_token`](autoscaler_core::ports::NewServer)).
    pub token: Option<SecretString>,
    /// The K3s release to install, e.g. `v1.33.4+k3s1`; read from the API server's version.
    pub version: String,
    /// Extra `k3s agent` flags (`K3S_AGENT_ARGS`), e.g. `--node-taint ci=true:NoSchedule`.
    pub agent_args: Vec<String>,
    /// The install script's URL (`https://get.k3s.io`, or a mirror).
    pub install_script_url: String,
}

impl K3sJoin {
    /// Join data with the official install script; `token` is the static token, if any.
    pub fn new(
        server_url: impl Into<String>,
        token: Option<SecretString>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            server_url: server_url.into(),
            token,
            version: version.into(),
            agent_args: Vec::new(),
            install_script_url: "https://get.k3s.io".to_owned(),
        }
    }

    /// Checks what can be checked without a cluster, naming every problem.
    pub fn validate(&self) -> Result<(), HetznerError> {
        let mut problems = Vec::new();
        if !self.server_url.starts_with("https://") {
            problems.push(format!(
                "the K3s server URL `{}` must start with https:// (K3s refuses anything else)",
                self.server_url
            ));
        }
        if let Some(token) = &self.token
            && let Err(problem) = check_token(token.expose_secret())
        {
            problems.push(problem);
        }
        if !valid_k3s_version(&self.version) {
            problems.push(format!(
                "the K3s version `{}` is not a release tag like v1.33.4+k3s1",
                self.version
            ));
        }
        if !self.install_script_url.starts_with("https://") {
            problems.push(format!(
                "the install script URL `{}` must start with https://",
                self.install_script_url
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HetznerError::Config(problems.join("; ")))
        }
    }

    /// The `#cloud-config` user data for the server `name`, whose node registers with
    /// `node_labels` and joins with `own_token` (its own bootstrap token), else the static one,
    /// booting as `boot` says. Fails when there is no token, or the document would exceed
    /// Hetzner's 32 KiB.
    pub fn user_data(
        &self,
        name: &str,
        node_labels: &BTreeMap<String, String>,
        own_token: Option<&SecretString>,
        boot: Boot,
    ) -> Result<String, HetznerError> {
        self.validate()?;
        let token = match (own_token, &self.token) {
            (Some(t), _) => {
                check_token(t.expose_secret()).map_err(HetznerError::Config)?;
                t
            }
            (None, Some(t)) => t,
            (None, None) => {
                return Err(HetznerError::Config(format!(
                    "server {name} has no join token: per-server tokens are on and none was minted"
                )));
            }
        };
        let agent = AgentConfig {
            server: &self.server_url,
            token: token.expose_secret(),
            node_name: name,
            node_label: node_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        };
        let agent_yaml = serde_saphyr::to_string(&agent)
            .map_err(|e| HetznerError::Config(format!("cannot render the agent config: {e}")))?;
        let mut exec = vec!["agent".to_owned()];
        exec.extend(self.agent_args.iter().cloned());
        let doc = CloudConfig {
            bootcmd: metadata_firewall(),
            write_files: vec![WriteFile {
                path: AGENT_CONFIG_PATH,
                permissions: "0600",
                owner: "root:root",
                content: agent_yaml,
            }],
            runcmd: match boot {
                Boot::Install => vec![
                    vec![
                        "curl".to_owned(),
                        "-sfL".to_owned(),
                        "--retry".to_owned(),
                        "5".to_owned(),
                        "-o".to_owned(),
                        "/run/k3s-install.sh".to_owned(),
                        self.install_script_url.clone(),
                    ],
                    vec![
                        "env".to_owned(),
                        format!("INSTALL_K3S_VERSION={}", self.version),
                        format!("INSTALL_K3S_EXEC={}", exec.join(" ")),
                        "sh".to_owned(),
                        "/run/k3s-install.sh".to_owned(),
                    ],
                ],
                Boot::Baked => vec![vec![
                    "env".to_owned(),
                    "INSTALL_K3S_SKIP_DOWNLOAD=true".to_owned(),
                    format!("INSTALL_K3S_VERSION={}", self.version),
                    format!("INSTALL_K3S_EXEC={}", exec.join(" ")),
                    "sh".to_owned(),
                    BAKED_INSTALLER.to_owned(),
                ]],
            },
        };
        render(name, &doc)
    }
}

/// The document as `#cloud-config` text, within Hetzner's limit.
pub(crate) fn render(name: &str, doc: &CloudConfig<'_>) -> Result<String, HetznerError> {
    let body = serde_saphyr::to_string(doc)
        .map_err(|e| HetznerError::Config(format!("cannot render cloud-init: {e}")))?;
    let text = format!("#cloud-config\n{body}");
    if text.len() > USER_DATA_LIMIT {
        return Err(HetznerError::Config(format!(
            "the user data for {name} is {} bytes, over Hetzner's limit of {USER_DATA_LIMIT}",
            text.len()
        )));
    }
    Ok(text)
}

/// The metadata service's address on Hetzner Cloud.
pub const METADATA_ADDRESS: &str = "169.254.169.254/32";

/// Shell lines (fixed text, no input in them) that close the metadata service to pods and to
/// local processes other than root, each added once per boot. `raw PREROUTING` sees forwarded
/// pod traffic before any chain K3s manages; local processes pass `OUTPUT`.
pub(crate) fn metadata_firewall() -> Vec<Vec<String>> {
    [
        (
            "-t raw ",
            format!("PREROUTING -d {METADATA_ADDRESS} -j DROP"),
        ),
        (
            "",
            format!("OUTPUT -d {METADATA_ADDRESS} -m owner ! --uid-owner 0 -j REJECT"),
        ),
    ]
    .iter()
    .map(|(table, rule)| {
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("iptables {table}-C {rule} 2>/dev/null || iptables {table}-I {rule}"),
        ]
    })
    .collect()
}

/// A join token K3s agents may use: not empty, and not a server token (`K10…::server:…`), which
/// would let whoever reads it join the control plane.
pub fn check_token(token: &str) -> Result<(), String> {
    let token = token.trim();
    if token.is_empty() {
        return Err("the cluster join token is empty".to_owned());
    }
    if credentials(token).starts_with("server:") {
        return Err(
            "the cluster join token is a K3s server token (K10…::server:…), which joins servers \
             and hands out the control plane; use per-server tokens (the default), or a bootstrap \
             token from `k3s token create`"
                .to_owned(),
        );
    }
    Ok(())
}

/// What follows the CA hash of a secure token (`K10<hash>::<credentials>`), else the whole token.
fn credentials(token: &str) -> &str {
    let token = token.trim();
    token
        .strip_prefix("K10")
        .and_then(|rest| rest.split_once("::"))
        .map_or(token, |(_, c)| c)
}

pub(crate) fn valid_k3s_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let (core, suffix) = rest.split_once('+').unwrap_or((rest, ""));
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && (suffix.is_empty()
            || suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
}

#[derive(Serialize)]
struct AgentConfig<'a> {
    server: &'a str,
    token: &'a str,
    #[serde(rename = "node-name")]
    node_name: &'a str,
    #[serde(rename = "node-label")]
    node_label: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct CloudConfig<'a> {
    pub(crate) bootcmd: Vec<Vec<String>>,
    pub(crate) write_files: Vec<WriteFile<'a>>,
    pub(crate) runcmd: Vec<Vec<String>>,
}

#[derive(Serialize)]
pub(crate) struct WriteFile<'a> {
    pub(crate) path: &'a str,
    pub(crate) permissions: &'a str,
    pub(crate) owner: &'a str,
    pub(crate) content: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const TOKEN: &str = "K10abc::node:#not-a-comment: \"quoted\"";

    fn join() -> K3sJoin {
        let mut j = K3sJoin::new(
            "https://10.0.0.2:6443",
            Some(SecretString::from(TOKEN)),
            "v1.33.4+k3s1",
        );
        j.agent_args = vec!["--node-taint".into(), "ci=true:NoSchedule".into()];
        j
    }

    #[derive(Deserialize)]
    struct Doc {
        bootcmd: Vec<Vec<String>>,
        write_files: Vec<File>,
        runcmd: Vec<Vec<String>>,
    }
    #[derive(Deserialize)]
    struct File {
        path: String,
        permissions: String,
        content: String,
    }
    #[derive(Deserialize)]
    struct Agent {
        server: String,
        token: String,
        #[serde(rename = "node-name")]
        node_name: String,
        #[serde(rename = "node-label")]
        node_label: Vec<String>,
    }

    #[test]
    fn the_user_data_reads_back_to_exactly_what_was_meant() {
        let labels = BTreeMap::from([
            ("gitea-ci-autoscaler/owner".to_owned(), "ci".to_owned()),
            ("gitea-ci-autoscaler/pool".to_owned(), "linux".to_owned()),
        ]);
        let text = join()
            .user_data("ci-linux-a1b2", &labels, None, Boot::Install)
            .unwrap();
        assert!(text.starts_with("#cloud-config\n"));
        let doc: Doc = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc.write_files[0].path, AGENT_CONFIG_PATH);
        assert_eq!(doc.write_files[0].permissions, "0600");
        let agent: Agent = serde_saphyr::from_str(&doc.write_files[0].content).unwrap();
        assert_eq!(agent.token, TOKEN, "special characters survive");
        assert_eq!(agent.server, "https://10.0.0.2:6443");
        assert_eq!(agent.node_name, "ci-linux-a1b2");
        assert_eq!(
            agent.node_label,
            [
                "gitea-ci-autoscaler/owner=ci",
                "gitea-ci-autoscaler/pool=linux"
            ]
        );
        assert_eq!(
            doc.runcmd[1],
            [
                "env",
                "INSTALL_K3S_VERSION=v1.33.4+k3s1",
                "INSTALL_K3S_EXEC=agent --node-taint ci=true:NoSchedule",
                "sh",
                "/run/k3s-install.sh"
            ]
        );
        assert!(doc.runcmd[0].contains(&"https://get.k3s.io".to_owned()));
    }

    #[test]
    fn a_baked_boot_writes_the_same_config_and_only_starts_the_agent() {
        let labels = BTreeMap::from([("gitea-ci-autoscaler/pool".to_owned(), "linux".to_owned())]);
        let base = join().user_data("n", &labels, None, Boot::Install).unwrap();
        let baked = join().user_data("n", &labels, None, Boot::Baked).unwrap();
        let base: Doc = serde_saphyr::from_str(&base).unwrap();
        let doc: Doc = serde_saphyr::from_str(&baked).unwrap();
        assert_eq!(doc.write_files[0].content, base.write_files[0].content);
        assert_eq!(
            doc.bootcmd, base.bootcmd,
            "the metadata service is closed the same way"
        );
        // Nothing is downloaded: one command, the installer the bake left, told to skip it.
        assert_eq!(
            doc.runcmd,
            [[
                "env",
                "INSTALL_K3S_SKIP_DOWNLOAD=true",
                "INSTALL_K3S_VERSION=v1.33.4+k3s1",
                "INSTALL_K3S_EXEC=agent --node-taint ci=true:NoSchedule",
                "sh",
                BAKED_INSTALLER
            ]]
        );
        assert!(!baked.contains("get.k3s.io") && !baked.contains("curl"));
    }

    #[test]
    fn bad_join_data_names_every_problem() {
        let mut j = join();
        j.server_url = "http://10.0.0.2:6443".into();
        j.version = "latest".into();
        j.token = Some(SecretString::from("  "));
        let e = j
            .user_data("n", &BTreeMap::new(), None, Boot::Install)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with https://"), "{e}");
        assert!(e.contains("`latest` is not a release tag"), "{e}");
        assert!(e.contains("join token is empty"), "{e}");
    }

    #[test]
    fn a_server_token_is_refused_in_every_form() {
        for server in [
            "K10a1b2c3::server:s3cret",
            "server:s3cret",
            "  K10deadbeef::server:x  ",
        ] {
            let mut j = join();
            j.token = Some(SecretString::from(server));
            let e = j.validate().unwrap_err().to_string();
            assert!(e.contains("K3s server token"), "{server}: {e}");
            assert!(!e.contains("s3cret"), "the token is never shown: {e}");
            let own = SecretString::from(server);
            let e = join()
                .user_data("n", &BTreeMap::new(), Some(&own), Boot::Install)
                .unwrap_err()
                .to_string();
            assert!(e.contains("K3s server token"), "{e}");
        }
        for agent in [
            "K10a1b2::abcdef.0123456789abcdef",
            "abcdef.0123456789abcdef",
            "K10x::node:pw",
        ] {
            assert!(check_token(agent).is_ok(), "{agent}");
        }
    }

    #[test]
    fn a_servers_own_token_goes_in_and_without_any_the_create_is_refused() {
        let mut j = join();
        j.token = None;
        let own = SecretString::from("K10ab::abcdef.0123456789abcdef");
        let text = j
            .user_data("n", &BTreeMap::new(), Some(&own), Boot::Install)
            .unwrap();
        let doc: Doc = serde_saphyr::from_str(&text).unwrap();
        let agent: Agent = serde_saphyr::from_str(&doc.write_files[0].content).unwrap();
        assert_eq!(agent.token, "K10ab::abcdef.0123456789abcdef");
        let e = j
            .user_data("n", &BTreeMap::new(), None, Boot::Install)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no join token"), "{e}");
    }

    #[test]
    fn the_metadata_service_is_closed_to_pods_and_non_root_on_every_boot() {
        let text = join()
            .user_data("n", &BTreeMap::new(), None, Boot::Install)
            .unwrap();
        let doc: Doc = serde_saphyr::from_str(&text).unwrap();
        let lines: Vec<&str> = doc.bootcmd.iter().map(|c| c[2].as_str()).collect();
        assert!(doc.bootcmd.iter().all(|c| c[0] == "sh" && c[1] == "-c"));
        assert_eq!(
            lines,
            [
                "iptables -t raw -C PREROUTING -d 169.254.169.254/32 -j DROP 2>/dev/null || \
                 iptables -t raw -I PREROUTING -d 169.254.169.254/32 -j DROP",
                "iptables -C OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j REJECT \
                 2>/dev/null || iptables -I OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j REJECT",
            ]
        );
    }

    #[test]
    fn user_data_over_32_kib_is_refused() {
        let mut j = join();
        j.agent_args = vec!["--node-label=x=".to_owned() + &"y".repeat(USER_DATA_LIMIT)];
        let e = j
            .user_data("n", &BTreeMap::new(), None, Boot::Install)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over Hetzner's limit of 32768"), "{e}");
    }

    #[test]
    fn the_join_token_stays_out_of_debug_output() {
        assert!(!format!("{:?}", join()).contains("K10abc"));
    }

    #[test]
    fn k3s_versions_are_release_tags() {
        for ok in ["v1.33.4+k3s1", "v1.32.3", "v1.30.4+k3s1.rc1"] {
            assert!(valid_k3s_version(ok), "{ok}");
        }
        for bad in [
            "1.33.4+k3s1",
            "v1.33",
            "latest",
            "v1.33.x+k3s1",
            "v1.33.4+k3s 1",
        ] {
            assert!(!valid_k3s_version(bad), "{bad}");
        }
    }
}
