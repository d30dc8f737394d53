//! The disclosure report: what each check found, in words a reviewer reads in a minute.
//!
//! A [`Report`] is made only by the checks ([`crate::checks::run`]); its fields are private, so
//! no other crate can write one that says "pass". What is stored and shown is its
//! [`ReportRecord`], which comes in two views: the **reviewers'** ([`ReportRecord::render`]),
//! with the flagged cells by their key values (capped), and everybody else's — the developer's
//! and the supervisors' — ([`ReportRecord::summary`]), with each check's outcome and only a
//! coarse band of how many cells it flagged: key values are data, and an exact count of
//! flagged cells would be a counting oracle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shuyu_core::error::Message;
use shuyu_core::i18n::{Lang, render};

use crate::rules::Rules;

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
#[serde(deny_unknown_fields)]
pub struct FlaggedCell {
    /// The cell's key values by key column (empty for a whole column or a one-row output).
    pub keys: BTreeMap<String, String>,
    /// The measure (or detail) column concerned; `None` when the whole row is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The output row, when the cell is in the output (absent for empty combinations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    id: String,
    result: Outcome,
    cells: Vec<FlaggedCell>,
    message: Option<Message>,
    remedy: Option<Remedy>,
}

impl Finding {
    /// A finding with no flagged cells.
    pub(crate) fn pass(id: &str, message: Message) -> Finding {
        Finding {
            id: id.to_string(),
            result: Outcome::Pass,
            cells: Vec::new(),
            message: Some(message),
            remedy: None,
        }
    }

    /// A finding of `result` that flags no particular cell (the output as a whole).
    pub(crate) fn whole(id: &str, result: Outcome, message: Message, remedy: Option<Remedy>) -> Finding {
        Finding {
            id: id.to_string(),
            result,
            cells: Vec::new(),
            message: Some(message),
            remedy: if result == Outcome::Pass { None } else { remedy },
        }
    }

    /// A finding whose result follows from its cells: `result` when any is flagged, else pass.
    pub(crate) fn from_cells(
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

    /// Adds cells to a finding (flagged for a second reason).
    pub(crate) fn extend_cells(&mut self, more: Vec<FlaggedCell>) {
        self.cells.extend(more);
        self.cells.sort();
        self.cells.dedup();
    }

    /// The check's stable id (e.g. `threshold`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Pass, review or fail.
    pub fn result(&self) -> Outcome {
        self.result
    }

    /// The cells it flags (key values: for the gate and the reviewers only).
    pub fn cells(&self) -> &[FlaggedCell] {
        &self.cells
    }

    /// What to do about it.
    pub fn remedy(&self) -> Option<&Remedy> {
        self.remedy.as_ref()
    }
}

/// The gate's report on one output. Only [`crate::checks::run`] makes one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    output: String,
    verdict: Outcome,
    checks: Vec<Finding>,
    rules: Rules,
    grade: Option<String>,
}

impl Report {
    /// Builds the report from the findings; the verdict is the worst result.
    pub(crate) fn new(output: &str, checks: Vec<Finding>, rules: &Rules) -> Report {
        let verdict = checks.iter().map(|f| f.result).max().unwrap_or(Outcome::Pass);
        Report {
            output: output.to_string(),
            verdict,
            checks,
            rules: rules.clone(),
            grade: None,
        }
    }

    /// The report, naming the data grade whose rules it applied.
    pub fn with_grade(mut self, grade: Option<String>) -> Report {
        self.grade = grade;
        self
    }

    /// The thresholds the checks applied.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The output's name.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// The worst result of any check.
    pub fn verdict(&self) -> Outcome {
        self.verdict
    }

    /// Every check's finding, in the order the checks ran.
    pub fn checks(&self) -> &[Finding] {
        &self.checks
    }

    /// The finding of a check, by id.
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.checks.iter().find(|f| f.id == id)
    }

    /// The ids of the checks that did not pass.
    pub fn not_passed(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|f| f.result != Outcome::Pass)
            .map(|f| f.id.as_str())
            .collect()
    }

    /// What is stored and shown of the report.
    pub fn record(&self) -> ReportRecord {
        ReportRecord {
            output: self.output.clone(),
            verdict: self.verdict,
            rules: Some(AppliedRules {
                grade: self.grade.clone(),
                rules: self.rules.clone(),
            }),
            checks: self
                .checks
                .iter()
                .map(|f| FindingRecord {
                    id: f.id.clone(),
                    result: f.result,
                    cells: f.cells.clone(),
                    message: f.message.clone(),
                    remedy: f.remedy.clone(),
                })
                .collect(),
        }
    }

    /// The reviewers' view in a language (see [`ReportRecord::render`]).
    pub fn render(&self, lang: Lang, max_cells: usize) -> RenderedReport {
        self.record().render(lang, max_cells)
    }
}

