//! What a bake makes, its content hash, and the user data of its temporary server.

use std::collections::BTreeMap;

use autoscaler_core::keys;
use sha2::{Digest, Sha256};

use crate::HetznerError;
use crate::cloud_init::{self, BAKED_INSTALLER, CloudConfig, WriteFile};

/// The K3s releases' download base, where each release's image archive is.
pub const K3S_RELEASES: &str = "https://github.com/k3s-io/k3s/releases/download";

/// Where the bake script is written on the temporary server.
const SCRIPT_PATH: &str = "/run/gitea-ci-autoscaler-bake.sh";

/// Everything that decides what a baked image holds. Two bakes of the same recipe make the
/// same image, so the recipe's hash names it: a bake whose image exists has nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The installation (the ownership label).
    pub installation: String,
    /// The pool the image is for.
    pub pool: String,
    /// The server type the temporary server is (the pool's first): a snapshot boots only on
    /// types of its architecture with at least its disk.
    pub server_type: String,
    /// `x86` or `arm`, the server type's architecture.
    pub architecture: String,
    /// The location of the temporary server.
    pub location: String,
    /// The base image it starts from.
    pub base_image: String,
    /// The K3s release installed, e.g. `v1.33.4+k3s1`: the cluster's.
    pub k3s_version: String,
    /// The install script's URL (`https://get.k3s.io` or a mirror).
    pub install_script_url: String,
    /// The release download base (see [`K3S_RELEASES`]).
    pub releases_url: String,
    /// Container images placed in the agent's images directory, imported at its start.
    pub runner_images: Vec<String>,
}

impl Recipe {
    /// Checks what would make the bake fail on the server, naming every problem.
    pub fn validate(&self) -> Result<(), HetznerError> {
        let mut problems = Vec::new();
        if !cloud_init::valid_k3s_version(&self.k3s_version) {
            problems.push(format!(
                "the K3s version `{}` is not a release tag like v1.33.4+k3s1",
                self.k3s_version
            ));
        }
        for (what, url) in [
            ("install script URL", &self.install_script_url),
            ("K3s releases URL", &self.releases_url),
        ] {
            if !url.starts_with("https://") || url.chars().any(char::is_whitespace) {
                problems.push(format!("the {what} `{url}` must be an https:// URL"));
            }
        }
        if !matches!(self.architecture.as_str(), "x86" | "arm") {
            problems.push(format!(
                "server type {} has architecture `{}`; K3s publishes images for x86 and arm",
                self.server_type, self.architecture
            ));
        }
        for image in &self.runner_images {
            if image.is_empty()
                || !image.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'@')
                })
            {
                problems.push(format!("`{image}` is not a container image reference"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HetznerError::Config(problems.join("; ")))
        }
    }

    /// The recipe's content hash: 16 hex digits of SHA-256 over every field that changes what
    /// the image holds (not the location, which only decides where it is made).
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            "gitea-ci-autoscaler bake v1",
            &self.pool,
            &self.architecture,
            &self.base_image,
            &self.k3s_version,
            &self.install_script_url,
            &self.releases_url,
            SCRIPT,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for image in &self.runner_images {
            h.update(image.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..8])
    }

    /// The temporary server's name: `<installation>-bake-<hash>`, a valid hostname.
    pub fn server_name(&self) -> String {
        let mut name = format!("{}-bake-{}", self.installation, self.hash());
        name.truncate(63);
        name
    }

    /// The labels of the temporary server and of the image: ownership, pool, K3s version and
    /// the content hash.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels =
            autoscaler_core::baked_image_labels(&self.installation, &self.pool, &self.k3s_version);
        labels.insert(keys::BAKE.to_owned(), self.hash());
        labels
    }

    /// The image archive of K3s's own images for the architecture.
    pub fn airgap_url(&self) -> String {
        format!(
            "{}/{}/k3s-airgap-images-{}.tar.zst",
            self.releases_url.trim_end_matches('/'),
            self.k3s_version.replace('+', "%2B"),
            self.arch()
        )
    }

    fn arch(&self) -> &'static str {
        if self.architecture == "arm" {
            "arm64"
        } else {
            "amd64"
        }
    }

    /// The temporary server's `#cloud-config`: the bake script, given its parameters through
    /// the environment (the script is fixed text; nothing is spliced into it).
    pub fn user_data(&self) -> Result<String, HetznerError> {
        self.validate()?;
        let doc = CloudConfig {
            bootcmd: cloud_init::metadata_firewall(),
            write_files: vec![WriteFile {
                path: SCRIPT_PATH,
                permissions: "0700",
                owner: "root:root",
                content: SCRIPT.to_owned(),
            }],
            runcmd: vec![vec![
                "env".to_owned(),
                format!("INSTALL_K3S_VERSION={}", self.k3s_version),
                format!("BAKE_INSTALL_SCRIPT_URL={}", self.install_script_url),
                format!("BAKE_AIRGAP_URL={}", self.airgap_url()),
                format!("BAKE_ARCH={}", self.arch()),
                format!("BAKE_RUNNER_IMAGES={}", self.runner_images.join(" ")),
                format!("BAKE_INSTALLER={BAKED_INSTALLER}"),
                "sh".to_owned(),
                SCRIPT_PATH.to_owned(),
            ]],
        };
        cloud_init::render(&self.server_name(), &doc)
    }
}

