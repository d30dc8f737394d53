//! The disclosure report: what each check found, in words a reviewer reads in a minute.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shuyu_core::error::Message;
use shuyu_core::i18n::{Lang, render};

/// A check's (or a report's) result, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing disclosive found.
    Pass,
    /// A person must look: the rule cannot decide (e.g. dominance with negative values).
    Review,
    /// Disclosive as it stands: the output cannot leave without a remedy or an override.
    Fail,
}

impl Outcome {
    /// The stable code (`pass`, `review`, `fail`).
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Review => "review",
            Outcome::Fail => "fail",
        }
    }
}

/// A flagged cell, named by its key values (and the measure column, when the check is about one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlaggedCell {
    /// The cell's key values by key column (empty for a whole column or a one-row output).
    pub keys: BTreeMap<String, String>,
    /// The measure (or detail) column concerned; `None` when the whole row is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The output row, when the cell is in the output (absent for empty combinations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

/// What the checker suggests doing about a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Remedy {
    /// Suppress the flagged cells, and enough others that they cannot be recomputed from margins.
    Suppress,
    /// Round the table's counts to a base (e.g. 5).
    Round {
        /// The rounding base.
        base: u64,
    },
    /// Aggregate further: coarser keys or fewer dimensions.
    Coarsen,
    /// Drop the named columns from the output.
    DropColumns {
        /// The columns to drop.
        columns: Vec<String>,
    },
    /// No automatic remedy: the output must be rewritten or a reviewer must decide.
    Rewrite,
}

/// One check's result on one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's stable id (e.g. `threshold`).
    pub id: String,
    /// Pass, review or fail.
    pub result: Outcome,
    /// The cells it flags.
    pub cells: Vec<FlaggedCell>,
    /// The explanation, as a catalog message (rendered per language by [`Report::render`]).
    pub message: Option<Message>,
    /// What to do about it.
    pub remedy: Option<Remedy>,
}

impl Finding {
    /// A finding with no flagged cells.
    pub fn pass(id: &str, message: Message) -> Finding {
        Finding {
            id: id.to_string(),
            result: Outcome::Pass,
            cells: Vec::new(),
            message: Some(message),
            remedy: None,
        }
    }

    /// A finding whose result follows from its cells: `result` when any is flagged, else pass.
    pub fn from_cells(
        id: &str,
        result: Outcome,
        mut cells: Vec<FlaggedCell>,
        message: Message,
        remedy: Remedy,
    ) -> Finding {
        cells.sort();
        cells.dedup();
        let flagged = !cells.is_empty();
        Finding {
            id: id.to_string(),
            result: if flagged { result } else { Outcome::Pass },
            cells,
            message: Some(if flagged {
                message
            } else {
                Message::new("gate.msg.none_flagged")
            }),
            remedy: flagged.then_some(remedy),
        }
    }
}

/// The gate's report on one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The output's name.
    pub output: String,
    /// The worst result of any check.
    pub verdict: Outcome,
    /// Every check's finding, in the order the checks ran.
    pub checks: Vec<Finding>,
}

impl Report {
    /// Builds the report from the findings; the verdict is the worst result.
    pub fn new(output: &str, checks: Vec<Finding>) -> Report {
        let verdict = checks.iter().map(|f| f.result).max().unwrap_or(Outcome::Pass);
        Report {
            output: output.to_string(),
            verdict,
            checks,
        }
    }

    /// The finding of a check, by id.
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.checks.iter().find(|f| f.id == id)
    }

    /// The report in a language, ready to print as JSON or show in the console.
    pub fn render(&self, lang: Lang) -> RenderedReport {
        RenderedReport {
            output: self.output.clone(),
            verdict: self.verdict,
            checks: self
                .checks
                .iter()
                .map(|f| RenderedFinding {
                    id: f.id.clone(),
                    result: f.result,
                    title: render(lang, &Message::new(format!("gate.check.{}", f.id))),
                    explanation: f
                        .message
                        .as_ref()
                        .map(|m| render(lang, &m.clone().arg("cells", f.cells.len().to_string())))
                        .unwrap_or_default(),
                    remedy: f.remedy.as_ref().map(|r| RenderedRemedy {
                        remedy: r.clone(),
                        explanation: render(lang, &remedy_message(r)),
                    }),
                    cells: f.cells.clone(),
                })
                .collect(),
        }
    }
}

fn remedy_message(r: &Remedy) -> Message {
    match r {
        Remedy::Suppress => Message::new("gate.remedy.suppress"),
        Remedy::Round { base } => Message::new("gate.remedy.round").arg("base", base.to_string()),
        Remedy::Coarsen => Message::new("gate.remedy.coarsen"),
        Remedy::DropColumns { columns } => Message::new("gate.remedy.drop_columns").arg("columns", columns.join(", ")),
        Remedy::Rewrite => Message::new("gate.remedy.rewrite"),
    }
}

/// A report in one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedReport {
    /// The output's name.
    pub output: String,
    /// The worst result.
    pub verdict: Outcome,
    /// The findings.
    pub checks: Vec<RenderedFinding>,
}

/// A finding in one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedFinding {
    /// The check's stable id.
    pub id: String,
    /// Its result.
    pub result: Outcome,
    /// The check's name.
    pub title: String,
    /// What it found and why it matters.
    pub explanation: String,
    /// The suggested remedy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<RenderedRemedy>,
    /// The flagged cells.
    pub cells: Vec<FlaggedCell>,
}

/// A remedy with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedRemedy {
    /// The remedy.
    #[serde(flatten)]
    pub remedy: Remedy,
    /// What it does.
    pub explanation: String,
}
