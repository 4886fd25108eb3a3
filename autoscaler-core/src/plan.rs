//! What the decision returns: actions with reasons, and the state of every node and pool.
//!
//! Each [`Action`] is one idempotent call to one service, carrying only the data that step still
//! has: once the node is deleted, [`Action::DeleteServer`] knows only the server. The JSON form is
//! versioned by [`PLAN_VERSION`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::keys;

/// The version of the plan's JSON form.
pub const PLAN_VERSION: u32 = 1;

/// The decision for one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// See [`PLAN_VERSION`].
    pub version: u32,
    /// The snapshot's instant.
    pub now: Timestamp,
    /// What to do, in an order that is safe to carry out concurrently per target.
    pub actions: Vec<PlannedAction>,
    /// Every managed machine, by name.
    pub nodes: Vec<NodeReport>,
    /// Every configured pool, plus one per unknown pool label found on owned servers.
    pub pools: Vec<PoolReport>,
    /// Waiting jobs that no pool can serve; they never create servers.
    pub unservable: Vec<UnservableJob>,
    /// Things a person should know: missing data, held actions, configuration limits reached.
    pub warnings: Vec<Warning>,
    /// The plan wants another decision at this instant, sooner than a shell's regular poll
    /// may come: a teardown moves one step per decision (continue at once), and a mark that a
    /// later snapshot must confirm is due after the confirmation delay. A shell decides again at
    /// the earlier of this and its poll, and only when every action went through: a failed call
    /// waits for the next poll. Absent when nothing is due early (also in plans from before this
    /// field, which stay version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_decision: Option<Timestamp>,
    /// A deadline ahead, whatever became of the actions: the earliest instant an idle node's
    /// teardown may begin (its window opens, its idle minimum is reached), so the last call on
    /// a paid period is made on time even when the poll is slower than the window is wide.
    /// Always after `now`. Absent when nothing is due (and in plans from before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<Timestamp>,
}

impl Plan {
    /// The actions alone, without reasons.
    pub fn action_list(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().map(|a| &a.action)
    }

    /// Whether the plan holds a warning of this kind, e.g. for alerting.
    pub fn has_warning(&self, kind: WarningKind) -> bool {
        self.warnings.iter().any(|w| w.kind == kind)
    }

