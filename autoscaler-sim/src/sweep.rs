//! The cost/wait curve: the same trace and world replayed at several target waits (every pool's
//! `target_wait`), next to the baseline, with the best any autoscaler could pay at each point's
//! wait. Its table and SVG are what `simulate --sweep` prints and draws.

use std::fmt::Write as _;

use autoscaler_core::SignedDuration;

use crate::chart::esc;
use crate::{Baseline, Error, Ours, Report, Scenario, Trace, replay};

/// One point of the curve.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    /// The target wait every pool ran with, in seconds.
    pub target_wait_s: i64,
    /// What the replay gave.
    pub report: Report,
}

/// The curve and the baseline it is compared with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sweep {
    /// In the order of the targets asked for.
    pub points: Vec<Point>,
    /// The design we replace, on the same world.
    pub baseline: Report,
}

/// Replays `trace` once per target wait (each pool's `target_wait` set to it) and once with the
/// baseline. `progress` gets the share of replays done.
pub fn sweep(
    trace: &Trace,
    scenario: &Scenario,
    targets: &[SignedDuration],
    progress: &mut dyn FnMut(f64),
) -> Result<Sweep, Error> {
    let total = (targets.len() + 1) as f64;
    let baseline = replay(
        trace,
        scenario,
        &mut Baseline::new(scenario.autoscaler.clone()),
        &mut |_| {},
    )?
    .report;
    progress(1.0 / total);
    let mut points = Vec::with_capacity(targets.len());
    for (k, &target) in targets.iter().enumerate() {
        let mut s = scenario.clone();
        for pool in &mut s.autoscaler.pools {
            pool.target_wait = Some(target);
        }
        let policy = s
            .autoscaler
            .validate()
            .map_err(|e| Error::Scenario(e.to_string()))?;
        let name = format!("wait {}s", target.as_secs());
        let report = replay(trace, &s, &mut Ours::new(name, policy), &mut |_| {})?.report;
        points.push(Point {
            target_wait_s: target.as_secs(),
            report,
        });
        progress((k + 2) as f64 / total);
    }
    Ok(Sweep { points, baseline })
}

impl Sweep {
    /// The curve as a table: per point its cost against the baseline and the tight bound, and
    /// its waits.
    pub fn table(&self) -> String {
        let base = &self.baseline;
        let mut out = String::from(
            "target wait   cost, €  × baseline  × tight bound   p50, s   p95, s   p99, s   max, s  killed  leaked\n",
        );
        let mut row = |label: String, r: &Report| {
            let _ = writeln!(
                out,
                "{label:>11} {:>9.2} {:>10.3}× {:>12.2}× {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>7} {:>7}",
                r.euros,
                if base.euros > 0.0 {
                    r.euros / base.euros
                } else {
                    0.0
                },
                r.cost_to_tight_bound,
                r.wait.p50,
                r.wait.p95,
                r.wait.p99,
                r.wait.max,
                r.killed,
                r.leaked_servers
            );
        };
        for p in &self.points {
            row(format!("{} s", p.target_wait_s), &p.report);
        }
        row("baseline".to_owned(), base);
        out
    }

    /// The curve as an SVG: cost against p95 wait, one marker per target wait, the baseline
    /// apart, and the tight bound at each point's wait below it.
    pub fn svg(&self, title: &str) -> String {
        const W: f64 = 760.0;
        const H: f64 = 460.0;
        const L: f64 = 70.0;
        const R: f64 = 30.0;
        const T: f64 = 40.0;
        const B: f64 = 56.0;
        let all = self
            .points
            .iter()
            .map(|p| &p.report)
            .chain(std::iter::once(&self.baseline));
        let max_wait = all
            .clone()
            .map(|r| r.wait.p95)
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let max_cost = all
            .map(|r| r.euros.max(r.tight_bound_euros))
            .fold(0.0_f64, f64::max)
            .max(0.01)
            * 1.1;
        let x = |w: f64| L + w / max_wait * (W - L - R);
        let y = |c: f64| H - B - c / max_cost * (H - T - B);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
             fill=\"white\"/>\n<text x=\"{L}\" y=\"22\" font-size=\"15\">{}</text>\n",
            esc(title)
        );
        // Axes with five ticks each.
        let _ = writeln!(
            s,
            "<line x1=\"{L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\
             <line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{}\" stroke=\"black\"/>",
            H - B,
            W - R,
            H - B,
            H - B
        );
        for k in 0..=5 {
            let w = max_wait * f64::from(k) / 5.0;
            let c = max_cost * f64::from(k) / 5.0;
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{w:.0}</text>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{c:.0}</text>",
                x(w),
                H - B + 18.0,
                L - 6.0,
                y(c) + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">p95 wait, s</text>\
             <text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" \
             text-anchor=\"middle\">cost, €</text>",
            (L + W - R) / 2.0,
            H - 14.0,
            (T + H - B) / 2.0,
            (T + H - B) / 2.0
        );
        // The curve, its tight bounds, and the baseline.
        let line = |get: &dyn Fn(&Report) -> f64| {
            self.points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.report.wait.p95), y(get(&p.report))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#2f7ed8\" stroke-width=\"2\"/>\
             <polyline points=\"{}\" fill=\"none\" stroke=\"#8bbc21\" stroke-dasharray=\"5 4\"/>",
            line(&|r| r.euros),
            line(&|r| r.tight_bound_euros)
        );
        for p in &self.points {
            let (px, py) = (x(p.report.wait.p95), y(p.report.euros));
            let _ = writeln!(
                s,
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"#2f7ed8\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{} s</text>",
                px + 6.0,
                py - 6.0,
                p.target_wait_s
            );
        }
        let b = &self.baseline;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"#f28f43\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">baseline</text>",
            x(b.wait.p95) - 4.0,
            y(b.euros) - 4.0,
            x(b.wait.p95) + 8.0,
            y(b.euros) + 14.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{T}\" text-anchor=\"end\" fill=\"#2f7ed8\">ours at each target \
             wait</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#8bbc21\">the \
             best possible at that wait (tight bound)</text>\n</svg>",
            W - R,
            W - R,
            T + 16.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_target_wait_costs_less_and_waits_longer() {
        let trace = crate::trace::demo();
        let scenario = Scenario::default();
        let targets = [SignedDuration::ZERO, SignedDuration::from_secs(600)];
        let mut seen = Vec::new();
        let sweep = sweep(&trace, &scenario, &targets, &mut |d| seen.push(d)).expect("sweep");
        assert_eq!(sweep.points.len(), 2);
        assert_eq!(seen.last().copied(), Some(1.0));
        let (short, long) = (&sweep.points[0].report, &sweep.points[1].report);
        assert!(
            long.euros < short.euros,
            "{} vs {}",
            long.euros,
            short.euros
        );
        assert!(long.wait.p95 > short.wait.p95);
        for r in [short, long, &sweep.baseline] {
            assert_eq!((r.killed, r.leaked_servers), (0, 0));
        }
        let table = sweep.table();
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(
            table.contains("600 s") && table.contains("baseline"),
            "{table}"
        );
        let svg = sweep.svg("demo");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
