//! Skew, heavy tails and rare categories — what disclosure control needs to have work to do.

use std::collections::HashMap;

use shuyu_democity::{person, rows_at};

use crate::common::{SEED, city, clean_rows, info, read};

fn numbers(name: &str, col: &str) -> Vec<f64> {
    let (dir, manifest) = city();
    let info = info(manifest, name);
    let t = read(dir, info);
    let c = t.col(col);
    let mut v: Vec<f64> = clean_rows(&t, info)
        .filter_map(|r| r[c].as_deref().and_then(|x| x.parse().ok()))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn median(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

#[test]
fn money_is_heavy_tailed() {
    let capital = numbers("enterprise", "registered_capital");
    let (max, med) = (capital[capital.len() - 1], median(&capital));
    assert!(max > 50.0 * med, "registered capital max {max} vs median {med}");
    assert!(capital[0] >= 10_000.0);

    let wages = numbers("social_insurance", "base_wage");
    let med = median(&wages);
    assert!((4_500.0..8_000.0).contains(&med), "median wage {med}");
    assert!(wages[wages.len() - 1] > 8.0 * med, "wage tail");

    for (name, col) in [
        ("medical_visit", "cost_total"),
        ("tax_payment", "tax_paid"),
        ("electricity", "kwh"),
    ] {
        let v = numbers(name, col);
        assert!(
            v[v.len() - 1] > 30.0 * median(&v).max(1.0),
            "{name}.{col} is not heavy-tailed"
        );
    }
}

#[test]
fn contributions_are_fixed_rates_of_the_base() {
    let (dir, manifest) = city();
    let info = info(manifest, "social_insurance");
    let t = read(dir, info);
    for row in clean_rows(&t, info) {
        let n = |i: usize| row[i].as_deref().and_then(|x| x.parse::<f64>().ok()).expect("number");
        let base = n(3);
        assert!((n(4) - base * 0.08).abs() <= 0.006, "pension {row:?}");
        assert!((n(5) - base * 0.02).abs() <= 0.006, "medical {row:?}");
        assert!((n(6) - base * 0.005).abs() <= 0.006, "unemployment {row:?}");
        let month = row[2].as_deref().expect("month");
        assert!(("2024-01"..="2025-12").contains(&month), "month {month}");
    }
    // A person pays at most once a month to one employer.
    let mut seen = std::collections::HashSet::new();
    for row in &t.rows {
        if let (Some(p), Some(e), Some(m)) = (&row[0], &row[1], &row[2]) {
            assert!(
                seen.insert((p.clone(), e.clone(), m.clone())),
                "duplicate contribution {row:?}"
            );
        }
    }
}

#[test]
fn rare_categories_exist() {
    // At scale 0.01 (10 000 people) some ethnic group has only a handful of members.
    let n = rows_at(1_000_000, 0.01);
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for i in 0..n {
        *counts.entry(person(SEED, i).expect("person").ethnicity).or_default() += 1;
    }
    let han = f64::from(counts["汉族"]) / n as f64;
    assert!((0.89..0.93).contains(&han), "汉族 share {han}");
    assert!(counts.values().any(|c| *c <= 3), "no rare ethnic group: {counts:?}");

    // 南县 has few enterprises.
    let (dir, manifest) = city();
    let ent = info(manifest, "enterprise");
    let t = read(dir, ent);
    let south = clean_rows(&t, ent)
        .filter(|r| r[6].as_deref() == Some("379903"))
        .count() as f64;
    assert!(
        south / (t.rows.len() as f64) < 0.08,
        "南县 share {}",
        south / t.rows.len() as f64
    );

    // ICD-10 has a long tail: many codes seen fewer than 5 times.
    let mv = info(manifest, "medical_visit");
    let t = read(dir, mv);
    let mut icd: HashMap<String, u32> = HashMap::new();
    for row in clean_rows(&t, mv) {
        *icd.entry(row[4].clone().expect("icd")).or_default() += 1;
    }
    assert!(icd.len() >= 20, "{icd:?}");
    assert!(icd.values().filter(|c| **c < 5).count() >= 2, "{icd:?}");
}

#[test]
fn buses_peak_at_rush_hour() {
    let (dir, manifest) = city();
    let info = info(manifest, "bus_ridership");
    let t = read(dir, info);
    let mut by_hour: HashMap<u32, (f64, u32)> = HashMap::new();
    for row in clean_rows(&t, info) {
        let h: u32 = row[2].as_deref().and_then(|x| x.parse().ok()).expect("hour");
        assert!((5..=23).contains(&h));
        let b: f64 = row[3].as_deref().and_then(|x| x.parse().ok()).expect("boardings");
        let e = by_hour.entry(h).or_default();
        e.0 += b;
        e.1 += 1;
    }
    let mean = |hs: &[u32]| {
        let (s, n) = hs
            .iter()
            .filter_map(|h| by_hour.get(h))
            .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        s / f64::from(n.max(1))
    };
    assert!(mean(&[7, 8, 17, 18]) > 1.3 * mean(&[10, 11, 13, 14, 20, 21]));
    let lines = t
        .rows
        .iter()
        .filter_map(|r| r[0].clone())
        .collect::<std::collections::HashSet<_>>();
    assert!(lines.iter().all(|l| l.len() == 4 && l.starts_with('L')));
}
