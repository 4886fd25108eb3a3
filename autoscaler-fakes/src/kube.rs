//! A loopback fake Kubernetes API server (axum), enough of it for the autoscaler: nodes (label
//! selector, `limit`/`continue` paging, JSON merge patch, delete), pods (label and
//! `spec.nodeName` field selectors), the Eviction subresource (201, 404, 429 from a
//! PodDisruptionBudget, scripted 500 or hang), leases with `resourceVersion` conflicts, and
//! `/version`. kube-rs talks to it through its real client stack, retry layer included.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

pub struct State {
    pub nodes: BTreeMap<String, Value>,
    pub pods: Vec<Value>,
    pub leases: BTreeMap<String, Value>,
    /// `namespace/name` of pods whose eviction a PodDisruptionBudget refuses.
    pub pdb_blocked: BTreeSet<String>,
    /// `namespace/name` of pods whose eviction fails with 500 (two PDBs match).
    pub eviction_broken: BTreeSet<String>,
    /// Evictions answer only after this long.
    pub eviction_delay: Option<Duration>,
    pub requests: Vec<(String, String, String)>,
    pub resource_version: u64,
    /// API server addresses of the `kubernetes` service, with readiness.
    pub control_plane: Vec<(String, bool)>,
    /// The next this many requests answer 503.
    pub fail_next: u32,
    /// Added to every answer (a slow network).
    pub delay: Duration,
    /// The `kube-system` namespace's UID: the cluster's identity.
    pub cluster_uid: String,
    /// The cluster CA bundle, published as the `kube-root-ca.crt` ConfigMap.
    pub root_ca: String,
    /// Secrets by `namespace/name`, as the API server stores them (`stringData` folded into
    /// base64 `data`).
    pub secrets: BTreeMap<String, Value>,
}

/// A CA bundle that looks like one (the fake never does TLS with it).
pub const ROOT_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrM3Mtc2VydmVy\n-----END CERTIFICATE-----\n";

impl State {
    /// The decoded `data` of a Secret, when it exists.
    pub fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        use base64::Engine;
        let secret = self.secrets.get(&format!("{namespace}/{name}"))?;
        let data = secret["data"].as_object()?;
        Some(
            data.iter()
                .filter_map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str()?)
                        .ok()?;
                    Some((k.clone(), String::from_utf8(bytes).ok()?))
                })
                .collect(),
        )
    }

    /// Whether the API server would accept `token` (`K10<hash>::<id>.<secret>`) from a K3s agent
    /// at `now`: the CA hash is this cluster's, and a live bootstrap token has that id and secret.
    pub fn accepts_join_token(&self, token: &str, now: jiff::Timestamp) -> Result<(), String> {
        use sha2::Digest;
        let (hash, credentials) = token
            .strip_prefix("K10")
            .and_then(|t| t.split_once("::"))
            .ok_or("not a secure token (K10<hash>::…)")?;
        if hash != hex::encode(sha2::Sha256::digest(self.root_ca.as_bytes())) {
            return Err("the CA hash is not this cluster's".to_owned());
        }
        let (id, secret) = credentials.split_once('.').ok_or("not a bootstrap token")?;
        let data = self
            .secret_data("kube-system", &format!("bootstrap-token-{id}"))
            .ok_or_else(|| format!("no bootstrap token {id}"))?;
        let stored = &self.secrets[&format!("kube-system/bootstrap-token-{id}")];
        if stored["type"] != "bootstrap.kubernetes.io/token" {
            return Err("the Secret is not a bootstrap token".to_owned());
        }
        if data.get("token-id").map(String::as_str) != Some(id)
            || data.get("token-secret").map(String::as_str) != Some(secret)
        {
            return Err(format!("token {id}: wrong secret"));
        }
        if data
            .get("usage-bootstrap-authentication")
            .map(String::as_str)
            != Some("true")
        {
            return Err(format!("token {id} is not for authentication"));
        }
        match data
            .get("expiration")
            .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        {
            Some(e) if e > now => Ok(()),
            Some(_) => Err(format!("token {id} has expired")),
            None => Err(format!("token {id} has no readable expiration")),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            nodes: BTreeMap::new(),
            pods: Vec::new(),
            leases: BTreeMap::new(),
            pdb_blocked: BTreeSet::new(),
            eviction_broken: BTreeSet::new(),
            eviction_delay: None,
            requests: Vec::new(),
            resource_version: 0,
            control_plane: Vec::new(),
            fail_next: 0,
            delay: Duration::ZERO,
            cluster_uid: "5f0c6a3e-9d41-4b7e-8c2a-1e6f3b9d0a17".to_owned(),
            root_ca: ROOT_CA.to_owned(),
            secrets: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeKube(pub Arc<Mutex<State>>);

pub fn node(name: &str, owner: Option<&str>, ready: bool) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if let Some(o) = owner {
        labels["gitea-ci-autoscaler/owner"] = json!(o);
        labels["gitea-ci-autoscaler/pool"] = json!("linux");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {}, "creationTimestamp": "2026-11-25T10:01:00Z"},
        // What K3s sets when no cloud controller runs; the world sets `hcloud://<id>` as the
        // Hetzner cloud controller does.
        "spec": {"providerID": format!("k3s://{name}")},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" },
            "lastTransitionTime": "2026-11-25T10:01:30Z", "lastHeartbeatTime": "2026-11-25T10:05:00Z"}]}
    })
}

