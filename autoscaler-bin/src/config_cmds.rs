//! `check-config` and `decide`: the configuration and the core, with no service involved.

use std::io::Read as _;
use std::path::Path;

use autoscaler_core::{Config, Snapshot, decide};

use crate::failure::Failure;
use crate::settings::{self, ProcessEnv};

/// Validates the configuration from the environment (and `CONFIG_FILE` or `config`) and prints
/// it as TOML with every secret redacted.
pub(crate) fn check_config(config: Option<&Path>) -> Result<(), Failure> {
    let path = config.map(|p| p.display().to_string());
    let s =
        settings::load(&ProcessEnv, path.as_deref()).map_err(|p| Failure::Input(p.to_string()))?;
    print!("{}", s.render());
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "configuration is valid: {} pool(s), at most {} servers",
        s.core.pools.len(),
        s.core.max_nodes
    );
    Ok(())
}

/// The core's configuration from a JSON file (its own form) or a TOML file (`[autoscaler]`).
fn core_config(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "toml") {
        #[derive(serde::Deserialize)]
        struct Only {
            autoscaler: Option<Config>,
        }
        let only: Only = toml::from_str(&text).map_err(|e| {
            Failure::Input(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        Ok(only.autoscaler.unwrap_or_default())
    } else {
        Config::from_json(&text).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
    }
}

/// Runs the core on a JSON snapshot (`-` reads standard input) and prints the plan as JSON.
pub(crate) fn decide_snapshot(snapshot: &str, config: Option<&Path>) -> Result<(), Failure> {
    let policy = config
        .map(core_config)
        .transpose()?
        .unwrap_or_default()
        .validate()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let text = if snapshot == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|e| Failure::Input(format!("cannot read the snapshot from stdin: {e}")))?;
        buf
    } else {
        std::fs::read_to_string(snapshot)
            .map_err(|e| Failure::Input(format!("cannot read {snapshot}: {e}")))?
    };
    let snapshot = Snapshot::from_json(&text).map_err(|e| Failure::Input(e.to_string()))?;
    let plan = decide(&policy, &snapshot);
    let json = serde_json::to_string_pretty(&plan)
        .map_err(|e| Failure::Output(format!("cannot write the plan: {e}")))?;
    println!("{json}");
    // The plan's warnings for people too (standard output stays the JSON plan): an empty plan
    // with a reason is not an empty plan with none.
    for w in &plan.warnings {
        eprintln!("warning ({}): {}", w.kind.name(), w.message);
    }
    Ok(())
}
