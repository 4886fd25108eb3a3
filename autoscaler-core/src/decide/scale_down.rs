//! Scale down: idle nodes in the teardown window of their paid period, as far as the pool's
//! minimum, warm slots and waiting jobs allow.

use jiff::Timestamp;

use super::{Decision, MachineActions, evidence::Hold, pools::PoolAcc};
use crate::billing::{self, Window};
use crate::inventory::{Machine, count};
use crate::lifecycle::Class;
use crate::plan::{Action, NodeReport};
use crate::render::{Clock, Dur};

impl Decision<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scale_down(
        &self,
        machines: &[Machine<'_>],
        classes: &[Class],
        holds: &[Option<Hold>],
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
            let reason = if let Some(hold) = holds[i] {
                Err(format!("idle in its teardown window; {}", hold.reason()))
            } else if !draining && acc.healthy <= pool.min_nodes {
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
}
