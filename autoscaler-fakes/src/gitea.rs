//! A loopback fake of Gitea 1.26's Actions API, answering as `routers/api/v1/shared/*.go` does:
//! `limit` defaults to 30 and is clamped to 50, `page` below 1 is 1, `status` repeats with
//! Gitea's whole vocabulary (`queued`, `in_progress`, `waiting`/`pending`/`requested`/
//! `action_required` for blocked jobs, `completed`, and the conclusions `success`, `failure`,
//! `skipped`/`neutral`, `cancelled`/`timed_out`), an unknown status is a 400, each scope sees
//! only its own (the admin scope every runner and job; an organisation or user its runners and
//! its repositories' jobs; a repository its own), an organisation, user or repository that does
//! not exist is a 404, a runner outside the scope is a 404 "Runner not found", jobs lists send
//! `X-Total-Count` (1.26 and later), and every error body is `{"message", "url"}`. No request
//! panics it, and a panic elsewhere while its lock was held does not poison it. The contract
//! tests check its bodies against the spec.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// The scope each runner is registered at (`org:acme`, `user:alice`, `repo:acme/widgets`);
    /// a runner not named here is an instance-wide one, which only the admin scope lists.
    pub runner_scopes: BTreeMap<u64, String>,
    /// The organisations that exist (besides every owner of a job's repository).
    pub orgs: Vec<String>,
    /// The repositories that exist (besides every job's).
    pub repos: Vec<String>,
    /// The token's user, whose runners and repositories the `user` scope lists.
    pub user: String,
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
            runner_scopes: BTreeMap::new(),
            orgs: vec!["acme".to_owned()],
            repos: vec!["acme/widgets".to_owned()],
            user: "alice".to_owned(),
        }
    }
}

/// What a request's path says it is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Admin,
    User,
    Org(String),
    Repo(String),
}

