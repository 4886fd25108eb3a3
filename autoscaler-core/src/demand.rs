//! Demand: which waiting jobs the free runners will take, and which ones each pool must serve.
//!
//! Jobs and free runners are grouped by their label sets first (a cluster has a handful of
//! distinct shapes, not thousands), then each job group finds the runner shapes that fit it
//! through an index of label names (see `shape_index`), so the cost stays near linear in the
//! number of jobs and runners even when every job and every runner is a shape of its own.
//!
//! Gitea's rule is applied as Gitea applies it: a job's `runs-on` labels are compared exactly
//! with the runners' label *names* (the part before the first `:` of a runner label). A job's
//! own labels are never cut at `:`: a job asking for `ubuntu-latest:docker://node:20` is taken
//! by no runner, so it is unservable and buys nothing.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::config::Policy;
use crate::labels::{job_key, names_of, satisfies};
use crate::plan::UnservableJob;
use crate::shape_index::ShapeIndex;
use crate::snapshot::Job;

/// Whose free runner a slot is; free capacity is used in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// Not on a managed machine: free for us, use it first.
    Unmanaged,
    /// A configured pool, by index.
    Pool(usize),
    /// A machine of a pool no longer configured: still a runner, used last.
    Draining,
}

/// The outcome of matching waiting jobs to free runners.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// Per configured pool: waiting jobs it serves.
    pub(crate) waiting: Vec<u32>,
    /// Per configured pool: of those, jobs no free runner takes.
    pub(crate) unmet: Vec<u32>,
    /// Per configured pool: free slots no waiting job takes.
    pub(crate) spare: Vec<u32>,
    /// Jobs that no free runner takes and no pool serves.
    pub(crate) unservable: Vec<UnservableJob>,
}

