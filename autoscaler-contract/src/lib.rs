//! Contract checks against the upstream OpenAPI specs kept in `specs/`.
//!
//! The clients are tested against loopback fakes; these checks keep the fakes and the clients
//! honest about the real services: a request must use a method, path and query parameters the
//! spec names, and a body the fake answers with must be one the spec's schema accepts. The
//! schema check covers the subset of JSON Schema the two specs use: `type`, `nullable`,
//! `properties`, `required`, `items`, `enum`, `additionalProperties`, `$ref`, `allOf`, `oneOf`,
//! `anyOf`, `minimum`, `maximum` and `format: date-time`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

mod schema;

/// Which dialect a spec is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// OpenAPI 2.0 (Gitea), produced by go-swagger from Go structs.
    Swagger2,
    /// OpenAPI 3.0 (Hetzner).
    OpenApi3,
}

/// One upstream spec and the documented differences between it and the real service.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    doc: Value,
    dialect: Dialect,
    base_path: String,
    /// `(METHOD, path template, parameter)` the service reads although the spec omits it.
    undocumented_query: Vec<(&'static str, &'static str, &'static str)>,
    /// Properties the spec requires but the service no longer sends.
    not_required: BTreeSet<&'static str>,
}

/// A request as a client sent it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path as sent, with the base path (e.g. `/api/v1/admin/actions/jobs`).
    pub path: &'a str,
    /// Query parameter names (repeats allowed).
    pub query: Vec<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl<'a> Request<'a> {
    /// A request a wiremock server recorded (query names in order; the body parsed as JSON).
    pub fn recorded(r: &'a wiremock::Request) -> Self {
        Self {
            method: r.method.as_str(),
            path: r.url.path(),
            query: r.url.query_pairs().map(|(k, _)| k.into_owned()).collect(),
            body: (!r.body.is_empty()).then(|| {
                serde_json::from_slice(&r.body).unwrap_or(Value::String("<not JSON>".into()))
            }),
        }
    }
}

fn spec_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("specs")
        .join(file)
}

