//! The crate's one error type, and how it maps onto the port's error kinds.

use autoscaler_core::ports::{ErrorKind, ProviderError, Service};

/// Everything that can go wrong talking to the Kubernetes API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum K3sError {
    /// The API server answered with an error status.
    #[error("{call}: HTTP {code} {reason}: {message}")]
    Api {
        /// The call, e.g. `evict pod runners/act-1`.
        call: String,
        /// The HTTP status.
        code: u16,
        /// Kubernetes' reason, e.g. `TooManyRequests`.
        reason: String,
        /// Its message.
        message: String,
    },
    /// The call failed before an answer: connection, TLS, or a body kube could not read.
    #[error("{call}: {}", autoscaler_core::ports::with_causes(source))]
    Client {
        /// The call.
        call: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The call did not finish in time.
    #[error("{call}: no answer within the call timeout")]
    Timeout {
        /// The call.
        call: String,
    },
    /// A list could not be read in full, and the step needs all of it.
    #[error("{0}")]
    Incomplete(String),
    /// The answer lacks what the contract promises.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The configuration (kubeconfig, in-cluster environment) is unusable.
    #[error("invalid Kubernetes configuration: {0}")]
    Config(String),
}

impl K3sError {
    pub(crate) fn from_kube(call: impl Into<String>, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => Self::Api {
                call: call.into(),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            // kube's own read timeout fired before ours: still a timeout.
            other if timed_out(&other) => Self::Timeout { call: call.into() },
            other => Self::Client {
                call: call.into(),
                source: other,
            },
        }
    }

    /// The HTTP status, when the API server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// How the daemon should treat this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api { code, .. } => match code {
                401 | 403 => ErrorKind::Auth,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                429 => ErrorKind::RateLimited,
                400 | 405 | 422 => ErrorKind::Invalid,
                504 => ErrorKind::Timeout,
                c if *c >= 500 => ErrorKind::Transient,
                _ => ErrorKind::BadResponse,
            },
            Self::Client { .. } | Self::Incomplete(_) => ErrorKind::Transient,
            Self::Decode(_) => ErrorKind::BadResponse,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Config(_) => ErrorKind::Invalid,
        }
    }
}

fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        let text = err.to_string();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        cur = err.source();
    }
    false
}

impl From<K3sError> for ProviderError {
    fn from(e: K3sError) -> Self {
        Self::new(Service::Kubernetes, e.kind(), e.to_string())
    }
}
