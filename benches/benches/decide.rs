//! Time of one decision over the synthetic fleet. Goal: ≤ 5 ms at N = 10,000 on one core, and at
//! most 12× more time per 10× more machines. And label matching when every job and every runner
//! has a label set of its own (50,000 jobs, 2,000 runners): goal under 100 ms.

use std::hint::black_box;

use autoscaler_benches::{SIZES, label_matching, policy, snapshot};
use autoscaler_core::decide;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for n in SIZES {
        let policy = policy(n);
        let snapshot = snapshot(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &snapshot, |b, s| {
            b.iter(|| decide(black_box(&policy), black_box(s)));
        });
    }
    group.finish();
}

fn bench_label_matching(c: &mut Criterion) {
    let (policy, snapshot) = label_matching();
    let mut group = c.benchmark_group("label_matching");
    group.sample_size(10);
    group.bench_function("50000_jobs_2000_runners", |b| {
        b.iter(|| decide(black_box(&policy), black_box(&snapshot)));
    });
    group.finish();
}

criterion_group!(benches, bench_decide, bench_label_matching);
criterion_main!(benches);
