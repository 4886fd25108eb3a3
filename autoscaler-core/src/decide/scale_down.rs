//! Scale down: idle nodes in the teardown window of their paid period, as far as the pool's
//! minimum, warm slots and waiting jobs allow.

use jiff::Timestamp;

use super::{Decision, MachineActions, evidence::Hold, pools::PoolAcc};
use crate::billing::{self, Window};
use crate::inventory::{Machine, count};
use crate::lifecycle::Class;
use crate::plan::{Action, NodeReport};
use crate::render::Text;
use crate::time;

impl Decision<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scale_down(
        &mut self,
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
        let mut early: Vec<(Timestamp, usize)> = Vec::new();
        for &(idle_since, i) in candidates.iter() {
            let m = &machines[i];
            let pool = self.pool_config(m.pool);
            let Some(server) = m.server else { continue };
            debug_assert!(matches!(classes[i], Class::Idle { .. }));
            let idle_for = now.duration_since(idle_since);
            if idle_for < pool.idle_timeout {
                self.wake_at(time::add(idle_since, pool.idle_timeout));
                reports[i].reason = Text::new("idle for ")
                    .dur(idle_for)
                    .s("; kept until idle for ")
                    .dur(pool.idle_timeout)
                    .done();
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
                    self.wake_at(opens);
                    early.push((opens, i));
                    reports[i].reason = Text::new("idle for ")
                        .dur(idle_for)
                        .s("; the teardown window opens at ")
                        .clock(opens)
                        .done();
                }
                Window::Missed { next_opens } => {
                    self.wake_at(next_opens);
                    reports[i].reason = Text::new("idle for ")
                        .dur(idle_for)
                        .s("; too late to finish teardown in this paid period, kept (next window opens at ")
                        .clock(next_opens)
                        .s(")")
                        .done();
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
                Err(Text::new("idle in its teardown window; ")
                    .s(hold.reason())
                    .done())
            } else if !draining && acc.healthy <= pool.min_nodes {
                Err(
                    Text::new("idle in its teardown window, kept: the pool's minimum is ")
                        .num(u64::from(pool.min_nodes))
                        .s(" node(s)")
                        .done(),
                )
            } else if !draining && acc.need + i64::from(slots) > 0 {
                Err(
                    Text::new("idle in its teardown window, kept: waiting jobs and ")
                        .num(u64::from(acc.warm))
                        .s(" warm slot(s) need its ")
                        .num(u64::from(slots))
                        .s(" slot(s)")
                        .done(),
                )
            } else {
                Ok(())
            };
            match reason {
                Err(why) => reports[i].reason = why,
                Ok(()) => {
                    let Some(server) = m.server else { continue };
                    let why = if draining {
                        format!(
                            "idle and its pool {:?} is no longer configured; starting teardown",
                            acc.name
                        )
                    } else {
                        Text::new("idle for at least ")
                            .dur(pool.idle_timeout)
                            .s(" and in the last ")
                            .dur(pool.teardown_window)
                            .s(" of its paid period; starting teardown")
                            .done()
                            .into_owned()
                    };
                    if self.begin(&mut per_machine[i], acc, server.id, slots, &why) {
                        reports[i].reason = why.into();
                    } else {
                        reports[i].reason =
                            "idle in its teardown window; its labels are updated first".into();
                    }
                }
            }
        }
        if self.snapshot.forge.can_disable_runners {
            self.steer(machines, holds, accs, acc_of, early, per_machine, reports);
        }
    }

    /// Begins a teardown of a machine with `slots` free runner slots, and takes them out of its
    /// pool's account; false when its labels are written by another action first.
    fn begin(
        &self,
        ma: &mut MachineActions,
        acc: &mut PoolAcc,
        server_id: u64,
        slots: u32,
        why: &str,
    ) -> bool {
        let begun = ma.push(
            Action::BeginTeardown {
                server_id,
                at: self.now,
            },
            why.to_owned(),
        );
        if begun {
            acc.need += i64::from(slots);
            acc.spare = acc.spare.saturating_sub(slots);
            acc.healthy -= 1;
            acc.tearing_down += 1;
        }
        begun
    }

    /// Steering: of the idle nodes before their window, those closest to the end of their paid
    /// period have their runners disabled (a teardown begun early, held before its point of no
    /// return until the window opens) while other free runners take the pool's next jobs. They
    /// stay idle and go at their window instead of taking a job that carries them into another
    /// paid period. A job that needs them enables them again (see the teardown's abort), so the
    /// pool always keeps at least one enabled free runner and its warm target.
    #[allow(clippy::too_many_arguments)]
    fn steer(
        &self,
        machines: &[Machine<'_>],
        holds: &[Option<Hold>],
        accs: &mut [PoolAcc],
        acc_of: &[usize],
        mut early: Vec<(Timestamp, usize)>,
        per_machine: &mut [MachineActions],
        reports: &mut [NodeReport],
    ) {
        // Closest to its window first.
        early.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| machines[a.1].name.cmp(machines[b.1].name))
        });
        for (opens, i) in early {
            let m = &machines[i];
            let acc = &mut accs[acc_of[i]];
            let pool = self.pool_config(m.pool);
            let slots = count(m.free_runners());
            let Some(server) = m.server else { continue };
            let left = time::between(
                self.now,
                billing::period_end(server.created, self.now, pool.billing_period),
            );
            // Another free slot stays enabled after this one goes, beyond the waiting jobs, and
            // the warm target stays on enabled idle runners.
            let surplus = acc.need + i64::from(slots) < 0
                && acc.spare.saturating_sub(slots) >= acc.warm.max(1);
            if holds[i].is_some()
                || acc.configured.is_none()
                || slots == 0
                || left > steering_horizon(pool.billing_period)
                || acc.healthy <= pool.min_nodes
                || !surplus
            {
                continue;
            }
            let why = Text::new("steering: other free runners with more of their paid period left take new jobs; its runners are disabled until its teardown window opens at ")
                .clock(opens)
                .done()
                .into_owned();
            if self.begin(&mut per_machine[i], acc, server.id, slots, &why) {
                reports[i].reason = why.into();
            }
        }
    }
}

/// How close to the end of its paid period an idle node must be to be steered: a job started
/// on it then would likely still run when the period ends.
fn steering_horizon(period: jiff::SignedDuration) -> jiff::SignedDuration {
    period / 4
}
