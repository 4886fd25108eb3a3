//! A test world that plays the shell: it holds the truth as a complete snapshot, carries plans out
//! on it with the services model the simulator shares (`autoscaler_core::services`), lets Gitea
//! assign waiting jobs the way Gitea does, and records every job that lost its runner.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;

use autoscaler_core::keys;
use autoscaler_core::labels::satisfies;
use autoscaler_core::services;
use autoscaler_core::synthetic;
use autoscaler_core::{
    Action, Config, Job, JobStatus, Node, Plan, Policy, PoolConfig, Runner, Server, SignedDuration,
    Snapshot, Source, Timestamp, decide,
};

pub const INSTALLATION: &str = "default";

pub fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

pub fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

pub fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

pub fn items_mut<T>(s: &mut Source<T>) -> &mut Vec<T> {
    match s {
        Source::Complete { items } | Source::Partial { items, .. } => items,
        Source::Unavailable { .. } => panic!("the world's sources are always complete"),
    }
}

/// The state the plan reports for machine `name`.
pub fn state_of(plan: &Plan, name: &str) -> autoscaler_core::NodeState {
    report_of(plan, name).state
}

/// The reason the plan gives for machine `name`.
pub fn reason_of<'p>(plan: &'p Plan, name: &str) -> &'p str {
    &report_of(plan, name).reason
}

fn report_of<'p>(plan: &'p Plan, name: &str) -> &'p autoscaler_core::NodeReport {
    plan.nodes
        .iter()
        .find(|n| n.name == name)
        .expect("reported")
}

/// The kinds of actions a plan holds, in order, for compact assertions.
pub fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.action_list().map(Action::kind).collect()
}

pub struct World {
    pub policy: Policy,
    pub truth: Snapshot,
    /// Jobs that were running when their runner, pod, node or server was taken away.
    pub killed: Vec<u64>,
    /// Every action ever applied, in order.
    pub applied: Vec<Action>,
    next_id: u64,
}

impl World {
    pub fn new(config: Config) -> Self {
        Self::at(config, t("2026-11-25T10:00:00Z"))
    }

