//! Reading every source at once. A source that cannot be read becomes `Unavailable` with the
//! reason, never an empty list: the core then changes nothing it cannot see. What the reading
//! means (memory, fallbacks, the identity) is the pure shell's to say.

use std::time::Duration;

use autoscaler_core::ports::{ProviderError, Service};
use autoscaler_core::shell::{Identity, Reading};
use autoscaler_core::{Source, Timestamp};

use super::{Call, Providers, timed};

/// A reading and how it was taken.
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) reading: Reading,
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

/// Reads jobs, runners, servers, nodes and pods concurrently (and the cluster's identity when
/// `identity` asks for it), each call bounded by `limit`.
pub(crate) async fn observe(
    p: &Providers,
    now: Timestamp,
    identity: bool,
    limit: Duration,
) -> Observation {
    let (cluster, caps, jobs, runners, servers, nodes, pods) = tokio::join!(
        async {
            if identity {
                Some(
                    timed(
                        Service::Kubernetes,
                        "cluster_identity",
                        limit,
                        p.cluster.identity(),
                    )
                    .await,
                )
            } else {
                None
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
    let mut reading = Reading::new(now);
    if let Some((cluster, call)) = cluster {
        calls.push(call);
        reading.identity = match cluster {
            Ok(id) => Identity::Read(id),
            Err(e) => {
                let why = e.to_string();
                errors.push(e);
                Identity::Unreadable(why)
            }
        };
    }
    reading.forge = match caps.0 {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    reading.jobs = source(jobs.0, &mut errors);
    reading.runners = source(runners.0, &mut errors);
    reading.servers = source(servers.0, &mut errors);
    reading.nodes = source(nodes.0, &mut errors);
    reading.pods = source(pods.0, &mut errors);
    reading.hetzner_budget = p.cloud.budget();
    Observation {
        reading,
        calls,
        errors,
    }
}
