//! The simulated Gitea, Hetzner Cloud and Kubernetes: the truth a policy observes as snapshots
//! and changes with actions.
//!
//! The truth is kept as a complete [`Snapshot`], so a healthy tick hands it to the policy as it
//! is; only an outage makes a copy with one service's lists unreadable. Everything the services
//! know but do not show (when a server will boot, which job a runner runs) lives beside it.

use std::collections::{BTreeMap, VecDeque};

use autoscaler_core::cost::Meter;
use autoscaler_core::labels::{label_name, satisfies};
use autoscaler_core::ports::ErrorKind;
use autoscaler_core::services;
use autoscaler_core::shell::{Identity, Outcome as Done};
use autoscaler_core::{
    Action, ApiBudget, CloudEffect, ClusterEffect, Effect, Job, JobStatus, Node, PodPhase, Runner,
    RunnerPod, ServerSpec, ServerStatus, SignedDuration, Snapshot, Source, Timestamp, keys,
    period_end,
};
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use rustc_hash::FxHashMap;

use crate::scenario::Scenario;

/// Milliseconds since the Unix epoch: the virtual clock.
pub(crate) type Ms = i64;

pub(crate) fn ts(ms: Ms) -> Timestamp {
    Timestamp::from_millisecond(ms).expect("simulated time stays within jiff's range")
}

fn ms_of(d: SignedDuration) -> Ms {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The three services, for outages and call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Gitea = 0,
    Hetzner = 1,
    Kubernetes = 2,
}

/// Requests made to each service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls {
    pub(crate) total: [u64; 3],
    pub(crate) failed: [u64; 3],
    /// Hetzner requests per hour of the run, to find the busiest hour.
    pub(crate) hetzner_by_hour: Vec<u32>,
}

/// What the services know about a server but do not list.
#[derive(Debug, Clone)]
struct Hidden {
    name: String,
    pool: usize,
    created: Ms,
    price: f64,
    node_labels: BTreeMap<String, String>,
    /// Its runners' ids once registered.
    runners: Vec<u64>,
    /// From its node registering until its runners are online.
    runner_start: Ms,
}

/// A job's story, by job id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobLog {
    pub(crate) arrival: Ms,
    pub(crate) duration: Ms,
    pub(crate) pool: usize,
    pub(crate) started: Option<Ms>,
    pub(crate) outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Open,
    Served,
    Killed,
}

/// Something the services do on their own at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Happening {
    /// The server booted: its node registers with its runner pods.
    Boot(u64),
    /// Its runners register with Gitea.
    RunnersOnline(u64),
    /// A job ends (unless it was killed before).
    JobEnd(u64),
}

/// The money side: what was billed (by the core's one rule of started periods), and how many
/// creations were asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) meter: Meter,
    pub(crate) creates: u64,
    pub(crate) create_failures: u64,
}

/// One service outage.
#[derive(Debug, Clone, Copy)]
struct Outage {
    service: usize,
    from: Ms,
    until: Ms,
}

pub(crate) struct World {
    /// The truth, all sources complete.
    pub(crate) snap: Snapshot,
    pub(crate) now: Ms,
    start: Ms,
    rng: XorShiftRng,
    hidden: FxHashMap<u64, Hidden>,
    /// Runner id → the job it runs.
    runner_job: FxHashMap<u64, u64>,
    /// Runner id → its pool.
    runner_pool: FxHashMap<u64, usize>,
    /// Per pool: the labels its runners register with and the `runs-on` its jobs ask for.
    runner_labels: Vec<Vec<String>>,
    job_labels: Vec<Vec<String>>,
    /// `can_take[p][q]`: a runner of pool `p` satisfies jobs of pool `q`.
    can_take: Vec<Vec<bool>>,
    runners_per_node: Vec<u32>,
    /// Per pool, queued job ids in arrival order.
    queues: Vec<VecDeque<u64>>,
    pub(crate) jobs: Vec<JobLog>,
    pub(crate) pending: Vec<(Ms, Happening)>,
    pub(crate) ledger: Ledger,
    pub(crate) calls: Calls,
    outages: Vec<Outage>,
    next_outage: usize,
    down_until: [Ms; 3],
    tokens: f64,
    tokens_at: Ms,
    next_server_id: u64,
    next_runner_id: u64,
    pub(crate) peak_servers: u32,
    scenario: Scenario,
}