    pub fn at(config: Config, now: Timestamp) -> Self {
        let policy = config.validate().expect("test configuration is valid");
        let mut truth = Snapshot::new(now);
        truth.jobs = Source::complete(vec![]);
        truth.runners = Source::complete(vec![]);
        truth.servers = Source::complete(vec![]);
        truth.nodes = Source::complete(vec![]);
        truth.pods = Source::complete(vec![]);
        Self {
            policy,
            truth,
            killed: Vec::new(),
            applied: Vec::new(),
            next_id: 1,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.truth.now
    }

    /// Changes the configuration in place (it must stay valid).
    #[allow(dead_code)]
    pub fn policy_mut(&mut self, change: impl FnOnce(&mut Config)) {
        let mut c = self.policy.config().clone();
        change(&mut c);
        self.policy = c.validate().expect("test configuration is valid");
    }

    pub fn advance(&mut self, d: SignedDuration) {
        self.truth.now += d;
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn pool(&self, name: &str) -> PoolConfig {
        self.policy
            .config()
            .pools
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .unwrap_or_default()
    }

    /// A joined machine of `pool`, created `age` ago, with its runners online and idle.
    pub fn machine(&mut self, pool: &str, name: &str, age: SignedDuration) -> u64 {
        let created = self.now() - age;
        let id = self.id();
        let mut server = synthetic::server(INSTALLATION, pool, id, name, created);
        server
            .labels
            .insert(keys::JOINED.into(), keys::unix_value(created + secs(60)));
        items_mut(&mut self.truth.servers).push(server);
        self.join(name, created + secs(60));
        id
    }

    /// Writes `idle-since = now − ago` on node `name`, as an earlier tick would have.
    pub fn idle_for(&mut self, name: &str, ago: SignedDuration) {
        let since = self.now() - ago;
        self.node_mut(name)
            .annotations
            .insert(keys::IDLE_SINCE.into(), since.to_string());
    }

    /// Registers the node of server `name` with its runner pods and runners.
    pub fn join(&mut self, name: &str, at: Timestamp) {
        let server = self.server(name).expect("server exists").clone();
        let pool = server.labels.get(keys::POOL).cloned().unwrap_or_default();
        let config = self.pool(&pool);
        let mut node = synthetic::node(INSTALLATION, &pool, name, at);
        let mut bound = Vec::new();
        for k in 0..config.runners_per_node {
            let pod_name = format!("{name}-runner-{k}");
            items_mut(&mut self.truth.pods).push(synthetic::pod(&pod_name, name));
            let id = self.id();
            items_mut(&mut self.truth.runners).push(synthetic::runner(
                id,
                &pod_name,
                &config.labels,
            ));
            bound.push((pod_name, id));
        }
        // As the first tick after the join records it: which runner each pod registered as.
        let mut bindings: Vec<keys::RunnerBinding<'_>> = bound
            .iter()
            .map(|(pod, id)| keys::RunnerBinding {
                pod,
                ours: *id,
                foreign: Vec::new(),
            })
            .collect();
        node.annotations
            .insert(keys::RUNNERS.into(), keys::runners_value(&mut bindings));
        items_mut(&mut self.truth.nodes).push(node);
    }

    /// Joins every server that has been up for `boot` and has no node yet.
    pub fn join_booted(&mut self, boot: SignedDuration) {
        let now = self.now();
        let pending: Vec<String> = self
            .truth
            .servers
            .items()
            .iter()
            .filter(|s| now.duration_since(s.created) >= boot && self.node(&s.name).is_none())
            .map(|s| s.name.clone())
            .collect();
        for name in pending {
            self.join(&name, now);
        }
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.truth.servers.items().iter().find(|s| s.name == name)
    }

    pub fn server_mut(&mut self, name: &str) -> &mut Server {
        items_mut(&mut self.truth.servers)
            .iter_mut()
            .find(|s| s.name == name)
            .expect("server exists")
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.truth.nodes.items().iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        items_mut(&mut self.truth.nodes)
            .iter_mut()
            .find(|n| n.name == name)
            .expect("node exists")
    }

    pub fn runners_of(&self, node: &str) -> Vec<Runner> {
        let pods: HashSet<&str> = self
            .truth
            .pods
            .items()
            .iter()
            .filter(|p| p.node.as_deref() == Some(node))
            .map(|p| p.name.as_str())
            .collect();
        self.truth
            .runners
            .items()
            .iter()
            .filter(|r| pods.contains(r.name.as_str()))
            .cloned()
            .collect()
    }

    pub fn queue(&mut self, labels: &[&str]) -> u64 {
        let id = self.id();
        let labels: Vec<String> = labels.iter().map(|s| (*s).to_owned()).collect();
        let now = self.now();
        items_mut(&mut self.truth.jobs).push(synthetic::queued_job(id, &labels, now));
        id
    }

    /// Queues `n` jobs asking for `labels`.
    pub fn queue_n(&mut self, n: usize, labels: &[&str]) {
        for _ in 0..n {
            self.queue(labels);
        }
    }

    /// Starts a job on the runner named `runner`, bypassing the queue (Gitea just assigned it).
    pub fn start_on(&mut self, runner: &str) -> u64 {
        let r = self
            .truth
            .runners
            .items()
            .iter()
            .find(|r| r.name == runner)
            .expect("runner exists")
            .clone();
        let id = self.id();
        let now = self.now();
        items_mut(&mut self.truth.jobs).push(synthetic::running_job(id, &r, now));
        id
    }

    pub fn finish(&mut self, job: u64) {
        items_mut(&mut self.truth.jobs).retain(|j| j.id != job);
    }

    pub fn running(&self) -> Vec<&Job> {
        self.truth
            .jobs
            .items()
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .collect()
    }

    /// What Gitea does between snapshots: free, enabled runners whose pod runs take the oldest
    /// waiting job whose labels they satisfy. Disabled runners take nothing.
    pub fn assign_waiting(&mut self) {
        let live_pods: HashSet<String> = self
            .truth
            .pods
            .items()
            .iter()
            .filter(|p| {
                p.node
                    .as_deref()
                    .and_then(|n| self.node(n))
                    .is_some_and(|n| n.ready)
            })
            .map(|p| p.name.clone())
            .collect();
        let now = self.now();
        let runners: Vec<Runner> = self.truth.runners.items().to_vec();
        for r in runners {
            if !r.online || r.disabled || !live_pods.contains(&r.name) {
                continue;
            }
            let taken = self
                .truth
                .jobs
                .items()
                .iter()
                .any(|j| j.status == JobStatus::InProgress && j.runner_id == Some(r.id));
            if taken {
                continue;
            }
            let jobs = items_mut(&mut self.truth.jobs);
            let pick = jobs
                .iter_mut()
                .filter(|j| j.status == JobStatus::Queued && satisfies(&r.labels, &j.labels))
                .min_by_key(|j| j.id);
            if let Some(job) = pick {
                job.status = JobStatus::InProgress;
                job.runner_id = Some(r.id);
                job.runner_name = Some(r.name.clone());
                job.started = Some(now);
            }
        }
    }

    pub fn decide(&self) -> Plan {
        decide(&self.policy, &self.truth)
    }

    /// Decides and applies the whole plan; returns it.
    pub fn step(&mut self) -> Plan {
        let plan = self.decide();
        let actions: Vec<Action> = plan.action_list().cloned().collect();
        self.apply(&actions);
        plan
    }

    /// Carries out actions as the services would.
    pub fn apply(&mut self, actions: &[Action]) {
        let now = self.now();
        for action in actions {
            self.applied.push(action.clone());
            // What the services do with it: the model the simulator shares. A write to
            // something that is not there changes nothing, as in the services.
            let next = &mut self.next_id;
            if let Ok(carried) = services::carry_out(&mut self.truth, &action.effect(), now, || {
                *next += 1;
                *next
            }) {
                self.killed.extend(carried.killed.iter().map(|j| j.id));
            }
        }
    }
}

/// A configuration with one `linux` pool whose runners register `labels`.
pub fn config(labels: &[&str]) -> Config {
    Config {
        installation: INSTALLATION.into(),
        max_nodes: 20,
        pools: vec![PoolConfig {
            name: "linux".into(),
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
            max_nodes: 20,
            // The seed's five-minute window, wider than the default 90 s: a machine 57 minutes
            // into its hour is in it, with time for a whole teardown.
            teardown_window: SignedDuration::from_mins(5),
            ..PoolConfig::default()
        }],
        ..Config::default()
    }
}
