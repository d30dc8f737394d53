//! The algebra, rule by rule: what it admits, what it refuses and why, and that the plan it builds
//! computes the developer's measures exactly while its evidence counts entities.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use shuyu_classify::{FieldType, classify_field};
use shuyu_gate::{Output, Shape};
use shuyu_import::Column;
use shuyu_mask::catalog::ScenarioKeys;
use shuyu_workflow::requests::RowScope;

use super::Profile;
use crate::EngineError;
use crate::jobs::{planning_session, prepare, session};
use crate::sample::Entity;
use crate::scenario::{EntityKey, Rows, ScenarioTable, Scope, View};

fn column(name: &str, t: FieldType) -> Column {
    let mut class = classify_field(name, std::iter::empty());
    class.field_type = t;
    Column {
        name: name.into(),
        class,
        required: false,
        examples: Vec::new(),
        overridden: true,
    }
}

/// A table: its columns (name, type, values as text), all approved.
struct Table {
    name: &'static str,
    columns: Vec<(&'static str, FieldType, ArrayRef)>,
}

fn people() -> Table {
    // 40 people: 30 in 379901, 10 in 379902; person 0 has a rare diagnosis (see visits).
    let n = 40;
    let ids: Vec<String> = (0..n).map(|i| format!("P{i:03}")).collect();
    Table {
        name: "population",
        columns: vec![
            ("person_id", FieldType::IdNumber, Arc::new(StringArray::from(ids))),
            (
                "name",
                FieldType::PersonName,
                Arc::new(StringArray::from((0..n).map(|i| format!("名{i}")).collect::<Vec<_>>())),
            ),
            (
                "region",
                FieldType::Integer,
                Arc::new(Int64Array::from(
                    (0..n).map(|i| if i < 30 { 379901 } else { 379902 }).collect::<Vec<_>>(),
                )),
            ),
            (
                "gender",
                FieldType::Category,
                Arc::new(StringArray::from(
                    (0..n).map(|i| if i % 2 == 0 { "F" } else { "M" }).collect::<Vec<_>>(),
                )),
            ),
            (
                "birth_year",
                FieldType::Integer,
                Arc::new(Int64Array::from((0..n).map(|i| 1950 + (i % 40)).collect::<Vec<_>>())),
            ),
            (
                "income",
                FieldType::Decimal,
                Arc::new(Float64Array::from(
                    (0..n)
                        .map(|i| if i == 7 { 1_000_000.0 } else { 3000.0 + i as f64 })
                        .collect::<Vec<_>>(),
                )),
            ),
        ],
    }
}

fn visits() -> Table {
    // Person 0: 25 visits of X99. Everybody else: one visit of J10.
    let mut person = Vec::new();
    let mut icd = Vec::new();
    let mut cost = Vec::new();
    for _ in 0..25 {
        person.push("P000".to_string());
        icd.push("X99");
        cost.push(100.0);
    }
    for i in 1..40 {
        person.push(format!("P{i:03}"));
        icd.push("J10");
        cost.push(10.0 + i as f64);
    }
    let n = person.len();
    Table {
        name: "medical_visit",
        columns: vec![
            (
                "visit_id",
                FieldType::Text,
                Arc::new(StringArray::from((0..n).map(|i| format!("V{i}")).collect::<Vec<_>>())),
            ),
            ("person_id", FieldType::IdNumber, Arc::new(StringArray::from(person))),
            ("icd10", FieldType::Text, Arc::new(StringArray::from(icd))),
            ("cost", FieldType::Decimal, Arc::new(Float64Array::from(cost))),
        ],
    }
}

fn enterprises() -> Table {
    Table {
        name: "enterprise",
        columns: vec![
            (
                "uscc",
                FieldType::Uscc,
                Arc::new(StringArray::from(
                    (0..20).map(|i| format!("E{i:02}")).collect::<Vec<_>>(),
                )),
            ),
            (
                "region",
                FieldType::Integer,
                Arc::new(Int64Array::from(vec![379901i64; 20])),
            ),
            (
                "industry",
                FieldType::Category,
                Arc::new(StringArray::from(
                    (0..20).map(|i| if i < 15 { "C" } else { "F" }).collect::<Vec<_>>(),
                )),
            ),
        ],
    }
}

/// A scenario over the tables: (planner, its catalog, the engine's session).
struct Scenario {
    planner: datafusion::prelude::SessionContext,
    catalog: super::Catalog,
    engine: datafusion::prelude::SessionContext,
}

fn scenario(tables: Vec<Table>) -> Scenario {
    let engine = session(None);
    let mut views = Vec::new();
    for t in tables {
        let columns: Vec<Column> = t.columns.iter().map(|(n, ty, _)| column(n, *ty)).collect();
        let approved: Vec<String> = t.columns.iter().map(|(n, _, _)| n.to_string()).collect();
        let view = Arc::new(
            View::new(
                crate::scenario::Names {
                    table: t.name,
                    dataset: t.name,
                    version: &format!("v-{}", t.name),
                },
                &columns,
                &approved,
                &[],
                Scope::of(&RowScope::default(), &columns, &approved),
                Some(Entity::Person),
            )
            .expect("view"),
        );
        let schema = Arc::new(Schema::new(
            t.columns
                .iter()
                .map(|(n, ty, a)| {
                    let _ = ty;
                    Field::new(*n, a.data_type().clone(), true)
                })
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema, t.columns.iter().map(|(_, _, a)| a.clone()).collect()).expect("batch");
        let table = ScenarioTable::for_engine(
            view.clone(),
            Rows::Batches(vec![batch]),
            EntityKey::new([3; 16]),
            ScenarioKeys {
                pseudonym: [1; 32],
                token: [2; 32],
                random: [4; 32],
            },
            Arc::default(),
        );
        engine.register_table(t.name, Arc::new(table)).expect("register");
        views.push(view);
    }
    let (planner, catalog) = planning_session(&views).expect("planner");
    Scenario {
        planner,
        catalog,
        engine,
    }
}

fn all() -> Scenario {
    scenario(vec![people(), visits(), enterprises()])
}

async fn compile(s: &Scenario, sql: &str, profile: Profile) -> Result<super::Admitted, EngineError> {
    prepare(&s.planner, &s.catalog, "out", sql, profile).await
}

const JOB: Profile = Profile::Job { microdata: false };

async fn admitted(s: &Scenario, sql: &str) {
    if let Err(e) = compile(s, sql, JOB).await {
        panic!("{sql}: refused: {e:?}");
    }
}

async fn refused(s: &Scenario, sql: &str, rule: &str) {
    match compile(s, sql, JOB).await {
        Ok(_) => panic!("{sql}: admitted, expected {rule}"),
        Err(EngineError::Refused { rule: r, .. }) => assert_eq!(r, rule, "{sql}"),
        Err(other) => panic!("{sql}: {other:?}, expected {rule}"),
    }
}

async fn run(s: &Scenario, sql: &str) -> (Output, Option<RecordBatch>) {
    let a = compile(s, sql, JOB).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let built = super::build::run(&s.engine, &a, "out", 100_000)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    (built.output, built.members)
}

#[tokio::test]
async fn admits_tables_of_counts_sums_means_spreads_ratios_and_models_by_approved_keys() {
    let s = all();
    for sql in [
        "SELECT region, COUNT(*) AS n FROM population GROUP BY region",
        "SELECT region, gender, COUNT(*) AS n, AVG(income) AS mean, SUM(income) AS total FROM population GROUP BY region, gender",
        "SELECT region, COUNT(DISTINCT person_id) AS people FROM population GROUP BY region",
        "SELECT p.region, COUNT(*) AS visits, COUNT(DISTINCT v.person_id) AS patients FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region",
        "SELECT p.region, COUNT(*) FROM population p, medical_visit v WHERE p.person_id = v.person_id GROUP BY p.region",
        "SELECT p.region, COUNT(v.visit_id) AS visits FROM population p LEFT JOIN medical_visit v ON p.person_id = v.person_id GROUP BY p.region",
        "SELECT region, STDDEV(income) AS sd, VAR_POP(income) AS v FROM population GROUP BY region",
        "SELECT region, ROUND(100.0 * SUM(income) / COUNT(*), 1) AS per_head FROM population GROUP BY region",
        "SELECT region, SUM(income) / SUM(birth_year) AS ratio FROM population GROUP BY region",
        "SELECT regr_slope(income, birth_year) AS slope, regr_intercept(income, birth_year) AS b, regr_count(income, birth_year) AS n FROM population",
        "SELECT COUNT(*) AS n FROM population",
        "SELECT DISTINCT region, gender FROM population",
        "SELECT region, COUNT(*) AS n FROM population WHERE gender = 'F' AND birth_year BETWEEN 1960 AND 1980 GROUP BY region ORDER BY n DESC LIMIT 5",
        "SELECT icd10, COUNT(*) AS n FROM medical_visit GROUP BY icd10 HAVING COUNT(*) >= 10",
    ] {
        admitted(&s, sql).await;
    }
}

#[tokio::test]
async fn admits_the_generalizations_one_bins_with() {
    let s = all();
    for sql in [
        "SELECT substr(icd10, 1, 1) AS chapter, COUNT(*) AS n FROM medical_visit GROUP BY substr(icd10, 1, 1)",
        "SELECT floor(birth_year / 10) * 10 AS decade, COUNT(*) AS n FROM population GROUP BY 1",
        "SELECT CASE WHEN birth_year < 1970 THEN 'old' ELSE 'young' END AS band, COUNT(*) AS n FROM population GROUP BY 1",
        "SELECT CAST(region / 100 AS BIGINT) AS city, COUNT(*) AS n FROM population GROUP BY 1",
        "SELECT upper(gender) AS g, COUNT(*) AS n FROM population GROUP BY 1",
        "SELECT region, AVG(2024 - birth_year) AS mean_age FROM population GROUP BY region",
        "SELECT region, AVG(ln(income)) AS mean_log FROM population GROUP BY region",
    ] {
        admitted(&s, sql).await;
    }
}

#[tokio::test]
async fn identifiers_are_refused_in_every_place() {
    let s = all();
    for sql in [
        "SELECT person_id FROM population",
        "SELECT person_id, COUNT(*) FROM population GROUP BY person_id",
        "SELECT substr(person_id, 1, 6) AS r, COUNT(*) FROM population GROUP BY 1",
        "SELECT COUNT(*) FROM population WHERE person_id = 'P001'",
        "SELECT COUNT(*) FROM population WHERE person_id <> 'P001'",
        "SELECT region, COUNT(*) FROM population WHERE name LIKE '名%' GROUP BY region",
        "SELECT region, COUNT(name) FROM population GROUP BY region",
        "SELECT uscc, COUNT(*) FROM enterprise GROUP BY uscc",
        "SELECT CASE WHEN person_id = 'P001' THEN 1 ELSE 0 END AS t, COUNT(*) FROM population GROUP BY 1",
    ] {
        refused(&s, sql, "identifier").await;
    }
    // Functions that encode are not admitted at all (so the identifier is never reached).
    for sql in [
        "SELECT md5(person_id) AS h, COUNT(*) FROM population GROUP BY 1",
        "SELECT reverse(person_id) AS h, COUNT(*) FROM population GROUP BY 1",
        "SELECT region, SUM(ascii(substr(name, 1, 1))) FROM population GROUP BY region",
        "SELECT region, SUM(CAST(substr(person_id, 2, 3) AS BIGINT)) FROM population GROUP BY region",
    ] {
        match compile(&s, sql, JOB).await {
            Err(EngineError::Refused { rule, .. }) => {
                assert!(rule == "function" || rule == "identifier", "{sql}: {rule}")
            }
            // Not even a function in this build: it does not plan.
            Err(EngineError::Query(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn aggregates_that_return_one_persons_value_or_list_values_are_refused() {
    let s = all();
    for (sql, rule) in [
        (
            "SELECT region, MAX(income) FROM population GROUP BY region",
            "order_statistic",
        ),
        (
            "SELECT region, MIN(birth_year) FROM population GROUP BY region",
            "order_statistic",
        ),
        (
            "SELECT region, MEDIAN(income) FROM population GROUP BY region",
            "order_statistic",
        ),
        (
            "SELECT region, first_value(income) FROM population GROUP BY region",
            "order_statistic",
        ),
        (
            "SELECT region, string_agg(gender, ',') FROM population GROUP BY region",
            "aggregate",
        ),
        (
            "SELECT region, array_agg(income) FROM population GROUP BY region",
            "aggregate",
        ),
        (
            "SELECT region, bit_or(birth_year) FROM population GROUP BY region",
            "aggregate",
        ),
        (
            "SELECT region, approx_distinct(income) FROM population GROUP BY region",
            "aggregate",
        ),
        (
            "SELECT region, COUNT(DISTINCT income) FROM population GROUP BY region",
            "entity_count",
        ),
        (
            "SELECT region, SUM(DISTINCT income) FROM population GROUP BY region",
            "distinct_aggregate",
        ),
        (
            "SELECT region, regr_avgy(income, birth_year) FROM population GROUP BY region",
            "aggregate",
        ),
    ] {
        refused(&s, sql, rule).await;
    }
}

#[tokio::test]
async fn guards_and_arithmetic_across_measures_are_refused() {
    let s = all();
    for (sql, rule) in [
        (
            "SELECT SUM(income) FILTER (WHERE birth_year = 1957) AS x FROM population",
            "filtered_aggregate",
        ),
        (
            "SELECT SUM(CASE WHEN birth_year = 1957 THEN income END) AS x FROM population",
            "conditional_measure",
        ),
        (
            "SELECT SUM(income * (birth_year = 1957)::int) AS x FROM population",
            "conditional_measure",
        ),
        (
            "SELECT SUM(income) - SUM(birth_year) AS x FROM population",
            "measure_arithmetic",
        ),
        (
            "SELECT SUM(income) * COUNT(*) AS x FROM population",
            "measure_arithmetic",
        ),
        (
            "SELECT SUM(income) / COUNT(*) / COUNT(*) AS x FROM population",
            "measure_arithmetic",
        ),
        (
            "SELECT CASE WHEN COUNT(*) > 5 THEN SUM(income) END AS x FROM population",
            "measure_arithmetic",
        ),
        (
            "SELECT region, region + COUNT(*) AS x FROM population GROUP BY region",
            "key_expression",
        ),
        ("SELECT COUNT(*) AS n FROM population GROUP BY region", "key_not_shown"),
        (
            "SELECT region, COUNT(*) FROM population GROUP BY region HAVING SUM(income) > AVG(income)",
            "having",
        ),
        (
            "SELECT region, COUNT(*) AS n FROM population GROUP BY region ORDER BY SUM(income)",
            "order_by",
        ),
    ] {
        refused(&s, sql, rule).await;
    }
}

#[tokio::test]
async fn row_multipliers_subqueries_and_other_shapes_do_not_exist_in_a_job() {
    let s = all();
    for (sql, rule) in [
        (
            "SELECT COUNT(*) FROM population, generate_series(1, 10)",
            "unknown_table",
        ),
        (
            "SELECT value, COUNT(*) FROM generate_series(1, 10) GROUP BY value",
            "unknown_table",
        ),
        ("SELECT COUNT(*) FROM population CROSS JOIN medical_visit", "cross_join"),
        (
            "SELECT p.gender, COUNT(*) FROM population p JOIN enterprise e ON p.region = e.region GROUP BY p.gender",
            "join_key",
        ),
        (
            "SELECT region, COUNT(*) FROM population WHERE person_id IN (SELECT person_id FROM medical_visit) GROUP BY region",
            "subquery",
        ),
        (
            "SELECT region, COUNT(*) * 1.0 / (SELECT COUNT(*) FROM population) FROM population GROUP BY region",
            "subquery",
        ),
        (
            "SELECT region, n FROM (SELECT region, COUNT(*) AS n FROM population GROUP BY region) t",
            "nested_aggregate",
        ),
        (
            "SELECT region, COUNT(*) FROM population GROUP BY region UNION ALL SELECT region, COUNT(*) FROM population GROUP BY region",
            "union",
        ),
        (
            "SELECT region, COUNT(*) OVER (PARTITION BY region) FROM population",
            "window",
        ),
        ("SELECT * FROM (VALUES (1), (2)) t(x)", "literal_rows"),
        ("SELECT 1", "literal_rows"),
        (
            "SELECT region, COUNT(*) FROM population GROUP BY ROLLUP (region)",
            "grouping_sets",
        ),
        (
            "SELECT p.region, COUNT(*) FROM population p RIGHT JOIN medical_visit v ON p.person_id = v.person_id GROUP BY p.region",
            "join_type",
        ),
        (
            "SELECT p.region, COUNT(*) FROM population p LEFT JOIN medical_visit v ON p.person_id = v.person_id AND v.icd10 = 'X99' GROUP BY p.region",
            "join_condition",
        ),
    ] {
        refused(&s, sql, rule).await;
    }
}

#[tokio::test]
async fn record_level_rows_only_where_the_manifest_permits_them() {
    let s = all();
    refused(&s, "SELECT region, gender FROM population", "record_level").await;
    let a = compile(
        &s,
        "SELECT region, gender FROM population",
        Profile::Job { microdata: true },
    )
    .await
    .expect("permitted");
    assert!(matches!(a.body, super::Body::Microdata));
    // Never an identifier, even where microdata is permitted.
    match compile(
        &s,
        "SELECT person_id, region FROM population",
        Profile::Job { microdata: true },
    )
    .await
    {
        Err(EngineError::Refused { rule, .. }) => assert_eq!(rule, "identifier"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn order_statistics_are_admitted_offline_as_acro_checks_them() {
    let s = all();
    assert!(
        compile(
            &s,
            "SELECT region, MAX(income) AS m FROM population GROUP BY region",
            Profile::Offline
        )
        .await
        .is_ok()
    );
    assert!(
        compile(
            &s,
            "SELECT region, MEDIAN(income) AS m FROM population GROUP BY region",
            Profile::Offline
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn every_refusal_rule_has_a_message_in_both_languages() {
    use shuyu_core::i18n::{Lang, render};
    for rule in super::RULES {
        for lang in [Lang::ZhCn, Lang::En] {
            let key = format!("algebra.{rule}");
            let text = render(lang, &shuyu_core::error::Message::new(key.clone()));
            assert!(!text.is_empty() && text != key, "{rule} in {lang:?}");
        }
    }
}

fn cell_of<'a>(o: &'a Output, key: &[&str]) -> &'a shuyu_gate::Cell {
    let Shape::Table(t) = o.shape() else { panic!("a table") };
    t.cells
        .iter()
        .find(|c| c.row.is_some() && c.key.iter().map(String::as_str).eq(key.iter().copied()))
        .unwrap_or_else(|| panic!("no cell {key:?}"))
}

#[tokio::test]
async fn the_threshold_counts_people_not_rows() {
    let s = all();
    let (out, _) = run(&s, "SELECT icd10, COUNT(*) AS n FROM medical_visit GROUP BY icd10").await;
    let x = cell_of(&out, &["X99"]);
    assert_eq!((x.records, x.entities), (25, 1));
    let j = cell_of(&out, &["J10"]);
    assert_eq!((j.records, j.entities), (39, 39));
    let report = shuyu_gate::checks::run(&out, &shuyu_gate::Context::alone(&shuyu_gate::Rules::default()));
    let threshold = report.finding("threshold").expect("threshold");
    assert_eq!(threshold.result(), shuyu_gate::Outcome::Fail);
    assert_eq!(threshold.cells().len(), 1, "{threshold:?}");
}

#[tokio::test]
async fn a_self_join_multiplies_rows_but_not_people() {
    let s = all();
    let (out, _) = run(
        &s,
        "SELECT a.region, COUNT(*) AS n FROM population a JOIN population b ON a.person_id = b.person_id \
         JOIN medical_visit v ON v.person_id = a.person_id GROUP BY a.region",
    )
    .await;
    let c = cell_of(&out, &["379901"]);
    assert_eq!(c.entities, 30);
    assert_eq!(c.records, 25 + 29);
}

#[tokio::test]
async fn the_evidence_sees_the_rows_the_output_saw() {
    let s = all();
    let (out, _) = run(
        &s,
        "SELECT region, COUNT(*) AS n FROM population WHERE birth_year = 1957 GROUP BY region",
    )
    .await;
    let c = cell_of(&out, &["379901"]);
    assert_eq!((c.records, c.entities), (1, 1));
}

/// The same SQL in plain DataFusion over the same rows, one Float64 per cell.
async fn raw(tables: Vec<Table>, sql: &str) -> HashMap<String, Vec<Option<f64>>> {
    let ctx = datafusion::prelude::SessionContext::new();
    for t in tables {
        let schema = Arc::new(Schema::new(
            t.columns
                .iter()
                .map(|(n, _, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), t.columns.iter().map(|(_, _, a)| a.clone()).collect()).expect("batch");
        ctx.register_table(
            t.name,
            Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![vec![batch]]).expect("mem")),
        )
        .expect("register");
    }
    let out = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    rows(&out)
}

fn rows(batches: &[RecordBatch]) -> HashMap<String, Vec<Option<f64>>> {
    let mut out = HashMap::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let key = shuyu_gate::output::cell_text(b.column(0), r).unwrap_or_default();
            let values = (1..b.num_columns())
                .map(|c| {
                    let v = arrow::compute::cast(b.column(c), &DataType::Float64).expect("number");
                    let v = v.as_primitive::<Float64Type>();
                    (!v.is_null(r)).then(|| v.value(r))
                })
                .collect();
            out.insert(key, values);
        }
    }
    out
}

#[tokio::test]
async fn the_measures_are_those_plain_sql_computes() {
    for sql in [
        "SELECT region, COUNT(*) AS n, SUM(income) AS s, AVG(income) AS m, COUNT(DISTINCT person_id) AS d FROM population GROUP BY region",
        "SELECT region, STDDEV(income) AS sd, VAR_POP(income) AS vp, VAR_SAMP(birth_year) AS vs FROM population GROUP BY region",
        "SELECT region, regr_slope(income, birth_year) AS a, regr_intercept(income, birth_year) AS b, regr_r2(income, birth_year) AS r2, corr(income, birth_year) AS c, covar_samp(income, birth_year) AS cs, regr_count(income, birth_year) AS n FROM population GROUP BY region",
        "SELECT gender, ROUND(100.0 * SUM(income) / COUNT(*), 3) AS per_head, SUM(income) / SUM(birth_year) AS ratio FROM population GROUP BY gender",
        "SELECT icd10, COUNT(*) AS n, AVG(cost) AS m, COUNT(DISTINCT person_id) AS p FROM medical_visit GROUP BY icd10",
        "SELECT p.gender, COUNT(*) AS n, AVG(v.cost) AS m FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.gender",
        "SELECT p.region, COUNT(v.visit_id) AS n, COUNT(DISTINCT v.person_id) AS patients FROM population p LEFT JOIN medical_visit v ON p.person_id = v.person_id GROUP BY p.region",
    ] {
        let s = all();
        let (out, _) = run(&s, sql).await;
        let ours = rows(std::slice::from_ref(out.batch()));
        let theirs = raw(vec![people(), visits(), enterprises()], sql).await;
        assert_eq!(ours.len(), theirs.len(), "{sql}");
        for (k, v) in &theirs {
            let mine = ours.get(k).unwrap_or_else(|| panic!("{sql}: no row {k}"));
            for (a, b) in mine.iter().zip(v) {
                match (a, b) {
                    (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{sql}: {k}: {a} vs {b}"),
                    (a, b) => assert_eq!(a.is_none(), b.is_none(), "{sql}: {k}: {a:?} vs {b:?}"),
                }
            }
        }
    }
}

#[tokio::test]
async fn dominance_is_judged_on_each_entitys_total() {
    let s = all();
    // Person 7 earns 1 000 000: in 379901 the two largest incomes are most of the total.
    let (out, _) = run(
        &s,
        "SELECT region, SUM(income) AS total FROM population GROUP BY region",
    )
    .await;
    let report = shuyu_gate::checks::run(&out, &shuyu_gate::Context::alone(&shuyu_gate::Rules::default()));
    let nk = report.finding("nk-dominance").expect("nk");
    assert_eq!(nk.result(), shuyu_gate::Outcome::Fail);
    assert!(
        nk.cells()
            .iter()
            .any(|c| c.keys.get("region").map(String::as_str) == Some("379901"))
    );
    // Person 0's 25 visits of 100 are one contributor of 2 500.
    let (out, _) = run(&s, "SELECT icd10, SUM(cost) AS total FROM medical_visit GROUP BY icd10").await;
    let x = cell_of(&out, &["X99"]);
    assert_eq!(x.contributions[0].n, 1);
    assert!((x.contributions[0].largest - 2500.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_members_say_who_is_behind_each_cell() {
    let s = all();
    let (_, members) = run(&s, "SELECT icd10, COUNT(*) AS n FROM medical_visit GROUP BY icd10").await;
    let m = members.expect("members");
    assert_eq!(m.num_rows(), 40, "one row per (cell, person)");
    let keys = m.column(0).as_string::<i32>();
    let records = m.column(2).as_primitive::<Int64Type>();
    let x: Vec<i64> = (0..m.num_rows())
        .filter(|r| keys.value(*r) == "X99")
        .map(|r| records.value(r))
        .collect();
    assert_eq!(x, vec![25]);
    assert!(m.column(1).null_count() == 0);
}

#[tokio::test]
async fn an_empty_output_fails_the_threshold_like_a_small_one() {
    let s = all();
    let (out, _) = run(
        &s,
        "SELECT region, COUNT(*) AS n FROM population WHERE birth_year = 1800 GROUP BY region",
    )
    .await;
    assert_eq!(out.num_rows(), 0);
    let report = shuyu_gate::checks::run(&out, &shuyu_gate::Context::alone(&shuyu_gate::Rules::default()));
    assert_eq!(
        report.finding("threshold").map(|f| f.result()),
        Some(shuyu_gate::Outcome::Fail)
    );
}

#[tokio::test]
async fn an_indicator_sum_is_judged_by_its_non_zero_contributors() {
    let s = all();
    // (birth_year - 1950) / 78 rounds to 0 for all but person 39: a one-person indicator.
    let (out, _) = run(
        &s,
        "SELECT gender, SUM(round((birth_year - 1950) / 78.0)) AS n FROM population GROUP BY gender",
    )
    .await;
    let report = shuyu_gate::checks::run(&out, &shuyu_gate::Context::alone(&shuyu_gate::Rules::default()));
    assert_eq!(
        report.finding("threshold").map(|f| f.result()),
        Some(shuyu_gate::Outcome::Fail),
        "{report:?}"
    );
}
