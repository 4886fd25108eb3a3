//! The daemon's async shell around the pure one (`autoscaler_core::shell`): read every source
//! concurrently, let the shell decide, carry the plan out, report the outcomes, and loop.

pub(crate) mod execute;
mod observe;
mod run;
mod tick;
mod warned;

use std::sync::Arc;
use std::time::{Duration, Instant};

use autoscaler_core::ports::{Cloud, Cluster, ErrorKind, Forge, ProviderError, Service};

pub(crate) use execute::Outcome;
pub(crate) use run::{Loop, Pusher};
pub(crate) use tick::{TickReport, tick};
pub(crate) use warned::Warned;

/// The three services, behind their ports.
#[derive(Clone)]
pub(crate) struct Providers {
    pub(crate) forge: Arc<dyn Forge>,
    pub(crate) cloud: Arc<dyn Cloud>,
    pub(crate) cluster: Arc<dyn Cluster>,
    /// Every new server gets a join token of its own (`JOIN_TOKENS=per-server`, the default);
    /// otherwise the cloud adapter writes the static one.
    pub(crate) mint_join_tokens: bool,
    /// The K3s version new agents install (`K3S_VERSION`, else the API server's): a baked image
    /// is used only when it was baked for it. `None` when it could not be read (`plan`).
    pub(crate) k3s_version: Option<String>,
}

/// One call to one service: for the latency and error metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) service: Service,
    pub(crate) name: &'static str,
    pub(crate) seconds: f64,
    pub(crate) error: Option<ErrorKind>,
}

/// Runs `fut` with a deadline and times it. The providers time out themselves; this is the
/// backstop that keeps one stuck call from holding the tick.
pub(crate) async fn timed<T>(
    service: Service,
    name: &'static str,
    limit: Duration,
    fut: impl Future<Output = Result<T, ProviderError>>,
) -> (Result<T, ProviderError>, Call) {
    let started = Instant::now();
    let result = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            service,
            ErrorKind::Timeout,
            format!("{name}: no answer within {limit:?}"),
        )),
    };
    let call = Call {
        service,
        name,
        seconds: started.elapsed().as_secs_f64(),
        error: result.as_ref().err().map(|e| e.kind),
    };
    (result, call)
}
