//! Loopback fakes of the three services, for tests: they follow the published contracts (the
//! contract tests check their bodies against the upstream specs) and keep state, so a client
//! can be driven through multi-step flows with no network and no credentials.
//!
//! - [`gitea`]: Gitea 1.26's Actions API (a wiremock responder).
//! - [`hetzner`]: Hetzner Cloud's server API (a wiremock responder).
//! - [`kube`]: enough of the Kubernetes API for the autoscaler (an axum server).
//! - [`world`]: the three joined, moving by themselves: servers boot and join, runners take jobs.

// Test support: the fakes' items are documented by the contracts they follow.
#![allow(missing_docs)]

pub mod gitea;
pub mod hetzner;
pub mod kube;
mod selector;
pub mod world;
