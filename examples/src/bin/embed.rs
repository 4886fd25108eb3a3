//! Embeds the core in a loop of your own, through the same pure shell the daemon and the
//! simulator run: read what your services say, let the shell decide, carry out each action's
//! effect, report what became of it, repeat. Here the "services" are a few vectors, and carrying
//! out an effect means editing them, so three ticks show a job being served.
//!
//! ```text
//! cargo run -p autoscaler-examples --bin embed
//! ```

use autoscaler_core::shell::{Identity, Outcome, Reading, Shell};
use autoscaler_core::synthetic::{node, pod, queued_job, runner};
use autoscaler_core::{
    CloudEffect, ClusterEffect, Config, Effect, ForgeEffect, Node, Server, ServerStatus,
    SignedDuration, Source, Timestamp,
};

/// One key of a label or annotation map set or removed.
fn set(map: &mut std::collections::BTreeMap<String, String>, key: &str, value: Option<String>) {
    match value {
        Some(v) => map.insert(key.to_owned(), v),
        None => map.remove(key),
    };
}

fn main() {
    let policy = Config::default()
        .validate()
        .expect("the default configuration is valid");
    let installation = policy.config().installation.clone();
    let labels = policy.config().pools[0].labels.clone();
    let mut shell = Shell::new(policy);
    let mut now: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");

    // What the services hold. A real shell reads these from Gitea, Hetzner and Kubernetes.
    let mut jobs = vec![queued_job(1, &["ubuntu-latest".to_owned()], now)];
    let (mut runners, mut servers, mut nodes, mut pods) =
        (vec![], Vec::<Server>::new(), Vec::<Node>::new(), vec![]);

    for tick in 1..=3 {
        let mut reading = Reading::new(now);
        reading.forge = Some(Default::default());
        if shell.wants_identity() {
            reading.identity = Identity::Read("kube-system-uid".into());
        }
        reading.jobs = Source::complete(jobs.clone());
        reading.runners = Source::complete(runners.clone());
        reading.servers = Source::complete(servers.clone());
        reading.nodes = Source::complete(nodes.clone());
        reading.pods = Source::complete(pods.clone());

        let plan = shell.decide(reading).plan;
        println!("--- tick {tick} at {now}");
        print!("{plan}");

        // Carry out each action's effect (here: on the vectors) and say what became of it.
        let mut outcomes = Vec::new();
        for action in plan.action_list() {
            let done = match action.effect() {
                Effect::Cloud(CloudEffect::Create(spec)) => {
                    let id = 4_000 + servers.len() as u64;
                    servers.push(autoscaler_core::services::created(spec, id, now));
                    true
                }
                Effect::Cloud(CloudEffect::Label {
                    server, key, value, ..
                }) => match servers.iter_mut().find(|s| s.id == server.0) {
                    Some(s) => {
                        set(&mut s.labels, key, value);
                        true
                    }
                    None => false,
                },
                Effect::Cluster(ClusterEffect::Annotate { node, key, value }) => {
                    match nodes.iter_mut().find(|n| n.name == node) {
                        Some(n) => {
                            set(&mut n.annotations, key, value);
                            true
                        }
                        None => false,
                    }
                }
                Effect::Cloud(CloudEffect::Delete { .. })
                | Effect::Forge(ForgeEffect::SetDisabled(..) | ForgeEffect::Delete(_))
                | Effect::Cluster(
                    ClusterEffect::Cordon(_)
                    | ClusterEffect::Drain(_)
                    | ClusterEffect::DeleteNode(_),
                ) => {
                    println!("(this example does not carry out {})", action.kind());
                    false
                }
            };
            outcomes.push(if done {
                Outcome::Done
            } else {
                Outcome::Failed {
                    kind: autoscaler_core::ports::ErrorKind::Unsupported,
                    message: format!("{} is not carried out here", action.kind()),
                }
            });
        }
        if let Some(at) = shell.settle(&plan, &outcomes) {
            println!("(the shell wants the next decision at {at}, before the poll)");
        }

        // Meanwhile, in the world: a minute later each new server has booted and joined, and
        // its runner registered. Gitea then hands the waiting job to it.
        now += SignedDuration::from_mins(1);
        for s in &mut servers {
            if s.status == ServerStatus::Initializing {
                s.status = ServerStatus::Running;
                nodes.push(node(&installation, "linux", &s.name, now));
                let pod_name = format!("{}-runner-0", s.name);
                pods.push(pod(&pod_name, &s.name));
                runners.push(runner(100 + runners.len() as u64, &pod_name, &labels));
            }
        }
        if tick == 2
            && let Some(r) = runners.first()
        {
            jobs.clear();
            jobs.push(autoscaler_core::synthetic::running_job(1, r, now));
        }
    }
}
