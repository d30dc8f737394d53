//! The search against the oracle on Adult (30,162 rows, 8 quasi-identifiers, a lattice of
//! 4,320 nodes): for every configuration, the same optimum — score (within 10⁻⁹ relative),
//! levels (by the documented tie-break), suppressed rows and classes.

use std::time::Instant;

use shuyu_mask::anon::{Anonymizer, Config, Diversity, Metric};

use crate::oracle::{self, METRICS, Models, Oracle, Scored};

fn metric(name: &str) -> Metric {
    Metric::parse(name).expect("metric")
}

#[test]
fn the_search_finds_the_oracles_optimum_on_adult() {
    let data = oracle::adult();
    assert_eq!(data.sensitive.len(), 30_162);
    let started = Instant::now();
    let o = Oracle::new(&data);
    let nodes = o.nodes();
    assert_eq!(nodes.len(), 4_320);
    let k = |k| Models {
        k,
        distinct_l: None,
        entropy_l: None,
        t: None,
    };
    let models = [
        k(2),
        k(5),
        k(10),
        Models {
            distinct_l: Some(3),
            ..k(2)
        },
        Models {
            entropy_l: Some(2.5),
            ..k(2)
        },
        Models { t: Some(0.2), ..k(5) },
    ];
    let limits = [0.0, 0.02, 0.05];
    // Every node's class table once, all configurations checked on it; two threads.
    let (left, right) = nodes.split_at(nodes.len() / 2);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| o.evaluate(&models, &limits, left));
        let b = s.spawn(|| o.evaluate(&models, &limits, right));
        (a.join().expect("oracle"), b.join().expect("oracle"))
    });
    eprintln!("oracle: {:?}", started.elapsed());

    let started = Instant::now();
    let anonymizer = Anonymizer::new(
        data.columns.clone(),
        data.hierarchies.clone(),
        Some(data.sensitive.clone()),
    )
    .expect("anonymizer");
    let mut failures = Vec::new();
    let mut compared = 0;
    for (mi, m) in models.iter().enumerate() {
        for (li, limit) in limits.iter().enumerate() {
            for (ki, name) in METRICS.iter().enumerate() {
                let all: Vec<Scored> = a[mi][li][ki].iter().chain(&b[mi][li][ki]).cloned().collect();
                let want = oracle::optimum(&all);
                let config = Config {
                    k: m.k,
                    l: m.distinct_l
                        .map(Diversity::Distinct)
                        .or(m.entropy_l.map(Diversity::Entropy)),
                    t: m.t,
                    suppression_limit: *limit,
                    metric: metric(name),
                };
                let one = Instant::now();
                let got = anonymizer.search(&config);
                let took = one.elapsed();
                compared += 1;
                let what = format!("{m:?}, suppression {limit}, {name}");
                match (want, got) {
                    (None, Err(shuyu_mask::MaskError::NoSolution)) => {}
                    (Some(w), Ok(g)) => {
                        eprintln!(
                            "{what}: {:?} score {}, {} suppressed, {} classes; {} tables, {took:?}",
                            g.levels, g.score, g.suppressed, g.classes, g.tables
                        );
                        let close = (w.score - g.score).abs() <= 1e-9 * w.score.abs().max(1e-300);
                        if !close || w.levels != g.levels || w.suppressed != g.suppressed || w.classes != g.classes {
                            failures.push(format!(
                                "{what}: oracle {:?} score {} ({} suppressed, {} classes), search {:?} score {} ({} suppressed, {} classes)",
                                w.levels, w.score, w.suppressed, w.classes, g.levels, g.score, g.suppressed, g.classes
                            ));
                        }
                    }
                    (w, g) => failures.push(format!("{what}: oracle {w:?}, search {g:?}")),
                }
            }
        }
    }
    eprintln!("{compared} searches: {:?}", started.elapsed());
    assert_eq!(compared, 54);
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
