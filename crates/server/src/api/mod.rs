//! The JSON API under `/api/v1/`. Handlers are thin: parse, call the
//! identity service, map to a DTO. Every route is declared with
//! `#[utoipa::path]` and registered through `utoipa_axum::routes!`, so a
//! route cannot exist without its OpenAPI operation.

pub mod audit;
pub mod auth;
pub mod catalogs;
pub mod datasets;
pub mod dto;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod lifecycle;
pub mod orgs;
pub mod products;
pub mod releases;
pub mod requests;
pub mod users;
pub mod workspaces;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Every documented route of the server (the API plus health, readiness, metrics and the document itself).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi_json))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(orgs::list_regions))
        .routes(routes!(orgs::list_orgs, orgs::create_org))
        .routes(routes!(orgs::get_org, orgs::update_org, orgs::disable_org))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user, users::update_user, users::disable_user))
        .routes(routes!(users::reset_password))
        .routes(routes!(keys::list_keys))
        .routes(routes!(keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(datasets::list_datasets))
        // Uploads stream a whole file: the body limit is the handler's (max_upload_bytes), not the 1 MiB of JSON.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(datasets::upload_version))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(datasets::get_version))
        .routes(routes!(datasets::version_errors))
        .routes(routes!(datasets::correct_column))
        .routes(routes!(datasets::accept_version))
        .routes(routes!(datasets::reject_version))
        .routes(routes!(datasets::roll_back))
        .routes(routes!(catalogs::list_entries, catalogs::create_entry))
        .routes(routes!(catalogs::get_entry, catalogs::update_entry))
        .routes(routes!(catalogs::entry_event))
        .routes(routes!(catalogs::dcat))
        .routes(routes!(catalogs::list_items, catalogs::raise_item))
        .routes(routes!(catalogs::answer_item))
        .routes(routes!(catalogs::close_item))
        .routes(routes!(catalogs::reopen_item))
        .routes(routes!(lifecycle::list_calls, lifecycle::create_call))
        .routes(routes!(lifecycle::get_call))
        .routes(routes!(lifecycle::call_event))
        .routes(routes!(lifecycle::create_application))
        .routes(routes!(lifecycle::list_applications))
        .routes(routes!(lifecycle::get_application, lifecycle::update_application))
        .routes(routes!(lifecycle::application_event))
        .routes(routes!(lifecycle::start_review))
        .routes(routes!(lifecycle::declare))
        .routes(routes!(lifecycle::score))
        .routes(routes!(lifecycle::decide))
        .routes(routes!(lifecycle::object))
        .routes(routes!(lifecycle::answer_objection))
        .routes(routes!(lifecycle::close_notice))
        .routes(routes!(lifecycle::put_signing_key))
        // Attachments carry up to 10 MiB, more than the JSON limit.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(lifecycle::attach))
                .layer(axum::extract::DefaultBodyLimit::max(
                    shuyu_workflow::service::MAX_ATTACHMENT_BYTES + 64 * 1024,
                )),
        )
        .routes(routes!(lifecycle::download_attachment))
        .routes(routes!(lifecycle::draft_agreement))
        .routes(routes!(lifecycle::list_agreements))
        .routes(routes!(lifecycle::get_agreement))
        .routes(routes!(lifecycle::sign_agreement))
        .routes(routes!(lifecycle::renew_agreement))
        .routes(routes!(lifecycle::agreement_event))
        .routes(routes!(lifecycle::rectification))
        .routes(routes!(requests::list_data_requests, requests::create_data_request))
        .routes(routes!(requests::get_data_request, requests::update_data_request))
        .routes(routes!(requests::review_data_request))
        .routes(routes!(requests::list_manifests))
        .routes(routes!(requests::data_request_event))
        .routes(routes!(requests::list_custom_requests, requests::create_custom_request))
        .routes(routes!(requests::get_custom_request))
        .routes(routes!(requests::custom_request_event))
        .routes(routes!(requests::reminders))
        .routes(routes!(workspaces::list_workspaces))
        .routes(routes!(workspaces::get_workspace))
        .routes(routes!(workspaces::query_workspace))
        .routes(routes!(workspaces::redraw_sample))
        .routes(routes!(jobs::submit_job, jobs::list_jobs))
        .routes(routes!(jobs::check_job))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::job_diagnostics))
        .routes(routes!(releases::request_release, releases::list_releases))
        .routes(routes!(releases::get_release))
        .routes(routes!(releases::review_release))
        .routes(routes!(releases::download_release))
        .routes(routes!(products::publish_product, products::list_products))
        .routes(routes!(products::get_product))
        .routes(routes!(products::delist_product))
        .routes(routes!(products::download_product))
        .routes(routes!(audit::latest_checkpoint, audit::sign_checkpoint))
        .routes(routes!(audit::checkpoint_at))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::inclusion))
        .routes(routes!(audit::consistency))
        .routes(routes!(audit::entries))
        .routes(routes!(audit::search))
        .routes(routes!(audit::cosign))
        .routes(routes!(audit::export))
        .routes(routes!(audit::derived))
        .routes(routes!(audit::sources))
}

/// Pagination defaults: at most this many items per page.
pub const MAX_PAGE: i64 = 1000;

/// A CSV download: `text/csv; charset=utf-8`, saved as `{name}.csv` (the API's and the
/// console's downloads of what the gate minted).
pub(crate) fn csv_attachment(name: &str, body: String) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
