//! What the gate is shown: one output table with the evidence the engine computed alongside it.
//!
//! The gate does not run queries. The engine (or the offline `gate check`) runs the job and hands
//! over the output rows, what each column *is* (a group key, a count, a linear aggregate, …),
//! where its values came from (the source fields' types) and, for tables, per-cell statistics of
//! the **entities** behind each cell — the people or enterprises, not the rows — computed in the
//! same pass as the output. The checks judge from this evidence only.
//!
//! An [`Output`] holds full-data rows: its fields are private and its `Debug` prints the shape,
//! never a value, so it cannot end up in a log line or an error message by accident.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow::datatypes::{UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use shuyu_classify::FieldType;

/// One output of a job, as the gate judges it.
#[derive(Clone)]
pub struct Output {
    pub(crate) name: String,
    pub(crate) batch: RecordBatch,
    pub(crate) columns: Vec<Column>,
    pub(crate) shape: Shape,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values: the rows are full data.
        f.debug_struct("Output")
            .field("name", &self.name)
            .field("rows", &self.batch.num_rows())
            .field(
                "columns",
                &self.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            )
            .field(
                "shape",
                &match self.shape {
                    Shape::Table(_) => "table",
                    Shape::Microdata(_) => "microdata",
                },
            )
            .finish()
    }
}

/// What one output column is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The column's name in the output.
    pub name: String,
    /// Its role: a key, a measure or a record's detail.
    pub role: Role,
    /// The types of the source fields its values derive from (empty when computed from none).
    pub sources: Vec<FieldType>,
}

/// The role of a column in an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// A group-by key of an aggregate table (a dimension).
    Key,
    /// An aggregate of the cell's records.
    Measure {
        /// Which family of aggregate, for which checks apply.
        kind: MeasureKind,
        /// Indexes into [`Cell::contributions`] of the linear aggregates it is computed from.
        slots: Vec<usize>,
    },
    /// A value of one record (microdata: the output is not aggregated).
    Detail,
}

/// Families of aggregates, by the disclosure risks they carry (ACRO's "statbarns").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    /// Frequencies: `COUNT`. Low counts and zeros disclose.
    Count,
    /// Linear aggregations: `SUM`, `AVG`. Low counts and dominance disclose.
    Linear,
    /// Order statistics: `MIN`, `MAX`, `MEDIAN`, percentiles — they return a record's own value.
    Order,
    /// Spread: standard deviations and variances.
    Spread,
    /// Regression and correlation coefficients: too few residual degrees of freedom disclose.
    Regression,
    /// Aggregates that list records' values (`ARRAY_AGG`, `STRING_AGG`): per-record detail.
    Listing,
    /// Anything else computed over a cell's records.
    Other,
}

/// The shape of an output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// An aggregate table (GROUP BY): one [`Cell`] per output row, plus the empty cells.
    Table(TableEvidence),
    /// Record-level rows (no aggregation).
    Microdata(MicrodataEvidence),
}

/// The evidence of a record-level output: whose record each row is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrodataEvidence {
    /// For each row, an opaque number standing for the entity (person or enterprise) the row
    /// belongs to: equal numbers, same entity. k-anonymity counts entities, not rows.
    pub entities: Vec<u64>,
}

/// The evidence of an aggregate table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEvidence {
    /// One cell per output row (in row order), then the empty combinations of the keys' values.
    pub cells: Vec<Cell>,
    /// Whether the empty combinations were enumerated (not when the query filters or limits its
    /// groups, where an absent combination may have been withheld rather than be empty).
    pub zeros_enumerated: bool,
    /// Whether the query restricted the groups after aggregating (`HAVING`, `LIMIT`).
    pub groups_filtered: bool,
    /// The base the counts were rounded to by a remedy, if any.
    pub rounded: Option<u64>,
}

