//! `gitea-ci-autoscaler`: the daemon's binary. `demo` replays a built-in busy day with no
//! credentials and no network, `simulate` replays a CI trace file, `trace` writes one from
//! Gitea's history, `check-config` validates and
//! prints the configuration, and `decide` runs the core on a snapshot file.

mod bake;
mod config_cmds;
mod daemon;
mod failure;
mod health;
mod history;
mod http;
mod live;
mod logging;
mod metrics;
mod preflight;
mod settings;
mod sim;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The release and the commit it was built from (see build.rs).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GCA_COMMIT"),
    ")"
);

/// What `plan --help` says about its output; the README's "Reading a plan" says the same.
const PLAN_COLUMNS: &str = "\
Reading the output:
  actions    each action with its target, then the reason the core gave for it.
  pools:     one line per pool:
    waiting    runnable jobs this pool serves (Gitea's `queued`)
    unmet      of those, the jobs no idle runner takes now
    running    jobs running on the pool's machines
    idle       online, enabled runners with no job
    busy       runners with a job
    upcoming   runners still to come on machines that are provisioning or joining
    ending     busy runners whose job is expected to end within a cold start
    servers    the pool's servers, in any state (every one is paid)
    warm       the warm-slot target now
    desired    servers after this plan (created counted, torn down not)
    creating   servers this plan creates
    teardown   teardowns this plan starts
  nodes:     one line per machine: name, pool, state (and teardown step), why.
  warning:   what a person should know (each has a kind in --json).
Exit codes: 0 every source was read; 1 a source could not be read or refused the
credentials (each problem is listed on standard error with what to do); 2 bad configuration.";

/// Autoscales Gitea Actions runners on Hetzner Cloud servers that join a K3s cluster.
#[derive(Debug, Parser)]
#[command(name = "gitea-ci-autoscaler", version = VERSION, about)]
struct Cli {
    /// What to do; without a command, `run`.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon (the default): tick every POLL_INTERVAL_SECS and on webhooks, serve
    /// /metrics, /healthz, /readyz and /webhook on LISTEN_ADDR.
    Run {
        /// A TOML configuration file (instead of CONFIG_FILE).
        #[arg(long, value_name = "FILE.toml")]
        config: Option<PathBuf>,
    },
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
    /// Write the finished Actions jobs of the configured Gitea scope (GITEA_API_URL,
    /// GITEA_SCOPE, GITEA_ADMIN_TOKEN) created in a period as a trace for `simulate`: your own
    /// traffic, replayed. Reads Gitea only; needs Gitea 1.25 or newer.
    Trace(history::TraceArgs),
    /// Validate the configuration (environment variables and CONFIG_FILE) and print the
    /// effective configuration as TOML, secrets redacted. Exit code 2 lists every problem.
    CheckConfig {
        /// A TOML configuration file (instead of CONFIG_FILE).
        #[arg(long, value_name = "FILE.toml")]
        config: Option<PathBuf>,
        /// Print every variable instead: its file key, default and meaning (a Markdown table,
        /// the README's), and check nothing.
        #[arg(long)]
        variables: bool,
    },
    /// One read-only tick against the real services: print the plan with its reasons and every
    /// node's state. Changes nothing. A preflight: exits 1 when a source could not be read or
    /// refused the credentials (each problem listed once, with what to do), 2 on bad
    /// configuration, 0 when everything was read.
    #[command(after_long_help = PLAN_COLUMNS)]
    Plan {
        /// A TOML configuration file (instead of CONFIG_FILE).
        #[arg(long, value_name = "FILE.toml")]
        config: Option<PathBuf>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Baked server images: K3s and the runner images already on the disk, so a new server
    /// skips the downloads and its job waits less.
    Image {
        /// What to do.
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print a completion script for a shell: e.g. `gitea-ci-autoscaler completions bash >
    /// /etc/bash_completion.d/gitea-ci-autoscaler`, or `… completions zsh > "${fpath[1]}/_gitea-ci-autoscaler"`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run the decision core on a snapshot (JSON) and print the plan as JSON. Reads no service.
    Decide {
        /// The snapshot file, or `-` for standard input.
        #[arg(long, value_name = "FILE|-")]
        snapshot: String,
        /// The core's configuration: a JSON file, or a TOML file's `[autoscaler]` section.
        /// Without it, the defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Make a pool's baked image: a temporary server from the pool's base image installs K3s
    /// (not started) and preloads its images and the runner images, cleans its machine
    /// identity and powers off; it is snapshotted (labels: installation, pool, K3s version,
    /// content hash) and deleted, and the pool's oldest baked images beyond --keep are deleted.
    /// Resumes what an earlier run left; an image of the same recipe means nothing to do.
    /// Prints the image id. Exit codes: 0 the image is available; 1 the bake failed (the
    /// temporary server is deleted, or the message says how it goes); 2 bad configuration.
    Bake(bake::BakeArgs),
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
    let command = cli.command.unwrap_or(Command::Run { config: None });
    let result = match command {
        Command::Run { config } => live::run(config.as_deref()),
        Command::Demo { chart, json } => sim::demo(&chart, json),
        Command::Simulate(args) => sim::simulate(&args),
        Command::Trace(args) => history::trace(&args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                shell,
                &mut cmd,
                "gitea-ci-autoscaler",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Plan { config, json } => live::plan(config.as_deref(), json),
        Command::Image {
            command: ImageCommand::Bake(args),
        } => bake::run(&args),
        Command::CheckConfig {
            variables: true, ..
        } => {
            print!("{}", settings::variables());
            Ok(())
        }
        Command::CheckConfig { config, .. } => config_cmds::check_config(config.as_deref()),
        Command::Decide { snapshot, config } => {
            config_cmds::decide_snapshot(&snapshot, config.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitea-ci-autoscaler: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use autoscaler_core::{Config, Snapshot, Timestamp, decide};

    /// Every column the plan's pool table prints is explained by `plan --help` and the README.
    #[test]
    fn every_column_of_the_plan_is_explained() {
        let policy = Config::default().validate().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let text = decide(&policy, &Snapshot::new(now)).to_string();
        let header = text
            .lines()
            .skip_while(|l| *l != "pools:")
            .nth(1)
            .expect("a pool table");
        let readme = include_str!("../../README.md");
        let columns: Vec<&str> = header.split_whitespace().skip(1).collect();
        assert_eq!(columns.len(), 12, "{header}");
        for c in columns {
            assert!(
                super::PLAN_COLUMNS.contains(&format!("\n    {c} ")),
                "plan --help does not explain {c}"
            );
            assert!(
                readme.contains(&format!("`{c}` ")),
                "the README does not explain {c}"
            );
        }
    }
}
