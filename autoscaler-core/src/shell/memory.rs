//! What the shell remembers between decisions that is not written on the machines: recent
//! failed creations (they drive the core's backoff and capacity fallback) and how long each
//! repository's jobs run (a runner about to finish counts as capacity on the way).
//!
//! Losing it on a restart is safe: failures are forgotten (the next create may fail once more)
//! and durations are learned again. Both are bounded, whatever the services report.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;

use crate::snapshot::{CreateFailure, Job, JobStatus};
use crate::source::Source;

/// Runs kept per repository.
pub(crate) const SAMPLES: usize = 8;
/// Repositories whose durations are kept; the one that finished a job longest ago goes first.
pub(crate) const REPOSITORIES: usize = 4096;
/// Failures kept at most, the oldest going first: a few minutes of failing creations at the
/// highest rate the configuration allows.
pub(crate) const FAILURES: usize = 1024;

/// Recent failed creations.
#[derive(Debug, Clone)]
pub(crate) struct Failures {
    kept: VecDeque<CreateFailure>,
    keep_for: SignedDuration,
}

impl Failures {
    /// Failures are kept for `keep_for`: the longest backoff or capacity cooldown.
    pub(crate) fn new(keep_for: SignedDuration) -> Self {
        Self {
            kept: VecDeque::new(),
            keep_for,
        }
    }

    pub(crate) fn record(&mut self, failure: CreateFailure) {
        if self.kept.len() == FAILURES {
            self.kept.pop_front();
        }
        self.kept.push_back(failure);
    }

    /// The failures still relevant at `now`, oldest first. One from the future (a clock that
    /// went back) stays until its age passes.
    pub(crate) fn at(&mut self, now: Timestamp) -> Vec<CreateFailure> {
        let keep = self.keep_for;
        self.kept.retain(|f| now.duration_since(f.at) <= keep);
        self.kept.iter().cloned().collect()
    }
}

#[derive(Debug, Clone, Default)]
struct Runs {
    samples: VecDeque<SignedDuration>,
    /// The estimate from `samples`, kept up to date as they change (it is read for every job of
    /// every decision).
    estimate: Option<SignedDuration>,
    /// When a job of the repository last finished, in learning order (for eviction).
    touched: u64,
}

impl Runs {
    /// The 75th percentile (nearest rank) of the samples.
    fn p75(&self) -> Option<SignedDuration> {
        let mut sorted: Vec<SignedDuration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let i = (sorted.len() * 3).div_ceil(4).saturating_sub(1);
        sorted.get(i).copied()
    }
}

/// Per-repository run times, learned from jobs that leave the list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Durations {
    /// Jobs seen running: id → (repository, started).
    running: BTreeMap<u64, (String, Timestamp)>,
    /// By repository; hashed, as it is looked up for every job of every decision.
    runs: FxHashMap<String, Runs>,
    clock: u64,
}

impl Durations {
    /// Learns from a jobs list: a job seen running that is gone from a complete list has
    /// finished, and ran from its start until about `now`. A partial or unreadable list proves
    /// nothing and changes nothing.
    pub(crate) fn learn(&mut self, jobs: &Source<Job>, now: Timestamp) {
        let Source::Complete { items } = jobs else {
            return;
        };
        let mut now_running: Vec<u64> = items
            .iter()
            .filter(|j| j.status == JobStatus::InProgress && j.started.is_some())
            .map(|j| j.id)
            .collect();
        now_running.sort_unstable();
        let gone: Vec<u64> = self
            .running
            .keys()
            .filter(|id| now_running.binary_search(id).is_err())
            .copied()
            .collect();
        for id in gone {
            if let Some((repo, started)) = self.running.remove(&id) {
                let took = now.duration_since(started).max(SignedDuration::ZERO);
                self.sample(repo, took);
            }
        }
        // Jobs seen running for the first time; those already known keep their first start.
        for j in items {
            if let (JobStatus::InProgress, Some(started)) = (j.status, j.started) {
                self.running
                    .entry(j.id)
                    .or_insert_with(|| (j.repo.clone(), started));
            }
        }
    }

