//! The Kubernetes fake behaves as the API server does where a client could tell: discovery,
//! single-object reads, PATCH by content type, the set-based selector grammar, field selectors,
//! namespaced leases, and no request that panics it.

use autoscaler_fakes::kube::{FakeKube, State, node, pod};
use serde_json::{Value, json};

fn fake() -> FakeKube {
    let mut s = State::default();
    for (name, owner, pool) in [
        ("ci-a", Some("ci"), "linux"),
        ("ci-b", Some("ci"), "arm"),
        ("control", None, ""),
    ] {
        let mut n = node(name, owner, true);
        if !pool.is_empty() {
            n["metadata"]["labels"]["gitea-ci-autoscaler/pool"] = json!(pool);
        }
        s.nodes.insert(name.to_owned(), n);
    }
    s.pods.push(pod(
        "gitea-runners",
        "runner-a",
        "ci-a",
        Some("DaemonSet"),
        "Running",
    ));
    s.pods.push(pod(
        "gitea-runners",
        "runner-b",
        "ci-b",
        Some("DaemonSet"),
        "Running",
    ));
    s.pods.push(pod(
        "default",
        "web",
        "control",
        Some("ReplicaSet"),
        "Running",
    ));
    FakeKube::with(s)
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn discovery_documents_name_every_resource_served() {
    let f = fake();
    let (code, api) = f.call("GET", "/api", None, b"").await;
    assert_eq!((code, api["versions"][0].as_str()), (200, Some("v1")));
    let (_, core) = f.call("GET", "/api/v1", None, b"").await;
    let resources: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for r in ["nodes", "pods", "pods/eviction", "namespaces"] {
        assert!(resources.contains(&r), "{r}: {resources:?}");
    }
    let (_, groups) = f.call("GET", "/apis", None, b"").await;
    for g in groups["groups"].as_array().unwrap() {
        let gv = g["preferredVersion"]["groupVersion"].as_str().unwrap();
        let (code, list) = f.call("GET", &format!("/apis/{gv}"), None, b"").await;
        assert_eq!((code, list["groupVersion"].as_str()), (200, Some(gv)));
    }
}

#[tokio::test]
async fn single_objects_are_read_by_name() {
    let f = fake();
    let (code, n) = f.call("GET", "/api/v1/nodes/ci-a", None, b"").await;
    assert_eq!((code, n["metadata"]["name"].as_str()), (200, Some("ci-a")));
    assert_eq!(f.call("GET", "/api/v1/nodes/nope", None, b"").await.0, 404);
    let (code, p) = f
        .call(
            "GET",
            "/api/v1/namespaces/gitea-runners/pods/runner-b",
            None,
            b"",
        )
        .await;
    assert_eq!((code, p["spec"]["nodeName"].as_str()), (200, Some("ci-b")));
    assert_eq!(
        f.call("GET", "/api/v1/namespaces/default/pods/runner-b", None, b"")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_patch_is_applied_by_its_content_type() {
    let f = fake();
    let path = "/api/v1/nodes/ci-a";
    // A JSON merge patch: null removes, maps merge.
    let merge = json!({"metadata": {"annotations": {"x": "1"}}}).to_string();
    let (code, n) = f
        .call(
            "PATCH",
            path,
            Some("application/merge-patch+json"),
            merge.as_bytes(),
        )
        .await;
    assert_eq!(
        (code, n["metadata"]["annotations"]["x"].as_str()),
        (200, Some("1"))
    );
    assert_eq!(
        n["metadata"]["labels"]["kubernetes.io/hostname"], "ci-a",
        "labels kept"
    );
    // kubectl cordon's strategic merge patch.
    let cordon = json!({"spec": {"unschedulable": true}}).to_string();
    let (code, n) = f
        .call(
            "PATCH",
            path,
            Some("application/strategic-merge-patch+json"),
            cordon.as_bytes(),
        )
        .await;
    assert_eq!(
        (code, n["spec"]["unschedulable"].as_bool()),
        (200, Some(true))
    );
    assert!(n["spec"]["providerID"].is_string(), "the rest of spec kept");
    // A JSON patch is a list of operations, not a document that replaces the node.
    let ops = json!([
        {"op": "test", "path": "/metadata/annotations/x", "value": "1"},
        {"op": "replace", "path": "/metadata/annotations/x", "value": "2"},
        {"op": "add", "path": "/metadata/annotations/gitea-ci-autoscaler~1idle-since", "value": "t"},
        {"op": "remove", "path": "/spec/unschedulable"}
    ])
    .to_string();
    let (code, n) = f
        .call(
            "PATCH",
            path,
            Some("application/json-patch+json"),
            ops.as_bytes(),
        )
        .await;
    assert_eq!(code, 200, "{n}");
    assert_eq!(n["metadata"]["annotations"]["x"], "2");
    assert_eq!(
        n["metadata"]["annotations"]["gitea-ci-autoscaler/idle-since"],
        "t"
    );
    assert!(n["spec"]["unschedulable"].is_null());
    assert_eq!(n["kind"], "Node", "still a whole node");
    // A failing test operation changes nothing.
    let failing = json!([{"op": "test", "path": "/metadata/annotations/x", "value": "9"},
                         {"op": "remove", "path": "/metadata/labels"}])
    .to_string();
    assert_eq!(
        f.call(
            "PATCH",
            path,
            Some("application/json-patch+json"),
            failing.as_bytes()
        )
        .await
        .0,
        422
    );
    let (_, n) = f.call("GET", path, None, b"").await;
    assert!(n["metadata"]["labels"].is_object());
    // What it does not implement is refused, not guessed at.
    for ct in [
        Some("application/apply-patch+yaml"),
        Some("application/json"),
        None,
    ] {
        assert_eq!(
            f.call("PATCH", path, ct, merge.as_bytes()).await.0,
            415,
            "{ct:?}"
        );
    }
    assert_eq!(
        f.call("PATCH", path, Some("application/merge-patch+json"), b"[1]")
            .await
            .0,
        400
    );
    assert_eq!(
        f.call(
            "PATCH",
            path,
            Some("application/merge-patch+json"),
            b"{nope"
        )
        .await
        .0,
        400
    );
    let (_, n) = f.call("GET", path, None, b"").await;
    assert_eq!(
        n["metadata"]["name"], "ci-a",
        "no bad patch replaced the node"
    );
}

#[tokio::test]
async fn selectors_have_the_full_grammar() {
    let f = fake();
    let list = |sel: &str| {
        let f = f.clone();
        let q = format!(
            "/api/v1/nodes?labelSelector={}",
            sel.replace(' ', "%20").replace('!', "%21")
        );
        async move {
            let (code, body) = f.call("GET", &q, None, b"").await;
            assert_eq!(code, 200, "{q}: {body}");
            names(&body)
        }
    };
    assert_eq!(list("gitea-ci-autoscaler/owner=ci").await, ["ci-a", "ci-b"]);
    assert_eq!(
        list("gitea-ci-autoscaler/owner==ci").await,
        ["ci-a", "ci-b"]
    );
    assert_eq!(
        list("gitea-ci-autoscaler/pool!=arm").await,
        ["ci-a", "control"]
    );
    assert_eq!(
        list("gitea-ci-autoscaler/pool in (arm,x86)").await,
        ["ci-b"]
    );
    assert_eq!(
        list("gitea-ci-autoscaler/pool notin (arm)").await,
        ["ci-a", "control"]
    );
    assert_eq!(list("!gitea-ci-autoscaler/owner").await, ["control"]);
    assert_eq!(
        list("gitea-ci-autoscaler/owner,gitea-ci-autoscaler/pool=linux").await,
        ["ci-a"]
    );
    let (code, _) = f
        .call("GET", "/api/v1/nodes?labelSelector=a%20in%20b", None, b"")
        .await;
    assert_eq!(
        code, 400,
        "an unparsable selector is a 400, not an empty list"
    );
    // Field selectors, as kubectl drain asks for a node's pods.
    let (_, pods) = f
        .call(
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dci-b",
            None,
            b"",
        )
        .await;
    assert_eq!(names(&pods), ["runner-b"]);
    let (_, pods) = f
        .call(
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName!%3Dci-b,status.phase%3DRunning",
            None,
            b"",
        )
        .await;
    assert_eq!(names(&pods), ["runner-a", "web"]);
    assert_eq!(
        f.call(
            "GET",
            "/api/v1/pods?fieldSelector=spec.color%3Dred",
            None,
            b""
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn leases_are_kept_per_namespace() {
    let f = fake();
    let base = "/apis/coordination.k8s.io/v1/namespaces";
    let create = |ns: &str, holder: &str| {
        let (f, path) = (f.clone(), format!("{base}/{ns}/leases"));
        let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "gitea-ci-autoscaler"}, "spec": {"holderIdentity": holder}})
        .to_string();
        async move { f.call("POST", &path, None, body.as_bytes()).await.0 }
    };
    let holder = |ns: &str| {
        let (f, path) = (f.clone(), format!("{base}/{ns}/leases/gitea-ci-autoscaler"));
        async move {
            let (code, lease) = f.call("GET", &path, None, b"").await;
            (
                code,
                lease["spec"]["holderIdentity"].as_str().map(str::to_owned),
            )
        }
    };
    assert_eq!(create("a", "pod-a").await, 201);
    assert_eq!(create("b", "pod-b").await, 201);
    assert_eq!(create("a", "pod-c").await, 409, "the name is taken in a");
    assert_eq!(holder("a").await, (200, Some("pod-a".to_owned())));
    assert_eq!(holder("b").await, (200, Some("pod-b".to_owned())));
    assert_eq!(holder("c").await.0, 404);
    let bad = |method: &'static str, path: String, body: &'static [u8]| {
        let f = f.clone();
        async move { f.call(method, &path, None, body).await.0 }
    };
    assert_eq!(
        bad("POST", format!("{base}/a/leases"), b"not json").await,
        400
    );
    assert_eq!(
        bad("PUT", format!("{base}/a/leases/gitea-ci-autoscaler"), b"[").await,
        400
    );
}

#[tokio::test]
async fn no_request_panics_it_and_a_panic_elsewhere_does_not_poison_it() {
    let f = fake();
    for (method, path, body) in [
        (
            "GET",
            "/api/v1/nodes?limit=18446744073709551615&continue=18446744073709551615",
            "",
        ),
        ("GET", "/api/v1/nodes?limit=-1&continue=abc", ""),
        ("GET", "/api/v1/nodes?labelSelector=%ZZ%", ""),
        ("GET", "/api/v1/namespaces/x/pods/y/eviction", ""),
        ("POST", "/api/v1/namespaces/x/pods/y/eviction", "{"),
        ("POST", "/api/v1/namespaces/x/secrets", "[]"),
        ("DELETE", "/api/v1/nodes/", ""),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/x/leases/y",
            "{}",
        ),
        ("GET", "/", ""),
    ] {
        let (code, _) = f.call(method, path, None, body.as_bytes()).await;
        assert!((200..600).contains(&code), "{method} {path}");
    }
    let held = f.clone();
    let _ = std::thread::spawn(move || {
        let _guard = held.state();
        panic!("a test failed mid-update");
    })
    .join();
    assert_eq!(f.call("GET", "/api/v1/nodes", None, b"").await.0, 200);
}