/// Matches `queued` (sorted by id, oldest first as Gitea hands them out) to the free slots.
pub(crate) fn match_jobs<'a>(
    policy: &Policy,
    queued: &[&'a Job],
    free: impl Iterator<Item = (Owner, &'a [String])>,
) -> Demand {
    let pools = policy.pools();
    let mut demand = Demand {
        waiting: vec![0; pools.len()],
        unmet: vec![0; pools.len()],
        spare: vec![0; pools.len()],
        unservable: Vec::new(),
    };

    let mut raw_supply: FxHashMap<(Owner, &[String]), u32> = FxHashMap::default();
    for (owner, labels) in free {
        *raw_supply.entry((owner, labels)).or_default() += 1;
    }
    let mut supply: BTreeMap<(Owner, Vec<String>), u32> = BTreeMap::new();
    for ((owner, labels), n) in raw_supply {
        *supply.entry((owner, names_of(labels))).or_default() += n;
    }
    // Free slots by runner shape (owner and label names), in a fixed order: `left[b]` of shape
    // `shapes[b]` are still free.
    let mut shapes: Vec<(Owner, Vec<String>)> = Vec::with_capacity(supply.len());
    let mut left: Vec<u32> = Vec::with_capacity(supply.len());
    for (shape, n) in supply {
        shapes.push(shape);
        left.push(n);
    }

    // Jobs of one push arrive together with the same labels: compare with the previous job's
    // labels before hashing.
    let mut raw_groups: FxHashMap<&[String], Vec<&Job>> = FxHashMap::default();
    let mut run: Option<(&[String], Vec<&Job>)> = None;
    for job in queued {
        match &mut run {
            Some((labels, jobs)) if *labels == job.labels.as_slice() => jobs.push(job),
            _ => {
                if let Some((labels, jobs)) = run.replace((job.labels.as_slice(), vec![job])) {
                    raw_groups.entry(labels).or_default().extend(jobs);
                }
            }
        }
    }
    if let Some((labels, jobs)) = run {
        raw_groups.entry(labels).or_default().extend(jobs);
    }
    let mut groups: BTreeMap<Vec<String>, Vec<&Job>> = BTreeMap::new();
    for (labels, jobs) in raw_groups {
        groups.entry(job_key(labels)).or_default().extend(jobs);
    }

    // The most constrained shapes pick first, so a job that only one runner can take gets it.
    let index = ShapeIndex::new(shapes.iter().map(|(_, names)| names.as_slice()));
    let mut order: Vec<(u32, Vec<String>, Vec<&Job>)> = groups
        .into_iter()
        .map(|(labels, mut jobs)| {
            jobs.sort_unstable_by_key(|j| j.id);
            (index.fits(&labels), labels, jobs)
        })
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));

    for (fits, labels, jobs) in order {
        let total = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
        let mut taken = 0u32;
        if fits > 0 {
            index.each_fit(&labels, |b| {
                let free = &mut left[b as usize];
                let take = (*free).min(total - taken);
                *free -= take;
                taken += take;
                taken < total
            });
        }
        match pools
            .iter()
            .position(|p| satisfies(&p.label_names, &labels))
        {
            Some(p) => {
                demand.waiting[p] += total;
                demand.unmet[p] += total - taken;
            }
            None => demand
                .unservable
                .extend(jobs[taken as usize..].iter().map(|j| UnservableJob {
                    id: j.id,
                    labels: j.labels.clone(),
                    repo: j.repo.clone(),
                })),
        }
    }
    demand.unservable.sort_unstable_by_key(|j| j.id);
    for ((owner, _), n) in shapes.iter().zip(&left) {
        if let Owner::Pool(p) = owner {
            demand.spare[*p] += n;
        }
    }
    demand
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PoolConfig};
    use crate::snapshot::JobStatus;

    fn job(id: u64, labels: &[&str]) -> Job {
        Job {
            id,
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
            status: JobStatus::Queued,
            runner_id: None,
            runner_name: None,
            created: jiff::Timestamp::UNIX_EPOCH,
            started: None,
            repo: "acme/app".into(),
            expected_duration: None,
        }
    }

    fn policy() -> Policy {
        let c = Config {
            pools: vec![
                PoolConfig {
                    name: "gpu".into(),
                    labels: vec!["gpu".into(), "linux".into()],
                    ..PoolConfig::default()
                },
                PoolConfig {
                    name: "linux".into(),
                    labels: vec!["linux:docker://node:20".into(), "ubuntu-latest".into()],
                    ..PoolConfig::default()
                },
            ],
            ..Config::default()
        };
        c.validate().expect("valid")
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_job_goes_to_the_first_pool_that_serves_it() {
        let p = policy();
        let jobs = [
            job(1, &["linux"]),
            job(2, &["gpu"]),
            job(3, &["ubuntu-latest"]),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        let d = match_jobs(&p, &refs, std::iter::empty());
        assert_eq!(d.waiting, vec![2, 1]);
        assert_eq!(d.unmet, vec![2, 1]);
        assert!(d.unservable.is_empty());
    }

    #[test]
    fn free_runners_take_jobs_before_any_server_is_wanted() {
        let p = policy();
        let jobs = [job(1, &["linux"]), job(2, &["linux"])];
        let refs: Vec<&Job> = jobs.iter().collect();
        let unmanaged = labels(&["linux", "gpu"]);
        let d = match_jobs(
            &p,
            &refs,
            [(Owner::Unmanaged, unmanaged.as_slice())].into_iter(),
        );
        assert_eq!(d.unmet, vec![1, 0]);
    }

    #[test]
    fn jobs_no_pool_serves_are_reported_and_create_nothing() {
        let p = policy();
        let jobs = [job(7, &["windows"]), job(3, &["windows"])];
        let refs: Vec<&Job> = jobs.iter().collect();
        let d = match_jobs(&p, &refs, std::iter::empty());
        assert_eq!(d.unmet, vec![0, 0]);
        assert_eq!(
            d.unservable.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![3, 7]
        );
    }

    #[test]
    fn the_most_constrained_shape_is_matched_first() {
        let p = policy();
        // One free gpu runner; the gpu job must get it even though the linux job is older.
        let jobs = [job(1, &["linux"]), job(2, &["gpu"])];
        let refs: Vec<&Job> = jobs.iter().collect();
        let gpu = labels(&["gpu", "linux"]);
        let d = match_jobs(&p, &refs, [(Owner::Pool(0), gpu.as_slice())].into_iter());
        assert_eq!(
            d.unmet,
            vec![1, 0],
            "the linux job is unmet, the gpu job served"
        );
        assert_eq!(d.spare, vec![0, 0]);
    }

    #[test]
    fn a_job_label_is_not_cut_at_its_colon() {
        let p = policy();
        // The `linux` pool's runners carry `linux:docker://node:20`, whose name is `linux`.
        let jobs = [job(1, &["linux:docker://node:20"]), job(2, &["linux"])];
        let refs: Vec<&Job> = jobs.iter().collect();
        let raw = labels(&["linux:docker://node:20", "ubuntu-latest"]);
        let d = match_jobs(&p, &refs, [(Owner::Pool(1), raw.as_slice())].into_iter());
        assert_eq!(
            d.unservable.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![1],
            "Gitea compares job labels with label names exactly: no runner takes job 1"
        );
        assert_eq!(d.unmet, vec![0, 0], "job 2 takes the free runner");
    }

    #[test]
    fn unused_pool_slots_are_spare() {
        let p = policy();
        let l = labels(&["linux", "ubuntu-latest"]);
        let d = match_jobs(
            &p,
            &[],
            [
                (Owner::Pool(1), l.as_slice()),
                (Owner::Pool(1), l.as_slice()),
            ]
            .into_iter(),
        );
        assert_eq!(d.spare, vec![0, 2]);
    }
}
