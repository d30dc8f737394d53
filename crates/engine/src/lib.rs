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

pub mod bench;
mod error;
mod evidence;
pub mod jobs;
pub mod offline;
pub mod products;
pub mod releases;
pub mod sample;
mod sql;
mod workspace;

pub use error::EngineError;
pub use jobs::{
    JobLimits, JobOutputSpec, JobOutputView, JobRequest, JobView, Metering, OutputCheck, job_output_key_id,
};
pub use products::{DelistRequest, ProductKind, ProductSource, ProductView, PublishRequest};
pub use releases::{
    Attribution, ReleaseRequest, ReleaseReview, ReleaseView, WATERMARK_SECRET_PURPOSE, WATERMARK_SECRET_SETTING,
    attribute, release_key_id,
};
pub use sample::{FieldOverride, Method, SampleField, SampleRisk, SampleSpec};
pub use sql::{QueryColumn, QueryLimits, QueryPage, QueryRequest};
pub use workspace::{SampleView, SyncReport, WorkspaceSummary, WorkspaceView, Workspaces, keys_purpose};
