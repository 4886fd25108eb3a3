//! Runner nodes and pods: list, annotate, cordon, drain, delete.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use autoscaler_core::ports::{Cluster, DrainProgress, JoinToken, ProviderError};
use autoscaler_core::{Node as CoreNode, RunnerPod, Source, Timestamp, keys};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, ObjectList, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::json;

use crate::K3sError;
use crate::convert;

/// Which nodes and pods are this installation's, and how long a call may take.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This installation's name: the ownership label's value on its nodes.
    pub installation: String,
    /// The namespace the runner pods run in (`RUNNER_NAMESPACE`, `gitea-runners` by default).
    pub runner_namespace: String,
    /// A label selector for the runner pods in that namespace (the seed's
    /// `app=gitea-actions-runner`); empty selects every pod there.
    pub runner_selector: String,
    /// The longest one API call may take.
    pub timeout: Duration,
    /// Items per list page.
    pub page_size: u32,
}

impl ClusterConfig {
    /// The seed's defaults: namespace `gitea-runners`, pods labelled `app=gitea-actions-runner`,
    /// 10-second calls.
    pub fn new(installation: impl Into<String>) -> Self {
        Self {
            installation: installation.into(),
            runner_namespace: "gitea-runners".to_owned(),
            runner_selector: "app=gitea-actions-runner".to_owned(),
            timeout: Duration::from_secs(10),
            // Small pages keep every answer small: a node object is a few KiB.
            page_size: 100,
        }
    }
}

/// Makes a kube configuration safe for a 5-second loop: kube's own retry of 429/503/504 (up to
/// 15 times, backing off to 1,000 s) is turned off, and reads and connects time out.
pub fn client_config(mut config: kube::Config, timeout: Duration) -> kube::Config {
    config.default_retry = false;
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.connect_timeout = Some(timeout);
    config
}

/// The cluster, as the autoscaler sees it.
#[derive(Clone)]
pub struct K3sCluster {
    client: Client,
    config: ClusterConfig,
    /// The cluster CA's hash for join tokens, once read.
    ca_hash: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl std::fmt::Debug for K3sCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K3sCluster")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Every page of a list: `Err` when the first page failed, `Partial` when a later one did.
async fn list_all<K, F, Fut>(
    what: &str,
    page_size: u32,
    base: ListParams,
    mut fetch: F,
) -> Result<Source<K>, K3sError>
where
    K: Clone,
    F: FnMut(ListParams) -> Fut,
    Fut: Future<Output = Result<ObjectList<K>, K3sError>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut first = true;
    loop {
        let mut lp = base.clone().limit(page_size);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        match fetch(lp).await {
            Ok(list) => {
                items.extend(list.items);
                token = list.metadata.continue_.filter(|t| !t.is_empty());
                if token.is_none() {
                    return Ok(Source::complete(items));
                }
            }
            Err(e) if first => return Err(e),
            Err(e) => {
                return Ok(Source::Partial {
                    items,
                    reason: format!("{what}: a later page failed: {e}"),
                });
            }
        }
        first = false;
    }
}

fn map_source<A, B>(s: Source<A>, f: impl Fn(A) -> Option<B>) -> Source<B> {
    match s {
        Source::Complete { items } => Source::complete(items.into_iter().filter_map(f).collect()),
        Source::Partial { items, reason } => Source::Partial {
            items: items.into_iter().filter_map(f).collect(),
            reason,
        },
        Source::Unavailable { reason } => Source::Unavailable { reason },
    }
}

