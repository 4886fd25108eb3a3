//! Consistent synthetic snapshots and building blocks, for benchmarks, tests and examples.
//!
//! The pieces are what the shell would produce for machines this crate created: servers and
//! nodes with the ownership and pool labels, one runner pod and one runner per slot, jobs naming
//! their runners. [`Fleet`] puts N of them together.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::keys;
use crate::snapshot::{
    Job, JobStatus, Node, PodPhase, Runner, RunnerPod, Server, ServerStatus, Snapshot,
};
use crate::source::Source;

/// The ownership and pool labels of a managed machine.
pub fn labels(installation: &str, pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::OWNER.to_owned(), installation.to_owned()),
        (keys::POOL.to_owned(), pool.to_owned()),
    ])
}

/// A running managed server.
pub fn server(installation: &str, pool: &str, id: u64, name: &str, created: Timestamp) -> Server {
    Server {
        id,
        name: name.to_owned(),
        labels: labels(installation, pool),
        created,
        status: ServerStatus::Running,
        server_type: "cx33".into(),
        location: "nbg1".into(),
    }
}

/// What a create for a managed machine of `pool` asks for (cx33 in nbg1, Ubuntu 24.04).
pub fn server_spec(installation: &str, pool: &str, name: &str) -> crate::plan::ServerSpec {
    crate::plan::ServerSpec {
        pool: pool.to_owned(),
        name: name.to_owned(),
        server_type: "cx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: labels(installation, pool),
        node_labels: labels(installation, pool),
    }
}

/// A Ready, schedulable managed node registered at `created`.
pub fn node(installation: &str, pool: &str, name: &str, created: Timestamp) -> Node {
    Node {
        name: name.to_owned(),
        labels: labels(installation, pool),
        annotations: BTreeMap::new(),
        ready: true,
        ready_since: Some(created),
        cordoned: false,
        provider_id: None,
        created: Some(created),
    }
}

/// A running runner pod on `node`.
pub fn pod(name: &str, node: &str) -> RunnerPod {
    RunnerPod {
        name: name.to_owned(),
        node: Some(node.to_owned()),
        phase: PodPhase::Running,
    }
}

/// An online, enabled runner with `labels`.
pub fn runner(id: u64, name: &str, labels: &[String]) -> Runner {
    Runner {
        id,
        name: name.to_owned(),
        labels: labels.to_vec(),
        online: true,
        busy: false,
        disabled: false,
        ephemeral: false,
    }
}

/// A runnable job waiting for a runner.
pub fn queued_job(id: u64, labels: &[String], created: Timestamp) -> Job {
    Job {
        id,
        labels: labels.to_vec(),
        status: JobStatus::Queued,
        runner_id: None,
        runner_name: None,
        created,
        started: None,
        repo: "acme/app".into(),
        expected_duration: None,
    }
}

/// A job running on `runner`.
pub fn running_job(id: u64, runner: &Runner, started: Timestamp) -> Job {
    Job {
        id,
        labels: runner
            .labels
            .iter()
            .map(|l| crate::labels::label_name(l).to_owned())
            .collect(),
        status: JobStatus::InProgress,
        runner_id: Some(runner.id),
        runner_name: Some(runner.name.clone()),
        created: started,
        started: Some(started),
        repo: "acme/app".into(),
        expected_duration: None,
    }
}

/// A fleet of N managed machines of one pool, each with its runners, plus waiting and running
/// jobs; every source complete. Deterministic for the same fields.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The installation that owns the machines.
    pub installation: String,
    /// Their pool.
    pub pool: String,
    /// The labels their runners register with.
    pub labels: Vec<String>,
    /// Machines (servers with joined nodes).
    pub machines: usize,
    /// Runners per machine.
    pub runners_per_node: usize,
    /// Waiting (queued) jobs.
    pub waiting: usize,
    /// Running jobs, one per runner, spread over the fleet.
    pub running: usize,
    /// The snapshot's instant.
    pub now: Timestamp,
}

