//! # autoscaler-hetzner
//!
//! Hetzner Cloud's side of gitea-ci-autoscaler: the [`Cloud`](autoscaler_core::ports::Cloud)
//! port over Hetzner's server API, and the cloud-init that joins a new server to the K3s cluster.
//!
//! What it guarantees, because the design it replaces did not:
//! - only servers carrying an ownership label are listed (a label selector; the core keeps this
//!   installation's and counts the others'), and every page is read (`per_page=50`, `meta.pagination`); a list that could not be read in
//!   full is [`Source::Partial`](autoscaler_core::Source);
//! - every error is typed from Hetzner's error body (`resource_unavailable` is a capacity error,
//!   `resource_limit_exceeded` a quota, `rate_limit_exceeded` a rate limit, …);
//! - a request budget follows `RateLimit-Remaining`/`RateLimit-Reset` and backs off after a 429,
//!   so a capacity error can never turn into 60 create attempts a minute;
//! - the API token and the cluster join token are [`SecretString`](secrecy::SecretString)s: they
//!   never reach `Debug` output or a log line.
//!
//! The caller builds the `reqwest::Client` (rustls, with a crypto provider installed once per
//! process) and passes it in.

pub mod bake;
mod budget;
mod client;
pub mod cloud_init;
mod error;
mod wire;

pub use budget::RequestBudget;
pub use client::{DEFAULT_URL, HetznerClient, HetznerConfig, HetznerSettings, ServerTypeInfo};
pub use cloud_init::{K3sJoin, check_token as check_join_token};
pub use error::HetznerError;
