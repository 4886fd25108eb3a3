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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use autoscaler_gitea::webhook::sign;

    use super::*;

    const SECRET: &str = "hook-secret";
    const BODY: &str = r#"{"action": "queued", "workflow_job": {"id": 7, "labels": ["ubuntu-latest"],
        "status": "queued", "created_at": "2026-11-25T10:00:00Z",
        "url": "https://g/api/v1/repos/a/b/actions/jobs/7"}}"#;

    async fn serve(secret: Option<&str>) -> (String, Arc<AppState>) {
        let state = Arc::new(AppState {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new(
                Timestamp::now(),
                Duration::from_secs(5),
                Duration::from_secs(10),
            )),
            trigger: Arc::new(Notify::new()),
            webhook_secret: secret.map(|s| SecretString::from(s.to_owned())),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, state)
    }

    fn client() -> reqwest::Client {
        crate::wiring::install_crypto();
        reqwest::Client::new()
    }

    async fn deliver(url: &str, signature: &str, body: &str) -> reqwest::Response {
        client()
            .post(format!("{url}/webhook"))
            .header("X-Gitea-Event", "workflow_job")
            .header("X-Gitea-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_signed_delivery_triggers_a_tick() {
        let (url, state) = serve(Some(SECRET)).await;
        let sig = sign(&SecretString::from(SECRET), BODY.as_bytes());
        let resp = deliver(&url, &sig, BODY).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        tokio::time::timeout(Duration::from_secs(1), state.trigger.notified())
            .await
            .expect("the loop was woken");
        assert!(
            state
                .metrics
                .encode()
                .contains(r#"autoscaler_webhook_deliveries_total{result="queued"} 1"#)
        );
    }

    #[tokio::test]
    async fn forged_unreadable_and_unwanted_deliveries_are_refused() {
        let (url, state) = serve(Some(SECRET)).await;
        let forged = sign(&SecretString::from("guess"), BODY.as_bytes());
        assert_eq!(
            deliver(&url, &forged, BODY).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let junk = "{not json";
        let sig = sign(&SecretString::from(SECRET), junk.as_bytes());
        let resp = deliver(&url, &sig, junk).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.text().await.unwrap().contains("workflow_job body"));
        assert!(
            tokio::time::timeout(Duration::from_millis(100), state.trigger.notified())
                .await
                .is_err(),
            "nothing woke the loop"
        );
        let (url, _) = serve(None).await;
        assert_eq!(
            deliver(&url, &forged, BODY).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_are_served() {
        let (url, state) = serve(None).await;
        let get = |path: &str| client().get(format!("{url}{path}")).send();
        assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
        assert_eq!(
            get("/readyz").await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.health.ticked(Timestamp::now(), true);
        assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
        let resp = get("/metrics").await.unwrap();
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("# TYPE autoscaler_loop_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
