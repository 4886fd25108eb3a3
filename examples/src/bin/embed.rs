//! Embeds the core in a loop of your own: build the snapshot from whatever your services say,
//! decide, carry out the actions, repeat. Here the "services" are a few vectors, and carrying
//! out an action means editing them, so three ticks show a job being served.
//!
//! ```text
//! cargo run -p autoscaler-examples --bin embed
//! ```

use autoscaler_core::synthetic::{node, pod, queued_job, runner};
use autoscaler_core::{
    Action, Config, ServerSpec, ServerStatus, SignedDuration, Snapshot, Source, Timestamp, decide,
    keys,
};

fn main() {
    let policy = Config::default()
        .validate()
        .expect("the default configuration is valid");
    let installation = policy.config().installation.clone();
    let labels = policy.config().pools[0].labels.clone();
    let mut now: Timestamp = "2026-11-25T10:00:00Z".parse().expect("timestamp");

    // What the services hold. A real shell reads these from Gitea, Hetzner and Kubernetes.
    let mut jobs = vec![queued_job(1, &["ubuntu-latest".to_owned()], now)];
    let (mut runners, mut servers, mut nodes, mut pods) = (vec![], vec![], vec![], vec![]);

    for tick in 1..=3 {
        let mut snapshot = Snapshot::new(now);
        snapshot.jobs = Source::complete(jobs.clone());
        snapshot.runners = Source::complete(runners.clone());
        snapshot.servers = Source::complete(servers.clone());
        snapshot.nodes = Source::complete(nodes.clone());
        snapshot.pods = Source::complete(pods.clone());

        let plan = decide(&policy, &snapshot);
        println!("--- tick {tick} at {now}");
        print!("{plan}");

        // Carry out the actions (here: on the vectors).
        for action in plan.action_list() {
            match action {
                Action::CreateServer(ServerSpec {
                    name,
                    labels: server_labels,
                    server_type,
                    location,
                    ..
                }) => {
                    servers.push(autoscaler_core::Server {
                        id: 4_000 + servers.len() as u64,
                        name: name.clone(),
                        labels: server_labels.clone(),
                        created: now,
                        status: ServerStatus::Initializing,
                        server_type: server_type.clone(),
                        location: location.clone(),
                    });
                }
                Action::RecordJoined { server_id, at } => {
                    if let Some(s) = servers.iter_mut().find(|s| s.id == *server_id) {
                        s.labels.insert(keys::JOINED.into(), keys::unix_value(*at));
                    }
                }
                Action::MarkIdle { node: name, since } => {
                    if let Some(n) = nodes
                        .iter_mut()
                        .find(|n: &&mut autoscaler_core::Node| &n.name == name)
                    {
                        n.annotations
                            .insert(keys::IDLE_SINCE.into(), since.to_string());
                    }
                }
                other => println!("(this example does not carry out {})", other.kind()),
            }
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
