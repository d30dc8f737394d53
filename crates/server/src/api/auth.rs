//! Login, logout, the caller's own account and password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_policy::{Action, Resource};

use super::dto::{ChangePasswordBody, LoginBody, LoginResponse, MeDto, OrgRef};
use crate::AppState;
use crate::extract::{ApiJson, Auth, Client};
use crate::problem::{ApiError, Problem};

/// Logs in with a username and password and returns a bearer token.
///
/// Five failures for one username within 15 minutes lock it for 15 minutes (429).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "OK", body = LoginResponse),
        (status = 401, description = "Wrong username or password, or account disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated failures", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoginResponse>, ApiError> {
    let s = state.identity.login(&body.username, &body.password, &client).await?;
    Ok(Json(LoginResponse {
        token: s.token.expose().clone(),
        expires_at: s.expires_at,
        must_change_password: s.principal.must_change_password,
    }))
}

/// Ends the caller's session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn logout(State(state): State<AppState>, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    state.identity.logout(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is: account, organisation, roles.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = MeDto),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn me(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<MeDto>, ApiError> {
    state.identity.authorize(&p, Action::MeRead, &self_resource(&p)).await?;
    Ok(Json(MeDto {
        user_id: p.user_id.as_uuid(),
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        auth: match p.id {
            PrincipalId::User(_) => "session".into(),
            PrincipalId::ApiKey(_) => "api_key".into(),
        },
        org: OrgRef {
            id: p.org_id.as_uuid(),
            name: p.org_name.clone(),
            kind: p.org_kind.code().into(),
            region: p.region.as_str().into(),
        },
        roles: p.roles.iter().map(|r| r.code().to_string()).collect(),
        must_change_password: p.must_change_password,
    }))
}

/// The principal as the resource of `me.*` actions.
fn self_resource(p: &Principal) -> Resource {
    let roles = p.roles.iter().map(|r| r.code().to_string()).collect();
    match p.id {
        PrincipalId::User(id) => Resource::User {
            id,
            org: p.org_id,
            org_kind: p.org_kind,
            region: p.region.clone(),
            roles,
        },
        PrincipalId::ApiKey(id) => Resource::ApiKey {
            id,
            org: p.org_id,
            org_kind: p.org_kind,
            region: p.region.clone(),
            roles,
        },
    }
}

/// Changes the caller's password; the caller's other sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordBody,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API keys have no password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .change_own_password(&p, &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
