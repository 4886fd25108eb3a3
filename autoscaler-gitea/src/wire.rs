//! Gitea's JSON bodies as its Go structs write them (`modules/structs/repo_actions.go`,
//! `hook.go`), and their translation into the core's types. Optional and Go-`omitempty` fields
//! default; a field whose value breaks the contract is an error naming it.

use autoscaler_core::{Job, JobStatus, Runner, Timestamp};
use serde::Deserialize;

/// `ActionWorkflowJobsResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct JobsPage {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) jobs: Vec<WorkflowJob>,
    pub(crate) total_count: i64,
}

/// `ActionRunnersResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunnersPage {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) runners: Vec<ActionRunner>,
    pub(crate) total_count: i64,
}

/// `ServerVersion`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServerVersion {
    pub(crate) version: String,
}

/// `APIError`: the message is for people only.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub(crate) message: String,
}

/// `ActionWorkflowJob`, the fields the autoscaler reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WorkflowJob {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) url: String,
    /// The run's database id (not its number): jobs of one run share it.
    #[serde(default)]
    pub(crate) run_id: u64,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) labels: Vec<String>,
    /// 0 until a runner first picks the job (1.24–1.26), then 1, more after a re-run.
    #[serde(default)]
    pub(crate) run_attempt: u64,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) runner_id: Option<u64>,
    #[serde(default)]
    pub(crate) runner_name: Option<String>,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) started_at: Option<String>,
    #[serde(default)]
    pub(crate) completed_at: Option<String>,
    /// `success`, `failure`, `cancelled`, `skipped`; absent until done.
    #[serde(default)]
    pub(crate) conclusion: Option<String>,
}

/// `ActionRunner`.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionRunner {
    pub(crate) id: u64,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) busy: bool,
    /// Absent before 1.26.
    #[serde(default)]
    pub(crate) disabled: bool,
    #[serde(default)]
    pub(crate) ephemeral: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) labels: Vec<RunnerLabel>,
}

/// `ActionRunnerLabel`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunnerLabel {
    pub(crate) name: String,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Gitea writes an unset time as the Unix epoch.
pub(crate) fn time(field: &str, raw: &str) -> Result<Option<Timestamp>, String> {
    let t: Timestamp = raw
        .parse()
        .map_err(|e| format!("`{field}` is not an RFC 3339 time ({raw:?}): {e}"))?;
    Ok((t != Timestamp::UNIX_EPOCH).then_some(t))
}

/// `owner/name` from the job's API url `…/api/v1/repos/{owner}/{repo}/actions/jobs/{id}`.
pub(crate) fn repo_of(url: &str) -> String {
    url.split_once("/repos/")
        .and_then(|(_, rest)| {
            let mut parts = rest.splitn(3, '/');
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        })
        .unwrap_or_default()
}

impl WorkflowJob {
    /// The core's job, or what is wrong with this one.
    pub(crate) fn into_job(self) -> Result<Job, String> {
        let status = match self.status.as_str() {
            "queued" => JobStatus::Queued,
            "waiting" => JobStatus::Waiting,
            "in_progress" => JobStatus::InProgress,
            "completed" => JobStatus::Completed,
            other => return Err(format!("job {}: unknown status {other:?}", self.id)),
        };
        let created = time("created_at", &self.created_at)
            .map_err(|e| format!("job {}: {e}", self.id))?
            .ok_or_else(|| format!("job {}: `created_at` is unset", self.id))?;
        let started = match &self.started_at {
            Some(raw) => time("started_at", raw).map_err(|e| format!("job {}: {e}", self.id))?,
            None => None,
        };
        Ok(Job {
            id: self.id,
            repo: repo_of(&self.url),
            labels: self.labels,
            status,
            runner_id: self.runner_id.filter(|&id| id != 0),
            runner_name: self.runner_name.filter(|n| !n.is_empty()),
            created,
            started,
            expected_duration: None,
        })
    }
}

impl ActionRunner {
    /// The core's runner.
    pub(crate) fn into_runner(self) -> Runner {
        Runner {
            id: self.id,
            name: self.name,
            labels: self.labels.into_iter().map(|l| l.name).collect(),
            online: self.status == "online",
            busy: self.busy,
            disabled: self.disabled,
            ephemeral: self.ephemeral,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_job_has_no_start_and_no_runner() {
        let j: WorkflowJob = serde_json::from_str(
            r#"{"id": 4123, "url": "https://g/api/v1/repos/acme/widgets/actions/jobs/4123",
                "labels": ["ubuntu-latest"], "status": "queued", "steps": null,
                "created_at": "2025-11-03T10:15:02Z", "started_at": "1970-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let job = j.into_job().unwrap();
        assert_eq!(job.repo, "acme/widgets");
        assert_eq!(
            (job.status, job.started, job.runner_id),
            (JobStatus::Queued, None, None)
        );
    }

    #[test]
    fn a_bad_status_or_time_names_the_job_and_field() {
        let mut j: WorkflowJob = serde_json::from_str(
            r#"{"id": 7, "status": "running", "created_at": "2025-11-03T10:15:02Z"}"#,
        )
        .unwrap();
        assert!(
            j.clone()
                .into_job()
                .unwrap_err()
                .contains("job 7: unknown status")
        );
        j.status = "queued".into();
        j.created_at = "yesterday".into();
        assert!(j.into_job().unwrap_err().contains("`created_at`"));
    }
}
