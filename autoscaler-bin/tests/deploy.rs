//! The deployment files cannot rot: every manifest parses into its Kubernetes type and back
//! without losing a field, the kustomization lists files that exist, the Deployment and the chart
//! set only variables the daemon reads, and the chart's templates use only values it defines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
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
                "Service" => round_trip::<Service>(&doc, file),
                "NetworkPolicy" => round_trip::<NetworkPolicy>(&doc, file),
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
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    );
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
    for e in c.env.iter().flatten() {
        assert!(
            known.contains(&e.name),
            "deployment.yaml sets {} which the README does not document",
            e.name
        );
    }
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
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("- {name: ") {
                let name = rest.split(',').next().unwrap();
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