/// The bake script. It stops at the first failure (`set -eu`) and then never powers off, so a
/// failed bake is never snapshotted: `image bake` waits for the power-off until its timeout and
/// deletes the server. The last steps remove what is particular to this machine, so every
/// server booted from the image is a new machine to cloud-init, systemd and SSH.
const SCRIPT: &str = concat!(
    "#!/bin/sh\n",
    "# gitea-ci-autoscaler bake: K3s installed but not started, images preloaded, then cleaned\n",
    "# and powered off for the snapshot.\n",
    "set -eu\n",
    "dir=$(dirname \"$BAKE_INSTALLER\")\n",
    "images=/var/lib/rancher/k3s/agent/images\n",
    "mkdir -p \"$dir\" \"$images\"\n",
    "curl -sfL --retry 5 -o \"$BAKE_INSTALLER\" \"$BAKE_INSTALL_SCRIPT_URL\"\n",
    "INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_EXEC=agent \\\n",
    "  sh \"$BAKE_INSTALLER\"\n",
    "curl -sfL --retry 5 -o \"$images/k3s-airgap-images-$BAKE_ARCH.tar.zst\" \"$BAKE_AIRGAP_URL\"\n",
    "if [ -n \"$BAKE_RUNNER_IMAGES\" ]; then\n",
    "  export DEBIAN_FRONTEND=noninteractive\n",
    "  apt-get update -q\n",
    "  apt-get install -y -q skopeo\n",
    "  i=0\n",
    "  for ref in $BAKE_RUNNER_IMAGES; do\n",
    "    i=$((i + 1))\n",
    "    skopeo copy --retry-times 3 \"docker://$ref\" \"docker-archive:$images/runner-$i.tar:$ref\"\n",
    "  done\n",
    "  apt-get purge -y -q skopeo\n",
    "  apt-get autoremove -y -q\n",
    "  apt-get clean\n",
    "fi\n",
    "echo \"$INSTALL_K3S_VERSION\" > \"$dir/baked\"\n",
    "rm -f /etc/rancher/k3s/config.yaml /etc/rancher/node/password /etc/ssh/ssh_host_*\n",
    "cloud-init clean --logs --machine-id --seed\n",
    "sync\n",
    "poweroff\n",
);

