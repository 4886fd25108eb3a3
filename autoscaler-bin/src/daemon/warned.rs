//! The plan's warnings in the log: each one when it appears, and once when it is gone, rather
//! than on every tick. A warning is what says why a teardown is held (the lists disagree, most
//! nodes vanished at once), so an operator who only reads the log must see it.

use std::collections::BTreeSet;

use autoscaler_core::Plan;

/// The warnings of the last plan, by kind and message.
#[derive(Debug, Default)]
pub(crate) struct Warned(BTreeSet<(&'static str, String)>);

/// What changed since the last plan.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) new: Vec<(&'static str, String)>,
    pub(crate) gone: Vec<(&'static str, String)>,
}

impl Warned {
    /// Remembers `plan`'s warnings and says which are new and which are gone.
    pub(crate) fn update(&mut self, plan: &Plan) -> Change {
        let now: BTreeSet<(&'static str, String)> = plan
            .warnings
            .iter()
            .map(|w| (w.kind.name(), w.message.clone()))
            .collect();
        let change = Change {
            new: now.difference(&self.0).cloned().collect(),
            gone: self.0.difference(&now).cloned().collect(),
        };
        self.0 = now;
        change
    }

    /// Logs what changed since the last plan.
    pub(crate) fn log(&mut self, plan: &Plan) {
        let change = self.update(plan);
        for (kind, message) in change.new {
            tracing::warn!(kind, message = %message, "plan warning");
        }
        for (kind, message) in change.gone {
            tracing::info!(kind, message = %message, "plan warning cleared");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_core::{Config, Snapshot, Source, decide};

    fn plan(pods: Source<autoscaler_core::RunnerPod>) -> Plan {
        let policy = Config::default().validate().expect("valid");
        let mut s = Snapshot::new("2026-11-25T10:00:00Z".parse().expect("timestamp"));
        s.jobs = Source::complete(vec![]);
        s.runners = Source::complete(vec![]);
        s.servers = Source::complete(vec![]);
        s.nodes = Source::complete(vec![]);
        s.pods = pods;
        decide(&policy, &s)
    }

    #[test]
    fn a_warning_is_new_once_and_gone_once() {
        let mut w = Warned::default();
        let broken = plan(Source::unavailable("timeout"));
        let first = w.update(&broken);
        assert_eq!(first.new.len(), 1, "{first:?}");
        assert_eq!(first.new[0].0, "incomplete_data");
        assert_eq!(
            w.update(&broken),
            Change::default(),
            "the same warning again is not news"
        );
        let healed = w.update(&plan(Source::complete(vec![])));
        assert_eq!(healed.gone, first.new);
        assert!(healed.new.is_empty());
    }
}