/// One cell of an aggregate table: a combination of key values and the statistics of the
/// entities behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// The key values, as text, in key-column order.
    pub key: Vec<String>,
    /// The output row holding the cell; `None` for an empty combination.
    pub row: Option<usize>,
    /// How many records (rows, after every predicate) the cell aggregates.
    pub records: u64,
    /// How many distinct entities (people or enterprises; a record without a key counts as an
    /// entity of its own) those records belong to: what the threshold counts.
    pub entities: u64,
    /// Per-entity statistics of each measure argument (see [`Role::Measure`]).
    pub contributions: Vec<Contribution>,
    /// Residual degrees of freedom of the cell's regression, when the output has one.
    pub residual_dof: Option<i64>,
}

/// Contributor statistics of one measure argument in one cell, computed alongside the query:
/// each contributor is an **entity**, its contribution the total of its records' values.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// Entities with a non-null contribution.
    pub n: u64,
    /// Entities whose contribution is neither null nor zero (an indicator or a conditional sum
    /// discloses about these only).
    pub nonzero: u64,
    /// The sum of the contributions.
    pub sum: f64,
    /// The largest contribution.
    pub largest: f64,
    /// The sum of the two largest (the largest alone when there is one).
    pub top2: f64,
    /// How many entities' contributions are negative.
    pub negatives: u64,
}

/// An output's evidence without its rows: what is stored beside the staged rows so the gate
/// can judge a remedied version or a release later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The columns.
    pub columns: Vec<Column>,
    /// The shape and its cells.
    pub shape: Shape,
}

impl Output {
    /// An output from its rows and the evidence the engine computed with them.
    pub fn new(name: &str, batch: RecordBatch, columns: Vec<Column>, shape: Shape) -> Output {
        Output {
            name: name.to_string(),
            batch,
            columns,
            shape,
        }
    }

    /// The output again from its rows and stored evidence.
    pub fn from_parts(name: &str, batch: RecordBatch, evidence: Evidence) -> Output {
        Output::new(name, batch, evidence.columns, evidence.shape)
    }

    /// The output's name in its job.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What each column is.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The shape and its evidence.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// How many rows the output has (inside the domain only: never shown to its developer).
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The rows, for the engine to stage them encrypted in the vault (full data: they never
    /// leave the domain but as a [`crate::Released`] value).
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The same output with other rows of the same shape (a remedy, a watermark).
    pub(crate) fn with_batch(&self, batch: RecordBatch) -> Output {
        Output {
            name: self.name.clone(),
            batch,
            columns: self.columns.clone(),
            shape: self.shape.clone(),
        }
    }

    /// The evidence, without the rows.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            columns: self.columns.clone(),
            shape: self.shape.clone(),
        }
    }

    /// The key columns' indexes, in order.
    pub fn key_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.role == Role::Key)
            .map(|(i, _)| i)
            .collect()
    }

    /// The measure columns' indexes, in order.
    pub fn measure_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.role, Role::Measure { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether any measure is of `kind`.
    pub fn has_measure(&self, kind: MeasureKind) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(&c.role, Role::Measure { kind: k, .. } if *k == kind))
    }

    /// The table evidence, when the output is an aggregate table.
    pub fn table(&self) -> Option<&TableEvidence> {
        match &self.shape {
            Shape::Table(t) => Some(t),
            Shape::Microdata(_) => None,
        }
    }

    /// The key column names, in order.
    pub fn key_names(&self) -> Vec<String> {
        self.key_columns()
            .into_iter()
            .map(|i| self.columns[i].name.clone())
            .collect()
    }
}

/// The canonical text of a value: what a reader of a CSV file would see. Integers print as
/// integers, other numbers in Rust's shortest form, strings as they are; `None` for a null.
pub fn cell_text(array: &ArrayRef, row: usize) -> Option<String> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    let text = match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
        DataType::Utf8View => array.as_string_view().value(row).to_string(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).to_string(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).to_string(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Float32 => number_text(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => number_text(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        _ => arrow::util::display::array_value_to_string(array, row).ok()?,
    };
    Some(text)
}

/// A number as text: whole numbers without a fraction, others in the shortest form.
pub fn number_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

/// A value as a number, when the column is numeric.
pub fn cell_number(array: &ArrayRef, row: usize) -> Option<f64> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int8 => f64::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => f64::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => f64::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row) as f64,
        DataType::UInt8 => f64::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => f64::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => f64::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row) as f64,
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        _ => return None,
    })
}
