//! The ports: what the daemon asks of Gitea, Hetzner Cloud and Kubernetes.
//!
//! The decision itself never calls these; the daemon does, to read what the pure
//! [`shell`](crate::shell) builds a [`Snapshot`](crate::Snapshot) from, and to carry out a
//! [`Plan`](crate::Plan), each action's [`Effect`](crate::Effect) going to the port it names.
//! They live here, next to the types they speak, so that every provider crate implements the
//! same contract and the daemon can be tested against mocks (feature `mocks`, via mockall)
//! without any network.
//!
//! ```text
//!            ┌──── Forge (autoscaler-gitea) ────┐
//!   daemon ──┼──── Cloud (autoscaler-hetzner) ──┼──▶ Reading ──▶ Shell::decide ──▶ Plan
//!            └──── Cluster (autoscaler-k3s) ────┘                    ▲               │
//!                        ▲                                           └── outcomes ───┤
//!                        └──────────────── effects ──────────────────────────────────┘
//! ```
//!
//! Listing methods return `Ok(Source::Partial)` when some pages were read and others failed,
//! and `Err` when nothing could be read; the shell turns an `Err` into `Source::Unavailable`.
//! No method retries for longer than one call: the next tick is the retry, so a stuck service
//! can never stall the loop.

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::image::Image;
use crate::plan::{RunnerId, ServerId, ServerSpec};
use crate::snapshot::{ApiBudget, ForgeCapabilities, Job, Node, Runner, RunnerPod, Server};
use crate::source::Source;

/// Which external service a [`ProviderError`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Gitea's API.
    Gitea,
    /// Hetzner Cloud's API.
    Hetzner,
    /// The Kubernetes API server of the K3s cluster.
    Kubernetes,
}

impl Service {
    /// Every service.
    pub const ALL: [Self; 3] = [Self::Gitea, Self::Hetzner, Self::Kubernetes];

    /// The lowercase name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gitea => "gitea",
            Self::Hetzner => "hetzner",
            Self::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure a provider reported: decides whether the shell retries, backs off,
/// tries another server type, or alerts a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The network or the service failed in a way that may pass (5xx, connection reset).
    Transient,
    /// The call did not answer in time.
    Timeout,
    /// The service's rate limit, or the client's own request budget, refused the call.
    RateLimited,
    /// No capacity for this server type in this location: try another one.
    Capacity,
    /// An account limit (Hetzner's `resource_limit_exceeded`): creating more cannot succeed.
    Quota,
    /// Something is in the way for now: a lock, a concurrent change, a PodDisruptionBudget.
    Conflict,
    /// The object does not exist.
    NotFound,
    /// The credentials were refused or lack a permission: a person must act.
    Auth,
    /// The request or the configuration is wrong: retrying the same call cannot help.
    Invalid,
    /// The service is too old for this call.
    Unsupported,
    /// The service answered something that does not follow its contract.
    BadResponse,
}

impl ErrorKind {
    /// Every kind, for metrics that show a zero for each before the first error.
    pub const ALL: [Self; 11] = [
        Self::Transient,
        Self::Timeout,
        Self::RateLimited,
        Self::Capacity,
        Self::Quota,
        Self::Conflict,
        Self::NotFound,
        Self::Auth,
        Self::Invalid,
        Self::Unsupported,
        Self::BadResponse,
    ];

    /// The lowercase name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Capacity => "capacity",
            Self::Quota => "quota",
            Self::Conflict => "conflict",
            Self::NotFound => "not_found",
            Self::Auth => "auth",
            Self::Invalid => "invalid",
            Self::Unsupported => "unsupported",
            Self::BadResponse => "bad_response",
        }
    }

    /// Whether the same call may succeed on a later tick without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Transient | Self::Timeout | Self::RateLimited | Self::Capacity | Self::Conflict
        )
    }
}

