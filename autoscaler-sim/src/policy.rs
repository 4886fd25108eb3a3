//! The policies a replay compares: the real core, and the design it replaces.

use autoscaler_core::{Action, Policy, Snapshot, Timestamp, decide};

/// Something that looks at a snapshot and says what to do: the shape of every autoscaler.
pub trait Autoscaler {
    /// A short name for tables, e.g. `ours`.
    fn name(&self) -> &str;
    /// The actions for this snapshot, in the order they are carried out.
    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Action>;
    /// How many servers it keeps on purpose with no demand at `now` (minimums, warm slots):
    /// servers beyond these at the end of a run are leaks.
    fn keeps(&self, now: Timestamp) -> u32;
    /// Whether it decides on events rather than only every poll interval: as soon as Gitea's
    /// `workflow_job` webhook reports a queued job, and right after a plan that moved a
    /// teardown a step on.
    fn event_driven(&self) -> bool;
    /// When the last decision wanted the next one, sooner than the poll (the plan's
    /// `next_decision`); `None` when it did not say.
    fn next_decision(&self) -> Option<Timestamp> {
        None
    }
}

/// The real decision core with a configuration.
#[derive(Debug, Clone)]
pub struct Ours {
    policy: Policy,
    name: String,
    next: Option<Timestamp>,
}

impl Ours {
    /// The core on `policy`, called `name` in reports.
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        Self {
            policy,
            name: name.into(),
            next: None,
        }
    }
}

impl Autoscaler for Ours {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Action> {
        let plan = decide(&self.policy, snapshot);
        self.next = plan.next_decision;
        plan.actions.into_iter().map(|a| a.action).collect()
    }

    fn next_decision(&self) -> Option<Timestamp> {
        self.next
    }

    fn keeps(&self, now: Timestamp) -> u32 {
        self.policy
            .config()
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let warm_nodes = self
                    .policy
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
