//! Identifiers, dirty rows and references, cell by cell.

use std::collections::HashSet;

use shuyu_core::ident::{IdNumber, Mobile, Sex};
use shuyu_democity::{DATASETS, DirtyKind, person};

use crate::common::{SEED, check_cells, city, clean_rows, info, read};

#[test]
fn every_cell_is_clean_unless_listed_dirty_and_every_listed_defect_is_real() {
    let (dir, manifest) = city();
    for info in &manifest.datasets {
        let rows = check_cells(dir, info);
        assert_eq!(rows as u64, info.rows, "{}", info.name);
    }
}

#[test]
fn dirty_rows_are_about_half_a_percent_of_every_dataset() {
    let (_, manifest) = city();
    for info in &manifest.datasets {
        let rows: Vec<u64> = info.dirty.iter().map(|d| d.row).collect();
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "{}: ascending, one defect per row",
            info.name
        );
        assert!(rows.iter().all(|r| (1..=info.rows).contains(r)), "{}", info.name);
        for d in &info.dirty {
            assert!(
                DirtyKind::from_code(&d.kind).is_some(),
                "{}: kind {}",
                info.name,
                d.kind
            );
            assert!(info.columns.contains(&d.field), "{}: field {}", info.name, d.field);
        }
        // At this scale every dataset has at least 100 rows, so 0.2 %–1 % is at least one row.
        assert!(info.rows >= 100, "{}", info.name);
        assert!(!info.dirty.is_empty(), "{} has no dirty row", info.name);
        let rate = info.dirty.len() as f64 / info.rows as f64;
        assert!((0.002..=0.01).contains(&rate), "{}: dirty rate {rate}", info.name);
    }
    // Parquet has typed dates and numbers: only missing values and bad check digits.
    let mv = info(manifest, "medical_visit");
    assert!(
        mv.dirty
            .iter()
            .all(|d| d.kind == "missing_field" || d.kind == "bad_check_digit")
    );
    let kinds: HashSet<&str> = manifest
        .datasets
        .iter()
        .flat_map(|d| d.dirty.iter().map(|r| r.kind.as_str()))
        .collect();
    assert_eq!(kinds.len(), 4, "all four defect kinds occur: {kinds:?}");
    assert_eq!(DATASETS.len(), manifest.datasets.len());
}

#[test]
fn population_rows_agree_with_their_identity_numbers() {
    let (dir, manifest) = city();
    let info = info(manifest, "population");
    let table = read(dir, info);
    let dirty: HashSet<u64> = info.dirty.iter().map(|d| d.row).collect();
    let mut ids = HashSet::new();
    for (i, row) in table.rows.iter().enumerate() {
        let n = i as u64 + 1;
        if !dirty.contains(&n) {
            let id = IdNumber::parse(row[0].as_deref().expect("id")).expect("valid id");
            let gender = if id.sex() == Sex::Male { "男" } else { "女" };
            assert_eq!(row[2].as_deref(), Some(gender), "row {n}");
            assert_eq!(row[3].as_deref(), Some(id.birth_date().to_string().as_str()), "row {n}");
            assert!(Mobile::parse(row[7].as_deref().expect("phone")).is_ok(), "row {n}");
            let age = id.age_on(jiff::civil::date(2025, 12, 31));
            assert!((0..=95).contains(&age), "row {n}: age {age}");
            // The file's row is the pure function of (seed, index).
            let p = person(SEED, i as u64).expect("person");
            assert_eq!(row[0].as_deref(), Some(p.id.as_str()));
            assert_eq!(row[1].as_deref(), Some(p.name.as_str()));
            assert_eq!(row[6].as_deref(), Some(p.address.as_str()));
        }
        if let Some(id) = &row[0] {
            assert!(ids.insert(id.clone()), "duplicate person_id {id}");
        }
    }
}

#[test]
fn references_point_at_clean_rows_of_the_registers() {
    let (dir, manifest) = city();
    let people: HashSet<String> = {
        let info = info(manifest, "population");
        let t = read(dir, info);
        clean_rows(&t, info).filter_map(|r| r[0].clone()).collect()
    };
    let firms_info = info(manifest, "enterprise");
    let firms_table = read(dir, firms_info);
    let firms: HashSet<String> = clean_rows(&firms_table, firms_info)
        .filter_map(|r| r[0].clone())
        .collect();
    assert!(!people.is_empty() && !firms.is_empty());

    let check = |name: &str, col: &str, register: &str| {
        let info = info(manifest, name);
        let t = read(dir, info);
        let c = t.col(col);
        let mut n = 0;
        for row in clean_rows(&t, info) {
            let Some(v) = &row[c] else { continue };
            let found = match register {
                "population" => people.contains(v),
                "enterprise" => firms.contains(v),
                _ => people.contains(v) || firms.contains(v),
            };
            assert!(found, "{name}.{col} = {v} is not in the registers");
            n += 1;
        }
        assert!(n > 0, "{name}.{col}: nothing checked");
    };
    check("social_insurance", "person_id", "population");
    check("social_insurance", "employer_uscc", "enterprise");
    check("enterprise", "legal_rep_id", "population");
    check("medical_visit", "person_id", "population");
    check("property", "owner_id", "either");
    check("electricity", "uscc", "enterprise");

    // tax_payment: row r is enterprise (r-1)/12; only an enterprise whose own
    // register row has a corrupted code is missing from the register.
    let tax = info(manifest, "tax_payment");
    let t = read(dir, tax);
    let corrupted: HashSet<u64> = firms_info
        .dirty
        .iter()
        .filter(|d| d.field == "uscc")
        .map(|d| d.row)
        .collect();
    let registered: HashSet<&str> = firms_table
        .rows
        .iter()
        .enumerate()
        .filter(|(i, _)| !corrupted.contains(&(*i as u64 + 1)))
        .filter_map(|(_, r)| r[0].as_deref())
        .collect();
    let dirty: HashSet<u64> = tax.dirty.iter().map(|d| d.row).collect();
    for (i, row) in t.rows.iter().enumerate() {
        if dirty.contains(&(i as u64 + 1)) {
            continue;
        }
        let code = row[0].as_deref().expect("uscc");
        let firm_row = i as u64 / 12 + 1;
        assert!(
            registered.contains(code) || corrupted.contains(&firm_row),
            "tax row {} {code}",
            i + 1
        );
        if let Some(Some(reg)) = firms_table.rows.get(i / 12).map(|r| r[0].clone())
            && !corrupted.contains(&firm_row)
        {
            assert_eq!(code, reg, "tax row {} belongs to enterprise row {firm_row}", i + 1);
        }
    }
}
