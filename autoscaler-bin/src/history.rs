//! `trace`: the finished Actions jobs of the configured Gitea scope, written as a trace the
//! simulator replays, so a team can see what the autoscaler would do with its own traffic.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use autoscaler_core::Timestamp;
use autoscaler_gitea::{FinishedJob, GiteaClient, GiteaConfig, GiteaError, Scope};
use autoscaler_sim::TraceJob;
use autoscaler_sim::trace::{Recorded, write_recorded};
use jiff::SignedDuration;

use crate::failure::Failure;
use crate::settings::{self, ProcessEnv};
use crate::wiring;

/// The longest period one trace may cover: ten years, far beyond any instance's history.
const MAX_DAYS: u32 = 3_660;

/// The arguments of `trace`.
#[derive(Debug, clap::Args)]
pub(crate) struct TraceArgs {
    /// Where to write the CSV; `-` for standard output.
    #[arg(long, short, value_name = "FILE.csv|-", default_value = "-")]
    output: PathBuf,
    /// The first instant of the period (jobs created from then on): an RFC 3339 time
    /// (`2026-11-01T08:00:00Z`) or a UTC date (`2026-11-01`). Without it, `--days` before
    /// `--until`.
    #[arg(long, value_name = "TIME|DATE")]
    since: Option<String>,
    /// The end of the period (jobs created before it); without it, now.
    #[arg(long, value_name = "TIME|DATE")]
    until: Option<String>,
    /// The period's length in days when `--since` is not given.
    #[arg(long, value_name = "DAYS", default_value_t = 14, conflicts_with = "since",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    days: u32,
    /// A TOML configuration file (instead of CONFIG_FILE); only its `[gitea]` section is used.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
}

/// `2026-11-01T08:00:00Z` or `2026-11-01` (midnight UTC).
fn instant(flag: &str, raw: &str) -> Result<Timestamp, Failure> {
    let raw = raw.trim();
    raw.parse::<Timestamp>()
        .or_else(|_| {
            raw.parse::<jiff::civil::Date>()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|_| {
            Failure::Input(format!(
                "{flag} {raw:?} is neither an RFC 3339 time (2026-11-01T08:00:00Z) nor a date \
                 (2026-11-01)"
            ))
        })
}

/// The period `[since, until)` the arguments name.
fn period(args: &TraceArgs, now: Timestamp) -> Result<(Timestamp, Timestamp), Failure> {
    let until = match &args.until {
        Some(raw) => instant("--until", raw)?,
        None => now,
    };
    let since = match &args.since {
        Some(raw) => instant("--since", raw)?,
        None => until
            .checked_sub(SignedDuration::from_hours(24 * i64::from(args.days)))
            .map_err(|_| {
                Failure::Input(format!("--days {} reaches before year -9999", args.days))
            })?,
    };
    if since >= until {
        return Err(Failure::Input(format!(
            "the period is empty: --since {since} is not before --until {until}"
        )));
    }
    if until.duration_since(since) > SignedDuration::from_hours(24 * i64::from(MAX_DAYS)) {
        return Err(Failure::Input(format!(
            "the period {since} → {until} is longer than {MAX_DAYS} days"
        )));
    }
    Ok((since, until))
}

/// What became of the jobs read, for the summary.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Cancelled or skipped before a runner picked them: they used no runner.
    never_started: usize,
    /// No end time, or one before the start.
    no_end: usize,
    /// Re-runs: Gitea keeps no time for when a re-run was asked for, so they arrive at their start.
    reruns: usize,
}

