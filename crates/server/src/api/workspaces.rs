//! Developer workspaces (B§18, R-28): the masked samples of an approved scenario — their
//! figures and techniques — and SQL on them. No route here can reach full data: the engine
//! gives this crate only masked samples' figures and query pages over samples.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use shuyu_engine::{EngineError, QueryPage, QueryRequest, SampleSpec, WorkspaceSummary, WorkspaceView};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        if matches!(
            shuyu_core::error::UserFacing::kind(&e),
            shuyu_core::error::ErrorKind::Internal
        ) {
            tracing::error!(error = %e, "workspace failure");
        }
        ApiError::from_user_facing(&e)
    }
}

/// Workspaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    /// Oldest first.
    pub items: Vec<WorkspaceSummary>,
}

/// The workspaces the caller may see: its organisation's; oversight sees all.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces",
    tag = "workspaces",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = WorkspaceList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_workspaces(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<WorkspaceList>, ApiError> {
    Ok(Json(WorkspaceList {
        items: state.workspaces.list(&p).await?,
    }))
}

/// One workspace: its samples with their risk figures, and each field's technique.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "OK", body = WorkspaceView),
        (status = 403, description = "Not its organisation or oversight (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_workspace(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(state.workspaces.get(&p, &id).await?))
}

/// Runs one SQL query (DataFusion's dialect) on the workspace's samples and returns a page
/// of rows. Samples only: a dataset's full data is not a table here. Time- and
/// memory-limited, audited; refused when the agreement beneath is not in force.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/query",
    tag = "workspaces",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    request_body = QueryRequest,
    responses(
        (status = 200, description = "A page of rows", body = QueryPage),
        (status = 400, description = "The query failed, ran too long or needed too much memory (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not its developers, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workspace is sealed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn query_workspace(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(q): ApiJson<QueryRequest>,
) -> Result<Json<QueryPage>, ApiError> {
    Ok(Json(state.workspaces.query(&p, &id, &q).await?))
}

/// Redraws one sample with the developer's settings — a smaller fraction, or stratified by a
/// field so that rare values are in it — never looser than the platform's (fraction and
/// suppression at most, k at least the configured ones). Audited; beneath the agreement.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/samples/{table}/redraw",
    tag = "workspaces",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Workspace id"),
        ("table" = String, Path, description = "The sample's table name")
    ),
    request_body = SampleSpec,
    responses(
        (status = 200, description = "The workspace with the new sample", body = WorkspaceView),
        (status = 403, description = "Not its developers, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or table (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workspace is sealed (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Settings out of range, each named (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn redraw_sample(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, table)): Path<(String, String)>,
    ApiJson(spec): ApiJson<SampleSpec>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(state.workspaces.redraw(&p, &id, &table, &spec).await?))
}
