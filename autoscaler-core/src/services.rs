//! What Gitea, Hetzner Cloud and Kubernetes do with each action's [`Effect`], as a model over a
//! snapshot of what they hold: the one model the core's test world and the simulator's world
//! share (each adds what only it needs: the simulator its timing, outages, request budget and
//! bill). The loopback fakes in `autoscaler-fakes` model the services one HTTP request lower
//! and are checked against the upstream specs instead.
//!
//! The rules are the services' own: a write to an object that is not there is `NotFound`, a
//! delete of one that is gone succeeds; a runner pod that goes away takes its runner offline and
//! the job on it dies with it; a deleted server's node goes NotReady (its pods stay listed
//! until the node object goes).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::keys;
use crate::plan::{CloudEffect, ClusterEffect, Effect, ForgeEffect, ServerSpec};
use crate::ports::ErrorKind;
use crate::snapshot::{Job, JobStatus, Server, ServerStatus, Snapshot};
use crate::source::Source;

/// What carrying out one effect did beyond the lists it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// The id of the server it created.
    pub created: Option<u64>,
    /// The running jobs that died because their runner, pod, node or server went away, as they
    /// were listed.
    pub killed: Vec<Job>,
}

/// Carries out `effect` at `now` on `truth`, whose lists hold what the services hold (a list
/// that is not complete is edited all the same). A created server takes the id `new_id` gives.
pub fn carry_out(
    truth: &mut Snapshot,
    effect: &Effect<'_>,
    now: Timestamp,
    new_id: impl FnOnce() -> u64,
) -> Result<Carried, ErrorKind> {
    let mut carried = Carried::default();
    match effect {
        Effect::Cloud(CloudEffect::Create(spec)) => {
            let id = new_id();
            push(&mut truth.servers, created(spec, id, now));
            carried.created = Some(id);
        }
        // No Secrets here: a join token revoked first is nothing to model.
        Effect::Cloud(CloudEffect::Label {
            server, key, value, ..
        }) => {
            let s = items(&mut truth.servers)
                .iter_mut()
                .find(|s| s.id == server.0)
                .ok_or(ErrorKind::NotFound)?;
            set(&mut s.labels, key, value.clone());
        }
        Effect::Cloud(CloudEffect::Delete { server, .. }) => {
            let Some(name) = truth
                .servers
                .items()
                .iter()
                .find(|s| s.id == server.0)
                .map(|s| s.name.clone())
            else {
                return Ok(carried);
            };
            retain(&mut truth.servers, |s| s.id != server.0);
            if let Some(n) = items(&mut truth.nodes).iter_mut().find(|n| n.name == name) {
                n.ready = false;
                n.ready_since = Some(now);
            }
            let pods = pods_on(truth, &name);
            carried.killed = runners_gone(truth, &pods);
        }
        Effect::Forge(ForgeEffect::SetDisabled(runner, disabled)) => {
            let r = items(&mut truth.runners)
                .iter_mut()
                .find(|r| r.id == runner.0)
                .ok_or(ErrorKind::NotFound)?;
            r.disabled = *disabled;
        }
        Effect::Forge(ForgeEffect::Delete(runner)) => {
            carried.killed = kill(truth, |j| j.runner_id == Some(runner.0));
            retain(&mut truth.runners, |r| r.id != runner.0);
        }
        Effect::Cluster(ClusterEffect::Annotate { node, key, value }) => {
            let n = items(&mut truth.nodes)
                .iter_mut()
                .find(|n| n.name == *node)
                .ok_or(ErrorKind::NotFound)?;
            set(&mut n.annotations, key, value.clone());
        }
        Effect::Cluster(ClusterEffect::Cordon(node)) => {
            let n = items(&mut truth.nodes)
                .iter_mut()
                .find(|n| n.name == *node)
                .ok_or(ErrorKind::NotFound)?;
            n.cordoned = true;
        }
        Effect::Cluster(ClusterEffect::Drain(node)) => {
            carried.killed = remove_pods(truth, node);
            let n = items(&mut truth.nodes)
                .iter_mut()
                .find(|n| n.name == *node)
                .ok_or(ErrorKind::NotFound)?;
            n.annotations
                .insert(keys::DRAINED.to_owned(), now.to_string());
        }
        Effect::Cluster(ClusterEffect::DeleteNode(node)) => {
            carried.killed = remove_pods(truth, node);
            retain(&mut truth.nodes, |n| n.name != *node);
        }
    }
    Ok(carried)
}

