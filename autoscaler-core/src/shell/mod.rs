//! The shell's rules between two decisions, pure and synchronous: what the daemon and the
//! simulator both run around [`decide`](crate::decide).
//!
//! ```text
//!   services ──▶ Reading ──▶ Shell::decide ──▶ Decision { snapshot, plan } ──▶ carry out
//!                              ▲   (memory)                                      │
//!                              └────────────── Shell::settle(outcomes) ◀─────────┘
//! ```
//!
//! A shell reads the services (concurrently, with timeouts: that part is IO and stays outside),
//! hands what it read to [`Shell::decide`], carries the plan's actions out, and reports what
//! became of each to [`Shell::settle`], which says when the next decision is due. Everything in
//! between is here: the memory of failed creations and its retention, the per-repository
//! duration estimate, each pool's measured cold start, the forge's capabilities when they cannot be read, the cluster identity
//! read once, what an unknown identity means for the server list, and which outcomes a failed
//! creation is remembered for. There is no IO and no clock: `now` comes with the reading.

mod memory;

use crate::plan::ServerSpec;
use jiff::Timestamp;

use crate::config::Policy;
use crate::image::Image;
use crate::plan::{Action, Plan};
use crate::ports::ErrorKind;
use crate::snapshot::{
    ApiBudget, CreateFailure, CreateFailureKind, ForgeCapabilities, Job, Node, Runner, RunnerPod,
    Server, Snapshot,
};
use crate::source::Source;

use memory::{ColdStarts, Durations, Failures};

/// What was read from the services for one decision. A list that could not be read is
/// [`Source::Unavailable`] with the reason, never an empty list.
#[derive(Debug, Clone)]
pub struct Reading {
    /// When the reading was taken.
    pub now: Timestamp,
    /// What the forge can do; `None` when it could not be read this time.
    pub forge: Option<ForgeCapabilities>,
    /// This cluster's identity, read when [`Shell::wants_identity`] asked for it.
    pub identity: Identity,
    /// Runnable and running jobs.
    pub jobs: Source<Job>,
    /// Registered runners.
    pub runners: Source<Runner>,
    /// Servers carrying this installation's ownership label.
    pub servers: Source<Server>,
    /// Managed nodes.
    pub nodes: Source<Node>,
    /// Runner pods.
    pub pods: Source<RunnerPod>,
    /// What is left of the Hetzner request budget, when known.
    pub hetzner_budget: Option<ApiBudget>,
    /// Snapshot images, read when [`Shell::wants_images`] asked for them; `None` otherwise.
    pub images: Option<Source<Image>>,
    /// The K3s release the cluster runs, when known.
    pub k3s_version: Option<String>,
}

impl Reading {
    /// A reading at `now` in which nothing could be read yet: fill in what was.
    pub fn new(now: Timestamp) -> Self {
        Self {
            now,
            forge: None,
            identity: Identity::NotRead,
            jobs: Source::default(),
            runners: Source::default(),
            servers: Source::default(),
            nodes: Source::default(),
            pods: Source::default(),
            hetzner_budget: None,
            images: None,
            k3s_version: None,
        }
    }
}

/// The cluster identity (the `kube-system` namespace's UID) as one reading found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not read this time: the shell knows it already, or did not ask.
    NotRead,
    /// Read.
    Read(String),
    /// Asked for and not readable, for this reason.
    Unreadable(String),
}

/// What became of one action of a plan, as the shell that carried it out saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call went through.
    Done,
    /// The call went through and the step is not finished: a drain still waits for pods (or a
    /// PodDisruptionBudget refused an eviction). The next poll tries again.
    Waiting,
    /// The call failed.
    Failed {
        /// What kind of failure.
        kind: ErrorKind,
        /// The provider's message.
        message: String,
    },
}

/// What [`Shell::decide`] gives back: the snapshot it built and the plan for it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// What the core saw: the reading with the shell's memory filled in.
    pub snapshot: Snapshot,
    /// What to do.
    pub plan: Plan,
}

/// The rules around the core and their memory. One per running autoscaler; losing it (a
/// restart) is safe, see the module's documentation.
#[derive(Debug, Clone)]
pub struct Shell {
    policy: Policy,
    failures: Failures,
    durations: Durations,
    cold_starts: ColdStarts,
    capabilities: Option<ForgeCapabilities>,
    cluster: Option<String>,
    /// The image list as last read, and when.
    images: Option<(Timestamp, Source<Image>)>,
}

/// How long an image list that was read completely is used before it is read again: images
/// change only when someone bakes or prunes, and a create that fails reads it sooner.
pub const IMAGES_REFRESH: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

impl Shell {
    /// A shell with nothing remembered yet. Failed creations are kept as long as the longest
    /// backoff or capacity cooldown of `policy`.
    pub fn new(policy: Policy) -> Self {
        let c = policy.config();
        let keep = c.create_backoff.max.max(c.capacity_cooldown);
        Self {
            policy,
            failures: Failures::new(keep),
            durations: Durations::default(),
            cold_starts: ColdStarts::default(),
            capabilities: None,
            cluster: None,
            images: None,
        }
    }

    /// The policy it decides with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the next reading should read the cluster's identity: until it has been read
    /// once (it never changes).
    pub fn wants_identity(&self) -> bool {
        self.cluster.is_none()
    }

