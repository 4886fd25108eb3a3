//! What the shell observed in one tick: the only input of the decision besides the policy.
//!
//! Field names follow the services' own vocabulary where it is unambiguous (Gitea's job statuses,
//! Hetzner's server statuses, Kubernetes' pod phases), so a shell maps responses without
//! interpretation. The JSON form is versioned by [`SNAPSHOT_VERSION`].

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::image::Image;
use crate::source::Source;

/// The version of the snapshot's JSON form this crate reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Everything the decision looks at, read at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The JSON form's version; see [`SNAPSHOT_VERSION`].
    #[serde(default = "snapshot_version")]
    pub version: u32,
    /// The instant the snapshot describes. The core never reads a clock.
    pub now: Timestamp,
    /// What the forge (Gitea) can do.
    #[serde(default)]
    pub forge: ForgeCapabilities,
    /// This installation's cluster (the `kube-system` namespace's UID). With it, a server that
    /// carries our ownership label but another cluster's identity belongs to another
    /// installation of the same name in the same Hetzner project, and is never touched; without
    /// it (older snapshots), servers are told apart by the ownership label alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Runnable (`queued`) and running (`in_progress`) Actions jobs.
    #[serde(default)]
    pub jobs: Source<Job>,
    /// Registered Gitea runners.
    #[serde(default)]
    pub runners: Source<Runner>,
    /// Hetzner Cloud servers carrying this installation's ownership label.
    #[serde(default)]
    pub servers: Source<Server>,
    /// Kubernetes nodes: at least the managed ones; unmanaged nodes are harmless.
    #[serde(default)]
    pub nodes: Source<Node>,
    /// Runner pods in the runner namespace.
    #[serde(default)]
    pub pods: Source<RunnerPod>,
    /// Recent failed server creations, newest last. The shell keeps them for at least the longest
    /// backoff; they drive backoff and the fallback to another server type or location.
    #[serde(default)]
    pub create_failures: Vec<CreateFailure>,
    /// What is left of the Hetzner request budget, when known.
    #[serde(default)]
    pub hetzner_budget: Option<ApiBudget>,
    /// How long new servers of each pool took lately from their creation until a runner on
    /// them was online, as the shell measured it; a pool not listed uses its configured
    /// `cold_start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cold_starts: Vec<ColdStart>,
    /// Snapshot images carrying an ownership label, for pools that boot a baked image. Not read
    /// (unavailable) when no pool names one.
    #[serde(default)]
    pub images: Source<Image>,
    /// The K3s release the cluster runs, e.g. `v1.33.4+k3s1`: a baked image must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k3s_version: Option<String>,
}

/// One pool's measured cold start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdStart {
    /// The pool.
    pub pool: String,
    /// From a server's creation until its first runner was online (75th percentile of recent
    /// servers).
    #[serde(with = "crate::duration")]
    pub expected: SignedDuration,
}

fn snapshot_version() -> u32 {
    SNAPSHOT_VERSION
}

impl Snapshot {
    /// An empty snapshot at `now` in which every source is unavailable.
    pub fn new(now: Timestamp) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            now,
            forge: ForgeCapabilities::default(),
            cluster: None,
            jobs: Source::default(),
            runners: Source::default(),
            servers: Source::default(),
            nodes: Source::default(),
            pods: Source::default(),
            create_failures: Vec::new(),
            hetzner_budget: None,
            cold_starts: Vec::new(),
            images: Source::default(),
            k3s_version: None,
        }
    }

    /// Parses the JSON form, refusing versions this crate does not know.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Json {
            what: "snapshot",
            source: e,
        })?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(u64::from(SNAPSHOT_VERSION));
        if version != u64::from(SNAPSHOT_VERSION) {
            return Err(Error::UnsupportedVersion {
                what: "snapshot",
                found: version,
                supported: SNAPSHOT_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| Error::Json {
            what: "snapshot",
            source: e,
        })
    }
}

/// Forge features that change how a runner can be retired safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeCapabilities {
    /// Gitea 1.26+ can disable a runner so that it takes no new job while it is checked once more.
    pub can_disable_runners: bool,
    /// False while the forge's version has never been read: the capabilities are then the safe
    /// assumption (no runner is disabled), not a fact, and the plan says it does not know.
    #[serde(default = "known", skip_serializing_if = "is_known")]
    pub known: bool,
}

fn known() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_known(k: &bool) -> bool {
    *k
}

impl ForgeCapabilities {
    /// What a forge whose version was read can do.
    pub fn read(can_disable_runners: bool) -> Self {
        Self {
            can_disable_runners,
            known: true,
        }
    }

    /// The safe assumption while the version has never been read: nothing is disabled.
    pub fn unknown() -> Self {
        Self {
            can_disable_runners: false,
            known: false,
        }
    }
}

impl Default for ForgeCapabilities {
    fn default() -> Self {
        Self::read(true)
    }
}

