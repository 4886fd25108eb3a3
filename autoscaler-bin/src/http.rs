//! The HTTP side: `/metrics`, `/healthz`, `/readyz` and the Gitea webhook.
//!
//! The webhook only makes the loop tick early: a delivery is checked (HMAC-SHA256) and then
//! dropped, the jobs list stays the truth. Bursts coalesce in the loop.

use std::sync::Arc;

use autoscaler_core::{JobStatus, Timestamp};
use autoscaler_gitea::webhook::{self, Delivery, Event};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::health::Health;
use crate::metrics::Metrics;

/// What the handlers share with the loop.
pub(crate) struct AppState {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Arc<Health>,
    pub(crate) trigger: Arc<Notify>,
    pub(crate) webhook_secret: Option<SecretString>,
}

/// The routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/webhook", post(hook))
        .with_state(state)
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn healthz(State(s): State<Arc<AppState>>) -> StatusCode {
    if s.health.alive(Timestamp::now()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn readyz(State(s): State<Arc<AppState>>) -> StatusCode {
    if s.health.ready(Timestamp::now()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn header_str<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
}

async fn hook(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = &s.webhook_secret else {
        s.metrics.webhook("disabled");
        return (
            StatusCode::NOT_FOUND,
            "the webhook is off: set GITEA_WEBHOOK_SECRET".to_owned(),
        );
    };
    let delivery = Delivery {
        event: header_str(&headers, &[webhook::EVENT_HEADER, "X-GitHub-Event"]),
        signature: header_str(&headers, &[webhook::SIGNATURE_HEADER]),
        hub_signature_256: header_str(&headers, &[webhook::HUB_SIGNATURE_HEADER]),
        body: &body,
    };
    if let Err(e) = webhook::verify(secret, &delivery) {
        s.metrics.webhook("unauthorized");
        tracing::warn!(error = %e, "webhook delivery refused");
        return (StatusCode::UNAUTHORIZED, e.to_string());
    }
    match webhook::receive(secret, &delivery) {
        Ok(Event::WorkflowJob { action, job }) => {
            // Any change of a job may change the plan; a new queued job is the urgent one.
            tracing::debug!(job = job.id, ?action, "workflow_job delivery");
            s.trigger.notify_one();
            s.metrics.webhook(if action == JobStatus::Queued {
                "queued"
            } else {
                "other_job_event"
            });
            (StatusCode::ACCEPTED, String::new())
        }
        Ok(Event::Other { event }) => {
            s.metrics.webhook("ignored");
            (StatusCode::OK, format!("ignored event {event}"))
        }
        Err(e) => {
            s.metrics.webhook("bad_request");
            tracing::warn!(error = %e, "webhook delivery unreadable");
            (StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}
