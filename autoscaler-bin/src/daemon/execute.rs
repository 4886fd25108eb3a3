//! Carrying a plan out: every action at once, each bounded by the call timeout.
//!
//! The core puts at most one step per machine in a plan and at most one label write per server,
//! so the actions are independent and may run concurrently. A failed action changes nothing the
//! next snapshot would not show; the core decides again from what is there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use autoscaler_core::ports::{DrainProgress, ErrorKind, NewServer, ProviderError, Service};
use autoscaler_core::{
    Action, CloudEffect, ClusterEffect, Effect, ForgeEffect, Plan, Policy, Server, Timestamp,
};
use tokio::task::JoinSet;

use super::{Call, Providers, timed};

/// What became of one action.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The action.
    pub(crate) action: Action,
    /// Why the core planned it.
    pub(crate) reason: String,
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
    let token = p.cluster.mint_join_token(&new.spec.name, expires).await?;
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

/// One action against the port its effect names; `expiries` says, per pool, when a new
/// server's join token expires.
async fn run(
    p: Providers,
    action: Action,
    now: Timestamp,
    expiries: Arc<BTreeMap<String, Timestamp>>,
) -> Result<Done, ProviderError> {
    match action.effect() {
        Effect::Cloud(CloudEffect::Create(spec)) => {
            let Some(expires) = expiries.get(&spec.pool).copied() else {
                return Err(ProviderError::new(
                    Service::Hetzner,
                    ErrorKind::Invalid,
                    format!(
                        "pool {} is not configured; no server is created for it",
                        spec.pool
                    ),
                ));
            };
            create(&p, NewServer::new(spec.clone()), expires).await
        }
        Effect::Cloud(CloudEffect::Label {
            server,
            key,
            value,
            revoke_first,
        }) => {
            // The label is the memory that the token still needs revoking: it goes only once
            // the token is gone.
            if let Some(token) = revoke_first {
                p.cluster.revoke_join_token(token).await?;
            }
            p.cloud
                .label_server(server, key, value)
                .await
                .map(|()| Done::Ok)
        }
        Effect::Cloud(CloudEffect::Delete {
            server,
            name,
            revoke_first,
        }) => {
            // The token goes first, so a server that never joined leaves nothing behind; a
            // failed revoke never keeps a server (and its bill): the token expires anyway.
            if let Some(token) = revoke_first
                && let Err(e) = p.cluster.revoke_join_token(token).await
            {
                tracing::warn!(server = %name, token = %token, error = %e, "could not revoke the join token; it expires on its own");
            }
            p.cloud.delete_server(server).await.map(|()| Done::Ok)
        }
        Effect::Forge(ForgeEffect::SetDisabled(runner, disabled)) => p
            .forge
            .set_runner_disabled(runner, disabled)
            .await
            .map(|()| Done::Ok),
        Effect::Forge(ForgeEffect::Delete(runner)) => {
            p.forge.delete_runner(runner).await.map(|()| Done::Ok)
        }
        Effect::Cluster(ClusterEffect::Annotate { node, key, value }) => p
            .cluster
            .annotate_node(node, key, value)
            .await
            .map(|()| Done::Ok),
        Effect::Cluster(ClusterEffect::Cordon(node)) => {
            p.cluster.cordon(node).await.map(|()| Done::Ok)
        }
        Effect::Cluster(ClusterEffect::Drain(node)) => {
            p.cluster.drain(node, now).await.map(Done::Drain)
        }
        Effect::Cluster(ClusterEffect::DeleteNode(node)) => {
            p.cluster.delete_node(node).await.map(|()| Done::Ok)
        }
    }
}

/// Carries out every action of `plan` concurrently; outcomes come back in the plan's order.
pub(crate) async fn execute(
    p: &Providers,
    policy: &Policy,
    plan: &Plan,
    now: Timestamp,
    limit: Duration,
) -> Vec<Outcome> {
    // A new server's join token outlives its pool's provisioning timeout a little.
    let expiries: Arc<BTreeMap<String, Timestamp>> = Arc::new(
        policy
            .config()
            .pools
            .iter()
            .map(|c| (c.name.clone(), c.join_token_expiry(now)))
            .collect(),
    );
    let mut set = JoinSet::new();
    for (i, planned) in plan.actions.iter().enumerate() {
        let action = planned.action.clone();
        let reason = planned.reason.to_string();
        let service = action.effect().service();
        let (p, expiries) = (p.clone(), Arc::clone(&expiries));
        set.spawn(async move {
            let name = action.kind();
            let (result, call) =
                timed(service, name, limit, run(p, action.clone(), now, expiries)).await;
            (
                i,
                Outcome {
                    action,
                    reason,
                    result,
                    call,
                },
            )
        });
    }
    let mut outcomes = Vec::with_capacity(plan.actions.len());
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