/// A Gitea Actions job status, as the jobs API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Runnable and waiting for a runner (Gitea's internal "waiting"): the demand signal.
    Queued,
    /// Blocked on `needs`, approval or concurrency (Gitea's internal "blocked"): not demand yet.
    Waiting,
    /// A runner took it.
    InProgress,
    /// Finished.
    Completed,
}

/// One Actions job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Job {
    /// Gitea's job id.
    pub id: u64,
    /// The job's `runs-on` labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Its status.
    pub status: JobStatus,
    /// The runner that took it, when in progress.
    #[serde(default)]
    pub runner_id: Option<u64>,
    /// That runner's name, when Gitea still knows it.
    #[serde(default)]
    pub runner_name: Option<String>,
    /// When the job was created.
    pub created: Timestamp,
    /// When a runner started it.
    #[serde(default)]
    pub started: Option<Timestamp>,
    /// `owner/name` of its repository.
    #[serde(default)]
    pub repo: String,
    /// How long jobs like this one ran lately, as the shell learned from finished jobs of the
    /// same repository and workflow. With it, a runner whose job is about to end counts as
    /// capacity on the way (see `PoolConfig::cold_start`) instead of a reason to buy a server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::option"
    )]
    pub expected_duration: Option<SignedDuration>,
}

/// One registered Gitea runner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Runner {
    /// Gitea's runner id.
    pub id: u64,
    /// The runner's name; runner pods register under their pod name.
    pub name: String,
    /// Label names the runner declared.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Gitea heard from it within the last minute.
    pub online: bool,
    /// Gitea's `busy` flag: activity in the last 10 seconds. A hint only; the in-progress job list
    /// is the proof that a runner works.
    #[serde(default)]
    pub busy: bool,
    /// Disabled runners take no new job (Gitea 1.26+).
    #[serde(default)]
    pub disabled: bool,
    /// Ephemeral runners take one job and are then deleted by Gitea.
    #[serde(default)]
    pub ephemeral: bool,
}

/// A Hetzner Cloud server status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    /// Booted.
    Running,
    /// Being created.
    Initializing,
    /// Powering on.
    Starting,
    /// Powering off.
    Stopping,
    /// Powered off (still billed).
    Off,
    /// Being deleted.
    Deleting,
    /// Being migrated.
    Migrating,
    /// Being rebuilt.
    Rebuilding,
    /// Anything Hetzner reports that is not listed above.
    #[serde(other)]
    Unknown,
}

/// One Hetzner Cloud server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Server {
    /// Hetzner's server id.
    pub id: u64,
    /// Its name; the node joins under the same name.
    pub name: String,
    /// Its labels: ownership, pool and the core's written-out memory.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When Hetzner created it; billing hours count from here.
    pub created: Timestamp,
    /// Its status.
    pub status: ServerStatus,
    /// Its server type name, e.g. `cx33`.
    #[serde(default)]
    pub server_type: String,
    /// Its location name, e.g. `nbg1`.
    #[serde(default)]
    pub location: String,
}

/// One Kubernetes node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Node {
    /// The node name (the server name for managed nodes).
    pub name: String,
    /// Its labels: ownership and pool are set at join time.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations: the core's written-out memory.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// When the `Ready` condition last changed.
    #[serde(default)]
    pub ready_since: Option<Timestamp>,
    /// `spec.unschedulable`.
    #[serde(default)]
    pub cordoned: bool,
    /// `spec.providerID`, e.g. `hcloud://12345` when the Hetzner cloud controller runs.
    #[serde(default)]
    pub provider_id: Option<String>,
    /// When the node object was created (registered).
    #[serde(default)]
    pub created: Option<Timestamp>,
}

/// A Kubernetes pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, not running yet.
    Pending,
    /// Running.
    Running,
    /// Ended well.
    Succeeded,
    /// Ended badly.
    Failed,
    /// Unknown.
    #[serde(other)]
    Unknown,
}

/// One runner pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunnerPod {
    /// The pod name; its runner registers under this name.
    pub name: String,
    /// The node it is bound to.
    #[serde(default)]
    pub node: Option<String>,
    /// Its phase.
    pub phase: PodPhase,
}

/// Why a server creation failed, as far as the decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateFailureKind {
    /// Hetzner has no capacity for this type in this location (`resource_unavailable`,
    /// `placement_error`): try the pool's next type or location.
    Capacity,
    /// Anything else (rate limit, quota, server error, timeout): back off.
    Other,
}

/// A failed server creation the shell observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateFailure {
    /// The pool it was for.
    pub pool: String,
    /// The server type that was asked for.
    pub server_type: String,
    /// The location that was asked for.
    pub location: String,
    /// When it failed.
    pub at: Timestamp,
    /// What kind of failure.
    pub kind: CreateFailureKind,
    /// The provider's message, for the plan.
    #[serde(default)]
    pub message: String,
}

/// The Hetzner request budget (`RateLimit-Remaining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiBudget {
    /// Requests left.
    pub remaining: u32,
}