impl Fleet {
    /// The benchmark's shape: `n` machines with one runner each, `2n` waiting and `n/2` running
    /// jobs, for the default configuration.
    pub fn benchmark(n: usize, now: Timestamp) -> Self {
        let pool = crate::config::PoolConfig::default();
        Self {
            installation: "default".into(),
            pool: pool.name,
            labels: pool.labels,
            machines: n,
            runners_per_node: 1,
            waiting: 2 * n,
            running: n / 2,
            now,
        }
    }

    /// Builds the snapshot.
    pub fn build(&self) -> Snapshot {
        let now = self.now;
        let rpn = self.runners_per_node.max(1);
        let mut servers = Vec::with_capacity(self.machines);
        let mut nodes = Vec::with_capacity(self.machines);
        let mut pods = Vec::with_capacity(self.machines * rpn);
        let mut runners = Vec::with_capacity(self.machines * rpn);
        for i in 0..self.machines {
            // Ages spread over three hours, so machines sit at every point of their paid hour.
            let age = SignedDuration::from_secs(120 + (i as i64 * 7919) % 10_800);
            let created = now - age;
            let name = format!("{}-{}-m{i:06}", self.installation, self.pool);
            let id = 1_000 + i as u64;
            let mut server = server(&self.installation, &self.pool, id, &name, created);
            server.labels.insert(
                keys::JOINED.into(),
                keys::unix_value(created + SignedDuration::from_secs(60)),
            );
            let mut node = node(
                &self.installation,
                &self.pool,
                &name,
                created + SignedDuration::from_secs(60),
            );
            node.provider_id = Some(format!("hcloud://{id}"));
            if i % 2 == 0 {
                let since = now - SignedDuration::from_mins(10);
                node.annotations
                    .insert(keys::IDLE_SINCE.into(), since.to_string());
            }
            let mut bound = String::new();
            for k in 0..rpn {
                let pod_name = format!("runner-{i:06}-{k}");
                let runner_id = (i * rpn + k + 1) as u64;
                pods.push(pod(&pod_name, &name));
                runners.push(runner(runner_id, &pod_name, &self.labels));
                // Which runner each pod registered as, as the core recorded it after the join.
                if k > 0 {
                    bound.push(',');
                }
                bound.push_str(&format!("{pod_name}={runner_id}"));
            }
            node.annotations.insert(keys::RUNNERS.into(), bound);
            servers.push(server);
            nodes.push(node);
        }
        let names: Vec<String> = self
            .labels
            .iter()
            .map(|l| crate::labels::label_name(l).to_owned())
            .collect();
        let mut jobs = Vec::with_capacity(self.waiting + self.running);
        for j in 0..self.waiting {
            let created = now - SignedDuration::from_secs((j % 300) as i64);
            jobs.push(queued_job(
                1_000_000 + j as u64,
                &names[..1.min(names.len())],
                created,
            ));
        }
        // Spread running jobs evenly over the runners, so busy and idle machines interleave.
        // Pods and runners were pushed in lockstep: runner k runs in pod k.
        let step = runners.len().checked_div(self.running).unwrap_or(1).max(1);
        for (j, k) in (0..runners.len())
            .step_by(step)
            .take(self.running)
            .enumerate()
        {
            runners[k].busy = true;
            let started = now - SignedDuration::from_secs(30 + (j % 600) as i64);
            jobs.push(running_job(2_000_000 + j as u64, &runners[k], started));
            // A busy machine carries no idle mark, as the core keeps it.
            nodes[k / rpn].annotations.remove(keys::IDLE_SINCE);
        }
        let mut snapshot = Snapshot::new(now);
        snapshot.jobs = Source::complete(jobs);
        snapshot.runners = Source::complete(runners);
        snapshot.servers = Source::complete(servers);
        snapshot.nodes = Source::complete(nodes);
        snapshot.pods = Source::complete(pods);
        snapshot
    }
}