impl K3sCluster {
    /// A cluster over `client`; build it from [`client_config`] so no call can hang.
    pub fn new(client: Client, config: ClusterConfig) -> Self {
        Self {
            client,
            config,
            ca_hash: std::sync::Arc::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub(crate) fn ca_hash_cache(&self) -> Option<String> {
        self.ca_hash.get().cloned()
    }

    pub(crate) fn set_ca_hash_cache(&self, hash: String) {
        // A concurrent first read set the same value.
        let _ = self.ca_hash.set(hash);
    }

    /// The kube client, for other APIs of the same cluster (the Lease).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Connects with the in-cluster service account, or `KUBECONFIG` outside a cluster.
    pub async fn connect(config: ClusterConfig) -> Result<Self, K3sError> {
        let kube_config = kube::Config::infer()
            .await
            .map_err(|e| K3sError::Config(e.to_string()))?;
        let client = Client::try_from(client_config(kube_config, config.timeout))
            .map_err(|e| K3sError::Config(e.to_string()))?;
        Ok(Self::new(client, config))
    }

    pub(crate) async fn call<T>(
        &self,
        name: impl Into<String>,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, K3sError> {
        let name = name.into();
        match tokio::time::timeout(self.config.timeout, fut).await {
            Err(_) => Err(K3sError::Timeout { call: name }),
            Ok(r) => r.map_err(|e| K3sError::from_kube(name, e)),
        }
    }

    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Nodes carrying an ownership label, this installation's or another's: the core keeps its
    /// own and says how many belong to another installation.
    pub async fn list_nodes(&self) -> Result<Source<CoreNode>, K3sError> {
        let api = self.nodes_api();
        let base = ListParams::default().labels(keys::OWNER);
        let listed = list_all("nodes", self.config.page_size, base, |lp| {
            let api = api.clone();
            async move {
                self.call("list nodes", async move { api.list(&lp).await })
                    .await
            }
        })
        .await?;
        Ok(map_source(listed, |n| Some(convert::node(n))))
    }

    /// Runner pods in the runner namespace, selected by the runner selector.
    pub async fn list_runner_pods(&self) -> Result<Source<RunnerPod>, K3sError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.config.runner_namespace);
        let mut base = ListParams::default();
        if !self.config.runner_selector.is_empty() {
            base = base.labels(&self.config.runner_selector);
        }
        let listed = list_all("runner pods", self.config.page_size, base, |lp| {
            let api = api.clone();
            async move {
                self.call("list runner pods", async move { api.list(&lp).await })
                    .await
            }
        })
        .await?;
        // Runners may run as a DaemonSet (the seed's setups do): every selected pod counts.
        Ok(map_source(listed, |p| Some(convert::runner_pod(&p))))
    }

    /// Sets or removes one annotation (a JSON merge patch: `null` removes).
    pub async fn annotate(
        &self,
        node: &str,
        key: &str,
        value: Option<String>,
    ) -> Result<(), K3sError> {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        let api = self.nodes_api();
        self.call(format!("annotate node {node}"), async move {
            api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        })
        .await
        .map(drop)
    }

    /// Marks the node unschedulable.
    pub async fn cordon_node(&self, node: &str) -> Result<(), K3sError> {
        let patch = json!({"spec": {"unschedulable": true}});
        let api = self.nodes_api();
        self.call(format!("cordon node {node}"), async move {
            api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        })
        .await
        .map(drop)
    }

    /// One drain step: evicts every pod on the node but DaemonSet, mirror and finished pods.
    /// A PodDisruptionBudget's 429 leaves the pod and reports it blocked; any other refusal is an
    /// error naming the pod. When nothing is left, the node is annotated `drained` at `now`.
    pub async fn drain_node(&self, node: &str, now: Timestamp) -> Result<DrainProgress, K3sError> {
        let all: Api<Pod> = Api::all(self.client.clone());
        let base = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let listed = list_all("pods on the node", self.config.page_size, base, |lp| {
            let all = all.clone();
            async move {
                self.call(format!("list pods on {node}"), async move {
                    all.list(&lp).await
                })
                .await
            }
        })
        .await?;
        let Source::Complete { items: pods } = listed else {
            // Without every pod in view "nothing left" cannot be known: try again next tick.
            return Err(K3sError::Incomplete(format!(
                "drain {node}: {}",
                listed.problem().unwrap_or("the pod list is incomplete")
            )));
        };
        let (mut evicted, mut terminating, mut blocked) = (0, 0, Vec::new());
        for pod in pods.iter().filter(|p| {
            !convert::is_daemonset_pod(p)
                && !convert::is_mirror_pod(p)
                && !matches!(
                    convert::phase(p),
                    autoscaler_core::PodPhase::Succeeded | autoscaler_core::PodPhase::Failed
                )
        }) {
            if pod.meta().deletion_timestamp.is_some() {
                terminating += 1;
                continue;
            }
            let (ns, name) = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let result = self
                .call(format!("evict pod {ns}/{name}"), async {
                    api.evict(&name, &EvictParams::default()).await
                })
                .await;
            match result {
                Ok(_) => evicted += 1,
                Err(e) if e.code() == Some(404) => {}
                Err(e) if e.code() == Some(429) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), node, "eviction refused by a PodDisruptionBudget; retrying next tick");
                    blocked.push(format!("{ns}/{name}"));
                }
                Err(e) => return Err(e),
            }
        }
        if evicted == 0 && terminating == 0 && blocked.is_empty() {
            self.annotate(node, keys::DRAINED, Some(now.to_string()))
                .await?;
            return Ok(DrainProgress::Drained);
        }
        Ok(DrainProgress::Pending {
            evicted,
            blocked,
            terminating,
        })
    }

    /// Deletes the node object; one that is already gone counts as deleted.
    pub async fn delete(&self, node: &str) -> Result<(), K3sError> {
        let api = self.nodes_api();
        match self
            .call(format!("delete node {node}"), async move {
                api.delete(node, &DeleteParams::default()).await
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The API server's `gitVersion`, e.g. `v1.33.4+k3s1`.
    pub async fn version(&self) -> Result<String, K3sError> {
        let client = self.client.clone();
        let info = self
            .call(
                "GET /version",
                async move { client.apiserver_version().await },
            )
            .await?;
        Ok(info.git_version)
    }

    /// The `kube-system` namespace's UID: this cluster's identity.
    pub async fn kube_system_uid(&self) -> Result<String, K3sError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = self
            .call("get namespace kube-system", async move {
                api.get("kube-system").await
            })
            .await?;
        ns.metadata
            .uid
            .filter(|u| !u.is_empty())
            .ok_or_else(|| K3sError::Decode("the kube-system namespace has no uid".to_owned()))
    }

    /// `https://IP:PORT` of the first ready API server endpoint of the `kubernetes` service.
    pub async fn control_plane(&self) -> Result<String, K3sError> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), "default");
        let lp = ListParams::default().labels("kubernetes.io/service-name=kubernetes");
        let slices = self
            .call("list endpointslices default/kubernetes", async move {
                api.list(&lp).await
            })
            .await?;
        for slice in slices.items {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some("https"))
                .or_else(|| slice.ports.iter().flatten().next())
                .and_then(|p| p.port)
                .unwrap_or(6443);
            let ready = slice
                .endpoints
                .iter()
                .find(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true));
            if let Some(address) = ready.and_then(|e| e.addresses.first()) {
                let host = if slice.address_type == "IPv6" {
                    format!("[{address}]")
                } else {
                    address.clone()
                };
                return Ok(format!("https://{host}:{port}"));
            }
        }
        Err(K3sError::Incomplete(
            "the kubernetes service has no ready endpoint; set the K3s server URL explicitly"
                .to_owned(),
        ))
    }
}

