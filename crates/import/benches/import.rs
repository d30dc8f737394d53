//! Import throughput (issue "Data vault …", BENCHMARKS.md): rows/s of the governed
//! import of the demo city's population CSV (SF 1 = 1 000 000 rows by default;
//! `SHUYU_BENCH_SCALE` to change) — parsing, type and check-digit validation of every
//! value, classification, the row-level error report, quarantine, and sealing as
//! AES-256-GCM-encrypted Parquet in the vault — against the baseline measured in the
//! same run: the same file read by Arrow's own CSV reader and written as plain Parquet
//! (an ungoverned ingest: no validation, no classification, no encryption).
//!
//! Run: `cargo bench -p shuyu-import --bench import`

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use shuyu_import::{Options, import_file};
use shuyu_keyring::MasterKey;
use shuyu_vault::Vault;

fn import_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let info = shuyu_democity::bench_dataset(dir.path(), "population")
        .expect("generate")
        .expect("population");
    let file = dir.path().join(&info.file);
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "population: {} rows, {} dirty, {:.1} MiB",
        info.rows,
        info.dirty.len(),
        bytes as f64 / 1048576.0
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let vault = Vault::local(&dir.path().join("vault"), MasterKey::from_bytes([7u8; 32])).expect("vault");
    let schema = Arc::new(Schema::new(
        info.columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));

    let mut g = c.benchmark_group("import/population");
    g.throughput(Throughput::Elements(info.rows));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("baseline_arrow_csv_to_parquet", |b| {
        b.iter(|| {
            let f = std::fs::File::open(&file).expect("open");
            let reader = arrow_csv::ReaderBuilder::new(schema.clone())
                .with_header(true)
                .with_batch_size(8192)
                .build(f)
                .expect("reader");
            let out = std::fs::File::create(dir.path().join("baseline.parquet")).expect("out");
            let mut w = ArrowWriter::try_new(out, schema.clone(), None).expect("writer");
            let mut rows = 0;
            for batch in reader {
                let batch = batch.expect("batch");
                rows += batch.num_rows() as u64;
                w.write(&batch).expect("write");
            }
            w.close().expect("close");
            assert_eq!(rows, info.rows);
        })
    });
    g.bench_function("governed_import", |b| {
        b.iter(|| {
            let imported = rt
                .block_on(import_file(
                    &file,
                    &Options::default(),
                    &vault,
                    "bench",
                    "datasets/population/bench.parquet",
                ))
                .expect("import");
            assert_eq!(imported.report.rows_read, info.rows);
            assert_eq!(imported.report.rows_quarantined as usize, info.dirty.len());
            for s in [imported.data, imported.quarantine].into_iter().flatten() {
                rt.block_on(vault.delete(&s.path)).expect("delete");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, import_throughput);
criterion_main!(benches);