pub fn pod(ns: &str, name: &str, node: &str, owner_kind: Option<&str>, phase: &str) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "gitea-actions-runner"}},
        "spec": {"nodeName": node, "containers": [{"name": "runner", "image": "gitea/act_runner:0.2"}]},
        "status": {"phase": phase}
    });
    if let Some(kind) = owner_kind {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": "u", "controller": true}]);
    }
    p
}

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": if code < 300 { "Success" } else { "Failure" },
               "message": message, "reason": reason, "code": code}),
    )
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn selects(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|t| match t.split_once('=') {
            Some((k, v)) => {
                labels.get(k).and_then(Value::as_str) == Some(v.trim_start_matches('='))
            }
            None => labels.get(t).is_some(),
        })
}

fn list(kind: &str, items: Vec<Value>, query: &BTreeMap<String, String>) -> Value {
    let offset: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = offset.saturating_add(limit);
    let cont = if next < items.len() {
        json!(next.to_string())
    } else {
        json!(null)
    };
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1", "continue": cont}, "items": page})
}

impl FakeKube {
    pub fn with(state: State) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// Terminating pods finish: they leave the API.
    pub fn finish_terminating(&self) {
        let mut s = self.0.lock().unwrap();
        s.pods
            .retain(|p| p["metadata"]["deletionTimestamp"].is_null());
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.0.lock().unwrap().requests.clone()
    }

