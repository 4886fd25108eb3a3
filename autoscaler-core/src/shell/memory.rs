//! What the shell remembers between decisions that is not written on the machines: recent
//! failed creations (they drive the core's backoff and capacity fallback), how long each
//! repository's jobs run (a runner about to finish counts as capacity on the way) and how long
//! each pool's new servers take to come up (when a server bought now would take a job).
//!
//! Losing it on a restart is safe: failures are forgotten (the next create may fail once more)
//! and durations are learned again. Both are bounded, whatever the services report.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;

use crate::plan::{NodeState, Plan};
use crate::snapshot::{ColdStart, CreateFailure, Job, JobStatus, Server};
use crate::source::Source;

/// Runs kept per repository.
pub(crate) const SAMPLES: usize = 8;
/// Repositories whose durations are kept; the one that finished a job longest ago goes first.
pub(crate) const REPOSITORIES: usize = 4096;
/// Failures kept at most, the oldest going first: a few minutes of failing creations at the
/// highest rate the configuration allows.
pub(crate) const FAILURES: usize = 1024;

/// Servers followed while they come up, at most: more than any fleet the configuration allows
/// boots at once.
pub(crate) const BOOTING: usize = 4096;

/// Pools whose cold starts are kept, at most (more than any configuration has).
pub(crate) const POOLS: usize = 256;

/// How long each pool's new servers took from creation until a runner on them was online,
/// learned from the plans: a server seen provisioning or joining is followed until its node is
/// idle or busy. Servers that were up before the shell started are never sampled.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColdStarts {
    /// Server id → (pool, created).
    booting: FxHashMap<u64, (String, Timestamp)>,
    /// By pool name; as many as the pools seen.
    runs: BTreeMap<String, Runs>,
}

impl ColdStarts {
    /// The estimates, for the snapshot.
    pub(crate) fn estimates(&self) -> Vec<ColdStart> {
        self.runs
            .iter()
            .filter_map(|(pool, r)| {
                Some(ColdStart {
                    pool: pool.clone(),
                    expected: r.estimate?,
                })
            })
            .collect()
    }

    /// Follows the servers of `plan` (decided on a snapshot with `servers`) that come up.
    pub(crate) fn learn(&mut self, plan: &Plan, servers: &Source<Server>) {
        let created: FxHashMap<u64, Timestamp> =
            servers.items().iter().map(|s| (s.id, s.created)).collect();
        let mut present: rustc_hash::FxHashSet<u64> = rustc_hash::FxHashSet::default();
        for n in &plan.nodes {
            let Some(id) = n.server_id else { continue };
            present.insert(id);
            match n.state {
                NodeState::Provisioning | NodeState::Joining => {
                    if self.booting.len() < BOOTING
                        && let Some(&at) = created.get(&id)
                    {
                        self.booting
                            .entry(id)
                            .or_insert_with(|| (n.pool.clone(), at));
                    }
                }
                NodeState::Idle { .. } | NodeState::Busy { .. } => {
                    if let Some((pool, at)) = self.booting.remove(&id)
                        && (self.runs.contains_key(&pool) || self.runs.len() < POOLS)
                    {
                        let took = plan.now.duration_since(at).max(SignedDuration::ZERO);
                        self.runs.entry(pool).or_default().push(took);
                    }
                }
                _ => {}
            }
        }
        // Servers given up or gone are no longer followed; with the server list unreadable,
        // nothing is known to be gone.
        if servers.is_complete() {
            self.booting.retain(|id, _| present.contains(id));
        }
    }
}

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

    /// When the latest failure was recorded, if any is kept.
    pub(crate) fn latest(&self) -> Option<Timestamp> {
        self.kept.iter().map(|f| f.at).max()
    }

    /// The failures still relevant at `now`, oldest first. One from the future (a clock that
    /// went back) stays until its age passes.
    pub(crate) fn at(&mut self, now: Timestamp) -> Vec<CreateFailure> {
        let keep = self.keep_for;
        self.kept.retain(|f| now.duration_since(f.at) <= keep);
        self.kept.iter().cloned().collect()
    }
}

/// The 75th percentile (nearest rank) of sorted samples.
fn p75(sorted: &[SignedDuration]) -> Option<SignedDuration> {
    let i = (sorted.len() * 3).div_ceil(4).saturating_sub(1);
    sorted.get(i).copied()
}

#[derive(Debug, Clone, Default)]
struct Runs {
    samples: VecDeque<SignedDuration>,
    /// The same samples, sorted, kept up to date as they change.
    sorted: Vec<SignedDuration>,
    /// The estimate from `samples`, kept up to date as they change (it is read for every job of
    /// every decision).
    estimate: Option<SignedDuration>,
    /// When a job of the repository last finished, in learning order (for eviction).
    touched: u64,
}

impl Runs {
    /// The 75th percentile (nearest rank) of the samples.
    fn p75(&self) -> Option<SignedDuration> {
        p75(&self.sorted)
    }

    /// Adds a sample, forgetting the oldest past `SAMPLES`.
    fn push(&mut self, took: SignedDuration) {
        if self.samples.len() == SAMPLES
            && let Some(old) = self.samples.pop_front()
            && let Ok(i) = self.sorted.binary_search(&old)
        {
            self.sorted.remove(i);
        }
        self.samples.push_back(took);
        let at = self.sorted.partition_point(|d| *d <= took);
        self.sorted.insert(at, took);
        self.estimate = self.p75();
    }

