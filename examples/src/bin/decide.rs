//! Loads a snapshot and a configuration, decides, prints the plan.
//!
//! ```text
//! cargo run -p autoscaler-examples --bin decide                      # the shipped samples
//! cargo run -p autoscaler-examples --bin decide -- SNAPSHOT CONFIG [--json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use autoscaler_core::decide;
use autoscaler_examples::{data_dir, load_policy, load_snapshot};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    args.retain(|a| a != "--json");
    let snapshot = args
        .first()
        .map_or_else(|| data_dir().join("snapshot.json"), PathBuf::from);
    let config = args
        .get(1)
        .map_or_else(|| data_dir().join("config.json"), PathBuf::from);

    let (policy, snapshot) = match (load_policy(&config), load_snapshot(&snapshot)) {
        (Ok(p), Ok(s)) => (p, s),
        (p, s) => {
            for e in [p.err(), s.err()].into_iter().flatten() {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let plan = decide(&policy, &snapshot);
    if json {
        match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{plan}");
    }
    ExitCode::SUCCESS
}
