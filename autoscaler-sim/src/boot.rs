//! A cold start in phases: what a new server does between the create request and its runners
//! taking jobs, for the two ways it can start. From the **base image** cloud-init downloads and
//! installs K3s (`get.k3s.io`), the agent registers the node, and the runner's images are pulled
//! before the runner registers. From a **baked image** the K3s binary and the images are on the
//! disk already: cloud-init writes the agent's configuration and starts it, and the agent
//! imports the images from `/var/lib/rancher/k3s/agent/images/`.
//!
//! The durations are assumptions, not measurements (nothing here can boot a Hetzner server):
//! each is a range drawn uniformly, chosen from what the step does. The base model's phases up
//! to the node registering add up to the simulator's long-standing default of 40–90 s. Replace
//! them with your own: `autoscaler_provisioning_duration_seconds` (create → node registered)
//! and `autoscaler_join_duration_seconds` (registered → Ready) are measured by the daemon.

use autoscaler_core::SignedDuration;
use serde::{Deserialize, Serialize};

/// One step of a cold start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The create request until the server runs its OS (Hetzner provisions and boots it).
    ServerRunning,
    /// The OS booting until cloud-init runs the join script.
    CloudInit,
    /// Downloading and installing K3s (nothing to do on a baked image).
    K3sInstall,
    /// The agent starting until its node registers with the API server.
    NodeRegistered,
    /// The node registered until a runner is online in Gitea: the runner pod's images pulled
    /// (or imported), its containers started, the runner registered.
    RunnerRegistered,
}

/// One phase's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseRange {
    /// The step.
    pub phase: Phase,
    /// Its shortest duration.
    #[serde(with = "crate::scenario::secs")]
    pub min: SignedDuration,
    /// Its longest; each server draws uniformly between the two.
    #[serde(with = "crate::scenario::secs")]
    pub max: SignedDuration,
}

/// A cold start's phases, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootModel {
    /// What it is called in reports, e.g. `base image`.
    pub name: String,
    /// The steps, in the order a server goes through them.
    pub phases: Vec<PhaseRange>,
}

fn range(phase: Phase, min: i64, max: i64) -> PhaseRange {
    PhaseRange {
        phase,
        min: SignedDuration::from_secs(min),
        max: SignedDuration::from_secs(max),
    }
}

impl BootModel {
    /// The base image, as `autoscaler-hetzner`'s cloud-init starts it today.
    pub fn base() -> Self {
        Self {
            name: "base image".into(),
            phases: vec![
                // Hetzner's create action to a running VM at the OS's first boot.
                range(Phase::ServerRunning, 15, 30),
                // Ubuntu's cloud image boot and cloud-init's modules before `runcmd`.
                range(Phase::CloudInit, 5, 15),
                // The install script, the ~70 MB K3s binary from GitHub, the systemd unit.
                range(Phase::K3sInstall, 15, 35),
                // The agent's start, its certificates, the node object.
                range(Phase::NodeRegistered, 5, 10),
                // Pulling act_runner and docker:dind (~150 MB), starting them, registering.
                range(Phase::RunnerRegistered, 15, 40),
            ],
        }
    }

    /// A baked image: the same steps without the download and the install, and the images
    /// imported from tarballs on the disk instead of pulled.
    pub fn baked() -> Self {
        Self {
            name: "baked image".into(),
            phases: vec![
                range(Phase::ServerRunning, 15, 30),
                range(Phase::CloudInit, 5, 15),
                // Writing the agent's configuration and starting the installed unit.
                range(Phase::K3sInstall, 1, 2),
                range(Phase::NodeRegistered, 5, 10),
                // Importing the images at agent start, starting them, registering.
                range(Phase::RunnerRegistered, 5, 12),
            ],
        }
    }

    /// The shortest and longest cold start, create request to a runner online.
    pub fn total(&self) -> (SignedDuration, SignedDuration) {
        self.phases.iter().fold(
            (SignedDuration::ZERO, SignedDuration::ZERO),
            |(lo, hi), p| (lo.saturating_add(p.min), hi.saturating_add(p.max)),
        )
    }

    /// Each problem, naming the phase.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.phases.is_empty() {
            out.push(format!("world.boot_model {:?} has no phases", self.name));
        }
        for p in &self.phases {
            let at = format!("world.boot_model {:?} phase {:?}", self.name, p.phase);
            if p.min.is_negative() {
                out.push(format!("{at}: min must not be negative"));
            }
            if p.max < p.min {
                out.push(format!("{at}: max must not be shorter than min"));
            }
            if p.max > SignedDuration::from_hours(24) {
                out.push(format!("{at}: max must be at most 24 h"));
            }
        }
        out
    }

    /// Whether `phase` comes before the node registers (the server's boot) rather than after
    /// (the runner's start).
    pub(crate) fn before_registration(phase: Phase) -> bool {
        phase != Phase::RunnerRegistered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_model_matches_the_simulators_default_boot_until_the_node_registers() {
        let base = BootModel::base();
        let (lo, hi) = base
            .phases
            .iter()
            .filter(|p| BootModel::before_registration(p.phase))
            .fold((0, 0), |(lo, hi), p| {
                (lo + p.min.as_secs(), hi + p.max.as_secs())
            });
        let world = crate::WorldConfig::default();
        assert_eq!(
            (lo, hi),
            (world.boot_min.as_secs(), world.boot_max.as_secs())
        );
        assert!(base.problems().is_empty());
    }

    #[test]
    fn a_baked_image_skips_the_install_and_the_pulls() {
        let (base, baked) = (BootModel::base(), BootModel::baked());
        assert!(baked.problems().is_empty());
        assert!(baked.total().1 < base.total().0 + SignedDuration::from_secs(30));
        for (b, k) in base.phases.iter().zip(&baked.phases) {
            assert_eq!(b.phase, k.phase, "the same phases in the same order");
            assert!(k.max <= b.max, "{:?} is no slower baked", k.phase);
        }
    }

    #[test]
    fn bad_phases_are_named() {
        let mut m = BootModel::base();
        m.phases[2].max = SignedDuration::from_secs(1);
        m.phases[0].min = SignedDuration::from_secs(-1);
        let problems = m.problems().join("\n");
        assert!(
            problems.contains("K3sInstall: max must not be shorter"),
            "{problems}"
        );
        assert!(
            problems.contains("ServerRunning: min must not be negative"),
            "{problems}"
        );
    }
}
