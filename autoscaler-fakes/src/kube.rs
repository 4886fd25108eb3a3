//! A loopback fake Kubernetes API server (axum), enough of it for the autoscaler and for kubectl:
//! discovery (`/api`, `/api/v1`, `/apis`, each group version served), nodes (list with the full
//! label-selector grammar and `limit`/`continue` paging, get, patch by its content type — JSON
//! merge patch, strategic merge patch for the map and scalar fields it is used on, JSON patch,
//! 415 for any other — and delete), pods (list by label and `spec.nodeName` field selectors,
//! get), the Eviction subresource (201, 404, 429 from a PodDisruptionBudget, scripted 500 or
//! hang), namespaced leases with `resourceVersion` conflicts, and `/version`. kube-rs talks to it
//! through its real client stack, retry layer included. No request panics it, and a panic
//! elsewhere while its lock was held does not poison it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

pub struct State {
    pub nodes: BTreeMap<String, Value>,
    pub pods: Vec<Value>,
    /// Leases by `namespace/name`.
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
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
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

/// The label selector of a list request, or the API server's 400 for one it cannot parse.
fn label_selector(
    query: &BTreeMap<String, String>,
) -> Result<crate::selector::Selector, (StatusCode, Value)> {
    let text = query.get("labelSelector").map_or("", String::as_str);
    crate::selector::parse(text).map_err(|e| {
        status(
            400,
            "BadRequest",
            &format!("unable to parse requirement: {e}"),
        )
    })
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace` and `test` on JSON pointers.
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch is an array of operations")?;
    let mut out = target.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("an operation without a path")?;
        let (parent, last) = match path.rfind('/') {
            Some(i) => (
                &path[..i],
                path[i + 1..].replace("~1", "/").replace("~0", "~"),
            ),
            None => return Err(format!("{path:?} is not a JSON pointer")),
        };
        match op["op"].as_str() {
            Some("test") => {
                if out.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            Some(kind @ ("add" | "replace" | "remove")) => {
                let Some(container) = out.pointer_mut(parent) else {
                    return Err(format!("no {parent:?} to change"));
                };
                match container {
                    Value::Object(map) => {
                        if kind != "add" && !map.contains_key(&last) {
                            return Err(format!("no {path:?} to {kind}"));
                        }
                        if kind == "remove" {
                            map.remove(&last);
                        } else {
                            map.insert(last, op["value"].clone());
                        }
                    }
                    Value::Array(items) => {
                        let at = if last == "-" {
                            items.len()
                        } else {
                            last.parse::<usize>()
                                .map_err(|_| format!("bad index in {path}"))?
                        };
                        match kind {
                            "add" if at <= items.len() => items.insert(at, op["value"].clone()),
                            "replace" if at < items.len() => items[at] = op["value"].clone(),
                            "remove" if at < items.len() => {
                                items.remove(at);
                            }
                            _ => return Err(format!("index out of range in {path}")),
                        }
                    }
                    _ => return Err(format!("{parent:?} is not an object or array")),
                }
            }
            other => return Err(format!("unsupported operation {other:?}")),
        }
    }
    *target = out;
    Ok(())
}

/// Applies a PATCH by its content type, as the API server does.
fn apply_patch(
    target: &mut Value,
    content_type: &str,
    body: &[u8],
) -> Result<(), (StatusCode, Value)> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| status(400, "BadRequest", &format!("the patch is not JSON: {e}")))?;
    match media {
        // A strategic merge patch on the fields it is used on (metadata maps, spec scalars)
        // merges as a JSON merge patch does; lists with merge keys (taints, conditions) are
        // not merged by key here.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            if !patch.is_object() {
                return Err(status(
                    400,
                    "BadRequest",
                    "a merge patch must be a JSON object",
                ));
            }
            merge(target, &patch);
            Ok(())
        }
        "application/json-patch+json" => json_patch(target, &patch).map_err(|e| {
            status(
                422,
                "Invalid",
                &format!("the JSON patch cannot be applied: {e}"),
            )
        }),
        other => Err(status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (not {other:?})"
            ),
        )),
    }
}

/// The discovery documents kubectl reads before anything else.
fn discovery(segs: &[&str]) -> Option<Value> {
    let resource = |name: &str, kind: &str, namespaced: bool, verbs: &[&str]| {
        json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced,
               "kind": kind, "verbs": verbs})
    };
    let group = |name: &str, version: &str| {
        let gv = format!("{name}/{version}");
        json!({"name": name, "versions": [{"groupVersion": gv, "version": version}],
               "preferredVersion": {"groupVersion": gv, "version": version}})
    };
    match segs {
        ["api"] => Some(
            json!({"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
        ),
        ["api", "v1"] => Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
            "resources": [
                resource("nodes", "Node", false, &["get", "list", "patch", "delete"]),
                resource("pods", "Pod", true, &["get", "list"]),
                json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                       "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
                resource("namespaces", "Namespace", false, &["get"]),
                resource("secrets", "Secret", true, &["create", "delete"]),
                resource("configmaps", "ConfigMap", true, &["get"]),
            ]}),
        ),
        ["apis"] => Some(
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group("coordination.k8s.io", "v1"), group("discovery.k8s.io", "v1"), group("policy", "v1")]}),
        ),
        ["apis", "coordination.k8s.io", "v1"] => {
            Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "coordination.k8s.io/v1",
            "resources": [resource("leases", "Lease", true, &["get", "create", "update"])]}))
        }
        ["apis", "discovery.k8s.io", "v1"] => {
            Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "discovery.k8s.io/v1",
            "resources": [resource("endpointslices", "EndpointSlice", true, &["list"])]}))
        }
        ["apis", "policy", "v1"] => Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "policy/v1", "resources": []})),
        _ => None,
    }
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

/// The pods of `namespace` (every namespace: `None`) that the request's label and field
/// selectors select, as a `PodList` page.
fn pod_list(
    pods: &[Value],
    namespace: Option<&str>,
    query: &BTreeMap<String, String>,
) -> (StatusCode, Value) {
    let sel = match label_selector(query) {
        Ok(sel) => sel,
        Err(e) => return e,
    };
    let fields = match field_selector(query) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let items = pods
        .iter()
        .filter(|p| {
            namespace.is_none_or(|ns| p["metadata"]["namespace"] == ns)
                && sel.matches(&p["metadata"]["labels"])
                && fields.iter().all(|f| f.matches(p))
        })
        .cloned()
        .collect();
    (StatusCode::OK, list("PodList", items, query))
}

/// One field selector term on a pod: `spec.nodeName`, `metadata.name`, `metadata.namespace` or
/// `status.phase`, with `=`, `==` or `!=`.
struct FieldTerm {
    pointer: &'static str,
    value: String,
    equal: bool,
}

impl FieldTerm {
    fn matches(&self, pod: &Value) -> bool {
        let actual = pod
            .pointer(self.pointer)
            .and_then(Value::as_str)
            .unwrap_or("");
        (actual == self.value) == self.equal
    }
}

/// The field selector of a pod list, or the API server's 400 for a field it does not index.
fn field_selector(query: &BTreeMap<String, String>) -> Result<Vec<FieldTerm>, (StatusCode, Value)> {
    let Some(text) = query.get("fieldSelector") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (field, value, equal) = if let Some((f, v)) = t.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                (f, v, true)
            } else {
                return Err(status(
                    400,
                    "BadRequest",
                    &format!("invalid field selector {t:?}"),
                ));
            };
            let pointer = match field.trim() {
                "spec.nodeName" => "/spec/nodeName",
                "metadata.name" => "/metadata/name",
                "metadata.namespace" => "/metadata/namespace",
                "status.phase" => "/status/phase",
                other => {
                    return Err(status(
                        400,
                        "BadRequest",
                        &format!("field label not supported: {other}"),
                    ));
                }
            };
            Ok(FieldTerm {
                pointer,
                value: value.trim().to_owned(),
                equal,
            })
        })
        .collect()
}

impl FakeKube {
    pub fn with(state: State) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// The state; a panic elsewhere while it was held leaves it as it was, not poisoned.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Terminating pods finish: they leave the API.
    pub fn finish_terminating(&self) {
        self.state()
            .pods
            .retain(|p| p["metadata"]["deletionTimestamp"].is_null());
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.state().requests.clone()
    }

    async fn handle(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Value) {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
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
            let mut s = self.state();
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
        let pause = self.state().delay;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if let (Some(d), ["api", "v1", "namespaces", _, "pods", _, "eviction"]) =
            (delay, segs.as_slice())
        {
            tokio::time::sleep(d).await;
        }
        if method == Method::GET
            && let Some(doc) = discovery(segs.as_slice())
        {
            return (StatusCode::OK, doc);
        }
        let mut s = self.state();
        s.resource_version = s.resource_version.saturating_add(1);
        let rv = s.resource_version.to_string();
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["api", "v1", "namespaces", "kube-system"]) => (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "kube-system", "uid": s.cluster_uid,
                                 "labels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            ),
            ("GET", ["api", "v1", "namespaces", ns]) => {
                // A namespace exists when something lives in it (or it is a built-in one).
                let used = ["default", "kube-public", "kube-node-lease"].contains(ns)
                    || s.pods.iter().any(|p| p["metadata"]["namespace"] == *ns)
                    || s.leases.keys().any(|k| k.split('/').next() == Some(*ns))
                    || s.secrets.keys().any(|k| k.split('/').next() == Some(*ns));
                if used {
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
                    )
                } else {
                    status(404, "NotFound", &format!("namespaces \"{ns}\" not found"))
                }
            }
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
                let sel = match label_selector(&query) {
                    Ok(sel) => sel,
                    Err(e) => return e,
                };
                let items = s
                    .nodes
                    .values()
                    .filter(|n| sel.matches(&n["metadata"]["labels"]))
                    .cloned()
                    .collect();
                (StatusCode::OK, list("NodeList", items, &query))
            }
            ("GET", ["api", "v1", "nodes", name]) => match s.nodes.get(*name) {
                Some(n) => (StatusCode::OK, n.clone()),
                None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
            },
            ("PATCH", ["api", "v1", "nodes", name]) => {
                let Some(n) = s.nodes.get_mut(*name) else {
                    return status(404, "NotFound", &format!("nodes \"{name}\" not found"));
                };
                let mut patched = n.clone();
                if let Err(e) = apply_patch(&mut patched, &content_type, &body) {
                    return e;
                }
                if patched["metadata"]["name"] != *name || patched["kind"] != "Node" {
                    return status(
                        422,
                        "Invalid",
                        &format!("Node \"{name}\" is invalid: the patch changes its name or kind"),
                    );
                }
                patched["metadata"]["resourceVersion"] = json!(rv);
                *n = patched.clone();
                (StatusCode::OK, patched)
            }
            ("DELETE", ["api", "v1", "nodes", name]) => match s.nodes.remove(*name) {
                Some(n) => (StatusCode::OK, n),
                None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
            },
            // The DaemonSets the pods name as their controller (kubectl drain checks each).
            ("GET", ["apis", "apps", "v1", "namespaces", ns, "daemonsets", name]) => {
                let claimed = s.pods.iter().any(|p| {
                    p["metadata"]["namespace"] == *ns
                        && p["metadata"]["ownerReferences"]
                            .as_array()
                            .is_some_and(|o| {
                                o.iter()
                                    .any(|r| r["kind"] == "DaemonSet" && r["name"] == *name)
                            })
                });
                if claimed {
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                            "metadata": {"name": name, "namespace": ns, "uid": "u"},
                            "spec": {"selector": {"matchLabels": {"app": "gitea-actions-runner"}},
                                     "template": {"metadata": {"labels": {"app": "gitea-actions-runner"}},
                                                  "spec": {"containers": []}}}}),
                    )
                } else {
                    status(
                        404,
                        "NotFound",
                        &format!("daemonsets.apps \"{name}\" not found"),
                    )
                }
            }
            ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => match s
                .pods
                .iter()
                .find(|p| p["metadata"]["namespace"] == *ns && p["metadata"]["name"] == *name)
            {
                Some(p) => (StatusCode::OK, p.clone()),
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            },
            ("GET", ["api", "v1", "namespaces", ns, "pods"]) => pod_list(&s.pods, Some(ns), &query),
            ("GET", ["api", "v1", "pods"]) => pod_list(&s.pods, None, &query),
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
                    ns,
                    "leases",
                    name,
                ],
            ) => match s.leases.get(&format!("{ns}/{name}")) {
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
                let Ok(mut lease) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "the body is not a JSON object");
                };
                let name = lease["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if name.is_empty() {
                    return status(
                        422,
                        "Invalid",
                        "Lease is invalid: metadata.name: Required value",
                    );
                }
                if s.leases.contains_key(&format!("{ns}/{name}")) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("leases.coordination.k8s.io \"{name}\" already exists"),
                    );
                }
                lease["metadata"]["namespace"] = json!(ns);
                lease["metadata"]["resourceVersion"] = json!(rv);
                s.leases.insert(format!("{ns}/{name}"), lease.clone());
                (StatusCode::CREATED, lease)
            }
            (
                "PUT",
                [
                    "apis",
                    "coordination.k8s.io",
                    "v1",
                    "namespaces",
                    ns,
                    "leases",
                    name,
                ],
            ) => {
                let Ok(mut lease) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "the body is not a JSON object");
                };
                let key = format!("{ns}/{name}");
                let Some(current) = s.leases.get(&key) else {
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
                lease["metadata"]["namespace"] = json!(ns);
                s.leases.insert(key, lease.clone());
                (StatusCode::OK, lease)
            }
            _ => status(404, "NotFound", &format!("no route for {method} {path}")),
        }
    }

    /// One request without a socket: the status and body the server would answer with.
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let (Ok(method), Ok(uri)) = (method.parse::<Method>(), path_and_query.parse::<Uri>())
        else {
            return (400, Value::Null);
        };
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type.and_then(|c| c.parse().ok()) {
            headers.insert("content-type", ct);
        }
        let (code, body) = self
            .handle(method, uri, headers, Bytes::copy_from_slice(body))
            .await;
        (code.as_u16(), body)
    }

    /// Serves on a loopback port; returns its URL.
    pub async fn start(&self) -> String {
        let fake = self.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let fake = fake.clone();
                async move {
                    let (code, body) = fake.handle(method, uri, headers, body).await;
                    (code, axum::Json(body)).into_response()
                }
            },
        );
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