    /// Whether the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// A reason a person can read. Most reasons are fixed sentences and cost no allocation.
pub type Reason = Cow<'static, str>;

/// An action with the reason a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// One call to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create a Hetzner server that joins the cluster as a node of its pool.
    CreateServer(ServerSpec),
    /// Label the server `cluster=<id>`: it carried none, and its node is in this cluster.
    RecordCluster {
        /// The server.
        server_id: u64,
        /// This cluster's identity.
        cluster: String,
    },
    /// Revoke the server's join token (delete the `bootstrap-token-<token_id>` Secret; one that is
    /// gone counts as deleted), then remove the server's `join-token` label. Its node has
    /// joined, or the token has expired: nobody needs it any more, and a CI job that reads the
    /// server's user data finds a dead credential.
    RetireJoinToken {
        /// The server.
        server_id: u64,
        /// The token's id, from the server's `join-token` label.
        token_id: String,
    },
    /// Label the server `joined=<at>`: its node registered.
    RecordJoined {
        /// The server.
        server_id: u64,
        /// When the node was first seen.
        at: Timestamp,
    },
    /// Annotate the node `idle-since=<since>`.
    MarkIdle {
        /// The node.
        node: String,
        /// Idle since.
        since: Timestamp,
    },
    /// Annotate the node `runners=<pod=id,…>`: which Gitea runner each of its runner pods
    /// registered as, so a foreign runner of the same name is never taken for it.
    RecordRunners {
        /// The node.
        node: String,
        /// The annotation's value, `pod=id` pairs sorted by pod.
        runners: String,
    },
    /// Remove the node's `idle-since` annotation: it works again.
    ClearIdle {
        /// The node.
        node: String,
    },
    /// Label the server `teardown=<at>`: the first step of a teardown, written before anything is
    /// disabled so a crash at any later step resumes instead of leaking.
    BeginTeardown {
        /// The server.
        server_id: u64,
        /// When.
        at: Timestamp,
    },
    /// Remove the server's `teardown` label: the node is kept after all.
    AbortTeardown {
        /// The server.
        server_id: u64,
    },
    /// Disable a Gitea runner so it takes no new job (Gitea 1.26+).
    DisableRunner {
        /// Gitea's runner id.
        runner_id: u64,
        /// Its name, for people.
        runner_name: String,
    },
    /// Enable a runner again: a teardown was aborted.
    EnableRunner {
        /// Gitea's runner id.
        runner_id: u64,
        /// Its name, for people.
        runner_name: String,
    },
    /// Delete a Gitea runner, after it was seen disabled and idle.
    DeleteRunner {
        /// Gitea's runner id.
        runner_id: u64,
        /// Its name, for people.
        runner_name: String,
    },
    /// Mark the node unschedulable.
    Cordon {
        /// The node.
        node: String,
    },
    /// Evict every pod except DaemonSet and mirror pods; when none is left, annotate the node
    /// `drained`. A PodDisruptionBudget refusal leaves it undrained, and the next tick retries.
    Drain {
        /// The node.
        node: String,
    },
    /// Delete the node object (this also frees its K3s node password).
    DeleteNode {
        /// The node.
        node: String,
    },
    /// Label the server `node-missing=<since>`: first seen without its node.
    MarkNodeMissing {
        /// The server.
        server_id: u64,
        /// When first seen so.
        since: Timestamp,
    },
    /// Remove the server's `node-missing` label: the node is back.
    ClearNodeMissing {
        /// The server.
        server_id: u64,
    },
    /// Annotate the node `server-missing=<since>`: first seen without its server.
    MarkServerMissing {
        /// The node.
        node: String,
        /// When first seen so.
        since: Timestamp,
    },
    /// Remove the node's `server-missing` annotation: the server is back.
    ClearServerMissing {
        /// The node.
        node: String,
    },
    /// Delete the Hetzner server. The last step; a 404 means it is already gone.
    DeleteServer {
        /// The server.
        server_id: u64,
        /// Its name, for people.
        server_name: String,
        /// Its join token, still live (the node never joined): revoked before the server goes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_token: Option<String>,
    },
}

/// A server to create: what [`Action::CreateServer`] asks for, and what the cloud port creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// The pool.
    pub pool: String,
    /// Server and node name.
    pub name: String,
    /// Hetzner server type.
    pub server_type: String,
    /// Hetzner location.
    pub location: String,
    /// Image: the pool's base image, or a baked image's id.
    pub image: String,
    /// The baked image booted (then `image` is its id): the server skips the K3s download and
    /// install and only configures and starts the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baked_image: Option<u64>,
    /// Labels for the server (ownership and pool), so the next listing finds it.
    pub labels: BTreeMap<String, String>,
    /// Labels the node registers with (ownership and pool).
    pub node_labels: BTreeMap<String, String>,
}

/// A Hetzner server's id, as the cloud port takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(pub u64);

/// A Gitea runner's id, as the forge port takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunnerId(pub u64);

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for RunnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An action as the port that carries it out sees it: which service, which call, with typed
/// ids. A shell's executor matches on it exhaustively, so a new action is routed by the
/// compiler, not by a fall-through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<'a> {
    /// Hetzner Cloud.
    Cloud(CloudEffect<'a>),
    /// Gitea.
    Forge(ForgeEffect),
    /// The Kubernetes API.
    Cluster(ClusterEffect<'a>),
}

/// A call to the cloud port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudEffect<'a> {
    /// Create the server.
    Create(&'a ServerSpec),
    /// Set (`Some`) or remove (`None`) one label of the server, keeping the others; the cloud
    /// adapter merges it into the labels it last listed (Hetzner replaces the whole set).
    Label {
        /// The server.
        server: ServerId,
        /// The label.
        key: &'static str,
        /// Its new value, or `None` to remove it.
        value: Option<String>,
        /// A join token to revoke on the cluster first: the label is the memory that it still
        /// needs revoking, so it goes only once the token is gone.
        revoke_first: Option<&'a str>,
    },
    /// Delete the server; one that is gone counts as deleted.
    Delete {
        /// The server.
        server: ServerId,
        /// Its name, for people.
        name: &'a str,
        /// Its live join token, revoked on the cluster first (a failed revoke never keeps the
        /// server: the token expires anyway).
        revoke_first: Option<&'a str>,
    },
}

/// A call to the forge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeEffect {
    /// Disable (`true`) or enable (`false`) the runner.
    SetDisabled(RunnerId, bool),
    /// Delete the runner; one that is gone counts as deleted.
    Delete(RunnerId),
}

