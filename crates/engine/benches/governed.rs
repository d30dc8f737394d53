//! Governed job overhead (issue "Code-to-data jobs, the disclosure gate …", BENCHMARKS.md): an
//! aggregate over the demo city's population at SF 1 (1 000 000 people; `SHUYU_BENCH_SCALE` to
//! change) run as a governed job — the dataset a view filtering by the row scope and showing
//! only the approved fields (scope: the whole demo city, so every row is tested and kept), the gate's evidence (records per cell, contributors' statistics)
//! computed in the same plan, every check run — against the same SQL in raw DataFusion over the
//! same in-memory batches, measured in the same run. Goal: ratio ≤ 1.05.
//!
//! Run: `cargo bench -p shuyu-engine --bench governed`

#![allow(missing_docs)]

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shuyu_engine::bench::{governed_aggregate, raw_aggregate};

const SQL: &str = "SELECT region, substr(CAST(birth_date AS VARCHAR), 1, 3) AS decade, COUNT(*) AS people \
                   FROM t GROUP BY region, substr(CAST(birth_date AS VARCHAR), 1, 3)";

fn governed(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let (rt, vault, sealed, columns) = common::stored_population(dir.path());
    // The approved fields of an aggregate report: the region and the birth date (no keyed
    // identifier, as an aggregate job needs none). Read once: both sides start from memory.
    let approved = vec!["region".to_string(), "birth_date".to_string()];
    let batches = rt
        .block_on(vault.read("v1", &sealed.path, &sealed.wrapped_key, Some(&approved)))
        .expect("read");
    let raw = rt.block_on(raw_aggregate(batches.clone(), SQL)).expect("raw");
    let gov = rt
        .block_on(governed_aggregate(
            batches.clone(),
            &columns,
            &approved,
            Some(shuyu_democity::CITY_CODE),
            SQL,
        ))
        .expect("governed");
    assert_eq!(raw, gov, "the same SQL gives the same cells");
    eprintln!("population: {} rows; {raw} cells", sealed.rows);

    let mut g = c.benchmark_group("job/population_by_region_decade");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("baseline_raw_datafusion", |b| {
        b.iter(|| rt.block_on(raw_aggregate(batches.clone(), SQL)).expect("raw"))
    });
    g.bench_function("governed_job", |b| {
        b.iter(|| {
            rt.block_on(governed_aggregate(
                batches.clone(),
                &columns,
                &approved,
                Some(shuyu_democity::CITY_CODE),
                SQL,
            ))
            .expect("governed")
        })
    });
    g.finish();
}

criterion_group!(benches, governed);
criterion_main!(benches);