/// The repository (`owner/name`) a job belongs to, from its API URL.
fn repo_of(job: &Value) -> Option<String> {
    let url = job["url"].as_str()?;
    let rest = url.split("/repos/").nth(1)?;
    let mut parts = rest.split('/');
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

impl State {
    /// Registers every runner at `scope` as the client names it (`admin`, `user`, `org:NAME`,
    /// `repo:OWNER/NAME`): the runners a client of that scope lists.
    pub fn register_runners_at(&mut self, scope: &str) {
        let at = match scope {
            "admin" => None,
            "user" => Some(format!("user:{}", self.user)),
            other => Some(other.to_owned()),
        };
        for id in self
            .runners
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .collect::<Vec<_>>()
        {
            match &at {
                Some(at) => self.runner_scopes.insert(id, at.clone()),
                None => self.runner_scopes.remove(&id),
            };
        }
    }

    fn sees_job(&self, scope: &Scope, job: &Value) -> bool {
        let repo = repo_of(job).unwrap_or_default();
        let owner = repo.split('/').next().unwrap_or_default();
        match scope {
            Scope::Admin => true,
            Scope::User => owner == self.user,
            Scope::Org(o) => owner == o,
            Scope::Repo(r) => repo == *r,
        }
    }

    fn sees_runner(&self, scope: &Scope, runner: &Value) -> bool {
        let registered = runner["id"]
            .as_u64()
            .and_then(|id| self.runner_scopes.get(&id));
        match (scope, registered) {
            (Scope::Admin, _) => true,
            (Scope::User, Some(at)) => *at == format!("user:{}", self.user),
            (Scope::Org(o), Some(at)) => *at == format!("org:{o}"),
            (Scope::Repo(r), Some(at)) => *at == format!("repo:{r}"),
            (_, None) => false,
        }
    }

    fn org_exists(&self, org: &str) -> bool {
        self.orgs.iter().any(|o| o == org)
            || self
                .jobs
                .iter()
                .filter_map(repo_of)
                .any(|r| r.split('/').next() == Some(org))
    }

    fn repo_exists(&self, repo: &str) -> bool {
        self.repos.iter().any(|r| r == repo)
            || self.jobs.iter().filter_map(repo_of).any(|r| r == repo)
    }
}

/// Whether a job matches one `status` filter value, by Gitea's `convertToInternal`; `None`
/// for a value Gitea refuses.
fn status_matches(filter: &str, job: &Value) -> Option<bool> {
    let status = job["status"].as_str().unwrap_or("");
    let conclusion = job["conclusion"].as_str().unwrap_or("");
    Some(match filter {
        "queued" => status == "queued",
        "in_progress" => status == "in_progress",
        "pending" | "waiting" | "requested" | "action_required" => status == "waiting",
        "completed" => status == "completed",
        "success" => status == "completed" && conclusion == "success",
        "failure" => status == "completed" && conclusion == "failure",
        "skipped" | "neutral" => status == "completed" && conclusion == "skipped",
        "cancelled" | "timed_out" => status == "completed" && conclusion == "cancelled",
        _ => return None,
    })
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

    /// The state; a panic elsewhere while it was held leaves it as it was, not poisoned.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut s = self.state();
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
            .max(1);
        let page = usize::try_from(page).unwrap_or(usize::MAX);
        let limit: usize = match q("limit")
            .first()
            .and_then(|l| l.parse::<i64>().ok())
            .unwrap_or(0)
        {
            l if l <= 0 => 30,
            l => usize::try_from(l.min(50)).unwrap_or(50),
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (scope, scoped) = match segments.as_slice() {
            ["admin", rest @ ..] => (Scope::Admin, rest.to_vec()),
            ["user", rest @ ..] => (Scope::User, rest.to_vec()),
            ["orgs", org, rest @ ..] => {
                if !s.org_exists(org) {
                    return error(404, "GetOrgByName");
                }
                (Scope::Org((*org).to_owned()), rest.to_vec())
            }
            ["repos", owner, name, rest @ ..] => {
                let repo = format!("{owner}/{name}");
                if !s.repo_exists(&repo) {
                    return error(404, "The target couldn't be found.");
                }
                (Scope::Repo(repo), rest.to_vec())
            }
            ["version"] => return (200, json!({"version": s.version})),
            _ => return error(404, "not found"),
        };
        if u32::try_from(page).is_ok_and(|p| s.failing_pages.contains(&p)) && method == "GET" {
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
                if let Some(bad) = wanted
                    .iter()
                    .find(|st| status_matches(st, &Value::Null).is_none())
                {
                    return error(400, &format!("Invalid status {bad}"));
                }
                let matching: Vec<&Value> = s
                    .jobs
                    .iter()
                    .filter(|j| s.sees_job(&scope, j))
                    .filter(|j| {
                        wanted.is_empty()
                            || wanted.iter().any(|st| status_matches(st, j) == Some(true))
                    })
                    .collect();
                let items: Vec<Value> = matching
                    .iter()
                    .skip(page.saturating_sub(1).saturating_mul(limit))
                    .take(limit)
                    .map(|v| (*v).clone())
                    .collect();
                let total = i64::try_from(matching.len())
                    .unwrap_or(i64::MAX)
                    .saturating_add(drift);
                if s.reorder_next > 0 {
                    s.reorder_next -= 1;
                    s.jobs.rotate_right(1);
                }
                (200, json!({"jobs": items, "total_count": total}))
            }
            ("GET", ["actions", "runners"]) => {
                let visible: Vec<&Value> = s
                    .runners
                    .iter()
                    .filter(|r| s.sees_runner(&scope, r))
                    .collect();
                let items: Vec<Value> = visible
                    .iter()
                    .skip(page.saturating_sub(1).saturating_mul(limit))
                    .take(limit)
                    .map(|r| (*r).clone())
                    .collect();
                let total = i64::try_from(visible.len())
                    .unwrap_or(i64::MAX)
                    .saturating_add(drift);
                if s.reorder_next > 0 {
                    s.reorder_next -= 1;
                    s.runners.rotate_right(1);
                }
                (200, json!({"runners": items, "total_count": total}))
            }
            (m @ ("PATCH" | "DELETE" | "GET"), ["actions", "runners", id]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(i) = s
                    .runners
                    .iter()
                    .position(|r| r["id"] == id && s.sees_runner(&scope, r))
                else {
                    return error(404, "Runner not found");
                };
                match m {
                    "DELETE" => {
                        s.runners.remove(i);
                        s.runner_scopes.remove(&id);
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
            let mut s = self.state();
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
        let jobs_list = req.method.as_str() == "GET" && req.url.path().ends_with("/actions/jobs");
        let new_enough = {
            let st = self.state();
            let mut parts = st.version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 26)
        };
        {
            let mut st = self.state();
            if st.short_next > 0
                && let Some(total) = body.get("total_count").and_then(Value::as_i64)
            {
                st.short_next -= 1;
                body["total_count"] = json!(total + 10);
            }
        }
        let mut t = ResponseTemplate::new(status).set_delay(self.state().delay);
        // Gitea 1.26 added the paging headers to the jobs lists.
        if jobs_list
            && new_enough
            && let Some(total) = body.get("total_count").and_then(Value::as_i64)
        {
            t = t.insert_header("X-Total-Count", total.to_string().as_str());
        }
        if body.is_null() {
            t
        } else {
            t.set_body_json(body)
        }
    }
}
