//! API keys for machine clients.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shuyu_core::id::{ApiKeyId, OrgId};
use shuyu_identity::NewApiKey;

use super::dto::{ApiKeyDto, ApiKeyList, CreateApiKeyBody, CreateApiKeyResponse};
use super::orgs::path_id;
use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

/// An organisation's API keys (its administrators only).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "OK", body = ApiKeyList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let id: OrgId = path_id(&id, "org")?;
    let keys = state.identity.list_api_keys(&p, id).await?;
    Ok(Json(ApiKeyList {
        items: keys.iter().map(ApiKeyDto::from).collect(),
    }))
}

/// Creates an API key for the caller's organisation. The secret is in this response only.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateApiKeyBody,
    responses(
        (status = 201, description = "Created", body = CreateApiKeyResponse),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateApiKeyBody>,
) -> Result<(StatusCode, Json<CreateApiKeyResponse>), ApiError> {
    let issued = state
        .identity
        .create_api_key(
            &p,
            NewApiKey {
                name: body.name,
                roles: body.roles,
                expires_in_days: body.expires_in_days,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateApiKeyResponse {
            key: ApiKeyDto::from(&issued.key),
            secret: issued.secret.into_inner(),
        }),
    ))
}

/// Revokes an API key at once.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 200, description = "OK", body = ApiKeyDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyDto>, ApiError> {
    let id: ApiKeyId = path_id(&id, "api_key")?;
    let k = state.identity.revoke_api_key(&p, id).await?;
    Ok(Json(ApiKeyDto::from(&k)))
}
