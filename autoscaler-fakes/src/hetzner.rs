//! A loopback fake of Hetzner Cloud's server API, following the spec and the reference's fake
//! checklist: Bearer auth, `RateLimit-*` and `X-Correlation-Id` on every answer, a 3,600-request
//! bucket refilled at one request a second that answers 429 `rate_limit_exceeded` when empty,
//! the full label grammar (422 `invalid_input` for a bad key or value) and selector grammar,
//! the `name`, `status` and `sort` filters, pagination with `meta.pagination`, create validated
//! against the fake's own catalogue (server types, the locations each is available in, images,
//! SSH keys), name and `user_data` checks, capacity (412 `resource_unavailable`) and quota (403
//! `resource_limit_exceeded`) errors, actions, and scripted faults. No request panics it, and a
//! panic elsewhere while its lock was held does not poison it. The contract tests check its
//! bodies against the spec.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::selector::{self, label_word, valid_key};

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
    /// Requests the bucket regains each second (Hetzner: 1), up to 3,600.
    pub refill_per_second: u32,
    /// When the bucket was last refilled.
    pub refilled: Option<Instant>,
    /// The server types sold, each with the locations it is available in.
    pub server_types: Vec<Value>,
    /// The images servers can be created from.
    pub images: Vec<String>,
    /// The project's SSH keys.
    pub ssh_keys: Vec<Value>,
    /// Every action, by id.
    pub actions: BTreeMap<u64, Value>,
    pub next_action_id: u64,
    /// Snapshot and backup images (system images are [`Self::images`]).
    pub snapshots: Vec<Value>,
    /// How many times a bake server (user data holding [`BAKE_MARKER`]) is read before its
    /// script has powered it off.
    pub bake_reads_to_off: u32,
    /// Bake servers never power off (the script failed).
    pub bake_hangs: bool,
    /// Reads of each bake server so far.
    pub bake_reads: BTreeMap<u64, u32>,
}

/// What a bake's user data holds (`autoscaler_hetzner::bake::BAKE_MARKER`).
pub const BAKE_MARKER: &str = "gitea-ci-autoscaler bake";

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
            refill_per_second: 1,
            refilled: None,
            server_types: vec![server_type("ccx33"), server_type("cx33")],
            images: ["ubuntu-24.04", "ubuntu-22.04", "debian-12", "debian-13"]
                .map(str::to_owned)
                .to_vec(),
            ssh_keys: vec![json!({"id": 1, "name": "ops",
                "fingerprint": "b7:2f:30:a0:2f:6c:58:6c:21:04:58:61:ba:06:3b:2f",
                "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@example", "labels": {},
                "created": "2026-01-01T00:00:00Z"})],
            actions: BTreeMap::new(),
            next_action_id: 1,
            snapshots: Vec::new(),
            bake_reads_to_off: 2,
            bake_hangs: false,
            bake_reads: BTreeMap::new(),
        }
    }
}

impl State {
    /// Regains what a second at a time has refilled since the last request.
    fn refill(&mut self, now: Instant) {
        let Some(last) = self.refilled else {
            self.refilled = Some(now);
            return;
        };
        let seconds = now.saturating_duration_since(last).as_secs();
        if seconds == 0 {
            return;
        }
        let gained = seconds.saturating_mul(u64::from(self.refill_per_second));
        let gained = u32::try_from(gained).unwrap_or(u32::MAX);
        self.remaining = self.remaining.saturating_add(gained).min(3600);
        self.refilled = Some(last + std::time::Duration::from_secs(seconds));
    }

    /// A new action on `server`, running until it is first read.
    fn act(&mut self, command: &str, server: u64) -> Value {
        let id = self.next_action_id;
        self.next_action_id = self.next_action_id.saturating_add(1);
        let a = action(id, command, server);
        self.actions.insert(id, a.clone());
        a
    }

    /// Bake servers run their script while they are read: running after the first read, off
    /// after [`Self::bake_reads_to_off`] (unless the script hangs).
    fn advance_bakes(&mut self) {
        for sv in &mut self.servers {
            let Some(id) = sv["id"].as_u64() else {
                continue;
            };
            if !self
                .user_data
                .get(&id)
                .is_some_and(|u| u.contains(BAKE_MARKER))
            {
                continue;
            }
            let reads = self.bake_reads.entry(id).or_insert(0);
            *reads = reads.saturating_add(1);
            if sv["status"] == "initializing" {
                sv["status"] = json!("running");
            } else if sv["status"] == "running"
                && !self.bake_hangs
                && *reads > self.bake_reads_to_off
            {
                sv["status"] = json!("off");
            }
        }
    }

