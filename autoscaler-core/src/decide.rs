//! The decision: one pass over the correlated snapshot that yields the plan.
//!
//! Order of work: judge the data, classify every machine, count slots per pool, match waiting
//! jobs to free runners, then per machine (teardowns in progress, faults, memory upkeep), then
//! scale down idle nodes in their billing window, then scale up. Finally the fail-static filter
//! removes everything destructive when any source was incomplete.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::billing::{self, Window};
use crate::config::{Policy, PoolConfig};
use crate::demand::{self, Owner};
use crate::inventory::{self, Machine, PoolRef, count};
use crate::keys::{self, Stored};
use crate::lifecycle::{Class, classify};
use crate::plan::{
    Action, NodeReport, NodeState, PLAN_VERSION, Plan, PlannedAction, PoolReport, Reason, Slots,
    TeardownStep, Warning, WarningKind,
};
use crate::render::{Clock, Dur};
use crate::scale_up::{self, Blocked, Namer};
use crate::snapshot::Snapshot;
use crate::teardown::{self, Context};

/// Decides what to do about `snapshot` under `policy`.
///
/// Pure and deterministic: the same inputs give the same plan, whatever the order of the items in
/// the snapshot's lists. It never fails; what it cannot judge it leaves alone and says so in the
/// plan's warnings.
pub fn decide(policy: &Policy, snapshot: &Snapshot) -> Plan {
    Decision::new(policy, snapshot).run()
}

/// The timings of machines whose pool is no longer configured: they only drain.
fn retired_pool() -> &'static PoolConfig {
    static RETIRED: std::sync::OnceLock<PoolConfig> = std::sync::OnceLock::new();
    RETIRED.get_or_init(|| PoolConfig {
        name: String::new(),
        min_nodes: 0,
        max_nodes: 0,
        warm_slots: 0,
        ..PoolConfig::default()
    })
}

/// Which sources may be trusted for what.
#[derive(Debug, Clone, Copy)]
struct Trust {
    jobs: bool,
    runners: bool,
    servers: bool,
    nodes: bool,
    pods: bool,
}

impl Trust {
    fn destructive(self) -> bool {
        self.jobs && self.runners && self.servers && self.nodes && self.pods
    }

    fn creates(self) -> bool {
        self.jobs && self.servers
    }
}

/// One pool's running totals.
#[derive(Debug, Default)]
struct PoolAcc {
    name: String,
    configured: Option<usize>,
    servers: u32,
    healthy: u32,
    running: u32,
    slots: Slots,
    last_created: Option<Timestamp>,
    waiting: u32,
    unmet: u32,
    warm: u32,
    /// Slots still wanted: unmet + warm − upcoming − spare; negative means surplus.
    need: i64,
    creating: u32,
    tearing_down: u32,
    reclaimed: u32,
    backoff_until: Option<Timestamp>,
}

/// Actions of one machine in this tick; at most one writes the server's labels, because a
/// Hetzner label update replaces the whole label set and two concurrent writes would race.
#[derive(Default)]
struct MachineActions {
    actions: Vec<PlannedAction>,
    server_labels_written: bool,
}

impl MachineActions {
    fn push(&mut self, action: Action, reason: impl Into<Reason>) -> bool {
        let writes_labels = matches!(
            action,
            Action::RecordJoined { .. }
                | Action::BeginTeardown { .. }
                | Action::AbortTeardown { .. }
                | Action::MarkNodeMissing { .. }
                | Action::ClearNodeMissing { .. }
        );
        if writes_labels && self.server_labels_written {
            return false;
        }
        self.server_labels_written |= writes_labels;
        self.actions.push(PlannedAction {
            action,
            reason: reason.into(),
        });
        true
    }
}

struct Decision<'a> {
    policy: &'a Policy,
    snapshot: &'a Snapshot,
    now: Timestamp,
    trust: Trust,
    warnings: Vec<Warning>,
}