/// The trace row of a finished job, or `None` (counted) when it never ran on a runner.
fn row(job: &FinishedJob, tally: &mut Tally) -> Option<Recorded> {
    let Some(started) = job.started else {
        tally.never_started += 1;
        return None;
    };
    let Some(completed) = job.completed.filter(|c| *c >= started) else {
        tally.no_end += 1;
        return None;
    };
    // Gitea records the creation of a job, not the moment it became runnable: for a job that
    // waits on `needs` the arrival is early, which replays as more parallel demand than there
    // was (the conservative side for cost). The run id column lets a later reader do better.
    let arrival = if job.attempt > 1 {
        tally.reruns += 1;
        started
    } else {
        job.created
    };
    let secs = completed.duration_since(started).as_secs().max(1);
    Some(Recorded {
        job: TraceJob {
            arrival: arrival.as_second(),
            duration: u32::try_from(secs).unwrap_or(u32::MAX),
            labels: job.labels.clone(),
            repo: job.repo.clone(),
        },
        run_id: job.run_id,
        name: job.name.clone(),
    })
}

/// What to do about a Gitea error, said for this command.
fn explain(e: &GiteaError, scope: &Scope) -> String {
    let needs = match scope {
        Scope::Admin => "read:admin (a site administrator's token)",
        Scope::Org(_) => "read:organization",
        Scope::User => "read:user",
        Scope::Repo { .. } => "read:repository",
    };
    match e {
        GiteaError::TooOld { found, .. } => format!(
            "Gitea {found} has no Actions jobs list (GET …/actions/jobs arrived in 1.25): `trace` \
             cannot read its history; upgrade Gitea to 1.25 or newer"
        ),
        GiteaError::Api { status: 404, .. } => format!(
            "{e}: this Gitea has no Actions jobs API for the scope GITEA_SCOPE={scope} (is the \
             organisation, user or repository right, and is Actions enabled?)"
        ),
        GiteaError::Api {
            status: 401 | 403, ..
        } => format!("{e}: the token needs the {needs} scope for GITEA_SCOPE={scope}"),
        _ => e.to_string(),
    }
}

