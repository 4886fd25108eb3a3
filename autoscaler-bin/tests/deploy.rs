//! The deployment files cannot rot: every manifest parses into its Kubernetes type and back
//! without losing a field, the kustomization lists files that exist, the Deployment and the chart
//! set only variables the daemon reads, and the chart's templates use only values it defines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `doc` as `T` and back; a misspelt field would be dropped on the way and differ.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, file: &str) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {} does not parse: {e}", doc["kind"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, doc,
        "{file}: {} lost or changed a field",
        doc["kind"]
    );
}

/// Every `UPPER_CASE` variable the README's variable table names.
fn documented_variables() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("### The daemon's variables")
        .expect("the variables section");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n## ").map_or(section.len(), |i| i + 4)];
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_kustomize_manifest_parses_into_its_type() {
    let dir = root().join("deploy");
    let kustomization = &docs(&dir.join("kustomization.yaml"))[0];
    let mut kinds = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        for doc in docs(&dir.join(file)) {
            let kind = doc["kind"].as_str().unwrap().to_owned();
            match kind.as_str() {
                "Namespace" => round_trip::<Namespace>(&doc, file),
                "ServiceAccount" => round_trip::<ServiceAccount>(&doc, file),
                "ClusterRole" => round_trip::<ClusterRole>(&doc, file),
                "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&doc, file),
                "Role" => round_trip::<Role>(&doc, file),
                "RoleBinding" => round_trip::<RoleBinding>(&doc, file),
                "Secret" => round_trip::<Secret>(&doc, file),
                "Deployment" => round_trip::<Deployment>(&doc, file),
                "DaemonSet" => round_trip::<DaemonSet>(&doc, file),
                "Service" => round_trip::<Service>(&doc, file),
                "NetworkPolicy" => round_trip::<NetworkPolicy>(&doc, file),
                "ValidatingAdmissionPolicy" => {
                    round_trip::<ValidatingAdmissionPolicy>(&doc, file);
                }
                "ValidatingAdmissionPolicyBinding" => {
                    round_trip::<ValidatingAdmissionPolicyBinding>(&doc, file);
                }
                // Prometheus Operator CRDs: no k8s-openapi type; checked below.
                "ServiceMonitor" | "PrometheusRule" => {
                    assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1", "{file}");
                }
                other => panic!("{file}: unexpected kind {other}"),
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PrometheusRule",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    );
}

/// JSON into CEL values as the API server hands them to a policy: a Secret's `data` values are
/// bytes.
fn cel_value(v: &Value, bytes: bool) -> cel::Value {
    use std::collections::HashMap;
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => n.as_i64().map_or(
            cel::Value::Float(n.as_f64().unwrap_or(0.0)),
            cel::Value::Int,
        ),
        Value::String(s) if bytes => cel::Value::Bytes(std::sync::Arc::new(s.as_bytes().to_vec())),
        Value::String(s) => cel::Value::String(std::sync::Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(std::sync::Arc::new(
            a.iter().map(|x| cel_value(x, false)).collect(),
        )),
        Value::Object(o) => {
            let map: HashMap<String, cel::Value> = o
                .iter()
                .map(|(k, x)| (k.clone(), cel_value(x, k == "data")))
                .collect();
            map.into()
        }
    }
}

/// Whether the policy in deploy/join-tokens.yaml admits `operation` on `secret` by `user`.
fn admitted(operation: &str, user: &str, namespace: &str, secret: &Value) -> Result<(), String> {
    let docs = docs(&root().join("deploy/join-tokens.yaml"));
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .unwrap();
    let spec = &policy["spec"];
    let request = serde_json::json!({
        "operation": operation,
        "namespace": namespace,
        "userInfo": {"username": user},
    });
    let (object, old) = if operation == "DELETE" {
        (Value::Null, secret.clone())
    } else {
        (secret.clone(), Value::Null)
    };
    let run = |expr: &str, variables: Option<&cel::Value>| -> cel::Value {
        let program = cel::Program::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut ctx = cel::Context::default();
        ctx.add_variable_from_value("request", cel_value(&request, false));
        ctx.add_variable_from_value("object", cel_value(&object, false));
        ctx.add_variable_from_value("oldObject", cel_value(&old, false));
        if let Some(v) = variables {
            ctx.add_variable_from_value("variables", v.clone());
        }
        program
            .execute(&ctx)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    };
    for condition in spec["matchConditions"].as_array().unwrap() {
        if run(condition["expression"].as_str().unwrap(), None) != cel::Value::Bool(true) {
            return Ok(()); // Not the autoscaler: the policy does not apply.
        }
    }
    let mut vars = std::collections::HashMap::new();
    for v in spec["variables"].as_array().unwrap() {
        vars.insert(
            v["name"].as_str().unwrap().to_owned(),
            run(v["expression"].as_str().unwrap(), None),
        );
    }
    let variables: cel::Value = vars.into();
    for rule in spec["validations"].as_array().unwrap() {
        if run(rule["expression"].as_str().unwrap(), Some(&variables)) != cel::Value::Bool(true) {
            return Err(rule["message"].as_str().unwrap().to_owned());
        }
    }
    Ok(())
}

#[test]
fn the_admission_policy_lets_the_autoscaler_touch_only_its_own_join_tokens() {
    const SA: &str = "system:serviceaccount:gitea-ci-autoscaler:gitea-ci-autoscaler";
    // What the daemon creates (autoscaler-k3s/src/join_token.rs), as the API server folds it.
    let ours = serde_json::json!({
        "metadata": {"name": "bootstrap-token-abc123", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {
            "token-id": "abc123", "token-secret": "0123456789abcdef",
            "expiration": "2026-12-01T10:15:00Z",
            "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
            "auth-extra-groups": autoscaler_k3s::join_token::TOKEN_GROUP,
            "description": format!("{} ci joins server ci-linux-a1", autoscaler_k3s::join_token::DESCRIPTION_PREFIX),
        }
    });
    assert_eq!(admitted("CREATE", SA, "kube-system", &ours), Ok(()));
    assert_eq!(admitted("DELETE", SA, "kube-system", &ours), Ok(()));
    // Everything else in kube-system is out of its reach.
    let node_password = serde_json::json!({
        "metadata": {"name": "ci-linux-a1.node-password.k3s", "namespace": "kube-system"},
        "type": "Opaque", "data": {"hash": "x"}
    });
    assert!(admitted("DELETE", SA, "kube-system", &node_password).is_err());
    assert!(admitted("CREATE", SA, "kube-system", &node_password).is_err());
    let mut theirs = ours.clone();
    theirs["data"]["description"] = serde_json::json!("kubeadm init");
    assert!(admitted("DELETE", SA, "kube-system", &theirs).is_err());
    let mut admin = ours.clone();
    admin["data"]["auth-extra-groups"] = serde_json::json!("system:masters");
    assert_eq!(
        admitted("CREATE", SA, "kube-system", &admin),
        Err("a join token grants K3s's agent group and no other".to_owned())
    );
    let mut forever = ours.clone();
    forever["data"]
        .as_object_mut()
        .unwrap()
        .remove("expiration");
    assert!(admitted("CREATE", SA, "kube-system", &forever).is_err());
    assert!(admitted("UPDATE", SA, "kube-system", &ours).is_err());
    assert!(admitted("CREATE", SA, "default", &ours).is_err());
    // Other users are not this policy's business.
    assert_eq!(
        admitted("DELETE", "system:admin", "kube-system", &node_password),
        Ok(())
    );
}

#[test]
fn the_join_token_rbac_grants_no_read_of_any_secret() {
    let docs = docs(&root().join("deploy/join-tokens.yaml"));
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(role["metadata"]["namespace"], "kube-system");
    for rule in role["rules"].as_array().unwrap() {
        if rule["resources"][0] == "secrets" {
            assert_eq!(rule["verbs"], serde_json::json!(["create", "delete"]));
        }
    }
    let kustomization = &docs_of("deploy/kustomization.yaml")[0];
    assert!(
        kustomization.get("namespace").is_none(),
        "a kustomize namespace would move the Role out of kube-system"
    );
}

fn docs_of(path: &str) -> Vec<Value> {
    docs(&root().join(path))
}

#[test]
fn the_webhook_has_a_port_of_its_own_and_the_network_policy_admits_each_port_from_one_peer() {
    let dir = root().join("deploy");
    let deployment = &docs(&dir.join("deployment.yaml"))[0];
    let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    let named: Vec<(&str, i64)> = ports
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(named, [("http", 8080), ("webhook", 8081)]);
    let policy = &docs(&dir.join("networkpolicy.yaml"))[0];
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    let port_of = |r: &Value| r["ports"][0]["port"].as_str().unwrap().to_owned();
    assert_eq!(
        rules.iter().map(port_of).collect::<Vec<_>>(),
        ["webhook", "http"],
        "one rule per port, each from its own peer"
    );
    assert!(
        rules
            .iter()
            .all(|r| !r["from"].as_array().unwrap().is_empty())
    );
}

#[test]
fn the_deployment_sets_only_documented_variables_and_runs_as_nobody() {
    let known = documented_variables();
    for v in [
        "HETZNER_API_TOKEN",
        "GITEA_ADMIN_TOKEN",
        "CLUSTER_SECRET",
        "GITEA_API_URL",
        "MAX_NODES",
        "POD_NAME",
    ] {
        assert!(
            known.contains(v),
            "{v} missing from the README's table: {known:?}"
        );
    }
    let doc = &docs(&root().join("deploy/deployment.yaml"))[0];
    let d: Deployment = serde_json::from_value(doc.clone()).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let secret_example = &docs(&root().join("deploy/secret.example.yaml"))[0];
    let mounted: Vec<(String, String)> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    for e in c.env.iter().flatten() {
        // A secret's `_FILE` twin: documented with the secret, and a file of the mounted
        // Secret that the example holds.
        if let Some(base) = e.name.strip_suffix("_FILE") {
            assert!(known.contains(base), "{} is no secret's twin", e.name);
            let path = e.value.as_deref().unwrap();
            let (dir, key) = path.rsplit_once('/').unwrap();
            assert_eq!(key, base, "{path}");
            let volume = mounted
                .iter()
                .find(|(_, at)| at == dir)
                .unwrap_or_else(|| panic!("{path} is in no mounted volume"));
            let from = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == volume.0)
                .and_then(|v| v.secret.as_ref())
                .and_then(|s| s.secret_name.clone());
            assert_eq!(from.as_deref(), Some("gitea-ci-autoscaler"), "{path}");
            assert!(
                secret_example["stringData"].get(base).is_some(),
                "secret.example.yaml lacks {base}"
            );
            continue;
        }
        assert!(
            known.contains(&e.name),
            "deployment.yaml sets {} which the README does not document",
            e.name
        );
        assert!(
            ![
                "HETZNER_API_TOKEN",
                "GITEA_ADMIN_TOKEN",
                "GITEA_WEBHOOK_SECRET"
            ]
            .contains(&e.name.as_str()),
            "{} is passed as a variable; secrets are mounted as files",
            e.name
        );
    }
    assert!(c.env_from.is_none(), "no secret as environment variables");
    let secret = &docs(&root().join("deploy/secret.example.yaml"))[0];
    for key in secret["stringData"].as_object().unwrap().keys() {
        assert!(known.contains(key), "secret.example.yaml holds {key}");
    }
    let sc = pod.security_context.unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    let csc = c.security_context.clone().unwrap();
    assert_eq!(csc.read_only_root_filesystem, Some(true));
    assert_eq!(csc.allow_privilege_escalation, Some(false));
    let probes = (
        c.liveness_probe.clone().unwrap(),
        c.readiness_probe.clone().unwrap(),
    );
    assert_eq!(probes.0.http_get.unwrap().path.as_deref(), Some("/healthz"));
    assert_eq!(probes.1.http_get.unwrap().path.as_deref(), Some("/readyz"));
}

#[test]
fn the_rbac_grants_only_what_the_autoscaler_uses() {
    let docs = docs(&root().join("deploy/rbac.yaml"));
    let cluster: ClusterRole = serde_json::from_value(docs[0].clone()).unwrap();
    let granted: BTreeSet<String> = cluster
        .rules
        .unwrap()
        .iter()
        .flat_map(|r| {
            let verbs = r.verbs.clone();
            r.resources
                .clone()
                .unwrap()
                .into_iter()
                .flat_map(move |res| verbs.clone().into_iter().map(move |v| format!("{res}:{v}")))
        })
        .collect();
    for needed in [
        "nodes:list",
        "nodes:patch",
        "nodes:delete",
        "pods:list",
        "pods/eviction:create",
        "endpointslices:list",
        "namespaces:get",
    ] {
        assert!(granted.contains(needed), "{needed}");
    }
    // The namespace read is of kube-system alone.
    let namespaces = cluster_rules(&docs[0])
        .into_iter()
        .find(|r| r["resources"][0] == "namespaces")
        .expect("a namespaces rule");
    assert_eq!(
        namespaces["resourceNames"],
        serde_json::json!(["kube-system"])
    );
    for never in ["secrets:get", "secrets:list", "pods:delete", "nodes:create"] {
        assert!(!granted.contains(never), "{never} is more than needed");
    }
    let lease: Role = serde_json::from_value(docs[2].clone()).unwrap();
    assert_eq!(
        lease.rules.unwrap()[0].resources.as_deref(),
        Some(&["leases".to_owned()][..])
    );
}

fn cluster_rules(role: &Value) -> Vec<Value> {
    role["rules"].as_array().cloned().unwrap_or_default()
}

/// `.Values.a.b` references in a template.
fn value_paths(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(".Values.") {
        rest = &rest[i + ".Values.".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
            .collect();
        out.push(path.trim_end_matches('.').to_owned());
    }
    out
}

#[test]
fn the_chart_uses_only_values_it_defines_and_ships_the_same_alerts() {
    let chart = root().join("charts/gitea-ci-autoscaler");
    let values = &docs(&chart.join("values.yaml"))[0];
    let meta = &docs(&chart.join("Chart.yaml"))[0];
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["appVersion"], env!("CARGO_PKG_VERSION"));
    // The dashboard it ships is deploy/'s.
    assert_eq!(
        std::fs::read_to_string(chart.join("files/grafana-dashboard.json")).unwrap(),
        std::fs::read_to_string(root().join("deploy/monitoring/grafana-dashboard.json")).unwrap(),
        "the chart's dashboard differs from deploy/monitoring's"
    );
    let known = documented_variables();
    let mut templates = 0;
    for entry in std::fs::read_dir(chart.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("{{").count(),
            text.matches("}}").count(),
            "{}",
            path.display()
        );
        for p in value_paths(&text) {
            let mut v = values;
            for part in p.split('.') {
                v = v.get(part).unwrap_or_else(|| {
                    panic!(
                        "{} uses .Values.{p}, which values.yaml lacks",
                        path.display()
                    )
                });
            }
        }
        // The daemon's variables (the runner workload sets act_runner's own).
        let daemon = path.file_name().is_some_and(|f| f == "deployment.yaml");
        for line in text.lines().filter(|_| daemon) {
            if let Some(rest) = line.trim().strip_prefix("- {name: ") {
                let name = rest.split(',').next().unwrap();
                // A secret's `_FILE` twin is documented with the secret.
                let name = match name.strip_suffix("_FILE") {
                    Some(base) if !known.contains(name) => base,
                    _ => name,
                };
                if !name.contains("{{") {
                    assert!(
                        known.contains(name),
                        "{} sets {name}, undocumented",
                        path.display()
                    );
                }
            }
        }
        templates += 1;
    }
    assert!(templates >= 7);
    let deploy_rules = &docs(&root().join("deploy/monitoring/prometheusrule.yaml"))[0]["spec"];
    let chart_rules = &docs(&chart.join("files/prometheusrule-spec.yaml"))[0];
    assert_eq!(
        chart_rules, deploy_rules,
        "the chart's alerts differ from deploy/'s"
    );
}

#[test]
fn the_chart_ships_the_same_admission_rules_as_deploy() {
    let section = |path: &str| {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        let start = text.find("  validations:").expect("validations");
        let end = start + text[start..].find("\n---").expect("a next document");
        text[start..end].to_owned()
    };
    assert_eq!(
        section("charts/gitea-ci-autoscaler/templates/join-tokens.yaml"),
        section("deploy/join-tokens.yaml")
    );
}

/// The value of `name` in the Deployment's environment.
fn deployment_env(name: &str) -> Option<String> {
    let doc = &docs(&root().join("deploy/deployment.yaml"))[0];
    let d: Deployment = serde_json::from_value(doc.clone()).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// The runner workload lands on the machines the autoscaler creates and nowhere else, tolerates
/// their taint, is found by the autoscaler's selector and registers under its pod name; the
/// autoscaler itself stays off those machines; and applying `deploy/` never touches a Secret.
#[test]
fn the_runners_go_on_ci_nodes_only_and_the_autoscaler_never_does() {
    let dir = root().join("deploy/runners");
    let kustomization = &docs(&dir.join("kustomization.yaml"))[0];
    let mut daemonsets = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        for doc in docs(&dir.join(file)) {
            match doc["kind"].as_str().unwrap() {
                "Namespace" => {
                    round_trip::<Namespace>(&doc, file);
                    assert_eq!(doc["metadata"]["name"], "gitea-runners");
                }
                "DaemonSet" => {
                    round_trip::<DaemonSet>(&doc, file);
                    daemonsets.push(serde_json::from_value::<DaemonSet>(doc).unwrap());
                }
                other => panic!("{file}: unexpected kind {other}"),
            }
        }
    }
    assert_eq!(daemonsets.len(), 1);
    let ds = &daemonsets[0];
    let args = deployment_env("K3S_AGENT_ARGS").expect("the Deployment sets K3S_AGENT_ARGS");
    let flags: Vec<&str> = args.split_whitespace().collect();
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    // Scheduled by a label every new node gets.
    for (k, v) in pod.node_selector.iter().flatten() {
        assert!(
            flags.contains(&format!("--node-label={k}={v}").as_str()),
            "nodeSelector {k}={v} is not among the agent's labels: {args}"
        );
    }
    assert!(pod.node_selector.as_ref().is_some_and(|n| !n.is_empty()));
    // Tolerating every taint new nodes get, and there is one.
    let taints: Vec<&str> = flags
        .iter()
        .filter_map(|f| f.strip_prefix("--node-taint="))
        .collect();
    assert!(!taints.is_empty(), "CI nodes carry no taint: {args}");
    for taint in taints {
        let (kv, effect) = taint.split_once(':').unwrap();
        let (key, value) = kv.split_once('=').unwrap();
        assert!(
            pod.tolerations
                .iter()
                .flatten()
                .any(|t| t.key.as_deref() == Some(key)
                    && t.value.as_deref() == Some(value)
                    && t.effect.as_deref() == Some(effect)),
            "the runners do not tolerate {taint}"
        );
    }
    // Found by the autoscaler's default selector, named after the pod.
    let labels = ds
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap();
    assert_eq!(
        labels
            .labels
            .as_ref()
            .unwrap()
            .get("app")
            .map(String::as_str),
        Some("gitea-actions-runner"),
        "RUNNER_SELECTOR's default app=gitea-actions-runner"
    );
    let runner = &pod.containers[0];
    let name = runner
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "GITEA_RUNNER_NAME")
        .expect("GITEA_RUNNER_NAME");
    assert_eq!(
        name.value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.name")
    );
    // The autoscaler keeps off the machines it deletes.
    let doc = &docs(&root().join("deploy/deployment.yaml"))[0];
    let d: Deployment = serde_json::from_value(doc.clone()).unwrap();
    let spec = d.spec.unwrap().template.spec.unwrap();
    let terms = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .expect("a required node affinity")
        .node_selector_terms;
    for term in &terms {
        let exprs = term.match_expressions.clone().unwrap_or_default();
        assert!(
            exprs.iter().any(|e| e.key == "node-role"
                && e.operator == "NotIn"
                && e.values.iter().flatten().any(|v| v == "ci-runner")),
            "a term admits CI nodes: {term:?}"
        );
    }
    assert!(!terms.is_empty());
    // `kubectl apply -k deploy/` creates no Secret: it would replace the operator's.
    let main = &docs(&root().join("deploy/kustomization.yaml"))[0];
    for file in main["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        if root().join("deploy").join(file).is_dir() {
            continue;
        }
        for doc in docs(&root().join("deploy").join(file)) {
            assert_ne!(doc["kind"], "Secret", "{file} is applied with the rest");
        }
    }
}

/// GitHub's anchor for a Markdown heading: lowercase, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every alert has a runbook, and each runbook link lands on a heading of the README.
#[test]
fn every_alert_links_a_runbook_that_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let spec = &docs(&root().join("charts/gitea-ci-autoscaler/files/prometheusrule-spec.yaml"))[0];
    let mut alerts = 0;
    for group in spec["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
            let (page, fragment) = url.split_once('#').unwrap();
            assert!(page.ends_with("/README.md"), "{alert}: {url}");
            assert!(
                anchors.contains(fragment),
                "{alert}: {url} lands on no heading of the README"
            );
            alerts += 1;
        }
    }
    assert!(alerts >= 8, "{alerts}");
}
