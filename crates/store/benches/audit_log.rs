//! Audit log benchmarks (issue "Tamper-evident audit log", BENCHMARKS.md):
//!
//! - `append/durable`: appends/s with SQLite `synchronous=FULL`, many
//!   concurrent appenders, through the group-commit writer — against the
//!   baseline measured in the same run: one appender, i.e. one durable commit
//!   per entry (what a log without group commit does).
//! - `proof/inclusion` and `proof/consistency` at `SHUYU_BENCH_ENTRIES`
//!   entries (default 1 000 000): latency of building a proof from the stored
//!   Merkle nodes.
//!
//! Run: `cargo bench -p shuyu-store --bench audit_log`

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shuyu_audit::entry::Actor;
use shuyu_core::clock::{Clock, SystemClock};
use shuyu_store::Store;
use shuyu_store::log::Event;

fn event(i: u64) -> Event {
    let actor = Actor {
        user: Some("0196f8a2-7c1e-7d3a-9b1e-3f2a1c0d9e8f".into()),
        org: Some("0196f8a2-7c1e-7d3a-9b1e-3f2a1c0d9e90".into()),
        key: None,
        roles: vec!["developer".into(), "admin".into()],
        system: None,
    };
    let mut e = Event::new(
        SystemClock.now(),
        actor,
        "dataset.read",
        "dataset_version",
        format!("population@v{}", i % 97),
    );
    e.after = Some(format!("{:064x}", i));
    e.request = Some(format!("0196f8a2-0000-7000-8000-{:012x}", i));
    e
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn fresh_store(dir: &std::path::Path) -> Store {
    let store = Store::open_sqlite(&dir.join("bench.db")).await.expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// Appends `total` entries from `writers` concurrent tasks, each waiting for durability.
async fn append_concurrently(store: &Store, writers: u64, total: u64, offset: u64) -> Duration {
    let start = Instant::now();
    let per = total / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                s.append(vec![event(offset + w * per + i)]).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let store = rt.block_on(fresh_store(dir.path()));
    let mut group = c.benchmark_group("append");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    let mut offset = 0u64;
    for (writers, batch) in [(1u64, 200u64), (64, 20_000), (256, 40_000)] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(
            BenchmarkId::new("durable", format!("{writers}_writers")),
            &writers,
            |b, &w| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += rt.block_on(append_concurrently(&store, w, batch, offset));
                        offset += batch;
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let n: u64 = std::env::var("SHUYU_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let store = rt.block_on(fresh_store(dir.path()));
    let started = Instant::now();
    rt.block_on(async {
        let mut done = 0u64;
        while done < n {
            let k = (n - done).min(10_000);
            store.append((done..done + k).map(event).collect()).await.expect("load");
            done += k;
        }
    });
    eprintln!("loaded {n} entries in {:.1} s", started.elapsed().as_secs_f64());
    let store = Arc::new(store);
    let mut group = c.benchmark_group("proof");
    group.sample_size(50);
    let mut seq = 0x9e37_79b9u64;
    group.bench_function(BenchmarkId::new("inclusion", n), |b| {
        b.iter(|| {
            seq = seq.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let s = seq % n;
            rt.block_on(async { store.inclusion_proof(s, n).await.expect("proof") })
        })
    });
    group.bench_function(BenchmarkId::new("consistency", n), |b| {
        b.iter(|| {
            seq = seq.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let first = 1 + seq % (n - 1);
            rt.block_on(async { store.consistency_proof(first, n).await.expect("proof") })
        })
    });
    group.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);
