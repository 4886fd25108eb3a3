//! Baked images: what each pool boots from, and a bake's temporary servers left behind.

use jiff::SignedDuration;

use super::Decision;
use crate::image::{self, BootChoice};
use crate::inventory::Inventory;
use crate::plan::{Action, PlannedAction, WarningKind};

/// How long a bake's temporary server may live before the daemon deletes it as left behind.
/// A bake takes minutes (boot, downloads, snapshot); `image bake` gives up on its own after
/// its `--timeout` (30 minutes by default) and deletes the server itself. Two hours leave any
/// bake still running alone, and cost at most two paid hours for one that crashed.
pub const BAKE_SERVER_LIMIT: SignedDuration = SignedDuration::from_hours(2);

impl Decision<'_> {
    /// Each configured pool's boot image, in the policy's order; a pool that cannot use the
    /// baked image it names is warned about.
    pub(super) fn boot_choices(&mut self) -> Vec<BootChoice> {
        let config = self.policy.config();
        let mut out = Vec::with_capacity(self.policy.pools().len());
        for pool in self.policy.pools() {
            let choice = image::choose(
                pool.config.baked_image.as_ref(),
                &config.installation,
                &pool.config.name,
                &self.snapshot.images,
                self.snapshot.k3s_version.as_deref(),
            );
            if let BootChoice::Fallback(why) = &choice {
                self.warn(
                    WarningKind::BakedImageFallback,
                    format!(
                        "pool {}: boots its base image {} with the full K3s install: {why}",
                        pool.config.name, pool.config.image
                    ),
                );
            }
            out.push(choice);
        }
        out
    }

    /// Deletes bake servers older than [`BAKE_SERVER_LIMIT`]; holds one whose name a node
    /// carries (something joined as it, which a bake never does).
    pub(super) fn bake_leftovers(&mut self, inv: &Inventory<'_>) -> Vec<PlannedAction> {
        let mut out = Vec::new();
        for server in &inv.baking {
            let age = self.now.duration_since(server.created);
            if age < BAKE_SERVER_LIMIT {
                self.wake_at(
                    server
                        .created
                        .checked_add(BAKE_SERVER_LIMIT)
                        .unwrap_or(self.now),
                );
                continue;
            }
            if inv.machines.iter().any(|m| m.name == server.name) {
                self.warn(
                    WarningKind::BakeLeftover,
                    format!(
                        "bake server {} (id {}) is left behind, but a node carries its name: held; \
                         delete the node or the server by hand once you know which is which",
                        server.name, server.id
                    ),
                );
                continue;
            }
            self.warn(
                WarningKind::BakeLeftover,
                format!(
                    "bake server {} (id {}) was left behind by a bake that did not finish: deleted",
                    server.name, server.id
                ),
            );
            out.push(PlannedAction {
                action: Action::DeleteServer {
                    server_id: server.id,
                    server_name: server.name.clone(),
                    join_token: None,
                },
                reason: format!(
                    "a bake's temporary server, created {}, over {} h ago; a bake takes minutes",
                    server.created,
                    BAKE_SERVER_LIMIT.as_hours()
                )
                .into(),
            });
        }
        out
    }
}
