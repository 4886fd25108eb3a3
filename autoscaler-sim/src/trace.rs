//! CI job traces: the CSV format of `traces/README.md`, read strictly so a bad row is named.

use serde::Serialize;

use crate::Error;

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceJob {
    /// When the job becomes runnable, Unix seconds (UTC).
    pub arrival: i64,
    /// Its run time once a runner starts it, seconds (≥ 1).
    pub duration: u32,
    /// The runner labels it asks for.
    pub labels: Vec<String>,
    /// `owner/name`, the tenant; expected durations are learned per repository.
    pub repo: String,
}

/// A whole trace, sorted by arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// A name for reports, e.g. the file name.
    pub name: String,
    /// The jobs, in arrival order.
    pub jobs: Vec<TraceJob>,
}

/// What a trace holds, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TraceStats {
    /// Number of jobs.
    pub jobs: usize,
    /// Sum of their run times, hours.
    pub job_hours: f64,
    /// From the first arrival to the last, hours.
    pub span_hours: f64,
}

const COLUMNS: [&str; 4] = ["arrival_unix_s", "duration_s", "labels", "repo"];

/// The trailing columns a recorded trace adds (readers that do not know them ignore them):
/// jobs of one run are demand an autoscaler can see coming when some wait on `needs`.
const RECORDED_COLUMNS: [&str; 2] = ["run_id", "job_name"];

/// A job recorded from a forge's history, with the columns the format carries beyond the
/// simulator's four.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// What the simulator replays.
    pub job: TraceJob,
    /// The run it belongs to.
    pub run_id: u64,
    /// The job's name in its workflow.
    pub name: String,
}

/// The CSV text of recorded jobs, sorted by arrival (ties keep their order), with the run id
/// and job name as trailing columns. A label holding `;` cannot be written (the format separates
/// labels with it): such a job is an error naming it, so the caller decides.
pub fn write_recorded(rows: &mut [Recorded]) -> Result<String, String> {
    rows.sort_by_key(|r| r.job.arrival);
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let header = COLUMNS.iter().chain(RECORDED_COLUMNS.iter());
    w.write_record(header).map_err(|e| e.to_string())?;
    for r in rows.iter() {
        if let Some(l) = r.job.labels.iter().find(|l| l.contains(';')) {
            return Err(format!(
                "job {:?} of run {} asks for the label {l:?}, which holds `;`",
                r.name, r.run_id
            ));
        }
        w.write_record([
            r.job.arrival.to_string(),
            r.job.duration.to_string(),
            r.job.labels.join(";"),
            r.job.repo.clone(),
            r.run_id.to_string(),
            r.name.clone(),
        ])
        .map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

impl Trace {
    /// Parses the CSV text of a trace. Extra trailing columns are ignored (the format allows
    /// adding e.g. `queue_s`); a missing column, a bad number or rows out of arrival order are
    /// errors naming the line.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let bad = |line: u64, problem: String| Error::Trace {
            trace: name.to_owned(),
            line,
            problem,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        for (i, want) in COLUMNS.iter().enumerate() {
            if header.get(i).map(str::trim) != Some(*want) {
                return Err(bad(
                    1,
                    format!(
                        "column {} must be {want:?}, found {:?}",
                        i + 1,
                        header.get(i).unwrap_or("")
                    ),
                ));
            }
        }
        let mut jobs = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, csv::Position::line);
                bad(line, e.to_string())
            })?;
            let line = record.position().map_or(0, csv::Position::line);
            if record.len() < COLUMNS.len() {
                return Err(bad(
                    line,
                    format!("has {} columns, needs {}", record.len(), COLUMNS.len()),
                ));
            }
            let arrival: i64 = record[0].trim().parse().map_err(|_| {
                bad(
                    line,
                    format!("arrival_unix_s {:?} is not a whole number", &record[0]),
                )
            })?;
            let duration: u32 = match record[1].trim().parse() {
                Ok(d) if d >= 1 => d,
                _ => {
                    return Err(bad(
                        line,
                        format!(
                            "duration_s {:?} is not a whole number of seconds ≥ 1",
                            &record[1]
                        ),
                    ));
                }
            };
            if let Some(prev) = jobs.last().map(|j: &TraceJob| j.arrival)
                && arrival < prev
            {
                return Err(bad(
                    line,
                    format!(
                        "arrival {arrival} is before the previous row's {prev}; rows must be sorted"
                    ),
                ));
            }
            let labels = record[2]
                .split(';')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            jobs.push(TraceJob {
                arrival,
                duration,
                labels,
                repo: record[3].trim().to_owned(),
            });
        }
        if jobs.is_empty() {
            return Err(bad(1, "holds no jobs".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            jobs,
        })
    }

    /// The jobs arriving in `[from, to)` (Unix seconds), as a trace of its own.
    pub fn slice(&self, from: i64, to: i64) -> Self {
        Self {
            name: format!("{} [{from}, {to})", self.name),
            jobs: self
                .jobs
                .iter()
                .filter(|j| (from..to).contains(&j.arrival))
                .cloned()
                .collect(),
        }
    }

    /// Jobs, job-hours and span.
    pub fn stats(&self) -> TraceStats {
        let job_secs: u64 = self.jobs.iter().map(|j| u64::from(j.duration)).sum();
        let span = match (self.jobs.first(), self.jobs.last()) {
            (Some(a), Some(b)) => b.arrival - a.arrival,
            _ => 0,
        };
        TraceStats {
            jobs: self.jobs.len(),
            job_hours: job_secs as f64 / 3600.0,
            span_hours: span as f64 / 3600.0,
        }
    }
}

