//! The catalog chain (R-18…R-23) and governance. Keepers write drafts and
//! move them along (`submit`, `revise`, `withdraw`); the authority confirms
//! registrations and demands; the operator approves social data and publishes.
//! Published catalogs are public DCAT-AP JSON-LD. Everything here is metadata.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shuyu_catalog::chain::{EntryEvent, EntryKind, EntryState};
use shuyu_catalog::entries::{EntryDraft, EntryView};
use shuyu_catalog::governance::{ItemView, Outcome, RaiseItem};
use shuyu_core::error::Message;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        Message::new("error.not_found").arg_key("object", format!("object.{what}")),
    )
}

fn kind(s: &str) -> Result<EntryKind, ApiError> {
    EntryKind::parse(s).ok_or_else(|| not_found("catalog_entry"))
}

/// Entries of a catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryList {
    /// The entries the caller may read, oldest first.
    pub items: Vec<EntryView>,
}

/// Filter of a catalog listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryFilter {
    /// Only entries in this state (`draft`, `submitted`, `approved`, `published`, `rejected`, `withdrawn`).
    pub state: Option<String>,
}

/// The entries of catalog `kind` (`resource`, `operation`, `development`, `social`) the caller may
/// read: published ones are public to every account; drafts to their keepers and oversight.
#[utoipa::path(
    get,
    path = "/api/v1/catalogs/{kind}/entries",
    tag = "catalogs",
    security(("bearer" = [])),
    params(("kind" = String, Path, description = "resource | operation | development | social"), EntryFilter),
    responses(
        (status = 200, description = "OK", body = EntryList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such catalog (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_entries(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(k): Path<String>,
    Query(f): Query<EntryFilter>,
) -> Result<Json<EntryList>, ApiError> {
    let k = kind(&k)?;
    let st = match f.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(EntryState::parse(s).ok_or_else(|| {
            ApiError::from(shuyu_core::error::FieldError::new("state", "unknown_value").arg("value", s))
        })?),
    };
    Ok(Json(EntryList {
        items: state.catalog.list_entries(&p, k, st).await?,
    }))
}

/// Creates a draft entry in catalog `kind`, kept by the caller's organisation: a provider registers
/// a resource (one of its accepted datasets), the operator demands a registered resource (with a reason
/// per field) or lists a confirmed demand in its development catalog (with its grades), a developer
/// applies to bring social data.
#[utoipa::path(
    post,
    path = "/api/v1/catalogs/{kind}/entries",
    tag = "catalogs",
    security(("bearer" = [])),
    params(("kind" = String, Path, description = "resource | operation | development | social")),
    request_body = EntryDraft,
    responses(
        (status = 201, description = "Created as a draft", body = EntryView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule; every broken rule is listed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_entry(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(k): Path<String>,
    ApiJson(d): ApiJson<EntryDraft>,
) -> Result<(StatusCode, Json<EntryView>), ApiError> {
    let k = kind(&k)?;
    Ok((StatusCode::CREATED, Json(state.catalog.create_entry(&p, k, &d).await?)))
}

/// One catalog entry.
#[utoipa::path(
    get,
    path = "/api/v1/catalogs/entries/{id}",
    tag = "catalogs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Entry id")),
    responses(
        (status = 200, description = "OK", body = EntryView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_entry(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<EntryView>, ApiError> {
    Ok(Json(state.catalog.get_entry(&p, &id).await?))
}

/// Replaces a draft's content (only drafts change; revise a published entry first).
#[utoipa::path(
    put,
    path = "/api/v1/catalogs/entries/{id}",
    tag = "catalogs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Entry id")),
    request_body = EntryDraft,
    responses(
        (status = 200, description = "Changed", body = EntryView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_entry(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<EntryDraft>,
) -> Result<Json<EntryView>, ApiError> {
    Ok(Json(state.catalog.update_entry(&p, &id, &d).await?))
}

/// A decision's reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// Why (required to return or reject; shown to the keeper).
    #[serde(default)]
    pub note: Option<String>,
}

/// Moves an entry along the chain: `submit`, `revise`, `withdraw` (its keeper); `approve`, `return`,
/// `reject` (the authority for resources and demands, the operator for social data); `publish` (the
/// operator: development entries, and social data once imported). Audited.
#[utoipa::path(
    post,
    path = "/api/v1/catalogs/entries/{id}/{event}",
    tag = "catalogs",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Entry id"),
        ("event" = String, Path, description = "submit | approve | return | reject | publish | revise | withdraw")
    ),
    request_body = EventBody,
    responses(
        (status = 200, description = "Moved", body = EntryView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry or event (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the entry's state (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reason is missing (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn entry_event(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, event)): Path<(String, String)>,
    body: Option<ApiJson<EventBody>>,
) -> Result<Json<EntryView>, ApiError> {
    let event = EntryEvent::parse(&event).ok_or_else(|| not_found("catalog_entry"))?;
    let note = body.and_then(|ApiJson(b)| b.note);
    Ok(Json(state.catalog.act_on_entry(&p, &id, event, note.as_deref()).await?))
}

/// The published entries of catalog `kind` as DCAT-AP 3 JSON-LD (`application/ld+json`), for
/// harvesters and the public: metadata only, no account needed.
#[utoipa::path(
    get,
    path = "/api/v1/catalogs/{kind}/dcat",
    tag = "catalogs",
    params(("kind" = String, Path, description = "resource | operation | development | social")),
    responses(
        (status = 200, description = "A dcat:Catalog", body = Object, content_type = "application/ld+json"),
        (status = 404, description = "No such catalog (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn dcat(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(k): Path<String>,
) -> Result<Response, ApiError> {
    let k = kind(&k)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = if state.cfg.cookie_secure { "https" } else { "http" };
    let doc = state.catalog.dcat(k, &format!("{scheme}://{host}")).await?;
    Ok(([(header::CONTENT_TYPE, "application/ld+json")], Json(doc)).into_response())
}

/// Governance items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    /// Earliest deadline first.
    pub items: Vec<ItemView>,
}

/// Filter of the governance listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// Only open items past their deadline (the authority's dashboard).
    pub overdue: Option<bool>,
}

/// The governance requests and objections the caller may see: of datasets it provides or oversees,
/// and those it raised.
#[utoipa::path(
    get,
    path = "/api/v1/governance",
    tag = "governance",
    security(("bearer" = [])),
    params(ItemFilter),
    responses(
        (status = 200, description = "OK", body = ItemList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_items(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(f): Query<ItemFilter>,
) -> Result<Json<ItemList>, ApiError> {
    Ok(Json(ItemList {
        items: state.catalog.items(&p, f.overdue.unwrap_or(false)).await?,
    }))
}

/// Raises a data-quality governance request or an objection against a dataset; its provider must
/// answer by the deadline (default 15 days).
#[utoipa::path(
    post,
    path = "/api/v1/governance",
    tag = "governance",
    security(("bearer" = [])),
    request_body = RaiseItem,
    responses(
        (status = 201, description = "Raised", body = ItemView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn raise_item(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(r): ApiJson<RaiseItem>,
) -> Result<(StatusCode, Json<ItemView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.catalog.raise(&p, &r).await?)))
}

/// The provider's answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// What was found and done.
    pub answer: String,
    /// `corrected` or `no_fault`.
    pub outcome: Outcome,
}

/// The provider answers an open item (verified: corrected, or no fault found).
#[utoipa::path(
    post,
    path = "/api/v1/governance/{id}/answer",
    tag = "governance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Item id")),
    request_body = AnswerBody,
    responses(
        (status = 200, description = "Answered", body = ItemView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not open (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn answer_item(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AnswerBody>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(state.catalog.answer(&p, &id, &b.answer, b.outcome).await?))
}

/// Closes an item (its raiser, or the authority).
#[utoipa::path(
    post,
    path = "/api/v1/governance/{id}/close",
    tag = "governance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Item id")),
    responses(
        (status = 200, description = "Closed", body = ItemView),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn close_item(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(state.catalog.close_or_reopen(&p, &id, None).await?))
}

/// A new deadline for a reopened item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Days the provider has (1–90).
    pub deadline_days: i64,
}

/// Its raiser finds the answer wanting: the item opens again with a new deadline.
#[utoipa::path(
    post,
    path = "/api/v1/governance/{id}/reopen",
    tag = "governance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Item id")),
    request_body = ReopenBody,
    responses(
        (status = 200, description = "Open again", body = ItemView),
        (status = 403, description = "Only its raiser reopens an item (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not answered (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reopen_item(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReopenBody>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(
        state.catalog.close_or_reopen(&p, &id, Some(b.deadline_days)).await?,
    ))
}