/// The K3s release the simulated cluster runs.
const K3S_VERSION: &str = "v1.33.4+k3s1";

/// One available image per pool that names a baked image, made for the simulated cluster's
/// K3s version: what `image bake` would have left. The core chooses from it as it does from
/// Hetzner's list (a selector the image's labels do not match falls back, as it would).
fn baked_images(config: &autoscaler_core::Config) -> Vec<autoscaler_core::Image> {
    let mut next = 900_000;
    config
        .pools
        .iter()
        .filter_map(|p| {
            let wanted = p.baked_image.as_ref()?;
            next += 1;
            let mut labels =
                autoscaler_core::baked_image_labels(&config.installation, &p.name, K3S_VERSION);
            labels.insert(
                autoscaler_core::keys::BAKE.to_owned(),
                format!("{next:016x}"),
            );
            let id = match wanted {
                autoscaler_core::BakedImage::Id(id) => *id,
                _ => next,
            };
            Some(autoscaler_core::Image {
                id,
                labels,
                created: Timestamp::UNIX_EPOCH,
                status: autoscaler_core::ImageStatus::Available,
            })
        })
        .collect()
}

impl World {
    pub(crate) fn new(scenario: &Scenario, start: Ms, end_hint: Ms) -> Self {
        let pools = &scenario.autoscaler.pools;
        let runner_labels: Vec<Vec<String>> = pools.iter().map(|p| p.labels.clone()).collect();
        let job_labels: Vec<Vec<String>> = pools
            .iter()
            .map(|p| {
                p.labels
                    .first()
                    .map(|l| vec![label_name(l).to_owned()])
                    .unwrap_or_default()
            })
            .collect();
        let can_take = runner_labels
            .iter()
            .map(|r| job_labels.iter().map(|j| satisfies(r, j)).collect())
            .collect();
        let mut snap = Snapshot::new(ts(start));
        snap.jobs = Source::complete(Vec::new());
        snap.runners = Source::complete(Vec::new());
        snap.servers = Source::complete(Vec::new());
        snap.nodes = Source::complete(Vec::new());
        snap.pods = Source::complete(Vec::new());
        snap.k3s_version = Some(K3S_VERSION.to_owned());
        snap.images = Source::complete(baked_images(&scenario.autoscaler));
        let mut rng = XorShiftRng::seed_from_u64(scenario.world.seed);
        let outages = plan_outages(&mut rng, scenario, start, end_hint);
        Self {
            snap,
            now: start,
            start,
            rng,
            hidden: FxHashMap::default(),
            runner_job: FxHashMap::default(),
            runner_pool: FxHashMap::default(),
            can_take,
            runners_per_node: pools.iter().map(|p| p.runners_per_node).collect(),
            queues: vec![VecDeque::new(); pools.len()],
            runner_labels,
            job_labels,
            jobs: Vec::new(),
            pending: Vec::new(),
            ledger: Ledger::default(),
            calls: Calls::default(),
            outages,
            next_outage: 0,
            down_until: [i64::MIN; 3],
            tokens: f64::from(scenario.world.hetzner_requests_per_hour),
            tokens_at: start,
            next_server_id: 1,
            next_runner_id: 1,
            peak_servers: 0,
            scenario: scenario.clone(),
        }
    }

