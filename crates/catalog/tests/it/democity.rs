//! The demo city's eight datasets through the real import: row counts, an error
//! report that lists exactly the documented dirty rows, and the personal fields
//! classified as DEMO_CITY.md says.

use std::collections::BTreeSet;

use shuyu_classify::{FieldType, Level, Sensitivity};
use shuyu_democity::{DirtyKind, Options as CityOptions};
use shuyu_import::Options;

use crate::World;

/// Every field of the demo city that identifies or describes a person (DEMO_CITY.md),
/// with the type and flag the classifier must suggest.
const PERSONAL: &[(&str, &str, FieldType, Sensitivity)] = &[
    (
        "population",
        "person_id",
        FieldType::IdNumber,
        Sensitivity::SensitivePersonal,
    ),
    ("population", "name", FieldType::PersonName, Sensitivity::Personal),
    ("population", "gender", FieldType::Category, Sensitivity::Personal),
    ("population", "birth_date", FieldType::Date, Sensitivity::Personal),
    ("population", "ethnicity", FieldType::Category, Sensitivity::Personal),
    ("population", "address", FieldType::Address, Sensitivity::Personal),
    ("population", "phone", FieldType::Mobile, Sensitivity::Personal),
    (
        "enterprise",
        "legal_rep_id",
        FieldType::IdNumber,
        Sensitivity::SensitivePersonal,
    ),
    (
        "social_insurance",
        "person_id",
        FieldType::IdNumber,
        Sensitivity::SensitivePersonal,
    ),
    (
        "medical_visit",
        "person_id",
        FieldType::IdNumber,
        Sensitivity::SensitivePersonal,
    ),
    (
        "medical_visit",
        "icd10",
        FieldType::Category,
        Sensitivity::SensitivePersonal,
    ),
    (
        "property",
        "owner_id",
        FieldType::PartyId,
        Sensitivity::SensitivePersonal,
    ),
];

/// Money a person earns, pays or is paid: personal by its name, graded L3.
const PAID_BY_PEOPLE: &[(&str, &str)] = &[
    ("social_insurance", "base_wage"),
    ("social_insurance", "pension"),
    ("social_insurance", "medical"),
    ("social_insurance", "unemployment"),
    ("medical_visit", "cost_total"),
    ("medical_visit", "insurance_paid"),
];

/// The rule the importer must report for a documented defect.
fn expected_rules(kind: DirtyKind) -> &'static [&'static str] {
    match kind {
        DirtyKind::BadCheckDigit => &["id_number_check", "uscc_check"],
        DirtyKind::MissingField => &["required"],
        DirtyKind::BadDate => &["not_a_date"],
        DirtyKind::NotANumber => &["not_a_number"],
    }
}

#[tokio::test]
async fn every_demo_dataset_imports_with_exactly_its_dirty_rows_reported() {
    let w = World::all().await.into_iter().next().expect("sqlite world");
    let out = w.dir.path().join("city");
    let manifest =
        shuyu_democity::generate(&out, &CityOptions { scale: 0.001, seed: 42 }, &mut |_, _, _| {}).expect("generate");
    let yb = w.who("yibao").await;
    for ds in &manifest.datasets {
        let (v, errors) = w
            .catalog
            .import(&yb, &ds.name, None, &out.join(&ds.file), &ds.file, &Options::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", ds.name));
        for c in &v.columns {
            let want = PERSONAL.iter().find(|(d, f, _, _)| *d == ds.name && *f == c.name);
            match want {
                Some((_, _, ty, sens)) => {
                    assert_eq!(
                        (c.class.field_type, c.class.sensitivity),
                        (*ty, *sens),
                        "{}.{}",
                        ds.name,
                        c.name
                    );
                    let level = if *sens == Sensitivity::SensitivePersonal {
                        Level::L4
                    } else {
                        Level::L3
                    };
                    assert_eq!(c.class.grade.level, Some(level), "{}.{}", ds.name, c.name);
                }
                None if PAID_BY_PEOPLE.contains(&(ds.name.as_str(), c.name.as_str())) => {
                    assert_eq!(c.class.sensitivity, Sensitivity::Personal, "{}.{}", ds.name, c.name);
                }
                None => assert!(
                    !matches!(
                        c.class.sensitivity,
                        Sensitivity::Personal | Sensitivity::SensitivePersonal
                    ),
                    "{}.{} flagged personal: {:?}",
                    ds.name,
                    c.name,
                    c.class
                ),
            }
            // Reviewers only ever see masked examples.
            for ex in &c.examples {
                assert!(
                    ex.contains('*') || ex.starts_with('~'),
                    "{}.{} example {ex}",
                    ds.name,
                    c.name
                );
            }
        }
        // 就高从严: the dataset's grade is its strictest field's.
        let strictest = shuyu_classify::dataset_grade(v.columns.iter().map(|c| &c.class.grade));
        assert_eq!(v.grade, strictest.code(), "{}", ds.name);
        let got: BTreeSet<(u64, String, String)> = errors
            .iter()
            .map(|e| (e.row_no as u64, e.field.clone(), e.rule.clone()))
            .collect();
        let want: BTreeSet<(u64, String)> = ds.dirty.iter().map(|d| (d.row, d.field.clone())).collect();
        let got_rows: BTreeSet<(u64, String)> = got.iter().map(|(r, f, _)| (*r, f.clone())).collect();
        assert_eq!(got_rows, want, "{}: reported errors vs documented dirty rows", ds.name);
        for d in &ds.dirty {
            let kind = DirtyKind::from_code(&d.kind).expect("kind");
            let rule = &got
                .iter()
                .find(|(r, f, _)| *r == d.row && *f == d.field)
                .expect("row")
                .2;
            assert!(
                expected_rules(kind).contains(&rule.as_str()),
                "{} row {}: {} for {}",
                ds.name,
                d.row,
                rule,
                d.kind
            );
        }
        assert_eq!(v.rows_read as u64, ds.rows, "{}", ds.name);
        assert_eq!(v.rows_quarantined as usize, ds.dirty.len(), "{}", ds.name);
        assert_eq!(v.rows_accepted as u64, ds.rows - ds.dirty.len() as u64, "{}", ds.name);
    }
    w.db.finish().await;
}