/// A recipe for tests.
#[cfg(test)]
pub(crate) fn example() -> Recipe {
    Recipe {
        installation: "ci".into(),
        pool: "linux".into(),
        server_type: "cx33".into(),
        architecture: "x86".into(),
        location: "nbg1".into(),
        base_image: "ubuntu-24.04".into(),
        k3s_version: "v1.33.4+k3s1".into(),
        install_script_url: "https://get.k3s.io".into(),
        releases_url: K3S_RELEASES.into(),
        runner_images: vec![
            "docker.io/gitea/act_runner:0.2.12".into(),
            "docker.io/library/docker:28-dind".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn recipe() -> Recipe {
        example()
    }

    #[derive(Deserialize)]
    struct Doc {
        write_files: Vec<File>,
        runcmd: Vec<Vec<String>>,
        bootcmd: Vec<Vec<String>>,
    }
    #[derive(Deserialize)]
    struct File {
        path: String,
        content: String,
    }

    #[test]
    fn the_bake_user_data_passes_everything_through_the_environment() {
        let text = recipe().user_data().unwrap();
        let doc: Doc =
            serde_saphyr::from_str(text.strip_prefix("#cloud-config\n").unwrap()).unwrap();
        assert_eq!(doc.write_files[0].path, SCRIPT_PATH);
        assert_eq!(doc.write_files[0].content, SCRIPT);
        assert_eq!(
            doc.bootcmd.len(),
            2,
            "the metadata service is closed here too"
        );
        let env = &doc.runcmd[0];
        assert_eq!(env[0], "env");
        assert!(env.contains(&"INSTALL_K3S_VERSION=v1.33.4+k3s1".to_owned()));
        assert!(env.contains(
            &"BAKE_AIRGAP_URL=https://github.com/k3s-io/k3s/releases/download/v1.33.4%2Bk3s1/k3s-airgap-images-amd64.tar.zst"
                .to_owned()
        ));
        assert!(env.contains(
            &"BAKE_RUNNER_IMAGES=docker.io/gitea/act_runner:0.2.12 docker.io/library/docker:28-dind"
                .to_owned()
        ));
        assert_eq!(
            env[env.len() - 2..],
            ["sh".to_owned(), SCRIPT_PATH.to_owned()]
        );
        // Powered off only at the very end, after every step succeeded.
        let lines: Vec<&str> = SCRIPT.lines().collect();
        assert_eq!(lines[3], "set -eu");
        assert_eq!(lines.last(), Some(&"poweroff"));
        assert!(SCRIPT.contains("INSTALL_K3S_SKIP_START=true"));
        assert!(SCRIPT.contains("cloud-init clean --logs --machine-id --seed"));
        assert!(SCRIPT.contains("/etc/ssh/ssh_host_*"));
        // The marker a person, the daemon's reader and the fake tell a bake's server by.
        assert!(SCRIPT.contains(crate::bake::BAKE_MARKER));
    }

    #[test]
    fn the_hash_follows_the_content_and_not_the_place() {
        let a = recipe();
        let mut b = recipe();
        b.location = "fsn1".into();
        assert_eq!(a.hash(), b.hash());
        for change in [
            |r: &mut Recipe| r.k3s_version = "v1.33.5+k3s1".into(),
            |r: &mut Recipe| r.runner_images.pop().map(drop).unwrap_or(()),
            |r: &mut Recipe| r.base_image = "ubuntu-22.04".into(),
            |r: &mut Recipe| r.architecture = "arm".into(),
            |r: &mut Recipe| r.pool = "big".into(),
        ] {
            let mut c = recipe();
            change(&mut c);
            assert_ne!(a.hash(), c.hash());
        }
        assert_eq!(a.hash().len(), 16);
        assert_eq!(a.server_name(), format!("ci-bake-{}", a.hash()));
        let labels = a.labels();
        assert_eq!(labels[keys::K3S_VERSION], "v1.33.4_k3s1");
        assert_eq!(labels[keys::BAKE], a.hash());
    }

    #[test]
    fn a_bad_recipe_names_every_problem() {
        let mut r = recipe();
        r.k3s_version = "latest".into();
        r.architecture = "riscv".into();
        r.runner_images = vec!["a b; rm -rf /".into()];
        r.releases_url = "http://mirror".into();
        let e = r.user_data().unwrap_err().to_string();
        for part in ["`latest`", "riscv", "`a b; rm -rf /`", "`http://mirror`"] {
            assert!(e.contains(part), "{part}: {e}");
        }
    }
}
