//! The HTTP client: one method per call the autoscaler makes, every list read to its end.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use autoscaler_core::ports::{Forge, ProviderError};
use autoscaler_core::{ForgeCapabilities, Job, Runner, RunnerId, Source};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::wire::{ApiError, JobsPage, RunnersPage, ServerVersion};
use crate::{GiteaError, GiteaVersion, Scope};

/// Where Gitea is and how to talk to it.
#[derive(Debug, Clone)]
pub struct GiteaConfig {
    /// The instance's root URL, e.g. `https://git.example.com` (a trailing `/api/v1` is accepted).
    pub url: String,
    /// An access token: `read:admin`/`write:admin` for the admin scope, `…:organization` for an
    /// organisation, `…:user` or `…:repository` otherwise.
    pub token: SecretString,
    /// Which runners and jobs are managed.
    pub scope: Scope,
    /// The longest one request may take.
    pub timeout: Duration,
    /// Items per page (Gitea caps it at `[api] MAX_RESPONSE_ITEMS`, 50 by default).
    pub page_size: u32,
}

impl GiteaConfig {
    /// A configuration with a 10-second timeout and pages of 50.
    pub fn new(url: impl Into<String>, token: SecretString, scope: Scope) -> Self {
        Self {
            url: url.into(),
            token,
            scope,
            timeout: Duration::from_secs(10),
            page_size: 50,
        }
    }
}

/// A Gitea API client for one scope.
#[derive(Debug)]
pub struct GiteaClient {
    http: reqwest::Client,
    api: String,
    token: SecretString,
    scope: Scope,
    timeout: Duration,
    page_size: u32,
    version: OnceCell<GiteaVersion>,
}

/// One list read page by page.
struct Pages<T> {
    items: Vec<T>,
    problem: Option<String>,
}

/// One read of a list, and whether an item came twice (the order shifted under it).
struct Read<T> {
    pages: Pages<T>,
    repeated: bool,
}

impl GiteaClient {
    /// A client over `http`, which the caller built (rustls, provider installed).
    pub fn new(http: reqwest::Client, config: GiteaConfig) -> Result<Self, GiteaError> {
        let root = config.url.trim().trim_end_matches('/');
        if !(root.starts_with("https://") || root.starts_with("http://")) {
            return Err(GiteaError::Config(format!(
                "the URL `{root}` must start with https:// (or http:// for a local test server)"
            )));
        }
        if config.page_size == 0 || config.page_size > 50 {
            return Err(GiteaError::Config(format!(
                "page size {} must be between 1 and 50",
                config.page_size
            )));
        }
        let api = if root.ends_with("/api/v1") {
            root.to_owned()
        } else {
            format!("{root}/api/v1")
        };
        Ok(Self {
            http,
            api,
            token: config.token,
            scope: config.scope,
            timeout: config.timeout,
            page_size: config.page_size,
            version: OnceCell::new(),
        })
    }

    /// The scope this client manages.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Items asked for per page.
    pub(crate) fn page_size(&self) -> u32 {
        self.page_size
    }

