//! Data requests — one scenario, one list, one review — and their signed scenario
//! manifests. Everything a requester does here runs beneath its agreement: when the
//! agreement is not in force the answer is 403 `agreement_not_in_force`, including for a
//! wait still open at the moment of suspension.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shuyu_workflow::requests::{
    DataRequestBody, DataRequestView, ManifestView, MaskingOverride, NewDataRequest, ReviewDecision,
};
use shuyu_workflow::service::LifecycleError;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

/// Data requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataRequestList {
    /// Oldest first.
    pub items: Vec<DataRequestView>,
}

/// The requests the caller may read: its own, those it reviews, and (oversight) all submitted.
#[utoipa::path(
    get,
    path = "/api/v1/data-requests",
    tag = "lifecycle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DataRequestList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_data_requests(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<DataRequestList>, ApiError> {
    Ok(Json(DataRequestList {
        items: state.lifecycle.data_requests(&p).await?,
    }))
}

/// Starts the data request of one scenario of an agreement in force (its grantee).
#[utoipa::path(
    post,
    path = "/api/v1/data-requests",
    tag = "lifecycle",
    security(("bearer" = [])),
    request_body = NewDataRequest,
    responses(
        (status = 201, description = "Drafted", body = DataRequestView),
        (status = 403, description = "Not the grantee, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_data_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(n): ApiJson<NewDataRequest>,
) -> Result<(StatusCode, Json<DataRequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.lifecycle.create_data_request(&p, &n).await?),
    ))
}

/// Waiting for a change.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// The `version` last seen: answer when the request has changed from it.
    pub since: Option<String>,
    /// How long to wait for that change, in seconds (at most 60).
    pub wait: Option<u64>,
}

/// One request with its manifest in force; with `since` and `wait`, answers when it changes
/// (or the wait ends).
#[utoipa::path(
    get,
    path = "/api/v1/data-requests/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Data request id"), WaitQuery),
    responses(
        (status = 200, description = "OK", body = DataRequestView),
        (status = 403, description = "Not allowed, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_data_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<DataRequestView>, ApiError> {
    let view = match (q.since, q.wait) {
        (Some(since), Some(secs)) if secs > 0 => {
            state
                .lifecycle
                .wait_data_request(&p, &id, &since, Duration::from_secs(secs))
                .await?
        }
        _ => state.lifecycle.data_request(&p, &id).await?,
    };
    Ok(Json(view))
}

/// Rewrites a draft's list.
#[utoipa::path(
    put,
    path = "/api/v1/data-requests/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Data request id")),
    request_body = DataRequestBody,
    responses(
        (status = 200, description = "Saved", body = DataRequestView),
        (status = 403, description = "Not allowed, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_data_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<DataRequestBody>,
) -> Result<Json<DataRequestView>, ApiError> {
    Ok(Json(state.lifecycle.update_data_request(&p, &id, &b).await?))
}

/// A reviewer's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approve`, `return` or `reject`.
    pub decision: ReviewDecision,
    /// Why (required to return or reject).
    #[serde(default)]
    pub note: Option<String>,
    /// With an approval: overrides of the rule catalog for fields of the list, each with its
    /// reason; they go into the scenario manifest and the workspace follows them.
    #[serde(default)]
    pub overrides: Vec<MaskingOverride>,
}

/// A reviewer of the chain decides; the last approval issues the signed scenario manifest.
#[utoipa::path(
    post,
    path = "/api/v1/data-requests/{id}/review",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Data request id")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "Recorded", body = DataRequestView),
        (status = 403, description = "Not a reviewer of its chain (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not awaiting this reviewer (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A note is required (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn review_data_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReviewBody>,
) -> Result<Json<DataRequestView>, ApiError> {
    Ok(Json(
        state
            .lifecycle
            .review_data_request_with(&p, &id, b.decision, b.note.as_deref(), &b.overrides)
            .await?,
    ))
}

/// Every manifest issued for a request, newest first, with the domain's public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestList {
    /// Newest first, each with its changes against the one before.
    pub items: Vec<ManifestView>,
    /// The key the signatures verify with (SPKI PEM; the audit log's public key).
    pub public_key_pem: String,
}