    /// How long a job that has run `elapsed` so far is expected to run in all: the 75th
    /// percentile of the recent runs longer than that. A job of a repository whose runs vary
    /// (a lint of seconds, tests of minutes) that has already run a while is one of the long
    /// ones; one that has run longer than any recent run has no estimate.
    fn given(&self, elapsed: SignedDuration) -> Option<SignedDuration> {
        let longer = &self.sorted[self.sorted.partition_point(|d| *d <= elapsed)..];
        p75(longer)
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
        runs.push(took);
    }

    /// How long a job of `repo` is expected to run: the 75th percentile (nearest rank) of its
    /// recent runs.
    #[cfg(test)]
    pub(crate) fn expected(&self, repo: &str) -> Option<SignedDuration> {
        self.runs.get(repo)?.estimate
    }

    /// Fills in `expected_duration` on every job listed: for a running job, given how long it
    /// has run at `now`.
    pub(crate) fn annotate(&self, jobs: &mut Source<Job>, now: Timestamp) {
        if let Source::Complete { items } | Source::Partial { items, .. } = jobs {
            for j in items {
                let runs = self.runs.get(&j.repo);
                j.expected_duration = match (j.status, j.started) {
                    (JobStatus::InProgress, Some(started)) => runs.and_then(|r| {
                        r.given(now.duration_since(started).max(SignedDuration::ZERO))
                    }),
                    _ => runs.and_then(|r| r.estimate),
                };
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
        m.annotate(&mut jobs, t(0));
        let got: Vec<_> = jobs.items().iter().map(|j| j.expected_duration).collect();
        assert_eq!(got, [Some(SignedDuration::from_secs(300)), None]);
    }

    #[test]
    fn a_running_job_is_expected_to_run_like_the_recent_runs_longer_than_it_has() {
        let mut m = Durations::default();
        for (i, secs) in [10, 12, 15, 240, 300, 300, 360, 480]
            .into_iter()
            .enumerate()
        {
            let id = i as u64;
            m.learn(&Source::complete(vec![job(id, "r", 0)]), t(0));
            m.learn(&Source::complete(vec![]), t(secs));
        }
        let expected_after = |elapsed: i64| {
            let mut jobs = Source::complete(vec![job(99, "r", 1000)]);
            m.annotate(&mut jobs, t(1000 + elapsed));
            jobs.items()[0].expected_duration.map(|d| d.as_secs())
        };
        // Just started: any run; the 75th percentile of all eight.
        assert_eq!(expected_after(0), Some(300));
        // Past the quick ones: one of the five long runs.
        assert_eq!(expected_after(20), Some(360));
        // Longer than any recent run: no estimate, it is not counted on.
        assert_eq!(expected_after(500), None);
        // A waiting job gets the plain estimate.
        let mut queued = Source::complete(vec![Job {
            status: JobStatus::Queued,
            started: None,
            ..job(100, "r", 0)
        }]);
        m.annotate(&mut queued, t(5000));
        assert_eq!(
            queued.items()[0].expected_duration,
            Some(SignedDuration::from_secs(300))
        );
    }

    fn report(id: u64, pool: &str, state: crate::plan::NodeState) -> crate::plan::NodeReport {
        crate::plan::NodeReport {
            name: format!("n{id}"),
            pool: pool.into(),
            server_id: Some(id),
            state,
            reason: "".into(),
            slots: crate::plan::Slots::default(),
            paid_until: None,
        }
    }

    fn plan_at(now: i64, nodes: Vec<crate::plan::NodeReport>) -> Plan {
        let mut plan = crate::decide(
            &crate::Config::default().validate().expect("valid"),
            &crate::Snapshot::new(t(now)),
        );
        plan.nodes = nodes;
        plan
    }

    fn server(id: u64, created: i64) -> Server {
        crate::synthetic::server("default", "linux", id, &format!("n{id}"), t(created))
    }

    #[test]
    fn cold_starts_are_learned_from_servers_seen_coming_up() {
        use crate::plan::NodeState;
        let mut c = ColdStarts::default();
        let servers = Source::complete(vec![server(1, 0), server(2, 0)]);
        // Server 1 is seen provisioning, server 2 only once it is up (it was up before the shell
        // started, or came up between two decisions): only server 1 is a sample.
        c.learn(
            &plan_at(10, vec![report(1, "linux", NodeState::Provisioning)]),
            &servers,
        );
        c.learn(
            &plan_at(
                70,
                vec![
                    report(1, "linux", NodeState::Idle { since: None }),
                    report(2, "linux", NodeState::Idle { since: None }),
                ],
            ),
            &servers,
        );
        assert_eq!(
            c.estimates(),
            vec![ColdStart {
                pool: "linux".into(),
                expected: SignedDuration::from_secs(70)
            }]
        );
        // A server that goes before it comes up is forgotten on a complete list.
        let servers = Source::complete(vec![server(3, 100)]);
        c.learn(
            &plan_at(110, vec![report(3, "linux", NodeState::Joining)]),
            &servers,
        );
        c.learn(&plan_at(120, vec![]), &Source::complete(vec![]));
        assert!(c.booting.is_empty());
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