/// A call to the cluster port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEffect<'a> {
    /// Set (`Some`) or remove (`None`) one annotation of the node.
    Annotate {
        /// The node.
        node: &'a str,
        /// The annotation.
        key: &'static str,
        /// Its new value, or `None` to remove it.
        value: Option<String>,
    },
    /// Mark the node unschedulable.
    Cordon(&'a str),
    /// Evict what can be evicted; annotate the node `drained` once nothing is left.
    Drain(&'a str),
    /// Delete the node object; one that is gone counts as deleted.
    DeleteNode(&'a str),
}

impl Effect<'_> {
    /// The service it goes to.
    pub fn service(&self) -> crate::ports::Service {
        match self {
            Self::Cloud(_) => crate::ports::Service::Hetzner,
            Self::Forge(_) => crate::ports::Service::Gitea,
            Self::Cluster(_) => crate::ports::Service::Kubernetes,
        }
    }
}

impl Action {
    /// What this action asks of which port. The one place where an action's target service,
    /// ids and label or annotation encoding are decided.
    pub fn effect(&self) -> Effect<'_> {
        let label = |server_id: &u64, key, value| {
            Effect::Cloud(CloudEffect::Label {
                server: ServerId(*server_id),
                key,
                value,
                revoke_first: None,
            })
        };
        fn annotate<'a>(node: &'a str, key: &'static str, value: Option<String>) -> Effect<'a> {
            Effect::Cluster(ClusterEffect::Annotate { node, key, value })
        }
        match self {
            Self::CreateServer(spec) => Effect::Cloud(CloudEffect::Create(spec)),
            Self::RecordCluster { server_id, cluster } => {
                label(server_id, keys::CLUSTER, Some(cluster.clone()))
            }
            Self::RetireJoinToken {
                server_id,
                token_id,
            } => Effect::Cloud(CloudEffect::Label {
                server: ServerId(*server_id),
                key: keys::JOIN_TOKEN,
                value: None,
                revoke_first: Some(token_id),
            }),
            Self::RecordJoined { server_id, at } => {
                label(server_id, keys::JOINED, Some(keys::unix_value(*at)))
            }
            Self::BeginTeardown { server_id, at } => {
                label(server_id, keys::TEARDOWN, Some(keys::unix_value(*at)))
            }
            Self::AbortTeardown { server_id } => label(server_id, keys::TEARDOWN, None),
            Self::MarkNodeMissing { server_id, since } => label(
                server_id,
                keys::NODE_MISSING,
                Some(keys::unix_value(*since)),
            ),
            Self::ClearNodeMissing { server_id } => label(server_id, keys::NODE_MISSING, None),
            Self::DeleteServer {
                server_id,
                server_name,
                join_token,
            } => Effect::Cloud(CloudEffect::Delete {
                server: ServerId(*server_id),
                name: server_name,
                revoke_first: join_token.as_deref(),
            }),
            Self::MarkIdle { node, since } => {
                annotate(node, keys::IDLE_SINCE, Some(since.to_string()))
            }
            Self::RecordRunners { node, runners } => {
                annotate(node, keys::RUNNERS, Some(runners.clone()))
            }
            Self::ClearIdle { node } => annotate(node, keys::IDLE_SINCE, None),
            Self::MarkServerMissing { node, since } => {
                annotate(node, keys::SERVER_MISSING, Some(since.to_string()))
            }
            Self::ClearServerMissing { node } => annotate(node, keys::SERVER_MISSING, None),
            Self::DisableRunner { runner_id, .. } => {
                Effect::Forge(ForgeEffect::SetDisabled(RunnerId(*runner_id), true))
            }
            Self::EnableRunner { runner_id, .. } => {
                Effect::Forge(ForgeEffect::SetDisabled(RunnerId(*runner_id), false))
            }
            Self::DeleteRunner { runner_id, .. } => {
                Effect::Forge(ForgeEffect::Delete(RunnerId(*runner_id)))
            }
            Self::Cordon { node } => Effect::Cluster(ClusterEffect::Cordon(node)),
            Self::Drain { node } => Effect::Cluster(ClusterEffect::Drain(node)),
            Self::DeleteNode { node } => Effect::Cluster(ClusterEffect::DeleteNode(node)),
        }
    }

    /// Actions that remove capacity or lead to it. A plan built from incomplete data holds none.
    pub fn is_destructive(&self) -> bool {
        match self {
            Self::BeginTeardown { .. }
            | Self::DisableRunner { .. }
            | Self::DeleteRunner { .. }
            | Self::Cordon { .. }
            | Self::Drain { .. }
            | Self::DeleteNode { .. }
            | Self::MarkNodeMissing { .. }
            | Self::MarkServerMissing { .. }
            | Self::DeleteServer { .. } => true,
            Self::CreateServer(_)
            | Self::RecordCluster { .. }
            | Self::RetireJoinToken { .. }
            | Self::RecordJoined { .. }
            | Self::MarkIdle { .. }
            | Self::RecordRunners { .. }
            | Self::ClearIdle { .. }
            | Self::AbortTeardown { .. }
            | Self::EnableRunner { .. }
            | Self::ClearNodeMissing { .. }
            | Self::ClearServerMissing { .. } => false,
        }
    }

    /// When the decision after this action is due: `Some(now)` for a teardown step the next
    /// decision continues, `Some(now + confirm)` for a mark a later snapshot must confirm, `None`
    /// when nothing waits on it.
    pub fn continues_at(&self, now: Timestamp, confirm: jiff::SignedDuration) -> Option<Timestamp> {
        match self {
            Self::BeginTeardown { .. }
            | Self::DisableRunner { .. }
            | Self::DeleteRunner { .. }
            | Self::Cordon { .. }
            | Self::Drain { .. }
            | Self::DeleteNode { .. } => Some(now),
            Self::MarkNodeMissing { .. } | Self::MarkServerMissing { .. } => {
                Some(crate::time::add(now, confirm))
            }
            Self::CreateServer(_)
            | Self::RecordCluster { .. }
            | Self::RetireJoinToken { .. }
            | Self::RecordJoined { .. }
            | Self::MarkIdle { .. }
            | Self::RecordRunners { .. }
            | Self::ClearIdle { .. }
            | Self::AbortTeardown { .. }
            | Self::EnableRunner { .. }
            | Self::ClearNodeMissing { .. }
            | Self::ClearServerMissing { .. }
            | Self::DeleteServer { .. } => None,
        }
    }

    /// Actions that rewrite the server's labels. A Hetzner label update replaces the whole set,
    /// so a plan holds at most one of these per server and a shell may run them concurrently.
    /// The same as asking whether [`effect`](Self::effect) is a [`CloudEffect::Label`], without
    /// building the label's value (it is asked for every action of every plan).
    pub fn writes_server_labels(&self) -> bool {
        match self {
            Self::RecordCluster { .. }
            | Self::RetireJoinToken { .. }
            | Self::RecordJoined { .. }
            | Self::BeginTeardown { .. }
            | Self::AbortTeardown { .. }
            | Self::MarkNodeMissing { .. }
            | Self::ClearNodeMissing { .. } => true,
            Self::CreateServer(_)
            | Self::DeleteServer { .. }
            | Self::MarkIdle { .. }
            | Self::RecordRunners { .. }
            | Self::ClearIdle { .. }
            | Self::DisableRunner { .. }
            | Self::EnableRunner { .. }
            | Self::DeleteRunner { .. }
            | Self::Cordon { .. }
            | Self::Drain { .. }
            | Self::DeleteNode { .. }
            | Self::MarkServerMissing { .. }
            | Self::ClearServerMissing { .. } => false,
        }
    }

    /// Every action's [`kind`](Self::kind), for metrics that show a zero for each.
    pub const KINDS: [&'static str; 20] = [
        "create_server",
        "record_cluster",
        "retire_join_token",
        "record_joined",
        "mark_idle",
        "record_runners",
        "clear_idle",
        "begin_teardown",
        "abort_teardown",
        "disable_runner",
        "enable_runner",
        "delete_runner",
        "cordon",
        "drain",
        "delete_node",
        "mark_node_missing",
        "clear_node_missing",
        "mark_server_missing",
        "clear_server_missing",
        "delete_server",
    ];

    /// A short name for logs and metrics, e.g. `delete_server`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateServer(_) => "create_server",
            Self::RecordCluster { .. } => "record_cluster",
            Self::RetireJoinToken { .. } => "retire_join_token",
            Self::RecordJoined { .. } => "record_joined",
            Self::MarkIdle { .. } => "mark_idle",
            Self::RecordRunners { .. } => "record_runners",
            Self::ClearIdle { .. } => "clear_idle",
            Self::BeginTeardown { .. } => "begin_teardown",
            Self::AbortTeardown { .. } => "abort_teardown",
            Self::DisableRunner { .. } => "disable_runner",
            Self::EnableRunner { .. } => "enable_runner",
            Self::DeleteRunner { .. } => "delete_runner",
            Self::Cordon { .. } => "cordon",
            Self::Drain { .. } => "drain",
            Self::DeleteNode { .. } => "delete_node",
            Self::MarkNodeMissing { .. } => "mark_node_missing",
            Self::ClearNodeMissing { .. } => "clear_node_missing",
            Self::MarkServerMissing { .. } => "mark_server_missing",
            Self::ClearServerMissing { .. } => "clear_server_missing",
            Self::DeleteServer { .. } => "delete_server",
        }
    }

    /// The server this action targets, if it targets one.
    pub fn server_id(&self) -> Option<u64> {
        match self.effect() {
            Effect::Cloud(
                CloudEffect::Label { server, .. } | CloudEffect::Delete { server, .. },
            ) => Some(server.0),
            Effect::Cloud(CloudEffect::Create(_)) | Effect::Forge(_) | Effect::Cluster(_) => None,
        }
    }

    /// The node this action targets, if it targets one.
    pub fn node(&self) -> Option<&str> {
        match self.effect() {
            Effect::Cluster(
                ClusterEffect::Annotate { node, .. }
                | ClusterEffect::Cordon(node)
                | ClusterEffect::Drain(node)
                | ClusterEffect::DeleteNode(node),
            ) => Some(node),
            Effect::Cloud(_) | Effect::Forge(_) => None,
        }
    }

    /// The runner this action targets, if it targets one.
    pub fn runner_id(&self) -> Option<u64> {
        match self.effect() {
            Effect::Forge(ForgeEffect::SetDisabled(id, _) | ForgeEffect::Delete(id)) => Some(id.0),
            Effect::Cloud(_) | Effect::Cluster(_) => None,
        }
    }
}

