//! What the daemon did: every action carried out and its result, from the tick's outcomes.
//! Counters of this process, so a `sum()` over replicas adds what each did while it led.

use autoscaler_core::ports::ErrorKind;
use autoscaler_core::{Action, Config, ServerSpec};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{ActionResult, Placement, result};
use crate::daemon::TickReport;
use crate::daemon::execute::Done;

pub(super) struct Activity {
    nodes_created: Counter,
    created_by_placement: Family<Placement, Counter>,
    placement_unavailable: Family<Placement, Counter>,
    nodes_deleted: Counter,
    scale_up_errors: Counter,
    scale_down_errors: Counter,
    runners_deregistered: Counter,
    actions: Family<ActionResult, Counter>,
    provisioning: Histogram,
}

impl Activity {
    /// Every label set each family can have starts at 0 (each action kind and result, each
    /// configured server type and location), so `rate()` has a series before the first event.
    pub(super) fn new(config: &Config) -> Self {
        let a = Self {
            nodes_created: Counter::default(),
            created_by_placement: Family::default(),
            placement_unavailable: Family::default(),
            nodes_deleted: Counter::default(),
            scale_up_errors: Counter::default(),
            scale_down_errors: Counter::default(),
            runners_deregistered: Counter::default(),
            actions: Family::default(),
            provisioning: Histogram::new([30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 600.0]),
        };
        for action in Action::KINDS {
            for ok in [true, false] {
                a.actions
                    .get_or_create(&ActionResult {
                        action,
                        result: result(ok),
                    })
                    .inc_by(0);
            }
        }
        for pool in &config.pools {
            for server_type in &pool.server_types {
                for location in &pool.locations {
                    let at = Placement {
                        server_type: server_type.clone(),
                        location: location.clone(),
                    };
                    a.created_by_placement.get_or_create(&at).inc_by(0);
                    a.placement_unavailable.get_or_create(&at).inc_by(0);
                }
            }
        }
        a
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "autoscaler_nodes_created",
            "Servers created",
            self.nodes_created.clone(),
        );
        r.register(
            "autoscaler_nodes_created_by_placement",
            "Servers created per server type and location",
            self.created_by_placement.clone(),
        );
        r.register(
            "autoscaler_placement_unavailable",
            "Times Hetzner had no capacity for a server type in a location",
            self.placement_unavailable.clone(),
        );
        r.register(
            "autoscaler_nodes_deleted",
            "Servers deleted",
            self.nodes_deleted.clone(),
        );
        r.register(
            "autoscaler_scale_up_errors",
            "Failed create calls",
            self.scale_up_errors.clone(),
        );
        r.register(
            "autoscaler_scale_down_errors",
            "Failed teardown steps",
            self.scale_down_errors.clone(),
        );
        r.register(
            "autoscaler_runners_deregistered",
            "Runners deleted from Gitea",
            self.runners_deregistered.clone(),
        );
        r.register(
            "autoscaler_actions",
            "Actions carried out, by kind and result",
            self.actions.clone(),
        );
        r.register(
            "autoscaler_provisioning_duration_seconds",
            "From server creation to its node registering",
            self.provisioning.clone(),
        );
    }

    pub(super) fn record(&self, r: &TickReport) {
        for o in &r.outcomes {
            self.actions
                .get_or_create(&ActionResult {
                    action: o.action.kind(),
                    result: result(o.result.is_ok()),
                })
                .inc();
            match (&o.action, &o.result) {
                (
                    Action::CreateServer(ServerSpec {
                        server_type,
                        location,
                        ..
                    }),
                    Ok(_),
                ) => {
                    self.nodes_created.inc();
                    self.created_by_placement
                        .get_or_create(&Placement {
                            server_type: server_type.clone(),
                            location: location.clone(),
                        })
                        .inc();
                }
                (
                    Action::CreateServer(ServerSpec {
                        server_type,
                        location,
                        ..
                    }),
                    Err(e),
                ) => {
                    self.scale_up_errors.inc();
                    if e.kind == ErrorKind::Capacity {
                        self.placement_unavailable
                            .get_or_create(&Placement {
                                server_type: server_type.clone(),
                                location: location.clone(),
                            })
                            .inc();
                    }
                }
                (Action::DeleteServer { .. }, Ok(_)) => {
                    self.nodes_deleted.inc();
                }
                (Action::DeleteRunner { .. }, Ok(_)) => {
                    self.runners_deregistered.inc();
                }
                (a, Err(_)) if a.is_destructive() => {
                    self.scale_down_errors.inc();
                }
                (Action::RecordJoined { server_id, at }, Ok(Done::Ok)) => {
                    if let Some(s) = r
                        .snapshot
                        .servers
                        .items()
                        .iter()
                        .find(|s| s.id == *server_id)
                    {
                        self.provisioning
                            .observe(at.duration_since(s.created).as_secs_f64().max(0.0));
                    }
                }
                _ => {}
            }
        }
    }
}
