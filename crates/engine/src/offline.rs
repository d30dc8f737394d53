//! The gate offline (`shuyu gate check`): an output checker runs a query over files on their
//! own machine and reads the same report the gate gives inside the domain — same planner, same
//! evidence, same checks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use shuyu_classify::{FieldType, classify_field};
use shuyu_gate::{Context, Output, Report, Rules};

use crate::EngineError;
use crate::algebra::Profile;
use crate::scenario::{EntityKey, Rows, ScenarioTable, View};
use crate::sql::df;
use shuyu_mask::catalog::ScenarioKeys;

/// A table read from a file, with its fields' types as the classifier reads them.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The table's name in SQL.
    pub name: String,
    /// Its rows.
    pub batch: RecordBatch,
    /// Each column's type.
    pub types: HashMap<String, FieldType>,
}

/// Reads a CSV (any encoding the importer detects), XLSX, Parquet or JSONL file into a table.
/// Columns whose every value is a whole number become integers, numbers become decimals, the
/// rest text; empty cells are nulls.
pub fn load(name: &str, path: &Path) -> Result<LoadedTable, EngineError> {
    let file = path.display().to_string();
    let bad = |detail: String| EngineError::BadFile {
        file: file.clone(),
        detail,
    };
    let format = shuyu_import::Format::from_name(&file)
        .ok_or_else(|| bad("unknown format: give a .csv, .xlsx, .parquet or .jsonl file".into()))?;
    let mut source = shuyu_import::open(path, format, None).map_err(|e| bad(e.to_string()))?;
    let headers: Vec<String> = source.headers().to_vec();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
    while let Some(row) = source.next_row() {
        let row = row.map_err(|e| bad(e.to_string()))?;
        for (i, col) in columns.iter_mut().enumerate() {
            col.push(row.get(i).cloned().flatten().filter(|v| !v.trim().is_empty()));
        }
    }
    let mut fields = Vec::with_capacity(headers.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(headers.len());
    let mut types = HashMap::new();
    for (name, values) in headers.iter().zip(&columns) {
        let present = values.iter().flatten();
        let class = classify_field(name, present.clone().map(String::as_str));
        types.insert(name.clone(), class.field_type);
        let ints: Option<Vec<Option<i64>>> = values
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(s) => integer(s).map(Some),
            })
            .collect();
        // Identifiers stay text even when they are all digits: leading zeros and check
        // characters matter, and the scan reads them as written.
        let textual = matches!(
            class.field_type,
            FieldType::IdNumber | FieldType::Mobile | FieldType::BankCard | FieldType::PartyId | FieldType::Uscc
        );
        if let (Some(ints), false) = (ints, textual) {
            fields.push(Field::new(name, DataType::Int64, true));
            arrays.push(Arc::new(Int64Array::from(ints)));
            continue;
        }
        let floats: Option<Vec<Option<f64>>> = values
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(Some),
            })
            .collect();
        if let (Some(floats), false) = (floats, textual) {
            fields.push(Field::new(name, DataType::Float64, true));
            arrays.push(Arc::new(Float64Array::from(floats)));
            continue;
        }
        fields.push(Field::new(name, DataType::Utf8, true));
        arrays.push(Arc::new(StringArray::from(values.clone())));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    Ok(LoadedTable {
        name: name.to_string(),
        batch,
        types,
    })
}

fn integer(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    // "2010.0" from a spreadsheet is the integer 2010.
    let f = t.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Runs `sql` over the tables and checks its output as the gate would: planned, compiled into
/// the output algebra (the offline profile: each record its own entity; order statistics and
/// record-level rows admitted, as ACRO checks them), run by the plan the algebra builds.
pub async fn check_tables(tables: Vec<LoadedTable>, sql: &str, rules: &Rules) -> Result<(Output, Report), EngineError> {
    let mut views = Vec::with_capacity(tables.len());
    let engine = crate::jobs::session(None);
    for t in &tables {
        let view = std::sync::Arc::new(View::of_batch(&t.name, t.batch.schema().as_ref(), &t.types));
        let provider = ScenarioTable::for_engine(
            view.clone(),
            Rows::Batches(vec![t.batch.clone()]),
            EntityKey::new([0x5a; 16]),
            ScenarioKeys {
                pseudonym: [0; 32],
                token: [0; 32],
                random: [0; 32],
            },
            Default::default(),
        );
        engine.register_table(t.name.as_str(), Arc::new(provider)).map_err(df)?;
        views.push(view);
    }
    let (planner, catalog) = crate::jobs::planning_session(&views)?;
    let admitted = crate::jobs::prepare(&planner, &catalog, "output", sql, Profile::Offline).await?;
    let built = crate::algebra::build::run(&engine, &admitted, "output", rules.max_enumerated_cells).await?;
    let report = shuyu_gate::checks::run(&built.output, &Context::alone(rules));
    Ok((built.output, report))
}

/// Reads `NAME=FILE` table arguments and checks `sql` over them.
pub async fn check_files(tables: &[(String, PathBuf)], sql: &str, rules: &Rules) -> Result<Report, EngineError> {
    let loaded = tables
        .iter()
        .map(|(name, path)| load(name, path))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(check_tables(loaded, sql, rules).await?.1)
}
