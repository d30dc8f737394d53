//! Datasets: a provider uploads a file as a new version (streamed multipart),
//! reads the row-level error report and the suggested classification (masked
//! examples only), corrects it, and accepts or rejects the version. Oversight
//! (operator, authority, supervisor) reads the same metadata. No route here
//! returns a record: the catalog's views carry counts, digests and masks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shuyu_catalog::{CatalogError, Correction, ImportRequest, VersionView};
use shuyu_core::error::{FieldError, Message};
use shuyu_core::i18n::{Lang, render};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, Auth, ReqLang};
use crate::problem::{ApiError, Problem};

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        ApiError::from_user_facing(&e)
    }
}

fn code<T: Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One column of a version: its suggested (or corrected) classification.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnDto {
    /// The column's name in the file.
    pub name: String,
    /// The type: `id_number`, `mobile`, `uscc`, `party_id`, `person_name`, `address`, `date`, `decimal`, …
    pub field_type: String,
    /// `none`, `trade_secret`, `personal` or `sensitive_personal`.
    pub sensitivity: String,
    /// GB/T 43697 grade: `L1`…`L4`, `important` or `core`.
    pub grade: String,
    /// Share of sampled values the type accepts (0–1).
    pub confidence: f64,
    /// Why the type was suggested.
    pub evidence: String,
    /// Whether an empty value is an error.
    pub required: bool,
    /// Masked examples (never raw values).
    pub examples: Vec<String>,
    /// Whether the provider set the type.
    pub overridden: bool,
}

/// A dataset version as its provider and oversight see it: counts, classification, masks.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDto {
    /// Its id.
    pub id: String,
    /// Its dataset.
    pub dataset_id: String,
    /// Its number within the dataset (1, 2, …).
    pub version_no: i64,
    /// `pending_review`, `active`, `superseded` or `rejected`.
    pub state: String,
    /// The uploaded file's name.
    pub source_name: String,
    /// The format read.
    pub format: String,
    /// The text encoding read (CSV) or `binary`.
    pub encoding: String,
    /// Data rows in the file.
    pub rows_read: i64,
    /// Rows kept.
    pub rows_accepted: i64,
    /// Rows set aside in quarantine.
    pub rows_quarantined: i64,
    /// Bad values found (see the error report).
    pub error_count: i64,
    /// The version's grade: its strictest column's.
    pub grade: String,
    /// Its columns.
    pub columns: Vec<ColumnDto>,
    /// Under review: what it changes against the current version; accepting needs each
    /// breaking one confirmed by its key.
    pub changes: Vec<shuyu_catalog::compare::Change>,
}

impl From<&VersionView> for VersionDto {
    fn from(v: &VersionView) -> Self {
        Self {
            id: v.id.clone(),
            dataset_id: v.dataset_id.clone(),
            version_no: v.version_no,
            state: v.state.code().into(),
            source_name: v.source_name.clone(),
            format: v.format.clone(),
            encoding: v.encoding.clone(),
            rows_read: v.rows_read,
            rows_accepted: v.rows_accepted,
            rows_quarantined: v.rows_quarantined,
            error_count: v.error_count,
            changes: v.changes.clone(),
            grade: v.grade.clone(),
            columns: v
                .columns
                .iter()
                .map(|c| ColumnDto {
                    name: c.name.clone(),
                    field_type: c.class.field_type.code().into(),
                    sensitivity: code(&c.class.sensitivity),
                    grade: c.class.grade.code(),
                    confidence: c.class.confidence,
                    evidence: c.class.evidence.clone(),
                    required: c.required,
                    examples: c.examples.clone(),
                    overridden: c.overridden,
                })
                .collect(),
        }
    }
}

/// A dataset with its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetDto {
    /// Its id.
    pub id: String,
    /// The providing organisation.
    pub org_id: String,
    /// Machine name, unique within the organisation.
    pub name: String,
    /// Human title.
    pub title: String,
    /// The grade of the version in use.
    pub grade: String,
    /// `active` or `withdrawn`.
    pub status: String,
    /// The version in use, if one was accepted.
    pub current_version: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Its versions, newest first.
    pub versions: Vec<VersionDto>,
}

/// The datasets the caller may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    /// The datasets.
    pub items: Vec<DatasetDto>,
}

