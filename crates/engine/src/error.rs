//! What can go wrong in the engine, and how a user is told.

use shuyu_core::error::{ErrorKind, FieldError, Message, UserFacing, Validation};
use shuyu_identity::IdentityError;
use shuyu_store::StoreError;
use shuyu_workflow::service::LifecycleError;

/// An engine failure. Messages never carry a full-data value: column names, codes and
/// counts only.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Authorization, the agreement beneath, or the store (from the lifecycle).
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] shuyu_vault::VaultError),
    /// A key could not be made or opened.
    #[error(transparent)]
    Key(#[from] shuyu_keyring::KeyringError),
    /// A technique failed.
    #[error(transparent)]
    Mask(#[from] shuyu_mask::MaskError),
    /// Arrow failed on a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// No such object.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A column the manifest names is not in the stored version.
    #[error("the stored version has no column {0}")]
    Missing(String),
    /// Sampling settings broke rules.
    #[error(transparent)]
    BadSpec(Validation),
    /// The stratification field is not in the dataset.
    #[error("no field {0} to stratify by")]
    NoStratum(String),
    /// An override names a technique the catalog does not have.
    #[error("field {field}: no technique {technique}")]
    BadOverride {
        /// The field.
        field: String,
        /// The technique asked for.
        technique: String,
    },
    /// The workspace is sealed (its data request is no longer approved).
    #[error("workspace {0} is sealed")]
    Sealed(String),
    /// The SQL could not be planned or run (DataFusion's explanation).
    #[error("query failed: {0}")]
    Query(String),
    /// The query ran past its time limit.
    #[error("query took longer than {0} s")]
    QueryTimeout(u64),
    /// The query needed more memory than its limit.
    #[error("query needed more than {0} MiB")]
    QueryMemory(u64),
    /// A worker task failed.
    #[error("task failed: {0}")]
    Task(String),
    /// A workspace query outside what queries may do (a function not offered, a size argument
    /// that is not a small literal, a table that is not a sample): the rule and what it names.
    #[error("query refused by rule {rule} ({subject})")]
    QueryRefused {
        /// The rule.
        rule: &'static str,
        /// What it names (the developer's own SQL: a function or a table name).
        subject: String,
    },
    /// The principal already runs as many queries as one may at once.
    #[error("{0} queries already running")]
    QueryBusy(usize),
    /// A job's output names a field the manifest does not approve (refused at planning).
    #[error("output {output}: no approved field {field}")]
    NotApproved {
        /// The output.
        output: String,
        /// The field.
        field: String,
    },
    /// The release is no longer open to review (or not released yet, for a download).
    #[error("the release is {0}")]
    ReleaseClosed(String),
    /// The gate refused to mint the release.
    #[error(transparent)]
    Gate(shuyu_gate::GateError),
    /// The release is already published as this product.
    #[error("the release is already published as product {0}")]
    AlreadyPublished(String),
    /// The product is delisted (by its publisher, or because its agreement is not in force).
    #[error("product {0} is delisted")]
    ProductDelisted(String),
    /// The product is for its recipient only.
    #[error("the product is for {0} only")]
    NotRecipient(String),
    /// A job would read more rows than its limit.
    #[error("the job would read more than {0} rows")]
    TooManyRows(u64),
    /// The output algebra refused an output: the rule, and what it names (the developer's own
    /// SQL — a field, a function, a table — never a value of the data).
    #[error("output {output} refused by rule {rule} ({subject})")]
    Refused {
        /// The output.
        output: String,
        /// The rule.
        rule: &'static str,
        /// What it names.
        subject: String,
        /// Where in the query.
        place: Option<&'static str>,
    },
    /// A release asked for an output the gate fails, which no remedy asked for makes pass.
    #[error("the output fails {checks}")]
    FailsGate {
        /// The checks that fail.
        checks: String,
    },
    /// A release asked for an output of a job that has not finished.
    #[error("the job is {0}")]
    JobNotDone(String),
    /// A file given to the offline gate could not be read.
    #[error("{file}: {detail}")]
    BadFile {
        /// The file.
        file: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl From<IdentityError> for EngineError {
    fn from(e: IdentityError) -> Self {
        EngineError::Lifecycle(e.into())
    }
}

impl UserFacing for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Lifecycle(e) => e.kind(),
            EngineError::Store(e) => e.kind(),
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::BadSpec(_) | EngineError::NoStratum(_) | EngineError::BadOverride { .. } => ErrorKind::Invalid,
            EngineError::Sealed(_) => ErrorKind::Conflict,
            EngineError::Query(_) | EngineError::QueryTimeout(_) | EngineError::QueryMemory(_) => ErrorKind::BadRequest,
            EngineError::QueryRefused { .. } => ErrorKind::Invalid,
            EngineError::QueryBusy(_) => ErrorKind::TooManyRequests,
            EngineError::Refused { .. }
            | EngineError::FailsGate { .. }
            | EngineError::BadFile { .. }
            | EngineError::NotApproved { .. } => ErrorKind::Invalid,
            EngineError::JobNotDone(_) => ErrorKind::Conflict,
            EngineError::TooManyRows(_) => ErrorKind::BadRequest,
            EngineError::ReleaseClosed(_) | EngineError::AlreadyPublished(_) | EngineError::ProductDelisted(_) => {
                ErrorKind::Conflict
            }
            EngineError::NotRecipient(_) => ErrorKind::Forbidden,
            EngineError::Gate(e) => e.kind(),
            EngineError::Vault(_)
            | EngineError::Key(_)
            | EngineError::Mask(_)
            | EngineError::Arrow(_)
            | EngineError::Missing(_)
            | EngineError::Task(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EngineError::Lifecycle(e) => e.code(),
            EngineError::Store(e) => e.code(),
            EngineError::NotFound(_) => "not_found",
            EngineError::BadSpec(_) | EngineError::NoStratum(_) | EngineError::BadOverride { .. } => {
                "validation_failed"
            }
            EngineError::Sealed(_) => "workspace_sealed",
            EngineError::Query(_) => "query_failed",
            EngineError::QueryTimeout(_) => "query_timeout",
            EngineError::QueryMemory(_) => "query_memory",
            EngineError::QueryRefused { .. } => "query_refused",
            EngineError::QueryBusy(_) => "query_busy",
            EngineError::Refused { .. } => "output_refused",
            EngineError::FailsGate { .. } => "release_fails_gate",
            EngineError::JobNotDone(_) => "job_not_done",
            EngineError::BadFile { .. } => "bad_file",
            EngineError::NotApproved { .. } => "field_not_approved",
            EngineError::TooManyRows(_) => "too_many_rows",
            EngineError::ReleaseClosed(_) => "release_closed",
            EngineError::AlreadyPublished(_) => "product_exists",
            EngineError::ProductDelisted(_) => "product_delisted",
            EngineError::NotRecipient(_) => "product_not_recipient",
            EngineError::Gate(e) => e.code(),
            _ => "internal",
        }
    }

    fn message(&self) -> Message {
        match self {
            EngineError::Lifecycle(e) => e.message(),
            EngineError::Store(e) => e.message(),
            EngineError::NotFound(o) => Message::new("error.not_found").arg_key("object", format!("object.{o}")),
            EngineError::Sealed(w) => Message::new("error.workspace_sealed").arg("workspace", w),
            EngineError::Query(detail) => Message::new("error.query_failed").arg("detail", detail),
            EngineError::QueryTimeout(s) => Message::new("error.query_timeout").arg("seconds", s.to_string()),
            EngineError::QueryMemory(m) => Message::new("error.query_memory").arg("mib", m.to_string()),
            EngineError::QueryRefused { rule, subject } => Message::new("error.query_refused")
                .arg_key("rule", format!("query_rule.{rule}"))
                .arg("subject", subject),
            EngineError::QueryBusy(n) => Message::new("error.query_busy").arg("running", n.to_string()),
            EngineError::Refused {
                output,
                rule,
                subject,
                place,
            } => Message::new("error.output_refused")
                .arg("output", output)
                .arg_key("rule", format!("algebra.{rule}"))
                .arg("subject", subject)
                .arg_key("place", format!("algebra.place.{}", place.unwrap_or("query"))),
            EngineError::FailsGate { checks } => Message::new("error.release_fails_gate").arg("checks", checks),
            EngineError::JobNotDone(state) => Message::new("error.job_not_done").arg("state", state),
            EngineError::NotApproved { output, field } => Message::new("error.field_not_approved")
                .arg("output", output)
                .arg("field", field),
            EngineError::TooManyRows(n) => Message::new("error.too_many_rows").arg("rows", n.to_string()),
            EngineError::ReleaseClosed(state) => {
                Message::new("error.release_closed").arg_key("state", format!("gate.release_state.{state}"))
            }
            EngineError::Gate(e) => e.message(),
            EngineError::AlreadyPublished(id) => Message::new("error.product_exists").arg("product", id),
            EngineError::ProductDelisted(id) => Message::new("error.product_delisted").arg("product", id),
            EngineError::NotRecipient(who) => Message::new("error.product_not_recipient").arg("recipient", who),
            EngineError::BadFile { file, detail } => {
                Message::new("error.bad_file").arg("file", file).arg("detail", detail)
            }
            other => Message::new(format!("error.{}", other.code())),
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            EngineError::Lifecycle(e) => e.field_errors(),
            EngineError::BadSpec(v) => v.field_errors(),
            EngineError::NoStratum(f) => {
                vec![FieldError::new("method.by", "unknown_field").arg("path", format!("method.by = {f}"))]
            }
            EngineError::BadOverride { field, technique } => vec![
                FieldError::new("technique", "unknown_technique")
                    .arg("column", field)
                    .arg("name", technique),
            ],
            _ => Vec::new(),
        }
    }
}
