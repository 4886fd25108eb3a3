//! An SVG chart of a replay: nodes by state stacked, waiting jobs, and cost over time, one
//! panel per policy on a shared scale (the picture people know from Grafana).

use std::fmt::Write;

use crate::engine::{Run, Sample};

const WIDTH: f64 = 1100.0;
const PANEL: f64 = 250.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 34.0;
const GAP: f64 = 56.0;
/// At most this many columns per panel; longer runs are bucketed, keeping each bucket's peak.
const COLUMNS: usize = 900;

/// Node states bottom to top, with their colours.
const STATES: [(&str, &str); 5] = [
    ("busy", "#2f7ed8"),
    ("idle", "#8bbc21"),
    ("joining", "#f2c12e"),
    ("provisioning", "#f28f43"),
    ("teardown", "#a6a6a6"),
];

fn stack(s: &Sample) -> [u32; 5] {
    [s.busy, s.idle, s.joining, s.provisioning, s.teardown]
}

/// Reduces a timeline to at most [`COLUMNS`] samples: per bucket the sample with the most
/// nodes, with the bucket's longest queue and last cost.
fn bucket(timeline: &[Sample]) -> Vec<Sample> {
    if timeline.len() <= COLUMNS {
        return timeline.to_vec();
    }
    let per = timeline.len().div_ceil(COLUMNS);
    timeline
        .chunks(per)
        .map(|c| {
            let mut s = *c
                .iter()
                .max_by_key(|s| stack(s).iter().sum::<u32>())
                .unwrap_or(&c[0]);
            s.waiting = c.iter().map(|s| s.waiting).max().unwrap_or(0);
            s.euros = c.last().map_or(0.0, |s| s.euros);
            s.at = c[0].at;
            s
        })
        .collect()
}