/// One managed machine: a server, its node, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Server and node name.
    pub name: String,
    /// Its pool.
    pub pool: String,
    /// The Hetzner server, when there is one.
    pub server_id: Option<u64>,
    /// Where it is in its life.
    #[serde(flatten)]
    pub state: NodeState,
    /// Why, in words.
    pub reason: Reason,
    /// Runner slots: idle, busy and expected.
    pub slots: Slots,
    /// When the paid period ends, when there is a server.
    pub paid_until: Option<Timestamp>,
}

/// Runner slots on one machine or pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    /// Online, enabled runners with no job.
    pub idle: u32,
    /// Runners with a job.
    pub busy: u32,
    /// Runners still to come on machines that are provisioning or joining.
    pub upcoming: u32,
    /// Busy runners whose job is expected to end within the pool's `cold_start`: free before a
    /// server bought now would be.
    #[serde(default)]
    pub ending_soon: u32,
}

/// The lifecycle state of a managed machine, derived from what is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// The server exists; its node has not registered yet.
    Provisioning,
    /// The node registered; its runners are not online yet.
    Joining,
    /// Runners online, none working.
    Idle {
        /// Since when, as written on the node.
        since: Option<Timestamp>,
    },
    /// At least one runner has a job.
    Busy {
        /// Jobs running on it.
        jobs: u32,
    },
    /// Being torn down; `step` is what happens next.
    Teardown {
        /// The next step.
        step: TeardownStep,
    },
    /// Hetzner is deleting the server.
    Deleting,
    /// Fault: no node after the provisioning timeout.
    StuckProvisioning,
    /// Fault: the node registered but no runner came online within the join timeout.
    NoRunner,
    /// Fault: the node has been NotReady longer than its timeout.
    NotReady {
        /// Since when.
        since: Option<Timestamp>,
    },
    /// Fault: the server's node disappeared after it had joined.
    NodeVanished,
    /// Fault: a managed node whose server is gone.
    ServerVanished,
    /// Fault: the server is ours but its node lacks our ownership label; nothing is touched.
    OwnershipConflict,
    /// Fault: provider ids and names disagree about which node is which server's (a node named
    /// after one server carries another's `hcloud://` id, two nodes claim one server, or a node
    /// names a server that is not ours); nothing is touched.
    IdentityConflict,
}

