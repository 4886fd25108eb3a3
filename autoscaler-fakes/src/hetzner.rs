//! A loopback fake of Hetzner Cloud's server API, following the spec and the reference's fake
//! checklist: Bearer auth, `RateLimit-*` and `X-Correlation-Id` on every answer, a 3,600-request
//! bucket that answers 429 `rate_limit_exceeded` when empty, label selectors, pagination with
//! `meta.pagination`, name and `user_data` checks, capacity (412 `resource_unavailable`) and
//! quota (403 `resource_limit_exceeded`) errors, and scripted faults. The contract tests check
//! its bodies against the spec.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "hcloud-test-token-abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, Clone)]
pub struct State {
    pub servers: Vec<Value>,
    pub next_id: u64,
    /// Requests left in the bucket.
    pub remaining: u32,
    /// `(server_type, location)` pairs without capacity.
    pub no_capacity: Vec<(String, String)>,
    /// The project's server limit.
    pub max_servers: usize,
    /// Answers to give before any real one: `(status, code)`.
    pub faults: VecDeque<(u16, &'static str)>,
    /// The last `user_data` received.
    pub last_user_data: Option<String>,
    /// Every server's user data, by id, as Hetzner keeps it for the server's life.
    pub user_data: BTreeMap<u64, String>,
    /// The next this many requests answer 200 with a body cut off mid-JSON.
    pub garble_next: u32,
    /// Added to every answer (a slow network).
    pub delay: std::time::Duration,
    /// When each `POST /servers` arrived.
    pub create_requests: Vec<std::time::Instant>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            next_id: 1000,
            remaining: 3600,
            no_capacity: Vec::new(),
            max_servers: 100,
            faults: VecDeque::new(),
            last_user_data: None,
            user_data: BTreeMap::new(),
            garble_next: 0,
            delay: std::time::Duration::ZERO,
            create_requests: Vec::new(),
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeHetzner(pub Arc<Mutex<State>>);

pub fn server_type(name: &str) -> Value {
    json!({
        "id": 1, "name": name, "description": name.to_uppercase(), "category": "Dedicated vCPU",
        "cores": 8, "memory": 32.0, "disk": 240, "deprecated": false, "deprecation": null,
        "prices": [{"location": "nbg1",
            "price_hourly": {"net": "0.0800000000", "gross": "0.0952000000000000"},
            "price_monthly": {"net": "49.9000000000", "gross": "59.3810000000000000"},
            "included_traffic": 21_990_232_555_520_u64,
            "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000000000"}}],
        "storage_type": "local", "cpu_type": "dedicated", "architecture": "x86",
        "locations": [
            {"id": 1, "name": "nbg1", "deprecation": null, "available": true, "recommended": true},
            {"id": 2, "name": "fsn1", "deprecation": null, "available": false, "recommended": false}]
    })
}

fn location(name: &str) -> Value {
    json!({"id": 1, "name": name, "description": format!("{name} DC"), "country": "DE",
        "city": "Nuremberg", "latitude": 49.452102, "longitude": 11.076665, "network_zone": "eu-central"})
}

pub fn server(id: u64, name: &str, labels: Value, status: &str) -> Value {
    json!({
        "id": id, "name": name, "status": status, "created": "2026-11-25T10:00:00Z",
        "public_net": {"ipv4": null, "ipv6": {"id": id, "ip": "2001:db8::/64", "blocked": false, "dns_ptr": []},
                       "floating_ips": [], "firewalls": []},
        "private_net": [],
        "server_type": server_type("ccx33"),
        "location": location("nbg1"),
        "image": null, "iso": null, "rescue_enabled": false, "locked": false, "backup_window": null,
        "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21_990_232_555_520_u64,
        "protection": {"delete": false, "rebuild": false},
        "labels": labels, "volumes": [], "load_balancers": [], "primary_disk_size": 240
    })
}

fn action(id: u64, command: &str, server: u64) -> Value {
    json!({"id": id, "command": command, "status": "running", "progress": 0,
        "started": "2026-11-25T10:00:00Z", "finished": null,
        "resources": [{"id": server, "type": "server"}], "error": null})
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": code, "message": message, "details": null}}),
    )
}

