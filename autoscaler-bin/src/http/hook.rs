//! The Gitea webhook, which anyone who reaches the port can call. A request is refused before
//! its body is read unless it looks like a signed `workflow_job` delivery of reasonable size; the
//! body is then read under a size cap and a deadline, a few deliveries at a time; each delivery
//! id counts once; and only a newly queued job wakes the loop. The signature is the only proof:
//! the jobs list stays the truth, so a delivery is never more than a hint to tick early.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoscaler_core::JobStatus;
use autoscaler_gitea::webhook::{self, Delivery, Event};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use secrecy::SecretString;
use tokio::sync::Semaphore;

use super::AppState;

/// The largest body accepted. A `workflow_job` delivery is a few KiB.
pub(crate) const MAX_BODY: usize = 256 * 1024;
/// How long one body may take to arrive.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries read at once; more wait for nobody and are refused with 503.
const CONCURRENT: usize = 8;
/// Delivery ids remembered, so a replayed delivery is not news.
const REMEMBERED: usize = 1024;

/// The webhook's configuration and memory.
pub(crate) struct Hook {
    secret: Option<SecretString>,
    slots: Semaphore,
    seen: Mutex<Recent>,
}

/// The most recent delivery ids, oldest first.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Recent {
    /// Remembers `id`; `false` when it was already there.
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.ids.insert(id.to_owned());
        true
    }
}

impl Hook {
    /// The webhook with `secret`; without one it is off and answers 404.
    pub(crate) fn new(secret: Option<SecretString>) -> Self {
        Self {
            secret,
            slots: Semaphore::new(CONCURRENT),
            seen: Mutex::new(Recent::default()),
        }
    }
}

fn header_str<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
}

/// The signature headers are there and are hex digests of the right length.
fn well_formed_signature(headers: &HeaderMap) -> bool {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    header_str(headers, &[webhook::SIGNATURE_HEADER]).is_some_and(|s| hex64(s.trim()))
        || header_str(headers, &[webhook::HUB_SIGNATURE_HEADER])
            .and_then(|s| s.trim().strip_prefix("sha256="))
            .is_some_and(hex64)
}

/// Every result a delivery is counted under (`autoscaler_webhook_deliveries_total{result}`).
pub(crate) const WEBHOOK_RESULTS: [&str; 10] = [
    "queued",
    "other_job_event",
    "ignored",
    "duplicate",
    "disabled",
    "bad_request",
    "unauthorized",
    "too_large",
    "busy",
    "timeout",
];

/// `POST /webhook`.
pub(crate) async fn hook(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let refuse = |result: &'static str, status: StatusCode, why: String| {
        s.metrics.webhook(result);
        (status, why)
    };
    let Some(secret) = &s.hook.secret else {
        return refuse(
            "disabled",
            StatusCode::NOT_FOUND,
            "the webhook is off: set GITEA_WEBHOOK_SECRET".to_owned(),
        );
    };
    // Everything below is decided from the headers alone: no body is read for it.
    let Some(event) = header_str(&headers, &[webhook::EVENT_HEADER, "X-GitHub-Event"]) else {
        return refuse(
            "bad_request",
            StatusCode::BAD_REQUEST,
            format!("no {} header", webhook::EVENT_HEADER),
        );
    };
    if event != "workflow_job" {
        // Nothing to do for it, signed or not.
        return refuse("ignored", StatusCode::OK, format!("ignored event {event}"));
    }
    if !well_formed_signature(&headers) {
        return refuse(
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            format!(
                "no well-formed {} or {} header",
                webhook::SIGNATURE_HEADER,
                webhook::HUB_SIGNATURE_HEADER
            ),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return refuse(
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a delivery is at most {MAX_BODY} bytes"),
        );
    }
    let Ok(_slot) = s.hook.slots.try_acquire() else {
        return refuse(
            "busy",
            StatusCode::SERVICE_UNAVAILABLE,
            "too many deliveries at once; the next poll reads the jobs anyway".to_owned(),
        );
    };
    let bytes = match tokio::time::timeout(READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return refuse(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a delivery is at most {MAX_BODY} bytes"),
            );
        }
        Err(_) => {
            return refuse(
                "timeout",
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {}s", READ_TIMEOUT.as_secs()),
            );
        }
    };
    let delivery = Delivery {
        event: Some(event),
        signature: header_str(&headers, &[webhook::SIGNATURE_HEADER]),
        hub_signature_256: header_str(&headers, &[webhook::HUB_SIGNATURE_HEADER]),
        body: &bytes,
    };
    if let Err(e) = webhook::verify(secret, &delivery) {
        tracing::warn!(error = %e, "webhook delivery refused");
        return refuse("unauthorized", StatusCode::UNAUTHORIZED, e.to_string());
    }
    // Only a verified delivery is remembered, so forged ones cannot crowd real ids out.
    if let Some(id) = header_str(&headers, &[webhook::DELIVERY_HEADER, "X-GitHub-Delivery"]) {
        let fresh = s
            .hook
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first_time(id);
        if !fresh {
            return refuse(
                "duplicate",
                StatusCode::OK,
                format!("delivery {id} was seen already"),
            );
        }
    }
    match webhook::receive(secret, &delivery) {
        Ok(Event::WorkflowJob { action, job }) => {
            tracing::debug!(job = job.id, ?action, "workflow_job delivery");
            if action == JobStatus::Queued {
                // New demand: worth a tick now. Other changes wait for the next poll.
                s.trigger.notify_one();
                s.metrics.webhook("queued");
            } else {
                s.metrics.webhook("other_job_event");
            }
            (StatusCode::ACCEPTED, String::new())
        }
        Ok(Event::Other { event }) => {
            refuse("ignored", StatusCode::OK, format!("ignored event {event}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook delivery unreadable");
            refuse("bad_request", StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_counts_once_and_old_ones_are_forgotten() {
        let mut r = Recent::default();
        assert!(r.first_time("a"));
        assert!(!r.first_time("a"));
        for i in 0..REMEMBERED {
            assert!(r.first_time(&i.to_string()));
        }
        assert_eq!(r.order.len(), REMEMBERED);
        assert!(r.first_time("a"), "forgotten after {REMEMBERED} newer ones");
    }

    #[test]
    fn only_hex_digests_of_the_right_length_look_like_signatures() {
        let mut h = HeaderMap::new();
        assert!(!well_formed_signature(&h));
        h.insert(webhook::SIGNATURE_HEADER, "zz".parse().expect("header"));
        assert!(!well_formed_signature(&h));
        h.insert(
            webhook::SIGNATURE_HEADER,
            "ab".repeat(32).parse().expect("header"),
        );
        assert!(well_formed_signature(&h));
        let mut h = HeaderMap::new();
        h.insert(
            webhook::HUB_SIGNATURE_HEADER,
            format!("sha256={}", "0f".repeat(32))
                .parse()
                .expect("header"),
        );
        assert!(well_formed_signature(&h));
    }
}
