//! Carrying a plan out: every action at once, each bounded by the call timeout.
//!
//! The core puts at most one step per machine in a plan and at most one label write per server,
//! so the actions are independent and may run concurrently. A failed action changes nothing the
//! next snapshot would not show; the core decides again from what is there.

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_core::ports::{DrainProgress, ErrorKind, NewServer, ProviderError, Service};
use autoscaler_core::{Action, Plan, Server, Snapshot, Timestamp};
use tokio::task::JoinSet;

use super::{Call, Providers, timed};

/// What became of one action.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The action.
    pub(crate) action: Action,
    /// What happened.
    pub(crate) result: Result<Done, ProviderError>,
    /// The call, for the metrics.
    pub(crate) call: Call,
}

/// What a successful action gave back.
#[derive(Debug, PartialEq)]
pub(crate) enum Done {
    /// Nothing to report.
    Ok,
    /// The server that was created.
    Created(Server),
    /// How far the drain got.
    Drain(DrainProgress),
}

fn service_of(action: &Action) -> Service {
    match action {
        Action::CreateServer { .. } | Action::DeleteServer { .. } => Service::Hetzner,
        a if a.writes_server_labels() => Service::Hetzner,
        Action::DisableRunner { .. }
        | Action::EnableRunner { .. }
        | Action::DeleteRunner { .. } => Service::Gitea,
        _ => Service::Kubernetes,
    }
}

/// The labels a server should carry after `action`, from the labels last read.
fn labels_after(
    action: &Action,
    servers: &BTreeMap<u64, BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let id = action.server_id().unwrap_or_default();
    let (key, value) = action.server_label_write().unwrap_or(("", None));
    let mut labels = servers.get(&id).cloned().ok_or_else(|| {
        ProviderError::new(
            Service::Hetzner,
            ErrorKind::Invalid,
            format!("server {id} is not in the snapshot; its labels are unknown"),
        )
    })?;
    match value {
        Some(v) => labels.insert(key.to_owned(), v),
        None => labels.remove(key),
    };
    Ok(labels)
}

async fn run(
    p: Providers,
    action: Action,
    labels: Option<BTreeMap<String, String>>,
    now: Timestamp,
) -> Result<Done, ProviderError> {
    match &action {
        Action::CreateServer { .. } => {
            let new = NewServer::from_action(&action).expect("a create action");
            p.cloud.create_server(&new).await.map(Done::Created)
        }
        Action::DeleteServer { server_id, .. } => {
            p.cloud.delete_server(*server_id).await.map(|()| Done::Ok)
        }
        Action::DisableRunner { runner_id, .. } => p
            .forge
            .set_runner_disabled(*runner_id, true)
            .await
            .map(|()| Done::Ok),
        Action::EnableRunner { runner_id, .. } => p
            .forge
            .set_runner_disabled(*runner_id, false)
            .await
            .map(|()| Done::Ok),
        Action::DeleteRunner { runner_id, .. } => {
            p.forge.delete_runner(*runner_id).await.map(|()| Done::Ok)
        }
        Action::Cordon { node } => p.cluster.cordon(node).await.map(|()| Done::Ok),
        Action::Drain { node } => p.cluster.drain(node, now).await.map(Done::Drain),
        Action::DeleteNode { node } => p.cluster.delete_node(node).await.map(|()| Done::Ok),
        a if a.writes_server_labels() => {
            let labels = labels.expect("labels computed for a label write");
            p.cloud
                .set_server_labels(a.server_id().unwrap_or_default(), &labels)
                .await
                .map(|()| Done::Ok)
        }
        a => {
            let (key, value) = a
                .node_annotation_write()
                .expect("every other action annotates");
            let node = a.node().unwrap_or_default();
            p.cluster
                .annotate_node(node, key, value)
                .await
                .map(|()| Done::Ok)
        }
    }
}

/// Carries out every action of `plan` concurrently; outcomes come back in the plan's order.
pub(crate) async fn execute(
    p: &Providers,
    plan: &Plan,
    snapshot: &Snapshot,
    now: Timestamp,
    limit: Duration,
) -> Vec<Outcome> {
    let servers: BTreeMap<u64, BTreeMap<String, String>> = snapshot
        .servers
        .items()
        .iter()
        .map(|s| (s.id, s.labels.clone()))
        .collect();
    let mut set = JoinSet::new();
    let mut early = Vec::new();
    for (i, planned) in plan.actions.iter().enumerate() {
        let action = planned.action.clone();
        let service = service_of(&action);
        let labels = if action.writes_server_labels() {
            match labels_after(&action, &servers) {
                Ok(l) => Some(l),
                Err(e) => {
                    let call = Call {
                        service,
                        name: action.kind(),
                        seconds: 0.0,
                        error: Some(e.kind),
                    };
                    early.push((
                        i,
                        Outcome {
                            action,
                            result: Err(e),
                            call,
                        },
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        let p = p.clone();
        set.spawn(async move {
            let name = action.kind();
            let (result, call) =
                timed(service, name, limit, run(p, action.clone(), labels, now)).await;
            (
                i,
                Outcome {
                    action,
                    result,
                    call,
                },
            )
        });
    }
    let mut outcomes = early;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(o) => outcomes.push(o),
            // A panicking provider is a bug; its action simply did not happen.
            Err(e) => tracing::error!(error = %e, "an action task failed"),
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, o)| o).collect()
}
