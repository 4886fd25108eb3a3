//! The policies a replay compares: the real core, and the design it replaces.

use autoscaler_core::shell::{Identity, Outcome, Shell};
use autoscaler_core::{Action, Plan, Policy, Snapshot, Timestamp};

/// Something that looks at what the services show and says what to do: the shape of every
/// autoscaler.
pub trait Autoscaler {
    /// A short name for tables, e.g. `ours`.
    fn name(&self) -> &str;
    /// Whether the next reading should include the cluster's identity.
    fn wants_identity(&self) -> bool {
        false
    }
    /// The actions for what the services showed, in the order they are carried out: the five
    /// lists, `now` and the Hetzner budget in `snapshot` as read (a shell fills in the rest),
    /// and the cluster's identity when it was asked for.
    fn decide(&mut self, snapshot: &mut Snapshot, identity: Identity) -> Vec<Action>;
    /// What became of the last decision's actions, in their order.
    fn settle(&mut self, outcomes: &[Outcome]) {
        let _ = outcomes;
    }
    /// How many servers it keeps on purpose with no demand at `now` (minimums, warm slots):
    /// servers beyond these at the end of a run are leaks.
    fn keeps(&self, now: Timestamp) -> u32;
    /// Whether it decides on events rather than only every poll interval: as soon as Gitea's
    /// `workflow_job` webhook reports a queued job, and right after a plan that moved a
    /// teardown a step on.
    fn event_driven(&self) -> bool;
    /// When the last decision wants the next one, sooner than the poll (once settled);
    /// `None` when it did not say.
    fn next_decision(&self) -> Option<Timestamp> {
        None
    }
}

/// The real decision core with a configuration, inside the shell the daemon runs.
#[derive(Debug, Clone)]
pub struct Ours {
    shell: Shell,
    name: String,
    last: Option<Plan>,
    next: Option<Timestamp>,
}

impl Ours {
    /// The core on `policy`, called `name` in reports.
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        Self {
            shell: Shell::new(policy),
            name: name.into(),
            last: None,
            next: None,
        }
    }
}

impl Autoscaler for Ours {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants_identity(&self) -> bool {
        self.shell.wants_identity()
    }

    fn decide(&mut self, snapshot: &mut Snapshot, identity: Identity) -> Vec<Action> {
        let forge = Some(snapshot.forge);
        let plan = self.shell.decide_in(snapshot, forge, identity);
        let actions = plan.action_list().cloned().collect();
        self.last = Some(plan);
        self.next = None;
        actions
    }

    fn settle(&mut self, outcomes: &[Outcome]) {
        if let Some(plan) = self.last.take() {
            self.next = self.shell.settle(&plan, outcomes);
        }
    }

    fn next_decision(&self) -> Option<Timestamp> {
        self.next
    }

    fn keeps(&self, now: Timestamp) -> u32 {
        let policy = self.shell.policy();
        policy
            .config()
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let warm_nodes = policy
                    .warm_target(i, now)
                    .div_ceil(p.runners_per_node.max(1));
                p.min_nodes.max(warm_nodes)
            })
            .sum()
    }

    fn event_driven(&self) -> bool {
        true
    }
}
