//! Slot accounting per pool, and matching waiting jobs to free runners.

use jiff::Timestamp;
use std::collections::BTreeMap;

use super::Decision;
use super::evidence::Hold;
use crate::demand::{self, Owner};
use crate::inventory::{self, Machine, PoolRef, count};
use crate::lifecycle::Class;
use crate::plan::{PoolReport, Slots};
use crate::{queue, time};

/// One pool's running totals.
#[derive(Debug, Default)]
pub(super) struct PoolAcc {
    pub(super) name: String,
    pub(super) configured: Option<usize>,
    pub(super) servers: u32,
    pub(super) healthy: u32,
    pub(super) running: u32,
    pub(super) slots: Slots,
    pub(super) last_created: Option<Timestamp>,
    pub(super) waiting: u32,
    pub(super) unmet: u32,
    pub(super) warm: u32,
    /// When each slot on the way is free: servers booting, runners registering, busy runners
    /// at their job's expected end.
    pub(super) frees: Vec<queue::Slot>,
    /// Slots still wanted: those of the servers waiting jobs need (see `queue`), plus the warm
    /// target, less the free and soon-free slots no job takes; negative means surplus.
    pub(super) need: i64,
    /// Enabled free runner slots no waiting job takes: what the warm target and the next job
    /// find at once. Steering never takes the last of them, nor any the warm target counts on.
    pub(super) spare: u32,
    pub(super) creating: u32,
    pub(super) tearing_down: u32,
    pub(super) reclaimed: u32,
    pub(super) backoff_until: Option<Timestamp>,
}

impl<'a> Decision<'a> {
    /// One account per configured pool, then one per unknown pool label, in name order.
    pub(super) fn pool_accounts(&self, machines: &[Machine<'_>]) -> (Vec<PoolAcc>, Vec<usize>) {
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
    pub(super) fn count_slots_and_match(
        &self,
        inv: &inventory::Inventory<'a>,
        classes: &[Class],
        holds: &[Option<Hold>],
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
            let pool = self.pool_config(m.pool);
            let rpn = pool.runners_per_node;
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
            let now = self.now;
            let on_the_way = |acc: &mut PoolAcc, n: u32, at: Timestamp| {
                acc.slots.upcoming += n;
                acc.frees
                    .extend(std::iter::repeat_n((at, true), n as usize));
            };
            match classes[i] {
                Class::Provisioning => {
                    acc.healthy += 1;
                    // Expected a cold start after its creation; one that is late is expected
                    // any moment.
                    let ready = m.server.map_or(now, |s| {
                        time::add(s.created, self.cold_start(pool)).max(now)
                    });
                    on_the_way(acc, rpn, ready);
                }
                Class::Joining => {
                    acc.healthy += 1;
                    supply(acc, &mut free);
                    let online = count(m.runners.iter().filter(|r| r.runner.online));
                    on_the_way(acc, rpn.saturating_sub(online), now);
                }
                Class::Idle { .. } | Class::Busy => {
                    acc.healthy += 1;
                    supply(acc, &mut free);
                    acc.slots.ending_soon += m.free_by(time::add(now, self.cold_start(pool)));
                    acc.frees.extend(m.frees_at.iter().map(|&t| (t, false)));
                }
                // With the node or runner list unreadable or disagreeing, a machine that looks
                // broken may be fine: count it as capacity rather than buy a replacement on no
                // evidence.
                Class::NodeMissing { .. }
                    if !(self.trust.nodes && self.trust.pods) || holds[i].is_some() =>
                {
                    on_the_way(acc, rpn, now);
                }
                Class::NoRunner if !self.trust.runners || holds[i].is_some() => {
                    on_the_way(acc, rpn, now);
                }
                _ => {}
            }
        }
        let demand = demand::match_jobs(self.policy, &inv.queued, free.into_iter());
        for (p, acc) in accs.iter_mut().enumerate().take(self.policy.pools().len()) {
            let pool = &self.policy.pools()[p].config;
            acc.waiting = demand.waiting[p];
            acc.unmet = demand.unmet[p];
            acc.spare = demand.spare[p];
            let placed = queue::place(
                self.now,
                self.cold_start(pool),
                self.target_wait(pool),
                pool.runners_per_node,
                &demand.unmet_since[p],
                std::mem::take(&mut acc.frees),
            );
            acc.need = i64::from(placed.buy) * i64::from(pool.runners_per_node)
                + i64::from(acc.warm)
                - i64::from(placed.left)
                - i64::from(demand.spare[p]);
        }
        demand
    }
}

pub(super) fn pool_report(a: PoolAcc) -> PoolReport {
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
