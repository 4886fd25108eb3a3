//! Heap used by one decision over the synthetic fleet: peak bytes above what the snapshot
//! already holds, and the number of allocations. Run with `cargo bench -p autoscaler-benches
//! --bench memory`.

use autoscaler_benches::{SIZES, policy, snapshot};
use autoscaler_core::decide;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run once either way.
    println!(
        "{:>7} {:>18} {:>12} {:>14} {:>9}",
        "N", "snapshot JSON (B)", "peak (B)", "allocations", "actions"
    );
    for n in SIZES {
        let policy = policy(n);
        let snapshot = snapshot(n);
        let snapshot_bytes = json_len(&snapshot);
        let profiler = dhat::Profiler::builder().testing().build();
        let plan = decide(&policy, &snapshot);
        let stats = dhat::HeapStats::get();
        drop(profiler);
        println!(
            "{n:>7} {snapshot_bytes:>18} {:>12} {:>14} {:>9}",
            stats.max_bytes,
            stats.total_blocks,
            plan.actions.len()
        );
    }
}

/// The snapshot's size as JSON, for scale.
fn json_len(s: &autoscaler_core::Snapshot) -> usize {
    serde_json::to_vec(s).map_or(0, |v| v.len())
}
