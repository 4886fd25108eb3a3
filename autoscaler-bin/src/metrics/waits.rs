//! How long jobs waited for a runner and nodes took to become Ready: each observed once, the
//! first time it is seen.

use std::collections::BTreeSet;
use std::sync::Mutex;

use autoscaler_core::JobStatus;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::daemon::TickReport;

/// What was observed already.
#[derive(Default)]
struct Seen {
    started_jobs: BTreeSet<u64>,
    joined_nodes: BTreeSet<String>,
}

pub(super) struct Waits {
    queue_wait: Histogram,
    join: Histogram,
    seen: Mutex<Seen>,
}

impl Waits {
    pub(super) fn new() -> Self {
        Self {
            queue_wait: Histogram::new([
                1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0,
            ]),
            join: Histogram::new([5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
            seen: Mutex::new(Seen::default()),
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "autoscaler_queue_wait_seconds",
            "From a job's creation to a runner starting it",
            self.queue_wait.clone(),
        );
        r.register(
            "autoscaler_join_duration_seconds",
            "From a node registering to it being Ready",
            self.join.clone(),
        );
    }

    pub(super) fn record(&self, r: &TickReport) {
        // A poisoned lock only means a panic elsewhere mid-update; the sets are still sets.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let jobs = r.snapshot.jobs.items();
        for j in jobs {
            if let (JobStatus::InProgress, Some(started)) = (j.status, j.started)
                && seen.started_jobs.insert(j.id)
            {
                self.queue_wait
                    .observe(started.duration_since(j.created).as_secs_f64().max(0.0));
            }
        }
        if r.snapshot.jobs.is_complete() {
            let running: BTreeSet<u64> = jobs
                .iter()
                .filter(|j| j.status == JobStatus::InProgress)
                .map(|j| j.id)
                .collect();
            seen.started_jobs.retain(|id| running.contains(id));
        }
        // Our machines only: the node list holds other installations' nodes too.
        let ours: BTreeSet<&str> = r.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        for n in r.snapshot.nodes.items() {
            if !ours.contains(n.name.as_str()) {
                continue;
            }
            if let (true, Some(ready), Some(created)) = (n.ready, n.ready_since, n.created)
                && seen.joined_nodes.insert(n.name.clone())
            {
                self.join
                    .observe(ready.duration_since(created).as_secs_f64().max(0.0));
            }
        }
    }
}