    /// Whether the reading at `now` should list the snapshot images: only when a pool names a
    /// baked image, and then when they were never read, were not read completely, are older
    /// than [`IMAGES_REFRESH`], or a creation failed since (the image may have been deleted).
    pub fn wants_images(&self, now: Timestamp) -> bool {
        if !self
            .policy
            .pools()
            .iter()
            .any(|p| p.config.baked_image.is_some())
        {
            return false;
        }
        match &self.images {
            None => true,
            Some((at, list)) => {
                !list.is_complete()
                    || at
                        .checked_add(IMAGES_REFRESH)
                        .map_or(true, |due| due <= now)
                    || self.failures.latest().is_some_and(|f| f >= *at)
            }
        }
    }

    /// The cluster's identity, once read.
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// Learns from `reading`, builds the snapshot and decides.
    pub fn decide(&mut self, reading: Reading) -> Decision {
        let mut snapshot = Snapshot::new(reading.now);
        snapshot.jobs = reading.jobs;
        snapshot.runners = reading.runners;
        snapshot.servers = reading.servers;
        snapshot.nodes = reading.nodes;
        snapshot.pods = reading.pods;
        snapshot.hetzner_budget = reading.hetzner_budget;
        snapshot.k3s_version = reading.k3s_version;
        if let Some(images) = reading.images {
            // A failed read keeps the last good list (images change rarely), said so.
            self.images = match (images, self.images.take()) {
                (Source::Unavailable { reason }, Some((at, Source::Complete { items }))) => Some((
                    at,
                    Source::Partial {
                        items,
                        reason: format!("read at {at}; the last read failed: {reason}"),
                    },
                )),
                (images, _) => Some((reading.now, images)),
            };
        }
        let plan = self.decide_in(&mut snapshot, reading.forge, reading.identity);
        Decision { snapshot, plan }
    }

    /// [`decide`](Self::decide) on a snapshot the caller already holds, for a caller that
    /// keeps its lists in one (the simulator's world): `now`, the five lists and the Hetzner
    /// budget are what was read, `forge` and `identity` as in a [`Reading`]. The shell fills in
    /// the rest (the forge's capabilities, the cluster, the recent failures, each job's
    /// expected duration) and, without the cluster's identity, marks the server list partial.
    pub fn decide_in(
        &mut self,
        snapshot: &mut Snapshot,
        forge: Option<ForgeCapabilities>,
        identity: Identity,
    ) -> Plan {
        let now = snapshot.now;
        match identity {
            Identity::NotRead => {}
            Identity::Read(id) => self.cluster = Some(id),
            // Without the identity, the server list is no evidence for anything destructive.
            Identity::Unreadable(why) if self.cluster.is_none() => {
                if let Source::Complete { items } = &mut snapshot.servers {
                    let items = std::mem::take(items);
                    snapshot.servers = Source::Partial {
                        items,
                        reason: format!(
                            "this cluster's identity could not be read ({why}), so our servers \
                             cannot be told from those of another installation of the same name"
                        ),
                    };
                }
            }
            Identity::Unreadable(_) => {}
        }
        if let Some(c) = forge {
            self.capabilities = Some(c);
        }
        self.durations.learn(&snapshot.jobs, now);
        self.durations.annotate(&mut snapshot.jobs, now);
        // Without knowing, assume the older Gitea: no runner is disabled.
        snapshot.forge = self.capabilities.unwrap_or_else(ForgeCapabilities::unknown);
        snapshot.cluster.clone_from(&self.cluster);
        snapshot.create_failures = self.failures.at(now);
        snapshot.cold_starts = self.cold_starts.estimates();
        if let Some((_, list)) = &self.images {
            snapshot.images = list.clone();
        }
        let plan = crate::decide(&self.policy, snapshot);
        self.cold_starts.learn(&plan, &snapshot.servers);
        plan
    }

    /// Takes what became of `plan`'s actions (in the plan's order, one per action; none when
    /// the plan was not carried out) and says when the next decision is due sooner than the
    /// regular poll: the plan's `next_decision` when every action went through, and its
    /// `wake_at` deadline in any case. A failed call or a drain still waiting waits for the poll
    /// (or the deadline), so a stuck teardown cannot turn the loop into one read of every
    /// service a second.
    ///
    /// A failed creation is remembered: a capacity error moves the pool to its next server type
    /// or location, any other failure backs the pool off.
    pub fn settle(&mut self, plan: &Plan, outcomes: &[Outcome]) -> Option<Timestamp> {
        for (action, outcome) in plan.action_list().zip(outcomes) {
            if let Outcome::Failed { kind, message } = outcome
                && let Some(failure) = create_failure(action, *kind, message, plan.now)
            {
                self.failures.record(failure);
            }
        }
        let through = !outcomes.is_empty()
            && outcomes.len() == plan.actions.len()
            && outcomes.iter().all(|o| *o == Outcome::Done);
        let early = plan.next_decision.filter(|_| through);
        match (early, plan.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The failure to remember for a failed `action`, if it is a creation.
fn create_failure(
    action: &Action,
    kind: ErrorKind,
    message: &str,
    at: Timestamp,
) -> Option<CreateFailure> {
    let Action::CreateServer(ServerSpec {
        pool,
        server_type,
        location,
        ..
    }) = action
    else {
        return None;
    };
    Some(CreateFailure {
        pool: pool.clone(),
        server_type: server_type.clone(),
        location: location.clone(),
        at,
        kind: if kind == ErrorKind::Capacity {
            CreateFailureKind::Capacity
        } else {
            CreateFailureKind::Other
        },
        message: message.to_owned(),
    })
}
