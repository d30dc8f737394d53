//! The authorization lifecycle's first steps: calls for applications and
//! applications with their scenario and data-need lists and attestations.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shuyu_workflow::call::CallEvent;
use shuyu_workflow::service::{ApplicationBody, ApplicationView, CallView, LifecycleError, NewCall};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        ApiError::from_user_facing(&e)
    }
}

/// Calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    pub items: Vec<CallView>,
}

/// The calls the caller may read: published ones, and its own drafts.
#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "lifecycle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CallList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_calls(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<CallList>, ApiError> {
    Ok(Json(CallList {
        items: state.lifecycle.calls(&p).await?,
    }))
}

/// Drafts a call for applications: the data authority for operators (or, for a county, for
/// developers); the operator for developers in two-level mode.
#[utoipa::path(
    post,
    path = "/api/v1/calls",
    tag = "lifecycle",
    security(("bearer" = [])),
    request_body = NewCall,
    responses(
        (status = 201, description = "Drafted", body = CallView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_call(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(c): ApiJson<NewCall>,
) -> Result<(StatusCode, Json<CallView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.lifecycle.create_call(&p, &c).await?)))
}

/// One call.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "OK", body = CallView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_call(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    Ok(Json(state.lifecycle.call(&p, &id).await?))
}

/// Publishes (`publish`) or withdraws (`withdraw`) a call.
#[utoipa::path(
    post,
    path = "/api/v1/calls/{id}/{event}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Call id"), ("event" = String, Path, description = "publish | withdraw")),
    responses(
        (status = 200, description = "Done", body = CallView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call or event (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn call_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> Result<Json<CallView>, ApiError> {
    let event = match event.as_str() {
        "publish" => CallEvent::Publish,
        "withdraw" => CallEvent::Withdraw,
        _ => return Err(LifecycleError::NotFound("call").into()),
    };
    Ok(Json(state.lifecycle.call_event(&p, &id, event).await?))
}

/// Applications.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationList {
    /// Oldest first.
    pub items: Vec<ApplicationView>,
}

/// Filter of the application listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationFilter {
    /// Only applications to this call.
    pub call_id: Option<String>,
}

/// The applications the caller may read: its own, and (submitted) those to its calls.
#[utoipa::path(
    get,
    path = "/api/v1/applications",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(ApplicationFilter),
    responses(
        (status = 200, description = "OK", body = ApplicationList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_applications(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(f): Query<ApplicationFilter>,
) -> Result<Json<ApplicationList>, ApiError> {
    Ok(Json(ApplicationList {
        items: state.lifecycle.applications(&p, f.call_id.as_deref()).await?,
    }))
}

/// Starts an application to call `id` (a draft): scenario list, data-need list referring to
/// catalog entries (a reason per field), eligibility attestations.
#[utoipa::path(
    post,
    path = "/api/v1/calls/{id}/applications",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Call id")),
    request_body = ApplicationBody,
    responses(
        (status = 201, description = "Drafted", body = ApplicationView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The call does not accept applications (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_application(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApplicationBody>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.lifecycle.create_application(&p, &id, &b).await?),
    ))
}

/// One application.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "OK", body = ApplicationView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_application(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.application(&p, &id).await?))
}

/// Replaces a draft application's content.
#[utoipa::path(
    put,
    path = "/api/v1/applications/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = ApplicationBody,
    responses(
        (status = 200, description = "Changed", body = ApplicationView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_application(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApplicationBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.update_application(&p, &id, &b).await?))
}

/// Submits (`submit`) or withdraws (`withdraw`) an application. Submission needs an open
/// call, at least one scenario and one data need, a reason for every field and every
/// attestation; each missing piece is named.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/{event}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id"), ("event" = String, Path, description = "submit | withdraw")),
    responses(
        (status = 200, description = "Done", body = ApplicationView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such application or event (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Incomplete (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn application_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> Result<Json<ApplicationView>, ApiError> {
    let v = match event.as_str() {
        "submit" => state.lifecycle.submit_application(&p, &id).await?,
        "withdraw" => state.lifecycle.withdraw_application(&p, &id).await?,
        _ => return Err(LifecycleError::NotFound("application").into()),
    };
    Ok(Json(v))
}

/// The panel for a review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PanelBody {
    /// Usernames of accounts with the expert role (at least the call's quorum).
    pub experts: Vec<String>,
}

/// The call's issuer sends a submitted application to the expert panel once the call closed.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/review",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = PanelBody,
    responses(
        (status = 200, description = "In review", body = ApplicationView),
        (status = 403, description = "Not the call's issuer (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed now, e.g. the call is still open (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not experts, or fewer than the quorum (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn start_review(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PanelBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.start_review(&p, &id, &b.experts).await?))
}

/// An expert's conflict-of-interest declaration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareBody {
    /// Whether the expert has a conflict of interest (then they do not score).
    pub conflict: bool,
}

/// An assigned expert declares a conflict of interest, or none (before scoring).
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/declare",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = DeclareBody,
    responses(
        (status = 200, description = "Declared", body = ApplicationView),
        (status = 403, description = "Not an expert (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not assigned, or already declared (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn declare(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<DeclareBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    let ev = shuyu_workflow::review::ReviewEvent::Declare { conflict: b.conflict };
    Ok(Json(state.lifecycle.expert(&p, &id, ev).await?))
}

/// An expert's scores.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    /// One score (0–100) per published criterion, in order.
    pub scores: Vec<u8>,
}

/// An assigned expert without a conflict scores every published criterion.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/score",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = ScoreBody,
    responses(
        (status = 200, description = "Scored", body = ApplicationView),
        (status = 403, description = "Not an expert (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Recused, not declared, or a criterion missing (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn score(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ScoreBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    let ev = shuyu_workflow::review::ReviewEvent::Score { scores: b.scores };
    Ok(Json(state.lifecycle.expert(&p, &id, ev).await?))
}

/// The issuer decides on the panel's aggregate; an approval needs the government approval's
/// reference and goes on public notice for the call's notice period.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/decision",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = shuyu_workflow::service::Decision,
    responses(
        (status = 200, description = "Decided", body = ApplicationView),
        (status = 403, description = "Not the call's issuer (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No quorum yet, or no government approval (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn decide(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<shuyu_workflow::service::Decision>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.decide(&p, &id, &d).await?))
}

/// An objection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionBody {
    /// What is objected to (1–4000 characters).
    pub text: String,
}

/// Anyone with an account objects to a result on public notice, during its period.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/objections",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = ObjectionBody,
    responses(
        (status = 200, description = "Recorded", body = ApplicationView),
        (status = 404, description = "Not on notice (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The notice period is over (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn object(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ObjectionBody>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.object(&p, &id, &b.text).await?))
}

/// An answer to an objection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionAnswer {
    /// The answer (1–4000 characters).
    pub answer: String,
}

/// The issuer answers objection `index` (0-based).
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/objections/{index}/answer",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id"), ("index" = usize, Path, description = "Objection, 0-based")),
    request_body = ObjectionAnswer,
    responses(
        (status = 200, description = "Answered", body = ApplicationView),
        (status = 403, description = "Not the call's issuer (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such objection, or already answered (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn answer_objection(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, index)): Path<(String, usize)>,
    ApiJson(b): ApiJson<ObjectionAnswer>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.answer_objection(&p, &id, index, &b.answer).await?))
}

/// The issuer closes the notice once its period is over and every objection answered: the
/// application is cleared for an agreement.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/notice/close",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Cleared", body = ApplicationView),
        (status = 403, description = "Not the call's issuer (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The period is not over, or objections are unanswered (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn close_notice(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.lifecycle.clear_notice(&p, &id).await?))
}
