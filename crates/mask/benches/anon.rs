//! The optimal search on Adult (BENCHMARKS.md, "Optimal anonymization"): 30,162 rows, 8
//! quasi-identifiers (a lattice of 4,320 nodes), 5-anonymity, no suppression, each metric —
//! against the baseline measured in the same run: the same search without pruning (every node
//! rolled up from a neighbour and checked), and, timed once, the test oracle (every node's
//! classes grouped from the rows). Reference: ARX's Flash, 27 ms on a quad-core i5 (ARX 2.3).
//!
//! Run: `cargo bench -p shuyu-mask --bench anon`.

#![allow(missing_docs)]

#[path = "../tests/it/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use shuyu_mask::anon::{Anonymizer, Config, Metric};

fn anonymization(c: &mut Criterion) {
    let data = oracle::adult();
    let started = Instant::now();
    let a = Anonymizer::new(data.columns.clone(), data.hierarchies.clone(), None).expect("anonymizer");
    eprintln!("encoding Adult (8 columns, 30,162 rows): {:?}", started.elapsed());

    let o = oracle::Oracle::new(&data);
    let models = [oracle::Models {
        k: 5,
        distinct_l: None,
        entropy_l: None,
        t: None,
    }];
    let started = Instant::now();
    let scored = o.evaluate(&models, &[0.0], &o.nodes());
    eprintln!(
        "oracle (all 4,320 nodes from the rows, one thread, three metrics at once): {:?}",
        started.elapsed()
    );

    let mut g = c.benchmark_group("anon_adult_k5");
    g.sample_size(20);
    for (i, metric) in [Metric::NonUniformEntropy, Metric::Loss, Metric::Discernibility]
        .into_iter()
        .enumerate()
    {
        let config = Config {
            metric,
            ..Config::k_anonymity(5)
        };
        let s = a.search(&config).expect("search");
        let want = oracle::optimum(&scored[0][0][i]).expect("oracle optimum");
        assert_eq!(s.levels, want.levels, "{}", metric.name());
        eprintln!(
            "{}: levels {:?}, score {}, {} classes; {} class tables of {} nodes",
            metric.name(),
            s.levels,
            s.score,
            s.classes,
            s.tables,
            s.nodes
        );
        g.bench_function(format!("search_{}", metric.name()), |b| {
            b.iter(|| a.search(&config).expect("search"))
        });
        g.bench_function(format!("baseline_unpruned_{}", metric.name()), |b| {
            b.iter(|| a.search_exhaustive(&config).expect("search"))
        });
    }
    g.finish();
}

criterion_group!(benches, anonymization);
criterion_main!(benches);