/// A report as stored: for display only (nothing is minted from a stored report — minting runs
/// the checks again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRecord {
    /// The output's name.
    pub output: String,
    /// The worst result of any check.
    pub verdict: Outcome,
    /// Every check's finding.
    pub checks: Vec<FindingRecord>,
    /// The rules the checks applied (absent in reports stored before they were recorded).
    #[serde(default)]
    pub rules: Option<AppliedRules>,
}

/// The thresholds a report's checks applied, and the data grade that chose them (the
/// strictest grade among the output's sources): policy, not data — everyone who sees the
/// report sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedRules {
    /// The grade (`L1` … `L4`) whose rules applied; none when the sources carry no grade.
    pub grade: Option<String>,
    /// The thresholds.
    pub rules: Rules,
}

/// One finding as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingRecord {
    /// The check's id.
    pub id: String,
    /// Its result.
    pub result: Outcome,
    /// The flagged cells.
    pub cells: Vec<FlaggedCell>,
    /// The explanation, as a catalog message.
    pub message: Option<Message>,
    /// The suggested remedy.
    pub remedy: Option<Remedy>,
}

/// A coarse band of a count: what a developer learns of how many cells a check flagged.
pub fn band(n: usize) -> &'static str {
    match n {
        0 => "0",
        1..=9 => "1-9",
        10..=99 => "10-99",
        100..=999 => "100-999",
        _ => "1000+",
    }
}

impl ReportRecord {
    /// The finding of a check, by id.
    pub fn finding(&self, id: &str) -> Option<&FindingRecord> {
        self.checks.iter().find(|f| f.id == id)
    }

    /// The reviewers' view: every finding with its explanation, remedy and the flagged cells by
    /// their key values — at most `max_cells` of each finding's (`cells_total` tells how many).
    pub fn render(&self, lang: Lang, max_cells: usize) -> RenderedReport {
        RenderedReport {
            output: self.output.clone(),
            verdict: self.verdict,
            rules: self.rules.clone(),
            checks: self
                .checks
                .iter()
                .map(|f| RenderedFinding {
                    id: f.id.clone(),
                    result: f.result,
                    title: render(lang, &Message::new(format!("gate.check.{}", f.id))),
                    explanation: explain(lang, f, f.cells.len().to_string()),
                    remedy: f.remedy.as_ref().map(|r| RenderedRemedy {
                        remedy: r.clone(),
                        explanation: render(lang, &remedy_message(r)),
                    }),
                    cells_total: f.cells.len(),
                    cells: f.cells.iter().take(max_cells).cloned().collect(),
                })
                .collect(),
        }
    }

    /// Everybody else's view (the developer's, the supervisors'), in one language.
    pub fn summary(&self, lang: Lang) -> ReportSummary {
        self.redacted().render(lang)
    }

    /// The report without key values: each check's outcome, its explanation and remedy, and how
    /// many cells it flagged as a coarse band — never a key value, never an exact count.
    pub fn redacted(&self) -> RedactedReport {
        RedactedReport {
            output: self.output.clone(),
            verdict: self.verdict,
            rules: self.rules.clone(),
            checks: self
                .checks
                .iter()
                .map(|f| RedactedFinding {
                    id: f.id.clone(),
                    result: f.result,
                    message: f.message.clone(),
                    remedy: f.remedy.clone(),
                    flagged: band(f.cells.len()).to_string(),
                })
                .collect(),
        }
    }
}

/// A report without its flagged cells' key values: what developers and oversight are given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactedReport {
    /// The output's name.
    pub output: String,
    /// The worst result.
    pub verdict: Outcome,
    /// Each check's outcome.
    pub checks: Vec<RedactedFinding>,
    /// The rules the checks applied.
    #[serde(default)]
    pub rules: Option<AppliedRules>,
}

