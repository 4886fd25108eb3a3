//! Whether the lists agree enough to destroy anything, machine by machine.
//!
//! A teardown step needs positive evidence of idleness from every source involved. A missing
//! pod, runner or node is never that evidence while anything disagrees with it:
//! - a running job (or a runner) that no machine shows may be on any machine that could host
//!   a runner the lists do not show: one with fewer runner pods than its pool runs per node, or
//!   with a runner pod that has no runner, unless our own teardown took them away;
//! - when an unusual share of machines loses its nodes, servers, pods or runners at once, the
//!   likelier story is a broken connection, a relabelling or the wrong namespace or scope, not a
//!   fleet of dead machines.
//!
//! The machines this holds keep every action that is not destructive (memory upkeep, aborting a
//! teardown, enabling runners again), and the plan says which disagreement held them.

use crate::inventory::{Inventory, Machine, UnseenWork};
use crate::lifecycle::Class;
use crate::plan::{Warning, WarningKind};

/// Why destructive actions on a machine are held in this decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// A running job no machine shows could be on it.
    UnseenWork,
    /// It has no runner pod, and an online runner no machine shows could be its own.
    UnseenRunner,
    /// Too many joined servers lost their nodes at once.
    NodesVanished,
    /// Too many managed nodes lost their servers at once.
    ServersVanished,
    /// Too many nodes list no runner pod at once.
    PodsVanished,
    /// Too many nodes' runner pods have no online runner at once.
    RunnersVanished,
    /// The server carries no cluster identity and has no node here: it may be another
    /// installation's.
    UnknownCluster,
    /// Several runners carry the name of one of its runner pods and none is known to be the
    /// pod's: whether its own runner is idle cannot be told.
    UnclearRunner,
}

impl Hold {
    /// The reason a machine's report gives.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::UnseenWork => {
                "held: a running job no machine shows could be on it (see the warnings)"
            }
            Self::UnseenRunner => {
                "held: an online runner no machine shows could be its own (see the warnings)"
            }
            Self::NodesVanished => "held: too many nodes vanished at once; not acting on it",
            Self::ServersVanished => {
                "held: too many nodes lost their servers at once; not acting on it"
            }
            Self::PodsVanished => {
                "held: too many nodes lost their runner pods at once; not acting on it"
            }
            Self::RunnersVanished => {
                "held: too many nodes lost their runners at once; not acting on it"
            }
            Self::UnknownCluster => {
                "held: the server names no cluster and has no node here; it may be another installation's"
            }
            Self::UnclearRunner => {
                "held: several runners carry a runner pod's name and none is known to be its own (see the warnings)"
            }
        }
    }
}

/// A count out of a whole, for one mass-disappearance guard.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    lost: usize,
    of: usize,
}

impl Share {
    /// At least two, and more than half: one machine dying is a fault; most of them at once is
    /// a story about the data.
    fn is_mass(self) -> bool {
        self.lost >= 2 && self.lost * 2 > self.of
    }
}

/// The verdict on every machine, and what to tell a person.
#[derive(Debug)]
pub(super) struct Evidence {
    /// Per machine, in inventory order: why its destructive actions are held, if they are.
    pub(super) holds: Vec<Option<Hold>>,
    pub(super) warnings: Vec<Warning>,
}

