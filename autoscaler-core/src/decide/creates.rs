//! Scale up: the servers each configured pool creates in this tick, within every limit.

use super::{Decision, pools::PoolAcc};
use crate::ServerSpec;
use crate::image::BootChoice;
use crate::inventory::{Machine, count};
use crate::plan::{Action, PlannedAction, WarningKind};
use crate::scale_up::{self, Blocked, Namer};

impl Decision<'_> {
    pub(super) fn scale_up(
        &mut self,
        machines: &[Machine<'_>],
        accs: &mut [PoolAcc],
        boots: &[BootChoice],
    ) -> Vec<PlannedAction> {
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
                    config
                        .max_nodes
                        .saturating_sub(total_servers.saturating_add(created)),
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
                "{} waiting job(s) no free runner takes, warm target {}, {} slot(s) on the way, {} ending soon, minimum {} node(s)",
                acc.unmet,
                acc.warm,
                acc.slots.upcoming,
                acc.slots.ending_soon,
                pool.config.min_nodes
            );
            let labels = scale_up::server_labels(
                &config.installation,
                &pool.config.name,
                self.snapshot.cluster.as_deref(),
            );
            let node_labels = scale_up::node_labels(&config.installation, &pool.config.name);
            let baked_image = match boots.get(i) {
                Some(BootChoice::Baked(id)) => Some(*id),
                _ => None,
            };
            let image = baked_image.map_or_else(|| pool.config.image.clone(), |id| id.to_string());
            for _ in 0..n {
                out.push(PlannedAction {
                    action: Action::CreateServer(ServerSpec {
                        pool: pool.config.name.clone(),
                        name: namer.next(&pool.config.name),
                        server_type: server_type.to_owned(),
                        location: location.to_owned(),
                        image: image.clone(),
                        baked_image,
                        labels: labels.clone(),
                        node_labels: node_labels.clone(),
                    }),
                    reason: reason.clone().into(),
                });
            }
            acc.creating = n;
            created += n;
        }
        out
    }
}
