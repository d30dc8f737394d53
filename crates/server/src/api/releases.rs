//! Release review and downloads of what was released. A developer asks to
//! release one checked job output to a recipient; the data request's reviewers record
//! structured decisions and overrides; only an approved release — minted by the gate,
//! watermarked for its recipient — can be downloaded.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use shuyu_engine::{ReleaseRequest, ReleaseReview, ReleaseView, RenderedReleaseReport};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth, ReqLang};
use crate::problem::{ApiError, Problem};

/// A release with its report in the caller's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseBody {
    /// The release.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub release: ReleaseView,
    /// The gate's report on what would leave, rendered: with the flagged cells for its
    /// reviewers, without key values for everybody else.
    #[schema(value_type = Object)]
    pub rendered: RenderedReleaseReport,
}

/// Releases.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    /// Newest first.
    pub items: Vec<ReleaseBody>,
}

fn body(r: ReleaseView, lang: shuyu_core::i18n::Lang) -> ReleaseBody {
    ReleaseBody {
        rendered: r.report.render(lang),
        release: r,
    }
}

/// Asks to release one output of a finished job to a recipient (with a remedy, if any); the
/// gate judges it again against the ledger and the destination.
#[utoipa::path(
    post,
    path = "/api/v1/releases",
    tag = "releases",
    security(("bearer" = [])),
    request_body = ReleaseRequest,
    responses(
        (status = 201, description = "Requested", body = ReleaseBody),
        (status = 403, description = "Not the job's developers (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job or output (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn request_release(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    ApiJson(req): ApiJson<ReleaseRequest>,
) -> Result<(StatusCode, Json<ReleaseBody>), ApiError> {
    let r = state.workspaces.request_release(&p, &req).await?;
    Ok((StatusCode::CREATED, Json(body(r, lang))))
}

/// The releases the caller may see: its organisation's, and those it reviews.
#[utoipa::path(
    get,
    path = "/api/v1/releases",
    tag = "releases",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = ReleaseList))
)]
pub async fn list_releases(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
) -> Result<Json<ReleaseList>, ApiError> {
    let items = state.workspaces.releases(&p).await?;
    Ok(Json(ReleaseList {
        items: items.into_iter().map(|r| body(r, lang)).collect(),
    }))
}

/// One release.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}",
    tag = "releases",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id")),
    responses(
        (status = 200, description = "OK", body = ReleaseBody),
        (status = 404, description = "No such release (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_release(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Json<ReleaseBody>, ApiError> {
    Ok(Json(body(state.workspaces.release(&p, &id).await?, lang)))
}

/// A reviewer's structured decision (the six points, reasons, overrides with reasons). When
/// enough reviewers approved and every check that did not pass is overridden, the gate mints
/// the release and watermarks it for its recipient. Audited, overrides included.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/review",
    tag = "releases",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id")),
    request_body = ReleaseReview,
    responses(
        (status = 200, description = "Recorded (and released when complete)", body = ReleaseBody),
        (status = 403, description = "Not a reviewer of its data request (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided, a check not overridden, a point unsatisfied, or abroad (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn review_release(
    State(state): State<AppState>,
    Auth(p): Auth,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ApiJson(review): ApiJson<ReleaseReview>,
) -> Result<Json<ReleaseBody>, ApiError> {
    Ok(Json(body(
        state.workspaces.review_release(&p, &id, &review).await?,
        lang,
    )))
}

/// The released copy as CSV (watermarked for its recipient), for its developers' organisation.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}/download",
    tag = "releases",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Release id")),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv"),
        (status = 409, description = "Not released (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn download_release(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let released = state.workspaces.download_release(&p, &id).await?;
    let name = format!("release-{}", released.release());
    Ok(super::csv_attachment(&name, released.into_value()))
}