fn load(file: &str) -> Value {
    let path = spec_path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the spec {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the spec {file} is not JSON: {e}"))
}

impl Spec {
    /// Gitea 1.26.4's spec.
    pub fn gitea() -> Self {
        let doc = load("gitea-swagger.v1.26.4.json");
        let base_path = doc["basePath"].as_str().unwrap_or("").to_owned();
        let mut undocumented_query = Vec::new();
        // Runner lists read page and limit (GetListOptions), although the spec omits them.
        for scope in [
            "/admin/actions/runners",
            "/orgs/{org}/actions/runners",
            "/user/actions/runners",
            "/repos/{owner}/{repo}/actions/runners",
        ] {
            undocumented_query.push(("GET", scope, "page"));
            undocumented_query.push(("GET", scope, "limit"));
        }
        Self {
            name: "gitea 1.26.4",
            doc,
            dialect: Dialect::Swagger2,
            base_path,
            undocumented_query,
            not_required: BTreeSet::new(),
        }
    }

    /// Hetzner Cloud's spec.
    pub fn hetzner() -> Self {
        let doc = load("hcloud-openapi.json");
        Self {
            name: "hcloud",
            doc,
            dialect: Dialect::OpenApi3,
            base_path: "/v1".to_owned(),
            undocumented_query: Vec::new(),
            // Removed from the API on 2026-07-01; this copy of the spec still requires it.
            not_required: BTreeSet::from(["datacenter"]),
        }
    }

    /// The path template (e.g. `/servers/{id}`) a concrete path matches, after the base path.
    pub fn template_of(&self, path: &str) -> Result<String, String> {
        let rel = path.strip_prefix(&self.base_path).ok_or_else(|| {
            format!(
                "{}: {path} is outside the base path {}",
                self.name, self.base_path
            )
        })?;
        let parts: Vec<&str> = rel.split('/').collect();
        let paths = self.doc["paths"].as_object().expect("paths");
        let mut best: Option<(&String, usize)> = None;
        for template in paths.keys() {
            let tparts: Vec<&str> = template.split('/').collect();
            if tparts.len() != parts.len() {
                continue;
            }
            let mut literal = 0;
            let ok = tparts.iter().zip(&parts).all(|(t, p)| {
                if t.starts_with('{') && t.ends_with('}') {
                    !p.is_empty()
                } else {
                    literal += 1;
                    t == p
                }
            });
            // The most literal match wins: /servers/actions beats /servers/{id}.
            if ok && best.is_none_or(|(_, l)| literal > l) {
                best = Some((template, literal));
            }
        }
        best.map(|(t, _)| t.clone())
            .ok_or_else(|| format!("{}: no path in the spec matches {rel}", self.name))
    }

    fn operation(&self, method: &str, template: &str) -> Result<&Value, String> {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        if op.is_null() {
            return Err(format!(
                "{}: the spec has no {method} {template}",
                self.name
            ));
        }
        Ok(op)
    }

    fn parameters(&self, method: &str, template: &str) -> Result<Vec<Value>, String> {
        let op = self.operation(method, template)?;
        let mut out = Vec::new();
        let shared = self.doc["paths"][template]["parameters"].as_array();
        for p in op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(shared.into_iter().flatten())
        {
            out.push(self.resolve(p).clone());
        }
        Ok(out)
    }

    pub(crate) fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..16 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return v;
            };
            v = self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or(&Value::Null);
        }
        v
    }

    /// Checks a request: its method and path exist, every query parameter is one the operation
    /// declares (or a documented exception), and a JSON body fits the request schema.
    pub fn check_request(&self, req: &Request<'_>) -> Result<(), String> {
        let template = self.template_of(req.path)?;
        let params = self.parameters(req.method, &template)?;
        for name in &req.query {
            let declared = params
                .iter()
                .any(|p| p["in"] == "query" && p["name"].as_str() == Some(name));
            let excused = self
                .undocumented_query
                .iter()
                .any(|(m, t, n)| *m == req.method && *t == template && n == name);
            if !declared && !excused {
                return Err(format!(
                    "{}: {} {template} has no query parameter `{name}`",
                    self.name, req.method
                ));
            }
        }
        if let Some(body) = &req.body {
            let schema = match self.dialect {
                Dialect::Swagger2 => params
                    .iter()
                    .find(|p| p["in"] == "body")
                    .map(|p| &p["schema"])
                    .cloned(),
                Dialect::OpenApi3 => {
                    let op = self.operation(req.method, &template)?;
                    let s =
                        &self.resolve(&op["requestBody"])["content"]["application/json"]["schema"];
                    (!s.is_null()).then(|| s.clone())
                }
            };
            let schema = schema
                .ok_or_else(|| format!("{}: {} {template} takes no body", self.name, req.method))?;
            self.validate(&schema, body).map_err(|e| {
                format!(
                    "{}: request body of {} {template}: {e}",
                    self.name, req.method
                )
            })?;
        }
        Ok(())
    }

    /// Checks that `body` is what the spec says `method path` answers with `status`.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let template = self.template_of(path)?;
        let op = self.operation(method, &template)?;
        let responses = &op["responses"];
        let code = status.to_string();
        let class = format!("{}xx", status / 100);
        let response = [code.as_str(), class.as_str(), "default"]
            .iter()
            .map(|k| &responses[*k])
            .find(|r| !r.is_null())
            .ok_or_else(|| {
                format!(
                    "{}: {method} {template} documents no {status} response",
                    self.name
                )
            })?;
        let response = self.resolve(response);
        let schema = match self.dialect {
            Dialect::Swagger2 => &response["schema"],
            Dialect::OpenApi3 => &response["content"]["application/json"]["schema"],
        };
        if schema.is_null() {
            // The spec describes no body (Gitea's `notFound`, an empty 204): nothing to check.
            return Ok(());
        }
        self.validate(schema, body)
            .map_err(|e| format!("{}: {method} {template} {status}: {e}", self.name))
    }

    /// Validates `value` against a schema of this spec (refs resolve within the spec).
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        schema::Validator { spec: self }.check(schema, value, "$")
    }

    /// Validates `value` against a named definition: `#/definitions/X` or
    /// `#/components/schemas/X`.
    pub fn validate_named(&self, name: &str, value: &Value) -> Result<(), String> {
        let pointer = match self.dialect {
            Dialect::Swagger2 => format!("#/definitions/{name}"),
            Dialect::OpenApi3 => format!("#/components/schemas/{name}"),
        };
        self.validate(&serde_json::json!({ "$ref": pointer }), value)
    }

    pub(crate) fn go_nulls(&self) -> bool {
        self.dialect == Dialect::Swagger2
    }

    pub(crate) fn is_not_required(&self, name: &str) -> bool {
        self.not_required.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_resolve_to_the_most_literal_template() {
        let h = Spec::hetzner();
        assert_eq!(h.template_of("/v1/servers/42").unwrap(), "/servers/{id}");
        assert_eq!(h.template_of("/v1/servers").unwrap(), "/servers");
        assert!(h.template_of("/v2/servers").is_err());
        let g = Spec::gitea();
        assert_eq!(
            g.template_of("/api/v1/admin/actions/runners/7").unwrap(),
            "/admin/actions/runners/{runner_id}"
        );
    }

    #[test]
    fn unknown_query_parameters_and_methods_are_refused() {
        let g = Spec::gitea();
        let ok = Request {
            method: "GET",
            path: "/api/v1/admin/actions/jobs",
            query: vec!["status".into(), "page".into(), "limit".into()],
            body: None,
        };
        g.check_request(&ok).unwrap();
        let bad = Request {
            query: vec!["per_page".into()],
            ..ok.clone()
        };
        assert!(g.check_request(&bad).unwrap_err().contains("per_page"));
        let wrong_method = Request {
            method: "DELETE",
            ..ok
        };
        assert!(g.check_request(&wrong_method).is_err());
    }

    #[test]
    fn bodies_are_checked_against_the_schema() {
        let g = Spec::gitea();
        let good = json!({"runners": [{"id": 1, "name": "a", "status": "online", "busy": false,
            "disabled": false, "ephemeral": false, "labels": [{"id": 0, "name": "x", "type": "custom"}]}],
            "total_count": 1});
        g.check_response("GET", "/api/v1/admin/actions/runners", 200, &good)
            .unwrap();
        let bad = json!({"runners": [{"id": "one"}], "total_count": 1});
        let e = g
            .check_response("GET", "/api/v1/admin/actions/runners", 200, &bad)
            .unwrap_err();
        assert!(e.contains("runners[0].id"), "{e}");
        let h = Spec::hetzner();
        let err = json!({"error": {"code": "not_found", "message": "x", "details": null}});
        h.check_response("DELETE", "/v1/servers/1", 404, &err)
            .unwrap();
        let missing = json!({"error": {"code": "not_found"}});
        assert!(
            h.check_response("DELETE", "/v1/servers/1", 404, &missing)
                .is_err()
        );
    }
}
