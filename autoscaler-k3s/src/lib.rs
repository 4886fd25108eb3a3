//! # autoscaler-k3s
//!
//! The Kubernetes side of gitea-ci-autoscaler: the [`Cluster`](autoscaler_core::ports::Cluster)
//! port over the K3s API server with kube-rs, and a [`Leadership`](autoscaler_core::ports::Leadership)
//! on a `coordination.k8s.io/v1` Lease.
//!
//! What it guarantees, because the design it replaces did not:
//! - a drain evicts through the Eviction API, so PodDisruptionBudgets hold; a 429 leaves the pod
//!   where it is and is reported as blocked (the next tick asks again), never ignored;
//! - kube's own retry of 429/503/504 is off and every call has a timeout, so a blocked eviction
//!   or a slow API server can never stall a tick;
//! - DaemonSet and mirror pods are left alone, as `kubectl drain --ignore-daemonsets` does;
//! - only nodes carrying an ownership label are listed (the core keeps this installation's and
//!   counts the others'), every page read.
//!
//! k8s-openapi needs exactly one Kubernetes version feature, chosen by the final binary (this
//! library enables none; its tests use `v1_33`).

mod cluster;
mod convert;
mod error;
pub mod join_token;
mod lease;

pub use cluster::{ClusterConfig, K3sCluster, client_config};
pub use error::K3sError;
pub use lease::LeaseLock;