impl NodeState {
    /// Every state's [`name`](Self::name), for metrics that show a zero for each.
    pub const NAMES: [&'static str; 13] = [
        "provisioning",
        "joining",
        "idle",
        "busy",
        "teardown",
        "deleting",
        "stuck_provisioning",
        "no_runner",
        "not_ready",
        "node_vanished",
        "server_vanished",
        "ownership_conflict",
        "identity_conflict",
    ];

    /// A short name for metrics, e.g. `stuck_provisioning`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Joining => "joining",
            Self::Idle { .. } => "idle",
            Self::Busy { .. } => "busy",
            Self::Teardown { .. } => "teardown",
            Self::Deleting => "deleting",
            Self::StuckProvisioning => "stuck_provisioning",
            Self::NoRunner => "no_runner",
            Self::NotReady { .. } => "not_ready",
            Self::NodeVanished => "node_vanished",
            Self::ServerVanished => "server_vanished",
            Self::OwnershipConflict => "ownership_conflict",
            Self::IdentityConflict => "identity_conflict",
        }
    }

    /// Whether this state is a fault.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::StuckProvisioning
                | Self::NoRunner
                | Self::NotReady { .. }
                | Self::NodeVanished
                | Self::ServerVanished
                | Self::OwnershipConflict
                | Self::IdentityConflict
        )
    }
}

