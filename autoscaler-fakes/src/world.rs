//! The three fakes joined into one world that moves by itself, in real time: a created server
//! boots and joins as a node with a runner pod whose runner registers with Gitea; free runners
//! take waiting jobs and finish them; deleted servers take their node down. The world also
//! watches the autoscaler: it records every busy runner, node or server taken away, and the
//! most servers that ever existed at once, so end-to-end tests can check the promises.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::gitea::FakeGitea;
use crate::hetzner::FakeHetzner;
use crate::kube::FakeKube;

/// How the world behaves.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// From create to the node registering.
    pub boot: Duration,
    /// Labels the runners register with.
    pub runner_labels: Vec<String>,
    /// The runner namespace.
    pub namespace: String,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            boot: Duration::from_secs(2),
            runner_labels: vec![
                "ubuntu-latest".into(),
                "ubuntu-24.04".into(),
                "ubuntu-22.04".into(),
            ],
            namespace: "gitea-runners".into(),
        }
    }
}

/// What the world saw the autoscaler do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Jobs that ran to the end.
    pub served: u64,
    /// A busy runner, its pod, node or server was taken away: one entry per job killed.
    pub killed: Vec<String>,
    /// The most servers that existed at once.
    pub peak_servers: usize,
    /// Servers ever created.
    pub created: usize,
    /// How old each server was when it was deleted, in whole seconds.
    pub lifetimes: Vec<i64>,
    /// Servers whose agent the cluster refused, with why (once each).
    pub join_refused: Vec<String>,
}

/// The join token in a server's cloud-init user data, as the K3s agent would read it.
pub fn join_token_in(user_data: &str) -> Option<String> {
    let doc: Value = serde_saphyr::from_str(user_data.strip_prefix("#cloud-config\n")?).ok()?;
    let files = doc["write_files"].as_array()?;
    let config = files
        .iter()
        .find(|f| f["path"] == "/etc/rancher/k3s/config.yaml")?;
    let agent: Value = serde_saphyr::from_str(config["content"].as_str()?).ok()?;
    agent["token"].as_str().map(str::to_owned)
}

/// A bootstrap-token-shaped credential (`…::<6>.<16>`): the cluster checks it. Anything else is
/// a static token the world takes on trust.
fn is_bootstrap(token: &str) -> bool {
    let credentials = token.rsplit("::").next().unwrap_or(token);
    credentials
        .split_once('.')
        .is_some_and(|(id, secret)| id.len() == 6 && secret.len() == 16)
}

#[derive(Debug)]
struct Running {
    runner_id: u64,
    ends: Timestamp,
}

/// The linked fakes and the world's own bookkeeping.
pub struct World {
    pub gitea: FakeGitea,
    pub hetzner: FakeHetzner,
    pub kube: FakeKube,
    config: WorldConfig,
    durations: BTreeMap<u64, Duration>,
    running: BTreeMap<u64, Running>,
    joined: BTreeSet<u64>,
    next_runner: u64,
    next_job: u64,
    verdict: Verdict,
    seen_servers: BTreeMap<u64, Timestamp>,
}

fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn parse(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

impl World {
    /// A world over three fakes (their state may already hold things).
    pub fn new(
        gitea: FakeGitea,
        hetzner: FakeHetzner,
        kube: FakeKube,
        config: WorldConfig,
    ) -> Self {
        Self {
            gitea,
            hetzner,
            kube,
            config,
            durations: BTreeMap::new(),
            running: BTreeMap::new(),
            joined: BTreeSet::new(),
            next_runner: 1,
            next_job: 1,
            verdict: Verdict::default(),
            seen_servers: BTreeMap::new(),
        }
    }

    /// Queues a job asking for `labels` that runs for `duration` once a runner takes it.
    pub fn push_job(&mut self, labels: &[&str], duration: Duration) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        let mut j = crate::gitea::job(id, "queued", labels, None);
        j["created_at"] = json!(now().to_string());
        self.gitea.state().jobs.push(j);
        self.durations.insert(id, duration);
        id
    }

    /// Jobs queued or running.
    pub fn open_jobs(&self) -> usize {
        self.gitea.state().jobs.len()
    }

    /// What the world saw so far.
    pub fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }

    /// Servers that exist now.
    pub fn servers(&self) -> usize {
        self.hetzner.state().servers.len()
    }

    /// Nodes that exist now.
    pub fn nodes(&self) -> usize {
        self.kube.state().nodes.len()
    }

    /// Gitea runners that exist now.
    pub fn runners(&self) -> usize {
        self.gitea.state().runners.len()
    }

    /// What the autoscaler has written so far: server labels, node annotations and cordons,
    /// runners and their disabled flags. It changes with every action the autoscaler takes.
    pub fn fingerprint(&self) -> String {
        let servers: Vec<String> = self
            .hetzner
            .state()
            .servers
            .iter()
            .map(|s| format!("{}{}", s["id"], s["labels"]))
            .collect();
        let nodes: Vec<String> = self
            .kube
            .state()
            .nodes
            .iter()
            .map(|(n, v)| {
                format!(
                    "{n}{}{}",
                    v["metadata"]["annotations"], v["spec"]["unschedulable"]
                )
            })
            .collect();
        let runners: Vec<String> = self
            .gitea
            .state()
            .runners
            .iter()
            .map(|r| format!("{}{}", r["id"], r["disabled"]))
            .collect();
        format!("{servers:?}|{nodes:?}|{runners:?}")
    }

    /// One step of the world at the current time.
    pub fn step(&mut self) {
        let t = now();
        self.boot_servers(t);
        self.finish_jobs(t);
        self.check_kills();
        self.take_jobs(t);
        self.vanish(t);
    }

    /// Servers past their boot time run, and join: a node, a runner pod, a Gitea runner.
    fn boot_servers(&mut self, t: Timestamp) {
        let mut joins = Vec::new();
        {
            let mut h = self.hetzner.state();
            self.verdict.peak_servers = self.verdict.peak_servers.max(h.servers.len());
            let state = &mut *h;
            for s in state.servers.iter_mut() {
                let id = s["id"].as_u64().unwrap_or_default();
                let created = parse(&s["created"]).unwrap_or(t);
                if self.seen_servers.insert(id, created).is_none() {
                    self.verdict.created += 1;
                }
                let booted =
                    t.duration_since(created).as_secs_f64() >= self.config.boot.as_secs_f64();
                if booted && !self.joined.contains(&id) {
                    // The agent joins only with a credential the cluster accepts now.
                    let token = state.user_data.get(&id).and_then(|u| join_token_in(u));
                    let refused = match token.as_deref() {
                        None => Some("no join token in the user data".to_owned()),
                        Some(tok) if is_bootstrap(tok) => {
                            self.kube.state().accepts_join_token(tok, t).err()
                        }
                        Some(_) => None,
                    };
                    if let Some(why) = refused {
                        let name = s["name"].as_str().unwrap_or_default();
                        if !self
                            .verdict
                            .join_refused
                            .iter()
                            .any(|r| r.starts_with(&format!("{name}:")))
                        {
                            self.verdict.join_refused.push(format!("{name}: {why}"));
                        }
                        continue;
                    }
                    s["status"] = json!("running");
                    joins.push((
                        id,
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        s["labels"].clone(),
                    ));
                }
            }
        }
        for (id, name, labels) in joins {
            self.joined.insert(id);
            let mut node = crate::kube::node(&name, None, true);
            node["metadata"]["labels"] = labels;
            // The Hetzner cloud controller names the server the node runs on.
            node["spec"]["providerID"] = json!(format!("hcloud://{id}"));
            node["metadata"]["creationTimestamp"] = json!(t.to_string());
            node["status"]["conditions"][0]["lastTransitionTime"] = json!(t.to_string());
            let pod_name = format!("{name}-runner");
            let pod = crate::kube::pod(
                &self.config.namespace,
                &pod_name,
                &name,
                Some("DaemonSet"),
                "Running",
            );
            {
                let mut k = self.kube.state();
                k.nodes.insert(name.clone(), node);
                k.pods.push(pod);
            }
            let rid = self.next_runner;
            self.next_runner += 1;
            let mut r = crate::gitea::runner(rid, &pod_name, true, false);
            r["labels"] = self
                .config
                .runner_labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"id": i, "name": l, "type": "custom"}))
                .collect();
            self.gitea.state().runners.push(r);
        }
    }

    fn finish_jobs(&mut self, t: Timestamp) {
        let done: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, r)| t >= r.ends)
            .map(|(id, _)| *id)
            .collect();
        let mut g = self.gitea.state();
        for id in done {
            let r = self.running.remove(&id).expect("listed");
            g.jobs.retain(|j| j["id"] != id);
            if let Some(runner) = g.runners.iter_mut().find(|x| x["id"] == r.runner_id) {
                runner["busy"] = json!(false);
            }
            self.verdict.served += 1;
        }
    }

    /// A running job whose runner, pod, node or server is gone was killed.
    fn check_kills(&mut self) {
        let g = self.gitea.state();
        let k = self.kube.state();
        let h = self.hetzner.state();
        let mut killed = Vec::new();
        for (job, r) in &self.running {
            let Some(runner) = g.runners.iter().find(|x| x["id"] == r.runner_id) else {
                killed.push(format!("job {job}: its runner {} was deleted", r.runner_id));
                continue;
            };
            let pod_name = runner["name"].as_str().unwrap_or_default();
            let Some(pod) = k.pods.iter().find(|p| p["metadata"]["name"] == pod_name) else {
                killed.push(format!("job {job}: its pod {pod_name} is gone"));
                continue;
            };
            if !pod["metadata"]["deletionTimestamp"].is_null() {
                killed.push(format!("job {job}: its pod {pod_name} was evicted"));
                continue;
            }
            let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
            if !k.nodes.contains_key(node) {
                killed.push(format!("job {job}: its node {node} was deleted"));
            } else if !h.servers.iter().any(|s| s["name"] == node) {
                killed.push(format!("job {job}: its server {node} was deleted"));
            }
        }
        drop((g, k, h));
        for entry in killed {
            let job: u64 = entry
                .trim_start_matches("job ")
                .split(':')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            self.running.remove(&job);
            self.gitea.state().jobs.retain(|j| j["id"] != job);
            self.verdict.killed.push(entry);
        }
    }

    /// Free, enabled, online runners whose pod runs take the oldest job they can serve.
    fn take_jobs(&mut self, t: Timestamp) {
        let k = self.kube.state();
        let mut g = self.gitea.state();
        let busy: BTreeSet<u64> = self.running.values().map(|r| r.runner_id).collect();
        let mut free: Vec<usize> = g
            .runners
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r["status"] == "online"
                    && r["disabled"] != true
                    && !busy.contains(&r["id"].as_u64().unwrap_or_default())
                    && k.pods.iter().any(|p| {
                        p["metadata"]["name"] == r["name"]
                            && p["metadata"]["deletionTimestamp"].is_null()
                    })
            })
            .map(|(i, _)| i)
            .collect();
        let labels_of = |r: &Value| -> Vec<String> {
            r["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["name"].as_str().map(str::to_owned))
                .collect()
        };
        let queued: Vec<usize> = g
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j["status"] == "queued")
            .map(|(i, _)| i)
            .collect();
        for ji in queued {
            let wants: Vec<String> = g.jobs[ji]["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect();
            let Some(pos) = free.iter().position(|&ri| {
                let have = labels_of(&g.runners[ri]);
                wants.iter().all(|w| have.contains(w))
            }) else {
                continue;
            };
            let ri = free.remove(pos);
            let (rid, rname) = (
                g.runners[ri]["id"].as_u64().unwrap_or_default(),
                g.runners[ri]["name"].clone(),
            );
            g.runners[ri]["busy"] = json!(true);
            let job = &mut g.jobs[ji];
            let id = job["id"].as_u64().unwrap_or_default();
            job["status"] = json!("in_progress");
            job["runner_id"] = json!(rid);
            job["runner_name"] = rname;
            job["started_at"] = json!(t.to_string());
            let d = self
                .durations
                .get(&id)
                .copied()
                .unwrap_or(Duration::from_secs(1));
            let ends = t
                .checked_add(jiff::SignedDuration::try_from(d).unwrap_or_default())
                .unwrap_or(t);
            self.running.insert(
                id,
                Running {
                    runner_id: rid,
                    ends,
                },
            );
        }
    }

    /// A deleted server takes its node down (NotReady), its runner offline, and its evicted
    /// pods finish terminating.
    fn vanish(&mut self, t: Timestamp) {
        let (names, ids): (BTreeSet<String>, BTreeSet<u64>) = {
            let h = self.hetzner.state();
            (
                h.servers
                    .iter()
                    .filter_map(|s| s["name"].as_str().map(str::to_owned))
                    .collect(),
                h.servers.iter().filter_map(|s| s["id"].as_u64()).collect(),
            )
        };
        let gone: Vec<u64> = self
            .seen_servers
            .keys()
            .filter(|id| !ids.contains(id))
            .copied()
            .collect();
        for id in gone {
            let created = self.seen_servers.remove(&id).unwrap_or(t);
            self.verdict
                .lifetimes
                .push(t.duration_since(created).as_secs());
        }
        let mut k = self.kube.state();
        let mut gone_pods = BTreeSet::new();
        for (name, node) in k.nodes.iter_mut() {
            if !names.contains(name) {
                node["status"]["conditions"][0]["status"] = json!("Unknown");
            }
        }
        let nodes: BTreeSet<String> = k.nodes.keys().cloned().collect();
        k.pods.retain(|p| {
            let keep = p["metadata"]["deletionTimestamp"].is_null()
                && nodes.contains(p["spec"]["nodeName"].as_str().unwrap_or_default());
            if !keep {
                gone_pods.insert(
                    p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            keep
        });
        drop(k);
        let mut g = self.gitea.state();
        for r in g.runners.iter_mut() {
            let pod = r["name"].as_str().unwrap_or_default();
            if gone_pods.contains(pod) || !names.iter().any(|n| pod.starts_with(n.as_str())) {
                r["status"] = json!("offline");
            }
        }
    }
}
