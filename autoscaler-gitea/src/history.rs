//! The finished Actions jobs of the scope, for users who want to replay their own traffic:
//! `status=completed`, every page, with the times Gitea recorded.

use std::collections::BTreeSet;
use std::time::Duration;

use autoscaler_core::Timestamp;

use crate::client::jobs_query;
use crate::wire::{JobsPage, WorkflowJob, repo_of, time};
use crate::{GiteaClient, GiteaError};

/// A job Gitea has finished (succeeded, failed, was cancelled or skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    /// The job's id.
    pub id: u64,
    /// The run it belongs to (its database id): jobs of one run share it.
    pub run_id: u64,
    /// The job's name in its workflow.
    pub name: String,
    /// `owner/name`.
    pub repo: String,
    /// Its `runs-on` labels.
    pub labels: Vec<String>,
    /// `success`, `failure`, `cancelled` or `skipped` (empty when Gitea sent none).
    pub conclusion: String,
    /// When its run created it.
    pub created: Timestamp,
    /// When a runner picked it; `None` when none ever did (cancelled or skipped while waiting).
    pub started: Option<Timestamp>,
    /// When it stopped.
    pub completed: Option<Timestamp>,
    /// Which attempt the recorded times belong to: more than 1 after a re-run.
    pub attempt: u64,
}

/// What a read of the history found.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The jobs created in the period asked for, in the order of their ids.
    pub jobs: Vec<FinishedJob>,
    /// Finished jobs read in all, in or out of the period.
    pub read: usize,
    /// Pages read.
    pub pages: u32,
    /// What makes the history less than exact: rows Gitea sent that break its contract (each
    /// skipped, naming the job), and jobs that came on two pages because the list grew while it
    /// was read (another may then have been missed).
    pub problems: Vec<String>,
}

/// Attempts per page before the read gives up: the history is one long read, and one dropped
/// connection should not waste it.
const TRIES: u32 = 3;

impl GiteaClient {
    /// Every finished job of the scope created in `[from, to)`, read page by page to the end
    /// (the list has no time filter). `progress` hears the pages read and the total Gitea
    /// reported after each page. A page that fails three times ends the read with its error:
    /// a history with a hole would replay as quieter traffic than it was.
    pub async fn finished_jobs(
        &self,
        from: Timestamp,
        to: Timestamp,
        mut progress: impl FnMut(u32, i64),
    ) -> Result<History, GiteaError> {
        let version = self.jobs_version().await?;
        let path = format!("{}/actions/jobs", self.scope().prefix());
        let limit = self.page_size();
        let sorted = version.sorts_jobs();
        let mut history = History::default();
        let mut seen = BTreeSet::new();
        let mut repeats = 0usize;
        let mut most = 0i64;
        let mut page = 0u32;
        loop {
            page += 1;
            let query = jobs_query(&["completed"], &limit.to_string(), page, sorted);
            let got = self.page_with_retries(&path, &query).await.map_err(|e| {
                if page == 1 {
                    e
                } else {
                    GiteaError::Decode {
                        call: format!("GET {path}"),
                        problem: format!(
                            "page {page} failed {TRIES} times ({e}); the {} jobs read so far \
                             are not written",
                            history.read
                        ),
                    }
                }
            })?;
            history.pages = page;
            most = most.max(got.total_count);
            let len = got.jobs.len();
            for raw in got.jobs {
                if !seen.insert(raw.id) {
                    repeats += 1;
                    continue;
                }
                history.read += 1;
                match finished(raw) {
                    Ok(job) if job.created >= from && job.created < to => history.jobs.push(job),
                    Ok(_) => {}
                    Err(e) => history.problems.push(e),
                }
            }
            progress(page, most);
            if len < limit as usize {
                break;
            }
            // A server that never sends a short page must not keep us here: the pages the
            // largest total needs, and one more for jobs finishing meanwhile.
            let needed = u32::try_from((most.max(0) as u64).div_ceil(u64::from(limit)))
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            if page >= needed {
                if history.read < usize::try_from(most).unwrap_or(usize::MAX) {
                    history.problems.push(format!(
                        "Gitea reported {most} finished jobs but {page} full pages held only {}",
                        history.read
                    ));
                }
                break;
            }
        }
        if repeats > 0 {
            history.problems.push(format!(
                "{repeats} job(s) came on two pages: jobs finished while the list was read, so \
                 as many others may have been skipped"
            ));
        }
        history.jobs.sort_by_key(|j| j.id);
        Ok(history)
    }

    async fn page_with_retries(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<JobsPage, GiteaError> {
        let mut wait = Duration::from_millis(500);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.get_page(path, query).await {
                Ok(p) => return Ok(p),
                Err(e) if tries < TRIES && e.kind().is_retryable() => {
                    tracing::debug!(error = %e, "retrying a page of finished jobs");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The finished job, or what is wrong with this row.
fn finished(raw: WorkflowJob) -> Result<FinishedJob, String> {
    let id = raw.id;
    let at = |field: &str, value: Option<&str>| match value {
        Some(v) => time(field, v).map_err(|e| format!("job {id}: {e}")),
        None => Ok(None),
    };
    let created = at("created_at", Some(&raw.created_at))?
        .ok_or_else(|| format!("job {id}: `created_at` is unset"))?;
    let started = at("started_at", raw.started_at.as_deref())?;
    let completed = at("completed_at", raw.completed_at.as_deref())?;
    if raw.status != "completed" {
        return Err(format!(
            "job {id}: status {:?} in a list of completed jobs",
            raw.status
        ));
    }
    Ok(FinishedJob {
        id,
        run_id: raw.run_id,
        repo: repo_of(&raw.url),
        name: raw.name,
        labels: raw.labels,
        conclusion: raw.conclusion.unwrap_or_default(),
        created,
        started,
        completed,
        attempt: raw.run_attempt,
    })
}
