//! The gate on SQL outputs: raw rows and identifiers in any encoding are caught, lineage
//! follows renames, the shapes the gate cannot read fail closed, differencing against the
//! ledger, k-anonymity of record-level outputs, remedies, and minting a release.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use shuyu_classify::FieldType;
use shuyu_core::ident::IdNumber;
use shuyu_engine::EngineError;
use shuyu_engine::offline::{LoadedTable, check_tables};
use shuyu_gate::release::{Decision, ReviewPoint};
use shuyu_gate::{Approval, Context, Destination, GateError, LedgerEntry, Outcome, Override, Report, Rules, Shape};

/// A valid GB 11643 number for person `i`.
fn id(i: usize) -> String {
    let first17 = format!("110101{}{:03}", 19700101 + (i % 28) as u32, i % 1000);
    let check = IdNumber::check_char(first17.as_bytes()).expect("17 digits");
    format!("{first17}{check}")
}

fn mobile(i: usize) -> String {
    format!("1381234{:04}", i % 10000)
}

const DISTRICTS: [&str; 4] = ["东城", "西城", "朝阳", "海淀"];

/// 400 people: ID, mobile, district, birth year, income; district 海淀 has 3 people only.
fn people() -> LoadedTable {
    let n = 400;
    let district = |i: usize| if i < 3 { DISTRICTS[3] } else { DISTRICTS[i % 3] };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("birth_year", DataType::Int64, false),
        Field::new("income", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from((0..n).map(id).collect::<Vec<_>>())),
            Arc::new(StringArray::from((0..n).map(mobile).collect::<Vec<_>>())),
            Arc::new(StringArray::from((0..n).map(district).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(
                (0..n).map(|i| 1950 + (i % 50) as i64).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                (0..n).map(|i| 3000 + (i * 37 % 5000) as i64).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch");
    let types = HashMap::from([
        ("id_number".to_string(), FieldType::IdNumber),
        ("mobile".to_string(), FieldType::Mobile),
        ("district".to_string(), FieldType::Category),
        ("birth_year".to_string(), FieldType::Integer),
        ("income".to_string(), FieldType::Integer),
    ]);
    LoadedTable {
        name: "people".into(),
        batch,
        types,
    }
}

async fn check(sql: &str) -> (shuyu_gate::Output, Report) {
    check_tables(vec![people()], sql, &Rules::default())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn result(report: &Report, id: &str) -> Outcome {
    report
        .finding(id)
        .map(|f| f.result)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[tokio::test]
async fn raw_rows_and_identifiers_in_any_encoding_are_flagged() {
    let (_, r) = check("SELECT * FROM people").await;
    assert_eq!(r.verdict, Outcome::Fail);
    assert_eq!(result(&r, "raw-rows"), Outcome::Fail);
    assert_eq!(result(&r, "personal-info"), Outcome::Fail);

    // Renamed through a subquery: the lineage still leads to the ID number.
    let (_, r) = check("SELECT x AS code FROM (SELECT id_number AS x FROM people) t").await;
    let raw = r.finding("raw-rows").expect("raw-rows");
    assert_eq!(raw.result, Outcome::Fail);
    assert_eq!(raw.cells[0].column.as_deref(), Some("code"));

    // Every encoding the value scan must see through, each on its own (no identifier source
    // in the values' lineage is needed for the scan to fail them).
    for sql in [
        "SELECT reverse(id_number) AS v FROM people",
        "SELECT concat('ID:', id_number, '号') AS v FROM people",
        "SELECT concat(substr(id_number, 1, 6), ' ', substr(id_number, 7, 8), '-', substr(id_number, 15)) AS v FROM people",
        "SELECT concat(id_number, mobile) AS v FROM people",
        "SELECT substr(id_number, 1, 9) AS a, substr(id_number, 10) AS b FROM people",
        "SELECT substr(mobile, 1, 3) AS a, substr(mobile, 4) AS b FROM people",
        "SELECT CAST(mobile AS BIGINT) AS v FROM people",
        "SELECT CAST(mobile AS DOUBLE) AS v FROM people",
        "SELECT district, MAX(id_number) AS v FROM people GROUP BY district",
        "SELECT district, MIN(CAST(mobile AS BIGINT)) AS v FROM people GROUP BY district",
    ] {
        let (_, r) = check(sql).await;
        assert_eq!(result(&r, "personal-info"), Outcome::Fail, "{sql}");
        assert_eq!(r.verdict, Outcome::Fail, "{sql}");
    }

    // Grouped by a person: per-person detail.
    let (_, r) = check("SELECT id_number, COUNT(*) AS n FROM people GROUP BY id_number").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Fail);
    // Aggregates that list values.
    let (_, r) = check("SELECT district, array_agg(income) AS v FROM people GROUP BY district").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Fail);

    // A safe aggregate passes everything but the small district.
    let (_, r) = check("SELECT district, COUNT(*) AS n, AVG(income) AS mean FROM people GROUP BY district").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Pass);
    assert_eq!(result(&r, "personal-info"), Outcome::Pass);
    let t = r.finding("threshold").expect("threshold");
    assert_eq!(t.result, Outcome::Fail);
    assert_eq!(t.cells.len(), 1);
    assert_eq!(t.cells[0].keys.get("district").map(String::as_str), Some("海淀"));
    // Counting distinct people is not exporting them.
    let (_, r) = check(
        "SELECT district, COUNT(DISTINCT id_number) AS people FROM people GROUP BY district HAVING COUNT(*) >= 10",
    )
    .await;
    assert_eq!(r.verdict, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_two_key_table_over_no_rows_is_checked_without_data() {
    let (_, r) =
        check("SELECT district, birth_year, COUNT(*) AS n FROM people WHERE income < 0 GROUP BY district, birth_year")
            .await;
    assert_eq!(r.verdict, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn shapes_the_gate_cannot_read_fail_closed() {
    for sql in [
        "SELECT district, COUNT(*) AS n, (SELECT MAX(id_number) FROM people) AS v FROM people GROUP BY district",
        "SELECT district, birth_year, COUNT(*) FROM people GROUP BY ROLLUP(district, birth_year)",
        "SELECT district, n FROM (SELECT district, COUNT(*) AS n FROM people GROUP BY district) t",
    ] {
        let e = check_tables(vec![people()], sql, &Rules::default()).await.err();
        assert!(matches!(e, Some(EngineError::GateUnsupported(_))), "{sql}: {e:?}");
    }
}

#[tokio::test]
async fn record_level_outputs_need_k_anonymity_and_a_reviewer() {
    let (_, r) = check("SELECT district, birth_year FROM people").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Review);
    let k = r.finding("k-anonymity").expect("k");
    assert_eq!(k.result, Outcome::Fail);
    // The three 海淀 people are alone in their (district, birth year) classes.
    assert!(
        k.cells
            .iter()
            .any(|c| c.keys.get("district").map(String::as_str) == Some("海淀"))
    );
    let (_, r) = check("SELECT district FROM people WHERE district <> '海淀'").await;
    assert_eq!(result(&r, "k-anonymity"), Outcome::Pass);
    assert_eq!(r.verdict, Outcome::Review);
}

#[tokio::test]
async fn differencing_against_the_ledger() {
    let rules = Rules::default();
    let (first, _) =
        check("SELECT district, COUNT(*) AS n FROM people WHERE district <> '海淀' GROUP BY district").await;
    let ledger = vec![LedgerEntry::of("r1", &first).expect("a table")];
    // The same table without one person: subtracting reveals them.
    let (second, _) = check(&format!(
        "SELECT district, COUNT(*) AS n FROM people WHERE district <> '海淀' AND id_number <> '{}' GROUP BY district",
        id(5)
    ))
    .await;
    let ctx = Context {
        rules: &rules,
        ledger: &ledger,
        destination: None,
    };
    let report = shuyu_gate::checks::run(&second, &ctx);
    let d = report.finding("differencing").expect("differencing");
    assert_eq!(d.result, Outcome::Fail);
    assert_eq!(d.cells.len(), 1, "{d:#?}");
    // A finer table whose margins differ by one from the released totals is caught too.
    let (finer, _) = check(&format!(
        "SELECT district, birth_year < 1975 AS older, COUNT(*) AS n FROM people WHERE district <> '海淀' AND id_number <> '{}' GROUP BY district, birth_year < 1975",
        id(5)
    ))
    .await;
    let report = shuyu_gate::checks::run(&finer, &ctx);
    assert_eq!(result(&report, "differencing"), Outcome::Fail);
    // The identical table again reveals nothing new.
    let report = shuyu_gate::checks::run(&first, &ctx);
    assert_eq!(result(&report, "differencing"), Outcome::Pass);
}

#[tokio::test]
async fn suppression_hides_small_cells_and_their_partners() {
    let rules = Rules::default();
    let ctx = Context {
        rules: &rules,
        ledger: &[],
        destination: None,
    };
    let (out, report) = check(
        "SELECT district, birth_year < 1975 AS older, COUNT(*) AS n FROM people GROUP BY district, birth_year < 1975",
    )
    .await;
    assert_eq!(result(&report, "threshold"), Outcome::Fail);
    let remedied = shuyu_gate::remedy::suppress(&out, &report).expect("suppress");
    assert!(!remedied.primary.is_empty());
    assert!(
        !remedied.secondary.is_empty(),
        "a lone suppressed cell per line must get a partner"
    );
    let after = shuyu_gate::checks::run(&remedied.output, &ctx);
    assert_eq!(result(&after, "threshold"), Outcome::Pass, "{after:#?}");
    // No line (all keys fixed but one) of the released table keeps exactly one hidden cell.
    let Shape::Table(before) = &out.shape else {
        panic!("table")
    };
    let Shape::Table(kept) = &remedied.output.shape else {
        panic!("table")
    };
    for d in 0..2 {
        let mut lines: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for c in &before.cells {
            let line = c.key[1 - d].clone();
            let hidden = !kept.cells.iter().any(|k| k.key == c.key);
            let e = lines.entry(line).or_default();
            e.0 += 1;
            e.1 += usize::from(hidden);
        }
        assert!(lines.values().all(|(_, hidden)| *hidden != 1), "{lines:?}");
    }
    // Rounding a frequency table leaves a person to confirm, not a failure.
    let rounded = shuyu_gate::remedy::round(&out, 5).expect("round");
    let after = shuyu_gate::checks::run(&rounded.output, &ctx);
    assert_eq!(result(&after, "threshold"), Outcome::Review);
}

fn decision(reviewer: &str) -> Decision {
    Decision {
        reviewer: reviewer.into(),
        points: ReviewPoint::ALL.iter().map(|p| (*p, true)).collect(),
        reasons: "fits the approved report".into(),
        approve: true,
    }
}

#[tokio::test]
async fn only_a_passing_or_overridden_and_approved_output_is_minted() {
    let rules = Rules::default();
    let (out, _) = check("SELECT district, COUNT(*) AS n FROM people GROUP BY district").await;
    let domestic = Destination {
        recipient: "示范银行".into(),
        cross_border: false,
    };
    let ctx = Context {
        rules: &rules,
        ledger: &[],
        destination: Some(&domestic),
    };
    let report = shuyu_gate::checks::run(&out, &ctx);
    assert_eq!(report.verdict, Outcome::Fail);
    let mut approval = Approval {
        decisions: vec![decision("alice"), decision("bob")],
        overrides: Vec::new(),
        required_reviewers: 2,
    };
    assert!(matches!(
        shuyu_gate::mint("r1", (), &report, &approval),
        Err(GateError::NotOverridden { .. })
    ));
    approval.overrides.push(Override {
        check: "threshold".into(),
        reviewer: "alice".into(),
        reason: "the small district is published by the statistics bureau".into(),
    });
    assert!(shuyu_gate::mint("r1", (), &report, &approval).is_ok());
    // Two-person review: one reviewer is not enough.
    approval.decisions.truncate(1);
    assert!(matches!(
        shuyu_gate::mint("r1", (), &report, &approval),
        Err(GateError::NotEnoughReviewers { have: 1, need: 2 })
    ));
    // A point left unsatisfied declines.
    let mut d = decision("bob");
    d.points.insert(ReviewPoint::SourcesStated, false);
    approval.decisions = vec![decision("alice"), d];
    assert!(matches!(
        shuyu_gate::mint("r1", (), &report, &approval),
        Err(GateError::Declined { .. })
    ));
    // Abroad: refused whatever the reviewers say.
    let abroad = Destination {
        recipient: "Overseas Ltd".into(),
        cross_border: true,
    };
    let report = shuyu_gate::checks::run(
        &out,
        &Context {
            destination: Some(&abroad),
            ..ctx
        },
    );
    approval.decisions = vec![decision("alice"), decision("bob")];
    approval.overrides.push(Override {
        check: "cross-border".into(),
        reviewer: "alice".into(),
        reason: "please".into(),
    });
    assert!(matches!(
        shuyu_gate::mint("r1", (), &report, &approval),
        Err(GateError::CrossBorder)
    ));
}

/// Reviewers see an output beside its report with the flagged cells marked — but never the
/// rows of an output the gate found to be raw records or identifiers.
#[tokio::test]
async fn reviewers_see_flagged_cells_marked_and_never_raw_rows() {
    let (output, report) = check("SELECT district, COUNT(*) AS n FROM people GROUP BY district").await;
    let copy = shuyu_gate::review_copy(&output, &report, 100);
    assert_eq!(copy.withheld_by(), None);
    assert_eq!(copy.columns(), ["district", "n"]);
    assert_eq!((copy.rows().len(), copy.total_rows()), (4, 4));
    for row in copy.rows() {
        let small = row[0].text == "海淀";
        assert_eq!(
            row[1].flagged_by.contains(&"threshold".to_string()),
            small,
            "only the 3-person district's count is flagged: {row:?}"
        );
    }
    let limited = shuyu_gate::review_copy(&output, &report, 2);
    assert_eq!((limited.rows().len(), limited.total_rows()), (2, 4));

    for sql in [
        "SELECT * FROM people",
        "SELECT district, MAX(mobile) AS m FROM people GROUP BY district",
    ] {
        let (output, report) = check(sql).await;
        let copy = shuyu_gate::review_copy(&output, &report, 100);
        assert!(
            matches!(copy.withheld_by(), Some("raw-rows" | "personal-info")),
            "{sql}: {:?}",
            copy.withheld_by()
        );
        assert!(copy.rows().is_empty(), "{sql}");
        assert!(copy.total_rows() > 0, "{sql}");
        let shown = serde_json::to_string(&copy).expect("json");
        assert!(
            !shown.contains("13812340"),
            "{sql}: no mobile reaches a reviewer: {shown}"
        );
    }
}
