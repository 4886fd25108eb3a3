//! A deterministic discrete-event simulator that replays real CI traffic through the real
//! gitea-ci-autoscaler decision core, inside the pure shell the daemon runs
//! ([`autoscaler_core::shell`]), under a virtual clock, and reports what it costs and how long
//! jobs wait: side by side with the design it replaces and with a lower bound. Its own part is
//! the world: what the services do with each action's effect, and when.
//!
//! The engine is pure and synchronous like the core: a [`Trace`] and a [`Scenario`] go in, a
//! [`Run`] (the [`Report`] and a minute-by-minute timeline) comes out. Same inputs and seed,
//! same run. Reading files, printing and timing belong to the caller.
//!
//! ```
//! use autoscaler_sim::{Baseline, Ours, Scenario, replay, trace};
//!
//! let scenario = Scenario::default();
//! let day = trace::demo();
//! let hour = day.slice(day.jobs[0].arrival, day.jobs[0].arrival + 3600);
//! let policy = scenario.autoscaler.validate().unwrap();
//! let ours = replay(&hour, &scenario, &mut Ours::new("ours", policy), &mut |_| {}).unwrap();
//! let seed = replay(&hour, &scenario, &mut Baseline::new(scenario.autoscaler.clone()), &mut |_| {}).unwrap();
//! assert_eq!(ours.report.killed, 0);
//! assert_eq!(ours.report.leaked_servers, 0);
//! println!("{}", autoscaler_sim::table(&[&ours.report, &seed.report]));
//! ```

mod baseline;
mod boot;
mod bound;
pub mod chart;
mod engine;
mod policy;
mod report;
mod scenario;
mod sweep;
pub mod trace;
mod world;

pub use baseline::Baseline;
pub use boot::{BootModel, Phase, PhaseRange};
pub use engine::{Run, Sample, replay};
pub use policy::{Autoscaler, Ours};
pub use report::{Report, Waits, table};
pub use scenario::{Faults, Route, Scenario, WorldConfig, default_prices};
pub use sweep::{Point, Sweep, sweep};
pub use trace::{Trace, TraceJob, TraceStats};

/// Everything that can go wrong before a replay starts; a replay itself cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trace row is not in the documented format.
    #[error("trace {trace}, line {line}: {problem}")]
    Trace {
        /// The trace's name.
        trace: String,
        /// The 1-based line.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// The scenario cannot be read or does not hold together.
    #[error("scenario: {0}")]
    Scenario(String),
}
