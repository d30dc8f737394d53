//! The disclosure gate (出域审核). Everything that leaves the operation domain passes here:
//! every output is checked by statistical disclosure rules (ACRO's defaults — threshold 10,
//! n-k 2 at 90 %, p-percent 10 %, zeros, residual degrees of freedom — and the platform's own:
//! raw rows, personal information in any encoding, k-anonymity of microdata, differencing
//! against the disclosure ledger, cross-border destinations), explained in zh-CN and en with a
//! suggested remedy. Only this crate can mint what leaves.
//!
//! The types are the boundary: an [`Output`] (full-data rows) prints no value; a [`Report`] is made
//! only by the checks; a [`Released`] value only by [`mint`], which runs the checks itself.
//!
//! ```compile_fail
//! // A report cannot be written by hand…
//! let _ = shuyu_gate::Report { output: String::new(), verdict: shuyu_gate::Outcome::Pass, checks: vec![] };
//! ```
//!
//! ```compile_fail
//! // …nor a released value.
//! let _ = shuyu_gate::Released { value: String::new(), release: String::new() };
//! ```
//!
//! ```compile_fail
//! // …nor a finding that says "pass".
//! let _ = shuyu_gate::Finding::pass("threshold", shuyu_core::error::Message::new("x"));
//! ```

pub mod watermark;

pub mod checks;
pub mod output;
pub mod release;
pub mod remedy;
pub mod report;
pub mod review;
pub mod rules;

pub use checks::{Check, Comparison, Context, Destination, GroupDifference};
pub use output::{
    Cell, Column, Contribution, Evidence, MeasureKind, MicrodataEvidence, Output, Role, Shape, TableEvidence,
};
pub use release::{Approval, Decision, GateError, Minted, Override, Released, ReviewPoint, mint};
pub use report::{
    AppliedRules, Finding, FindingRecord, FlaggedCell, Outcome, RedactedFinding, RedactedReport, Remedy,
    RenderedFinding, RenderedRemedy, RenderedReport, Report, ReportRecord, ReportSummary, SummaryFinding,
};
pub use review::{ReviewCell, ReviewCopy, review_copy};
pub use rules::{Contributors, GateConfig, Rules};
