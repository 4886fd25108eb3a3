//! Reading every source at once into a snapshot. A source that cannot be read becomes
//! `Unavailable` with the reason, never an empty list: the core then changes nothing it cannot
//! see.

use std::time::Duration;

use autoscaler_core::ports::{ProviderError, Service};
use autoscaler_core::{ForgeCapabilities, Snapshot, Source, Timestamp};

use super::{Call, Memory, Providers, timed};

/// A snapshot and how it was read.
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) snapshot: Snapshot,
    pub(crate) calls: Vec<Call>,
    pub(crate) errors: Vec<ProviderError>,
}

fn source<T>(r: Result<Source<T>, ProviderError>, errors: &mut Vec<ProviderError>) -> Source<T> {
    match r {
        Ok(s) => s,
        Err(e) => {
            let reason = e.to_string();
            errors.push(e);
            Source::unavailable(reason)
        }
    }
}

/// Reads jobs, runners, servers, nodes and pods concurrently, each call bounded by `limit`.
pub(crate) async fn observe(
    p: &Providers,
    memory: &mut Memory,
    now: Timestamp,
    limit: Duration,
) -> Observation {
    let known = memory.cluster.is_some();
    let (identity, caps, jobs, runners, servers, nodes, pods) = tokio::join!(
        async {
            if known {
                None
            } else {
                Some(
                    timed(
                        Service::Kubernetes,
                        "cluster_identity",
                        limit,
                        p.cluster.identity(),
                    )
                    .await,
                )
            }
        },
        timed(Service::Gitea, "version", limit, p.forge.capabilities()),
        timed(Service::Gitea, "list_jobs", limit, p.forge.jobs()),
        timed(Service::Gitea, "list_runners", limit, p.forge.runners()),
        timed(Service::Hetzner, "list_servers", limit, p.cloud.servers()),
        timed(Service::Kubernetes, "list_nodes", limit, p.cluster.nodes()),
        timed(
            Service::Kubernetes,
            "list_runner_pods",
            limit,
            p.cluster.runner_pods()
        ),
    );
    let mut errors = Vec::new();
    let mut calls = vec![caps.1, jobs.1, runners.1, servers.1, nodes.1, pods.1];
    let mut unknown_cluster = None;
    if let Some((identity, call)) = identity {
        calls.push(call);
        match identity {
            Ok(id) => memory.cluster = Some(id),
            Err(e) => {
                unknown_cluster = Some(format!(
                    "this cluster's identity could not be read ({e}), so our servers cannot be \
                     told from those of another installation of the same name"
                ));
                errors.push(e);
            }
        }
    }
    let forge = match caps.0 {
        Ok(c) => {
            memory.capabilities = Some(c);
            c
        }
        Err(e) => {
            errors.push(e);
            // Without knowing, assume the older Gitea: no runner is disabled.
            memory.capabilities.unwrap_or(ForgeCapabilities {
                can_disable_runners: false,
            })
        }
    };
    let mut jobs = source(jobs.0, &mut errors);
    memory.learn(&jobs, now);
    memory.annotate(&mut jobs);
    let mut snapshot = Snapshot::new(now);
    snapshot.forge = forge;
    snapshot.jobs = jobs;
    snapshot.runners = source(runners.0, &mut errors);
    snapshot.servers = source(servers.0, &mut errors);
    // Without the identity, the server list is no evidence for anything destructive.
    if let Some(reason) = unknown_cluster
        && let Source::Complete { items } = std::mem::take(&mut snapshot.servers)
    {
        snapshot.servers = Source::Partial { items, reason };
    }
    snapshot.cluster = memory.cluster.clone();
    snapshot.nodes = source(nodes.0, &mut errors);
    snapshot.pods = source(pods.0, &mut errors);
    snapshot.create_failures = memory.failures(now);
    snapshot.hetzner_budget = p.cloud.budget();
    Observation {
        snapshot,
        calls,
        errors,
    }
}
