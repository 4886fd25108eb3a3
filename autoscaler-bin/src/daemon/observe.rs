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

/// What a reading includes besides the five lists, as the shell asks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extras {
    /// The cluster's identity ([`Shell::wants_identity`](autoscaler_core::shell::Shell::wants_identity)).
    pub(crate) identity: bool,
    /// The snapshot images ([`Shell::wants_images`](autoscaler_core::shell::Shell::wants_images)).
    pub(crate) images: bool,
}

/// Reads jobs, runners, servers, nodes and pods concurrently (and the cluster's identity and the
/// images when `extras` asks for them), each call bounded by `limit`.
pub(crate) async fn observe(
    p: &Providers,
    now: Timestamp,
    extras: Extras,
    limit: Duration,
) -> Observation {
    let identity = extras.identity;
    let (cluster, images, caps, jobs, runners, servers, nodes, pods) = tokio::join!(
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
        async {
            if extras.images {
                Some(timed(Service::Hetzner, "list_images", limit, p.cloud.images()).await)
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
    if let Some((images, call)) = images {
        calls.push(call);
        reading.images = Some(source(images, &mut errors));
    }
    reading.k3s_version.clone_from(&p.k3s_version);
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