#[async_trait]
impl Cluster for K3sCluster {
    async fn nodes(&self) -> Result<Source<CoreNode>, ProviderError> {
        Ok(self.list_nodes().await?)
    }

    async fn runner_pods(&self) -> Result<Source<RunnerPod>, ProviderError> {
        Ok(self.list_runner_pods().await?)
    }

    async fn annotate_node(
        &self,
        node: &str,
        key: &str,
        value: Option<String>,
    ) -> Result<(), ProviderError> {
        Ok(self.annotate(node, key, value).await?)
    }

    async fn cordon(&self, node: &str) -> Result<(), ProviderError> {
        Ok(self.cordon_node(node).await?)
    }

    async fn drain(&self, node: &str, now: Timestamp) -> Result<DrainProgress, ProviderError> {
        Ok(self.drain_node(node, now).await?)
    }

    async fn delete_node(&self, node: &str) -> Result<(), ProviderError> {
        Ok(self.delete(node).await?)
    }

    async fn server_version(&self) -> Result<String, ProviderError> {
        Ok(self.version().await?)
    }

    async fn control_plane_url(&self) -> Result<String, ProviderError> {
        Ok(self.control_plane().await?)
    }

    async fn identity(&self) -> Result<String, ProviderError> {
        Ok(self.kube_system_uid().await?)
    }

    async fn mint_join_token(
        &self,
        server: &str,
        expires: Timestamp,
    ) -> Result<JoinToken, ProviderError> {
        Ok(self.create_join_token(server, expires).await?)
    }

    async fn revoke_join_token(&self, id: &str) -> Result<(), ProviderError> {
        Ok(self.delete_join_token(id).await?)
    }
}
