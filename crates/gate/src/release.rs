//! Release review and the one constructor of what leaves the domain.
//!
//! A [`Released`] value can only be made by [`mint`], and `mint` only makes one when the report
//! passes — or every finding that does not pass carries a reviewer's override with a reason —
//! and enough reviewers recorded a structured decision on YP5(四)'s six points. Cross-border
//! findings cannot be overridden.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use shuyu_core::error::{ErrorKind, Message, UserFacing};

use crate::report::{Outcome, Report};

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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Approval {
    /// Each reviewer's decision.
    pub decisions: Vec<Decision>,
    /// Overrides of checks that did not pass.
    pub overrides: Vec<Override>,
    /// Distinct approving reviewers required (2 for L3 and above by default).
    pub required_reviewers: usize,
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
}

impl UserFacing for GateError {
    fn code(&self) -> &'static str {
        match self {
            GateError::NotEnoughReviewers { .. } => "release_needs_reviewers",
            GateError::Declined { .. } => "release_declined",
            GateError::NotOverridden { .. } => "release_not_overridden",
            GateError::CrossBorder => "release_cross_border",
            GateError::Stale => "release_stale",
        }
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
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
            GateError::CrossBorder | GateError::Stale => m,
        }
    }
}

/// What may leave the operation domain: an output that passed the gate and its reviewers.
/// Its fields are private and [`mint`] is its only constructor, so no other crate can make one
/// from full data (DESIGN.md §1).
#[derive(Debug, Clone)]
pub struct Released<T> {
    value: T,
    release: String,
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

/// Mints a release of `value` (already remedied and watermarked) checked by `report`.
pub fn mint<T>(release: &str, value: T, report: &Report, approval: &Approval) -> Result<Released<T>, GateError> {
    if report
        .checks
        .iter()
        .any(|f| f.id == "cross-border" && f.result != Outcome::Pass)
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
    for f in report.checks.iter().filter(|f| f.result != Outcome::Pass) {
        let overridden = approval
            .overrides
            .iter()
            .any(|o| o.check == f.id && !o.reason.trim().is_empty() && approving.contains(o.reviewer.as_str()));
        if !overridden {
            return Err(GateError::NotOverridden {
                check: f.id.clone(),
                result: f.result.code(),
            });
        }
    }
    Ok(Released {
        value,
        release: release.to_string(),
    })
}
