//! `workflow_job` webhook deliveries: verify, then parse.
//!
//! Gitea signs the exact body bytes with HMAC-SHA256 under the hook's secret and sends the
//! lowercase hex digest as `X-Gitea-Signature` (and as `X-Hub-Signature-256: sha256=…`). The
//! signature is checked over the raw bytes before anything is parsed, in constant time. Gitea
//! does not retry failed deliveries, so a delivery is only ever a hint to tick early: the jobs
//! list stays the truth.

use autoscaler_core::{Job, JobStatus};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::GiteaError;
use crate::wire::WorkflowJob;

/// The event header Gitea sends.
pub const EVENT_HEADER: &str = "X-Gitea-Event";
/// Gitea's signature header: bare lowercase hex.
pub const SIGNATURE_HEADER: &str = "X-Gitea-Signature";
/// The GitHub-compatible signature header: `sha256=` + hex.
pub const HUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The delivery's id.
pub const DELIVERY_HEADER: &str = "X-Gitea-Delivery";

/// One delivery as it arrived: the headers that matter and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-Gitea-Event` (or `X-GitHub-Event`).
    pub event: Option<&'a str>,
    /// `X-Gitea-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub hub_signature_256: Option<&'a str>,
    /// The body, exactly as received.
    pub body: &'a [u8],
}

/// What a verified delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job changed state.
    WorkflowJob {
        /// The new state (`queued` is new demand).
        action: JobStatus,
        /// The job.
        job: Job,
    },
    /// Another event the hook is subscribed to; nothing to do.
    Other {
        /// Its name.
        event: String,
    },
}

#[derive(Deserialize)]
struct Payload {
    action: String,
    workflow_job: WorkflowJob,
}

/// Checks the signature and parses the delivery.
pub fn receive(secret: &SecretString, delivery: &Delivery<'_>) -> Result<Event, GiteaError> {
    verify(secret, delivery)?;
    let event = delivery
        .event
        .ok_or_else(|| GiteaError::Webhook(format!("no {EVENT_HEADER} header")))?;
    if event != "workflow_job" {
        return Ok(Event::Other {
            event: event.to_owned(),
        });
    }
    let payload: Payload = serde_json::from_slice(delivery.body).map_err(|e| {
        GiteaError::Webhook(format!(
            "the workflow_job body is not the expected JSON (is the hook's content type \
             application/json?): {e}"
        ))
    })?;
    let job = payload
        .workflow_job
        .into_job()
        .map_err(GiteaError::Webhook)?;
    let action = match payload.action.as_str() {
        "queued" => JobStatus::Queued,
        "waiting" => JobStatus::Waiting,
        "in_progress" => JobStatus::InProgress,
        "completed" => JobStatus::Completed,
        other => {
            return Err(GiteaError::Webhook(format!(
                "unknown workflow_job action {other:?}"
            )));
        }
    };
    Ok(Event::WorkflowJob { action, job })
}

/// Checks the delivery's HMAC-SHA256 signature over the raw body.
pub fn verify(secret: &SecretString, delivery: &Delivery<'_>) -> Result<(), GiteaError> {
    let secret = secret.expose_secret();
    if secret.is_empty() {
        return Err(GiteaError::Webhook(
            "no webhook secret is configured, so no delivery can be trusted".to_owned(),
        ));
    }
    let hex_sig = match (delivery.signature, delivery.hub_signature_256) {
        (Some(s), _) if !s.is_empty() => s,
        (_, Some(s)) => s.strip_prefix("sha256=").unwrap_or(s),
        _ => {
            return Err(GiteaError::Webhook(format!(
                "no {SIGNATURE_HEADER} or {HUB_SIGNATURE_HEADER} header"
            )));
        }
    };
    let sig = hex::decode(hex_sig.trim())
        .map_err(|_| GiteaError::Webhook("the signature is not hex".to_owned()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| GiteaError::Webhook("unusable secret".to_owned()))?;
    mac.update(delivery.body);
    mac.verify_slice(&sig)
        .map_err(|_| GiteaError::Webhook("the signature does not match the body".to_owned()))
}

/// The hex signature Gitea would send for `body` (for tests and fakes).
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
  "action": "queued",
  "workflow_job": {
    "id": 4123,
    "url": "https://git.example.com/api/v1/repos/acme/widgets/actions/jobs/4123",
    "run_id": 812,
    "name": "build",
    "labels": ["ubuntu-latest"],
    "status": "queued",
    "steps": null,
    "created_at": "2025-11-03T10:15:02Z",
    "started_at": "1970-01-01T00:00:00Z",
    "completed_at": "1970-01-01T00:00:00Z"
  },
  "repository": {"id": 42, "full_name": "acme/widgets"},
  "sender": {"id": 7, "login": "alice"}
}"#;

    fn secret() -> SecretString {
        SecretString::from("s3cret")
    }

    fn delivery<'a>(sig: Option<&'a str>, hub: Option<&'a str>, body: &'a [u8]) -> Delivery<'a> {
        Delivery {
            event: Some("workflow_job"),
            signature: sig,
            hub_signature_256: hub,
            body,
        }
    }

    #[test]
    fn a_signed_delivery_is_parsed() {
        let sig = sign(&secret(), BODY.as_bytes());
        let event = receive(&secret(), &delivery(Some(&sig), None, BODY.as_bytes())).unwrap();
        let Event::WorkflowJob { action, job } = event else {
            panic!("not a job event")
        };
        assert_eq!((action, job.id), (JobStatus::Queued, 4123));
        assert_eq!(job.labels, ["ubuntu-latest"]);
        let hub = format!("sha256={sig}");
        receive(&secret(), &delivery(None, Some(&hub), BODY.as_bytes())).unwrap();
    }

    #[test]
    fn a_known_digest_matches() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style vector.
        let s = sign(
            &SecretString::from("key"),
            b"The quick brown fox jumps over the lazy dog",
        );
        assert_eq!(
            s,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn a_changed_body_wrong_secret_or_missing_signature_is_refused() {
        let sig = sign(&secret(), BODY.as_bytes());
        let tampered = BODY.replace("4123", "4124");
        let e = receive(&secret(), &delivery(Some(&sig), None, tampered.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let other = SecretString::from("other");
        assert!(receive(&other, &delivery(Some(&sig), None, BODY.as_bytes())).is_err());
        let e = receive(&secret(), &delivery(None, None, BODY.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("X-Gitea-Signature"), "{e}");
        let e = receive(&secret(), &delivery(Some("zz"), None, BODY.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("not hex"), "{e}");
        let empty = SecretString::from("");
        let e = receive(&empty, &delivery(Some(&sig), None, BODY.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("no webhook secret"), "{e}");
    }

    #[test]
    fn other_events_are_ignored_and_bad_bodies_named() {
        let body = br#"{"zen": "hi"}"#;
        let sig = sign(&secret(), body);
        let d = Delivery {
            event: Some("push"),
            ..delivery(Some(&sig), None, body)
        };
        assert_eq!(
            receive(&secret(), &d).unwrap(),
            Event::Other {
                event: "push".into()
            }
        );
        let e = receive(&secret(), &delivery(Some(&sig), None, body)).unwrap_err();
        assert!(e.to_string().contains("workflow_job body"), "{e}");
    }
}