    async fn handle(&self, method: Method, uri: Uri, body: Bytes) -> (StatusCode, Value) {
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        let path = uri.path().to_owned();
        let segs: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let delay = {
            let mut s = self.0.lock().unwrap();
            s.requests.push((
                method.to_string(),
                uri.to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            if s.fail_next > 0 {
                s.fail_next -= 1;
                return status(503, "ServiceUnavailable", "injected");
            }
            s.eviction_delay
        };
        let pause = self.0.lock().unwrap().delay;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if let (Some(d), ["api", "v1", "namespaces", _, "pods", _, "eviction"]) =
            (delay, segs.as_slice())
        {
            tokio::time::sleep(d).await;
        }
        let mut s = self.0.lock().unwrap();
        s.resource_version += 1;
        let rv = s.resource_version.to_string();
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["api", "v1", "namespaces", "kube-system"]) => (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "kube-system", "uid": s.cluster_uid,
                                 "labels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            ),
            (
                "GET",
                [
                    "api",
                    "v1",
                    "namespaces",
                    ns,
                    "configmaps",
                    "kube-root-ca.crt",
                ],
            ) => (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": ns},
                    "data": {"ca.crt": s.root_ca}}),
            ),
            ("POST", ["api", "v1", "namespaces", ns, "secrets"]) => {
                let Ok(mut secret) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "the body is not a JSON object");
                };
                let name = secret["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let valid_name = !name.is_empty()
                    && name.len() <= 253
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !valid_name {
                    return status(
                        422,
                        "Invalid",
                        &format!("Secret \"{name}\" is invalid: metadata.name: Invalid value"),
                    );
                }
                let key = format!("{ns}/{name}");
                if s.secrets.contains_key(&key) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("secrets \"{name}\" already exists"),
                    );
                }
                // The API server folds write-only stringData into base64 data.
                {
                    use base64::Engine;
                    let folded: serde_json::Map<String, Value> = secret["stringData"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| {
                            let text = v.as_str().unwrap_or_default();
                            (
                                k.clone(),
                                json!(base64::engine::general_purpose::STANDARD.encode(text)),
                            )
                        })
                        .collect();
                    if !secret["data"].is_object() {
                        secret["data"] = json!({});
                    }
                    for (k, v) in folded {
                        secret["data"][k] = v;
                    }
                    if let Some(o) = secret.as_object_mut() {
                        o.remove("stringData");
                    }
                }
                secret["metadata"]["namespace"] = json!(ns);
                secret["metadata"]["resourceVersion"] = json!(rv);
                secret["metadata"]["creationTimestamp"] = json!(
                    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                        .to_string()
                );
                if secret["type"].is_null() {
                    secret["type"] = json!("Opaque");
                }
                s.secrets.insert(key, secret.clone());
                (StatusCode::CREATED, secret)
            }
            ("DELETE", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                match s.secrets.remove(&format!("{ns}/{name}")) {
                    Some(_) => status(200, "", ""),
                    None => status(404, "NotFound", &format!("secrets \"{name}\" not found")),
                }
            }
            ("GET", ["version"]) => (
                StatusCode::OK,
                json!({"major": "1", "minor": "33", "gitVersion": "v1.33.4+k3s1",
                "gitCommit": "abc", "gitTreeState": "clean", "buildDate": "2026-08-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}),
            ),
            (
                "GET",
                [
                    "apis",
                    "discovery.k8s.io",
                    "v1",
                    "namespaces",
                    "default",
                    "endpointslices",
                ],
            ) => {
                let sel = query.get("labelSelector").cloned().unwrap_or_default();
                let items = if sel == "kubernetes.io/service-name=kubernetes" {
                    s.control_plane.iter().map(|(ip, ready)| json!({
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": "kubernetes", "namespace": "default",
                                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
                        "addressType": if ip.contains(':') { "IPv6" } else { "IPv4" },
                        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}],
                        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
                    })).collect()
                } else {
                    Vec::new()
                };
                (StatusCode::OK, list("EndpointSliceList", items, &query))
            }
            ("GET", ["api", "v1", "nodes"]) => {
                let sel = query.get("labelSelector").cloned().unwrap_or_default();
                let items = s
                    .nodes
                    .values()
                    .filter(|n| selects(&sel, &n["metadata"]["labels"]))
                    .cloned()
                    .collect();
                (StatusCode::OK, list("NodeList", items, &query))
            }
            ("PATCH", ["api", "v1", "nodes", name]) => {
                let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match s.nodes.get_mut(*name) {
                    Some(n) => {
                        merge(n, &patch);
                        (StatusCode::OK, n.clone())
                    }
                    None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
                }
            }
            ("DELETE", ["api", "v1", "nodes", name]) => match s.nodes.remove(*name) {
                Some(n) => (StatusCode::OK, n),
                None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
            },
            ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
                let sel = query.get("labelSelector").cloned().unwrap_or_default();
                let items = s
                    .pods
                    .iter()
                    .filter(|p| {
                        p["metadata"]["namespace"] == *ns && selects(&sel, &p["metadata"]["labels"])
                    })
                    .cloned()
                    .collect();
                (StatusCode::OK, list("PodList", items, &query))
            }
            ("GET", ["api", "v1", "pods"]) => {
                let node = query
                    .get("fieldSelector")
                    .and_then(|f| f.strip_prefix("spec.nodeName="))
                    .unwrap_or_default()
                    .to_owned();
                let items = s
                    .pods
                    .iter()
                    .filter(|p| p["spec"]["nodeName"] == node.as_str())
                    .cloned()
                    .collect();
                (StatusCode::OK, list("PodList", items, &query))
            }
            ("POST", ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
                let key = format!("{ns}/{name}");
                if s.pdb_blocked.contains(&key) {
                    return status(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                }
                if s.eviction_broken.contains(&key) {
                    return status(
                        500,
                        "InternalError",
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    );
                }
                match s
                    .pods
                    .iter_mut()
                    .find(|p| p["metadata"]["namespace"] == *ns && p["metadata"]["name"] == *name)
                {
                    Some(p) => {
                        p["metadata"]["deletionTimestamp"] = json!("2026-11-25T11:00:00Z");
                        status(201, "", "")
                    }
                    None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
                }
            }
            (
                "GET",
                [
                    "apis",
                    "coordination.k8s.io",
                    "v1",
                    "namespaces",
                    _,
                    "leases",
                    name,
                ],
            ) => match s.leases.get(*name) {
                Some(l) => (StatusCode::OK, l.clone()),
                None => status(
                    404,
                    "NotFound",
                    &format!("leases.coordination.k8s.io \"{name}\" not found"),
                ),
            },
            (
                "POST",
                [
                    "apis",
                    "coordination.k8s.io",
                    "v1",
                    "namespaces",
                    ns,
                    "leases",
                ],
            ) => {
                let mut lease: Value = serde_json::from_slice(&body).unwrap();
                let name = lease["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if s.leases.contains_key(&name) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("leases.coordination.k8s.io \"{name}\" already exists"),
                    );
                }
                lease["metadata"]["namespace"] = json!(ns);
                lease["metadata"]["resourceVersion"] = json!(rv);
                s.leases.insert(name, lease.clone());
                (StatusCode::CREATED, lease)
            }
            (
                "PUT",
                [
                    "apis",
                    "coordination.k8s.io",
                    "v1",
                    "namespaces",
                    _,
                    "leases",
                    name,
                ],
            ) => {
                let mut lease: Value = serde_json::from_slice(&body).unwrap();
                let Some(current) = s.leases.get(*name) else {
                    return status(404, "NotFound", "not found");
                };
                if lease["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return status(
                        409,
                        "Conflict",
                        "the object has been modified; please apply your changes to the latest version and try again",
                    );
                }
                lease["metadata"]["resourceVersion"] = json!(rv);
                s.leases.insert((*name).to_owned(), lease.clone());
                (StatusCode::OK, lease)
            }
            _ => status(404, "NotFound", &format!("no route for {method} {path}")),
        }
    }

    /// Serves on a loopback port; returns its URL.
    pub async fn start(&self) -> String {
        let fake = self.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let fake = fake.clone();
            async move {
                let (code, body) = fake.handle(method, uri, body).await;
                (code, axum::Json(body)).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
