//! The crate's one error type, and how it maps onto the port's error kinds.

use autoscaler_core::ports::{ErrorKind, ProviderError, Service};

/// Everything that can go wrong talking to Gitea or reading a webhook delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GiteaError {
    /// Gitea answered with an error status.
    #[error("{call}: HTTP {status}: {message}")]
    Api {
        /// The call, e.g. `GET /admin/actions/jobs`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// Gitea's `message`, or the start of the body when it is not JSON.
        message: String,
    },
    /// The request did not get an answer: connection refused, reset, or timed out.
    #[error("{call}: {}", autoscaler_core::ports::with_causes(source))]
    Transport {
        /// The call.
        call: String,
        /// reqwest's error (it names the URL, which never holds the token).
        #[source]
        source: reqwest::Error,
    },
    /// The answer does not follow Gitea's contract.
    #[error("{call}: unexpected response: {problem}")]
    Decode {
        /// The call.
        call: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// The Gitea server is too old for a call.
    #[error("Gitea {found} is too old for {what}: {needed} or newer is needed")]
    TooOld {
        /// What was asked for.
        what: &'static str,
        /// The version the server reported.
        found: String,
        /// The first version that has it.
        needed: &'static str,
    },
    /// The configuration is wrong.
    #[error("invalid Gitea configuration: {0}")]
    Config(String),
    /// A webhook delivery was refused.
    #[error("webhook delivery refused: {0}")]
    Webhook(String),
}

impl GiteaError {
    /// How the daemon should treat this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api { status, .. } => match status {
                401 | 403 => ErrorKind::Auth,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                429 => ErrorKind::RateLimited,
                400 | 405 | 422 => ErrorKind::Invalid,
                s if *s >= 500 => ErrorKind::Transient,
                _ => ErrorKind::BadResponse,
            },
            Self::Transport { source, .. } if source.is_timeout() => ErrorKind::Timeout,
            Self::Transport { .. } => ErrorKind::Transient,
            Self::Decode { .. } => ErrorKind::BadResponse,
            Self::TooOld { .. } => ErrorKind::Unsupported,
            Self::Config(_) | Self::Webhook(_) => ErrorKind::Invalid,
        }
    }

    /// Whether this is Gitea's answer "no such object".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }
}

impl From<GiteaError> for ProviderError {
    fn from(e: GiteaError) -> Self {
        Self::new(Service::Gitea, e.kind(), e.to_string())
    }
}
