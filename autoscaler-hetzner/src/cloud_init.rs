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
//! Hetzner keeps user data and serves it to the server's metadata endpoint: the join token is
//! readable from inside the server. Use an agent token (`k3s token create`), not the server
//! token, so a runner node cannot join as a control-plane node.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::HetznerError;

/// Hetzner's limit on `user_data`: 32 KiB.
pub const USER_DATA_LIMIT: usize = 32 * 1024;

/// Where the agent's configuration goes.
pub const AGENT_CONFIG_PATH: &str = "/etc/rancher/k3s/config.yaml";

/// Everything a new server needs to join the cluster.
#[derive(Debug, Clone)]
pub struct K3sJoin {
    /// The control plane's URL, `https://HOST:6443` (K3s accepts only https).
    pub server_url: String,
    /// The cluster's join token (`K3S_TOKEN`).
    pub token: SecretString,
    /// The K3s release to install, e.g. `v1.33.4+k3s1`; read from the API server's version.
    pub version: String,
    /// Extra `k3s agent` flags (`K3S_AGENT_ARGS`), e.g. `--node-taint ci=true:NoSchedule`.
    pub agent_args: Vec<String>,
    /// The install script's URL (`https://get.k3s.io`, or a mirror).
    pub install_script_url: String,
}

impl K3sJoin {
    /// Join data with the official install script.
    pub fn new(
        server_url: impl Into<String>,
        token: SecretString,
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
        if self.token.expose_secret().trim().is_empty() {
            problems.push("the cluster join token is empty".to_owned());
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
    /// `node_labels`. Fails when it would exceed Hetzner's 32 KiB.
    pub fn user_data(
        &self,
        name: &str,
        node_labels: &BTreeMap<String, String>,
    ) -> Result<String, HetznerError> {
        self.validate()?;
        let agent = AgentConfig {
            server: &self.server_url,
            token: self.token.expose_secret(),
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
            write_files: vec![WriteFile {
                path: AGENT_CONFIG_PATH,
                permissions: "0600",
                owner: "root:root",
                content: agent_yaml,
            }],
            runcmd: vec![
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
        };
        let body = serde_saphyr::to_string(&doc)
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
}

fn valid_k3s_version(v: &str) -> bool {
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
struct CloudConfig<'a> {
    write_files: Vec<WriteFile<'a>>,
    runcmd: Vec<Vec<String>>,
}

#[derive(Serialize)]
struct WriteFile<'a> {
    path: &'a str,
    permissions: &'a str,
    owner: &'a str,
    content: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const TOKEN: &str = "K10abc::server:#not-a-comment: \"quoted\"";

    fn join() -> K3sJoin {
        let mut j = K3sJoin::new(
            "https://10.0.0.2:6443",
            SecretString::from(TOKEN),
            "v1.33.4+k3s1",
        );
        j.agent_args = vec!["--node-taint".into(), "ci=true:NoSchedule".into()];
        j
    }

    #[derive(Deserialize)]
    struct Doc {
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
        let text = join().user_data("ci-linux-a1b2", &labels).unwrap();
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
    fn bad_join_data_names_every_problem() {
        let mut j = join();
        j.server_url = "http://10.0.0.2:6443".into();
        j.version = "latest".into();
        j.token = SecretString::from("  ");
        let e = j.user_data("n", &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("must start with https://"), "{e}");
        assert!(e.contains("`latest` is not a release tag"), "{e}");
        assert!(e.contains("join token is empty"), "{e}");
    }

    #[test]
    fn user_data_over_32_kib_is_refused() {
        let mut j = join();
        j.agent_args = vec!["--node-label=x=".to_owned() + &"y".repeat(USER_DATA_LIMIT)];
        let e = j.user_data("n", &BTreeMap::new()).unwrap_err().to_string();
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
