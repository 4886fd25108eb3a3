//! The HTTP side: `/metrics`, `/healthz`, `/readyz` and the Gitea webhook (`hook`).
//!
//! The webhook only makes the loop tick early: a delivery is checked (HMAC-SHA256) and then
//! dropped, the jobs list stays the truth. Bursts coalesce in the loop.

mod hook;
mod serve;

pub(crate) use hook::{Hook, WEBHOOK_RESULTS};
pub(crate) use serve::serve;

use std::sync::Arc;

use autoscaler_core::Timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::health::Health;
use crate::metrics::Metrics;

/// What the handlers share with the loop.
pub(crate) struct AppState {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Arc<Health>,
    pub(crate) trigger: Arc<Notify>,
    pub(crate) hook: Hook,
}

/// Metrics and health checks, on `LISTEN_ADDR`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The webhook, on `WEBHOOK_ADDR`: a port of its own with its own connection cap, so whatever
/// floods it leaves the health checks and the metrics alone.
pub(crate) fn webhook_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhook", post(hook::hook))
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

/// 200 `ready`, or 503 with why not (what could not be read, since when), for `kubectl describe`
/// and whoever curls it.
async fn readyz(State(s): State<Arc<AppState>>) -> (StatusCode, String) {
    match s.health.readiness(Timestamp::now()) {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use autoscaler_gitea::webhook::sign;
    use secrecy::SecretString;

    use super::*;

    const SECRET: &str = "hook-secret";
    const BODY: &str = r#"{"action": "queued", "workflow_job": {"id": 7, "labels": ["ubuntu-latest"],
        "status": "queued", "created_at": "2026-11-25T10:00:00Z",
        "url": "https://g/api/v1/repos/a/b/actions/jobs/7"}}"#;

    async fn serve(secret: Option<&str>) -> (String, Arc<AppState>) {
        let state = Arc::new(AppState {
            metrics: Arc::new(Metrics::new(&autoscaler_core::Config::default())),
            health: Arc::new(Health::new(
                Timestamp::now(),
                Duration::from_secs(5),
                Duration::from_secs(10),
            )),
            trigger: Arc::new(Notify::new()),
            hook: Hook::new(secret.map(|s| SecretString::from(s.to_owned()))),
        });
        (start(webhook_router(state.clone())).await, state.clone())
    }

    /// Serves `app` on a free loopback port; its base URL.
    async fn start(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(super::serve(
            listener,
            app,
            tokio_util::sync::CancellationToken::new(),
        ));
        url
    }

    fn client() -> reqwest::Client {
        crate::wiring::install_crypto();
        reqwest::Client::new()
    }

    async fn deliver(url: &str, signature: &str, body: &str) -> reqwest::Response {
        deliver_as(url, signature, body, None).await
    }

    async fn deliver_as(
        url: &str,
        signature: &str,
        body: &str,
        id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = client()
            .post(format!("{url}/webhook"))
            .header("X-Gitea-Event", "workflow_job")
            .header("X-Gitea-Signature", signature)
            .header("Content-Type", "application/json");
        if let Some(id) = id {
            req = req.header("X-Gitea-Delivery", id);
        }
        req.body(body.to_owned()).send().await.unwrap()
    }

    async fn woken(state: &AppState) -> bool {
        tokio::time::timeout(Duration::from_millis(200), state.trigger.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_oversized_or_unsigned_delivery_is_refused_before_its_body_is_read() {
        let (url, state) = serve(Some(SECRET)).await;
        // 300 KiB announced, with a valid-looking signature: refused from the headers.
        let big = "x".repeat(300 * 1024);
        let resp = deliver(&url, &"ab".repeat(32), &big).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // No signature at all: refused before any byte of the body.
        let resp = client()
            .post(format!("{url}/webhook"))
            .header("X-Gitea-Event", "workflow_job")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        // Another event is ignored unread, signed or not.
        let resp = client()
            .post(format!("{url}/webhook"))
            .header("X-Gitea-Event", "push")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(!woken(&state).await);
    }

    #[tokio::test]
    async fn a_replayed_delivery_and_a_finished_job_do_not_wake_the_loop() {
        let (url, state) = serve(Some(SECRET)).await;
        let sig = sign(&SecretString::from(SECRET), BODY.as_bytes());
        let first = deliver_as(&url, &sig, BODY, Some("d-1")).await;
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        assert!(woken(&state).await);
        for _ in 0..5 {
            let again = deliver_as(&url, &sig, BODY, Some("d-1")).await;
            assert_eq!(again.status(), StatusCode::OK);
            assert!(again.text().await.unwrap().contains("seen already"));
        }
        assert!(!woken(&state).await, "a replay is not news");
        let done = BODY.replace(r#""action": "queued""#, r#""action": "completed""#);
        let sig = sign(&SecretString::from(SECRET), done.as_bytes());
        let resp = deliver_as(&url, &sig, &done, Some("d-2")).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(!woken(&state).await, "only new demand wakes the loop");
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
        let (hook_url, state) = serve(None).await;
        let url = start(router(state.clone())).await;
        let status = client()
            .get(format!("{hook_url}/healthz"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "not on the webhook's port");
        let get = |path: &str| client().get(format!("{url}{path}")).send();
        assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
        let not_ready = get("/readyz").await.unwrap();
        assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            not_ready.text().await.unwrap(),
            "not ready: connecting to Gitea, Hetzner and Kubernetes\n",
            "it says why"
        );
        state.health.connected(Timestamp::now());
        state.health.ticked(Timestamp::now(), None);
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