/// The steps of a teardown, in order. Each is observable in the next snapshot, so a teardown
/// resumes where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownStep {
    /// Disable the node's runners.
    DisableRunners,
    /// Runners disabled; waiting to see them idle on a later snapshot.
    ConfirmIdle,
    /// Steered: the runners are disabled so new jobs go to machines with more of their paid
    /// period left, and the node waits idle for its teardown window. Enabled again the moment
    /// demand needs it.
    Steered,
    /// Delete the node's runners.
    DeleteRunners,
    /// Cordon the node.
    Cordon,
    /// Drain the node.
    Drain,
    /// Delete the node.
    DeleteNode,
    /// The node is gone; waiting for a later snapshot to agree.
    ConfirmNodeGone,
    /// Delete the server.
    DeleteServer,
    /// Aborting: enabling runners and removing the teardown mark.
    Abort,
    /// Nothing can be done safely this tick.
    Held,
}

impl TeardownStep {
    /// A short name for metrics and logs, e.g. `delete_runners`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DisableRunners => "disable_runners",
            Self::ConfirmIdle => "confirm_idle",
            Self::Steered => "steered",
            Self::DeleteRunners => "delete_runners",
            Self::Cordon => "cordon",
            Self::Drain => "drain",
            Self::DeleteNode => "delete_node",
            Self::ConfirmNodeGone => "confirm_node_gone",
            Self::DeleteServer => "delete_server",
            Self::Abort => "abort",
            Self::Held => "held",
        }
    }
}

/// One pool's numbers in this tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolReport {
    /// The pool.
    pub name: String,
    /// Whether it is configured; an unknown pool only drains.
    pub configured: bool,
    /// Waiting jobs this pool serves.
    pub waiting: u32,
    /// Of those, the jobs no idle runner could take.
    pub unmet: u32,
    /// Jobs running on this pool's nodes.
    pub running: u32,
    /// Slots on this pool's machines.
    pub slots: Slots,
    /// Owned servers in the pool, in any state.
    pub servers: u32,
    /// The warm-slot target now.
    pub warm_target: u32,
    /// Servers after this plan (created ones counted, torn-down ones not).
    pub desired: u32,
    /// Servers this plan creates.
    pub creating: u32,
    /// Teardowns this plan starts.
    pub tearing_down: u32,
    /// Creations are held back until then, after failures.
    pub backoff_until: Option<Timestamp>,
}

