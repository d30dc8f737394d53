//! The gate on SQL outputs through the offline checker (the same algebra, plan and checks as a
//! job): identifiers refused by the algebra in any form, the value scan catching what a free-text
//! field carries, record-level outputs, remedies, and minting a release.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use shuyu_classify::FieldType;
use shuyu_core::ident::IdNumber;
use shuyu_engine::EngineError;
use shuyu_engine::offline::{LoadedTable, check_tables};
use shuyu_gate::release::{Decision, ReviewPoint};
use shuyu_gate::{Approval, Context, Destination, GateError, Outcome, Override, Report, Rules, Shape};

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

/// 400 people: ID, mobile, district, birth year, income, a free-text note quoting the ID;
/// district 海淀 has 3 people only.
fn people() -> LoadedTable {
    let n = 400;
    let district = |i: usize| if i < 3 { DISTRICTS[3] } else { DISTRICTS[i % 3] };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("birth_year", DataType::Int64, false),
        Field::new("income", DataType::Int64, false),
        Field::new("note", DataType::Utf8, false),
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
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("来电 {} 咨询", id(i))).collect::<Vec<_>>(),
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
        ("note".to_string(), FieldType::Text),
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
        .map(|f| f.result())
        .unwrap_or_else(|| panic!("no check {id}"))
}

async fn refused(sql: &str) -> &'static str {
    match check_tables(vec![people()], sql, &Rules::default()).await {
        Err(EngineError::Refused { rule, .. }) => rule,
        other => panic!("{sql}: expected a refusal, got {:?}", other.map(|(_, r)| r.verdict())),
    }
}