impl<'a> Decision<'a> {
    fn new(policy: &'a Policy, snapshot: &'a Snapshot) -> Self {
        Self {
            policy,
            snapshot,
            now: snapshot.now,
            trust: Trust {
                jobs: false,
                runners: false,
                servers: false,
                nodes: false,
                pods: false,
            },
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(Warning {
            kind,
            message: message.into(),
        });
    }

    fn pool_config(&self, pool: PoolRef<'_>) -> &'a PoolConfig {
        match pool {
            PoolRef::Configured(i) => &self.policy.pools()[i].config,
            PoolRef::Unknown(_) => retired_pool(),
        }
    }

    fn run(mut self) -> Plan {
        let inv = inventory::build(self.policy, self.snapshot);
        self.judge_sources(&inv.duplicates);
        if !self.snapshot.forge.can_disable_runners {
            self.warn(
                WarningKind::WeakTeardownOrder,
                "the forge cannot disable runners (Gitea before 1.26): a job assigned between the last \
                 snapshot and a runner deletion would be lost; upgrade Gitea to 1.26 for the safe order",
            );
        }

        let classes: Vec<Class> = inv
            .machines
            .iter()
            .map(|m| classify(m, self.pool_config(m.pool), self.now))
            .collect();
        let (mut accs, acc_of) = self.pool_accounts(&inv.machines);
        let demand = self.count_slots_and_match(&inv, &classes, &mut accs, &acc_of);
        if !demand.unservable.is_empty() {
            let shapes: std::collections::BTreeSet<String> = demand
                .unservable
                .iter()
                .map(|j| format!("[{}]", j.labels.join(", ")))
                .collect();
            let shown: Vec<&str> = shapes.iter().take(5).map(String::as_str).collect();
            self.warn(
                WarningKind::UnservableJobs,
                format!(
                    "{} waiting job(s) ask for labels no pool serves: {}{}",
                    demand.unservable.len(),
                    shown.join(" "),
                    if shapes.len() > shown.len() {
                        " …"
                    } else {
                        ""
                    }
                ),
            );
        }

        let mut per_machine: Vec<MachineActions> = inv
            .machines
            .iter()
            .map(|_| MachineActions::default())
            .collect();
        let mut reports: Vec<NodeReport> = Vec::with_capacity(inv.machines.len());
        let guards = Guards::of(&inv.machines, &classes);
        if guards.hold_missing {
            self.warn(
                WarningKind::MassVanish,
                format!(
                    "{} of {} joined servers lost their nodes at once; not acting on it (check the cluster \
                     connection and the nodes' ownership labels)",
                    guards.vanished, guards.joined
                ),
            );
        }
        if guards.hold_orphans {
            self.warn(
                WarningKind::MassVanish,
                format!(
                    "{} of {} managed nodes have no server at once; not acting on it (check the Hetzner \
                     token's project and the servers' ownership labels)",
                    guards.orphans, guards.owned_nodes
                ),
            );
        }

        let mut idle_candidates: Vec<(Timestamp, usize)> = Vec::new();
        for (i, m) in inv.machines.iter().enumerate() {
            let acc = &mut accs[acc_of[i]];
            let (state, reason) = self.machine(
                m,
                classes[i],
                acc,
                &guards,
                &mut per_machine[i],
                &mut idle_candidates,
                i,
            );
            reports.push(self.report(m, state, reason));
        }

        self.scale_down(
            &inv.machines,
            &classes,
            &mut accs,
            &acc_of,
            &mut idle_candidates,
            &mut per_machine,
            &mut reports,
        );
        let creates = self.scale_up(&inv.machines, &mut accs);

        let mut actions: Vec<PlannedAction> = Vec::new();
        for (i, ma) in per_machine.into_iter().enumerate() {
            if !ma.actions.is_empty() && !self.trust.destructive() {
                reports[i]
                    .reason
                    .to_mut()
                    .push_str(" (held: the snapshot is incomplete)");
            }
            actions.extend(ma.actions);
        }
        actions.extend(creates);
        let actions = self.fail_static(actions);

        Plan {
            version: PLAN_VERSION,
            now: self.now,
            actions,
            nodes: reports,
            pools: accs.into_iter().map(pool_report).collect(),
            unservable: demand.unservable,
            warnings: self.warnings,
        }
    }

    fn judge_sources(&mut self, duplicates: &[&'static str]) {
        let s = self.snapshot;
        let mut judge = |name: &'static str, problem: Option<&str>| -> bool {
            let duplicated = duplicates.contains(&name);
            if let Some(p) = problem {
                self.warnings.push(Warning {
                    kind: WarningKind::IncompleteData,
                    message: format!(
                        "the {name} list is incomplete ({p}); destructive actions are held"
                    ),
                });
            } else if duplicated {
                self.warnings.push(Warning {
                    kind: WarningKind::IncompleteData,
                    message: format!(
                        "the {name} list holds the same item twice (a page shifted while it was read); \
                         destructive actions are held"
                    ),
                });
            }
            problem.is_none() && !duplicated
        };
        self.trust = Trust {
            jobs: judge("jobs", s.jobs.problem()),
            runners: judge("runners", s.runners.problem()),
            servers: judge("servers", s.servers.problem()),
            nodes: judge("nodes", s.nodes.problem()),
            pods: judge("pods", s.pods.problem()),
        };
    }

    /// One account per configured pool, then one per unknown pool label, in name order.
    fn pool_accounts(&self, machines: &[Machine<'_>]) -> (Vec<PoolAcc>, Vec<usize>) {
        let mut accs: Vec<PoolAcc> = self
            .policy
            .pools()
            .iter()
            .enumerate()
            .map(|(i, p)| PoolAcc {
                name: p.config.name.clone(),
                configured: Some(i),
                warm: self.policy.warm_target(i, self.now),
                ..PoolAcc::default()
            })
            .collect();
        let unknown: std::collections::BTreeSet<&str> = machines
            .iter()
            .filter_map(|m| match m.pool {
                PoolRef::Unknown(name) => Some(name),
                PoolRef::Configured(_) => None,
            })
            .collect();
        let first_unknown = accs.len();
        let unknown_index: BTreeMap<&str, usize> = unknown
            .iter()
            .enumerate()
            .map(|(k, name)| (*name, first_unknown + k))
            .collect();
        accs.extend(unknown.iter().map(|name| PoolAcc {
            name: (*name).to_owned(),
            ..PoolAcc::default()
        }));
        let acc_of = machines
            .iter()
            .map(|m| match m.pool {
                PoolRef::Configured(i) => i,
                PoolRef::Unknown(name) => unknown_index[name],
            })
            .collect();
        (accs, acc_of)
    }

    /// Counts every machine's slots into its pool and matches waiting jobs to free runners.
    fn count_slots_and_match(
        &self,
        inv: &inventory::Inventory<'a>,
        classes: &[Class],
        accs: &mut [PoolAcc],
        acc_of: &[usize],
    ) -> demand::Demand {
        let mut free: Vec<(Owner, &'a [String])> = inv
            .unmanaged_free
            .iter()
            .map(|u| (Owner::Unmanaged, u.runner.labels.as_slice()))
            .collect();
        for (i, m) in inv.machines.iter().enumerate() {
            let acc = &mut accs[acc_of[i]];
            let rpn = self.pool_config(m.pool).runners_per_node;
            if let Some(server) = m.server {
                acc.servers += 1;
                acc.last_created = Some(
                    acc.last_created
                        .map_or(server.created, |c| c.max(server.created)),
                );
            }
            acc.running += m.jobs;
            acc.slots.busy += m.busy_runners();
            let owner = match m.pool {
                PoolRef::Configured(p) => Owner::Pool(p),
                PoolRef::Unknown(_) => Owner::Draining,
            };
            let supply = |acc: &mut PoolAcc, free: &mut Vec<(Owner, &'a [String])>| {
                for r in m.runners.iter().filter(|r| r.is_free()) {
                    free.push((owner, r.runner.labels.as_slice()));
                    acc.slots.idle += 1;
                }
            };
            match classes[i] {
                Class::Provisioning => {
                    acc.healthy += 1;
                    acc.slots.upcoming += rpn;
                }
                Class::Joining => {
                    acc.healthy += 1;
                    supply(acc, &mut free);
                    let online = count(m.runners.iter().filter(|r| r.runner.online));
                    acc.slots.upcoming += rpn.saturating_sub(online);
                }
                Class::Idle { .. } | Class::Busy => {
                    acc.healthy += 1;
                    supply(acc, &mut free);
                }
                // With the node or runner list unreadable, a machine that looks broken may be
                // fine: count it as capacity rather than buy a replacement on no evidence.
                Class::NodeMissing { .. } if !(self.trust.nodes && self.trust.pods) => {
                    acc.slots.upcoming += rpn;
                }
                Class::NoRunner if !self.trust.runners => acc.slots.upcoming += rpn,
                _ => {}
            }
        }
        let demand = demand::match_jobs(self.policy, &inv.queued, free.into_iter());
        for (p, acc) in accs.iter_mut().enumerate().take(self.policy.pools().len()) {
            acc.waiting = demand.waiting[p];
            acc.unmet = demand.unmet[p];
            acc.need = i64::from(acc.unmet) + i64::from(acc.warm)
                - i64::from(acc.slots.upcoming)
                - i64::from(demand.spare[p]);
        }
        demand
    }

    /// This machine's state, reason and actions for the tick.
    #[allow(clippy::too_many_arguments)]
    fn machine(
        &mut self,
        m: &Machine<'_>,
        class: Class,
        acc: &mut PoolAcc,
        guards: &Guards,
        out: &mut MachineActions,
        idle_candidates: &mut Vec<(Timestamp, usize)>,
        index: usize,
    ) -> (NodeState, Reason) {
        let now = self.now;
        let base = Context {
            now,
            can_disable: self.snapshot.forge.can_disable_runners,
            abort: None,
            confirm: self.policy.config().node_missing_confirm,
            hold_missing: false,
        };
        let pool = self.pool_config(m.pool);
        match class {
            Class::Deleting => (NodeState::Deleting, "Hetzner is deleting the server".into()),
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
                let missed = reusable
                    && match (started, m.server) {
                        (Stored::At(t), Some(s)) => {
                            billing::period_end(s.created, t, pool.billing_period) <= now
                        }
                        _ => false,
                    };
                let reclaim = reusable && !missed && acc.need > 0;
                let abort = if missed {
                    Some(
                        "it did not finish within its paid period and the next one is paid already"
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
                        ..base
                    },
                );
                if reclaim && progress.step == TeardownStep::Abort {
                    acc.need -= i64::from(pool.runners_per_node);
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
                    .map(|s| pool.provisioning_timeout - now.duration_since(s.created))
                    .unwrap_or_default();
                (
                    NodeState::Provisioning,
                    format!("waiting for the node to register ({} left)", Dur(left)).into(),
                )
            }
            Class::NodeMissing { joined, .. } => {
                let hold_missing = joined && guards.hold_missing;
                let p = teardown::delete_server_when_confirmed(
                    m,
                    &Context {
                        hold_missing,
                        ..base
                    },
                );
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
                let reason = if guards.hold_orphans {
                    "too many nodes lost their servers at once; not acting on it".to_owned()
                } else {
                    match missing {
                        Stored::At(since)
                            if now.duration_since(since)
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

    #[allow(clippy::too_many_arguments)]
    fn scale_down(
        &self,
        machines: &[Machine<'_>],
        classes: &[Class],
        accs: &mut [PoolAcc],
        acc_of: &[usize],
        candidates: &mut Vec<(Timestamp, usize)>,
        per_machine: &mut [MachineActions],
        reports: &mut [NodeReport],
    ) {
        let now = self.now;
        let mut ready: Vec<(Timestamp, usize)> = Vec::new();
        for &(idle_since, i) in candidates.iter() {
            let m = &machines[i];
            let pool = self.pool_config(m.pool);
            let Some(server) = m.server else { continue };
            debug_assert!(matches!(classes[i], Class::Idle { .. }));
            let idle_for = now.duration_since(idle_since);
            if idle_for < pool.idle_timeout {
                reports[i].reason = format!(
                    "idle for {}; kept until idle for {}",
                    Dur(idle_for),
                    Dur(pool.idle_timeout)
                )
                .into();
                continue;
            }
            match billing::teardown_window(
                server.created,
                now,
                pool.billing_period,
                pool.teardown_window,
                pool.teardown_lead,
            ) {
                Window::Before { opens } => {
                    reports[i].reason = format!(
                        "idle for {}; the teardown window opens at {}",
                        Dur(idle_for),
                        Clock(opens)
                    )
                    .into();
                }
                Window::Missed { next_opens } => {
                    reports[i].reason = format!(
                        "idle for {}; too late to finish teardown in this paid period, kept (next window opens at {})",
                        Dur(idle_for),
                        Clock(next_opens)
                    ).into();
                }
                Window::Open { closes } => ready.push((closes, i)),
            }
        }
        candidates.clear();
        ready.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| machines[a.1].name.cmp(machines[b.1].name))
        });
        for (_, i) in ready {
            let m = &machines[i];
            let acc = &mut accs[acc_of[i]];
            let pool = self.pool_config(m.pool);
            let slots = count(m.free_runners());
            let draining = acc.configured.is_none();
            let reason = if !draining && acc.healthy <= pool.min_nodes {
                Err(format!(
                    "idle in its teardown window, kept: the pool's minimum is {} node(s)",
                    pool.min_nodes
                ))
            } else if !draining && acc.need + i64::from(slots) > 0 {
                Err(format!(
                    "idle in its teardown window, kept: waiting jobs and {} warm slot(s) need its {slots} slot(s)",
                    acc.warm
                ))
            } else {
                Ok(())
            };
            match reason {
                Err(why) => reports[i].reason = why.into(),
                Ok(()) => {
                    let Some(server) = m.server else { continue };
                    let why = if draining {
                        format!(
                            "idle and its pool {:?} is no longer configured; starting teardown",
                            acc.name
                        )
                    } else {
                        format!(
                            "idle for at least {} and in the last {} of its paid period; starting teardown",
                            Dur(pool.idle_timeout),
                            Dur(pool.teardown_window)
                        )
                    };
                    if per_machine[i].push(
                        Action::BeginTeardown {
                            server_id: server.id,
                            at: self.now,
                        },
                        why.clone(),
                    ) {
                        acc.need += i64::from(slots);
                        acc.healthy -= 1;
                        acc.tearing_down += 1;
                        reports[i].reason = why.clone().into();
                    } else {
                        reports[i].reason =
                            "idle in its teardown window; its labels are updated first".into();
                    }
                }
            }
        }
    }

    fn scale_up(&mut self, machines: &[Machine<'_>], accs: &mut [PoolAcc]) -> Vec<PlannedAction> {
        let config = self.policy.config();
        let mut out = Vec::new();
        let total_servers = count(machines.iter().filter(|m| m.server.is_some()));
        let budget = self
            .snapshot
            .hetzner_budget
            .map(|b| b.remaining.saturating_sub(config.hetzner_reserve));
        let names = self
            .snapshot
            .servers
            .items()
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.snapshot.nodes.items().iter().map(|n| n.name.as_str()));
        let mut namer = Namer::new(&config.installation, self.now, names);
        let mut created = 0u32;
        for (i, pool) in self.policy.pools().iter().enumerate() {
            let acc = &mut accs[i];
            let rpn = i64::from(pool.config.runners_per_node);
            let for_slots = u32::try_from((acc.need.max(0) + rpn - 1) / rpn).unwrap_or(u32::MAX);
            let for_min = pool
                .config
                .min_nodes
                .saturating_sub(acc.healthy + acc.reclaimed);
            let want = for_slots.max(for_min);
            if want == 0 {
                continue;
            }
            let limits = [
                (
                    pool.config.max_nodes.saturating_sub(acc.servers),
                    "the pool's max_nodes",
                ),
                (
                    config.max_nodes.saturating_sub(total_servers + created),
                    "the global max_nodes",
                ),
                (
                    config.max_creates_per_tick.saturating_sub(created),
                    "max_creates_per_tick",
                ),
                (
                    budget.map_or(u32::MAX, |b| b.saturating_sub(created)),
                    "the Hetzner request budget",
                ),
            ];
            let (room, limit) = limits
                .iter()
                .min_by_key(|(room, _)| *room)
                .copied()
                .unwrap_or((0, ""));
            let n = want.min(room);
            if n < want {
                let kind = if limit == "the Hetzner request budget" {
                    WarningKind::BudgetLow
                } else {
                    WarningKind::MaxReached
                };
                self.warn(
                    kind,
                    format!(
                        "pool {}: wants {want} more server(s), {limit} allows {n}",
                        pool.config.name
                    ),
                );
            }
            if n == 0 {
                continue;
            }
            let (server_type, location) = match scale_up::placement(
                config,
                pool,
                &self.snapshot.create_failures,
                acc.last_created,
                self.now,
            ) {
                Ok(place) => place,
                Err(Blocked::Backoff { until, failures }) => {
                    acc.backoff_until = Some(until);
                    self.warn(
                        WarningKind::CreateBackoff,
                        format!(
                            "pool {}: {failures} failed creation(s); next attempt at {until}",
                            pool.config.name
                        ),
                    );
                    continue;
                }
                Err(Blocked::NoCapacity { until }) => {
                    acc.backoff_until = Some(until);
                    self.warn(
                            WarningKind::CreateBackoff,
                            format!(
                                "pool {}: no capacity for any of its server types and locations; next attempt at {until}",
                                pool.config.name
                            ),
                        );
                    continue;
                }
            };
            let reason = format!(
                "{} waiting job(s) no free runner takes, warm target {}, {} slot(s) on the way, minimum {} node(s)",
                acc.unmet, acc.warm, acc.slots.upcoming, pool.config.min_nodes
            );
            let labels = scale_up::server_labels(&config.installation, &pool.config.name);
            for _ in 0..n {
                out.push(PlannedAction {
                    action: Action::CreateServer {
                        pool: pool.config.name.clone(),
                        name: namer.next(&pool.config.name),
                        server_type: server_type.to_owned(),
                        location: location.to_owned(),
                        image: pool.config.image.clone(),
                        labels: labels.clone(),
                        node_labels: labels.clone(),
                    },
                    reason: reason.clone().into(),
                });
            }
            acc.creating = n;
            created += n;
        }
        out
    }

    /// Removes what the data does not justify: nothing destructive on incomplete data, no creates
    /// unless the servers and jobs were read completely.
    fn fail_static(&mut self, actions: Vec<PlannedAction>) -> Vec<PlannedAction> {
        if self.trust.destructive() {
            return actions;
        }
        let before = actions.len();
        let creates_ok = self.trust.creates();
        let kept: Vec<PlannedAction> = actions
            .into_iter()
            .filter(|a| creates_ok && matches!(a.action, Action::CreateServer { .. }))
            .collect();
        if kept.len() < before {
            self.warn(
                WarningKind::IncompleteData,
                format!(
                    "{} action(s) held until every source is read completely{}",
                    before - kept.len(),
                    if creates_ok {
                        ""
                    } else {
                        " (creations need complete server and job lists)"
                    }
                ),
            );
        }
        kept
    }

    fn report(&self, m: &Machine<'_>, state: NodeState, reason: Reason) -> NodeReport {
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
            },
            paid_until: m
                .server
                .map(|s| billing::period_end(s.created, self.now, pool.billing_period)),
        }
    }
}

fn pool_report(a: PoolAcc) -> PoolReport {
    PoolReport {
        configured: a.configured.is_some(),
        waiting: a.waiting,
        unmet: a.unmet,
        running: a.running,
        slots: a.slots,
        servers: a.servers,
        warm_target: a.warm,
        desired: (a.servers + a.creating).saturating_sub(a.tearing_down),
        creating: a.creating,
        tearing_down: a.tearing_down,
        backoff_until: a.backoff_until,
        name: a.name,
    }
}

/// Mass-disappearance guards: when most nodes (or servers) vanish at once, the likelier story is
/// a broken connection or a relabelling, not a fleet of dead machines.
struct Guards {
    joined: usize,
    vanished: usize,
    hold_missing: bool,
    owned_nodes: usize,
    orphans: usize,
    hold_orphans: bool,
}

impl Guards {
    fn of(machines: &[Machine<'_>], classes: &[Class]) -> Self {
        let vanished = classes
            .iter()
            .filter(|c| matches!(c, Class::NodeMissing { joined: true, .. }))
            .count();
        let joined = vanished
            + machines
                .iter()
                .filter(|m| m.server.is_some() && m.node.is_some())
                .count();
        let orphans = classes
            .iter()
            .filter(|c| matches!(c, Class::ServerMissing { .. }))
            .count();
        let owned_nodes = machines.iter().filter(|m| m.node_owned).count();
        Self {
            joined,
            vanished,
            hold_missing: vanished >= 2 && vanished * 2 > joined,
            owned_nodes,
            orphans,
            hold_orphans: orphans >= 2 && orphans * 2 > owned_nodes,
        }
    }
}