    /// Images being written are available once they have been seen `creating` once.
    fn advance_images(&mut self) {
        for image in &mut self.snapshots {
            if image["status"] == "creating" {
                if image["seen_creating"] == true {
                    image["status"] = json!("available");
                    image["image_size"] = json!(3.2);
                    if let Some(o) = image.as_object_mut() {
                        o.remove("seen_creating");
                    }
                } else {
                    image["seen_creating"] = json!(true);
                }
            }
        }
    }

    /// Every image the project sees: system images by name, then snapshots and backups.
    fn all_images(&self) -> Vec<Value> {
        let system = self.images.iter().enumerate().map(|(i, name)| {
            let (flavor, version) = name.split_once('-').unwrap_or((name, ""));
            json!({"id": i + 1, "type": "system", "status": "available", "name": name,
                "description": name, "image_size": null, "disk_size": 5,
                "created": "2024-04-25T00:00:00Z", "created_from": null, "bound_to": null,
                "os_flavor": flavor, "os_version": version, "rapid_deploy": true,
                "protection": {"delete": false}, "deprecated": null, "deleted": null,
                "labels": {}, "architecture": "x86"})
        });
        system
            .chain(self.snapshots.iter().map(|i| {
                let mut i = i.clone();
                if let Some(o) = i.as_object_mut() {
                    o.remove("seen_creating");
                }
                i
            }))
            .collect()
    }

    /// Whether a snapshot of `server` is being written (Hetzner locks the server meanwhile).
    fn locked(&self, server: u64) -> bool {
        self.snapshots
            .iter()
            .any(|i| i["status"] == "creating" && i["created_from"]["id"] == server)
    }

