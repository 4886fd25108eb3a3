//! The design we replace, rustunit/gitea-ci-autoscaler v0.2, rebuilt faithfully enough to
//! compare costs and waits on the same world:
//!
//! - one runner per node; it creates `waiting − idle − provisioning` servers each poll, up to
//!   `MAX_NODES` servers in all;
//! - a node is idle when its runner runs no job; after 5 idle minutes, and only inside the last
//!   5 minutes of each billed hour (counted from the server's creation), its runner, node and
//!   server are deleted at once;
//! - a server with no node after 600 s is deleted;
//! - no warm pool, no webhook, no backoff; a tick in which any list cannot be read does nothing.
//!
//! It keeps its idle timers in memory, as the seed did. Pools are handled one after the other
//! with the same rule, so a multi-pool scenario compares like with like.

use std::collections::BTreeMap;

use autoscaler_core::labels::satisfies;
use autoscaler_core::shell::Identity;
use autoscaler_core::{
    Action, Config, JobStatus, ServerSpec, SignedDuration, Snapshot, Source, Timestamp, keys,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::policy::Autoscaler;

const IDLE_TIMEOUT: SignedDuration = SignedDuration::from_mins(5);
const BILLING_WINDOW: SignedDuration = SignedDuration::from_mins(5);
const PROVISIONING_TIMEOUT: SignedDuration = SignedDuration::from_secs(600);
const HOUR: i64 = 3600;

/// The seed's daemon.
#[derive(Debug, Clone)]
pub struct Baseline {
    config: Config,
    idle_since: FxHashMap<String, Timestamp>,
    created: u64,
}

impl Baseline {
    /// The seed with `config`'s global `max_nodes` and its pools' server types, locations,
    /// images and runner labels.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            idle_since: FxHashMap::default(),
            created: 0,
        }
    }
}

/// True when the source was read completely; the seed gave up on any error.
fn complete<T>(s: &Source<T>) -> bool {
    matches!(s, Source::Complete { .. })
}

impl Autoscaler for Baseline {
    fn name(&self) -> &str {
        "baseline"
    }

    fn decide(&mut self, s: &mut Snapshot, _: Identity) -> Vec<Action> {
        if !(complete(&s.jobs)
            && complete(&s.runners)
            && complete(&s.servers)
            && complete(&s.nodes)
            && complete(&s.pods))
        {
            return Vec::new();
        }
        let now = s.now;
        let owner = self.config.installation.as_str();
        let busy: FxHashSet<u64> = s
            .jobs
            .items()
            .iter()
            .filter(|j| j.status == JobStatus::InProgress)
            .filter_map(|j| j.runner_id)
            .collect();
        let pod_node: FxHashMap<&str, &str> = s
            .pods
            .items()
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.node.as_deref()?)))
            .collect();
        // Per node: its online runners' ids and whether any is busy.
        let mut runners_of: FxHashMap<&str, Vec<(u64, bool)>> = FxHashMap::default();
        for r in s.runners.items() {
            if let Some(node) = pod_node.get(r.name.as_str()) {
                runners_of
                    .entry(node)
                    .or_default()
                    .push((r.id, r.online && !r.disabled));
            }
        }
        let nodes: FxHashMap<&str, bool> = s
            .nodes
            .items()
            .iter()
            .map(|n| (n.name.as_str(), n.ready))
            .collect();

        let mut actions = Vec::new();
        let mut servers = 0u32;
        let pools = &self.config.pools;
        let mut idle = vec![0u32; pools.len()];
        let mut provisioning = vec![0u32; pools.len()];
        let mut seen = FxHashSet::default();
        for server in s.servers.items() {
            if server.labels.get(keys::OWNER).map(String::as_str) != Some(owner) {
                continue;
            }
            servers += 1;
            let pool = server
                .labels
                .get(keys::POOL)
                .and_then(|name| pools.iter().position(|p| &p.name == name))
                .unwrap_or(0);
            let name = server.name.as_str();
            let online: Vec<(u64, bool)> = runners_of
                .get(name)
                .map(|rs| rs.iter().copied().filter(|(_, on)| *on).collect())
                .unwrap_or_default();
            if nodes.get(name) != Some(&true) || online.is_empty() {
                if now.duration_since(server.created) > PROVISIONING_TIMEOUT
                    && !nodes.contains_key(name)
                {
                    actions.push(Action::DeleteServer {
                        server_id: server.id,
                        server_name: server.name.clone(),
                        join_token: None,
                    });
                } else {
                    provisioning[pool] += 1;
                }
                continue;
            }
            seen.insert(name.to_owned());
            let working = online.iter().any(|(id, _)| busy.contains(id));
            if working {
                self.idle_since.remove(name);
                continue;
            }
            idle[pool] += 1;
            let since = *self.idle_since.entry(name.to_owned()).or_insert(now);
            let age = now.duration_since(server.created).as_secs();
            let into_hour = age.rem_euclid(HOUR);
            if now.duration_since(since) >= IDLE_TIMEOUT
                && into_hour >= HOUR - BILLING_WINDOW.as_secs()
            {
                for (id, _) in runners_of.get(name).into_iter().flatten() {
                    actions.push(Action::DeleteRunner {
                        runner_id: *id,
                        runner_name: String::new(),
                    });
                }
                actions.push(Action::DeleteNode {
                    node: server.name.clone(),
                });
                actions.push(Action::DeleteServer {
                    server_id: server.id,
                    server_name: server.name.clone(),
                    join_token: None,
                });
                idle[pool] -= 1;
                self.idle_since.remove(name);
            }
        }
        self.idle_since.retain(|name, _| seen.contains(name));

        // Waiting jobs per pool: the first pool whose runners can take them.
        let mut waiting = vec![0u32; pools.len()];
        for job in s.jobs.items() {
            if job.status != JobStatus::Queued {
                continue;
            }
            if let Some(p) = pools.iter().position(|p| satisfies(&p.labels, &job.labels)) {
                waiting[p] += 1;
            }
        }
        let mut room = self.config.max_nodes.saturating_sub(servers);
        for (p, pool) in pools.iter().enumerate() {
            let want = waiting[p]
                .saturating_sub(idle[p] + provisioning[p])
                .min(room);
            room -= want;
            for _ in 0..want {
                self.created += 1;
                let labels: BTreeMap<String, String> = [
                    (keys::OWNER.to_owned(), owner.to_owned()),
                    (keys::POOL.to_owned(), pool.name.clone()),
                ]
                .into_iter()
                .collect();
                actions.push(Action::CreateServer(ServerSpec {
                    pool: pool.name.clone(),
                    name: format!("seed-{}-{}", pool.name, self.created),
                    server_type: pool.server_types[0].clone(),
                    location: pool.locations[0].clone(),
                    image: pool.image.clone(),
                    baked_image: None,
                    node_labels: labels.clone(),
                    labels,
                }));
            }
        }
        actions
    }

    fn keeps(&self, _now: Timestamp) -> u32 {
        0
    }

    fn event_driven(&self) -> bool {
        false
    }
}