/// The manifests of a request: each signed, each with its diff to the previous revision.
#[utoipa::path(
    get,
    path = "/api/v1/data-requests/{id}/manifests",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Data request id")),
    responses(
        (status = 200, description = "OK", body = ManifestList),
        (status = 403, description = "Not allowed, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_manifests(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ManifestList>, ApiError> {
    Ok(Json(ManifestList {
        items: state.lifecycle.manifests(&p, &id).await?,
        public_key_pem: state.lifecycle.manifest_public_key_pem(),
    }))
}

/// The requester submits, amends (a new revision and a new review) or withdraws.
#[utoipa::path(
    post,
    path = "/api/v1/data-requests/{id}/{event}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Data request id"), ("event" = String, Path, description = "submit | amend | withdraw")),
    responses(
        (status = 200, description = "Done", body = DataRequestView),
        (status = 403, description = "Not allowed, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request or event (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The list is incomplete (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn data_request_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
) -> Result<Json<DataRequestView>, ApiError> {
    if !matches!(event.as_str(), "submit" | "amend" | "withdraw") {
        return Err(LifecycleError::NotFound("event").into());
    }
    Ok(Json(state.lifecycle.data_request_event(&p, &id, &event).await?))
}

/// Custom requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomRequestList {
    /// Oldest first.
    pub items: Vec<shuyu_workflow::custom_requests::CustomRequestView>,
}

/// The custom requests the caller asked or serves (oversight: all).
#[utoipa::path(
    get,
    path = "/api/v1/custom-requests",
    tag = "lifecycle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CustomRequestList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_custom_requests(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<CustomRequestList>, ApiError> {
    Ok(Json(CustomRequestList {
        items: state.lifecycle.custom_requests(&p).await?,
    }))
}

/// The grantee of an agreement in force asks its grantor for a custom processing service
/// to be charged to the requester.
#[utoipa::path(
    post,
    path = "/api/v1/custom-requests",
    tag = "lifecycle",
    security(("bearer" = [])),
    request_body = shuyu_workflow::custom_requests::NewCustomRequest,
    responses(
        (status = 201, description = "Asked", body = shuyu_workflow::custom_requests::CustomRequestView),
        (status = 403, description = "Not the grantee, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_custom_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(n): ApiJson<shuyu_workflow::custom_requests::NewCustomRequest>,
) -> Result<(StatusCode, Json<shuyu_workflow::custom_requests::CustomRequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.lifecycle.create_custom_request(&p, &n).await?),
    ))
}

/// One custom request.
#[utoipa::path(
    get,
    path = "/api/v1/custom-requests/{id}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Custom request id")),
    responses(
        (status = 200, description = "OK", body = shuyu_workflow::custom_requests::CustomRequestView),
        (status = 403, description = "Not allowed (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_custom_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<shuyu_workflow::custom_requests::CustomRequestView>, ApiError> {
    Ok(Json(state.lifecycle.custom_request(&p, &id).await?))
}

/// A step: `estimate` (the provider, with `cost_cents`), `accept_charge` (the requester),
/// `deliver` (the provider: the accepted charge is billed), `decline` (either, before delivery).
#[utoipa::path(
    post,
    path = "/api/v1/custom-requests/{id}/events",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Custom request id")),
    request_body = shuyu_workflow::custom_requests::CustomStep,
    responses(
        (status = 200, description = "Done", body = shuyu_workflow::custom_requests::CustomRequestView),
        (status = 403, description = "Not this side's step, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in its state (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn custom_request_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(step): ApiJson<shuyu_workflow::custom_requests::CustomStep>,
) -> Result<Json<shuyu_workflow::custom_requests::CustomRequestView>, ApiError> {
    Ok(Json(state.lifecycle.custom_request_step(&p, &id, step).await?))
}

/// What waits for the caller's organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderList {
    /// Soonest deadline first; overdue ones flagged.
    pub items: Vec<shuyu_workflow::reminders::Reminder>,
}

/// Reminders (待办): lists to review, signatures to give, renewal windows open,
/// rectifications to report or decide, custom requests to estimate, accept or deliver, and
/// governance requests to answer — each with its deadline.
#[utoipa::path(
    get,
    path = "/api/v1/reminders",
    tag = "lifecycle",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ReminderList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reminders(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<ReminderList>, ApiError> {
    Ok(Json(ReminderList {
        items: all_reminders(&state, &p).await?,
    }))
}

/// The lifecycle's reminders and the governance items the caller's organisation must answer.
pub async fn all_reminders(
    state: &AppState,
    p: &shuyu_core::actor::Principal,
) -> Result<Vec<shuyu_workflow::reminders::Reminder>, ApiError> {
    let mut items = state.lifecycle.reminders(p).await?;
    let me = p.org_id.to_string();
    for i in state.catalog.items(p, false).await? {
        if i.state == shuyu_catalog::governance::ItemState::Open && i.provider_org_id == me {
            items.push(shuyu_workflow::reminders::Reminder {
                kind: "governance_answer".into(),
                id: i.id.clone(),
                title: i.subject.clone(),
                due: Some(i.deadline.chars().take(10).collect()),
                overdue: i.overdue,
            });
        }
    }
    items.sort_by(|a, b| (a.due.is_none(), &a.due).cmp(&(b.due.is_none(), &b.due)));
    Ok(items)
}