    pub(crate) fn set_now(&mut self, now: Ms) {
        debug_assert!(now >= self.now);
        self.now = now;
        self.snap.now = ts(now);
        while let Some(o) = self.outages.get(self.next_outage) {
            if o.from > now {
                break;
            }
            self.down_until[o.service] = self.down_until[o.service].max(o.until);
            self.next_outage += 1;
        }
        let rate = f64::from(self.scenario.world.hetzner_requests_per_hour) / 3_600_000.0;
        let cap = f64::from(self.scenario.world.hetzner_requests_per_hour);
        self.tokens = (self.tokens + (now - self.tokens_at) as f64 * rate).min(cap);
        self.tokens_at = now;
    }

    fn is_down(&self, s: Service) -> bool {
        self.down_until[s as usize] > self.now
    }

    /// Makes one request; false when it fails (an outage, or Hetzner's budget is spent).
    fn call(&mut self, s: Service) -> bool {
        self.request(s).is_ok()
    }

    /// Makes one request, failing as the service would: unreachable in an outage, refused
    /// when Hetzner's budget is spent.
    fn request(&mut self, s: Service) -> Result<(), ErrorKind> {
        self.calls.total[s as usize] += 1;
        let mut failed = self.is_down(s).then_some(ErrorKind::Transient);
        if s == Service::Hetzner {
            let hour = usize::try_from((self.now - self.start) / 3_600_000).unwrap_or(0);
            if self.calls.hetzner_by_hour.len() <= hour {
                self.calls.hetzner_by_hour.resize(hour + 1, 0);
            }
            self.calls.hetzner_by_hour[hour] += 1;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
            } else {
                failed = failed.or(Some(ErrorKind::RateLimited));
            }
        }
        match failed {
            Some(kind) => {
                self.calls.failed[s as usize] += 1;
                Err(kind)
            }
            None => Ok(()),
        }
    }

    // --- Jobs ---------------------------------------------------------------------------------

    /// A job becomes runnable.
    pub(crate) fn arrive(&mut self, pool: usize, duration_secs: u32, repo: &str) {
        let id = self.jobs.len() as u64 + 1;
        self.jobs.push(JobLog {
            arrival: self.now,
            duration: i64::from(duration_secs) * 1000,
            pool,
            started: None,
            outcome: Outcome::Open,
        });
        let job = Job {
            id,
            labels: self.job_labels[pool].clone(),
            status: JobStatus::Queued,
            runner_id: None,
            runner_name: None,
            created: self.snap.now,
            started: None,
            repo: repo.to_owned(),
            expected_duration: None,
        };
        items_mut(&mut self.snap.jobs).push(job);
        self.queues[pool].push_back(id);
    }

    /// Gitea hands queued jobs to free runners, oldest first, as act_runner polls.
    pub(crate) fn assign(&mut self) {
        if self.queues.iter().all(VecDeque::is_empty) {
            return;
        }
        let free: Vec<(u64, String, usize)> = self
            .snap
            .runners
            .items()
            .iter()
            .filter(|r| r.online && !r.disabled && !self.runner_job.contains_key(&r.id))
            .filter_map(|r| Some((r.id, r.name.clone(), *self.runner_pool.get(&r.id)?)))
            .collect();
        for (runner_id, runner_name, p) in free {
            let pick = (0..self.queues.len())
                .filter(|&q| self.can_take[p][q])
                .filter_map(|q| self.queues[q].front().map(|&id| (id, q)))
                .min();
            let Some((job_id, q)) = pick else { continue };
            self.queues[q].pop_front();
            self.start_job(job_id, runner_id, runner_name);
        }
    }

    fn start_job(&mut self, job_id: u64, runner_id: u64, runner_name: String) {
        let now = self.snap.now;
        if let Some(job) = self.job_mut(job_id) {
            job.status = JobStatus::InProgress;
            job.runner_id = Some(runner_id);
            job.runner_name = Some(runner_name);
            job.started = Some(now);
        }
        if let Some(r) = self.runner_mut(runner_id) {
            r.busy = true;
        }
        self.runner_job.insert(runner_id, job_id);
        let log = &mut self.jobs[(job_id - 1) as usize];
        log.started = Some(self.now);
        let end = self.now + log.duration;
        self.pending.push((end, Happening::JobEnd(job_id)));
    }

    fn job_mut(&mut self, id: u64) -> Option<&mut Job> {
        let jobs = items_mut(&mut self.snap.jobs);
        let i = jobs.binary_search_by_key(&id, |j| j.id).ok()?;
        Some(&mut jobs[i])
    }

    fn runner_mut(&mut self, id: u64) -> Option<&mut Runner> {
        items_mut(&mut self.snap.runners)
            .iter_mut()
            .find(|r| r.id == id)
    }

    /// A job ends on its own, unless it was killed before.
    fn end_job(&mut self, job_id: u64) {
        let log = self.jobs[(job_id - 1) as usize];
        if log.outcome != Outcome::Open {
            return;
        }
        self.jobs[(job_id - 1) as usize].outcome = Outcome::Served;
        let jobs = items_mut(&mut self.snap.jobs);
        if let Ok(i) = jobs.binary_search_by_key(&job_id, |j| j.id) {
            let job = jobs.remove(i);
            if let Some(r) = job.runner_id {
                self.runner_job.remove(&r);
                if let Some(r) = self.runner_mut(r) {
                    r.busy = false;
                }
            }
        }
    }

    // --- Happenings -----------------------------------------------------------------------------

    pub(crate) fn happen(&mut self, what: Happening) {
        match what {
            Happening::JobEnd(id) => self.end_job(id),
            Happening::Boot(id) => self.boot(id),
            Happening::RunnersOnline(id) => self.runners_online(id),
        }
    }

    fn boot(&mut self, server_id: u64) {
        let Some(h) = self.hidden.get(&server_id) else {
            return; // deleted before it booted
        };
        let (name, labels, rpn) = (
            h.name.clone(),
            h.node_labels.clone(),
            self.runners_per_node[h.pool],
        );
        if let Some(s) = items_mut(&mut self.snap.servers)
            .iter_mut()
            .find(|s| s.id == server_id)
        {
            s.status = ServerStatus::Running;
        }
        let now = self.snap.now;
        items_mut(&mut self.snap.nodes).push(Node {
            name: name.clone(),
            labels,
            annotations: BTreeMap::new(),
            ready: true,
            ready_since: Some(now),
            cordoned: false,
            provider_id: Some(format!("hcloud://{server_id}")),
            created: Some(now),
        });
        for k in 0..rpn {
            items_mut(&mut self.snap.pods).push(RunnerPod {
                name: format!("{name}-runner-{k}"),
                node: Some(name.clone()),
                phase: PodPhase::Running,
            });
        }
        let runner_start = self
            .hidden
            .get(&server_id)
            .map_or(ms_of(self.scenario.world.runner_start), |h| h.runner_start);
        let at = self.now + runner_start;
        self.pending.push((at, Happening::RunnersOnline(server_id)));
    }

    fn runners_online(&mut self, server_id: u64) {
        let Some(h) = self.hidden.get(&server_id) else {
            return;
        };
        let (name, pool) = (h.name.clone(), h.pool);
        let pods: Vec<String> = self
            .snap
            .pods
            .items()
            .iter()
            .filter(|p| p.node.as_deref() == Some(name.as_str()))
            .map(|p| p.name.clone())
            .collect();
        let node_ready = self
            .snap
            .nodes
            .items()
            .iter()
            .any(|n| n.name == name && n.ready);
        if !node_ready {
            return;
        }
        let mut ids = Vec::with_capacity(pods.len());
        for pod in pods {
            let id = self.next_runner_id;
            self.next_runner_id += 1;
            items_mut(&mut self.snap.runners).push(Runner {
                id,
                name: pod,
                labels: self.runner_labels[pool].clone(),
                online: true,
                busy: false,
                disabled: false,
                ephemeral: false,
            });
            ids.push(id);
            self.runner_pool.insert(id, pool);
        }
        if let Some(h) = self.hidden.get_mut(&server_id) {
            h.runners.extend(ids);
        }
    }

    // --- Snapshots ------------------------------------------------------------------------------

    /// Reads every list as the daemon does (and the cluster's identity when the shell asks).
    /// What it read is the truth itself when everything answered (`None`: decide on
    /// [`World::snap`], no copy), or a copy in which an unreachable service's lists are
    /// unavailable.
    pub(crate) fn observe(&mut self, identity: bool) -> (Option<Snapshot>, Identity) {
        let jobs_pages = pages(self.snap.jobs.items().len());
        let runner_pages = pages(self.snap.runners.items().len());
        let server_pages = pages(self.snap.servers.items().len());
        let mut gitea_ok = true;
        for _ in 0..jobs_pages + runner_pages {
            gitea_ok &= self.call(Service::Gitea);
        }
        let mut hetzner_ok = true;
        for _ in 0..server_pages {
            hetzner_ok &= self.call(Service::Hetzner);
        }
        let kube_ok = self.call(Service::Kubernetes) & self.call(Service::Kubernetes);
        let kube = "the Kubernetes API is unreachable";
        let identity = match identity {
            false => Identity::NotRead,
            true if self.call(Service::Kubernetes) => Identity::Read(CLUSTER.to_owned()),
            true => Identity::Unreadable(kube.to_owned()),
        };
        self.snap.hetzner_budget = Some(ApiBudget {
            remaining: self.tokens as u32,
        });
        let unknown = matches!(identity, Identity::Unreadable(_));
        if gitea_ok && hetzner_ok && kube_ok && !unknown {
            return (None, identity);
        }
        let mut seen = self.snap.clone();
        if !gitea_ok {
            seen.jobs = Source::unavailable("Gitea is unreachable");
            seen.runners = Source::unavailable("Gitea is unreachable");
        }
        if !hetzner_ok {
            seen.servers = Source::unavailable("Hetzner Cloud is unreachable");
        }
        if !kube_ok {
            seen.nodes = Source::unavailable(kube);
            seen.pods = Source::unavailable(kube);
        }
        (Some(seen), identity)
    }

    // --- Actions --------------------------------------------------------------------------------

    /// Carries out one action as the services would, and says what became of it; a failed call
    /// changes nothing. What the services do with it is the core's shared model
    /// ([`services::carry_out`]); the world adds what each call costs, the faults it injects,
    /// when a new server boots, and the bill.
    pub(crate) fn apply(&mut self, action: &Action) -> Done {
        let effect = action.effect();
        let result = self.admit(&effect).and_then(|()| {
            // A deleted server's last periods are billed, whatever else becomes of it.
            if let Effect::Cloud(CloudEffect::Delete { server, .. }) = effect
                && let Some(h) = self.hidden.remove(&server.0)
            {
                self.bill(server.0, &h);
                self.ledger.meter.forget(server.0);
            }
            let next = &mut self.next_server_id;
            let carried = services::carry_out(&mut self.snap, &effect, ts(self.now), || {
                let id = *next;
                *next += 1;
                id
            })?;
            for job in &carried.killed {
                self.jobs[(job.id - 1) as usize].outcome = Outcome::Killed;
                if let Some(r) = job.runner_id {
                    self.runner_job.remove(&r);
                }
            }
            if let (Some(id), Effect::Cloud(CloudEffect::Create(spec))) = (carried.created, &effect)
            {
                self.boot_later(id, spec);
            }
            Ok(())
        });
        match result {
            Ok(()) => Done::Done,
            Err(kind) => Done::Failed {
                kind,
                message: format!("{}: {}", action.kind(), kind.as_str()),
            },
        }
    }

    /// The requests an effect costs (a drain one eviction per pod), failing as the service
    /// would; a creation may also meet no capacity.
    fn admit(&mut self, effect: &Effect<'_>) -> Result<(), ErrorKind> {
        match effect {
            Effect::Cloud(CloudEffect::Create(_)) => {
                let rate = self.scenario.world.faults.capacity_error_rate;
                let refused = self.request(Service::Hetzner).err().or_else(|| {
                    (rate > 0.0 && self.rng.random_bool(rate)).then_some(ErrorKind::Capacity)
                });
                if let Some(kind) = refused {
                    self.ledger.create_failures += 1;
                    return Err(kind);
                }
                Ok(())
            }
            Effect::Cloud(_) => self.request(Service::Hetzner),
            Effect::Forge(_) => self.request(Service::Gitea),
            Effect::Cluster(ClusterEffect::Drain(node)) => {
                let pods = self
                    .snap
                    .pods
                    .items()
                    .iter()
                    .filter(|p| p.node.as_deref() == Some(*node))
                    .count();
                let mut result = Ok(());
                for _ in 0..pods {
                    result = result.and(self.request(Service::Kubernetes));
                }
                result
            }
            Effect::Cluster(_) => self.request(Service::Kubernetes),
        }
    }

    /// A new server boots after a drawn delay, unless it is one that never joins.
    fn boot_later(&mut self, id: u64, spec: &ServerSpec) {
        let w = &self.scenario.world;
        let faults = &w.faults;
        // A server the core made from a baked image boots as one; any other as the world says.
        let baked = spec.baked_image.map(|_| {
            w.baked_boot_model
                .clone()
                .unwrap_or_else(crate::BootModel::baked)
        });
        let (mut boot, runner_start) = match baked.as_ref().or(w.boot_model.as_ref()) {
            // Every phase drawn: those before the node registers are the boot, the last is
            // the runner's start.
            Some(model) => {
                let (mut boot, mut start): (Ms, Ms) = (0, 0);
                for p in &model.phases {
                    let (lo, hi) = (ms_of(p.min), ms_of(p.max));
                    let d = if hi > lo {
                        self.rng.random_range(lo..=hi)
                    } else {
                        lo
                    };
                    if crate::BootModel::before_registration(p.phase) {
                        boot = boot.saturating_add(d);
                    } else {
                        start = start.saturating_add(d);
                    }
                }
                (boot, start)
            }
            None => {
                let (lo, hi) = (ms_of(w.boot_min), ms_of(w.boot_max));
                let boot = if hi > lo {
                    self.rng.random_range(lo..=hi)
                } else {
                    lo
                };
                (boot, ms_of(w.runner_start))
            }
        };
        if faults.slow_boot_rate > 0.0 && self.rng.random_bool(faults.slow_boot_rate) {
            boot += ms_of(faults.slow_boot_extra);
        }
        let joins = !(faults.never_join_rate > 0.0 && self.rng.random_bool(faults.never_join_rate));
        let pool_index = self
            .scenario
            .autoscaler
            .pools
            .iter()
            .position(|p| p.name == spec.pool)
            .unwrap_or(0);
        let price = w.prices.get(&spec.server_type).copied().unwrap_or(0.0);
        self.hidden.insert(
            id,
            Hidden {
                name: spec.name.clone(),
                pool: pool_index,
                created: self.now,
                price,
                node_labels: spec.node_labels.clone(),
                runners: Vec::new(),
                runner_start,
            },
        );
        self.ledger.creates += 1;
        if joins {
            self.pending.push((self.now + boot, Happening::Boot(id)));
        }
        let n = u32::try_from(self.snap.servers.items().len()).unwrap_or(u32::MAX);
        self.peak_servers = self.peak_servers.max(n);
    }

    /// Counts every period the server has started by now.
    fn bill(&mut self, id: u64, h: &Hidden) {
        bill(
            &mut self.ledger.meter,
            self.scenario.world.billing_period,
            self.snap.now,
            id,
            h,
        );
    }

    fn bill_live(&mut self) {
        for (id, h) in &self.hidden {
            bill(
                &mut self.ledger.meter,
                self.scenario.world.billing_period,
                self.snap.now,
                *id,
                h,
            );
        }
    }

    // --- Reading the state ----------------------------------------------------------------------

    /// Nodes by state, for the timeline: provisioning, joining, idle, busy, teardown.
    pub(crate) fn census(&self) -> [u32; 5] {
        let mut out = [0u32; 5];
        let nodes: FxHashMap<&str, &Node> = self
            .snap
            .nodes
            .items()
            .iter()
            .map(|n| (n.name.as_str(), n))
            .collect();
        let runners: FxHashMap<u64, &Runner> = self
            .snap
            .runners
            .items()
            .iter()
            .map(|r| (r.id, r))
            .collect();
        for s in self.snap.servers.items() {
            let Some(h) = self.hidden.get(&s.id) else {
                continue;
            };
            let node = nodes.get(s.name.as_str());
            let mine: Vec<&Runner> = h
                .runners
                .iter()
                .filter_map(|id| runners.get(id))
                .copied()
                .collect();
            let k = if s.labels.contains_key(keys::TEARDOWN)
                || node.is_some_and(|n| n.cordoned)
                || mine.iter().any(|r| r.disabled)
            {
                4
            } else if node.is_none_or(|n| !n.ready) {
                0
            } else if !mine.iter().any(|r| r.online) {
                1
            } else if mine.iter().any(|r| self.runner_job.contains_key(&r.id)) {
                3
            } else {
                2
            };
            out[k] += 1;
        }
        out
    }

    pub(crate) fn waiting(&self) -> u32 {
        u32::try_from(self.queues.iter().map(VecDeque::len).sum::<usize>()).unwrap_or(u32::MAX)
    }

    pub(crate) fn running(&self) -> u32 {
        u32::try_from(self.runner_job.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn servers(&self) -> u32 {
        u32::try_from(self.hidden.len()).unwrap_or(u32::MAX)
    }

    /// Euros billed so far, counting live servers' started periods.
    pub(crate) fn euros_so_far(&mut self) -> f64 {
        self.bill_live();
        self.ledger.meter.euros()
    }

    /// Bills every live server until now (the end of the run): server-hours and euros.
    pub(crate) fn close_books(&mut self) -> (f64, f64) {
        self.bill_live();
        (self.ledger.meter.hours(), self.ledger.meter.euros())
    }

    /// Jobs neither finished nor killed.
    pub(crate) fn open_jobs(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum::<usize>() + self.runner_job.len()
    }
}

/// Counts every period server `id` has started by `now`.
fn bill(meter: &mut Meter, period: SignedDuration, now: Timestamp, id: u64, h: &Hidden) {
    let created = ts(h.created);
    meter.bill(id, created, period_end(created, now, period), h.price);
}

/// The cluster's identity, written on every server the autoscaler creates.
const CLUSTER: &str = "simulated-cluster";

fn pages(items: usize) -> usize {
    items.div_ceil(50).max(1)
}

fn items_mut<T>(s: &mut Source<T>) -> &mut Vec<T> {
    match s {
        Source::Complete { items } | Source::Partial { items, .. } => items,
        Source::Unavailable { .. } => unreachable!("the truth is always complete"),
    }
}

/// Outages as a Poisson process over the run, each of one service chosen at random.
fn plan_outages(rng: &mut XorShiftRng, scenario: &Scenario, start: Ms, end: Ms) -> Vec<Outage> {
    let f = &scenario.world.faults;
    let mut out = Vec::new();
    if f.outages_per_day <= 0.0 {
        return out;
    }
    let mean_gap = 86_400_000.0 / f.outages_per_day;
    let mut t = start as f64;
    loop {
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        t += -u.ln() * mean_gap;
        if t >= end as f64 {
            break;
        }
        let from = t as Ms;
        out.push(Outage {
            service: rng.random_range(0..3),
            from,
            until: from + ms_of(f.outage_duration),
        });
    }
    out
}
