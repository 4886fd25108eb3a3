//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Only the replica holding the lease changes anything; the others keep reading (so `/readyz`
//! and metrics stay true) and take over when the lease expires or is released. Every write is a
//! `replace` carrying the `resourceVersion` that was read, so two replicas racing for an expired
//! lease cannot both win: the API server answers the loser with 409. Time is passed in, as in
//! the core; the lease's clock is the daemon's wall clock.

use std::time::Duration;

use async_trait::async_trait;
use autoscaler_core::Timestamp;
use autoscaler_core::ports::{Leadership, ProviderError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::K3sError;

/// A lease held under one identity (the pod's name).
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

enum Verdict {
    Ours,
    Taken,
}

impl LeaseLock {
    /// A lock on the lease `namespace/name` for `identity`, valid `duration` after each renewal.
    pub fn new(
        client: Client,
        namespace: &str,
        name: impl Into<String>,
        identity: impl Into<String>,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            duration,
            timeout: Duration::from_secs(5),
        }
    }

    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, K3sError> {
        let call = format!("{what} lease {}", self.name);
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(K3sError::Timeout { call }),
            Ok(r) => r.map_err(|e| K3sError::from_kube(call, e)),
        }
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// Takes or renews the lease at `now`.
    pub async fn try_acquire(&self, now: Timestamp) -> Result<bool, K3sError> {
        let current = match self.call("get", self.api.get(&self.name)).await {
            Ok(l) => Some(l),
            Err(e) if e.code() == Some(404) => None,
            Err(e) => return Err(e),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec_for(now, now, 0)),
            };
            return match self
                .call("create", self.api.create(&PostParams::default(), &lease))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(409) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let verdict = if holder == self.identity {
            Verdict::Ours
        } else if holder.is_empty() || expired(&spec, now) {
            Verdict::Taken
        } else {
            return Ok(false);
        };
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(match verdict {
            Verdict::Ours => {
                let acquired = spec.acquire_time.map_or(now, |t| t.0);
                self.spec_for(acquired, now, transitions)
            }
            Verdict::Taken => self.spec_for(now, now, transitions + 1),
        });
        match self
            .call(
                "replace",
                self.api.replace(&self.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => Ok(true),
            // Another replica wrote first.
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up if this identity holds it.
    pub async fn give_up(&self) -> Result<(), K3sError> {
        let mut lease = match self.call("get", self.api.get(&self.name)).await {
            Ok(l) => l,
            Err(e) if e.code() == Some(404) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = None;
        match self
            .call(
                "release",
                self.api.replace(&self.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn spec_for(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.seconds()),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    renewed
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map_or(true, |until| now >= until)
}

#[async_trait]
impl Leadership for LeaseLock {
    async fn acquire_or_renew(&self, now: Timestamp) -> Result<bool, ProviderError> {
        Ok(self.try_acquire(now).await?)
    }

    async fn release(&self) -> Result<(), ProviderError> {
        Ok(self.give_up().await?)
    }
}