/// A failed call to a provider, as the daemon sees it: which service, what kind, and a message
/// for people. Provider crates convert their own error enums into it at the port boundary; the
/// message never holds a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ProviderError {
    /// The service.
    pub service: Service,
    /// The kind.
    pub kind: ErrorKind,
    /// What happened, naming the call.
    pub message: String,
}

impl ProviderError {
    /// A new error.
    pub fn new(service: Service, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            service,
            kind,
            message: message.into(),
        }
    }
}

/// An error and its causes on one line, `outer: inner: root` (a cause whose text the line
/// already holds is skipped), so the root cause of a failed call ("Connection refused", a DNS
/// failure, a certificate problem) reaches the operator instead of only "error sending request".
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// A join credential minted for one server: a Kubernetes bootstrap token that expires shortly
/// after the server's provisioning timeout and is revoked once its node has joined.
#[derive(Debug, Clone)]
pub struct JoinToken {
    /// The public half (`[a-z0-9]{6}`), written on the server as its `join-token` label so the
    /// token can be revoked later without reading any Secret.
    pub id: String,
    /// The whole agent token, `K10<CA hash>::<id>.<secret>`: what goes into the user data.
    pub token: secrecy::SecretString,
    /// When the cluster stops accepting it.
    pub expires: Timestamp,
}

impl PartialEq for JoinToken {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.id == other.id
            && self.expires == other.expires
            && self.token.expose_secret() == other.token.expose_secret()
    }
}

impl Eq for JoinToken {}

/// A server to create: the plan's [`ServerSpec`] and, in per-server mode, its own join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    /// What the plan asked for.
    pub spec: ServerSpec,
    /// This server's own join credential; `None` in static-token mode, where the cloud adapter
    /// uses the configured one.
    pub join_token: Option<JoinToken>,
}

impl NewServer {
    /// The server `spec` describes, with no join token of its own.
    pub fn new(spec: ServerSpec) -> Self {
        Self {
            spec,
            join_token: None,
        }
    }
}

/// How far a drain got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainProgress {
    /// Nothing evictable is left on the node, and the node carries the `drained` annotation.
    Drained,
    /// Pods are still on the node. The next tick calls drain again.
    Pending {
        /// Evictions accepted in this call.
        evicted: u32,
        /// Pods whose eviction a PodDisruptionBudget refused (HTTP 429), by `namespace/name`.
        blocked: Vec<String>,
        /// Pods already terminating, waiting for their grace period.
        terminating: u32,
    },
}

/// An hourly price of one server type in one location.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Server type name.
    pub server_type: String,
    /// Location name.
    pub location: String,
    /// Net € per started hour, as Hetzner's decimal string read exactly enough for cost figures.
    pub hourly_net: f64,
    /// Gross € per started hour (VAT included).
    pub hourly_gross: f64,
}

/// Gitea: Actions jobs and runners.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Forge: Send + Sync {
    /// What this Gitea can do (read from its version once and cached by the implementation).
    async fn capabilities(&self) -> Result<ForgeCapabilities, ProviderError>;
    /// Runnable (`queued`) and running (`in_progress`) jobs, every page.
    async fn jobs(&self) -> Result<Source<Job>, ProviderError>;
    /// Registered runners, every page.
    async fn runners(&self) -> Result<Source<Runner>, ProviderError>;
    /// Disable (`true`) or enable (`false`) a runner.
    async fn set_runner_disabled(
        &self,
        runner: RunnerId,
        disabled: bool,
    ) -> Result<(), ProviderError>;
    /// Delete a runner; one that is already gone counts as deleted.
    async fn delete_runner(&self, runner: RunnerId) -> Result<(), ProviderError>;
}