/// The SVG document for `runs`, one panel each, on the same scales.
pub fn svg(title: &str, runs: &[&Run]) -> String {
    let panels: Vec<Vec<Sample>> = runs.iter().map(|r| bucket(&r.timeline)).collect();
    let t0 = panels
        .iter()
        .filter_map(|p| p.first())
        .map(|s| s.at)
        .min()
        .unwrap_or(0);
    let t1 = panels
        .iter()
        .filter_map(|p| p.last())
        .map(|s| s.at)
        .max()
        .unwrap_or(t0 + 1)
        .max(t0 + 1);
    let y_max = panels
        .iter()
        .flatten()
        .map(|s| stack(s).iter().sum::<u32>().max(s.waiting))
        .max()
        .unwrap_or(1)
        .max(1);
    let y_max = nice(f64::from(y_max));
    let euro_max = nice(
        panels
            .iter()
            .flatten()
            .map(|s| s.euros)
            .fold(0.0, f64::max)
            .max(0.01),
    );
    let height = TOP + runs.len() as f64 * (PANEL + GAP) + 10.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * plot_w;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // Legend.
    let mut lx = WIDTH - RIGHT - 520.0;
    for (name, colour) in STATES {
        let _ = writeln!(
            o,
            r#"<rect x="{lx}" y="9" width="10" height="10" fill="{colour}"/><text x="{}" y="18">{name}</text>"#,
            lx + 13.0
        );
        lx += 80.0;
    }
    let _ = writeln!(
        o,
        r##"<line x1="{lx}" y1="14" x2="{}" y2="14" stroke="#d62728" stroke-width="2"/><text x="{}" y="18">waiting</text>"##,
        lx + 14.0,
        lx + 17.0
    );
    lx += 64.0;
    let _ = writeln!(
        o,
        r##"<line x1="{lx}" y1="14" x2="{}" y2="14" stroke="#333" stroke-width="1.5" stroke-dasharray="4 2"/><text x="{}" y="18">€</text>"##,
        lx + 14.0,
        lx + 17.0
    );

    for (k, (run, samples)) in runs.iter().zip(&panels).enumerate() {
        let top = TOP + k as f64 * (PANEL + GAP) + 16.0;
        let bottom = top + PANEL;
        let y = |v: f64| bottom - v / y_max * PANEL;
        let ye = |v: f64| bottom - v / euro_max * PANEL;
        let r = &run.report;
        let _ = writeln!(
            o,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{} — €{:.2} ({:.2}× the lower bound), wait p95 {:.0} s, peak {} nodes</text>"#,
            top - 5.0,
            esc(&r.policy),
            r.euros,
            r.cost_ratio,
            r.wait.p95,
            r.peak_nodes
        );
        // Grid and axes.
        for i in 0..=4 {
            let v = y_max * f64::from(i) / 4.0;
            let e = euro_max * f64::from(i) / 4.0;
            let yy = y(v);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text><text x="{:.1}" y="{:.1}">€{e:.2}</text>"##,
                LEFT + plot_w,
                LEFT - 4.0,
                yy + 4.0,
                LEFT + plot_w + 4.0,
                yy + 4.0
            );
        }
        for (at, label) in ticks(t0, t1) {
            let xx = x(at);
            let _ = writeln!(
                o,
                r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{bottom}" stroke="#f0f0f0"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
                bottom + 14.0
            );
        }
        // Stacked areas, as step shapes.
        let mut below = vec![0u32; samples.len()];
        for (layer, (_, colour)) in STATES.iter().enumerate() {
            let mut upper = Vec::with_capacity(samples.len());
            for (i, s) in samples.iter().enumerate() {
                upper.push(below[i] + stack(s)[layer]);
            }
            let mut d = String::new();
            let next_x = |i: usize| samples.get(i + 1).map_or(t1, |s| s.at);
            for (i, s) in samples.iter().enumerate() {
                let cmd = if i == 0 { 'M' } else { 'L' };
                let _ = write!(
                    d,
                    "{cmd}{:.1},{:.1} L{:.1},{:.1} ",
                    x(s.at),
                    y(f64::from(upper[i])),
                    x(next_x(i)),
                    y(f64::from(upper[i]))
                );
            }
            for (i, s) in samples.iter().enumerate().rev() {
                let _ = write!(
                    d,
                    "L{:.1},{:.1} L{:.1},{:.1} ",
                    x(next_x(i)),
                    y(f64::from(below[i])),
                    x(s.at),
                    y(f64::from(below[i]))
                );
            }
            let _ = writeln!(
                o,
                r#"<path d="{}Z" fill="{colour}" stroke="none"/>"#,
                d.trim_end()
            );
            below = upper;
        }
        let line = |v: &dyn Fn(&Sample) -> f64| {
            let mut d = String::new();
            for (i, s) in samples.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1} ",
                    if i == 0 { 'M' } else { 'L' },
                    x(s.at),
                    v(s)
                );
            }
            d
        };
        let _ = writeln!(
            o,
            r##"<path d="{}" fill="none" stroke="#d62728" stroke-width="1.5"/>"##,
            line(&|s| y(f64::from(s.waiting))).trim_end()
        );
        let _ = writeln!(
            o,
            r##"<path d="{}" fill="none" stroke="#333" stroke-width="1.5" stroke-dasharray="4 2"/>"##,
            line(&|s| ye(s.euros)).trim_end()
        );
        let _ = writeln!(
            o,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#999"/>"##
        );
    }
    o.push_str("</svg>\n");
    o
}

/// A round axis maximum at or above `v`.
fn nice(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

/// Time labels: hours for a day or less, days beyond.
fn ticks(t0: i64, t1: i64) -> Vec<(i64, String)> {
    let span = t1 - t0;
    let step = if span <= 36 * 3600 { 3 * 3600 } else { 86_400 };
    let first = (t0 + step - 1) / step * step;
    (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= t1)
        .map(|t| {
            let at = jiff::Timestamp::from_second(t).unwrap_or_default();
            let label = if step < 86_400 {
                at.strftime("%H:%M").to_string()
            } else {
                at.strftime("%a %d").to_string()
            };
            (t, label)
        })
        .collect()
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
