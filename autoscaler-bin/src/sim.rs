//! The `simulate` and `demo` commands: the simulator's IO (files, progress, timing) around its
//! pure engine.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use autoscaler_core::BakedImage;
use autoscaler_sim::{
    Autoscaler, Baseline, BootModel, Ours, Run, Scenario, Trace, chart, replay, table, trace,
};

use crate::Which;
use crate::failure::Failure;

impl From<autoscaler_sim::Error> for Failure {
    fn from(e: autoscaler_sim::Error) -> Self {
        Self::Input(e.to_string())
    }
}

/// The arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// The trace file.
    #[arg(long, value_name = "FILE")]
    trace: PathBuf,
    /// A scenario file (JSON): `autoscaler` (the daemon's configuration), `world`, `routes`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which policies to replay.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    policy: Which,
    /// Print the reports as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart of nodes, waiting jobs and cost over time.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
    /// Seed of the world's random draws (boot times, faults); overrides the scenario's.
    #[arg(long)]
    seed: Option<u64>,
    /// The cost/wait curve instead: replay ours once per target wait (seconds, comma
    /// separated, set on every pool) next to the baseline, and print cost, its ratio to the
    /// baseline and to the tight bound, and the p50/p95/p99/max waits per point.
    #[arg(long, value_name = "SECS,…", value_delimiter = ',', num_args = 1..)]
    sweep: Vec<u32>,
    /// With `--sweep`, also draw the curve (cost against p95 wait, with the tight bound) as SVG.
    #[arg(long, value_name = "FILE.svg", requires = "sweep")]
    sweep_chart: Option<PathBuf>,
    /// The cold start: the scenario's (`boot_min`..`boot_max` or its `boot_model`), the phased
    /// model of a server from the base image or from a baked one, or both side by side.
    #[arg(long, value_enum, default_value_t = Boot::Scenario, conflicts_with = "sweep")]
    boot: Boot,
}

/// Which cold start the simulated servers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Boot {
    /// As the scenario says.
    Scenario,
    /// From the base image: K3s downloaded and installed, images pulled.
    Base,
    /// From a baked image: every pool boots one (`baked_image = "auto"`, which the world
    /// lists), chosen by the core as the daemon does; K3s and the images on the disk already.
    /// The design we replace has no baked path and boots its base image.
    Baked,
    /// Both, each policy once per image.
    Both,
}

/// Runs the policies under each boot model `boot` asks for; with both, every report names its
/// image.
fn run_boots(
    trace: &Trace,
    scenario: &Scenario,
    which: Which,
    boot: Boot,
) -> Result<Vec<Run>, Failure> {
    // Servers boot in phases from the base image; with `baked`, the pools name a baked image
    // and the servers the core creates from it boot as baked ones.
    let with = |baked: bool| {
        let mut s = scenario.clone();
        s.world.boot_model = Some(BootModel::base());
        for pool in &mut s.autoscaler.pools {
            pool.baked_image = if baked {
                pool.baked_image.clone().or(Some(BakedImage::Auto))
            } else {
                None
            };
        }
        s
    };
    match boot {
        Boot::Scenario => run_policies(trace, scenario, which),
        Boot::Base => run_policies(trace, &with(false), which),
        Boot::Baked => run_policies(trace, &with(true), which),
        Boot::Both => {
            let mut runs = Vec::new();
            for (baked, name) in [(false, "base image"), (true, "baked image")] {
                // The design we replace has no baked path: its baked run would be its base run.
                let which = match (baked, which) {
                    (true, Which::Both) => Which::Ours,
                    (_, w) => w,
                };
                for mut run in run_policies(trace, &with(baked), which)? {
                    run.report.policy = format!("{}, {name}", run.report.policy);
                    runs.push(run);
                }
            }
            Ok(runs)
        }
    }
}

fn read(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("cannot read the {what} {}: {e}", path.display())))
}

