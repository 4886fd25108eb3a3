//! Carrying a plan out: every action at once, each bounded by the call timeout.
//!
//! The core puts at most one step per machine in a plan and at most one label write per server,
//! so the actions are independent and may run concurrently. A failed action changes nothing the
//! next snapshot would not show; the core decides again from what is there.

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_core::ports::{DrainProgress, ErrorKind, NewServer, ProviderError, Service};
use autoscaler_core::{Action, Plan, Policy, Server, Snapshot, Timestamp};
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
        // The token is revoked first; the label write after it is the step that is remembered.
        Action::RetireJoinToken { .. } => Service::Kubernetes,
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

/// Creates a server; in per-server mode with a join token of its own, minted first to expire at
/// `expires` and revoked again when the create fails.
async fn create(
    p: &Providers,
    mut new: NewServer,
    expires: Timestamp,
) -> Result<Done, ProviderError> {
    if !p.mint_join_tokens {
        return p.cloud.create_server(&new).await.map(Done::Created);
    }
    let token = p.cluster.mint_join_token(&new.name, expires).await?;
    let id = token.id.clone();
    new.join_token = Some(token);
    match p.cloud.create_server(&new).await {
        Ok(server) => Ok(Done::Created(server)),
        Err(e) => {
            // Maybe the server was created and the answer lost: then it carries the token's id
            // and the core revokes it once the node joins or the server goes. Revoking here
            // would only make such a server fail its join; the token expires on its own.
            if !matches!(e.kind, ErrorKind::Timeout | ErrorKind::Transient)
                && let Err(r) = p.cluster.revoke_join_token(&id).await
            {
                tracing::warn!(token = %id, error = %r, "could not revoke the join token of a failed create; it expires on its own");
            }
            Err(e)
        }
    }
}

async fn run(
    p: Providers,
    action: Action,
    labels: Option<BTreeMap<String, String>>,
    now: Timestamp,
    expires: Timestamp,
) -> Result<Done, ProviderError> {
    match &action {
        Action::CreateServer { .. } => match NewServer::from_action(&action) {
            Some(new) => create(&p, new, expires).await,
            None => Err(ProviderError::new(
                Service::Hetzner,
                ErrorKind::Invalid,
                "not a create action",
            )),
        },
        Action::DeleteServer {
            server_id,
            server_name,
            join_token,
        } => {
            // The token goes first, so a server that never joined leaves nothing behind; a
            // failed revoke never keeps a server (and its bill): the token expires anyway.
            if let Some(id) = join_token
                && let Err(e) = p.cluster.revoke_join_token(id).await
            {
                tracing::warn!(server = %server_name, token = %id, error = %e, "could not revoke the join token; it expires on its own");
            }
            p.cloud.delete_server(*server_id).await.map(|()| Done::Ok)
        }
        Action::RetireJoinToken {
            server_id,
            token_id,
        } => {
            // Never a write of an empty set: Hetzner would take the ownership label away too.
            let Some(labels) = labels else {
                return Err(ProviderError::new(
                    Service::Hetzner,
                    ErrorKind::Invalid,
                    format!("server {server_id}: its labels are unknown"),
                ));
            };
            p.cluster.revoke_join_token(token_id).await?;
            p.cloud
                .set_server_labels(*server_id, &labels)
                .await
                .map(|()| Done::Ok)
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
    policy: &Policy,
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
        let expires = match &action {
            Action::CreateServer { pool, .. } => policy
                .config()
                .pools
                .iter()
                .find(|c| c.name == *pool)
                .map(|c| c.join_token_expiry(now)),
            _ => None,
        }
        .unwrap_or(now);
        let p = p.clone();
        set.spawn(async move {
            let name = action.kind();
            let (result, call) = timed(
                service,
                name,
                limit,
                run(p, action.clone(), labels, now, expires),
            )
            .await;
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