/// Hetzner Cloud: this installation's servers.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Servers carrying an ownership label (this installation's or another's: the core keeps
    /// its own by the label's value), every page.
    async fn servers(&self) -> Result<Source<Server>, ProviderError>;
    /// Create a server that joins the cluster as a runner node.
    async fn create_server(&self, server: &NewServer) -> Result<Server, ProviderError>;
    /// Set (`Some`) or remove (`None`) one label of a server and keep the others. Hetzner
    /// replaces the whole set on every update, so the adapter merges the change into the labels
    /// it last listed for the server, and refuses (`Invalid`) a server it has not listed: it
    /// never writes a set it does not know, which would take the ownership label away.
    async fn label_server(
        &self,
        server: ServerId,
        key: &str,
        value: Option<String>,
    ) -> Result<(), ProviderError>;
    /// Delete a server; one that is already gone counts as deleted.
    async fn delete_server(&self, server: ServerId) -> Result<(), ProviderError>;
    /// Hourly prices of every server type in every location.
    async fn prices(&self) -> Result<Vec<Price>, ProviderError>;
    /// The project's snapshot images, every page: what a pool's `baked_image` is chosen from.
    /// Read only when [`Shell::wants_images`](crate::shell::Shell::wants_images) asks.
    async fn images(&self) -> Result<Source<Image>, ProviderError>;
    /// What is left of the request budget, as the last response reported it.
    fn budget(&self) -> Option<ApiBudget>;
}

/// Kubernetes (K3s): runner nodes and runner pods.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Nodes carrying an ownership label (this installation's or another's: the core keeps its
    /// own by the label's value).
    async fn nodes(&self) -> Result<Source<Node>, ProviderError>;
    /// Runner pods in the runner namespace.
    async fn runner_pods(&self) -> Result<Source<RunnerPod>, ProviderError>;
    /// Set (`Some`) or remove (`None`) one annotation on a node.
    async fn annotate_node(
        &self,
        node: &str,
        key: &str,
        value: Option<String>,
    ) -> Result<(), ProviderError>;
    /// Mark the node unschedulable.
    async fn cordon(&self, node: &str) -> Result<(), ProviderError>;
    /// Evict what can be evicted; annotate the node `drained` at `now` once nothing is left.
    async fn drain(&self, node: &str, now: Timestamp) -> Result<DrainProgress, ProviderError>;
    /// Delete the node object; one that is already gone counts as deleted.
    async fn delete_node(&self, node: &str) -> Result<(), ProviderError>;
    /// The API server's version, e.g. `v1.33.4+k3s1`: agents install exactly this one.
    async fn server_version(&self) -> Result<String, ProviderError>;
    /// The control plane's address as agents join it, `https://IP:PORT`, read from the
    /// `kubernetes` service's endpoints (the addresses the API servers advertise).
    async fn control_plane_url(&self) -> Result<String, ProviderError>;
    /// This cluster's identity: the `kube-system` namespace's UID, which no other cluster
    /// shares. Written on every server, it tells two installations of one name apart.
    async fn identity(&self) -> Result<String, ProviderError>;
    /// Mint a bootstrap token for the server `server` that expires at `expires`, described as
    /// this installation's.
    async fn mint_join_token(
        &self,
        server: &str,
        expires: Timestamp,
    ) -> Result<JoinToken, ProviderError>;
    /// Revoke the bootstrap token `id`; one that is already gone counts as revoked.
    async fn revoke_join_token(&self, id: &str) -> Result<(), ProviderError>;
}

/// Leader election: only the holder of the lease changes anything.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Take the lease when it is free or expired, renew it when held; `Ok(true)` when this
    /// replica leads until `now` plus the lease duration.
    async fn acquire_or_renew(&self, now: Timestamp) -> Result<bool, ProviderError>;
    /// Give the lease up so another replica can lead at once (on shutdown).
    async fn release(&self) -> Result<(), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::with_causes;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request for url (http://127.0.0.1:2/)")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_root_cause_is_on_the_line_once() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        )));
        assert_eq!(
            with_causes(&e),
            "error sending request for url (http://127.0.0.1:2/): client error (Connect): \
             Connection refused (os error 111)"
        );
    }
}
