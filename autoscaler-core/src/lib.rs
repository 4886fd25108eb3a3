//! # autoscaler-core
//!
//! The decision core of gitea-ci-autoscaler: a snapshot of Gitea jobs and runners, Hetzner
//! servers, and Kubernetes nodes and runner pods goes in; a [`Plan`] of actions, each with a
//! reason, comes out.
//!
//! ```text
//!   Snapshot ──┐
//!              ├──▶ decide() ──▶ Plan { actions, nodes, pools, unservable, warnings }
//!   Policy ────┘
//! ```
//!
//! The core does no IO, starts no runtime and never reads a clock: `now` is part of the
//! snapshot. It is deterministic (the same inputs give the same plan, whatever the order of the
//! lists) and it keeps no state between calls. What it must remember (idle since when, which
//! teardown is under way, which node went missing) it writes onto the machines through actions
//! (node annotations, server labels) and reads back from the next snapshot, so a restart or a
//! crash between two teardown steps loses nothing.
//!
//! What a loop around it must remember that the machines cannot hold (failed creations, learned
//! run times, the forge's capabilities, the cluster's identity) and when it should decide again
//! are pure rules too: [`shell::Shell`] holds them, and the daemon and the simulator both run
//! it. [`Action::effect`] says which port each action goes to and with what; [`cost`] is the one
//! rule of what servers cost, and [`services`] the one model of what the services do with each
//! effect, for tests and the simulator.
//!
//! Safety rules it holds to, each checked by property tests:
//! - destroy only on positive evidence: every destructive action needs proof of idleness from
//!   every source involved, and absence (a pod not listed, a runner not registered) is never that
//!   proof while anything disagrees: a running job or an online runner no machine shows, an
//!   unusual share of machines losing their nodes, servers, pods or runners at once, or a server
//!   and node whose provider id and name point different ways. The plan holds and says why;
//! - a node whose runner has a job (the in-progress job list is the proof) is never torn down;
//! - never more servers than the pool's or the global maximum;
//! - a plan built from a source that was not read completely holds nothing destructive, and no
//!   creation unless the server and job lists are complete;
//! - only servers and nodes carrying this installation's ownership label are touched;
//! - idle nodes are torn down only in the window before their paid hour ends;
//! - jobs no pool can serve never create servers;
//! - no input panics: any snapshot that parses gets a plan, whatever its instants and durations.
//!
//! ```
//! use autoscaler_core::{Config, Snapshot, Source, decide};
//!
//! let policy = Config::default().validate().expect("the default configuration is valid");
//! let mut snapshot = Snapshot::new("2026-11-25T10:00:00Z".parse().unwrap());
//! snapshot.jobs = Source::complete(vec![]);
//! snapshot.runners = Source::complete(vec![]);
//! snapshot.servers = Source::complete(vec![]);
//! snapshot.nodes = Source::complete(vec![]);
//! snapshot.pods = Source::complete(vec![]);
//! let plan = decide(&policy, &snapshot);
//! assert!(plan.actions.is_empty());
//! ```

mod billing;
mod config;
pub mod cost;
mod decide;
mod demand;
mod duration;
mod error;
mod image;
mod inventory;
pub mod keys;
pub mod labels;
mod lifecycle;
mod plan;
pub mod ports;
mod queue;
mod render;
mod scale_up;
pub mod services;
mod shape_index;
pub mod shell;
mod snapshot;
mod source;
pub mod synthetic;
mod teardown;
mod time;

pub use billing::period_end;
pub use config::{
    Backoff, CONFIG_VERSION, Config, Day, HETZNER_REQUESTS_PER_HOUR, MAX_CREATES_PER_TICK,
    MAX_DURATION, MAX_NODES, Policy, PoolConfig, WarmWindow,
};
pub use decide::{BAKE_SERVER_LIMIT, decide};
pub use error::{ConfigProblem, Error};
pub use image::{
    BakedImage, BootChoice, Image, ImageStatus, Selector, bake_labels, baked_image_labels,
    choose as choose_image, version_label,
};
pub use jiff::{SignedDuration, Timestamp};
pub use plan::{
    Action, CloudEffect, ClusterEffect, Effect, ForgeEffect, NodeReport, NodeState, PLAN_VERSION,
    Plan, PlannedAction, PoolReport, Reason, RunnerId, ServerId, ServerSpec, Slots, TeardownStep,
    UnservableJob, Warning, WarningKind,
};
pub use snapshot::{
    ApiBudget, ColdStart, CreateFailure, CreateFailureKind, ForgeCapabilities, Job, JobStatus,
    Node, PodPhase, Runner, RunnerPod, SNAPSHOT_VERSION, Server, ServerStatus, Snapshot,
};
pub use source::Source;