/// One finding without its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactedFinding {
    /// The check's id.
    pub id: String,
    /// Its result.
    pub result: Outcome,
    /// The explanation, as a catalog message.
    pub message: Option<Message>,
    /// The suggested remedy.
    pub remedy: Option<Remedy>,
    /// How many cells it flagged, as a band ([`band`]).
    pub flagged: String,
}

impl RedactedReport {
    /// The finding of a check, by id.
    pub fn finding(&self, id: &str) -> Option<&RedactedFinding> {
        self.checks.iter().find(|f| f.id == id)
    }

    /// In one language.
    pub fn render(&self, lang: Lang) -> ReportSummary {
        ReportSummary {
            output: self.output.clone(),
            verdict: self.verdict,
            rules: self.rules.clone(),
            checks: self
                .checks
                .iter()
                .map(|f| SummaryFinding {
                    id: f.id.clone(),
                    result: f.result,
                    title: render(lang, &Message::new(format!("gate.check.{}", f.id))),
                    explanation: f
                        .message
                        .as_ref()
                        .map(|m| render(lang, &m.clone().arg("cells", f.flagged.clone())))
                        .unwrap_or_default(),
                    remedy: f.remedy.as_ref().map(|r| RenderedRemedy {
                        remedy: r.clone(),
                        explanation: render(lang, &remedy_message(r)),
                    }),
                    flagged: f.flagged.clone(),
                })
                .collect(),
        }
    }
}

fn explain(lang: Lang, f: &FindingRecord, cells: String) -> String {
    f.message
        .as_ref()
        .map(|m| render(lang, &m.clone().arg("cells", cells)))
        .unwrap_or_default()
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

/// The reviewers' view of a report in one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedReport {
    /// The output's name.
    pub output: String,
    /// The worst result.
    pub verdict: Outcome,
    /// The findings.
    pub checks: Vec<RenderedFinding>,
    /// The rules the checks applied.
    #[serde(default)]
    pub rules: Option<AppliedRules>,
}

/// A finding in one language, with its flagged cells (reviewers only).
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
    /// How many cells it flagged.
    pub cells_total: usize,
    /// The flagged cells (the first ones, when there are many).
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

/// A report as its developer (and supervisors) see it: no key value, no exact count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// The output's name.
    pub output: String,
    /// The worst result.
    pub verdict: Outcome,
    /// Each check's outcome.
    pub checks: Vec<SummaryFinding>,
    /// The rules the checks applied.
    #[serde(default)]
    pub rules: Option<AppliedRules>,
}

/// One check's outcome in a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryFinding {
    /// The check's stable id.
    pub id: String,
    /// Its result.
    pub result: Outcome,
    /// The check's name.
    pub title: String,
    /// What it found and why it matters (with the band, not the count).
    pub explanation: String,
    /// The suggested remedy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<RenderedRemedy>,
    /// How many cells it flagged, as a band: `0`, `1-9`, `10-99`, `100-999`, `1000+`.
    pub flagged: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(v: &str) -> FlaggedCell {
        FlaggedCell {
            keys: BTreeMap::from([("birth_date".to_string(), v.to_string())]),
            column: None,
            row: None,
        }
    }

    #[test]
    fn the_developers_summary_names_no_key_value_and_gives_counts_in_bands() {
        let cells: Vec<FlaggedCell> = (0..37).map(|i| cell(&format!("1980-01-{i:02}"))).collect();
        let report = Report::new(
            "out",
            vec![Finding::from_cells(
                "threshold",
                Outcome::Fail,
                cells,
                Message::new("gate.msg.threshold").arg("threshold", "10"),
                Remedy::Suppress,
            )],
            &crate::Rules::default(),
        );
        let summary = report.record().summary(Lang::En);
        let text = serde_json::to_string(&summary).expect("json");
        assert!(!text.contains("1980-01"), "{text}");
        assert!(!text.contains("37"), "{text}");
        assert_eq!(summary.checks[0].flagged, "10-99");
        assert!(summary.checks[0].explanation.contains("10-99"), "{text}");
        // Reviewers see the cells, capped.
        let full = report.render(Lang::En, 5);
        assert_eq!(full.checks[0].cells.len(), 5);
        assert_eq!(full.checks[0].cells_total, 37);
    }

    #[test]
    fn bands_are_coarse() {
        assert_eq!(band(0), "0");
        assert_eq!(band(1), "1-9");
        assert_eq!(band(9), "1-9");
        assert_eq!(band(10), "10-99");
        assert_eq!(band(12345), "1000+");
    }
}