/// The server a create makes, as the next listing shows it.
pub fn created(spec: &ServerSpec, id: u64, now: Timestamp) -> Server {
    Server {
        id,
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        created: now,
        status: ServerStatus::Initializing,
        server_type: spec.server_type.clone(),
        location: spec.location.clone(),
    }
}

/// A list's items; an unavailable list in the truth holds nothing (and stays so).
fn items<T>(s: &mut Source<T>) -> &mut [T] {
    match s {
        Source::Complete { items } | Source::Partial { items, .. } => items,
        Source::Unavailable { .. } => &mut [],
    }
}

/// Keeps the items `keep` picks; an unavailable list holds nothing to keep.
fn retain<T>(s: &mut Source<T>, keep: impl FnMut(&T) -> bool) {
    if let Source::Complete { items } | Source::Partial { items, .. } = s {
        items.retain(keep);
    }
}

/// Adds an item; an unavailable list becomes one that holds just it.
fn push<T>(s: &mut Source<T>, item: T) {
    match s {
        Source::Complete { items } | Source::Partial { items, .. } => items.push(item),
        Source::Unavailable { .. } => *s = Source::complete(vec![item]),
    }
}

fn set(map: &mut BTreeMap<String, String>, key: &str, value: Option<String>) {
    match value {
        Some(v) => map.insert(key.to_owned(), v),
        None => map.remove(key),
    };
}

fn pods_on(truth: &Snapshot, node: &str) -> Vec<String> {
    truth
        .pods
        .items()
        .iter()
        .filter(|p| p.node.as_deref() == Some(node))
        .map(|p| p.name.clone())
        .collect()
}

/// The node's runner pods go away, and with them their runners.
fn remove_pods(truth: &mut Snapshot, node: &str) -> Vec<Job> {
    let pods = pods_on(truth, node);
    let killed = runners_gone(truth, &pods);
    retain(&mut truth.pods, |p| p.node.as_deref() != Some(node));
    killed
}

/// The runners registered under `pods` go offline; the jobs on them die.
fn runners_gone(truth: &mut Snapshot, pods: &[String]) -> Vec<Job> {
    if pods.is_empty() {
        return Vec::new();
    }
    let mut ids = Vec::new();
    for r in items(&mut truth.runners) {
        if pods.contains(&r.name) {
            r.online = false;
            ids.push(r.id);
        }
    }
    kill(truth, |j| {
        j.runner_id.is_some_and(|id| ids.contains(&id))
            || j.runner_name.as_ref().is_some_and(|n| pods.contains(n))
    })
}

