//! What the fleet and the queue look like after a tick, from the plan and the snapshot: the
//! leader's to report, each figure absent while its source cannot be read.

use std::collections::BTreeSet;

use autoscaler_core::{Config, JobStatus, NodeState};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::known::Known;
use super::labels::{SourceName, StatePool};
use crate::daemon::TickReport;

/// The sources a snapshot is read from, by the name `autoscaler_source_readable` gives them.
const SOURCES: [&str; 5] = [
    "gitea_jobs",
    "gitea_runners",
    "hetzner_servers",
    "kubernetes_nodes",
    "kubernetes_pods",
];

#[derive(Default)]
pub(super) struct Fleet {
    managed_nodes: Family<StatePool, Gauge>,
    desired_nodes: Known<Gauge>,
    jobs_waiting: Known<Gauge>,
    jobs_running: Known<Gauge>,
    source_readable: Family<SourceName, Gauge>,
    /// The configured pools, each shown with a zero for every state.
    pools: Vec<String>,
}

impl Fleet {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            pools: config.pools.iter().map(|p| p.name.clone()).collect(),
            ..Self::default()
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "autoscaler_managed_nodes",
            "Managed machines by state and pool; absent while the servers or the nodes cannot be read",
            self.managed_nodes.clone(),
        );
        r.register(
            "autoscaler_desired_nodes",
            "Servers wanted after the last plan, all pools",
            self.desired_nodes.family(),
        );
        r.register(
            "autoscaler_jobs_waiting",
            "Runnable jobs waiting for a runner; absent while the jobs cannot be read",
            self.jobs_waiting.family(),
        );
        r.register(
            "autoscaler_jobs_running",
            "Jobs a runner is working on; absent while the jobs cannot be read",
            self.jobs_running.family(),
        );
        r.register(
            "autoscaler_source_readable",
            "1 when the last tick read the source in full, 0 when it could not",
            self.source_readable.clone(),
        );
    }

    pub(super) fn record(&self, r: &TickReport) {
        let snap = &r.snapshot;
        for (source, complete) in SOURCES.into_iter().zip([
            snap.jobs.is_complete(),
            snap.runners.is_complete(),
            snap.servers.is_complete(),
            snap.nodes.is_complete(),
            snap.pods.is_complete(),
        ]) {
            self.source_readable
                .get_or_create(&SourceName { source })
                .set(i64::from(complete));
        }
        self.managed_nodes.clear();
        // The machines' states need both the servers and the nodes; without either they are
        // unknown, not zero.
        if snap.servers.is_complete() && snap.nodes.is_complete() {
            let pools: BTreeSet<&String> = self
                .pools
                .iter()
                .chain(r.plan.nodes.iter().map(|n| &n.pool))
                .collect();
            for pool in pools {
                for state in NodeState::NAMES {
                    self.managed_nodes
                        .get_or_create(&StatePool {
                            state,
                            pool: pool.clone(),
                        })
                        .set(0);
                }
            }
            for n in &r.plan.nodes {
                self.managed_nodes
                    .get_or_create(&StatePool {
                        state: n.state.name(),
                        pool: n.pool.clone(),
                    })
                    .inc();
            }
        }
        self.desired_nodes
            .set(r.plan.pools.iter().map(|p| i64::from(p.desired)).sum());
        if snap.jobs.is_complete() {
            let jobs = snap.jobs.items();
            let count = |status: JobStatus| {
                i64::try_from(jobs.iter().filter(|j| j.status == status).count())
                    .unwrap_or(i64::MAX)
            };
            self.jobs_waiting.set(count(JobStatus::Queued));
            self.jobs_running.set(count(JobStatus::InProgress));
        } else {
            self.jobs_waiting.unknown();
            self.jobs_running.unknown();
        }
    }

    /// Another replica leads: nothing of this is ours to say.
    pub(super) fn unknown(&self) {
        self.managed_nodes.clear();
        self.desired_nodes.unknown();
        self.jobs_waiting.unknown();
        self.jobs_running.unknown();
        self.source_readable.clear();
    }
}
