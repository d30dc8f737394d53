//! Small, hand-checkable searches and the search against the un-pruned evaluation of every
//! node on random tables. (The exhaustive comparison with an independent oracle on the Adult
//! data is in `tests/it/adult.rs`.)

use std::collections::HashMap;

use proptest::prelude::*;

use super::search::{Checker, ties};
use super::table::{Grouper, bottom, rollup};
use super::*;

const AGE: &str = "20;20-29;*\n25;20-29;*\n30;30-39;*\n35;30-39;*\n";
const ZIP: &str = "1001;100*;*\n1002;100*;*\n2001;200*;*\n2002;200*;*\n";
const SEX: &str = "m;*\nf;*\n";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn small() -> Anonymizer {
    Anonymizer::new(
        vec![
            ("age".into(), strings(&["20", "25", "30", "35", "20", "25"])),
            ("zip".into(), strings(&["1001", "1002", "2001", "2002", "1001", "1002"])),
        ],
        vec![
            Hierarchy::from_csv(AGE).expect("h"),
            Hierarchy::from_csv(ZIP).expect("h"),
        ],
        Some(strings(&["flu", "cold", "flu", "flu", "hiv", "flu"])),
    )
    .expect("anonymizer")
}

#[test]
fn two_anonymity_by_hand() {
    let a = small();
    // (20-29, 100*) ×4 and (30-39, 200*) ×2 is 2-anonymous; age alone at level 1 gives
    // (20-29,1001) ×2, (20-29,1002) ×2, (30-39,2001), (30-39,2002): not, without suppression.
    let mut c = Config::k_anonymity(2);
    let s = a.search(&c).expect("search");
    // [1,1]: classes 4 and 2 → DM 16 + 4 = 20. [0,1]/[1,0]-type nodes are not 2-anonymous
    // (age level 0 splits 30 and 35); [0, 2]: classes 20 ×2, 25 ×2, 30, 35: not anonymous.
    assert_eq!(
        (s.levels.clone(), s.score, s.suppressed, s.classes),
        (vec![1, 1], 20.0, 0, 2)
    );
    // With 2 rows suppressible, [0, 0] keeps (20,1001) ×2 and (25,1002) ×2 and suppresses the
    // two singletons: DM = 4 + 4 + 2·6 = 20 — a tie with [1,1], and level sum 0 < 2 wins.
    c.suppression_limit = 0.34;
    let s = a.search(&c).expect("search");
    assert_eq!(
        (s.levels.clone(), s.score, s.suppressed, s.classes),
        (vec![0, 0], 20.0, 2, 2)
    );
    let rows = a.apply(&c, &s.levels).expect("apply");
    assert_eq!(rows[0], vec!["20", "1001"]);
    assert_eq!(rows[2], vec!["*", "*"]);
    assert_eq!(rows[3], vec!["*", "*"]);
    let e = a.search_exhaustive(&c).expect("exhaustive");
    assert_eq!(
        (e.levels, e.score, e.suppressed, e.classes),
        (s.levels, s.score, s.suppressed, s.classes)
    );
}

#[test]
fn diversity_and_closeness_by_hand() {
    let a = small();
    // Distinct 2-diversity at [1,1]: (20-29,100*) has flu, cold, hiv; (30-39,200*) only flu.
    let c = Config {
        l: Some(Diversity::Distinct(2)),
        ..Config::k_anonymity(1)
    };
    let s = a.search(&c).expect("search");
    // Only the top node [2,2] (one class, flu ×4, cold, hiv) is 2-diverse without suppression.
    assert_eq!(s.levels, vec![2, 2]);
    let c = Config {
        suppression_limit: 0.5,
        ..c
    };
    let s = a.search(&c).expect("search");
    // Suppressing the 30 and 35 rows is allowed now: [0,0] keeps (20,1001) {flu, hiv} and
    // (25,1002) {cold, flu}: DM 4 + 4 + 2·6 = 20, below [1,1]'s 16 + 2·6 and the top's 36.
    assert_eq!((s.levels.clone(), s.score, s.suppressed), (vec![0, 0], 20.0, 2));
    // t-closeness ≈ 0: every class must look like the whole table — only the top does.
    let c = Config {
        t: Some(1e-9),
        ..Config::k_anonymity(1)
    };
    assert_eq!(a.search(&c).expect("search").levels, vec![2, 2]);
}

#[test]
fn bad_configurations_are_refused_and_impossible_ones_say_so() {
    let a = small();
    let e = a.search(&Config::k_anonymity(0)).expect_err("k = 0");
    assert!(e.to_string().contains("k must be at least 1"), "{e}");
    let e = a
        .search(&Config {
            suppression_limit: 1.5,
            ..Config::k_anonymity(2)
        })
        .expect_err("limit");
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    let e = a
        .search(&Config {
            suppression_limit: f64::NAN,
            ..Config::k_anonymity(2)
        })
        .expect_err("nan");
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    assert!(matches!(
        a.search(&Config::k_anonymity(7)),
        Err(crate::MaskError::NoSolution)
    ));
    // Everything suppressed is allowed at limit 1: the score is then rows² for DM.
    let s = a
        .search(&Config {
            suppression_limit: 1.0,
            ..Config::k_anonymity(7)
        })
        .expect("all suppressed");
    assert_eq!((s.suppressed, s.score, s.levels), (6, 36.0, vec![0, 0]));
    let no_sensitive = Anonymizer::new(
        vec![("sex".into(), strings(&["m", "f"]))],
        vec![Hierarchy::from_csv(SEX).expect("h")],
        None,
    )
    .expect("anonymizer");
    let e = no_sensitive
        .search(&Config {
            t: Some(0.2),
            ..Config::k_anonymity(1)
        })
        .expect_err("no sensitive");
    assert!(e.to_string().contains("sensitive attribute"), "{e}");
    assert!(a.apply(&Config::k_anonymity(2), &[3, 0]).is_err());
}