pub(crate) fn simulate(args: &SimulateArgs) -> Result<(), Failure> {
    let name = args.trace.file_name().map_or_else(
        || args.trace.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let trace = Trace::parse(&name, &read(&args.trace, "trace")?)?;
    let mut scenario = match &args.config {
        Some(path) => Scenario::from_json(&read(path, "scenario")?)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?,
        None => Scenario::default(),
    };
    if let Some(seed) = args.seed {
        scenario.world.seed = seed;
    }
    scenario.check()?;
    if !args.sweep.is_empty() {
        return sweep(args, &trace, &scenario);
    }
    let started = Instant::now();
    let runs = run_boots(&trace, &scenario, args.policy, args.boot)?;
    let elapsed = started.elapsed();
    if args.json {
        let reports: Vec<_> = runs.iter().map(|r| &r.report).collect();
        let doc = serde_json::json!({ "trace": trace.stats(), "reports": reports });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let s = trace.stats();
        println!(
            "{}: {} jobs, {:.1} job-hours over {:.1} h; replayed in {:.2} s\n",
            trace.name,
            s.jobs,
            s.job_hours,
            s.span_hours,
            elapsed.as_secs_f64()
        );
        print!(
            "{}",
            table(&runs.iter().map(|r| &r.report).collect::<Vec<_>>())
        );
    }
    if let Some(path) = &args.chart {
        write_chart(path, &trace.name, &runs)?;
        if !args.json {
            println!("\nchart: {}", path.display());
        }
    }
    Ok(())
}

fn sweep(args: &SimulateArgs, trace: &Trace, scenario: &Scenario) -> Result<(), Failure> {
    let targets: Vec<autoscaler_core::SignedDuration> = args
        .sweep
        .iter()
        .map(|&s| autoscaler_core::SignedDuration::from_secs(i64::from(s)))
        .collect();
    let live = std::io::stderr().is_terminal();
    let started = Instant::now();
    let curve = autoscaler_sim::sweep(trace, scenario, &targets, &mut |done| {
        if live {
            eprint!("\r  sweeping: {:3.0} %", done * 100.0);
        }
    })?;
    if live {
        eprint!("\r{:40}\r", "");
    }
    if let Some(path) = &args.sweep_chart {
        std::fs::write(
            path,
            curve.svg(&format!("{}: cost against wait", trace.name)),
        )
        .map_err(|e| Failure::Output(format!("cannot write the chart {}: {e}", path.display())))?;
    }
    if args.json {
        let doc = serde_json::json!({ "trace": trace.stats(), "sweep": curve });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{}: the cost/wait curve, {} replays in {:.2} s\n\n{}",
        trace.name,
        targets.len() + 1,
        started.elapsed().as_secs_f64(),
        curve.table()
    );
    if let Some(path) = &args.sweep_chart {
        println!("chart: {}", path.display());
    }
    Ok(())
}

pub(crate) fn demo(chart_path: &Path, json: bool) -> Result<(), Failure> {
    let trace = trace::demo();
    let scenario = Scenario::default();
    let s = trace.stats();
    if !json {
        println!(
            "gitea-ci-autoscaler demo: one busy day of real CI traffic ({} jobs, {:.1} job-hours, \
             Travis CI Go projects on 2019-10-11 UTC)\nreplayed through the real decision core \
             and through the design it replaces (rustunit/gitea-ci-autoscaler v0.2),\non the same \
             simulated Gitea, Hetzner Cloud and K3s: servers boot in 40-90 s, hours are billed \
             whole. No credentials, no network.\n",
            s.jobs, s.job_hours
        );
    }
    let started = Instant::now();
    let runs = run_policies(&trace, &scenario, Which::Both)?;
    let elapsed = started.elapsed();
    // The same day with the cold start in phases, from the base image and from a baked one.
    let boots = run_boots(&trace, &scenario, Which::Both, Boot::Both)?;
    write_chart(chart_path, "demo: one busy day", &runs)?;
    if json {
        let reports: Vec<_> = runs.iter().map(|r| &r.report).collect();
        let cold: Vec<_> = boots.iter().map(|r| &r.report).collect();
        let doc = serde_json::json!({ "trace": s, "reports": reports, "cold_starts": cold,
            "chart": chart_path });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "timeline (UTC, 3-hour blocks):\n{}  {TIMELINE_LEGEND}\n",
        timeline(&trace, &runs)
    );
    print!(
        "{}",
        table(&runs.iter().map(|r| &r.report).collect::<Vec<_>>())
    );
    let (ours, base) = (&runs[0].report, &runs[1].report);
    println!(
        "\nours cost {:+.0} % against the baseline, {:.2}× the best any autoscaler could pay at \
         its wait (the baseline {:.2}×), p95 wait {:.0} s against {:.0} s; {} killed jobs, {} \
         leaked servers.",
        (ours.euros / base.euros - 1.0) * 100.0,
        ours.cost_to_tight_bound,
        base.cost_to_tight_bound,
        ours.wait.p95,
        base.wait.p95,
        ours.killed,
        ours.leaked_servers
    );
    println!(
        "replayed {:.0} simulated hours twice in {:.2} s; chart: {}",
        ours.simulated_hours,
        elapsed.as_secs_f64(),
        chart_path.display()
    );
    println!(
        "\ncold starts in phases (assumed durations: 55-130 s from the base image, 31-69 s from \
         one `image bake` made; the design we replace has no baked path):"
    );
    for r in &boots {
        let r = &r.report;
        println!(
            "  {:<26} €{:>7.2}  p95 wait {:>4.0} s  p99 {:>4.0} s",
            r.policy, r.euros, r.wait.p95, r.wait.p99
        );
    }
    Ok(())
}

/// Replays the chosen policies, in parallel, with one live progress line on stderr.
fn run_policies(trace: &Trace, scenario: &Scenario, which: Which) -> Result<Vec<Run>, Failure> {
    let policy = scenario
        .autoscaler
        .validate()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut policies: Vec<Box<dyn Autoscaler + Send>> = Vec::new();
    if which != Which::Baseline {
        policies.push(Box::new(Ours::new("ours", policy)));
    }
    if which != Which::Ours {
        policies.push(Box::new(Baseline::new(scenario.autoscaler.clone())));
    }
    let names: Vec<String> = policies.iter().map(|p| p.name().to_owned()).collect();
    let shown = Mutex::new(vec![0u32; policies.len()]);
    let live = std::io::stderr().is_terminal();
    let results: Vec<Result<Run, autoscaler_sim::Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = policies
            .into_iter()
            .enumerate()
            .map(|(k, mut p)| {
                let (shown, names) = (&shown, &names);
                scope.spawn(move || {
                    replay(trace, scenario, p.as_mut(), &mut |done| {
                        if live {
                            progress(shown, names, k, done);
                        }
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a replay thread panicked"))
            .collect()
    });
    if live {
        eprint!("\r{:60}\r", "");
    }
    results
        .into_iter()
        .map(|r| r.map_err(Failure::from))
        .collect()
}

fn progress(shown: &Mutex<Vec<u32>>, names: &[String], k: usize, done: f64) {
    let Ok(mut shown) = shown.lock() else { return };
    let pct = (done * 100.0) as u32;
    if shown[k] == pct && pct != 100 {
        return;
    }
    shown[k] = pct;
    let mut line = String::from("\r  replaying:");
    for (name, p) in names.iter().zip(shown.iter()) {
        let _ = write!(line, "  {name} {p:>3} %");
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

fn write_chart(path: &Path, title: &str, runs: &[Run]) -> Result<(), Failure> {
    let svg = chart::svg(title, &runs.iter().collect::<Vec<_>>());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Output(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, svg)
        .map_err(|e| Failure::Output(format!("cannot write the chart {}: {e}", path.display())))
}

/// What the timeline's columns are, printed under it.
const TIMELINE_LEGEND: &str = "jobs: arriving in the block; nodes: the most machines at once in it \
    (booting, joining, idle, busy or in teardown);\n  waiting: the longest queue of waiting jobs in \
    it; €: billed from the start of the day to the block's end";

/// Per 3-hour block: jobs arriving, and per policy the peak nodes, the longest queue and the
/// euros billed by the block's end.
fn timeline(trace: &Trace, runs: &[Run]) -> String {
    const BLOCK: i64 = 3 * 3600;
    let start = trace.jobs[0].arrival / BLOCK * BLOCK;
    let end = runs
        .iter()
        .filter_map(|r| r.timeline.last())
        .map(|s| s.at)
        .max()
        .unwrap_or(start);
    let mut out = String::new();
    let _ = write!(out, "  {:<12} {:>5}", "block", "jobs");
    for r in runs {
        let n = &r.report.policy;
        let _ = write!(
            out,
            " │ {:>8} {:>8} {:>8}",
            format!("{n} nodes"),
            "waiting",
            "€"
        );
    }
    out.push('\n');
    let mut from = start;
    while from <= end {
        let to = from + BLOCK;
        let arrivals = trace
            .jobs
            .iter()
            .filter(|j| (from..to).contains(&j.arrival))
            .count();
        let label = jiff::Timestamp::from_second(from)
            .map(|t| t.strftime("%d %H:%M").to_string())
            .unwrap_or_default();
        let _ = write!(out, "  {label:<12} {arrivals:>5}");
        for r in runs {
            let block: Vec<_> = r
                .timeline
                .iter()
                .filter(|s| (from..to).contains(&s.at))
                .collect();
            let nodes = block
                .iter()
                .map(|s| s.provisioning + s.joining + s.idle + s.busy + s.teardown)
                .max()
                .unwrap_or(0);
            let waiting = block.iter().map(|s| s.waiting).max().unwrap_or(0);
            let euros = block.last().map_or(0.0, |s| s.euros);
            let _ = write!(out, " │ {nodes:>8} {waiting:>8} {euros:>8.2}");
        }
        out.push('\n');
        from = to;
    }
    out
}