/// A waiting job no pool can serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnservableJob {
    /// Gitea's job id.
    pub id: u64,
    /// Its `runs-on` labels.
    pub labels: Vec<String>,
    /// Its repository.
    pub repo: String,
}

/// Something a person should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What kind of thing, for alerts.
    pub kind: WarningKind,
    /// The details.
    pub message: String,
}

/// Kinds of warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// A source was not read completely; destructive actions are held.
    IncompleteData,
    /// The forge cannot disable runners; the teardown order is weaker.
    WeakTeardownOrder,
    /// Many nodes vanished at once; acting on it is refused.
    MassVanish,
    /// A machine's server and node disagree about ownership.
    OwnershipConflict,
    /// A stored label or annotation could not be read.
    GarbledMemory,
    /// Waiting jobs that no pool serves.
    UnservableJobs,
    /// Creations are backing off after failures.
    CreateBackoff,
    /// A configured maximum stopped creations.
    MaxReached,
    /// The Hetzner request budget stopped creations.
    BudgetLow,
    /// A job runs on a runner of a machine in teardown after the point of no return.
    BusyInTeardown,
    /// A running job or a runner that no machine shows: destructive actions on the machines
    /// that could host it are held.
    ListsDisagree,
    /// Provider ids and names disagree about which node is which server's.
    IdentityConflict,
    /// Servers carry our ownership label but another cluster's identity (another installation
    /// of the same name in the same Hetzner project), or none and no node here.
    ForeignCluster,
    /// Several Gitea runners share a runner pod's name (Gitea does not keep names unique): the
    /// foreign ones are never counted or deleted; while it is unclear which one is the pod's,
    /// none counts as capacity and a job on any of them keeps the machine.
    NamesakeRunners,
    /// Servers or nodes carry another installation's ownership label: not ours, never counted
    /// or changed; said so that a mistyped `INSTALLATION` is seen instead of met with silence.
    OtherInstallations,
    /// A pool names a baked image that cannot be used (missing, another K3s version, the image
    /// list unreadable): its servers boot the base image, with the slower full install.
    BakedImageFallback,
    /// A bake's temporary server was left behind (a bake that crashed or was stopped) and is
    /// deleted, or is held because something disagrees.
    BakeLeftover,
}

impl WarningKind {
    /// A short name for logs and metrics, e.g. `lists_disagree`, as in the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            Self::IncompleteData => "incomplete_data",
            Self::WeakTeardownOrder => "weak_teardown_order",
            Self::MassVanish => "mass_vanish",
            Self::OwnershipConflict => "ownership_conflict",
            Self::GarbledMemory => "garbled_memory",
            Self::UnservableJobs => "unservable_jobs",
            Self::CreateBackoff => "create_backoff",
            Self::MaxReached => "max_reached",
            Self::BudgetLow => "budget_low",
            Self::BusyInTeardown => "busy_in_teardown",
            Self::ListsDisagree => "lists_disagree",
            Self::IdentityConflict => "identity_conflict",
            Self::ForeignCluster => "foreign_cluster",
            Self::NamesakeRunners => "namesake_runners",
            Self::OtherInstallations => "other_installations",
            Self::BakedImageFallback => "baked_image_fallback",
            Self::BakeLeftover => "bake_leftover",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_listed_once_by_its_name() {
        let all = [
            NodeState::Provisioning,
            NodeState::Joining,
            NodeState::Idle { since: None },
            NodeState::Busy { jobs: 1 },
            NodeState::Teardown {
                step: TeardownStep::Drain,
            },
            NodeState::Deleting,
            NodeState::StuckProvisioning,
            NodeState::NoRunner,
            NodeState::NotReady { since: None },
            NodeState::NodeVanished,
            NodeState::ServerVanished,
            NodeState::OwnershipConflict,
            NodeState::IdentityConflict,
        ];
        let names: Vec<&str> = all.iter().map(NodeState::name).collect();
        assert_eq!(names, NodeState::NAMES);
    }

    #[test]
    fn every_action_kind_is_listed_once() {
        let mut kinds = Action::KINDS.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), Action::KINDS.len());
        assert!(Action::KINDS.iter().all(|k| !k.is_empty()));
    }
}
