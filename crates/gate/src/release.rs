//! Release review and the one constructor of what leaves the domain.
//!
//! A [`Released`] value can only be made by [`mint`], and `mint` only makes one when its own run of
//! the checks passes — or every finding that does not pass carries a reviewer's override with a
//! reason — and enough reviewers recorded a structured decision on YP5(四)'s six points.
//! Cross-border findings cannot be overridden.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use shuyu_core::error::{ErrorKind, Message, UserFacing};

use crate::checks::Context;
use crate::output::Output;
use crate::report::{Outcome, Report};
use crate::watermark::{MarkSpec, WatermarkKey};

/// The six points a release reviewer answers (《公共数据授权运营》YP5(四)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewPoint {
    /// The output fits the approved use and scope of the scenario.
    FitsApprovedUse,
    /// The output states its data sources.
    SourcesStated,
    /// No raw or sensitive data is exposed.
    NoRawOrSensitive,
    /// No personal-information or trade-secret risk.
    NoPersonalOrSecretRisk,
    /// No cross-border transfer.
    NoCrossBorder,
    /// Other risks considered.
    OtherRisksConsidered,
}

impl ReviewPoint {
    /// All six, in the rule's order.
    pub const ALL: [ReviewPoint; 6] = [
        ReviewPoint::FitsApprovedUse,
        ReviewPoint::SourcesStated,
        ReviewPoint::NoRawOrSensitive,
        ReviewPoint::NoPersonalOrSecretRisk,
        ReviewPoint::NoCrossBorder,
        ReviewPoint::OtherRisksConsidered,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            ReviewPoint::FitsApprovedUse => "fits_approved_use",
            ReviewPoint::SourcesStated => "sources_stated",
            ReviewPoint::NoRawOrSensitive => "no_raw_or_sensitive",
            ReviewPoint::NoPersonalOrSecretRisk => "no_personal_or_secret_risk",
            ReviewPoint::NoCrossBorder => "no_cross_border",
            ReviewPoint::OtherRisksConsidered => "other_risks_considered",
        }
    }
}

/// One reviewer's structured decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The reviewer (a user id).
    pub reviewer: String,
    /// The answer to each point: `true` when the point is satisfied.
    pub points: BTreeMap<ReviewPoint, bool>,
    /// Free-text reasons.
    pub reasons: String,
    /// Whether the reviewer approves the release.
    pub approve: bool,
}

/// A reviewer's override of a check that did not pass, with the reason (audited by the caller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The check's id.
    pub check: String,
    /// The reviewer.
    pub reviewer: String,
    /// Why the output may leave anyway.
    pub reason: String,
}

/// The human side of a release: decisions and overrides, and how many reviewers it needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Approval {
    decisions: Vec<Decision>,
    overrides: Vec<Override>,
    required_reviewers: usize,
}

impl Approval {
    /// The reviewers' decisions and overrides so far, and how many distinct approving reviewers
    /// the release needs (at least one).
    pub fn new(decisions: Vec<Decision>, overrides: Vec<Override>, required_reviewers: usize) -> Approval {
        Approval {
            decisions,
            overrides,
            required_reviewers: required_reviewers.max(1),
        }
    }

    /// Each reviewer's decision.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Overrides of checks that did not pass.
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }
}

/// Why the gate refuses to mint a release.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// Fewer approving reviewers than required.
    #[error("{have} of {need} reviewers approved")]
    NotEnoughReviewers {
        /// Distinct approving reviewers.
        have: usize,
        /// Required.
        need: usize,
    },
    /// A reviewer declined, or left a point unsatisfied.
    #[error("reviewer {reviewer} did not approve ({point})")]
    Declined {
        /// The reviewer.
        reviewer: String,
        /// The unsatisfied point, or `decision`.
        point: String,
    },
    /// A check did not pass and no reviewer overrode it.
    #[error("check {check} is {result} and not overridden")]
    NotOverridden {
        /// The check's id.
        check: String,
        /// Its result.
        result: &'static str,
    },
    /// The destination is across the border: refused, whatever the reviewers say.
    #[error("cross-border release refused")]
    CrossBorder,
    /// The output was changed after it was checked.
    #[error("the output changed after it was checked")]
    Stale,
    /// The released copy could not be written out (CSV, watermark).
    #[error("the released copy could not be written: {0}")]
    Format(String),
}

