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

use rustc_hash::FxHashMap;

use crate::config::Policy;
use crate::labels::{job_key, name_set, satisfies};
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
    /// Per configured pool: when each of those jobs arrived and how long it is expected to
    /// run, oldest first.
    pub(crate) unmet_since: Vec<Vec<crate::queue::Waiting>>,
    /// Per configured pool: free slots no waiting job takes.
    pub(crate) spare: Vec<u32>,
    /// Jobs that no free runner takes and no pool serves.
    pub(crate) unservable: Vec<UnservableJob>,
}

/// A job label set as a map key: a sorted list borrowed as it came, or one sorted here. Both
/// hash and compare as the sequence of labels, so they find each other.
#[derive(Debug)]
enum SetKey<'a> {
    Sorted(&'a [String]),
    Made(Vec<&'a str>),
}

impl SetKey<'_> {
    fn labels(&self) -> impl Iterator<Item = &str> {
        let (sorted, made) = match self {
            Self::Sorted(s) => (Some(s.iter().map(String::as_str)), None),
            Self::Made(m) => (None, Some(m.iter().copied())),
        };
        sorted
            .into_iter()
            .flatten()
            .chain(made.into_iter().flatten())
    }
}

impl<'a> SetKey<'a> {
    fn into_labels(self) -> Vec<&'a str> {
        match self {
            Self::Sorted(s) => s.iter().map(String::as_str).collect(),
            Self::Made(m) => m,
        }
    }
}

impl std::hash::Hash for SetKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Self::Sorted(s) => s.iter().for_each(|l| l.as_str().hash(state)),
            Self::Made(m) => m.iter().for_each(|l| l.hash(state)),
        }
    }
}

impl PartialEq for SetKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.labels().eq(other.labels())
    }
}

impl Eq for SetKey<'_> {}

/// Waiting jobs with one label set.
struct Group<'a> {
    /// The set, sorted.
    labels: Vec<&'a str>,
    /// Its labels' ids in the shape index; `None` when some label is on no free runner.
    ids: Option<Vec<u32>>,
    count: u32,
    /// The smallest job id in it.
    oldest: u64,
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
        unmet_since: vec![Vec::new(); pools.len()],
        spare: vec![0; pools.len()],
        unservable: Vec::new(),
    };

    let mut raw_supply: FxHashMap<(Owner, &[String]), u32> = FxHashMap::default();
    for (owner, labels) in free {
        *raw_supply.entry((owner, labels)).or_default() += 1;
    }
    let mut supply: FxHashMap<(Owner, Vec<&'a str>), u32> = FxHashMap::default();
    for ((owner, labels), n) in raw_supply {
        *supply.entry((owner, name_set(labels))).or_default() += n;
    }
    // Free slots by runner shape (owner and label names), in a fixed order: `left[b]` of shape
    // `shapes[b]` are still free.
    let mut supply: Vec<((Owner, Vec<&'a str>), u32)> = supply.into_iter().collect();
    supply.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut shapes: Vec<(Owner, Vec<&'a str>)> = Vec::with_capacity(supply.len());
    let mut left: Vec<u32> = Vec::with_capacity(supply.len());
    for (shape, n) in supply {
        shapes.push(shape);
        left.push(n);
    }

    // Jobs grouped by label set. Jobs of one push arrive together with the same labels: compare
    // with the previous job's labels before hashing; the set's key is built once per distinct
    // list, and its label ids once per set.
    let index = ShapeIndex::new(shapes.iter().map(|(_, names)| names.as_slice()));
    // Per group: its size and oldest job, in the order groups are first seen.
    let mut tally: Vec<(u32, u64)> = Vec::new();
    let mut by_set: FxHashMap<SetKey<'a>, u32> = FxHashMap::default();
    let mut group_of: Vec<u32> = Vec::with_capacity(queued.len());
    let mut previous: Option<(&[String], u32)> = None;
    for job in queued {
        let raw = job.labels.as_slice();
        let g = match previous {
            Some((labels, g)) if labels == raw => g,
            _ => {
                // Most `runs-on` lists are sorted sets already (often a single label): those
                // are their own key, borrowed.
                let key = if raw.windows(2).all(|w| w[0] < w[1]) {
                    SetKey::Sorted(raw)
                } else {
                    SetKey::Made(job_key(raw))
                };
                let next = u32::try_from(tally.len()).unwrap_or(u32::MAX);
                let g = *by_set.entry(key).or_insert(next);
                if g == next {
                    // `queued` is in id order: the first job seen is the oldest.
                    tally.push((0, job.id));
                }
                g
            }
        };
        previous = Some((raw, g));
        group_of.push(g);
        tally[g as usize].0 += 1;
    }
    let mut sets: Vec<Vec<&'a str>> = vec![Vec::new(); tally.len()];
    for (key, g) in by_set {
        sets[g as usize] = key.into_labels();
    }
    let groups: Vec<Group<'a>> = sets
        .into_iter()
        .zip(tally)
        .map(|(labels, (count, oldest))| Group {
            ids: index.resolve(&labels),
            labels,
            count,
            oldest,
        })
        .collect();
    // Each group's jobs in one flat list, oldest first (a counting sort of `queued`).
    let mut start: Vec<usize> = Vec::with_capacity(groups.len() + 1);
    let mut at = 0usize;
    for g in &groups {
        start.push(at);
        at += g.count as usize;
    }
    start.push(at);
    let mut fill = start.clone();
    let mut members: Vec<&Job> = match queued.first() {
        Some(&first) => vec![first; queued.len()],
        None => Vec::new(),
    };
    for (job, &g) in queued.iter().zip(&group_of) {
        members[fill[g as usize]] = job;
        fill[g as usize] += 1;
    }

    // The most constrained shapes pick first, so a job that only one runner can take gets it;
    // among equals, the group with the oldest job, as Gitea hands out the oldest first. Job ids
    // are unique, so the order is total and the same for any input order.
    let fits: Vec<u32> = groups
        .iter()
        .map(|g| g.ids.as_ref().map_or(0, |ids| index.fits(ids)))
        .collect();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_unstable_by_key(|&g| (fits[g], groups[g].oldest));

    for g in order {
        let group = &groups[g];
        let total = group.count;
        let mut taken = 0u32;
        if let (Some(ids), true) = (&group.ids, fits[g] > 0) {
            index.each_fit(ids, |b| {
                let free = &mut left[b as usize];
                let take = (*free).min(total - taken);
                *free -= take;
                taken += take;
                taken < total
            });
        }
        match pools
            .iter()
            .position(|p| satisfies(&p.label_names, &group.labels))
        {
            Some(p) => {
                demand.waiting[p] += total;
                demand.unmet[p] += total - taken;
                demand.unmet_since[p].extend(
                    members[start[g] + taken as usize..start[g + 1]]
                        .iter()
                        .map(|j| crate::queue::Waiting {
                            arrived: j.created,
                            runs: j.expected_duration,
                        }),
                );
            }
            None => demand.unservable.extend(
                members[start[g] + taken as usize..start[g + 1]]
                    .iter()
                    .map(|j| UnservableJob {
                        id: j.id,
                        labels: j.labels.clone(),
                        repo: j.repo.clone(),
                    }),
            ),
        }
    }
    demand.unservable.sort_unstable_by_key(|j| j.id);
    for since in &mut demand.unmet_since {
        since.sort_unstable();
    }
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