/// One bad value of an import (never the value: its digest).
#[derive(Debug, Serialize, ToSchema)]
pub struct RowErrorDto {
    /// 1-based data row (the header is not counted).
    pub row: i64,
    /// The column (`*` for a row that could not be parsed).
    pub field: String,
    /// The rule broken.
    pub rule: String,
    /// The rule as a sentence, in the request's language.
    pub message: String,
    /// First 16 hex digits of the value's SHA-256 (empty when the value is missing).
    pub value_digest: String,
}

pub(crate) fn row_error(lang: Lang, e: &shuyu_store::datasets::ImportErrorRecord) -> RowErrorDto {
    // The message of the rule the row broke, with the column as its field.
    let msg = Message::new(format!("rule.{}", e.rule))
        .arg("field", e.field.clone())
        .arg("path", e.field.clone());
    RowErrorDto {
        row: e.row_no,
        field: e.field.clone(),
        rule: e.rule.clone(),
        message: render(lang, &msg),
        value_digest: e.value_digest.clone(),
    }
}

/// A page of an error report.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowErrorList {
    /// Bad values in all (the report may list fewer: it keeps the first 100 000).
    pub total: i64,
    /// This page.
    pub items: Vec<RowErrorDto>,
}

/// The outcome of an upload: the new version and the start of its error report.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    /// The version, awaiting review (or rejected, when the provider chose `reject` and rows were bad).
    pub version: VersionDto,
    /// The first 100 bad values; page through `/dataset-versions/{id}/errors` for the rest.
    pub errors: Vec<RowErrorDto>,
}

/// The parts of an upload (multipart/form-data). Only `file` is required.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: CSV (UTF-8, GBK or GB18030, detected), XLSX, Parquet or JSON Lines.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The dataset's title, on its first import.
    title: Option<String>,
    /// `csv`, `xlsx`, `parquet` or `jsonl` (default: from the file name).
    format: Option<String>,
    /// Text encoding label for CSV (default: detected).
    encoding: Option<String>,
    /// `quarantine` (default: keep good rows, set bad ones aside) or `reject` (keep nothing if a row is bad).
    on_error: Option<String>,
    /// A JSON object, column → type code, replacing inferred types.
    overrides: Option<String>,
}

/// An uploaded file on disk, removed when dropped (also when the client goes away mid-upload).
pub(crate) struct Upload {
    /// Where it was written.
    pub(crate) path: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The text parts are small; anything longer is not a choice but a mistake.
const MAX_TEXT_PART: usize = 64 * 1024;

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(
        e.status(),
        "malformed_upload",
        Message::new("error.malformed_upload").arg("detail", e.body_text()),
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
        Message::new("error.upload_too_large").arg("max", (limit / (1024 * 1024)).to_string()),
    )
}

/// Receives a multipart upload: streams `file` to disk under the upload directory
/// (never holding it in memory, stopping at the size limit), collects the text parts.
/// `before_file` sees the text parts sent before the file and may refuse it before a
/// byte of it is stored (the console checks its CSRF token and the right to import there).
pub(crate) async fn receive<F, Fut>(
    state: &AppState,
    mut form: Multipart,
    before_file: F,
) -> Result<(Upload, String, BTreeMap<String, String>), ApiError>
where
    F: FnOnce(BTreeMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut before_file = Some(before_file);
    let limit = state.cfg.max_upload_bytes;
    let mut upload: Option<(Upload, String)> = None;
    let mut text = BTreeMap::new();
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            match before_file.take() {
                Some(check) => check(text.clone()).await?,
                None => return Err(FieldError::new("file", "duplicate_field").arg("name", "file").into()),
            }
            let source = field.file_name().unwrap_or("upload").to_string();
            tokio::fs::create_dir_all(&state.cfg.upload_dir)
                .await
                .map_err(|e| internal(&e))?;
            let path = state.cfg.upload_dir.join(format!("{}.upload", uuid::Uuid::now_v7()));
            let guard = Upload { path: path.clone() };
            let mut f = tokio::fs::File::create(&path).await.map_err(|e| internal(&e))?;
            let mut written: u64 = 0;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                written += chunk.len() as u64;
                if written > limit {
                    return Err(too_large(limit));
                }
                f.write_all(&chunk).await.map_err(|e| internal(&e))?;
            }
            f.flush().await.map_err(|e| internal(&e))?;
            upload = Some((guard, source));
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT_PART {
                    return Err(FieldError::new(name, "too_long").arg("max", MAX_TEXT_PART).into());
                }
            }
            let value =
                String::from_utf8(value).map_err(|_| ApiError::from(FieldError::new(name.clone(), "invalid_utf8")))?;
            text.insert(name, value);
        }
    }
    let (guard, source) = upload.ok_or_else(|| ApiError::from(FieldError::new("file", "required")))?;
    Ok((guard, source, text))
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "upload failed");
    ApiError::simple(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::from(shuyu_core::error::Validation::from(e))
    }
}

