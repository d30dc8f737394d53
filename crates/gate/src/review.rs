//! What a release's reviewers see beside the gate's report: the output as it would leave,
//! with each cell the report flagged marked — but never rows the gate found to be raw records
//! or personal information. Those are withheld whole: a reviewer decides on the report and the
//! shape, and an override is on the audit log. Like [`crate::Released`], a [`ReviewCopy`] can
//! only be made here, from an output and its report, so nothing else reaches the console.

use serde::Serialize;

use crate::output::{Output, cell_text};
use crate::report::{Outcome, Report};

/// Checks whose failure withholds the rows from reviewers (they would show raw records).
const WITHHOLDING: [&str; 2] = ["raw-rows", "personal-info"];

/// One cell of a review copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewCell {
    /// Its text (empty for null).
    pub text: String,
    /// The checks that flagged it.
    pub flagged_by: Vec<String>,
}

/// The output for review: its columns, its first rows with flagged cells marked, or why the
/// rows are withheld.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewCopy {
    columns: Vec<String>,
    rows: Vec<Vec<ReviewCell>>,
    total_rows: usize,
    withheld_by: Option<String>,
}

impl ReviewCopy {
    /// The output's columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows shown (at most the limit asked for; none when withheld).
    pub fn rows(&self) -> &[Vec<ReviewCell>] {
        &self.rows
    }

    /// All rows of the output.
    pub fn total_rows(&self) -> usize {
        self.total_rows
    }

    /// The check whose failure withholds the rows, if any.
    pub fn withheld_by(&self) -> Option<&str> {
        self.withheld_by.as_deref()
    }
}

/// The review copy of `output` (as it would leave, remedied) under its `report`, with at most
/// `max_rows` rows.
pub fn review_copy(output: &Output, report: &Report, max_rows: usize) -> ReviewCopy {
    let columns: Vec<String> = output.columns.iter().map(|c| c.name.clone()).collect();
    let total_rows = output.batch.num_rows();
    let withheld_by = report
        .checks()
        .iter()
        .find(|f| WITHHOLDING.contains(&f.id()) && f.result() != Outcome::Pass)
        .map(|f| f.id().to_string());
    let mut rows = Vec::new();
    if withheld_by.is_none() {
        for row in 0..total_rows.min(max_rows) {
            let cells = (0..output.batch.num_columns())
                .map(|col| {
                    let name = columns.get(col).map(String::as_str).unwrap_or_default();
                    ReviewCell {
                        text: cell_text(output.batch.column(col), row).unwrap_or_default(),
                        flagged_by: report
                            .checks()
                            .iter()
                            .filter(|f| {
                                f.cells()
                                    .iter()
                                    .any(|c| c.row == Some(row) && c.column.as_deref().is_none_or(|c| c == name))
                            })
                            .map(|f| f.id().to_string())
                            .collect(),
                    }
                })
                .collect();
            rows.push(cells);
        }
    }
    ReviewCopy {
        columns,
        rows,
        total_rows,
        withheld_by,
    }
}
