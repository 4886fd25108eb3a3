//! One machine's state, reason and actions in this tick: teardowns under way, faults, and the
//! memory the core keeps on the machine.

use jiff::Timestamp;

use super::{Decision, MachineActions, pools::PoolAcc};
use crate::billing;
use crate::inventory::{Machine, PoolRef, count};
use crate::keys::{self, Stored};
use crate::lifecycle::Class;
use crate::plan::{Action, NodeReport, NodeState, Reason, Slots, TeardownStep, WarningKind};
use crate::render::Text;
use crate::teardown::{self, Context};
use crate::time;

impl Decision<'_> {
    /// This machine's state, reason and actions for the tick.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn machine(
        &mut self,
        m: &Machine<'_>,
        class: Class,
        acc: &mut PoolAcc,
        out: &mut MachineActions,
        idle_candidates: &mut Vec<(Timestamp, usize)>,
        index: usize,
    ) -> (NodeState, Reason) {
        let base = Context {
            now: self.now,
            can_disable: self.snapshot.forge.can_disable_runners,
            abort: None,
            confirm: self.policy.config().node_missing_confirm,
            window_opens: None,
        };
        // A server without a cluster identity whose node is here is ours: say so on it first,
        // before any other label is written (one label write per server per plan).
        if m.unclaimed
            && m.node_owned
            && let (Some(server), Some(cluster)) = (m.server, &self.snapshot.cluster)
        {
            out.push(
                Action::RecordCluster {
                    server_id: server.id,
                    cluster: cluster.clone(),
                },
                "its node is in this cluster; recording the cluster on the server",
            );
        }
        let now = self.now;
        let pool = self.pool_config(m.pool);
        match class {
            Class::Deleting => (NodeState::Deleting, "Hetzner is deleting the server".into()),
            Class::Tangled => {
                let what = match (m.server, m.node) {
                    (Some(s), Some(n)) => {
                        format!("server {} (id {}) and node {}", s.name, s.id, n.name)
                    }
                    (Some(s), None) => format!("server {} (id {})", s.name, s.id),
                    (None, Some(n)) => format!("node {}", n.name),
                    (None, None) => m.name.to_owned(),
                };
                self.warn(
                    WarningKind::IdentityConflict,
                    format!(
                        "{what}: node names and hcloud:// provider ids disagree about which node \
                         is which server's (a node named after one server with another's id, two \
                         nodes claiming one server, or a node naming a server that is not ours); \
                         nothing on them is touched until they agree"
                    ),
                );
                (
                    NodeState::IdentityConflict,
                    "provider ids and names disagree about which node is this server's; nothing is touched"
                        .into(),
                )
            }
            Class::Conflict => {
                self.warn(
                    WarningKind::OwnershipConflict,
                    format!(
                        "server {} is ours but node {} lacks the {}={} label; neither is touched",
                        m.name,
                        m.name,
                        keys::OWNER,
                        self.policy.config().installation
                    ),
                );
                (
                    NodeState::OwnershipConflict,
                    "the node does not carry our ownership label; nothing is touched".into(),
                )
            }
            Class::Teardown { started } => {
                let reusable = acc.configured.is_some()
                    && m.node.is_some_and(|n| n.ready && !n.cordoned)
                    && m.runners.iter().any(|r| r.runner.online);
                // Past the point of no return's deadline (a restart, a slow step), finishing
                // would delete the server in its next paid period: keep it for the next window.
                let late = reusable
                    && match (started, m.server) {
                        (Stored::At(t), Some(s)) => {
                            let end = billing::period_end(s.created, t, pool.billing_period);
                            now > time::sub(end, pool.no_return_lead(base.confirm))
                        }
                        _ => false,
                    };
                // Begun early to steer jobs away: it waits for its window, and the decision is
                // due when the window opens.
                let window_opens = m.server.filter(|_| reusable).and_then(|s| {
                    match billing::teardown_window(
                        s.created,
                        now,
                        pool.billing_period,
                        pool.teardown_window,
                        pool.teardown_lead,
                    ) {
                        billing::Window::Before { opens } => Some(opens),
                        billing::Window::Open { .. } | billing::Window::Missed { .. } => None,
                    }
                });
                // A steered node comes back as soon as the pool has no free runner left beyond
                // its waiting jobs and warm target; any other, when jobs wait for it.
                let reclaim = reusable
                    && !late
                    && (acc.need > 0 || (window_opens.is_some() && acc.spare < acc.warm.max(1)));
                let abort = if late {
                    Some(
                        "it can no longer finish inside its paid period; it is kept for the next \
                         teardown window"
                            .to_owned(),
                    )
                } else if reclaim {
                    Some(format!(
                        "{} waiting job(s) or warm slot(s) need it",
                        acc.need
                    ))
                } else {
                    None
                };
                let progress = teardown::progress(
                    m,
                    &Context {
                        abort: abort.as_deref(),
                        window_opens,
                        ..base
                    },
                );
                if progress.step == TeardownStep::Steered
                    && let Some(opens) = window_opens
                {
                    self.wake_at(opens);
                }
                if reclaim && progress.step == TeardownStep::Abort {
                    acc.need -= i64::from(pool.runners_per_node);
                    acc.spare += pool.runners_per_node;
                    acc.reclaimed += 1;
                }
                if let Some(w) = progress.warning {
                    self.warnings.push(w);
                }
                for a in progress.actions {
                    out.push(a, progress.reason.clone());
                }
                // A stale mark must not shorten the confirmation once this node is deleted.
                if let (Some(node), Some(s)) = (m.node, m.server)
                    && m.server_marks.node_missing.is_present()
                {
                    out.push(
                        Action::ClearNodeMissing { server_id: s.id },
                        format!("node {} is present again", node.name),
                    );
                }
                (
                    NodeState::Teardown {
                        step: progress.step,
                    },
                    progress.reason,
                )
            }
            Class::Provisioning => {
                let left = m
                    .server
                    .map(|s| time::minus(pool.provisioning_timeout, time::between(s.created, now)))
                    .unwrap_or_default();
                (
                    NodeState::Provisioning,
                    Text::new("waiting for the node to register (")
                        .dur(left)
                        .s(" left)")
                        .done(),
                )
            }
            Class::NodeMissing { joined, .. } => {
                let p = teardown::delete_server_when_confirmed(m, &base);
                for a in p.actions {
                    out.push(a, p.reason.clone());
                }
                let (state, what) = if joined {
                    (NodeState::NodeVanished, "its node vanished")
                } else {
                    (
                        NodeState::StuckProvisioning,
                        "no node registered within the provisioning timeout",
                    )
                };
                (state, format!("{what}; {}", p.reason).into())
            }
            Class::ServerMissing { missing } => {
                let reason = {
                    match missing {
                        Stored::At(since)
                            if time::between(since, now)
                                >= self.policy.config().node_missing_confirm =>
                        {
                            let p = teardown::progress(m, &base);
                            if let Some(w) = p.warning {
                                self.warnings.push(w);
                            }
                            for a in p.actions {
                                out.push(a, p.reason.clone());
                            }
                            format!("its server has been gone since {since}; {}", p.reason)
                        }
                        Stored::At(since) => format!(
                            "server missing since {since}; waiting for a later snapshot to agree"
                        ),
                        Stored::Absent | Stored::Garbled => {
                            out.push(
                                Action::MarkServerMissing { node: m.name.to_owned(), since: now },
                                "no server for this managed node; marking it so a later snapshot can confirm",
                            );
                            "no server found; marked for confirmation".into()
                        }
                    }
                };
                (NodeState::ServerVanished, reason.into())
            }
            Class::Busy => {
                self.upkeep(m, out);
                if let Some(node) = m.node
                    && m.node_marks.idle_since.is_present()
                {
                    out.push(
                        Action::ClearIdle {
                            node: node.name.clone(),
                        },
                        "a runner has a job",
                    );
                }
                // The count is in the state; the reason needs no formatting.
                (
                    NodeState::Busy { jobs: m.jobs },
                    "its runners have jobs".into(),
                )
            }
            Class::NotReady { since } => {
                self.begin_fault_teardown(m, out, "NotReady longer than its timeout");
                (
                    NodeState::NotReady { since },
                    "NotReady longer than its timeout; tearing down".into(),
                )
            }
            Class::NoRunner => {
                self.begin_fault_teardown(m, out, "no runner came online within the join timeout");
                (
                    NodeState::NoRunner,
                    "no runner came online within the join timeout; tearing down".into(),
                )
            }
            Class::Joining => {
                self.upkeep(m, out);
                (
                    NodeState::Joining,
                    "registered; waiting for its runners to come online".into(),
                )
            }
            Class::Idle { since } => {
                self.upkeep(m, out);
                let node = m.node.map_or(m.name, |n| n.name.as_str());
                let since = match since {
                    Stored::At(t) => Some(t),
                    Stored::Absent | Stored::Garbled => {
                        if since == Stored::Garbled {
                            self.warn(
                                WarningKind::GarbledMemory,
                                format!("node {node}: unreadable {} annotation; restarting its idle timer", keys::IDLE_SINCE),
                            );
                        }
                        out.push(
                            Action::MarkIdle {
                                node: node.to_owned(),
                                since: now,
                            },
                            "its runners have no job",
                        );
                        None
                    }
                };
                idle_candidates.push((since.unwrap_or(now), index));
                (NodeState::Idle { since }, "idle".into())
            }
        }
    }

    /// Memory that follows a machine's class, last, so the class's own label write comes first
    /// (one per server per plan): the join token nobody needs, and the runner bindings.
    /// Machines that are not ours to touch get none.
    pub(super) fn after_class(&mut self, m: &Machine<'_>, class: Class, out: &mut MachineActions) {
        if matches!(class, Class::Deleting | Class::Conflict | Class::Tangled) {
            return;
        }
        self.retire_join_token(m, out);
        if let (Some(node), Some(runners)) = (m.node, &m.record_runners) {
            out.push(
                Action::RecordRunners {
                    node: node.name.clone(),
                    runners: runners.clone(),
                },
                "recording which runner each runner pod registered as",
            );
        }
    }

    /// A server's join token is revoked as soon as nobody needs it: its node has registered (the
    /// agent now authenticates as the node), or the token has expired. A server about to be
    /// deleted in this plan takes its token with it instead.
    fn retire_join_token(&mut self, m: &Machine<'_>, out: &mut MachineActions) {
        let Some(server) = m.server else {
            return;
        };
        let Some(id) = server.labels.get(keys::JOIN_TOKEN) else {
            return;
        };
        if !keys::is_token_id(id) {
            self.warn(
                WarningKind::GarbledMemory,
                format!(
                    "server {} (id {}): its {} label `{}` is not a bootstrap token id; it is ignored",
                    server.name,
                    server.id,
                    keys::JOIN_TOKEN,
                    crate::render::truncate(id, 16)
                ),
            );
            return;
        }
        if out
            .actions
            .iter()
            .any(|a| matches!(a.action, Action::DeleteServer { .. }))
        {
            return;
        }
        let joined = m.node.is_some() && m.node_owned;
        let expired = self.now >= self.pool_config(m.pool).join_token_expiry(server.created);
        if joined || expired {
            out.push(
                Action::RetireJoinToken {
                    server_id: server.id,
                    token_id: id.clone(),
                },
                if joined {
                    "its node has joined; revoking the join token nobody needs any more"
                } else {
                    "its join token has expired; revoking it"
                },
            );
        }
    }

    /// Memory upkeep for a machine with both server and node.
    fn upkeep(&self, m: &Machine<'_>, out: &mut MachineActions) {
        let (Some(server), Some(node)) = (m.server, m.node) else {
            return;
        };
        if m.server_marks.node_missing.is_present() {
            out.push(
                Action::ClearNodeMissing {
                    server_id: server.id,
                },
                "its node is present again",
            );
        }
        if m.node_marks.server_missing.is_present() {
            out.push(
                Action::ClearServerMissing {
                    node: node.name.clone(),
                },
                "its server is present again",
            );
        }
        if m.server_marks.joined.at().is_none() {
            let at = node
                .created
                .filter(|c| *c >= server.created && *c <= self.now)
                .unwrap_or(self.now);
            out.push(
                Action::RecordJoined {
                    server_id: server.id,
                    at,
                },
                "its node registered",
            );
        }
    }

    fn begin_fault_teardown(&self, m: &Machine<'_>, out: &mut MachineActions, why: &str) {
        if let Some(server) = m.server {
            // Faults are retired at once, not at the end of the paid period: the machine is of
            // no use, and its slot under the maximum is wanted for a replacement.
            out.push(
                Action::BeginTeardown {
                    server_id: server.id,
                    at: self.now,
                },
                format!("{why}; starting teardown"),
            );
        }
    }

    pub(super) fn report(&self, m: &Machine<'_>, state: NodeState, reason: Reason) -> NodeReport {
        let pool = self.pool_config(m.pool);
        let pool_name = match m.pool {
            PoolRef::Configured(i) => self.policy.pools()[i].config.name.clone(),
            PoolRef::Unknown(name) => name.to_owned(),
        };
        let upcoming = match state {
            NodeState::Provisioning => pool.runners_per_node,
            NodeState::Joining => pool
                .runners_per_node
                .saturating_sub(count(m.runners.iter().filter(|r| r.runner.online))),
            _ => 0,
        };
        let counts_free = matches!(
            state,
            NodeState::Joining | NodeState::Idle { .. } | NodeState::Busy { .. }
        );
        NodeReport {
            name: m.name.to_owned(),
            pool: pool_name,
            server_id: m.server.map(|s| s.id),
            state,
            reason,
            slots: Slots {
                idle: if counts_free {
                    count(m.free_runners())
                } else {
                    0
                },
                busy: m.busy_runners(),
                upcoming,
                ending_soon: m.free_by(time::add(self.now, self.cold_start(pool))),
            },
            paid_until: m
                .server
                .map(|s| billing::period_end(s.created, self.now, pool.billing_period)),
        }
    }
}
