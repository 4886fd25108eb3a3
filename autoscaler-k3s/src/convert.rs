//! Kubernetes objects into the core's types.

use autoscaler_core::{Node as CoreNode, PodPhase, RunnerPod};
use k8s_openapi::api::core::v1::{Node, Pod};

pub(crate) fn node(n: Node) -> CoreNode {
    let meta = n.metadata;
    let ready_condition = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let spec = n.spec.unwrap_or_default();
    CoreNode {
        name: meta.name.unwrap_or_default(),
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        ready: ready_condition.is_some_and(|c| c.status == "True"),
        ready_since: ready_condition.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0)),
        cordoned: spec.unschedulable.unwrap_or(false),
        provider_id: spec.provider_id,
        created: meta.creation_timestamp.map(|t| t.0),
    }
}

pub(crate) fn phase(p: &Pod) -> PodPhase {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        _ => PodPhase::Unknown,
    }
}

/// Owned by a DaemonSet: never a runner pod, never evicted.
pub(crate) fn is_daemonset_pod(p: &Pod) -> bool {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet" && o.controller == Some(true))
}

/// A static pod's mirror: the API server cannot delete it.
pub(crate) fn is_mirror_pod(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

pub(crate) fn runner_pod(p: &Pod) -> RunnerPod {
    RunnerPod {
        name: p.metadata.name.clone().unwrap_or_default(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        phase: phase(p),
    }
}