    fn sample(&mut self, repo: String, took: SignedDuration) {
        self.clock += 1;
        if !self.runs.contains_key(&repo)
            && self.runs.len() >= REPOSITORIES
            && let Some(stale) = self
                .runs
                .iter()
                .min_by_key(|(_, r)| r.touched)
                .map(|(k, _)| k.clone())
        {
            self.runs.remove(&stale);
        }
        let runs = self.runs.entry(repo).or_default();
        runs.touched = self.clock;
        if runs.samples.len() == SAMPLES {
            runs.samples.pop_front();
        }
        runs.samples.push_back(took);
        runs.estimate = runs.p75();
    }

    /// How long a job of `repo` is expected to run: the 75th percentile (nearest rank) of its
    /// recent runs.
    pub(crate) fn expected(&self, repo: &str) -> Option<SignedDuration> {
        self.runs.get(repo)?.estimate
    }

    /// Fills in `expected_duration` on every job listed.
    pub(crate) fn annotate(&self, jobs: &mut Source<Job>) {
        if let Source::Complete { items } | Source::Partial { items, .. } = jobs {
            for j in items {
                j.expected_duration = self.expected(&j.repo);
            }
        }
    }

    #[cfg(test)]
    fn repositories(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::CreateFailureKind;

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
        let mut m = Durations::default();
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
    fn the_estimate_is_the_nearest_rank_75th_percentile() {
        let mut m = Durations::default();
        for (i, secs) in [400, 100, 300, 200].into_iter().enumerate() {
            let id = i as u64;
            m.learn(&Source::complete(vec![job(id, "r", 0)]), t(0));
            m.learn(&Source::complete(vec![]), t(secs));
        }
        assert_eq!(
            m.expected("r"),
            Some(SignedDuration::from_secs(300)),
            "the third of four, not the longest"
        );
    }

    #[test]
    fn only_the_last_eight_runs_count() {
        let mut m = Durations::default();
        for i in 0..20 {
            let start = i * 1000;
            m.learn(&Source::complete(vec![job(i as u64, "r", start)]), t(start));
            let length = if i < 12 { 900 } else { 60 };
            m.learn(&Source::complete(vec![]), t(start + length));
        }
        assert_eq!(m.expected("r"), Some(SignedDuration::from_secs(60)));
    }

    #[test]
    fn a_job_that_started_in_the_future_ran_for_no_time() {
        let mut m = Durations::default();
        m.learn(&Source::complete(vec![job(1, "r", 500)]), t(0));
        m.learn(&Source::complete(vec![]), t(10));
        assert_eq!(m.expected("r"), Some(SignedDuration::ZERO));
    }

    #[test]
    fn repositories_are_bounded_and_the_stalest_goes() {
        let mut m = Durations::default();
        for i in 0..REPOSITORIES as u64 + 10 {
            m.learn(&Source::complete(vec![job(i, &format!("r{i}"), 0)]), t(0));
            m.learn(&Source::complete(vec![]), t(5));
        }
        assert_eq!(m.repositories(), REPOSITORIES);
        assert_eq!(m.expected("r0"), None, "the first learned went first");
        assert!(m.expected(&format!("r{}", REPOSITORIES + 9)).is_some());
    }

    #[test]
    fn failures_are_kept_for_their_window_and_bounded() {
        let mut m = Failures::new(SignedDuration::from_mins(10));
        let f = CreateFailure {
            pool: "linux".into(),
            server_type: "ccx33".into(),
            location: "nbg1".into(),
            at: t(0),
            kind: CreateFailureKind::Capacity,
            message: "no capacity".into(),
        };
        m.record(f.clone());
        assert_eq!(m.at(t(600)), std::slice::from_ref(&f));
        assert!(m.at(t(601)).is_empty());
        for _ in 0..FAILURES + 5 {
            m.record(f.clone());
        }
        assert_eq!(m.at(t(0)).len(), FAILURES);
    }
}
