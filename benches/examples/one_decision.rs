//! One decision over the synthetic fleet of N machines (the first argument, default 1,000), for
//! counting its instructions exactly, which wall time on a shared machine cannot:
//!
//! ```sh
//! cargo build --release -p autoscaler-benches --example one_decision
//! valgrind --tool=callgrind --toggle-collect='autoscaler_core::decide::decide' \
//!     target/release/examples/one_decision 10000
//! ```
//!
//! Only the call of `decide` is counted, not building the snapshot.

use std::hint::black_box;

use autoscaler_benches::{policy, snapshot};

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000);
    let policy = policy(n);
    let snapshot = snapshot(n);
    let plan = autoscaler_core::decide(black_box(&policy), black_box(&snapshot));
    println!("N = {n}: {} action(s)", plan.actions.len());
}
