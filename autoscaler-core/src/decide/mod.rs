//! The decision: one pass over the correlated snapshot that yields the plan.
//!
//! Order of work: judge the data, classify every machine, count slots per pool, match waiting
//! jobs to free runners, then per machine (teardowns in progress, faults, memory upkeep), then
//! scale down idle nodes in their billing window, then scale up. Finally the fail-static filter
//! removes everything destructive when any source was incomplete.
//!
//! The work is split by concern: `pools` (slot accounting and demand), `machine` (one machine's
//! state and actions), `scale_down`, `creates`.

use jiff::Timestamp;

use crate::config::{Policy, PoolConfig};
use crate::inventory::{self, PoolRef};
use crate::lifecycle::{Class, classify};
use crate::plan::{
    Action, NodeReport, NodeState, PLAN_VERSION, Plan, PlannedAction, Reason, Warning, WarningKind,
};
use crate::snapshot::Snapshot;

mod creates;
mod evidence;
mod images;
mod machine;
mod pools;
mod scale_down;

use evidence::{Evidence, Hold};
pub use images::BAKE_SERVER_LIMIT;
use pools::pool_report;

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

/// Removes the destructive actions of a machine whose evidence does not agree, and says why.
fn hold_destructive(ma: &mut MachineActions, report: &mut NodeReport, hold: Hold) {
    let before = ma.actions.len();
    ma.actions.retain(|a| !a.action.is_destructive());
    if ma.actions.len() < before {
        if let NodeState::Teardown { step } = &mut report.state {
            *step = crate::plan::TeardownStep::Held;
        }
        let reason = report.reason.to_mut();
        reason.push_str("; ");
        reason.push_str(hold.reason());
    }
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

/// Actions of one machine in this tick; at most one writes the server's labels, because a
/// Hetzner label update replaces the whole label set and two concurrent writes would race.
#[derive(Default)]
struct MachineActions {
    actions: Vec<PlannedAction>,
    server_labels_written: bool,
}

impl MachineActions {
    fn push(&mut self, action: Action, reason: impl Into<Reason>) -> bool {
        let writes_labels = action.writes_server_labels();
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
    /// The earliest deadline ahead (see `Plan::wake_at`).
    wake: Option<Timestamp>,
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
            wake: None,
        }
    }

    /// How long a server of `pool` bought now takes until its runner takes a job: as measured
    /// lately (the shell's `cold_starts`), else as configured.
    fn cold_start(&self, pool: &PoolConfig) -> jiff::SignedDuration {
        self.snapshot
            .cold_starts
            .iter()
            .find(|c| c.pool == pool.name)
            .map_or(pool.cold_start, |c| c.expected)
            .max(jiff::SignedDuration::ZERO)
    }

    /// How long a waiting job of `pool` may wait for a busy or booting runner before a server
    /// is bought for it: as configured, else a quarter longer than a cold start.
    fn target_wait(&self, pool: &PoolConfig) -> jiff::SignedDuration {
        pool.target_wait.unwrap_or_else(|| {
            let cold = self.cold_start(pool);
            cold.saturating_add(cold / 4)
        })
    }

    /// Asks for a decision at `at`, if that is ahead.
    fn wake_at(&mut self, at: Timestamp) {
        if at > self.now {
            self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
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
        if !inv.foreign.is_empty() {
            let shown: Vec<String> = inv
                .foreign
                .iter()
                .take(3)
                .map(|s| format!("{} (id {})", s.name, s.id))
                .collect();
            self.warn(
                WarningKind::ForeignCluster,
                format!(
                    "{} server(s) carry our ownership label {}={} but another cluster's identity \
                     ({}{}): another installation of the same name shares this Hetzner project. \
                     They are never touched; give each installation its own name",
                    inv.foreign.len(),
                    crate::keys::OWNER,
                    self.policy.config().installation,
                    shown.join(", "),
                    if inv.foreign.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            );
        }
        if !inv.others.is_empty() {
            let (servers, nodes) = inv.others.iter().fold((0u32, 0u32), |(s, n), o| {
                (s.saturating_add(o.1), n.saturating_add(o.2))
            });
            let each: Vec<String> = inv
                .others
                .iter()
                .map(|(name, s, n)| {
                    format!("{}={name}: {s} server(s), {n} node(s)", crate::keys::OWNER)
                })
                .collect();
            self.warn(
                WarningKind::OtherInstallations,
                format!(
                    "{servers} server(s) and {nodes} node(s) carry another installation's ownership \
                     label ({}): they are not this installation's ({:?}) and are never counted or \
                     changed; if they should be, set INSTALLATION to their name",
                    each.join("; "),
                    self.policy.config().installation,
                ),
            );
        }
        for n in &inv.namesakes {
            let ids: Vec<String> = n
                .runners
                .iter()
                .take(5)
                .map(|r| {
                    let mark = if Some(r.id) == n.ours {
                        ", the pod's"
                    } else {
                        ""
                    };
                    format!(
                        "id {}{}{mark}",
                        r.id,
                        if r.online { "" } else { " offline" }
                    )
                })
                .collect();
            let what = match n.ours {
                Some(id) => format!(
                    "runner {id} is the pod's own (recorded on the node); the others are never \
                     counted, disabled or deleted, and their jobs do not keep the machine. Delete \
                     them in Gitea if they are stale"
                ),
                None => "none is known to be the pod's, so none counts as capacity, none is ever \
                         deleted, and a job on one not recorded as foreign keeps the machine. \
                         Delete the foreign one in Gitea"
                    .to_owned(),
            };
            self.warn(
                WarningKind::NamesakeRunners,
                format!(
                    "{} runner(s) carry the name of runner pod {} on {} ({}): {what}",
                    n.runners.len(),
                    n.pod,
                    n.machine,
                    ids.join(", "),
                ),
            );
        }
        if !self.snapshot.forge.known {
            self.warn(
                WarningKind::WeakTeardownOrder,
                "the forge's version is unknown (it could not be read yet), so runners are not \
                 disabled before they are deleted: a job assigned between the last snapshot and a \
                 runner deletion would be lost",
            );
        } else if !self.snapshot.forge.can_disable_runners {
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
        let evidence = Evidence::of(&inv, &classes, |m| {
            self.pool_config(m.pool).runners_per_node
        });
        let (mut accs, acc_of) = self.pool_accounts(&inv.machines);
        let demand =
            self.count_slots_and_match(&inv, &classes, &evidence.holds, &mut accs, &acc_of);
        if !demand.unservable.is_empty() {
            // The shapes of the oldest jobs are shown; only those are formatted.
            let mut shapes: rustc_hash::FxHashSet<&[String]> = rustc_hash::FxHashSet::default();
            let mut shown: Vec<String> = Vec::new();
            for j in &demand.unservable {
                if shapes.insert(j.labels.as_slice()) && shown.len() < 5 {
                    shown.push(format!("[{}]", j.labels.join(", ")));
                }
            }
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
        self.warnings.extend(evidence.warnings.iter().cloned());

        let mut idle_candidates: Vec<(Timestamp, usize)> = Vec::new();
        for (i, m) in inv.machines.iter().enumerate() {
            let acc = &mut accs[acc_of[i]];
            let (state, reason) = self.machine(
                m,
                classes[i],
                acc,
                &mut per_machine[i],
                &mut idle_candidates,
                i,
            );
            self.after_class(m, classes[i], &mut per_machine[i]);
            reports.push(self.report(m, state, reason));
        }

        self.scale_down(
            &inv.machines,
            &classes,
            &evidence.holds,
            &mut accs,
            &acc_of,
            &mut idle_candidates,
            &mut per_machine,
            &mut reports,
        );
        for ((ma, report), hold) in per_machine
            .iter_mut()
            .zip(&mut reports)
            .zip(&evidence.holds)
        {
            if let Some(hold) = hold {
                hold_destructive(ma, report, *hold);
            }
        }
        let boots = self.boot_choices();
        let creates = self.scale_up(&inv.machines, &mut accs, &boots);
        let leftovers = self.bake_leftovers(&inv);

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
        actions.extend(leftovers);
        actions.extend(creates);
        let actions = self.fail_static(actions);
        let confirm = self.policy.config().node_missing_confirm;
        let next_decision = actions
            .iter()
            .filter_map(|a| a.action.continues_at(self.now, confirm))
            .min();

        Plan {
            version: PLAN_VERSION,
            now: self.now,
            next_decision,
            actions,
            nodes: reports,
            pools: accs.into_iter().map(pool_report).collect(),
            unservable: demand.unservable,
            warnings: self.warnings,
            wake_at: self.wake,
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
}