impl Evidence {
    /// Judges every machine; `per_node` gives a machine's pool's runner pods per node.
    pub(super) fn of(
        inv: &Inventory<'_>,
        classes: &[Class],
        per_node: impl Fn(&Machine<'_>) -> u32,
    ) -> Self {
        let machines = &inv.machines;
        let joined_share = Share {
            lost: count(classes, |c| {
                matches!(c, Class::NodeMissing { joined: true, .. })
            }),
            of: count(classes, |c| {
                matches!(c, Class::NodeMissing { joined: true, .. })
            }) + machines
                .iter()
                .filter(|m| m.server.is_some() && m.node.is_some())
                .count(),
        };
        let servers_share = Share {
            lost: count(classes, |c| matches!(c, Class::ServerMissing { .. })),
            of: machines.iter().filter(|m| m.node_owned).count(),
        };
        // Machines whose node is past joining and whose runners are judged.
        let established = count(classes, |c| {
            matches!(c, Class::Idle { .. } | Class::Busy | Class::NoRunner)
        });
        let no_runner = |want_pods: bool| {
            machines
                .iter()
                .zip(classes)
                .filter(|(m, c)| **c == Class::NoRunner && (m.live_pods() > 0) == want_pods)
                .count()
        };
        let pods_share = Share {
            lost: no_runner(false),
            of: established,
        };
        let runners_share = Share {
            lost: no_runner(true),
            of: established,
        };

        let unplaced = &inv.unplaced;
        let any_mass = [joined_share, servers_share, pods_share, runners_share]
            .iter()
            .any(|s| s.is_mass());
        let strangers = |m: &Machine<'_>| m.unclaimed && !m.node_owned;
        if unplaced.work.is_empty()
            && unplaced.idle.is_empty()
            && !any_mass
            && !machines.iter().any(strangers)
            && !machines.iter().any(|m| m.unclear_pods > 0)
        {
            // The common case: the lists agree, and nothing is held.
            return Self {
                holds: vec![None; machines.len()],
                warnings: Vec::new(),
            };
        }
        // Every guard that applies to each machine, strongest first; the first is its hold.
        let mut applies: Vec<Vec<Hold>> = vec![Vec::new(); machines.len()];
        for (i, (m, class)) in machines.iter().zip(classes).enumerate() {
            // Only these classes lead to destructive actions.
            let can_destroy = matches!(
                class,
                Class::Idle { .. }
                    | Class::Teardown { .. }
                    | Class::NodeMissing { .. }
                    | Class::ServerMissing { .. }
                    | Class::NotReady { .. }
                    | Class::NoRunner
            );
            if !can_destroy {
                continue;
            }
            let rpn = per_node(m);
            let a = &mut applies[i];
            if strangers(m) {
                a.push(Hold::UnknownCluster);
            }
            if m.unclear_pods > 0 {
                a.push(Hold::UnclearRunner);
            }
            // Our own teardown leaves absences behind: past the point of no return (runners
            // deleted, node cordoned in the same step) a pod without a runner is ours, and past
            // the drain (or once we deleted the node) so is a missing pod. Only what we did not
            // do counts as room for a runner the lists do not show.
            let (pods_ours, runners_ours) = match class {
                Class::Teardown { .. } => match m.node {
                    // The node-missing mark goes on with our node deletion.
                    None if m.server_marks.node_missing.is_present() => (true, true),
                    None => (false, false),
                    Some(n) if n.cordoned => (m.node_marks.drained.is_present() || !n.ready, true),
                    Some(_) => (false, false),
                },
                _ => (false, false),
            };
            let room = !pods_ours && m.has_room(rpn);
            let unregistered = !runners_ours && m.unregistered_pods() > 0;
            if !unplaced.work.is_empty() && (room || unregistered) {
                a.push(Hold::UnseenWork);
            }
            // A server whose node never registered never had a runner of ours.
            let joined = m.server.is_none() || m.server_marks.joined.is_present();
            if !unplaced.idle.is_empty()
                && joined
                && m.live_pods() == 0
                && matches!(class, Class::NoRunner | Class::NodeMissing { .. })
            {
                a.push(Hold::UnseenRunner);
            }
            match class {
                Class::NodeMissing { joined: true, .. } if joined_share.is_mass() => {
                    a.push(Hold::NodesVanished);
                }
                Class::ServerMissing { .. } if servers_share.is_mass() => {
                    a.push(Hold::ServersVanished);
                }
                Class::NoRunner if m.live_pods() == 0 && pods_share.is_mass() => {
                    a.push(Hold::PodsVanished);
                }
                Class::NoRunner if m.live_pods() > 0 && runners_share.is_mass() => {
                    a.push(Hold::RunnersVanished);
                }
                _ => {}
            }
        }
        let holds: Vec<Option<Hold>> = applies.iter().map(|a| a.first().copied()).collect();

        let mut warnings = Vec::new();
        let held = |kind: Hold| -> Vec<&str> {
            machines
                .iter()
                .zip(&applies)
                .filter(|(_, a)| a.contains(&kind))
                .map(|(m, _)| m.name)
                .collect()
        };
        let names = held(Hold::UnseenWork);
        if !names.is_empty() {
            let w = &unplaced.work;
            warnings.push(Warning {
                kind: WarningKind::ListsDisagree,
                message: format!(
                    "{} running job(s) are on runners no machine shows ({}); destructive actions \
                     are held on the {} machine(s) that could host them: {}. Check that the \
                     runner-pod namespace and selector match the runner pods and that the Gitea \
                     scope lists every runner",
                    w.len(),
                    examples(w.iter().map(describe_work)),
                    names.len(),
                    examples(names.iter().map(|n| (*n).to_owned())),
                ),
            });
        }
        let names = held(Hold::UnseenRunner);
        if !names.is_empty() {
            let idle = &unplaced.idle;
            warnings.push(Warning {
                kind: WarningKind::ListsDisagree,
                message: format!(
                    "{} online runner(s) with our pools' labels have no runner pod listed ({}); \
                     the {} machine(s) without a runner pod are not torn down: {}. Check that the \
                     runner-pod namespace and selector match the runner pods",
                    idle.len(),
                    examples(idle.iter().map(|r| format!("{:?} (id {})", r.name, r.id))),
                    names.len(),
                    examples(names.iter().map(|n| (*n).to_owned())),
                ),
            });
        }
        let names = held(Hold::UnknownCluster);
        if !names.is_empty() {
            warnings.push(Warning {
                kind: WarningKind::ForeignCluster,
                message: format!(
                    "{} server(s) carry our ownership label but no cluster identity and have no \
                     node in this cluster ({}): they may be another installation's of the same \
                     name, so they are not torn down. Label one gitea-ci-autoscaler/cluster with \
                     this cluster's identity if it is ours, or delete it by hand",
                    names.len(),
                    examples(names.iter().map(|n| (*n).to_owned())),
                ),
            });
        }
        for (kind, share, what) in [
            (
                Hold::NodesVanished,
                joined_share,
                "joined servers lost their nodes at once; not acting on it (check the cluster \
                 connection and the nodes' ownership labels)",
            ),
            (
                Hold::ServersVanished,
                servers_share,
                "managed nodes have no server at once; not acting on it (check the Hetzner \
                 token's project and the servers' ownership labels)",
            ),
            (
                Hold::PodsVanished,
                pods_share,
                "nodes list no runner pod at once; not acting on it (check that the runner-pod \
                 namespace and selector match the runner pods, or wait for a runner rollout)",
            ),
            (
                Hold::RunnersVanished,
                runners_share,
                "nodes' runner pods have no online runner at once; not acting on it (check that \
                 Gitea is up and that its scope lists the runners)",
            ),
        ] {
            if applies.iter().any(|a| a.contains(&kind)) {
                warnings.push(Warning {
                    kind: WarningKind::MassVanish,
                    message: format!("{} of {} {what}", share.lost, share.of),
                });
            }
        }
        Self { holds, warnings }
    }
}

fn count(classes: &[Class], f: impl Fn(&Class) -> bool) -> usize {
    classes.iter().filter(|c| f(c)).count()
}

fn describe_work(w: &UnseenWork<'_>) -> String {
    let name = w.job.runner_name.as_deref().unwrap_or("?");
    match (w.runner, w.job.runner_id) {
        (Some(r), _) => format!(
            "job {} on runner {:?} (id {}): no runner pod of that name is listed",
            w.job.id, r.name, r.id
        ),
        (None, Some(id)) => format!(
            "job {} on runner {name:?} (id {id}): not in the runner list",
            w.job.id
        ),
        (None, None) => format!("job {} names no runner id", w.job.id),
    }
}

/// The first three, then how many more.
fn examples(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let shown = all.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    if all.len() > 3 {
        format!("{shown}; and {} more", all.len() - 3)
    } else {
        shown
    }
}
