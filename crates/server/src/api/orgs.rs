//! Regions and organisations.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shuyu_core::id::OrgId;
use shuyu_identity::{IdentityError, NewOrg, OrgPatch};
use shuyu_policy::{Action, Resource};

use super::dto::{CreateOrgBody, OrgDto, OrgList, Paging, RegionDto, RegionList, UpdateOrgBody};
use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiError, Problem};

/// Parses a path id; a malformed id names no object, so it is a 404.
pub fn path_id<T: std::str::FromStr>(raw: &str, object: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| IdentityError::NotFound { object }.into())
}

/// The city and its counties.
#[utoipa::path(
    get,
    path = "/api/v1/regions",
    tag = "directory",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = RegionList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_regions(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<RegionList>, ApiError> {
    state
        .identity
        .authorize(&p, Action::RegionList, &Resource::Platform)
        .await?;
    Ok(Json(RegionList {
        items: state.identity.regions().iter().map(RegionDto::from).collect(),
    }))
}

/// Organisations, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/orgs",
    tag = "directory",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "OK", body = OrgList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_orgs(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<OrgList>, ApiError> {
    let (limit, offset) = paging.resolve();
    let orgs = state.identity.list_orgs(&p, limit, offset).await?;
    Ok(Json(OrgList {
        items: orgs.iter().map(OrgDto::from).collect(),
    }))
}

/// Registers an organisation (the data authority's administrators, within their region).
#[utoipa::path(
    post,
    path = "/api/v1/orgs",
    tag = "directory",
    security(("bearer" = [])),
    request_body = CreateOrgBody,
    responses(
        (status = 201, description = "Created", body = OrgDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_org(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateOrgBody>,
) -> Result<(StatusCode, Json<OrgDto>), ApiError> {
    let o = state
        .identity
        .create_org(
            &p,
            NewOrg {
                name: body.name,
                kind: body.kind,
                region: body.region,
                uscc: body.uscc,
                jurisdiction: body.jurisdiction,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(OrgDto::from(&o))))
}

/// One organisation.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "OK", body = OrgDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_org(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<OrgDto>, ApiError> {
    let id: OrgId = path_id(&id, "org")?;
    Ok(Json(OrgDto::from(&state.identity.get_org(&p, id).await?)))
}

/// Changes an organisation's name, region, credit code, status or recorded jurisdiction.
#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    request_body = UpdateOrgBody,
    responses(
        (status = 200, description = "OK", body = OrgDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_org(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrgBody>,
) -> Result<Json<OrgDto>, ApiError> {
    let id: OrgId = path_id(&id, "org")?;
    let patch = OrgPatch {
        name: body.name,
        region: body.region,
        uscc: body.uscc.map(|u| if u.trim().is_empty() { None } else { Some(u) }),
        status: body.status,
        jurisdiction: body.jurisdiction,
    };
    Ok(Json(OrgDto::from(&state.identity.update_org(&p, id, patch).await?)))
}

/// Disables an organisation: its accounts and keys stop working at once. Records are kept.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{id}",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "OK", body = OrgDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with existing data (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn disable_org(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<OrgDto>, ApiError> {
    let id: OrgId = path_id(&id, "org")?;
    let patch = OrgPatch {
        status: Some("disabled".into()),
        ..Default::default()
    };
    Ok(Json(OrgDto::from(&state.identity.update_org(&p, id, patch).await?)))
}
