//! Accounts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shuyu_core::id::{OrgId, UserId};
use shuyu_core::secret::Secret;
use shuyu_identity::{NewUser, UserPatch};

use super::dto::{CreateUserBody, CreateUserResponse, TemporaryPassword, UpdateUserBody, UserDto, UserList, UserQuery};
use super::orgs::path_id;
use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiError, Problem};

/// Accounts the caller may see, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "directory",
    security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, description = "OK", body = UserList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<UserList>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, super::MAX_PAGE);
    let offset = q.offset.unwrap_or(0).max(0);
    let list = state
        .identity
        .list_users(&p, q.org_id.map(OrgId::from_uuid), limit, offset)
        .await?;
    Ok(Json(UserList {
        items: list.iter().map(|(u, o)| UserDto::new(u, o)).collect(),
    }))
}

/// Creates an account. Without a password, a temporary one is generated and returned once.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "directory",
    security(("bearer" = [])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "Created", body = CreateUserResponse),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> Result<(StatusCode, Json<CreateUserResponse>), ApiError> {
    let req = NewUser {
        org_id: body.org_id,
        username: body.username,
        display_name: body.display_name,
        roles: body.roles,
        password: body.password.map(Secret::new),
    };
    let (u, tmp) = state.identity.create_user(&p, req).await?;
    let (_, o) = state.identity.get_user(&p, u.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateUserResponse {
            user: UserDto::new(&u, &o),
            temporary_password: tmp.map(|t| t.into_inner()),
        }),
    ))
}

/// One account.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "OK", body = UserDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<UserDto>, ApiError> {
    let id: UserId = path_id(&id, "user")?;
    let (u, o) = state.identity.get_user(&p, id).await?;
    Ok(Json(UserDto::new(&u, &o)))
}

/// Changes an account's name, roles or status.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    request_body = UpdateUserBody,
    responses(
        (status = 200, description = "OK", body = UserDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<Json<UserDto>, ApiError> {
    let id: UserId = path_id(&id, "user")?;
    let patch = UserPatch {
        display_name: body.display_name,
        roles: body.roles,
        status: body.status,
    };
    apply(&state, &p, id, patch).await
}

/// Applies a change to an account and answers with the account as it is now.
async fn apply(
    state: &AppState,
    p: &shuyu_core::actor::Principal,
    id: UserId,
    patch: UserPatch,
) -> Result<Json<UserDto>, ApiError> {
    let u = state.identity.update_user(p, id, patch).await?;
    let (_, o) = state.identity.get_user(p, u.id).await?;
    Ok(Json(UserDto::new(&u, &o)))
}

/// Disables an account: its sessions end at once. The record is kept.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "OK", body = UserDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn disable_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<UserDto>, ApiError> {
    let id: UserId = path_id(&id, "user")?;
    let patch = UserPatch {
        status: Some("disabled".into()),
        ..Default::default()
    };
    apply(&state, &p, id, patch).await
}

/// Issues a new temporary password for an account (returned once) and ends its sessions.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/reset-password",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "OK", body = TemporaryPassword),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<TemporaryPassword>, ApiError> {
    let id: UserId = path_id(&id, "user")?;
    let tmp = state.identity.reset_password(&p, id).await?;
    Ok(Json(TemporaryPassword {
        temporary_password: tmp.into_inner(),
    }))
}