    /// One page of a jobs list, its `X-Total-Count` (newer Gitea) checked against the body.
    pub(crate) async fn get_page(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<JobsPage, GiteaError> {
        let (p, header): (JobsPage, _) = self.get_counted(path, query).await?;
        match header {
            Some(h) if h != p.total_count => Err(GiteaError::Decode {
                call: format!("GET {path}"),
                problem: format!(
                    "X-Total-Count {h} disagrees with total_count {}",
                    p.total_count
                ),
            }),
            _ => Ok(p),
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<Option<T>, GiteaError> {
        Ok(self.send_counted(method, path, query, body).await?.0)
    }

    /// Like `send`, also returning the `X-Total-Count` header newer Gitea sends on lists.
    async fn send_counted<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<(Option<T>, Option<i64>), GiteaError> {
        let call = format!("{method} {path}");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .query(query);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|source| GiteaError::Transport {
            call: call.clone(),
            source,
        })?;
        let status = resp.status();
        let header_total = resp
            .headers()
            .get("X-Total-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        let bytes = read_capped(resp)
            .await
            .map_err(|source| GiteaError::Transport {
                call: call.clone(),
                source,
            })?
            .ok_or_else(|| GiteaError::Decode {
                call: call.clone(),
                problem: format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(GiteaError::Api {
                call,
                status: status.as_u16(),
                message,
            });
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok((None, header_total));
        }
        serde_json::from_slice(&bytes)
            .map(|v| (Some(v), header_total))
            .map_err(|e| GiteaError::Decode {
                call,
                problem: e.to_string(),
            })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, GiteaError> {
        Ok(self.get_counted(path, query).await?.0)
    }

    async fn get_counted<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(T, Option<i64>), GiteaError> {
        let (body, total) = self.send_counted(Method::GET, path, query, None).await?;
        let body = body.ok_or_else(|| GiteaError::Decode {
            call: format!("GET {path}"),
            problem: "empty body".to_owned(),
        })?;
        Ok((body, total))
    }

    /// The server's version, read once.
    pub async fn version(&self) -> Result<&GiteaVersion, GiteaError> {
        self.version
            .get_or_try_init(|| async {
                let v: ServerVersion = self.get("/version", &[]).await?;
                GiteaVersion::parse(&v.version).ok_or_else(|| GiteaError::Decode {
                    call: "GET /version".to_owned(),
                    problem: format!("`version` {:?} is not MAJOR.MINOR…", v.version),
                })
            })
            .await
    }

    /// Reads every page of a list. `fetch(page)` returns the page's items and `total_count`.
    /// The first page failing is an error; a later one makes the list partial.
    ///
    /// Gitea orders runners by when they last checked in and jobs in no fixed order, so the
    /// order can shift between two page reads: one item is then seen twice and another not at
    /// all, and the count still adds up. Items are therefore counted once each (by `id`), and a
    /// read that saw an item twice is read again, up to three times, before the list is given
    /// as partial. Only a read with no repeat whose distinct items reach the total is complete.
    async fn pages<T, F, Fut>(
        &self,
        what: &str,
        id: impl Fn(&T) -> u64,
        mut fetch: F,
    ) -> Result<Pages<T>, GiteaError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, i64), GiteaError>>,
    {
        const READS: u32 = 3;
        let mut read = self.read_pages(what, &id, &mut fetch).await?;
        let mut reads = 1;
        while read.repeated && reads < READS {
            read = self.read_pages(what, &id, &mut fetch).await?;
            reads += 1;
        }
        if read.repeated && read.pages.problem.is_none() {
            read.pages.problem = Some(format!(
                "{what}: the order shifted while the list was read (an item came on two pages, so \
                 another may have been skipped), {reads} reads in a row"
            ));
        }
        Ok(read.pages)
    }

    /// One read of every page, each item kept once.
    async fn read_pages<T, F, Fut>(
        &self,
        what: &str,
        id: &impl Fn(&T) -> u64,
        fetch: &mut F,
    ) -> Result<Read<T>, GiteaError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, i64), GiteaError>>,
    {
        let limit = self.page_size as usize;
        let (first, first_total) = fetch(1).await?;
        let mut seen = BTreeSet::new();
        let mut items = Vec::with_capacity(first.len());
        let mut repeated = false;
        let mut keep = |page: Vec<T>, items: &mut Vec<T>| {
            for item in page {
                if seen.insert(id(&item)) {
                    items.push(item);
                } else {
                    repeated = true;
                }
            }
        };
        let mut last_len = first.len();
        let mut received = first.len();
        keep(first, &mut items);
        let mut problem = None;
        let mut page = 1;
        // A server that never sends a short page must not keep us here: at most the pages the
        // first total needs, plus one for items added meanwhile.
        let max_pages = (first_total.max(0) as usize).div_ceil(limit) + 1;
        while last_len == limit && (received as i64) < first_total {
            page += 1;
            if page as usize > max_pages {
                problem = Some(format!(
                    "{what}: more pages than the total of {first_total} needs"
                ));
                break;
            }
            match fetch(page).await {
                Ok((more, total)) => {
                    if total != first_total {
                        problem = Some(format!(
                            "{what}: the list changed while it was read (total {first_total}, then {total})"
                        ));
                    }
                    last_len = more.len();
                    received += more.len();
                    keep(more, &mut items);
                }
                Err(e) => {
                    problem = Some(format!("{what}: page {page} failed: {e}"));
                    break;
                }
            }
        }
        if problem.is_none() && !repeated && (items.len() as i64) < first_total {
            problem = Some(format!(
                "{what}: read {} items, but the total is {first_total}",
                items.len()
            ));
        }
        Ok(Read {
            pages: Pages { items, problem },
            repeated,
        })
    }

    /// The server's version, refused when it has no Actions jobs list (before 1.25).
    pub(crate) async fn jobs_version(&self) -> Result<&GiteaVersion, GiteaError> {
        let version = self.version().await?;
        if version.lists_jobs() {
            Ok(version)
        } else {
            Err(GiteaError::TooOld {
                what: "listing Actions jobs",
                found: version.raw.clone(),
                needed: "1.25",
            })
        }
    }

    /// Runnable and running jobs in the scope, every page.
    pub async fn list_jobs(&self) -> Result<Source<Job>, GiteaError> {
        let version = self.jobs_version().await?;
        let path = format!("{}/actions/jobs", self.scope.prefix());
        let limit = self.page_size.to_string();
        // Newer Gitea sorts on request: a stable order keeps pages from shifting under us.
        let sorted = version.sorts_jobs();
        let read = self
            .pages(
                "jobs",
                |j: &crate::wire::WorkflowJob| j.id,
                |page| {
                    let query = jobs_query(&["queued", "in_progress"], &limit, page, sorted);
                    let path = &path;
                    async move {
                        let p = self.get_page(path, &query).await?;
                        Ok((p.jobs, p.total_count))
                    }
                },
            )
            .await?;
        let mut problems: Vec<String> = read.problem.into_iter().collect();
        let mut seen = BTreeSet::new();
        let mut jobs = Vec::with_capacity(read.items.len());
        for raw in read.items {
            if !seen.insert(raw.id) {
                continue;
            }
            match raw.into_job() {
                Ok(job) => jobs.push(job),
                Err(e) => problems.push(e),
            }
        }
        Ok(source(jobs, problems))
    }

    /// Registered runners in the scope, every page.
    pub async fn list_runners(&self) -> Result<Source<Runner>, GiteaError> {
        let path = format!("{}/actions/runners", self.scope.prefix());
        let limit = self.page_size.to_string();
        let read = self
            .pages(
                "runners",
                |r: &crate::wire::ActionRunner| r.id,
                |page| {
                    let query = [("limit", limit.clone()), ("page", page.to_string())];
                    let path = &path;
                    async move {
                        let p: RunnersPage = self.get(path, &query).await?;
                        Ok((p.runners, p.total_count))
                    }
                },
            )
            .await?;
        let mut seen = BTreeSet::new();
        let runners = read
            .items
            .into_iter()
            .filter(|r| seen.insert(r.id))
            .map(|r| r.into_runner())
            .collect();
        Ok(source(runners, read.problem.into_iter().collect()))
    }

    /// Disables or enables a runner (Gitea 1.26+).
    pub async fn set_runner_disabled(&self, id: u64, disabled: bool) -> Result<(), GiteaError> {
        let version = self.version().await?;
        if !version.disables_runners() {
            return Err(GiteaError::TooOld {
                what: "disabling runners",
                found: version.raw.clone(),
                needed: "1.26",
            });
        }
        let path = format!("{}/actions/runners/{id}", self.scope.prefix());
        let body = serde_json::json!({ "disabled": disabled });
        self.send::<serde_json::Value>(Method::PATCH, &path, &[], Some(body))
            .await
            .map(drop)
    }

    /// Deletes a runner; a runner that is already gone counts as deleted.
    pub async fn delete_runner(&self, id: u64) -> Result<(), GiteaError> {
        let path = format!("{}/actions/runners/{id}", self.scope.prefix());
        match self
            .send::<serde_json::Value>(Method::DELETE, &path, &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                tracing::debug!(runner = id, "runner already gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The query of one page of a jobs list: each status (repeated, as Gitea reads it), the page,
/// and on Gitea that sorts on request ascending ids, so jobs added meanwhile land near the end
/// rather than shift the pages still to read.
pub(crate) fn jobs_query(
    statuses: &[&str],
    limit: &str,
    page: u32,
    sorted: bool,
) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = statuses
        .iter()
        .map(|s| ("status", (*s).to_owned()))
        .collect();
    query.push(("limit", limit.to_owned()));
    query.push(("page", page.to_string()));
    if sorted {
        query.push(("sort", "id".to_owned()));
        query.push(("order", "asc".to_owned()));
    }
    query
}

/// The largest answer read. A page of 50 jobs is well under 100 KiB; anything near this is not
/// Gitea, and reading it whole would let one answer take the daemon's memory.
const MAX_ANSWER: usize = 8 << 20;

/// The body, or `None` when it is larger than [`MAX_ANSWER`] (read no further).
async fn read_capped(mut resp: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn source<T>(items: Vec<T>, problems: Vec<String>) -> Source<T> {
    if problems.is_empty() {
        Source::complete(items)
    } else {
        Source::Partial {
            items,
            reason: problems.join("; "),
        }
    }
}

#[async_trait]
impl Forge for GiteaClient {
    async fn capabilities(&self) -> Result<ForgeCapabilities, ProviderError> {
        let v = self.version().await?;
        Ok(ForgeCapabilities::read(v.disables_runners()))
    }

    async fn jobs(&self) -> Result<Source<Job>, ProviderError> {
        Ok(self.list_jobs().await?)
    }

    async fn runners(&self) -> Result<Source<Runner>, ProviderError> {
        Ok(self.list_runners().await?)
    }

    async fn set_runner_disabled(
        &self,
        runner: RunnerId,
        disabled: bool,
    ) -> Result<(), ProviderError> {
        Ok(Self::set_runner_disabled(self, runner.0, disabled).await?)
    }

    async fn delete_runner(&self, runner: RunnerId) -> Result<(), ProviderError> {
        Ok(Self::delete_runner(self, runner.0).await?)
    }
}
