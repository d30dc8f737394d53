//! # shuyu-engine
//!
//! Inside the operation domain: the only reader of full data (DESIGN.md §1). Today it builds
//! **workspaces** — when a scenario's data request is approved, a sample of every approved
//! dataset, restricted to the approved fields and row scope, drawn so that a sampled person's
//! (or enterprise's) records in the scenario's other datasets are drawn too, de-identified by
//! the rule catalog of `shuyu-mask` under the workspace's own keys, measured for
//! re-identification risk and generalized further when above the limit — and answers
//! developers' **SQL on those samples** with DataFusion.
//!
//! The boundary is in the types: full-data batches exist only as the crate-private
//! `sample::Full`; the public API returns masked samples' figures ([`WorkspaceView`]) and
//! query pages over samples ([`QueryPage`]). A query's session holds nothing but the
//! workspace's shown samples — no catalog of full data, no file or URL tables, no DDL or DML
//! — so no query can name, let alone read, a dataset version.

pub mod algebra;
pub mod bench;
pub mod diagnostics;
mod differencing;
mod error;
pub mod jobs;
pub mod offline;
pub mod products;
pub mod releases;
pub mod sample;
mod scenario;
mod sql;
mod workspace;

pub use algebra::{Profile, RULES as REFUSAL_RULES, Refusal, ShapeDescription};
pub use error::EngineError;
pub use jobs::{
    JobLimits, JobOutputSpec, JobOutputView, JobRequest, JobView, Metering, MeteringView, OutputCheck, RefusalView,
    diagnostics_purpose, job_members_key_id, job_output_key_id,
};
pub use products::{DelistRequest, ProductKind, ProductSource, ProductView, PublishRequest};
pub use releases::{
    Attribution, ReleasePreview, ReleaseReport, ReleaseRequest, ReleaseReview, ReleaseView, RenderedReleaseReport,
    WATERMARK_SECRET_PURPOSE, WATERMARK_SECRET_SETTING, attribute, release_key_id,
};

/// What the gate says, in the forms the front ends show — display types only. The server does not
/// depend on `shuyu-gate` (an architecture test guards it): it cannot reach `mint`, the checks or
/// an `Output`; these are all it sees of the gate.
pub mod views {
    pub use shuyu_gate::release::Decision;
    pub use shuyu_gate::{
        AppliedRules, Comparison, FlaggedCell, GroupDifference, Outcome, RedactedReport, RenderedFinding,
        RenderedReport, ReportSummary, ReviewCell, ReviewCopy, ReviewPoint, SummaryFinding,
    };
}
pub use sample::{FieldOverride, Method, SampleField, SampleRisk, SampleSpec};
pub use sql::{QueryColumn, QueryLimits, QueryPage, QueryRequest, recorded as recorded_sql};
pub use workspace::{SampleView, SyncReport, WorkspaceSummary, WorkspaceView, Workspaces, keys_purpose};
