//! ACRO parity: on ACRO's own test data, with ACRO's default rules, the gate flags the same
//! cells and gives the same verdicts ACRO 1.0.2 gives for cross-tabulations, pivot tables and
//! OLS. `testdata/acro/oracle.json` (repository root) is ACRO's output, recorded by `testdata/acro/oracle.py`
//! (each case pairs the ACRO call with the SQL that computes the same table).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::Float64Type;
use serde::Deserialize;
use shuyu_engine::offline::{LoadedTable, check_tables, load};
use shuyu_gate::{Outcome, Rules, Shape};

#[derive(Deserialize)]
struct Oracle {
    acro_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    table: String,
    sql: String,
    verdict: String,
    #[serde(default)]
    checks: std::collections::BTreeMap<String, AcroCheck>,
    dof: Option<i64>,
}

#[derive(Deserialize)]
struct AcroCheck {
    result: Option<String>,
    cells: Vec<AcroCell>,
}

#[derive(Deserialize)]
struct AcroCell {
    keys: std::collections::BTreeMap<String, String>,
    column: Option<String>,
}

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/acro")
        .join(name)
}

/// ACRO's negative-values test data: rows 0..=10 get `inc_grants = -10`.
fn negative(charities: &LoadedTable) -> LoadedTable {
    let batch = &charities.batch;
    let i = batch.schema().index_of("inc_grants").expect("inc_grants column");
    let grants = arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Float64).expect("numbers");
    let grants = grants.as_primitive::<Float64Type>();
    let changed: Float64Array = (0..grants.len())
        .map(|r| {
            if r <= 10 {
                Some(-10.0)
            } else {
                (!grants.is_null(r)).then(|| grants.value(r))
            }
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(changed);
    let mut fields: Vec<arrow::datatypes::Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[i] = arrow::datatypes::Field::new("inc_grants", arrow::datatypes::DataType::Float64, true);
    LoadedTable {
        name: "charities_negative".into(),
        batch: RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).expect("schema"),
        types: charities.types.clone(),
    }
}

#[tokio::test]
async fn the_gate_agrees_with_acro_on_its_test_data() {
    let oracle: Oracle =
        serde_json::from_str(&std::fs::read_to_string(testdata("oracle.json")).expect("oracle")).expect("oracle json");
    assert_eq!(oracle.acro_version, "1.0.2");
    let charities = load("charities", &testdata("test_data.csv")).expect("test data");
    assert_eq!(charities.batch.num_rows(), 918);
    let negatives = negative(&charities);
    // ACRO's rules exactly, including how it counts a measure's contributors.
    let rules = Rules::acro();
    let mut compared_cells = 0;
    for case in &oracle.cases {
        let table = if case.table == "charities" {
            charities.clone()
        } else {
            negatives.clone()
        };
        let (output, report) = check_tables(vec![table], &case.sql, &rules)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            report.verdict().code(),
            case.verdict,
            "{}: verdict\n{report:#?}",
            case.name
        );
        let measures: Vec<String> = output
            .measure_columns()
            .iter()
            .map(|i| output.columns()[*i].name.clone())
            .collect();
        for (id, acro) in &case.checks {
            let ours = report
                .finding(id)
                .unwrap_or_else(|| panic!("{}: no check {id}", case.name));
            let expected_result = acro.result.clone().unwrap_or_else(|| {
                if acro.cells.is_empty() {
                    "pass".into()
                } else {
                    "fail".into()
                }
            });
            assert_eq!(ours.result().code(), expected_result, "{}: {id} result", case.name);
            let by_column = acro.cells.iter().any(|c| c.column.is_some());
            let expected: BTreeSet<(String, Option<String>)> = acro
                .cells
                .iter()
                .map(|c| {
                    (
                        serde_json::to_string(&c.keys).expect("keys"),
                        c.column.clone().filter(|_| by_column),
                    )
                })
                .collect();
            let got: BTreeSet<(String, Option<String>)> = ours
                .cells()
                .iter()
                .flat_map(|c| {
                    let keys = serde_json::to_string(&c.keys).expect("keys");
                    let columns: Vec<Option<String>> = match (&c.column, by_column) {
                        (_, false) => vec![None],
                        (Some(col), true) => vec![Some(col.clone())],
                        (None, true) => measures.iter().cloned().map(Some).collect(),
                    };
                    columns.into_iter().map(move |col| (keys.clone(), col))
                })
                .collect();
            assert_eq!(got, expected, "{}: {id} cells", case.name);
            compared_cells += expected.len();
        }
        if let Some(dof) = case.dof {
            let Shape::Table(table) = output.shape() else {
                panic!("{}: a regression is a table", case.name)
            };
            assert_eq!(table.cells[0].residual_dof, Some(dof), "{}: residual dof", case.name);
            let expected = if dof >= 10 { Outcome::Pass } else { Outcome::Fail };
            assert_eq!(
                report.finding("residual-dof").map(|f| f.result()),
                Some(expected),
                "{}",
                case.name
            );
        }
    }
    // The comparison covered real flagged cells, not only empty sets.
    assert!(compared_cells >= 60, "only {compared_cells} cells compared");
}
