//! The teardown sequence, derived afresh on every tick from what is observed.
//!
//! ```text
//!  begin (server label) → disable runners → [next snapshot: still idle?] → delete runners and
//!        cordon → drain → delete node (and mark the server node-missing)
//!        → [node still gone after node_missing_confirm] → delete server
//! ```
//!
//! Every step leaves a mark the next snapshot shows (a label, a disabled runner, a missing
//! runner, `unschedulable`, a `drained` annotation, a missing node), so a crash at any point
//! resumes at the right step. Until the runners are deleted, the sequence is reversible: a job
//! that slipped in between the idle check and the disable re-enables the runners, and so does a
//! waiting job that wants the node. The design we replace deleted the runner straight after an
//! idle check and killed the job that was assigned in between.

use jiff::{SignedDuration, Timestamp};

use crate::inventory::Machine;
use crate::keys::Stored;
use crate::plan::{Action, Reason, TeardownStep, Warning, WarningKind};
use crate::time;

/// What the caller decided around the machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'r> {
    pub(crate) now: Timestamp,
    pub(crate) can_disable: bool,
    /// Why to give the teardown up while it is still reversible (demand, a missed hour).
    pub(crate) abort: Option<&'r str>,
    /// How long a missing node must stay missing before the server goes.
    pub(crate) confirm: SignedDuration,
    /// A teardown begun early to steer jobs away waits, runners disabled, until the teardown
    /// window opens at this instant before it passes the point of no return.
    pub(crate) window_opens: Option<Timestamp>,
}

/// The step this tick, its actions and reason, and anything a person should know.
#[derive(Debug)]
pub(crate) struct Progress {
    pub(crate) step: TeardownStep,
    pub(crate) actions: Vec<Action>,
    pub(crate) reason: Reason,
    pub(crate) warning: Option<Warning>,
}

impl Progress {
    fn new(step: TeardownStep, actions: Vec<Action>, reason: impl Into<Reason>) -> Self {
        Self {
            step,
            actions,
            reason: reason.into(),
            warning: None,
        }
    }

    fn held(reason: impl Into<Reason>) -> Self {
        Self::new(TeardownStep::Held, Vec::new(), reason)
    }
}

/// The next step for a machine being torn down. `m` has a server with the `teardown` label, or is
/// a node whose missing server was confirmed (then nothing is reversible: there is no server).
pub(crate) fn progress(m: &Machine<'_>, ctx: &Context<'_>) -> Progress {
    let Some(node) = m.node else {
        return delete_server_when_confirmed(m, ctx);
    };
    if !node.cordoned {
        // Reversible: runners may still be enabled again.
        if m.is_busy() {
            return abort(m, ctx, &format!("{} job(s) started on it", m.jobs.max(1)));
        }
        if let Some(why) = ctx.abort {
            return abort(m, ctx, why);
        }
        if let Some(mut p) = retire_runners(m, ctx) {
            if let (TeardownStep::DeleteRunners, Some(opens)) = (p.step, ctx.window_opens)
                && ctx.now < opens
            {
                return Progress::new(
                    TeardownStep::Steered,
                    Vec::new(),
                    format!(
                        "steered: its runners are disabled so new jobs go to machines with more of \
                         their paid period left; it waits idle for its teardown window at {opens}"
                    ),
                );
            }
            if p.step == TeardownStep::DeleteRunners {
                // Deleting the runners is the point of no return; the cordon goes with it, so
                // the next snapshot shows that the runners are gone because we deleted them,
                // not because a list lost them.
                p.actions.push(Action::Cordon {
                    node: node.name.clone(),
                });
                p.reason = format!("{}, and cordoning", p.reason).into();
            }
            return p;
        }
        return Progress::new(
            TeardownStep::Cordon,
            vec![Action::Cordon {
                node: node.name.clone(),
            }],
            "its runners are gone; cordoning",
        );
    }
    // Past the point of no return: the runners were deleted.
    if m.is_busy() {
        let mut p = Progress::held(format!(
            "a runner registered again on the cordoned node and took {} job(s); waiting for it to finish",
            m.jobs.max(1)
        ));
        p.warning = Some(Warning {
            kind: WarningKind::BusyInTeardown,
            message: format!(
                "node {} is in teardown but runs a job; it is left alone until the job ends",
                m.name
            ),
        });
        return p;
    }
    if let Some(p) = retire_runners(m, ctx) {
        return p;
    }
    // The server is marked node-missing as the node goes: the confirmation starts now, and the
    // next snapshot shows that the node is gone because we deleted it, not because a list lost
    // it.
    let mut delete = vec![Action::DeleteNode {
        node: node.name.clone(),
    }];
    if let Some(server) = m.server {
        delete.push(Action::MarkNodeMissing {
            server_id: server.id,
            since: ctx.now,
        });
    }
    if !node.ready {
        return Progress::new(
            TeardownStep::DeleteNode,
            delete,
            "node is NotReady so its pods cannot be drained; deleting the node (its pods are garbage-collected)",
        );
    }
    if m.node_marks.drained.is_present() {
        return Progress::new(
            TeardownStep::DeleteNode,
            delete,
            "drained; deleting the node",
        );
    }
    Progress::new(
        TeardownStep::Drain,
        vec![Action::Drain {
            node: node.name.clone(),
        }],
        "cordoned; draining (a PodDisruptionBudget refusal is retried next tick)",
    )
}

