//! Replays both bundled 14-day traces with the default configuration and the documented
//! alternatives, side by side with the design we replace on the same world, prints the tables
//! and checks the goals. Run with `cargo bench -p autoscaler-benches --bench replay`.

use std::time::Instant;

use autoscaler_sim::{Autoscaler, Baseline, Ours, Report, Scenario, Trace, replay, table};

const TRACES: [(&str, &str); 2] = [
    (
        "travis_go_2019-10-07_14d",
        include_str!("../../autoscaler-sim/traces/travis_go_2019-10-07_14d.csv"),
    ),
    (
        "git_ruff-prometheus-vue_2026-07-27_14d",
        include_str!("../../autoscaler-sim/traces/git_ruff-prometheus-vue_2026-07-27_14d.csv"),
    ),
];

const SCENARIOS: [(&str, &str); 3] = [
    (
        "default",
        include_str!("../../autoscaler-sim/scenarios/bench.json"),
    ),
    (
        "cheap",
        include_str!("../../autoscaler-sim/scenarios/cheap.json"),
    ),
    (
        "warm",
        include_str!("../../autoscaler-sim/scenarios/warm.json"),
    ),
];

fn timed(trace: &Trace, scenario: &Scenario, p: &mut dyn Autoscaler) -> (Report, f64) {
    let started = Instant::now();
    let run = replay(trace, scenario, p, &mut |_| {}).expect("replay");
    (run.report, started.elapsed().as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported and ignored.
    let mut failures = Vec::new();
    for (name, text) in TRACES {
        let trace = Trace::parse(name, text).expect("bundled trace");
        let s = trace.stats();
        println!(
            "\n## {name}: {} jobs, {:.1} job-hours over {:.0} h",
            s.jobs, s.job_hours, s.span_hours
        );
        let mut reports = Vec::new();
        let mut base: Option<Report> = None;
        for (label, json) in SCENARIOS {
            let scenario = Scenario::from_json(json).expect("bundled scenario");
            let policy = scenario.autoscaler.validate().expect("valid");
            if base.is_none() {
                let (b, secs) = timed(
                    &trace,
                    &scenario,
                    &mut Baseline::new(scenario.autoscaler.clone()),
                );
                println!("replayed baseline in {secs:.2} s");
                base = Some(b);
            }
            let (r, secs) = timed(&trace, &scenario, &mut Ours::new(label, policy));
            println!("replayed {label} in {secs:.2} s (goal < 10 s)");
            reports.push(r);
        }
        let base = base.expect("baseline ran");
        let mut all: Vec<&Report> = reports.iter().collect();
        all.push(&base);
        println!("\n{}", table(&all));
        for r in &all {
            if r.killed > 0 || r.leaked_servers > 0 {
                failures.push(format!(
                    "{name}: {} killed {} jobs, leaked {} servers",
                    r.policy, r.killed, r.leaked_servers
                ));
            }
        }
        let cost = |r: &Report| r.euros / base.euros;
        println!("goals against the baseline (cost ratio, p95 wait):");
        for r in &reports {
            println!(
                "  {:<8} cost {:>5.1} % of the baseline's, p95 {:>5.1} s vs {:>5.1} s, {:.2}× the job-hours bound",
                r.policy,
                cost(r) * 100.0,
                r.wait.p95,
                base.wait.p95,
                r.cost_ratio
            );
        }
        let default = &reports[0];
        if !(default.euros <= base.euros && default.wait.p95 <= base.wait.p95) {
            failures.push(format!(
                "{name}: the default configuration does not dominate the baseline"
            ));
        }
        let cheap = &reports[1];
        if !(cost(cheap) <= 0.8 && cheap.wait.p95 <= base.wait.p95) {
            println!("  goal missed: cheap is not ≥ 20 % cheaper at a p95 no worse");
        }
        if !reports.iter().any(|r| r.wait.p95 <= 15.0 && cost(r) <= 1.2) {
            println!(
                "  goal missed: no configuration reaches p95 ≤ 15 s at ≤ 1.2× the baseline's cost"
            );
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        std::process::exit(1);
    }
}
