//! # autoscaler-gitea
//!
//! Gitea's side of gitea-ci-autoscaler: the [`Forge`](autoscaler_core::ports::Forge) port over
//! Gitea's Actions API (Gitea 1.25 or newer), and the `workflow_job` webhook.
//!
//! What it guarantees, because the design it replaces did not:
//! - every page of every list is read (`page`/`limit`, checked against `total_count`); a list
//!   that could not be read in full, or changed while it was read, comes back as
//!   [`Source::Partial`](autoscaler_core::Source), never as a shorter "complete" list;
//! - demand is `status=queued` (runnable), not `waiting` (blocked on `needs`);
//! - the version is read once from `GET /api/v1/version`, and runner disabling (1.26) is used only
//!   where it exists;
//! - the finished jobs of a period can be read whole ([`GiteaClient::finished_jobs`]), for
//!   replaying a team's own traffic in the simulator;
//! - webhook deliveries are accepted only with a valid HMAC-SHA256 signature over the raw body;
//! - the token is a [`SecretString`](secrecy::SecretString): it never reaches `Debug` or a log.
//!
//! The caller builds the `reqwest::Client` (rustls, with a crypto provider installed once per
//! process) and passes it in, so one connection pool serves every provider.

mod client;
mod error;
mod history;
mod scope;
mod version;
pub mod webhook;
mod wire;

pub use client::{GiteaClient, GiteaConfig};
pub use error::GiteaError;
pub use history::{FinishedJob, History};
pub use scope::Scope;
pub use version::GiteaVersion;
