//! What the daemon remembers between ticks that is not written on the machines: recent failed
//! creations (they drive the core's backoff and capacity fallback) and how long each
//! repository's jobs run (they let a runner about to finish count as capacity on the way).
//!
//! Losing it on a restart is safe: failures are forgotten (the next create may fail once more)
//! and durations are learned again.

use std::collections::{BTreeMap, VecDeque};

use autoscaler_core::{
    Config, CreateFailure, ForgeCapabilities, Job, JobStatus, SignedDuration, Source, Timestamp,
};

/// Runs kept per repository.
const SAMPLES: usize = 8;

/// The daemon's memory.
#[derive(Debug)]
pub(crate) struct Memory {
    failures: Vec<CreateFailure>,
    keep_failures: SignedDuration,
    running: BTreeMap<u64, (String, Timestamp)>,
    durations: BTreeMap<String, VecDeque<SignedDuration>>,
    /// The forge's capabilities as last read.
    pub(crate) capabilities: Option<ForgeCapabilities>,
    /// This cluster's identity, once read (it never changes).
    pub(crate) cluster: Option<String>,
}

impl Memory {
    /// Failures are kept as long as the longest backoff or capacity cooldown of `config`.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            failures: Vec::new(),
            keep_failures: config.create_backoff.max.max(config.capacity_cooldown),
            running: BTreeMap::new(),
            durations: BTreeMap::new(),
            capabilities: None,
            cluster: None,
        }
    }

    /// Notes a failed creation.
    pub(crate) fn record_failure(&mut self, failure: CreateFailure) {
        self.failures.push(failure);
    }

    /// The failures still relevant at `now`, oldest first.
    pub(crate) fn failures(&mut self, now: Timestamp) -> Vec<CreateFailure> {
        let keep = self.keep_failures;
        self.failures.retain(|f| now.duration_since(f.at) <= keep);
        self.failures.clone()
    }

    /// Learns from a jobs list: a job seen running that is gone from a complete list has
    /// finished, and ran from its start until about now.
    pub(crate) fn learn(&mut self, jobs: &Source<Job>, now: Timestamp) {
        let Source::Complete { items } = jobs else {
            return;
        };
        let running: BTreeMap<u64, (String, Timestamp)> = items
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .filter_map(|j| Some((j.id, (j.repo.clone(), j.started?))))
            .collect();
        for (id, (repo, started)) in &self.running {
            if !running.contains_key(id) {
                let samples = self.durations.entry(repo.clone()).or_default();
                if samples.len() == SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(now.duration_since(*started));
            }
        }
        self.running = running;
    }

    /// How long a job of `repo` is expected to run: the 75th percentile of its recent runs.
    pub(crate) fn expected(&self, repo: &str) -> Option<SignedDuration> {
        let samples = self.durations.get(repo)?;
        let mut sorted: Vec<SignedDuration> = samples.iter().copied().collect();
        sorted.sort_unstable();
        let i = (sorted.len() * 3).div_ceil(4).saturating_sub(1);
        sorted.get(i).copied()
    }

    /// Fills in `expected_duration` on every job.
    pub(crate) fn annotate(&self, jobs: &mut Source<Job>) {
        if let Source::Complete { items } | Source::Partial { items, .. } = jobs {
            for j in items {
                j.expected_duration = self.expected(&j.repo);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_core::CreateFailureKind;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn job(id: u64, repo: &str, started: i64) -> Job {
        Job {
            id,
            labels: vec![],
            status: JobStatus::InProgress,
            runner_id: Some(1),
            runner_name: None,
            created: t(started - 5),
            started: Some(t(started)),
            repo: repo.into(),
            expected_duration: None,
        }
    }

    #[test]
    fn durations_are_learned_from_jobs_that_leave_a_complete_list() {
        let mut m = Memory::new(&Config::default());
        m.learn(
            &Source::complete(vec![job(1, "a/b", 0), job(2, "a/b", 0)]),
            t(10),
        );
        // A partial list proves nothing.
        m.learn(
            &Source::Partial {
                items: vec![],
                reason: "x".into(),
            },
            t(100),
        );
        assert_eq!(m.expected("a/b"), None);
        m.learn(&Source::complete(vec![job(2, "a/b", 0)]), t(120));
        assert_eq!(m.expected("a/b"), Some(SignedDuration::from_secs(120)));
        m.learn(&Source::complete(vec![]), t(300));
        assert_eq!(
            m.expected("a/b"),
            Some(SignedDuration::from_secs(300)),
            "p75 of 120 and 300"
        );
        let mut jobs = Source::complete(vec![job(9, "a/b", 400), job(10, "c/d", 400)]);
        m.annotate(&mut jobs);
        let got: Vec<_> = jobs.items().iter().map(|j| j.expected_duration).collect();
        assert_eq!(got, [Some(SignedDuration::from_secs(300)), None]);
    }

    #[test]
    fn only_the_last_eight_runs_count() {
        let mut m = Memory::new(&Config::default());
        for i in 0..20 {
            let start = i * 1000;
            m.learn(&Source::complete(vec![job(i as u64, "r", start)]), t(start));
            let length = if i < 12 { 900 } else { 60 };
            m.learn(&Source::complete(vec![]), t(start + length));
        }
        assert_eq!(m.expected("r"), Some(SignedDuration::from_secs(60)));
    }

    #[test]
    fn failures_are_kept_for_the_longest_backoff() {
        let mut m = Memory::new(&Config::default());
        let f = CreateFailure {
            pool: "linux".into(),
            server_type: "ccx33".into(),
            location: "nbg1".into(),
            at: t(0),
            kind: CreateFailureKind::Capacity,
            message: "no capacity".into(),
        };
        m.record_failure(f.clone());
        assert_eq!(m.failures(t(600)), [f]);
        assert!(
            m.failures(t(601)).is_empty(),
            "10 minutes: the default cooldown and backoff cap"
        );
    }
}
