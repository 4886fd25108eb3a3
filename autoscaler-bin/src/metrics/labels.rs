//! The label sets, typed: each family's labels are a struct, so a series cannot be written with
//! a label missing, misspelt or in another order than its family's.

use prometheus_client::encoding::EncodeLabelSet;

/// A machine's state in a pool (`autoscaler_managed_nodes`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StatePool {
    pub(super) state: &'static str,
    pub(super) pool: String,
}

/// A server type in a location (`autoscaler_nodes_created_by_placement`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Placement {
    pub(super) server_type: String,
    pub(super) location: String,
}

/// An action and whether it worked (`autoscaler_actions`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionResult {
    pub(super) action: &'static str,
    pub(super) result: &'static str,
}

/// A failed call's service and kind (`autoscaler_api_errors`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ServiceKind {
    pub(super) service: &'static str,
    pub(super) kind: &'static str,
}

/// A snapshot source (`autoscaler_source_readable`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SourceName {
    pub(super) source: &'static str,
}

/// A webhook delivery's result (`autoscaler_webhook_deliveries`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Delivery {
    pub(super) result: &'static str,
}

/// Whether an action worked, as its label value.
pub(super) fn result(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}