/// Disables, then (on a later snapshot, still idle) deletes the machine's runners. `None` when
/// no runner is left.
fn retire_runners(m: &Machine<'_>, ctx: &Context<'_>) -> Option<Progress> {
    if m.runners.is_empty() {
        return None;
    }
    if ctx.can_disable {
        let enabled: Vec<Action> = m
            .runners
            .iter()
            .filter(|r| !r.runner.disabled)
            .map(|r| Action::DisableRunner {
                runner_id: r.runner.id,
                runner_name: r.runner.name.clone(),
            })
            .collect();
        if !enabled.is_empty() {
            return Some(Progress::new(
                TeardownStep::DisableRunners,
                enabled,
                "disabling its runners so no new job lands; the next snapshot must still show them idle",
            ));
        }
    }
    if let Some(r) = m.runners.iter().find(|r| r.runner.busy) {
        return Some(Progress::new(
            TeardownStep::ConfirmIdle,
            Vec::new(),
            format!(
                "Gitea reports recent activity on runner {}; waiting for it to settle before deleting",
                r.runner.name
            ),
        ));
    }
    let deletes = m
        .runners
        .iter()
        .map(|r| Action::DeleteRunner {
            runner_id: r.runner.id,
            runner_name: r.runner.name.clone(),
        })
        .collect();
    let reason = if ctx.can_disable {
        "its runners are disabled and still idle on this later snapshot; deleting them"
    } else {
        "idle on two snapshots in a row; deleting its runners (the forge cannot disable runners)"
    };
    Some(Progress::new(TeardownStep::DeleteRunners, deletes, reason))
}

fn abort(m: &Machine<'_>, ctx: &Context<'_>, why: &str) -> Progress {
    let disabled: Vec<Action> = if ctx.can_disable {
        m.runners
            .iter()
            .filter(|r| r.runner.disabled)
            .map(|r| Action::EnableRunner {
                runner_id: r.runner.id,
                runner_name: r.runner.name.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    if !disabled.is_empty() {
        return Progress::new(
            TeardownStep::Abort,
            disabled,
            format!("teardown aborted: {why}; enabling its runners again"),
        );
    }
    match m.server {
        Some(server) => Progress::new(
            TeardownStep::Abort,
            vec![Action::AbortTeardown {
                server_id: server.id,
            }],
            format!("teardown aborted: {why}; the node is kept"),
        ),
        None => Progress::held(format!("{why}; the node is left alone")),
    }
}

/// The node is gone. The server goes only after two complete snapshots agree, and only if no
/// runner pod still names the node.
pub(crate) fn delete_server_when_confirmed(m: &Machine<'_>, ctx: &Context<'_>) -> Progress {
    let Some(server) = m.server else {
        return Progress::held("neither server nor node is left");
    };
    if m.is_busy() {
        return Progress::held(format!(
            "a running job names a runner of node {}; the server is left alone until it ends",
            m.name
        ));
    }
    if m.live_pods() > 0 {
        return Progress::held(format!(
            "{} runner pod(s) still name node {}; waiting for them to go",
            m.live_pods(),
            m.name
        ));
    }
    match m.server_marks.node_missing {
        Stored::At(since) if time::between(since, ctx.now) >= ctx.confirm => Progress::new(
            TeardownStep::DeleteServer,
            vec![Action::DeleteServer {
                server_id: server.id,
                server_name: server.name.clone(),
                join_token: live_join_token(server),
            }],
            format!("node missing since {since} on every snapshot since; deleting the server"),
        ),
        Stored::At(since) => Progress::new(
            TeardownStep::ConfirmNodeGone,
            Vec::new(),
            format!("node missing since {since}; waiting for a later snapshot to agree"),
        ),
        Stored::Absent | Stored::Garbled => Progress::new(
            TeardownStep::ConfirmNodeGone,
            vec![Action::MarkNodeMissing {
                server_id: server.id,
                since: ctx.now,
            }],
            "node not found; marking the server so a later snapshot can confirm",
        ),
    }
}

/// The server's join token, when its label names one: it goes with the server.
pub(crate) fn live_join_token(server: &crate::snapshot::Server) -> Option<String> {
    server
        .labels
        .get(crate::keys::JOIN_TOKEN)
        .filter(|id| crate::keys::is_token_id(id))
        .cloned()
}
