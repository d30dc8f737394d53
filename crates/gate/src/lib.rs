//! The disclosure gate (出域审核). Everything that leaves the operation domain passes here:
//! every output is checked by statistical disclosure rules (ACRO's defaults — threshold 10,
//! n-k 2 at 90 %, p-percent 10 %, zeros, residual degrees of freedom — and the platform's own:
//! raw rows, personal information in any encoding, k-anonymity of microdata, differencing
//! against the disclosure ledger, cross-border destinations), explained in zh-CN and en with a
//! suggested remedy. Only this crate can mint what leaves.

pub mod watermark;

pub mod checks;
pub mod output;
pub mod release;
pub mod remedy;
pub mod report;
pub mod review;
pub mod rules;

pub use checks::{Check, Context, Destination, LedgerEntry};
pub use output::{Cell, Column, Contribution, Evidence, MeasureKind, Output, Role, Shape, TableEvidence};
pub use release::{Approval, GateError, Override, Released, ReviewPoint, mint};
pub use report::{Finding, FlaggedCell, Outcome, Remedy, RenderedReport, Report};
pub use review::{ReviewCell, ReviewCopy, review_copy};
pub use rules::{GateConfig, Rules};
