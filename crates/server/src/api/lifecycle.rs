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

/// The public key one signs agreements with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyBody {
    /// Base64 of the 32-byte Ed25519 public key (the private key stays with its owner).
    pub public_key: String,
}

/// Registers (or replaces) the caller's signing public key.
#[utoipa::path(
    put,
    path = "/api/v1/me/signing-key",
    tag = "lifecycle",
    security(("bearer" = [])),
    request_body = SigningKeyBody,
    responses(
        (status = 204, description = "Registered"),
        (status = 403, description = "API keys do not sign (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an Ed25519 public key (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn put_signing_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<SigningKeyBody>,
) -> Result<StatusCode, ApiError> {
    state.lifecycle.register_signing_key(&p, &b.public_key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The grantor drafts the agreement of a cleared application from the template (every YP9
/// clause; term at most three years).
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/agreement",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = shuyu_workflow::contracts::AgreementRequest,
    responses(
        (status = 201, description = "Drafted", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Not the grantor (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The application is not cleared (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A term longer than three years, or an unknown clause (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn draft_agreement(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<shuyu_workflow::contracts::AgreementRequest>,
) -> Result<(StatusCode, Json<shuyu_workflow::contracts::AgreementView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.lifecycle.draft_agreement(&p, &id, &r).await?),
    ))
}

/// One agreement: the document, its digest (what signatures cover), its state and its
/// re-verified signatures.
#[utoipa::path(
    get,
    path = "/api/v1/agreements/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agreement id")),
    responses(
        (status = 200, description = "OK", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Neither a party nor oversight (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_agreement(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<shuyu_workflow::contracts::AgreementView>, ApiError> {
    Ok(Json(state.lifecycle.agreement(&p, &id).await?))
}

/// A signature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// `agreement` or `commitment` (the grantee's data-security commitment).
    pub what: shuyu_workflow::contracts::SignWhat,
    /// Base64 of the Ed25519 signature over `shuyu-agreement-v1\n{digest}\n{what}\n`.
    pub signature: String,
}

/// Agreements.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementList {
    /// Oldest first.
    pub items: Vec<shuyu_workflow::contracts::AgreementView>,
}

/// The agreements the caller is party to (oversight: all), each with its state and whether
/// it is in force today.
#[utoipa::path(
    get,
    path = "/api/v1/agreements",
    tag = "lifecycle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = AgreementList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_agreements(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<AgreementList>, ApiError> {
    Ok(Json(AgreementList {
        items: state.lifecycle.agreements(&p).await?,
    }))
}

/// A party signs with its own key; the platform verifies against the registered public key.
#[utoipa::path(
    post,
    path = "/api/v1/agreements/{id}/sign",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agreement id")),
    request_body = SignBody,
    responses(
        (status = 200, description = "Signed", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Not a party (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not issued, or already signed (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No registered key, or the signature does not verify (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn sign_agreement(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SignBody>,
) -> Result<Json<shuyu_workflow::contracts::AgreementView>, ApiError> {
    Ok(Json(
        state.lifecycle.sign_agreement(&p, &id, b.what, &b.signature).await?,
    ))
}

/// A rectification step's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationBody {
    /// Ordering: the violation found.
    #[serde(default)]
    pub violation: Option<String>,
    /// Ordering: suspend the agreement meanwhile.
    #[serde(default)]
    pub suspend: bool,
    /// Reporting (the grantee): what was rectified.
    #[serde(default)]
    pub report: Option<String>,
    /// Deciding (the grantor): accepted (restore) or not (terminate).
    #[serde(default)]
    pub accepted: Option<bool>,
    /// Deciding: why.
    #[serde(default)]
    pub note: Option<String>,
}

/// Rectification (整改): `order` (the grantor: a violation, 30 days, optionally suspending
/// the agreement), `report` (the grantee), `decide` (the grantor: accepted restores a
/// suspended agreement, rejected terminates it).
#[utoipa::path(
    post,
    path = "/api/v1/agreements/{id}/rectification/{step}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agreement id"), ("step" = String, Path, description = "order | report | decide")),
    request_body = RectificationBody,
    responses(
        (status = 200, description = "Done", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Not allowed to (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agreement or step (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn rectification(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, step)): Path<(String, String)>,
    ApiJson(b): ApiJson<RectificationBody>,
) -> Result<Json<shuyu_workflow::contracts::AgreementView>, ApiError> {
    use shuyu_workflow::contracts::RectificationStep;
    let step = match step.as_str() {
        "order" => RectificationStep::Order {
            violation: b.violation.unwrap_or_default(),
            suspend: b.suspend,
        },
        "report" => RectificationStep::Report {
            report: b.report.unwrap_or_default(),
        },
        "decide" => RectificationStep::Decide {
            accepted: b.accepted.unwrap_or(false),
            note: b.note.unwrap_or_default(),
        },
        _ => return Err(LifecycleError::NotFound("event").into()),
    };
    Ok(Json(state.lifecycle.rectification(&p, &id, step).await?))
}

/// A renewal's new last day.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// The renewed term's last day (at most three years after the current end).
    #[schema(value_type = String, format = Date)]
    pub end: jiff::civil::Date,
}

/// A party renews inside the last six months of the term.
#[utoipa::path(
    post,
    path = "/api/v1/agreements/{id}/renew",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agreement id")),
    request_body = RenewBody,
    responses(
        (status = 200, description = "Renewed", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Not a party (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Outside the renewal window, or too long (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn renew_agreement(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RenewBody>,
) -> Result<Json<shuyu_workflow::contracts::AgreementView>, ApiError> {
    let ev = shuyu_workflow::agreement::Event::Renew { end: b.end };
    Ok(Json(state.lifecycle.agreement_event(&p, &id, ev).await?))
}

/// `issue`, `suspend`, `restore`, `terminate` (the grantor) or `cancel` (a party).
#[utoipa::path(
    post,
    path = "/api/v1/agreements/{id}/{event}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agreement id"), ("event" = String, Path, description = "issue | suspend | restore | terminate | cancel")),
    responses(
        (status = 200, description = "Done", body = shuyu_workflow::contracts::AgreementView),
        (status = 403, description = "Not allowed to (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agreement or event (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn agreement_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> Result<Json<shuyu_workflow::contracts::AgreementView>, ApiError> {
    use shuyu_workflow::agreement::Event;
    let ev = match event.as_str() {
        "issue" => Event::Issue { objections_open: 0 },
        "suspend" => Event::Suspend,
        "restore" => Event::Restore,
        "terminate" => Event::Terminate,
        "cancel" => Event::Cancel,
        _ => return Err(LifecycleError::NotFound("agreement").into()),
    };
    Ok(Json(state.lifecycle.agreement_event(&p, &id, ev).await?))
}

/// Attaches a file to a draft application (multipart, field `file`): PDF, PNG or JPEG by
/// content, at most 10 MiB; its SHA-256 is on the audit log.
#[utoipa::path(
    post,
    path = "/api/v1/applications/{id}/attachments",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body(content_type = "multipart/form-data", description = "`file`: the attachment"),
    responses(
        (status = 201, description = "Attached", body = shuyu_workflow::service::AttachmentMeta),
        (status = 403, description = "Not the applicant (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a PDF, PNG or JPEG, or too many (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn attach(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<(StatusCode, Json<shuyu_workflow::service::AttachmentMeta>), ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            e.status(),
            "malformed_upload",
            shuyu_core::error::Message::new("error.malformed_upload").arg("detail", e.body_text()),
        )
    };
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("attachment").to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > shuyu_workflow::service::MAX_ATTACHMENT_BYTES {
                break;
            }
        }
        let meta = state.lifecycle.attach(&p, &id, &name, &bytes).await?;
        return Ok((StatusCode::CREATED, Json(meta)));
    }
    Err(ApiError::from(shuyu_core::error::FieldError::new(
        "file",
        "field_required",
    )))
}

/// Downloads an attachment (whoever may read the application).
#[utoipa::path(
    get,
    path = "/api/v1/applications/{id}/attachments/{attachment_id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id"), ("attachment_id" = String, Path, description = "Attachment id")),
    responses(
        (status = 200, description = "The file, with its media type"),
        (status = 403, description = "Not allowed (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such attachment (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn download_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, attachment_id)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let (meta, bytes) = state.lifecycle.attachment(&p, &id, &attachment_id).await?;
    let disposition = format!(
        "attachment; filename=\"attachment\"; filename*=UTF-8''{}",
        utf8_percent(&meta.name)
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, meta.media_type),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (
                axum::http::header::HeaderName::from_static("x-content-sha256"),
                meta.sha256,
            ),
        ],
        bytes,
    )
        .into_response())
}

/// RFC 5987 percent-encoding of a file name.
fn utf8_percent(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
