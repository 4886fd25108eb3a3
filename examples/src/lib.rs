//! Helpers of the embedding examples: where the sample files are, and how to read them.

use std::path::{Path, PathBuf};

use autoscaler_core::{Config, Error, Policy, Snapshot};

/// The folder holding `snapshot.json` and `config.json`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Reads and validates a configuration file (JSON).
pub fn load_policy(path: &Path) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = Config::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    config
        .validate()
        .map_err(|e: Error| format!("{}: {e}", path.display()))
}

/// Reads a snapshot file (JSON).
pub fn load_snapshot(path: &Path) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Snapshot::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}