#[tokio::test]
async fn identifiers_are_refused_whatever_their_encoding_and_the_scan_reads_free_text() {
    // Every encoding of an identifier the old value scan had to see through is refused before
    // it runs: the algebra admits identifiers nowhere in an output.
    for sql in [
        "SELECT * FROM people",
        "SELECT x AS code FROM (SELECT id_number AS x FROM people) t",
        "SELECT reverse(id_number) AS v FROM people",
        "SELECT concat('ID:', id_number, '号') AS v FROM people",
        "SELECT substr(id_number, 1, 9) AS a, substr(id_number, 10) AS b FROM people",
        "SELECT CAST(mobile AS BIGINT) AS v FROM people",
        "SELECT district, MAX(id_number) AS v FROM people GROUP BY district",
        "SELECT district, MIN(CAST(mobile AS BIGINT)) AS v FROM people GROUP BY district",
        "SELECT id_number, COUNT(*) AS n FROM people GROUP BY id_number",
        "SELECT district, array_agg(income) AS v FROM people GROUP BY district",
        "SELECT district, COUNT(*) FROM people WHERE id_number <> '110101197001010011' GROUP BY district",
    ] {
        let rule = refused(sql).await;
        assert!(
            matches!(rule, "identifier" | "function" | "aggregate" | "subquery"),
            "{sql}: {rule}"
        );
    }
    // A free-text field the classifier took for text can still carry ID numbers: admitted as a
    // key, the value scan catches them.
    let (_, r) = check("SELECT note, COUNT(*) AS n FROM people GROUP BY note").await;
    assert_eq!(result(&r, "personal-info"), Outcome::Fail);
    assert_eq!(r.verdict(), Outcome::Fail);
    // A safe aggregate passes everything but the small district.
    let (_, r) = check("SELECT district, COUNT(*) AS n, AVG(income) AS mean FROM people GROUP BY district").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Pass);
    assert_eq!(result(&r, "personal-info"), Outcome::Pass);
    let t = r.finding("threshold").expect("threshold");
    assert_eq!(t.result(), Outcome::Fail);
    assert_eq!(t.cells().len(), 1);
    assert_eq!(t.cells()[0].keys.get("district").map(String::as_str), Some("海淀"));
    // Counting distinct people is not exporting them.
    let (_, r) = check(
        "SELECT district, COUNT(DISTINCT id_number) AS people FROM people GROUP BY district HAVING COUNT(*) >= 10",
    )
    .await;
    assert_eq!(r.verdict(), Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_table_over_no_rows_fails_as_a_small_one_would() {
    let (out, r) =
        check("SELECT district, birth_year, COUNT(*) AS n FROM people WHERE income < 0 GROUP BY district, birth_year")
            .await;
    assert_eq!(out.num_rows(), 0);
    assert_eq!(result(&r, "threshold"), Outcome::Fail, "{r:#?}");
}

#[tokio::test]
async fn shapes_outside_the_algebra_are_refused_with_their_rule() {
    for (sql, rule) in [
        (
            "SELECT district, COUNT(*) AS n, (SELECT MAX(income) FROM people) AS v FROM people GROUP BY district",
            "subquery",
        ),
        (
            "SELECT district, birth_year, COUNT(*) FROM people GROUP BY ROLLUP(district, birth_year)",
            "grouping_sets",
        ),
        (
            "SELECT district, n FROM (SELECT district, COUNT(*) AS n FROM people GROUP BY district) t",
            "nested_aggregate",
        ),
    ] {
        assert_eq!(refused(sql).await, rule, "{sql}");
    }
}

#[tokio::test]
async fn record_level_outputs_need_k_anonymity_and_a_reviewer() {
    let (_, r) = check("SELECT district, birth_year FROM people").await;
    assert_eq!(result(&r, "raw-rows"), Outcome::Review);
    let k = r.finding("k-anonymity").expect("k");
    assert_eq!(k.result(), Outcome::Fail);
    // The three 海淀 people are alone in their (district, birth year) classes.
    assert!(
        k.cells()
            .iter()
            .any(|c| c.keys.get("district").map(String::as_str) == Some("海淀"))
    );
    let (_, r) = check("SELECT district FROM people WHERE district <> '海淀'").await;
    assert_eq!(result(&r, "k-anonymity"), Outcome::Pass);
    assert_eq!(r.verdict(), Outcome::Review);
}

#[tokio::test]
async fn suppression_hides_small_cells_and_their_partners() {
    let rules = Rules::default();
    let ctx = Context::alone(&rules);
    let (out, report) = check(
        "SELECT district, birth_year < 1975 AS older, COUNT(*) AS n FROM people GROUP BY district, birth_year < 1975",
    )
    .await;
    assert_eq!(result(&report, "threshold"), Outcome::Fail);
    let remedied = shuyu_gate::remedy::suppress(&out, &report, &rules).expect("suppress");
    assert!(!remedied.primary.is_empty());
    assert!(
        !remedied.secondary.is_empty(),
        "a lone suppressed cell per line must get a partner"
    );
    let after = shuyu_gate::checks::run(&remedied.output, &ctx);
    assert_eq!(result(&after, "threshold"), Outcome::Pass, "{after:#?}");
    // No line (all keys fixed but one) of the released table keeps exactly one hidden cell.
    let Shape::Table(before) = out.shape() else {
        panic!("table")
    };
    let Shape::Table(kept) = remedied.output.shape() else {
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

fn override_of(check: &str, reviewer: &str, reason: &str) -> Override {
    Override {
        check: check.into(),
        reviewer: reviewer.into(),
        reason: reason.into(),
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
    let mint = |approval: &Approval, ctx: &Context<'_>| shuyu_gate::mint("r1", out.clone(), ctx, approval, None);
    let approval = Approval::new(vec![decision("alice"), decision("bob")], Vec::new(), 2);
    assert!(matches!(mint(&approval, &ctx), Err(GateError::NotOverridden { .. })));
    let overridden = vec![override_of(
        "threshold",
        "alice",
        "the small district is published by the statistics bureau",
    )];
    let approval = Approval::new(vec![decision("alice"), decision("bob")], overridden.clone(), 2);
    let minted = mint(&approval, &ctx).expect("minted");
    assert_eq!(minted.released.release(), "r1");
    assert_eq!(minted.report.verdict(), Outcome::Fail, "the report it was judged by");
    assert!(minted.released.to_csv().expect("csv").value().starts_with("district,n"));
    // Two-person review: one reviewer is not enough.
    let approval = Approval::new(vec![decision("alice")], overridden.clone(), 2);
    assert!(matches!(
        mint(&approval, &ctx),
        Err(GateError::NotEnoughReviewers { have: 1, need: 2 })
    ));
    // A point left unsatisfied declines.
    let mut d = decision("bob");
    d.points.insert(ReviewPoint::SourcesStated, false);
    let approval = Approval::new(vec![decision("alice"), d], overridden.clone(), 2);
    assert!(matches!(mint(&approval, &ctx), Err(GateError::Declined { .. })));
    // An override by someone who did not approve does not count.
    let approval = Approval::new(
        vec![decision("alice"), decision("bob")],
        vec![override_of("threshold", "mallory", "trust me")],
        2,
    );
    assert!(matches!(mint(&approval, &ctx), Err(GateError::NotOverridden { .. })));
    // Abroad: refused whatever the reviewers say.
    let abroad = Destination {
        recipient: "Overseas Ltd".into(),
        cross_border: true,
    };
    let mut everything = overridden;
    everything.push(override_of("cross-border", "alice", "please"));
    let approval = Approval::new(vec![decision("alice"), decision("bob")], everything, 2);
    assert!(matches!(
        mint(
            &approval,
            &Context {
                destination: Some(&abroad),
                ..ctx
            }
        ),
        Err(GateError::CrossBorder)
    ));
}

/// Reviewers see an output beside its report with the flagged cells marked — but never the
/// rows of an output the gate found to be personal information.
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

    let (output, report) = check("SELECT note, COUNT(*) AS n FROM people GROUP BY note").await;
    let copy = shuyu_gate::review_copy(&output, &report, 100);
    assert!(
        matches!(copy.withheld_by(), Some("raw-rows" | "personal-info")),
        "{:?}",
        copy.withheld_by()
    );
    assert!(copy.rows().is_empty());
    let shown = serde_json::to_string(&copy).expect("json");
    assert!(!shown.contains(&id(1)), "no ID number reaches a reviewer: {shown}");
}