/// Removes the running jobs `hit` picks; their runners are no longer busy.
fn kill(truth: &mut Snapshot, hit: impl Fn(&Job) -> bool) -> Vec<Job> {
    let mut killed = Vec::new();
    retain(&mut truth.jobs, |j| {
        let dies = j.status == JobStatus::InProgress && hit(j);
        if dies {
            killed.push(j.clone());
        }
        !dies
    });
    for j in &killed {
        if let Some(r) = items(&mut truth.runners)
            .iter_mut()
            .find(|r| Some(r.id) == j.runner_id)
        {
            r.busy = false;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{RunnerId, ServerId};
    use crate::synthetic;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// One machine `m` (server 7, node, pod `m-0`, runner 3) whose runner runs job 1.
    fn world() -> Snapshot {
        let now = t("2026-11-25T10:00:00Z");
        let labels = vec!["ubuntu-latest".to_owned()];
        let runner = synthetic::runner(3, "m-0", &labels);
        let mut s = Snapshot::new(now);
        s.jobs = Source::complete(vec![
            synthetic::running_job(1, &runner, now),
            synthetic::queued_job(2, &labels, now),
        ]);
        s.runners = Source::complete(vec![runner]);
        s.servers = Source::complete(vec![synthetic::server("ci", "linux", 7, "m", now)]);
        s.nodes = Source::complete(vec![synthetic::node("ci", "linux", "m", now)]);
        s.pods = Source::complete(vec![synthetic::pod("m-0", "m")]);
        s
    }

    fn run(s: &mut Snapshot, e: Effect<'_>) -> Result<Carried, ErrorKind> {
        let now = s.now;
        carry_out(s, &e, now, || 100)
    }

    fn killed(c: &Carried) -> Vec<u64> {
        c.killed.iter().map(|j| j.id).collect()
    }

    #[test]
    fn writes_to_what_is_not_there_are_not_found_and_deletes_of_it_succeed() {
        let mut s = world();
        let label = Effect::Cloud(CloudEffect::Label {
            server: ServerId(9),
            key: keys::TEARDOWN,
            value: None,
            revoke_first: None,
        });
        assert_eq!(run(&mut s, label), Err(ErrorKind::NotFound));
        let annotate = Effect::Cluster(ClusterEffect::Annotate {
            node: "x",
            key: keys::IDLE_SINCE,
            value: None,
        });
        assert_eq!(run(&mut s, annotate), Err(ErrorKind::NotFound));
        let disable = Effect::Forge(ForgeEffect::SetDisabled(RunnerId(9), true));
        assert_eq!(run(&mut s, disable), Err(ErrorKind::NotFound));
        assert_eq!(
            run(&mut s, Effect::Cluster(ClusterEffect::Cordon("x"))),
            Err(ErrorKind::NotFound)
        );
        let gone = Effect::Cloud(CloudEffect::Delete {
            server: ServerId(9),
            name: "x",
            revoke_first: None,
        });
        assert_eq!(run(&mut s, gone), Ok(Carried::default()));
        assert_eq!(
            run(&mut s, Effect::Forge(ForgeEffect::Delete(RunnerId(9)))),
            Ok(Carried::default())
        );
        assert_eq!(s, world(), "nothing changed");
    }

    #[test]
    fn a_drained_pod_takes_its_runner_offline_and_its_job_with_it() {
        let mut s = world();
        let c = run(&mut s, Effect::Cluster(ClusterEffect::Drain("m"))).unwrap();
        assert_eq!(killed(&c), [1]);
        assert!(s.pods.items().is_empty());
        let r = &s.runners.items()[0];
        assert!(!r.online && !r.busy);
        assert_eq!(s.jobs.items().len(), 1, "the queued job waits on");
        assert!(s.nodes.items()[0].annotations.contains_key(keys::DRAINED));
    }

    #[test]
    fn a_deleted_server_leaves_its_node_not_ready_with_its_pods_listed() {
        let mut s = world();
        let c = run(
            &mut s,
            Effect::Cloud(CloudEffect::Delete {
                server: ServerId(7),
                name: "m",
                revoke_first: None,
            }),
        )
        .unwrap();
        assert_eq!(killed(&c), [1]);
        assert!(s.servers.items().is_empty());
        let n = &s.nodes.items()[0];
        assert!(!n.ready);
        assert_eq!(n.ready_since, Some(s.now));
        assert_eq!(s.pods.items().len(), 1);
        assert!(!s.runners.items()[0].online);
    }

    #[test]
    fn a_deleted_runner_takes_only_its_own_job_and_a_create_lists_the_new_server() {
        let mut s = world();
        let c = run(&mut s, Effect::Forge(ForgeEffect::Delete(RunnerId(3)))).unwrap();
        assert_eq!(killed(&c), [1]);
        assert!(s.runners.items().is_empty());
        let c = run(&mut s, Effect::Cluster(ClusterEffect::DeleteNode("m"))).unwrap();
        assert!(c.killed.is_empty());
        assert!(s.nodes.items().is_empty() && s.pods.items().is_empty());
        let spec = synthetic::server_spec("ci", "linux", "n");
        let c = run(&mut s, Effect::Cloud(CloudEffect::Create(&spec))).unwrap();
        assert_eq!(c.created, Some(100));
        let listed = s.servers.items().iter().find(|s| s.id == 100).unwrap();
        assert_eq!(
            (listed.name.as_str(), listed.status),
            ("n", ServerStatus::Initializing)
        );
    }
}
