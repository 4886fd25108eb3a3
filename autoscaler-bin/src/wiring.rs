//! Building the real providers from the settings: one HTTP client for Gitea and Hetzner (rustls
//! with ring, the provider kube uses too), kube from the in-cluster service account or
//! `KUBECONFIG`, and the join data read from the cluster unless configured.

use std::sync::Arc;

use autoscaler_gitea::{GiteaClient, GiteaConfig};
use autoscaler_hetzner::{HetznerClient, HetznerConfig, K3sJoin};
use autoscaler_k3s::{ClusterConfig, K3sCluster, LeaseLock};

use crate::daemon::Providers;
use crate::failure::Failure;
use crate::settings::Settings;

/// The providers, and the lease when leader election is on.
pub(crate) struct Wired {
    pub(crate) providers: Providers,
    /// The HTTP client the providers share (for the Pushgateway too).
    pub(crate) http: reqwest::Client,
    pub(crate) lease: Option<LeaseLock>,
    /// What `plan` could not read while connecting (the K3s version, the server URL): each a
    /// problem of the preflight. Always empty for `run`, which retries instead.
    pub(crate) problems: Vec<String>,
}

/// What the connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The daemon: everything a create needs must be there, or connecting fails (and is retried).
    Run,
    /// `plan`: read-only, so what only creates need (the join data, the project's SSH keys) is not
    /// asked for or, when it cannot be read, noted as a problem while the rest is still read.
    Plan,
}

/// Installs the process's one rustls crypto provider. Idempotent.
pub(crate) fn install_crypto() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The Hetzner client of the settings, new servers joining with `join`.
pub(crate) fn hetzner_client(
    s: &Settings,
    http: &reqwest::Client,
    join: K3sJoin,
) -> Result<HetznerClient, Failure> {
    let mut config = HetznerConfig::new(
        s.hetzner.token.value.clone(),
        s.core.installation.clone(),
        join,
    );
    config.settings = s.hetzner.settings.clone();
    config.timeout = s.daemon.call_timeout;
    HetznerClient::new(http.clone(), config).map_err(|e| Failure::Input(e.to_string()))
}

/// Connects to the three services.
pub(crate) async fn connect(s: &Settings, purpose: Purpose) -> Result<Wired, Failure> {
    let mut problems = Vec::new();
    install_crypto();
    let http = reqwest::Client::builder()
        .user_agent(concat!("gitea-ci-autoscaler/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Service(format!("cannot build the HTTP client: {e}")))?;
    let mut cluster_config = ClusterConfig::new(s.core.installation.clone());
    cluster_config.runner_namespace = s.k3s.runner_namespace.clone();
    cluster_config.runner_selector = s.k3s.runner_selector.clone();
    cluster_config.timeout = s.daemon.call_timeout;
    let cluster = K3sCluster::connect(cluster_config)
        .await
        .map_err(|e| Failure::Service(format!("Kubernetes: {e}")))?;
    // Only a create uses these; `plan` notes what it could not read and reads the rest.
    let mut needed = |what: Result<String, String>, placeholder: &str| match what {
        Ok(v) => Ok(v),
        Err(problem) if purpose == Purpose::Plan => {
            problems.push(problem);
            Ok(placeholder.to_owned())
        }
        Err(problem) => Err(Failure::Service(problem)),
    };
    let read = match &s.k3s.version {
        Some(v) => Ok(v.clone()),
        None => cluster.version().await.map_err(|e| {
            format!("cannot read the K3s version (or set K3S_VERSION): Kubernetes: {e}")
        }),
    };
    // What a baked image must have been baked for; unknown when it could not be read.
    let k3s_version = read.as_ref().ok().cloned();
    // The placeholder is never used: `plan` creates nothing. Well-formed, so the client can be
    // built.
    let version = needed(read, "v0.0.0+k3s0")?;
    let server_url = match &s.k3s.server_url {
        Some(u) => u.clone(),
        None => needed(
            cluster.control_plane().await.map_err(|e| {
                format!("cannot find the K3s server URL (or set K3S_URL): Kubernetes: {e}")
            }),
            "https://unknown:6443",
        )?,
    };
    if s.k3s.join.static_token().is_none()
        && let Err(e) = cluster.cluster_ca_hash().await
    {
        // Fail-static: the daemon still tears down and reports; only creates fail, each
        // naming the cause, until the rights are there.
        tracing::warn!(
            error = %e,
            "per-server join tokens (JOIN_TOKENS=per-server) need the cluster CA and the right to \
             create bootstrap tokens: apply deploy/join-tokens.yaml (or the chart's), or set \
             JOIN_TOKENS=static with CLUSTER_SECRET; until then no server can be created"
        );
    }
    let static_token = s.k3s.join.static_token().map(|t| t.value.clone());
    let mut join = K3sJoin::new(server_url, static_token, version);
    join.agent_args = s.k3s.agent_args.clone();
    let mut cloud = hetzner_client(s, &http, join)?;
    if s.hetzner.settings.ssh_keys.is_empty() && purpose == Purpose::Run {
        // As the seed did: every SSH key of the project goes on new servers.
        let keys = cloud
            .ssh_key_names()
            .await
            .map_err(|e| Failure::Service(format!("cannot list the project's SSH keys: {e}")))?;
        if keys.is_empty() {
            tracing::warn!(
                "the project has no SSH key: Hetzner mails a root password for every new server"
            );
        }
        cloud.set_ssh_keys(keys);
    }
    let mut gitea = GiteaConfig::new(
        s.gitea.url.clone(),
        s.gitea.token.value.clone(),
        s.gitea.scope.clone(),
    );
    gitea.timeout = s.daemon.call_timeout;
    let forge = GiteaClient::new(http.clone(), gitea).map_err(|e| Failure::Input(e.to_string()))?;
    let lease = s.daemon.leader_election.then(|| {
        LeaseLock::new(
            cluster.client(),
            &s.daemon.namespace,
            s.daemon.lease_name.clone(),
            s.daemon.identity.clone(),
            s.daemon.poll_interval * 3 + std::time::Duration::from_secs(10),
        )
    });
    Ok(Wired {
        http,
        providers: Providers {
            forge: Arc::new(forge),
            cloud: Arc::new(cloud),
            cluster: Arc::new(cluster),
            mint_join_tokens: s.k3s.join.static_token().is_none(),
            k3s_version,
        },
        lease,
        problems,
    })
}