/// A random table over age, zip and sex with a sensitive value.
fn table() -> impl Strategy<Value = Vec<(usize, usize, usize, u32)>> {
    proptest::collection::vec((0usize..4, 0usize..4, 0usize..2, 0u32..3), 1..60)
}

fn anonymizer(rows: &[(usize, usize, usize, u32)]) -> Anonymizer {
    let ages = ["20", "25", "30", "35"];
    let zips = ["1001", "1002", "2001", "2002"];
    let sexes = ["m", "f"];
    Anonymizer::new(
        vec![
            ("age".into(), rows.iter().map(|r| ages[r.0].to_string()).collect()),
            ("zip".into(), rows.iter().map(|r| zips[r.1].to_string()).collect()),
            ("sex".into(), rows.iter().map(|r| sexes[r.2].to_string()).collect()),
        ],
        vec![
            Hierarchy::from_csv(AGE).expect("h"),
            Hierarchy::from_csv(ZIP).expect("h"),
            Hierarchy::from_csv(SEX).expect("h"),
        ],
        Some(rows.iter().map(|r| format!("s{}", r.3)).collect()),
    )
    .expect("anonymizer")
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::NonUniformEntropy),
        Just(Metric::Loss),
        Just(Metric::Discernibility)
    ]
}

fn diversity() -> impl Strategy<Value = Option<Diversity>> {
    prop_oneof![
        Just(None),
        (1usize..4).prop_map(|l| Some(Diversity::Distinct(l))),
        (1.0f64..3.0).prop_map(|l| Some(Diversity::Entropy(l))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The pruned search finds what evaluating every node finds: the same node and score.
    #[test]
    fn the_search_equals_the_exhaustive_evaluation(
        rows in table(), k in 1usize..6, supp in 0.0f64..0.3, metric in metric(),
        l in diversity(), t in proptest::option::of(0.2f64..0.9),
    ) {
        let a = anonymizer(&rows);
        let c = Config { k, l, t, suppression_limit: supp, metric };
        match (a.search(&c), a.search_exhaustive(&c)) {
            (Ok(s), Ok(e)) => {
                prop_assert!(ties(s.score, e.score), "{} vs {}", s.score, e.score);
                prop_assert_eq!(&s.levels, &e.levels);
                prop_assert_eq!((s.suppressed, s.classes), (e.suppressed, e.classes));
            }
            (Err(crate::MaskError::NoSolution), Err(crate::MaskError::NoSolution)) => {}
            (s, e) => prop_assert!(false, "search {:?}, exhaustive {:?}", s, e),
        }
    }

    /// The union-closed part of the models is monotone: along any generalization step the
    /// rows it suppresses never grow (what pruning by status relies on) — checked on the class
    /// tables of every node and each of its successors.
    #[test]
    fn union_closed_suppression_never_grows_upward(rows in table(), k in 1usize..6, l in 1usize..4) {
        let a = anonymizer(&rows);
        let models = Models::new(k, Some(Diversity::Distinct(l)), None);
        let lat = a.lattice();
        let mut g = Grouper::default();
        let mut checker = Checker::default();
        let b = bottom(&a.enc, true, &mut g);
        let mut supp = HashMap::new();
        for n in 0..lat.size() {
            let t = rollup(&a.enc, &b, lat.levels(0), lat.levels(n), &mut g);
            supp.insert(n, checker.evaluate(&a.enc, &models, &t, true).mono_suppressed);
        }
        for n in 0..lat.size() {
            for s in lat.successors(n) {
                prop_assert!(supp[&s] <= supp[&n], "node {:?} → {:?}", lat.levels(n), lat.levels(s));
            }
        }
    }

    /// What `apply` publishes is k-anonymous over the quasi-identifiers, suppressed rows aside,
    /// and suppresses exactly the rows the solution reports.
    #[test]
    fn applied_tables_are_k_anonymous(rows in table(), k in 1usize..5, supp in 0.0f64..0.3) {
        let a = anonymizer(&rows);
        let c = Config { suppression_limit: supp, ..Config::k_anonymity(k) };
        if let Ok(s) = a.search(&c) {
            let out = a.apply(&c, &s.levels).expect("apply");
            let mut classes: HashMap<Vec<&str>, usize> = HashMap::new();
            let mut suppressed = 0;
            for r in &out {
                if r.iter().all(|v| *v == "*") && s.levels.iter().zip(a.lattice().heights()).any(|(l, h)| l + 1 < *h) {
                    suppressed += 1;
                } else {
                    *classes.entry(r.clone()).or_default() += 1;
                }
            }
            prop_assert_eq!(suppressed, s.suppressed);
            prop_assert_eq!(classes.len(), s.classes);
            prop_assert!(classes.values().all(|c| *c >= k));
        }
    }
}
