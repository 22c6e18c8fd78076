//! Mapping throughput against the practical limit.
//!
//! For realistic signed webhook bodies of 1, 100 and 1,000 events (all six collections),
//! the full request path (verify the signature, decode, map, flatten into warehouse rows,
//! pack into Firehose records) next to a baseline that only parses the same bytes into
//! `serde_json::Value` and serializes them back. `bench/report_criterion.py` turns criterion's
//! estimates into events/s per core and the ratio.
//!
//! `cargo bench -p klaviyo-source --bench pipeline`

use std::hint::black_box;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "common/work.rs"]
mod work;
use work::{baseline, full_path, signed_body, verifier};

/// The allocator the deployed functions use, so the figures are the ones they get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pipeline(c: &mut Criterion) {
    let now = Utc::now();
    let Some(verifier) = verifier() else {
        return;
    };
    let mut group = c.benchmark_group("pipeline");
    for events in [1usize, 100, 1000] {
        let body = signed_body(events, now);
        assert!(
            full_path(&body, &verifier, now) > 0,
            "the full path must succeed"
        );
        group.throughput(Throughput::Elements(events as u64));
        group.bench_with_input(BenchmarkId::new("full", events), &body, |b, body| {
            b.iter(|| black_box(full_path(black_box(body), &verifier, now)))
        });
        group.bench_with_input(BenchmarkId::new("baseline", events), &body, |b, body| {
            b.iter(|| black_box(baseline(black_box(body))))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
