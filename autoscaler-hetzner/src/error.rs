//! The crate's one error type, typed from Hetzner's error body.

use autoscaler_core::ports::{ErrorKind, ProviderError, Service};

/// Everything that can go wrong talking to Hetzner Cloud or rendering a server's user data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HetznerError {
    /// Hetzner answered with an error body (`{"error": {"code", "message", "details"}}`).
    #[error("{call}: HTTP {status} {code}: {message}")]
    Api {
        /// The call, e.g. `POST /servers`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// Hetzner's machine-readable code, e.g. `resource_unavailable`; the HTTP reason when
        /// the body was not JSON.
        code: String,
        /// Hetzner's message for people.
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
    /// The answer does not follow Hetzner's contract.
    #[error("{call}: unexpected response: {problem}")]
    Decode {
        /// The call.
        call: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// The client's own budget refused the call: the rate limit is spent or a 429 is recent.
    #[error("{call}: not sent, the Hetzner request budget is spent; retry in {retry_in_secs} s")]
    BudgetSpent {
        /// The call.
        call: String,
        /// When the budget allows the next request.
        retry_in_secs: u64,
    },
    /// The configuration or the join data is wrong.
    #[error("invalid Hetzner configuration: {0}")]
    Config(String),
    /// A label change for a server the last listing did not hold: Hetzner replaces the whole
    /// label set, so writing one without knowing the others would drop them (the ownership
    /// label among them).
    #[error(
        "server {server}: its labels are unknown (it was not in the last listing), so none is \
         written; the next tick lists it again"
    )]
    UnknownLabels {
        /// The server.
        server: u64,
    },
    /// A bake failed (what happened, and what became of its temporary server).
    #[error("the bake failed: {0}")]
    Bake(String),
}

impl HetznerError {
    /// How the daemon should treat this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api { status, code, .. } => kind_of(*status, code),
            Self::Transport { source, .. } if source.is_timeout() => ErrorKind::Timeout,
            Self::Transport { .. } => ErrorKind::Transient,
            Self::Decode { .. } => ErrorKind::BadResponse,
            Self::BudgetSpent { .. } => ErrorKind::RateLimited,
            Self::Config(_) | Self::UnknownLabels { .. } | Self::Bake(_) => ErrorKind::Invalid,
        }
    }

    /// Hetzner's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the object does not exist (`not_found`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }
}

/// The documented codes (SPEC §Errors, hcloud-go `error.go`) and what each means here.
fn kind_of(status: u16, code: &str) -> ErrorKind {
    match code {
        "rate_limit_exceeded" | "limit_reached" => ErrorKind::RateLimited,
        "resource_unavailable" | "placement_error" => ErrorKind::Capacity,
        "resource_limit_exceeded" => ErrorKind::Quota,
        "uniqueness_error" | "conflict" | "locked" | "resource_locked" => ErrorKind::Conflict,
        "not_found" => ErrorKind::NotFound,
        "unauthorized" | "token_readonly" | "forbidden" => ErrorKind::Auth,
        "timeout" => ErrorKind::Timeout,
        "server_error" | "unavailable" | "bad_gateway" | "maintenance" | "robot_unavailable" => {
            ErrorKind::Transient
        }
        "invalid_input"
        | "json_error"
        | "invalid_server_type"
        | "protected"
        | "unsupported_error"
        | "service_error"
        | "method_not_allowed" => ErrorKind::Invalid,
        "deprecated_api_endpoint" => ErrorKind::Unsupported,
        _ => match status {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            409 | 423 => ErrorKind::Conflict,
            429 => ErrorKind::RateLimited,
            504 => ErrorKind::Timeout,
            s if s >= 500 => ErrorKind::Transient,
            _ => ErrorKind::Invalid,
        },
    }
}

impl From<HetznerError> for ProviderError {
    fn from(e: HetznerError) -> Self {
        Self::new(Service::Hetzner, e.kind(), e.to_string())
    }
}