    /// The action as it is now: a running one has finished by the time it is read again.
    fn read_action(&mut self, id: u64) -> Option<Value> {
        let a = self.actions.get_mut(&id)?;
        let seen = a.clone();
        if a["status"] == "running" {
            a["status"] = json!("success");
            a["progress"] = json!(100);
            a["finished"] = json!("2026-11-25T10:00:05Z");
        }
        Some(seen)
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

/// The `label_selector` parameter, or Hetzner's 422 when it does not parse.
fn label_selector(text: Option<String>) -> Result<selector::Selector, (u16, Value)> {
    selector::parse(&text.unwrap_or_default()).map_err(|e| {
        error(
            422,
            "invalid_input",
            &format!("invalid label_selector: {e}"),
        )
    })
}

/// Whether `labels` match `selector` (a selector that does not parse matches nothing).
pub fn selects(selector_text: &str, labels: &Value) -> bool {
    selector::parse(selector_text).is_ok_and(|terms| terms.matches(labels))
}

/// Hetzner's label rules: an object of strings, each key valid and not under the reserved
/// `hetzner.cloud/` prefix, each value empty or a label word.
fn check_labels(labels: &Value) -> Result<(), String> {
    let Some(map) = labels.as_object() else {
        return Err("labels must be an object".to_owned());
    };
    for (k, v) in map {
        if !valid_key(k) || k.starts_with("hetzner.cloud/") {
            return Err(format!("invalid label key {k:?}"));
        }
        match v.as_str() {
            Some(v) if v.is_empty() || label_word(v) => {}
            _ => return Err(format!("invalid value for label {k:?}")),
        }
    }
    Ok(())
}

/// Hetzner's 422 for a request whose `labels` break the rules, if they do.
fn bad_labels(req: &Value) -> Option<(u16, Value)> {
    let e = check_labels(req.get("labels")?).err()?;
    Some(error(
        422,
        "invalid_input",
        &format!("invalid input in field 'labels': {e}"),
    ))
}

/// The statuses a server can have.
const STATUSES: [&str; 9] = [
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
];

/// Sorts `servers` by the `sort` parameters (`id|name|created`, each `:asc` or `:desc`), the
/// first the most significant.
fn sort_servers(servers: &mut [Value], sorts: &[String]) -> Result<(), String> {
    let mut keys = Vec::new();
    for sort in sorts.iter().flat_map(|s| s.split(',')) {
        let (field, order) = sort.split_once(':').unwrap_or((sort, "asc"));
        if !["id", "name", "created"].contains(&field) || !["asc", "desc"].contains(&order) {
            return Err(format!("invalid sort {sort:?}"));
        }
        keys.push((field.to_owned(), order == "desc"));
    }
    for (field, desc) in keys.iter().rev() {
        servers.sort_by(|a, b| {
            let ord = match field.as_str() {
                "id" => a["id"].as_u64().cmp(&b["id"].as_u64()),
                f => a[f].as_str().cmp(&b[f].as_str()),
            };
            if *desc { ord.reverse() } else { ord }
        });
    }
    Ok(())
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

/// The locations the fake knows.
const KNOWN_LOCATIONS: [&str; 3] = ["nbg1", "fsn1", "hel1"];

impl FakeHetzner {
    pub fn new(state: State) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// The state; a panic elsewhere while it was held leaves it as it was, not poisoned.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut s = self.state();
        s.refill(Instant::now());
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
        let all = |k: &str| -> Vec<String> {
            query
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .collect()
        };
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
                s.advance_bakes();
                let terms = match label_selector(q("label_selector")) {
                    Ok(t) => t,
                    Err(e) => return with(e, left),
                };
                let statuses = all("status");
                if let Some(bad) = statuses.iter().find(|st| !STATUSES.contains(&st.as_str())) {
                    return with(
                        error(422, "invalid_input", &format!("invalid status {bad:?}")),
                        left,
                    );
                }
                let name = q("name");
                let mut matching: Vec<Value> = s
                    .servers
                    .iter()
                    .filter(|sv| terms.matches(&sv["labels"]))
                    .filter(|sv| name.as_ref().is_none_or(|n| sv["name"] == n.as_str()))
                    .filter(|sv| {
                        statuses.is_empty() || statuses.iter().any(|st| sv["status"] == st.as_str())
                    })
                    .cloned()
                    .collect();
                if let Err(e) = sort_servers(&mut matching, &all("sort")) {
                    return with(error(422, "invalid_input", &e), left);
                }
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
                let image = match &req["image"] {
                    Value::String(i) => i.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                let sold = s
                    .server_types
                    .iter()
                    .find(|t| t["name"] == st.as_str())
                    .cloned();
                let available_here = sold.as_ref().and_then(|t| {
                    t["locations"]
                        .as_array()?
                        .iter()
                        .find(|l| l["name"] == loc.as_str())
                        .map(|l| l["available"].as_bool().unwrap_or(true))
                });
                let unknown_key = req["ssh_keys"].as_array().and_then(|keys| {
                    keys.iter()
                        .find(|k| {
                            !s.ssh_keys.iter().any(|known| {
                                known["name"] == **k
                                    || known["id"].as_u64().map(|id| id.to_string())
                                        == k.as_str().map(str::to_owned)
                                    || known["id"] == **k
                            })
                        })
                        .cloned()
                });
                if let Some(e) = bad_labels(&req) {
                    e
                } else if sold.is_none() {
                    error(
                        422,
                        "invalid_input",
                        &format!("server type {st:?} not found"),
                    )
                } else if !KNOWN_LOCATIONS.contains(&loc.as_str()) {
                    error(422, "invalid_input", &format!("location {loc:?} not found"))
                } else if !s.images.contains(&image)
                    && !s.snapshots.iter().any(|i| {
                        i["id"].as_u64().map(|id| id.to_string()) == Some(image.clone())
                            && i["status"] == "available"
                    })
                {
                    error(422, "invalid_input", &format!("image {image:?} not found"))
                } else if let Some(k) = unknown_key {
                    error(422, "invalid_input", &format!("ssh key {k} not found"))
                } else if available_here != Some(true) {
                    error(
                        412,
                        "resource_unavailable",
                        &format!("server type {st} is not available in {loc}"),
                    )
                } else if !valid_hostname(&name) {
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
                    sv["created"] = json!(now_rfc3339());
                    sv["server_type"] = server_type(&st);
                    sv["location"] = location(&loc);
                    s.servers.push(sv.clone());
                    let password = if req["ssh_keys"].is_array() {
                        Value::Null
                    } else {
                        json!("YItygq1v3GYjjMomLaKc")
                    };
                    let create = s.act("create_server", id);
                    let start = s.act("start_server", id);
                    (
                        201,
                        json!({"server": sv, "action": create,
                        "next_actions": [start], "root_password": password}),
                    )
                }
            }
            (m @ ("PUT" | "DELETE" | "GET"), ["servers", id]) => {
                let id: u64 = id.parse().unwrap_or(0);
                if m == "GET" {
                    s.advance_bakes();
                }
                let Some(i) = s.servers.iter().position(|sv| sv["id"] == id) else {
                    return with(error(404, "not_found", "server not found"), left);
                };
                match m {
                    "DELETE" if s.locked(id) => error(423, "locked", "server is locked"),
                    "DELETE" => {
                        s.servers.remove(i);
                        (200, json!({"action": s.act("delete_server", id)}))
                    }
                    "PUT" => {
                        let Ok(req) = serde_json::from_slice::<Value>(body) else {
                            return with(error(400, "json_error", "invalid JSON input"), left);
                        };
                        if let Some(e) = bad_labels(&req) {
                            return with(e, left);
                        }
                        if let Some(labels) = req.get("labels") {
                            s.servers[i]["labels"] = labels.clone();
                        }
                        (200, json!({"server": s.servers[i].clone()}))
                    }
                    _ => (200, json!({"server": s.servers[i].clone()})),
                }
            }
            ("POST", ["servers", id, "actions", "create_image"]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(sv) = s.servers.iter().find(|sv| sv["id"] == id).cloned() else {
                    return with(error(404, "not_found", "server not found"), left);
                };
                let Ok(req) = serde_json::from_slice::<Value>(body) else {
                    return with(error(400, "json_error", "invalid JSON input"), left);
                };
                let kind = req["type"].as_str().unwrap_or("snapshot");
                if !req.is_object() || !["snapshot", "backup"].contains(&kind) {
                    error(422, "invalid_input", "invalid input in field 'type'")
                } else if let Some(e) = bad_labels(&req) {
                    e
                } else if s.locked(id) {
                    error(423, "locked", "server is locked")
                } else {
                    s.next_id += 1;
                    let image_id = s.next_id;
                    let image = json!({"id": image_id, "type": kind, "status": "creating",
                        "name": null,
                        "description": req["description"].as_str().map_or_else(
                            || format!("snapshot of {}", sv["name"].as_str().unwrap_or_default()),
                            str::to_owned),
                        "image_size": null, "disk_size": sv["primary_disk_size"],
                        "created": now_rfc3339(), "created_from": {"id": id, "name": sv["name"]},
                        "bound_to": null, "os_flavor": "ubuntu", "os_version": null,
                        "rapid_deploy": false, "protection": {"delete": false},
                        "deprecated": null, "deleted": null,
                        "labels": req.get("labels").cloned().unwrap_or_else(|| json!({})),
                        "architecture": sv["server_type"]["architecture"]});
                    s.snapshots.push(image.clone());
                    let mut action = s.act("create_image", id);
                    action["resources"] = json!([{"id": id, "type": "server"},
                        {"id": image_id, "type": "image"}]);
                    (201, json!({"image": image, "action": action}))
                }
            }
            ("GET", ["images"]) => {
                s.advance_images();
                let terms = match label_selector(q("label_selector")) {
                    Ok(t) => t,
                    Err(e) => return with(e, left),
                };
                let (types, statuses) = (all("type"), all("status"));
                let bad = types
                    .iter()
                    .find(|t| !["system", "app", "snapshot", "backup"].contains(&t.as_str()))
                    .or_else(|| {
                        statuses.iter().find(|t| {
                            !["available", "creating", "unavailable"].contains(&t.as_str())
                        })
                    });
                if let Some(bad) = bad {
                    return with(
                        error(422, "invalid_input", &format!("invalid filter {bad:?}")),
                        left,
                    );
                }
                let (name, arch) = (q("name"), q("architecture"));
                let mut matching: Vec<Value> = s
                    .all_images()
                    .into_iter()
                    .filter(|i| terms.matches(&i["labels"]))
                    .filter(|i| types.is_empty() || types.iter().any(|t| i["type"] == t.as_str()))
                    .filter(|i| {
                        statuses.is_empty() || statuses.iter().any(|t| i["status"] == t.as_str())
                    })
                    .filter(|i| name.as_ref().is_none_or(|n| i["name"] == n.as_str()))
                    .filter(|i| {
                        arch.as_ref()
                            .is_none_or(|a| i["architecture"] == a.as_str())
                    })
                    .collect();
                if let Err(e) = sort_servers(&mut matching, &all("sort")) {
                    return with(error(422, "invalid_input", &e), left);
                }
                (200, page_of("images", &matching, page, per_page))
            }
            (m @ ("GET" | "PUT" | "DELETE"), ["images", id]) => {
                s.advance_images();
                let id: u64 = id.parse().unwrap_or(0);
                let system = s.all_images().into_iter().find(|i| i["id"] == id);
                let Some(i) = s.snapshots.iter().position(|i| i["id"] == id) else {
                    return with(
                        match (m, system) {
                            ("GET", Some(image)) => (200, json!({"image": image})),
                            (_, Some(_)) => error(
                                422,
                                "invalid_input",
                                "system images cannot be changed or deleted",
                            ),
                            _ => error(404, "not_found", "image not found"),
                        },
                        left,
                    );
                };
                match m {
                    "DELETE" if s.snapshots[i]["status"] == "creating" => {
                        error(423, "locked", "image is being created")
                    }
                    "DELETE" => {
                        s.snapshots.remove(i);
                        (204, Value::Null)
                    }
                    "PUT" => {
                        let Ok(req) = serde_json::from_slice::<Value>(body) else {
                            return with(error(400, "json_error", "invalid JSON input"), left);
                        };
                        if let Some(e) = bad_labels(&req) {
                            return with(e, left);
                        }
                        if let Some(labels) = req.get("labels") {
                            s.snapshots[i]["labels"] = labels.clone();
                        }
                        if let Some(d) = req.get("description").and_then(Value::as_str) {
                            s.snapshots[i]["description"] = json!(d);
                        }
                        let image = s.all_images().into_iter().find(|i| i["id"] == id);
                        (200, json!({ "image": image }))
                    }
                    _ => {
                        let image = s.all_images().into_iter().find(|i| i["id"] == id);
                        (200, json!({ "image": image }))
                    }
                }
            }
            ("GET", ["ssh_keys"]) => (200, page_of("ssh_keys", &s.ssh_keys, page, per_page)),
            ("GET", ["server_types"]) => (
                200,
                page_of("server_types", &s.server_types, page, per_page),
            ),
            ("GET", ["actions", id]) => {
                match id.parse::<u64>().ok().and_then(|id| s.read_action(id)) {
                    Some(a) => (200, json!({"action": a})),
                    None => error(404, "not_found", "action not found"),
                }
            }
            ("GET", ["actions"]) => {
                let ids: Vec<u64> = all("id").iter().filter_map(|i| i.parse().ok()).collect();
                let found: Vec<Value> = ids.iter().filter_map(|id| s.read_action(*id)).collect();
                (200, page_of("actions", &found, page, per_page))
            }
            ("GET", ["servers", id, "actions"]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let of: Vec<u64> = s
                    .actions
                    .iter()
                    .filter(|(_, a)| a["resources"][0]["id"] == id)
                    .map(|(k, _)| *k)
                    .collect();
                let found: Vec<Value> = of.iter().filter_map(|k| s.read_action(*k)).collect();
                (200, page_of("actions", &found, page, per_page))
            }
            _ => error(404, "not_found", "not found"),
        };
        with(out, left)
    }

    /// The server goes away behind the client's back (deleted in the console).
    pub fn remove_server(&self, id: u64) {
        self.state()
            .servers
            .retain(|s| s["id"].as_u64() != Some(id));
    }

    pub fn server_labels(&self) -> BTreeMap<u64, Value> {
        self.state()
            .servers
            .iter()
            .filter_map(|s| Some((s["id"].as_u64()?, s["labels"].clone())))
            .collect()
    }
}

/// Now, to the second, as Hetzner writes times.
fn now_rfc3339() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

fn with((status, body): (u16, Value), left: u32) -> (u16, Value, u32) {
    (status, body, left)
}

/// One page of `all` under `key`, with Hetzner's `meta.pagination`.
fn page_of(key: &str, all: &[Value], page: usize, per_page: usize) -> Value {
    let items: Vec<Value> = all
        .iter()
        .skip(page.saturating_sub(1).saturating_mul(per_page))
        .take(per_page)
        .cloned()
        .collect();
    json!({key: items, "meta": {"pagination": pagination(page, per_page, all.len())}})
}

fn pagination(page: usize, per_page: usize, total: usize) -> Value {
    let last = total.div_ceil(per_page).max(1);
    json!({"page": page, "per_page": per_page,
        "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
        "next_page": if page < last { json!(page.saturating_add(1)) } else { Value::Null },
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
            let mut s = self.state();
            if s.garble_next > 0 {
                s.garble_next -= 1;
                return ResponseTemplate::new(200).set_body_string("{\"servers\": [{\"id\": 4");
            }
            if req.method.as_str() == "POST" && req.url.path() == "/v1/servers" {
                s.create_requests.push(std::time::Instant::now());
            }
        }
        let delay = self.state().delay;
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
        let template = ResponseTemplate::new(status);
        let template = if status == 204 {
            template
        } else {
            template.set_body_json(body)
        };
        template
            .set_delay(delay)
            .insert_header("RateLimit-Limit", "3600")
            .insert_header("RateLimit-Remaining", left.to_string().as_str())
            .insert_header(
                "RateLimit-Reset",
                (jiff::Timestamp::now().as_second() + i64::from(3600_u32.saturating_sub(left)))
                    .to_string()
                    .as_str(),
            )
            .insert_header("X-Correlation-Id", "fake-7f3a")
    }
}