/// Hetzner's label selector: `k==v`, `k=v`, `k!=v`, `k`, `!k`, ANDed by commas.
pub fn selects(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        if let Some((k, v)) = term.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k).is_none()
        } else {
            get(term).is_some()
        }
    })
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl FakeHetzner {
    pub fn new(state: State) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// One answer: status, body, and the `RateLimit-Remaining` it reports.
    pub fn answer(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        auth: Option<&str>,
        body: &[u8],
    ) -> (u16, Value, u32) {
        let mut s = self.0.lock().unwrap();
        if s.remaining == 0 {
            return with(
                error(
                    429,
                    "rate_limit_exceeded",
                    "limit of 3600 requests per hour reached",
                ),
                0,
            );
        }
        s.remaining -= 1;
        let left = s.remaining;
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return with(error(401, "unauthorized", "unable to authenticate"), left);
        }
        if let Some((status, code)) = s.faults.pop_front() {
            return with(error(status, code, "injected"), left);
        }
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let page = q("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let per_page = q("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(25)
            .clamp(1, 50);
        let Some(rel) = path.strip_prefix("/v1") else {
            return with(error(404, "not_found", "not found"), left);
        };
        let segments: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
        let out = match (method, segments.as_slice()) {
            ("GET", ["servers"]) => {
                let selector = q("label_selector").unwrap_or_default();
                let matching: Vec<Value> = s
                    .servers
                    .iter()
                    .filter(|sv| selects(&selector, &sv["labels"]))
                    .cloned()
                    .collect();
                (200, page_of("servers", &matching, page, per_page))
            }
            ("POST", ["servers"]) => {
                let req: Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(_) => return with(error(400, "json_error", "invalid JSON input"), left),
                };
                let name = req["name"].as_str().unwrap_or_default().to_owned();
                let (st, loc) = (
                    req["server_type"].as_str().unwrap_or_default().to_owned(),
                    req["location"].as_str().unwrap_or_default().to_owned(),
                );
                let user_data = req["user_data"].as_str().unwrap_or_default();
                if !valid_hostname(&name) {
                    error(422, "invalid_input", "invalid input in field 'name'")
                } else if user_data.len() > 32 * 1024 {
                    error(
                        422,
                        "invalid_input",
                        "invalid input in field 'user_data': is too long",
                    )
                } else if s.servers.iter().any(|sv| sv["name"] == name.as_str()) {
                    error(409, "uniqueness_error", "server name is already used")
                } else if s.no_capacity.contains(&(st.clone(), loc.clone())) {
                    error(412, "resource_unavailable", "error during placement")
                } else if s.servers.len() >= s.max_servers {
                    error(403, "resource_limit_exceeded", "server limit exceeded")
                } else {
                    s.last_user_data = Some(user_data.to_owned());
                    s.next_id += 1;
                    let id = s.next_id;
                    s.user_data.insert(id, user_data.to_owned());
                    let mut sv = server(id, &name, req["labels"].clone(), "initializing");
                    // Billing counts from the real creation time.
                    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                    sv["created"] = json!(now.to_string());
                    sv["server_type"] = server_type(&st);
                    sv["location"] = location(&loc);
                    s.servers.push(sv.clone());
                    let password = if req["ssh_keys"].is_array() {
                        Value::Null
                    } else {
                        json!("YItygq1v3GYjjMomLaKc")
                    };
                    (
                        201,
                        json!({"server": sv, "action": action(id * 10, "create_server", id),
                        "next_actions": [action(id * 10 + 1, "start_server", id)], "root_password": password}),
                    )
                }
            }
            (m @ ("PUT" | "DELETE" | "GET"), ["servers", id]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(i) = s.servers.iter().position(|sv| sv["id"] == id) else {
                    return with(error(404, "not_found", "server not found"), left);
                };
                match m {
                    "DELETE" => {
                        s.servers.remove(i);
                        (
                            200,
                            json!({"action": action(id * 10 + 2, "delete_server", id)}),
                        )
                    }
                    "PUT" => {
                        let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                        if let Some(labels) = req.get("labels") {
                            s.servers[i]["labels"] = labels.clone();
                        }
                        (200, json!({"server": s.servers[i].clone()}))
                    }
                    _ => (200, json!({"server": s.servers[i].clone()})),
                }
            }
            ("GET", ["ssh_keys"]) => {
                let all = [
                    json!({"id": 1, "name": "ops", "fingerprint": "b7:2f:30:a0:2f:6c:58:6c:21:04:58:61:ba:06:3b:2f",
                    "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@example", "labels": {},
                    "created": "2026-01-01T00:00:00Z"}),
                ];
                (200, page_of("ssh_keys", &all, page, per_page))
            }
            ("GET", ["server_types"]) => {
                let all = [server_type("ccx33"), server_type("cx33")];
                (200, page_of("server_types", &all, page, per_page))
            }
            _ => error(404, "not_found", "not found"),
        };
        with(out, left)
    }

    /// The server goes away behind the client's back (deleted in the console).
    pub fn remove_server(&self, id: u64) {
        self.0
            .lock()
            .unwrap()
            .servers
            .retain(|s| s["id"].as_u64() != Some(id));
    }

    pub fn server_labels(&self) -> BTreeMap<u64, Value> {
        self.0
            .lock()
            .unwrap()
            .servers
            .iter()
            .map(|s| (s["id"].as_u64().unwrap(), s["labels"].clone()))
            .collect()
    }
}

fn with((status, body): (u16, Value), left: u32) -> (u16, Value, u32) {
    (status, body, left)
}

/// One page of `all` under `key`, with Hetzner's `meta.pagination`.
fn page_of(key: &str, all: &[Value], page: usize, per_page: usize) -> Value {
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    json!({key: items, "meta": {"pagination": pagination(page, per_page, all.len())}})
}

fn pagination(page: usize, per_page: usize, total: usize) -> Value {
    let last = total.div_ceil(per_page).max(1);
    json!({"page": page, "per_page": per_page,
        "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
        "next_page": if page < last { json!(page + 1) } else { Value::Null },
        "last_page": last, "total_entries": total})
}

pub fn query_of(req: &Request) -> Vec<(String, String)> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Respond for FakeHetzner {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        {
            let mut s = self.0.lock().unwrap();
            if s.garble_next > 0 {
                s.garble_next -= 1;
                return ResponseTemplate::new(200).set_body_string("{\"servers\": [{\"id\": 4");
            }
            if req.method.as_str() == "POST" && req.url.path() == "/v1/servers" {
                s.create_requests.push(std::time::Instant::now());
            }
        }
        let delay = self.0.lock().unwrap().delay;
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let (status, body, left) = self.answer(
            req.method.as_str(),
            req.url.path(),
            &query_of(req),
            auth,
            &req.body,
        );
        ResponseTemplate::new(status)
            .set_delay(delay)
            .insert_header("RateLimit-Limit", "3600")
            .insert_header("RateLimit-Remaining", left.to_string().as_str())
            .insert_header(
                "RateLimit-Reset",
                (jiff::Timestamp::now().as_second() + i64::from(3600 - left))
                    .to_string()
                    .as_str(),
            )
            .insert_header("X-Correlation-Id", "fake-7f3a")
            .set_body_json(body)
    }
}
