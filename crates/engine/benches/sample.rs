//! Sample build time (issue "De-identification engine …", BENCHMARKS.md): building the
//! masked sample of the demo city's population at SF 1 (1 000 000 people; `SHUYU_BENCH_SCALE`
//! to change) as a workspace does — read the needed columns from the encrypted vault, draw
//! 10 % by keyed hash of the person, mask every field by the rule catalog, measure the risk
//! over the quasi-identifiers and generalize to k = 5 — against the baseline measured in the
//! same run: reading the same version from the vault (decrypt and decode) and nothing else.
//!
//! Run: `cargo bench -p shuyu-engine --bench sample`

#![allow(missing_docs)]

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shuyu_engine::SampleSpec;
use shuyu_engine::bench::{read_stored, sample_stored};

fn sample_build(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let (rt, vault, sealed, columns) = common::stored_population(dir.path());
    let spec = SampleSpec::default();
    let sample = || {
        rt.block_on(sample_stored(
            &vault,
            "v1",
            &sealed.path,
            &sealed.wrapped_key,
            &columns,
            &spec,
        ))
        .expect("sample")
    };
    let (risk, rows) = sample();
    eprintln!(
        "population: {} rows; sample {rows} rows; smallest class {} → {} (k = {}), {} suppressed",
        sealed.rows, risk.initial.smallest_class, risk.shown.smallest_class, risk.k, risk.suppressed
    );

    let mut g = c.benchmark_group("sample/population");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("baseline_vault_read", |b| {
        b.iter(|| {
            rt.block_on(read_stored(&vault, "v1", &sealed.path, &sealed.wrapped_key))
                .expect("read")
        })
    });
    g.bench_function("sample_build", |b| b.iter(sample));
    g.finish();
}

criterion_group!(benches, sample_build);
criterion_main!(benches);
