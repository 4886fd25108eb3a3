//! Where each machine is in its life, derived only from what is observed and what the core wrote
//! onto it earlier. Nothing here depends on a previous tick, so a restarted daemon (or a second
//! replica) classifies every machine exactly as the first one did.

use jiff::Timestamp;

use crate::config::PoolConfig;
use crate::inventory::Machine;
use crate::keys::Stored;
use crate::snapshot::ServerStatus;

/// A machine's class before any action is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Hetzner is deleting the server.
    Deleting,
    /// Our server, a node without our label: touch nothing.
    Conflict,
    /// Provider ids and names disagree about which node is whose: touch nothing.
    Tangled,
    /// A teardown was started (server label `teardown`).
    Teardown { started: Stored },
    /// Server without node, young and never joined.
    Provisioning,
    /// Server without node: never joined in time, or its node vanished.
    NodeMissing { joined: bool, missing: Stored },
    /// Owned node without server.
    ServerMissing { missing: Stored },
    /// A runner on it has a job.
    Busy,
    /// NotReady for longer than the timeout.
    NotReady { since: Option<Timestamp> },
    /// Registered, but no runner online within the join timeout.
    NoRunner,
    /// Registered; runners not online yet.
    Joining,
    /// Runners online, none working.
    Idle { since: Stored },
}

/// Classifies one machine at `now` with its pool's timings.
pub(crate) fn classify(m: &Machine<'_>, pool: &PoolConfig, now: Timestamp) -> Class {
    let since = |t: Timestamp| now.duration_since(t);
    if m.tangled {
        return Class::Tangled;
    }
    let (server, node) = match (m.server, m.node) {
        (Some(server), node) => (server, node),
        (None, Some(_)) => {
            return Class::ServerMissing {
                missing: m.node_marks.server_missing,
            };
        }
        // Not built by the inventory; touching nothing is the safe reading.
        (None, None) => return Class::Conflict,
    };
    if server.status == ServerStatus::Deleting {
        return Class::Deleting;
    }
    if node.is_some() && !m.node_owned {
        return Class::Conflict;
    }
    let started = m.server_marks.teardown;
    if started.is_present() {
        return Class::Teardown { started };
    }
    let joined = m.server_marks.joined;
    let Some(node) = node else {
        if !joined.is_present() && since(server.created) < pool.provisioning_timeout {
            return Class::Provisioning;
        }
        return Class::NodeMissing {
            joined: joined.is_present(),
            missing: m.server_marks.node_missing,
        };
    };
    if m.is_busy() {
        return Class::Busy;
    }
    let registered = node.created.or(joined.at()).unwrap_or(server.created);
    if !node.ready {
        let not_ready_since = node.ready_since.unwrap_or(registered);
        if since(not_ready_since) >= pool.not_ready_timeout {
            return Class::NotReady {
                since: Some(not_ready_since),
            };
        }
    }
    if !m.runners.iter().any(|r| r.runner.online) {
        return if since(registered) < pool.join_timeout {
            Class::Joining
        } else {
            Class::NoRunner
        };
    }
    Class::Idle {
        since: m.node_marks.idle_since,
    }
}