/// The built-in demo trace: 2019-10-11 (UTC), the busiest day of the Travis CI Go trace.
pub fn demo() -> Trace {
    Trace::parse(
        "travis_go_2019-10-11 (built in)",
        include_str!("../traces/demo_travis_go_2019-10-11.csv"),
    )
    .expect("the built-in demo trace is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_ignores_extra_columns() {
        let t = Trace::parse(
            "t",
            "arrival_unix_s,duration_s,labels,repo,queue_s\n10,5,a;b,o/r,3\n10,7,\"a\",o/s,1\n",
        )
        .unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.jobs[0].labels, vec!["a", "b"]);
        assert_eq!(t.jobs[1].duration, 7);
        assert_eq!(t.jobs[1].repo, "o/s");
    }

    #[test]
    fn bad_rows_are_named() {
        let err = |text: &str| Trace::parse("t", text).unwrap_err().to_string();
        assert!(err("a,b,c,d\n1,1,x,r\n").contains("column 1 must be"));
        let e = err("arrival_unix_s,duration_s,labels,repo\n1,1,x,r\n2,zero,x,r\n");
        assert!(e.contains("line 3") && e.contains("duration_s"), "{e}");
        let e = err("arrival_unix_s,duration_s,labels,repo\n5,1,x,r\n4,1,x,r\n");
        assert!(e.contains("sorted"), "{e}");
        let e = err("arrival_unix_s,duration_s,labels,repo\n5,1,x\n");
        assert!(e.contains("columns"), "{e}");
        assert!(err("arrival_unix_s,duration_s,labels,repo\n").contains("no jobs"));
    }

    #[test]
    fn recorded_jobs_write_a_trace_that_reads_back() {
        let job = |arrival, name: &str, labels: &[&str]| Recorded {
            job: TraceJob {
                arrival,
                duration: 60,
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                repo: "acme/widgets".into(),
            },
            run_id: 7,
            name: name.into(),
        };
        let mut rows = vec![
            job(20, "test, \"unit\"", &["ubuntu-latest", "x64"]),
            job(10, "lint", &["ubuntu-latest"]),
        ];
        let text = write_recorded(&mut rows).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("arrival_unix_s,duration_s,labels,repo,run_id,job_name")
        );
        assert!(
            text.contains("10,60,ubuntu-latest,acme/widgets,7,lint\n"),
            "{text}"
        );
        let t = Trace::parse("t", &text).unwrap();
        assert_eq!(
            t.jobs.iter().map(|j| j.arrival).collect::<Vec<_>>(),
            [10, 20]
        );
        assert_eq!(t.jobs[1], rows[1].job);
        let e = write_recorded(&mut [job(1, "bad", &["a;b"])]).unwrap_err();
        assert!(e.contains("\"a;b\""), "{e}");
    }

    #[test]
    fn the_demo_trace_is_the_busy_day() {
        let t = demo();
        let s = t.stats();
        assert_eq!(s.jobs, 1022);
        assert!((s.job_hours - 76.2).abs() < 0.1, "{}", s.job_hours);
    }
}
