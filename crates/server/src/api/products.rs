//! The public product catalog: released outputs published as dataset and report
//! products. Reading the catalog needs no account; publishing and delisting are the
//! operator's; downloads are minted by the gate for each caller and audited.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use shuyu_engine::{DelistRequest, ProductView, PublishRequest};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth, MaybeAuth};
use crate::problem::{ApiError, Problem};

/// Products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    /// Newest first.
    pub items: Vec<ProductView>,
}

/// Catalog filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Include delisted products (default: listed only).
    #[serde(default)]
    pub all: bool,
}

/// Publishes a released output as a dataset or report product (an operator among the data
/// request's reviewers). Audited, with the release → product lineage.
#[utoipa::path(
    post,
    path = "/api/v1/products",
    tag = "products",
    security(("bearer" = [])),
    request_body = PublishRequest,
    responses(
        (status = 201, description = "Published", body = ProductView),
        (status = 403, description = "Not an operator reviewing its data request (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not released, already published, or the agreement is not in force (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Title or terms missing or too long (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn publish_product(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<PublishRequest>,
) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    let v = state.workspaces.publish_product(&p, &req).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The public catalog: listed products, newest first (no login needed).
#[utoipa::path(
    get,
    path = "/api/v1/products",
    tag = "products",
    params(ProductQuery),
    responses((status = 200, description = "OK", body = ProductList))
)]
pub async fn list_products(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> Result<Json<ProductList>, ApiError> {
    Ok(Json(ProductList {
        items: state.workspaces.products(p.as_ref(), q.all).await?,
    }))
}

/// One product: its scenario, sources, columns and terms (no login needed).
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}",
    tag = "products",
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "OK", body = ProductView),
        (status = 404, description = "No such product (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(state.workspaces.product(p.as_ref(), &id).await?))
}

/// Delists a product, with a reason the catalog shows (its publisher's operator).
#[utoipa::path(
    post,
    path = "/api/v1/products/{id}/delist",
    tag = "products",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    request_body = DelistRequest,
    responses(
        (status = 200, description = "Delisted", body = ProductView),
        (status = 403, description = "Not its publisher (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already delisted (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delist_product(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DelistRequest>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(state.workspaces.delist_product(&p, &id, &req).await?))
}

/// The product's content as CSV — the release's watermarked copy, minted again by the gate —
/// for every account when it is open, else for its recipient. Audited.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}/content",
    tag = "products",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv"),
        (status = 403, description = "For its recipient only (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Delisted (problem+json)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn download_product(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let released = state.workspaces.download_product(&p, &id).await?;
    Ok(super::csv_attachment(&format!("product-{id}"), released.into_value()))
}
