//! Remedies: produce a safer version of a table and check it again.
//!
//! Suppression blanks the flagged cells (primary) and then, in every line of the table (all
//! keys fixed but one) holding exactly one suppressed cell, the smallest other cell too
//! (secondary), until no line has a lone suppressed cell — so no suppressed value can be
//! recomputed from a row or column total. It goes on until, in every line and in the table as a
//! whole, the suppressed cells together stand for at least the threshold's entities, or for none:
//! a margin released elsewhere (a total, another table of the same people) then reveals only an
//! aggregate of enough people. Rounding rounds counts to a base.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::compute::{cast, nullif};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;

use crate::output::{MeasureKind, Output, Role, Shape};
use crate::report::{FlaggedCell, Outcome, Report};

/// Why a remedy could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    /// The output is not an aggregate table.
    #[error("only aggregate tables can be suppressed or rounded")]
    NotATable,
    /// Arrow refused to rebuild a column.
    #[error("column {column}: {source}")]
    Arrow {
        /// The column.
        column: String,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
}

/// A remedied output and what the remedy did.
#[derive(Debug, Clone)]
pub struct Remedied {
    /// The safer output (check it again).
    pub output: Output,
    /// Cells suppressed because a check flagged them.
    pub primary: Vec<FlaggedCell>,
    /// Cells suppressed so that the primary ones cannot be recomputed.
    pub secondary: Vec<FlaggedCell>,
}

/// The table checks whose flagged cells suppression removes.
const SUPPRESSIBLE: [&str; 6] = [
    "threshold",
    "zeros",
    "nk-dominance",
    "p-percent",
    "residual-dof",
    "differencing",
];

/// Suppresses what `report` flags in `output`, with secondary suppression (`rules.threshold`
/// entities at least behind what is suppressed in any line or in the whole table).
pub fn suppress(output: &Output, report: &Report, rules: &crate::Rules) -> Result<Remedied, RemedyError> {
    let Shape::Table(table) = &output.shape else {
        return Err(RemedyError::NotATable);
    };
    let flagged: BTreeSet<Vec<String>> = report
        .checks()
        .iter()
        .filter(|f| f.result() != Outcome::Pass && SUPPRESSIBLE.contains(&f.id()))
        .flat_map(|f| f.cells().iter())
        .map(|c| key_of(output, c))
        .collect();
    let mut suppressed: BTreeSet<usize> = table
        .cells
        .iter()
        .enumerate()
        .filter(|(_, c)| flagged.contains(&c.key))
        .map(|(i, _)| i)
        .collect();
    let primary: BTreeSet<usize> = suppressed.clone();
    let dims = output.key_columns().len();
    // The groups margins are taken over: each line (all keys fixed but one), and the whole table.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for d in 0..dims.max(1) {
        let mut lines: HashMap<Vec<&String>, Vec<usize>> = HashMap::new();
        for (i, c) in table.cells.iter().enumerate() {
            let line: Vec<&String> = c
                .key
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != d)
                .map(|(_, k)| k)
                .collect();
            lines.entry(line).or_default().push(i);
        }
        let mut lines: Vec<Vec<usize>> = lines.into_values().collect();
        lines.sort();
        groups.extend(lines);
    }
    groups.push((0..table.cells.len()).collect());
    let smallest = |members: &[usize], suppressed: &BTreeSet<usize>| {
        members
            .iter()
            .filter(|i| !suppressed.contains(i) && table.cells[**i].row.is_some())
            .min_by_key(|i| (table.cells[**i].entities, table.cells[**i].key.clone()))
            .copied()
    };
    loop {
        let mut added = false;
        for members in &groups {
            let hidden: Vec<usize> = members.iter().copied().filter(|i| suppressed.contains(i)).collect();
            let behind: u64 = hidden.iter().map(|i| table.cells[*i].entities).sum();
            let lone = hidden.len() == 1 && members.len() > 1;
            let few = !hidden.is_empty() && behind > 0 && behind < rules.threshold;
            if (lone || few)
                && let Some(p) = smallest(members, &suppressed)
            {
                suppressed.insert(p);
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    let rows: BTreeSet<usize> = suppressed.iter().filter_map(|i| table.cells[*i].row).collect();
    let batch = blank_rows(output, &rows)?;
    let mut evidence = table.clone();
    evidence.cells = table
        .cells
        .iter()
        .enumerate()
        .filter(|(i, _)| !suppressed.contains(i))
        .map(|(_, c)| c.clone())
        .collect();
    let as_flag = |i: &usize| crate::checks::flag(output, &table.cells[*i], None);
    Ok(Remedied {
        output: Output {
            name: output.name.clone(),
            batch,
            columns: output.columns.clone(),
            shape: Shape::Table(evidence),
        },
        primary: primary.iter().map(as_flag).collect(),
        secondary: suppressed.difference(&primary).map(as_flag).collect(),
    })
}

fn key_of(output: &Output, cell: &FlaggedCell) -> Vec<String> {
    output
        .key_names()
        .iter()
        .map(|k| cell.keys.get(k).cloned().unwrap_or_default())
        .collect()
}

/// Nulls every measure value of the given rows.
fn blank_rows(output: &Output, rows: &BTreeSet<usize>) -> Result<RecordBatch, RemedyError> {
    let n = output.batch.num_rows();
    let mask = BooleanArray::from((0..n).map(|r| rows.contains(&r)).collect::<Vec<_>>());
    let columns: Vec<ArrayRef> = output
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let array = output.batch.column(i);
            if matches!(c.role, Role::Measure { .. }) {
                nullif(array, &mask).map_err(|source| RemedyError::Arrow {
                    column: c.name.clone(),
                    source,
                })
            } else {
                Ok(array.clone())
            }
        })
        .collect::<Result<_, _>>()?;
    // Suppressed cells are nulls: the measure fields become nullable.
    let schema = output.batch.schema();
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .zip(&output.columns)
        .map(|(f, c)| {
            let f = f.as_ref().clone();
            if matches!(c.role, Role::Measure { .. }) {
                f.with_nullable(true)
            } else {
                f
            }
        })
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).map_err(|source| {
        RemedyError::Arrow {
            column: String::new(),
            source,
        }
    })
}

/// Rounds every count to the nearest multiple of `base` (ACRO's `round` mitigation).
pub fn round(output: &Output, base: u64) -> Result<Remedied, RemedyError> {
    let Shape::Table(table) = &output.shape else {
        return Err(RemedyError::NotATable);
    };
    let base = base.max(1) as i64;
    let columns: Vec<ArrayRef> = output
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let array = output.batch.column(i);
            let err = |source| RemedyError::Arrow {
                column: c.name.clone(),
                source,
            };
            if !matches!(
                c.role,
                Role::Measure {
                    kind: MeasureKind::Count,
                    ..
                }
            ) {
                return Ok(array.clone());
            }
            let ints = cast(array, &DataType::Int64).map_err(err)?;
            let rounded: Int64Array = ints
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| ((v + base / 2).div_euclid(base)) * base))
                .collect();
            cast(&(Arc::new(rounded) as ArrayRef), array.data_type()).map_err(err)
        })
        .collect::<Result<_, _>>()?;
    let batch = RecordBatch::try_new(output.batch.schema(), columns).map_err(|source| RemedyError::Arrow {
        column: String::new(),
        source,
    })?;
    let mut evidence = table.clone();
    evidence.rounded = Some(base as u64);
    Ok(Remedied {
        output: Output {
            name: output.name.clone(),
            batch,
            columns: output.columns.clone(),
            shape: Shape::Table(evidence),
        },
        primary: Vec::new(),
        secondary: Vec::new(),
    })
}