impl UserFacing for GateError {
    fn code(&self) -> &'static str {
        match self {
            GateError::NotEnoughReviewers { .. } => "release_needs_reviewers",
            GateError::Declined { .. } => "release_declined",
            GateError::NotOverridden { .. } => "release_not_overridden",
            GateError::CrossBorder => "release_cross_border",
            GateError::Stale => "release_stale",
            GateError::Format(_) => "internal",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            GateError::Format(_) => ErrorKind::Internal,
            _ => ErrorKind::Conflict,
        }
    }

    fn message(&self) -> Message {
        let m = Message::new(format!("error.{}", self.code()));
        match self {
            GateError::NotEnoughReviewers { have, need } => {
                m.arg("have", have.to_string()).arg("need", need.to_string())
            }
            GateError::Declined { reviewer, point } => m
                .arg("reviewer", reviewer.clone())
                .arg_key("point", format!("gate.point.{point}")),
            GateError::NotOverridden { check, .. } => m.arg_key("check", format!("gate.check.{check}")),
            GateError::CrossBorder | GateError::Stale | GateError::Format(_) => m,
        }
    }
}

/// What may leave the operation domain: an output that passed the gate and its reviewers.
/// Its fields are private and [`mint`] is its only constructor, so no other crate can make one
/// from full data (DESIGN.md §1). The server does not depend on this crate at all: it receives a
/// `Released<String>` from the engine and can only read it.
#[derive(Clone)]
pub struct Released<T> {
    value: T,
    release: String,
}

impl<T> std::fmt::Debug for Released<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Released")
            .field("release", &self.release)
            .finish_non_exhaustive()
    }
}

impl<T> Released<T> {
    /// The released value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The release it belongs to.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Takes the value out (to write it to the recipient).
    pub fn into_value(self) -> T {
        self.value
    }
}

impl Released<Output> {
    /// The released table as CSV: a header row, then each value's canonical text (numbers at
    /// full precision, which the watermark needs), nulls empty.
    pub fn to_csv(&self) -> Result<Released<String>, GateError> {
        let batch = self.value.batch();
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| GateError::Format(e.to_string());
        w.write_record(batch.schema().fields().iter().map(|f| f.name().as_str()))
            .map_err(err)?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| crate::output::cell_text(c, row).unwrap_or_default())
                .collect();
            w.write_record(&cells).map_err(err)?;
        }
        let bytes = w.into_inner().map_err(|e| GateError::Format(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| GateError::Format(e.to_string()))?;
        Ok(Released {
            value: text,
            release: self.release.clone(),
        })
    }
}

/// What minting made: the released output and the report it was judged by.
#[derive(Debug)]
pub struct Minted {
    /// What may leave.
    pub released: Released<Output>,
    /// The checks' report on it (every finding that did not pass is overridden).
    pub report: Report,
    /// How many cells carry the recipient's watermark bits (0 when not marked now).
    pub watermark_bits: usize,
}

/// Mints a release of `output` (already remedied) to the destination in `ctx`: the checks run
/// here, on the output as it will leave — a report made anywhere else is not accepted — then
/// the reviewers' approval must cover them: no cross-border destination (never overridable),
/// every reviewer approving on all six points, enough of them, and every check that did not pass
/// overridden with a reason by an approving reviewer. When `watermark` is given the output is
/// marked for its recipient; a stored copy minted again for a download is already marked.
pub fn mint(
    release: &str,
    output: Output,
    ctx: &Context<'_>,
    approval: &Approval,
    watermark: Option<(&WatermarkKey, &MarkSpec)>,
) -> Result<Minted, GateError> {
    let report = crate::checks::run(&output, ctx);
    if report
        .checks()
        .iter()
        .any(|f| f.id() == "cross-border" && f.result() != Outcome::Pass)
    {
        return Err(GateError::CrossBorder);
    }
    for d in &approval.decisions {
        if !d.approve {
            return Err(GateError::Declined {
                reviewer: d.reviewer.clone(),
                point: "decision".into(),
            });
        }
        if let Some(p) = ReviewPoint::ALL.iter().find(|p| d.points.get(p) != Some(&true)) {
            return Err(GateError::Declined {
                reviewer: d.reviewer.clone(),
                point: p.code().into(),
            });
        }
    }
    let approving: BTreeSet<&str> = approval.decisions.iter().map(|d| d.reviewer.as_str()).collect();
    let need = approval.required_reviewers.max(1);
    if approving.len() < need {
        return Err(GateError::NotEnoughReviewers {
            have: approving.len(),
            need,
        });
    }
    for f in report.checks().iter().filter(|f| f.result() != Outcome::Pass) {
        let overridden = approval
            .overrides
            .iter()
            .any(|o| o.check == f.id() && !o.reason.trim().is_empty() && approving.contains(o.reviewer.as_str()));
        if !overridden {
            return Err(GateError::NotOverridden {
                check: f.id().to_string(),
                result: f.result().code(),
            });
        }
    }
    let (output, watermark_bits) = match watermark {
        Some((key, spec)) => {
            let marked =
                crate::watermark::embed(output.batch(), key, spec).map_err(|e| GateError::Format(e.to_string()))?;
            (output.with_batch(marked.batch), marked.bits)
        }
        None => (output, 0),
    };
    Ok(Minted {
        released: Released {
            value: output,
            release: release.to_string(),
        },
        report,
        watermark_bits,
    })
}
