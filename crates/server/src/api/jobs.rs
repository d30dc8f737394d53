//! Code-to-data jobs: a developer's SQL outputs run on full data inside the domain. The
//! routes carry requests, states, metering and the gate's reports — never an output's rows,
//! which stay staged and encrypted until a release is approved.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use shuyu_engine::diagnostics::JobDiagnostics;
use shuyu_engine::views::ReportSummary;
use shuyu_engine::{JobRequest, JobView, MeteringView, ShapeDescription};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth, ReqLang};
use crate::problem::{ApiError, Problem};

/// A job with its reports in the caller's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobBody {
    /// Its id.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed or was cancelled: a code, and for a failure on full data the operator
    /// (`job_failed:cast`); the engine's own words stay inside the domain.
    pub reason: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// What it asked for.
    pub request: JobRequest,
    /// Its metering, once done, in coarse steps.
    pub metering: Option<MeteringView>,
    /// Each staged output's verdict, shape and report (never its rows, its size or a key value).
    pub outputs: Vec<JobOutputBody>,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// One staged output.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOutputBody {
    /// Its name.
    pub name: String,
    /// The gate's verdict: pass, review or fail.
    pub verdict: String,
    /// What the output algebra admitted.
    pub shape: Option<ShapeDescription>,
    /// The disclosure report: each check's outcome and a band of how many cells it flagged.
    #[schema(value_type = Object)]
    pub report: ReportSummary,
}

/// A workspace's jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub items: Vec<JobBody>,
}

/// What the check-only mode found, per output.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCheckBody {
    /// Whether every output plans and the output algebra admits it.
    pub ok: bool,
    /// Per output.
    pub outputs: Vec<OutputCheckBody>,
}

/// One output in check-only mode.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputCheckBody {
    /// The output.
    pub name: String,
    /// Whether it plans against the approved catalog.
    pub planned: bool,
    /// Why it does not plan (a syntax error, a field outside the manifest).
    pub error: Option<String>,
    /// The field outside the manifest, when that is why.
    pub field: Option<String>,
    /// The rule of the output algebra that refused it, with its explanation.
    pub refusal: Option<RefusalBody>,
    /// What the algebra admitted.
    pub shape: Option<ShapeDescription>,
}

/// A refusal by the output algebra.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalBody {
    /// The rule's stable id.
    pub rule: String,
    /// What it names (a field, a function, a table of the query).
    pub subject: String,
    /// Where (key, predicate, measure).
    pub place: Option<String>,
    /// The rule in the caller's language.
    pub explanation: String,
}

fn body(j: JobView, lang: shuyu_core::i18n::Lang) -> JobBody {
    JobBody {
        outputs: j
            .outputs
            .into_iter()
            .map(|o| JobOutputBody {
                name: o.name,
                verdict: o.verdict,
                shape: o.shape,
                report: o.report.render(lang),
            })
            .collect(),
        id: j.id,
        workspace_id: j.workspace_id,
        state: j.state,
        reason: j.reason,
        submitted_by: j.submitted_by,
        request: j.request,
        metering: j.metering,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
    }
}

/// Submits a job: each output must plan against the scenario's approved fields (else 422
/// naming the field); then it is queued and runs on full data inside the domain.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/jobs",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    request_body = JobRequest,
    responses(
        (status = 202, description = "Queued", body = JobBody),
        (status = 403, description = "Not its developers, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workspace is sealed (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An output names a field outside the manifest, or the request is malformed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn submit_job(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<JobRequest>,
) -> Result<(StatusCode, Json<JobBody>), ApiError> {
    let job = state.workspaces.submit_job(&p, &id, &req).await?;
    Ok((StatusCode::ACCEPTED, Json(body(job, lang))))
}

/// Check-only mode: plans each output against the manifest and applies the gate's rules that
/// need no data, saying which rule would block which output — nothing runs.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/jobs/check",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    request_body = JobRequest,
    responses(
        (status = 200, description = "Per output: planned or why not, and the static report", body = JobCheckBody),
        (status = 403, description = "Not its developers (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workspace is sealed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn check_job(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<JobRequest>,
) -> Result<Json<JobCheckBody>, ApiError> {
    let checks = state.workspaces.check_job(&p, &id, &req).await?;
    let ok = checks.iter().all(|c| c.planned);
    Ok(Json(JobCheckBody {
        ok,
        outputs: checks
            .into_iter()
            .map(|c| OutputCheckBody {
                refusal: c.refusal.map(|r| RefusalBody {
                    explanation: shuyu_core::i18n::t(lang, &format!("algebra.{}", r.rule)),
                    rule: r.rule,
                    subject: r.subject,
                    place: r.place,
                }),
                shape: c.shape,
                name: c.name,
                planned: c.planned,
                error: c.error,
                field: c.field,
            })
            .collect(),
    }))
}

/// A workspace's jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/jobs",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "OK", body = JobList),
        (status = 404, description = "No such workspace (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Json<JobList>, ApiError> {
    let items = state.workspaces.jobs_of(&p, &id).await?;
    Ok(Json(JobList {
        items: items.into_iter().map(|j| body(j, lang)).collect(),
    }))
}

/// One job: its state, metering and each output's disclosure report.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "OK", body = JobBody),
        (status = 404, description = "No such job (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Json<JobBody>, ApiError> {
    Ok(Json(body(state.workspaces.job(&p, &id).await?, lang)))
}

/// Cancels a queued or running job (a running one stops at once). Audited.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, cancelled (or already finished)", body = JobBody),
        (status = 403, description = "Not its developers (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Json<JobBody>, ApiError> {
    Ok(Json(body(state.workspaces.cancel_job(&p, &id).await?, lang)))
}

/// A failed job's diagnostics for the operator's security staff: the engine's text with every
/// value-like run taken out. Never the job's own organisation. Each read is audited.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/diagnostics",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The diagnostics, scrubbed of values", body = JobDiagnostics),
        (status = 403, description = "Not the operator's security staff (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or it has no diagnostics (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn job_diagnostics(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<JobDiagnostics>, ApiError> {
    Ok(Json(state.workspaces.job_diagnostics(&p, &id).await?))
}
