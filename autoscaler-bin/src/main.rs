//! `gitea-ci-autoscaler`: the daemon's binary. This build carries the simulator's commands:
//! `simulate` replays a CI trace file, `demo` replays a built-in busy day with no credentials
//! and no network.

mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Autoscales Gitea Actions runners on Hetzner Cloud servers that join a K3s cluster.
#[derive(Debug, Parser)]
#[command(name = "gitea-ci-autoscaler", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a built-in busy day of real CI traffic through the real decision core and the
    /// design it replaces; print the timeline, the comparison and where the chart went.
    Demo {
        /// Where to write the SVG chart.
        #[arg(long, value_name = "FILE.svg", default_value = "target/demo-chart.svg")]
        chart: PathBuf,
        /// Print the reports as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Replay a CI trace (CSV: arrival_unix_s,duration_s,labels,repo) and report cost and waits.
    Simulate(sim::SimulateArgs),
}

/// Which policies a replay runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Which {
    /// The real core with the configuration.
    Ours,
    /// The design we replace (rustunit/gitea-ci-autoscaler v0.2).
    Baseline,
    /// Both, side by side on the same world.
    Both,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { chart, json } => sim::demo(&chart, json),
        Command::Simulate(args) => sim::simulate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitea-ci-autoscaler: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