pub(crate) fn trace(args: &TraceArgs) -> Result<(), Failure> {
    let (since, until) = period(args, Timestamp::now())?;
    let path = args.config.as_ref().map(|p| p.display().to_string());
    let (gitea, timeout) = settings::load_gitea(&ProcessEnv, path.as_deref())
        .map_err(|p| Failure::Input(p.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Service(format!("cannot start the runtime: {e}")))?;
    let scope = gitea.scope.clone();
    let history = runtime.block_on(async {
        wiring::install_crypto();
        let http = reqwest::Client::builder()
            .user_agent(concat!("gitea-ci-autoscaler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Service(format!("cannot build the HTTP client: {e}")))?;
        let mut config = GiteaConfig::new(gitea.url, gitea.token.value, gitea.scope);
        config.timeout = timeout;
        let client = GiteaClient::new(http, config).map_err(|e| Failure::Input(e.to_string()))?;
        let live = std::io::stderr().is_terminal();
        let history = client
            .finished_jobs(since, until, |page, total| {
                if live {
                    eprint!("\rreading finished jobs: page {page}, {total} in the scope");
                }
            })
            .await;
        if live {
            eprintln!();
        }
        history.map_err(|e| Failure::Service(explain(&e, &scope)))
    })?;
    let mut tally = Tally::default();
    let mut rows: Vec<Recorded> = history
        .jobs
        .iter()
        .filter_map(|j| row(j, &mut tally))
        .collect();
    if rows.is_empty() {
        return Err(Failure::Service(format!(
            "no job of GITEA_SCOPE={scope} created in {since} → {until} ran on a runner ({} \
             finished jobs read in all): nothing to write",
            history.read
        )));
    }
    let text = write_recorded(&mut rows).map_err(Failure::Input)?;
    write_out(&args.output, &text)?;
    let job_hours: f64 = rows.iter().map(|r| f64::from(r.job.duration)).sum::<f64>() / 3600.0;
    let repos: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.job.repo.as_str()).collect();
    let to = if args.output.as_os_str() == "-" {
        "standard output".to_owned()
    } else {
        args.output.display().to_string()
    };
    eprintln!(
        "wrote {} jobs ({job_hours:.1} job-hours, {} repositories) created {since} → {until} \
         in GITEA_SCOPE={scope} to {to}; {} finished jobs read on {} pages",
        rows.len(),
        repos.len(),
        history.read,
        history.pages,
    );
    if tally.never_started > 0 {
        eprintln!(
            "  left out: {} cancelled or skipped before a runner picked them",
            tally.never_started
        );
    }
    if tally.no_end > 0 {
        eprintln!(
            "  left out: {} with no end time after their start",
            tally.no_end
        );
    }
    if tally.reruns > 0 {
        eprintln!(
            "  {} re-runs arrive at their start (Gitea keeps no time for when a re-run was asked)",
            tally.reruns
        );
    }
    for p in &history.problems {
        eprintln!("  warning: {p}");
    }
    if to != "standard output" {
        eprintln!("replay it: gitea-ci-autoscaler simulate --trace {to}");
    }
    Ok(())
}

/// Writes the whole file at once (through a temporary file beside it), so a failed write never
/// leaves half a trace under the name.
fn write_out(output: &Path, text: &str) -> Result<(), Failure> {
    if output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Output(format!("cannot write the trace: {e}")));
    }
    let mut tmp = output.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, output))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::Output(format!("cannot write {}: {e}", output.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: Option<&str>, until: Option<&str>, days: u32) -> TraceArgs {
        TraceArgs {
            output: "-".into(),
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            days,
            config: None,
        }
    }

    #[test]
    fn periods_are_read_from_times_dates_and_days() {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let (a, b) = period(&args(None, None, 14), now).unwrap();
        assert_eq!((a.to_string(), b), ("2026-11-18T12:00:00Z".to_owned(), now));
        let (a, b) = period(
            &args(Some("2026-11-01"), Some("2026-11-02T06:30:00Z"), 14),
            now,
        )
        .unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            (
                "2026-11-01T00:00:00Z".to_owned(),
                "2026-11-02T06:30:00Z".to_owned()
            )
        );
        let bad = |a: TraceArgs| match period(&a, now) {
            Err(Failure::Input(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad(args(Some("yesterday"), None, 14)).contains("--since \"yesterday\""));
        assert!(bad(args(Some("2026-12-03"), None, 14)).contains("empty"));
        assert!(bad(args(Some("1990-01-01"), None, 14)).contains("longer than 3660 days"));
    }

    fn finished(attempt: u64, started: Option<i64>, completed: Option<i64>) -> FinishedJob {
        let t = |s: i64| Timestamp::from_second(1_790_000_000 + s).unwrap();
        FinishedJob {
            id: 1,
            run_id: 3,
            name: "test".into(),
            repo: "acme/widgets".into(),
            labels: vec!["ubuntu-latest".into()],
            conclusion: "success".into(),
            created: t(0),
            started: started.map(t),
            completed: completed.map(t),
            attempt,
        }
    }

    #[test]
    fn rows_arrive_at_creation_run_their_recorded_time_and_skip_what_never_ran() {
        let mut tally = Tally::default();
        let r = row(&finished(1, Some(40), Some(340)), &mut tally).unwrap();
        assert_eq!(
            (r.job.arrival, r.job.duration, r.run_id, r.name.as_str()),
            (1_790_000_000, 300, 3, "test")
        );
        // A job done within its start second still took a runner: one second.
        assert_eq!(
            row(&finished(1, Some(5), Some(5)), &mut tally)
                .unwrap()
                .job
                .duration,
            1
        );
        // A re-run arrives at its start: its creation is the first attempt's.
        let r = row(&finished(2, Some(9_000), Some(9_060)), &mut tally).unwrap();
        assert_eq!(r.job.arrival, 1_790_009_000);
        assert!(row(&finished(0, None, Some(10)), &mut tally).is_none());
        assert!(row(&finished(1, Some(10), None), &mut tally).is_none());
        assert!(row(&finished(1, Some(10), Some(9)), &mut tally).is_none());
        assert_eq!(
            tally,
            Tally {
                never_started: 1,
                no_end: 2,
                reruns: 1
            }
        );
    }
}