/// The import choices of an upload's text parts, all checked at once.
pub(crate) fn import_request(text: &mut BTreeMap<String, String>) -> Result<ImportRequest, ApiError> {
    let mut errors = Vec::new();
    let overrides = match text.remove("overrides").filter(|s| !s.trim().is_empty()) {
        None => BTreeMap::new(),
        Some(json) => serde_json::from_str::<BTreeMap<String, String>>(&json).unwrap_or_else(|_| {
            errors.push(
                FieldError::new("overrides", "invalid_value")
                    .arg("path", "overrides")
                    .arg("detail", "{\"column\": \"type\"}"),
            );
            BTreeMap::new()
        }),
    };
    let req = ImportRequest {
        format: text.remove("format"),
        encoding: text.remove("encoding"),
        on_error: text.remove("on_error"),
        overrides,
    };
    for unknown in text.keys().filter(|k| k.as_str() != "title") {
        errors.push(FieldError::new(unknown.clone(), "unknown_field").arg("path", unknown));
    }
    if let Err(v) = req.options() {
        errors.extend(v.0);
    }
    if errors.is_empty() {
        Ok(req)
    } else {
        Err(shuyu_core::error::Validation(errors).into())
    }
}

/// The datasets the caller may read, with their versions (metadata only).
#[utoipa::path(
    get,
    path = "/api/v1/datasets",
    tag = "datasets",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DatasetList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_datasets(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<DatasetList>, ApiError> {
    let all = state.catalog.list(&p).await?;
    Ok(Json(DatasetList {
        items: all
            .iter()
            .map(|(d, versions)| DatasetDto {
                id: d.id.clone(),
                org_id: d.org_id.clone(),
                name: d.name.clone(),
                title: d.title.clone(),
                grade: d.grade.clone(),
                status: d.status.clone(),
                current_version: d.current_version.clone(),
                created_at: d.created_at,
                updated_at: d.updated_at,
                versions: versions.iter().rev().map(VersionDto::from).collect(),
            })
            .collect(),
    }))
}

/// Uploads a file as a new version of the caller's organisation's dataset `name`
/// (created on first upload). The file is streamed to disk (size limit: the server's
/// `max_upload_bytes`), imported into the encrypted vault, and deleted. Every row
/// that breaks a type or rule is reported and quarantined, never dropped.
#[utoipa::path(
    post,
    path = "/api/v1/datasets/{name}/versions",
    tag = "datasets",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset name: 2–64 lowercase letters, digits, _")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Imported; awaiting review", body = UploadResult),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the upload limit (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A choice breaks a rule, or the file cannot be read at all (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn upload_version(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(name): Path<String>,
    form: Multipart,
) -> Result<(StatusCode, Json<UploadResult>), ApiError> {
    // Refuse before receiving: a caller who may not import does not get to send the file.
    state.catalog.may_import(&p, &name).await?;
    let (upload, source, mut text) = receive(&state, form, |_| async { Ok(()) }).await?;
    let title = text.remove("title");
    let req = import_request(&mut text)?;
    let opts = req.options()?;
    let (version, errors) = state
        .catalog
        .import(&p, &name, title.as_deref(), &upload.path, &source, &opts)
        .await?;
    drop(upload);
    Ok((
        StatusCode::CREATED,
        Json(UploadResult {
            version: VersionDto::from(&version),
            errors: errors.iter().take(100).map(|e| row_error(lang, e)).collect(),
        }),
    ))
}

/// One version: counts, classification with masked examples, state.
#[utoipa::path(
    get,
    path = "/api/v1/dataset-versions/{id}",
    tag = "datasets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Version id")),
    request_body(content = Option<AcceptBody>, description = "Breaking changes confirmed by name (optional)"),
    responses(
        (status = 200, description = "OK", body = VersionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_version(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<VersionDto>, ApiError> {
    Ok(Json(VersionDto::from(&state.catalog.version(&p, &id).await?)))
}

/// Paging of an error report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorPage {
    /// Items per page (1–10 000, default 1 000).
    pub limit: Option<i64>,
    /// Items to skip.
    pub offset: Option<i64>,
}

/// A page of a version's row-level error report: row, column, rule (with its
/// message in the request's language) and the value's digest — never the value.
#[utoipa::path(
    get,
    path = "/api/v1/dataset-versions/{id}/errors",
    tag = "datasets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Version id"), ErrorPage),
    responses(
        (status = 200, description = "OK", body = RowErrorList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn version_errors(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    Query(page): Query<ErrorPage>,
) -> Result<Json<RowErrorList>, ApiError> {
    let v = state.catalog.version(&p, &id).await?;
    let items = state
        .catalog
        .errors(&p, &id, page.limit.unwrap_or(1000), page.offset.unwrap_or(0))
        .await?;
    Ok(Json(RowErrorList {
        total: v.error_count,
        items: items.iter().map(|e| row_error(lang, e)).collect(),
    }))
}

/// A correction of one column's classification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// A new type code.
    pub field_type: Option<String>,
    /// A new grade: `L1`…`L4`, `important` or `core` (core data is then refused entry).
    pub grade: Option<String>,
}

/// Corrects a column's suggested classification (type and/or grade) of a version
/// under review. The correction is audited with the before and after values.
#[utoipa::path(
    patch,
    path = "/api/v1/dataset-versions/{id}/columns/{column}",
    tag = "datasets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Version id"), ("column" = String, Path, description = "Column name")),
    request_body = CorrectionBody,
    responses(
        (status = 200, description = "OK", body = VersionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version is no longer under review (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn correct_column(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, column)): Path<(String, String)>,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Json<VersionDto>, ApiError> {
    let v = state
        .catalog
        .correct(
            &p,
            &id,
            &column,
            Correction {
                field_type: body.field_type,
                grade: body.grade,
            },
        )
        .await?;
    Ok(Json(VersionDto::from(&v)))
}

/// Accepts a version under review: it becomes the dataset's version in use and the
/// previous one is superseded. Core data is refused here, with the columns named.
#[utoipa::path(
    post,
    path = "/api/v1/dataset-versions/{id}/accept",
    tag = "datasets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Version id")),
    responses(
        (status = 200, description = "OK", body = VersionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not under review, core data, or a breaking change not confirmed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn accept_version(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: Option<ApiJson<AcceptBody>>,
) -> Result<Json<VersionDto>, ApiError> {
    let confirm = body.map(|b| b.0.confirm).unwrap_or_default();
    let v = state.catalog.accept(&p, &id, &confirm).await?;
    state.data_changed();
    Ok(Json(VersionDto::from(&v)))
}

/// Accepting a version: the breaking changes (against the current version) confirmed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The keys of the version's breaking `changes` (`column_removed:region`, `rows_jump`, …),
    /// each confirmed by name; a breaking change left out is refused with 409
    /// `breaking_change_unconfirmed`, naming it.
    #[serde(default)]
    pub confirm: Vec<String>,
}

/// Takes the dataset's current version back (a wrong file accepted): the version it replaced
/// is current again, with its data, classification and grade; the taken-back version is kept
/// as `rolled_back`. Audited; jobs use the reinstated version at once and workspaces rebuild
/// their samples from it.
#[utoipa::path(
    post,
    path = "/api/v1/datasets/{name}/rollback",
    tag = "datasets",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset name (of the caller's organisation)")),
    responses(
        (status = 200, description = "The version current again", body = VersionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No earlier version to go back to (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn roll_back(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> Result<Json<VersionDto>, ApiError> {
    let v = state.catalog.roll_back(&p, &name).await?;
    state.data_changed();
    Ok(Json(VersionDto::from(&v)))
}

/// Rejects a version under review: its encrypted data and quarantine are destroyed.
#[utoipa::path(
    post,
    path = "/api/v1/dataset-versions/{id}/reject",
    tag = "datasets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Version id")),
    responses(
        (status = 200, description = "OK", body = VersionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not under review (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reject_version(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<VersionDto>, ApiError> {
    Ok(Json(VersionDto::from(&state.catalog.reject(&p, &id).await?)))
}
