//! A loopback fake of Gitea 1.26's Actions API, answering as `routers/api/v1/shared/*.go` does:
//! `limit` defaults to 30 and is clamped to 50, `page` below 1 is 1, `status` repeats, an
//! unknown status is a 400, a runner outside the list is a 404 "Runner not found", and every
//! error body is `{"message", "url"}`. The contract tests check its bodies against the spec.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "gitea-test-token-0123456789";

#[derive(Debug, Clone)]
pub struct State {
    pub version: String,
    pub jobs: Vec<Value>,
    pub runners: Vec<Value>,
    /// Pages (1-based) of any list that answer 500 instead.
    pub failing_pages: Vec<u32>,
    /// Added to `total_count` from page 2 on: the list changes while it is read.
    pub drift_after_first_page: i64,
    /// The next this many requests answer 500.
    pub fail_next: u32,
    /// The next this many requests answer 200 with a body cut off mid-JSON.
    pub garble_next: u32,
    /// Added to every answer (a slow network).
    pub delay: std::time::Duration,
    /// The next this many lists claim 10 more items than they hold (a truncated list).
    pub short_next: u32,
    /// The next this many list pages, once answered, move the list's last item to the front:
    /// Gitea orders runners by when they last checked in (and jobs in no fixed order), so a
    /// runner checking in between two page reads shifts every later page by one.
    pub reorder_next: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: "1.26.4".into(),
            jobs: Vec::new(),
            runners: Vec::new(),
            failing_pages: Vec::new(),
            drift_after_first_page: 0,
            fail_next: 0,
            garble_next: 0,
            delay: std::time::Duration::ZERO,
            short_next: 0,
            reorder_next: 0,
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeGitea(pub Arc<Mutex<State>>);

pub fn job(id: u64, status: &str, labels: &[&str], runner: Option<(u64, &str)>) -> Value {
    let mut j = json!({
        "id": id,
        "url": format!("https://git.example.com/api/v1/repos/acme/widgets/actions/jobs/{id}"),
        "html_url": format!("https://git.example.com/acme/widgets/actions/runs/9/jobs/{id}"),
        "run_id": 9,
        "run_url": "https://git.example.com/api/v1/repos/acme/widgets/actions/runs/9",
        "name": "build",
        "labels": labels,
        "run_attempt": 1,
        "head_sha": "3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
        "head_branch": "main",
        "status": status,
        "steps": [],
        "created_at": "2026-11-25T10:00:00Z",
        "started_at": "1970-01-01T00:00:00Z",
        "completed_at": "1970-01-01T00:00:00Z",
    });
    if let Some((rid, name)) = runner {
        j["runner_id"] = json!(rid);
        j["runner_name"] = json!(name);
        j["started_at"] = json!("2026-11-25T10:00:30Z");
    }
    j
}

/// A finished job of run `run` in `repo` (`owner/name`): created at `created`, started `wait`
/// seconds later and done `runs` seconds after that (never started when `runs` is `None`).
pub fn finished(
    id: u64,
    run: u64,
    repo: &str,
    created: &str,
    wait: i64,
    runs: Option<i64>,
) -> Value {
    let at = |offset: i64| {
        let t: jiff::Timestamp = created.parse().expect("an RFC 3339 time");
        (t + jiff::SignedDuration::from_secs(offset)).to_string()
    };
    let (started, completed, conclusion) = match runs {
        Some(r) => (at(wait), at(wait + r), "success"),
        None => ("1970-01-01T00:00:00Z".to_owned(), at(wait), "cancelled"),
    };
    json!({
        "id": id,
        "url": format!("https://git.example.com/api/v1/repos/{repo}/actions/jobs/{id}"),
        "html_url": format!("https://git.example.com/{repo}/actions/runs/{run}/jobs/{id}"),
        "run_id": run,
        "run_url": format!("https://git.example.com/api/v1/repos/{repo}/actions/runs/{run}"),
        "name": format!("job-{id}"),
        "labels": ["ubuntu-latest"],
        "run_attempt": i64::from(runs.is_some()),
        "head_sha": "3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
        "head_branch": "main",
        "status": "completed",
        "conclusion": conclusion,
        "steps": [],
        "created_at": created,
        "started_at": started,
        "completed_at": completed,
    })
}

pub fn runner(id: u64, name: &str, online: bool, busy: bool) -> Value {
    json!({
        "id": id,
        "name": name,
        "status": if online { "online" } else { "offline" },
        "busy": busy,
        "disabled": false,
        "ephemeral": false,
        "labels": [{"id": 0, "name": "ubuntu-latest", "type": "custom"}],
    })
}

fn error(status: u16, message: &str) -> (u16, Value) {
    (
        status,
        json!({"message": message, "url": "https://git.example.com/api/swagger"}),
    )
}

impl FakeGitea {
    pub fn new(state: State) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// The answer to one request: status and JSON body (`Null` for no body).
    pub fn answer(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        auth: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut s = self.0.lock().unwrap();
        let Some(path) = path.strip_prefix("/api/v1") else {
            return error(404, "not found");
        };
        if path != "/version"
            && auth != Some(&format!("Bearer {TOKEN}"))
            && auth != Some(&format!("token {TOKEN}"))
        {
            return error(401, "invalid username, password or token");
        }
        let q = |k: &str| {
            query
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        let page = q("page")
            .first()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(1)
            .max(1) as usize;
        let limit = match q("limit")
            .first()
            .and_then(|l| l.parse::<i64>().ok())
            .unwrap_or(0)
        {
            l if l <= 0 => 30,
            l => l.min(50),
        } as usize;
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let scoped = match segments.as_slice() {
            ["admin", rest @ ..] | ["user", rest @ ..] => rest.to_vec(),
            ["orgs", _, rest @ ..] => rest.to_vec(),
            ["repos", _, _, rest @ ..] => rest.to_vec(),
            ["version"] => return (200, json!({"version": s.version})),
            _ => return error(404, "not found"),
        };
        if s.failing_pages.contains(&(page as u32)) && method == "GET" {
            return error(500, "");
        }
        let drift = if page > 1 {
            s.drift_after_first_page
        } else {
            0
        };
        match (method, scoped.as_slice()) {
            ("GET", ["actions", "jobs"]) => {
                let wanted = q("status");
                for st in &wanted {
                    if ![
                        "queued",
                        "in_progress",
                        "waiting",
                        "pending",
                        "completed",
                        "success",
                        "failure",
                    ]
                    .contains(st)
                    {
                        return error(400, &format!("Invalid status {st}"));
                    }
                }
                let matching: Vec<&Value> = s
                    .jobs
                    .iter()
                    .filter(|j| {
                        wanted.is_empty() || wanted.contains(&j["status"].as_str().unwrap_or(""))
                    })
                    .collect();
                let items: Vec<Value> = matching
                    .iter()
                    .skip((page - 1).saturating_mul(limit))
                    .take(limit)
                    .map(|v| (*v).clone())
                    .collect();
                let total = matching.len() as i64 + drift;
                if s.reorder_next > 0 {
                    s.reorder_next -= 1;
                    s.jobs.rotate_right(1);
                }
                (200, json!({"jobs": items, "total_count": total}))
            }
            ("GET", ["actions", "runners"]) => {
                let items: Vec<Value> = s
                    .runners
                    .iter()
                    .skip((page - 1).saturating_mul(limit))
                    .take(limit)
                    .cloned()
                    .collect();
                let total = s.runners.len() as i64 + drift;
                if s.reorder_next > 0 {
                    s.reorder_next -= 1;
                    s.runners.rotate_right(1);
                }
                (200, json!({"runners": items, "total_count": total}))
            }
            (m @ ("PATCH" | "DELETE" | "GET"), ["actions", "runners", id]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(i) = s.runners.iter().position(|r| r["id"] == id) else {
                    return error(404, "Runner not found");
                };
                drop(s);
                let mut s = self.0.lock().unwrap();
                match m {
                    "DELETE" => {
                        s.runners.remove(i);
                        (204, Value::Null)
                    }
                    "PATCH" => {
                        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                        let Some(d) = body.get("disabled").and_then(Value::as_bool) else {
                            return error(422, "[Disabled]: Required");
                        };
                        s.runners[i]["disabled"] = json!(d);
                        (200, s.runners[i].clone())
                    }
                    _ => (200, s.runners[i].clone()),
                }
            }
            _ => error(404, "not found"),
        }
    }
}

pub fn query_of(req: &Request) -> Vec<(String, String)> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Respond for FakeGitea {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        {
            let mut s = self.0.lock().unwrap();
            if s.fail_next > 0 {
                s.fail_next -= 1;
                return ResponseTemplate::new(500).set_body_json(json!({"message": "", "url": ""}));
            }
            if s.garble_next > 0 {
                s.garble_next -= 1;
                return ResponseTemplate::new(200).set_body_string("{\"jobs\": [{\"id\": 1, \"sta");
            }
        }
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let (status, mut body) = self.answer(
            req.method.as_str(),
            req.url.path(),
            &query_of(req),
            auth,
            &req.body,
        );
        {
            let mut st = self.0.lock().unwrap();
            if st.short_next > 0
                && let Some(total) = body.get("total_count").and_then(Value::as_i64)
            {
                st.short_next -= 1;
                body["total_count"] = json!(total + 10);
            }
        }
        let t = ResponseTemplate::new(status).set_delay(self.0.lock().unwrap().delay);
        if body.is_null() {
            t
        } else {
            t.set_body_json(body)
        }
    }
}
