//! The web console: server-rendered pages (askama templates compiled into
//! the binary, htmx for progressive enhancement, no build chain at run
//! time). zh-CN by default, English on request. The session lives in an
//! `HttpOnly`, `SameSite=Strict` cookie; every form carries a CSRF token
//! checked against a second cookie (double submit) and the `Origin` header.

mod data;
mod jobs;
mod lifecycle;
mod pages;
pub mod submissions;
mod workspaces;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use rust_embed::RustEmbed;
use shuyu_core::actor::Principal;
use shuyu_core::i18n::{Lang, t};
use shuyu_core::party::Role;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::problem::request_lang;

/// Cookie holding the console session's bearer token.
pub const SESSION_COOKIE: &str = "shuyu_session";
/// Cookie holding the CSRF token (double submit).
pub const CSRF_COOKIE: &str = "shuyu_csrf";
/// Cookie holding the chosen language.
pub const LANG_COOKIE: &str = "shuyu_lang";

/// The console's upload form posts here (multipart; the upload time limit applies).
pub const UPLOAD_PATH: &str = "/console/datasets/upload";

/// Whether a path belongs to the console (HTML errors, not problem+json).
pub fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/") || path.starts_with("/static/")
}

/// The console's routes.
pub fn routes(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::home))
        .route("/console/login", get(pages::login_page).post(pages::login_submit))
        .route("/console/logout", post(pages::logout))
        .route("/console/lang", post(pages::switch_lang))
        .route(
            "/console/password",
            get(pages::password_page).post(pages::password_submit),
        )
        .route("/console/orgs", get(pages::orgs_page).post(pages::orgs_submit))
        .route("/console/users", get(pages::users_page).post(pages::users_submit))
        .route("/console/datasets", get(data::datasets_page))
        // The upload streams a whole file: its limit is max_upload_bytes, checked while receiving.
        .route(
            UPLOAD_PATH,
            post(data::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/console/datasets/versions/{id}",
            get(data::version_page).post(data::review),
        )
        .route("/console/catalogs", get(data::catalogs_page).post(data::create_entry))
        .route("/console/catalogs/entries/{id}", post(data::entry_event))
        .route(
            "/console/governance",
            get(data::governance_page).post(data::governance_submit),
        )
        .route(
            "/console/calls",
            get(lifecycle::calls_page).post(lifecycle::calls_submit),
        )
        .route(
            "/console/agreements",
            get(lifecycle::agreements_page).post(lifecycle::agreements_submit),
        )
        .route(
            "/console/data-requests",
            get(lifecycle::requests_page).post(lifecycle::requests_submit),
        )
        .route("/console/workspaces", get(workspaces::workspaces_page))
        .route("/console/workspaces/query", post(workspaces::workspaces_query))
        .route("/console/workspaces/redraw", post(workspaces::workspaces_redraw))
        .route("/console/jobs", get(jobs::jobs_page).post(jobs::jobs_submit))
        .route("/console/jobs/cancel", post(jobs::jobs_cancel))
        .route("/console/releases", get(jobs::releases_page))
        .route("/console/releases/request", post(jobs::releases_request))
        .route("/console/releases/review", post(jobs::releases_review))
        .route("/console/releases/{id}/download", get(jobs::releases_download))
        .route("/console/products", get(jobs::products_page))
        .route("/console/products/publish", post(jobs::products_publish))
        .route("/console/products/delist", post(jobs::products_delist))
        .route("/console/products/{id}/content", get(jobs::products_content))
        .route("/console/audit", get(pages::audit_page))
        .route("/console/audit/export", get(pages::audit_export))
        .route("/static/{*path}", get(static_file))
}

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

async fn static_file(Path(path): Path<String>) -> Response {
    match Assets::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            let mut res = Response::new(Body::from(file.data.into_owned()));
            if let Ok(v) = HeaderValue::from_str(&mime) {
                res.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Element id suffix (stable for tests).
    pub id: &'static str,
    /// Link target.
    pub href: &'static str,
    /// Label in the page's language.
    pub label: String,
    /// Whether it is the current page.
    pub active: bool,
}

/// The signed-in person, as the page header shows them.
#[derive(Debug, Clone)]
pub struct MeView {
    /// Login name.
    pub username: String,
    /// Name.
    pub display_name: String,
    /// Organisation.
    pub org_name: String,
    /// Organisation kind, translated.
    pub kind_label: String,
    /// Roles, translated.
    pub roles_label: String,
}

/// A message shown at the top of a page.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `ok` or `warn` (CSS class).
    pub kind: &'static str,
    /// The text.
    pub text: String,
    /// A secret shown once (a temporary password), selectable for copying.
    pub secret: Option<String>,
}

/// What every page needs: language, CSRF token, who is signed in, navigation.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's language.
    pub lang: Lang,
    /// The CSRF token to embed in forms.
    pub csrf: String,
    /// The signed-in person.
    pub me: Option<MeView>,
    /// The navigation entries for their roles.
    pub nav: Vec<NavItem>,
    /// The current path (the language switch returns to it).
    pub path: String,
    /// A notice.
    pub notice: Option<Notice>,
}

impl Page {
    /// The translation of `key` in the page's language.
    pub fn t(&self, key: &str) -> String {
        t(self.lang, key)
    }

    /// The page's language tag.
    pub fn lang_tag(&self) -> &'static str {
        self.lang.tag()
    }
}

/// Navigation for a principal: everyone has home, organisations, accounts and password.
///
/// Those the policies let read the audit log also get the audit page.
pub fn nav_for(p: &Principal, lang: Lang, current: &str, can_audit: bool) -> Vec<NavItem> {
    let mut items = vec![
        ("home", "/console/", "ui.nav.home"),
        ("orgs", "/console/orgs", "ui.nav.orgs"),
    ];
    if p.has_role(Role::Admin) || p.has_role(Role::Supervisor) || p.is_platform_admin() {
        items.push(("users", "/console/users", "ui.nav.users"));
    }
    items.push(("datasets", "/console/datasets", "ui.nav.datasets"));
    items.push(("catalogs", "/console/catalogs", "ui.nav.catalogs"));
    items.push(("governance", "/console/governance", "ui.nav.governance"));
    items.push(("calls", "/console/calls", "ui.nav.calls"));
    items.push(("agreements", "/console/agreements", "ui.nav.agreements"));
    items.push(("requests", "/console/data-requests", "ui.nav.requests"));
    items.push(("workspaces", "/console/workspaces", "ui.nav.workspaces"));
    items.push(("jobs", "/console/jobs", "ui.nav.jobs"));
    items.push(("releases", "/console/releases", "ui.nav.releases"));
    items.push(("products", "/console/products", "ui.nav.products"));
    if can_audit {
        items.push(("audit", "/console/audit", "ui.nav.audit"));
    }
    items.push(("password", "/console/password", "ui.nav.password"));
    items
        .into_iter()
        .map(|(id, href, key)| NavItem {
            id,
            href,
            label: t(lang, key),
            active: href == current,
        })
        .collect()
}

/// The header's view of a principal.
pub fn me_view(p: &Principal, lang: Lang) -> MeView {
    MeView {
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        org_name: p.org_name.clone(),
        kind_label: t(lang, &format!("kind.{}", p.org_kind.code())),
        roles_label: p
            .roles
            .iter()
            .map(|r| t(lang, &format!("role.{}", r.code())))
            .collect::<Vec<_>>()
            .join("、"),
    }
}

/// The CSRF token of this browser, creating one (and its cookie) if needed.
pub fn csrf_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(c) = jar.get(CSRF_COOKIE).filter(|c| c.value().len() >= 32) {
        let v = c.value().to_string();
        return (jar, v);
    }
    let mut bytes = [0u8; 32];
    // If the system RNG fails, an empty token is issued and every form then fails its check: fail closed.
    let token = match getrandom::fill(&mut bytes) {
        Ok(()) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        Err(_) => String::new(),
    };
    let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    (jar.add(cookie), token)
}

/// Checks a submitted form's CSRF token against the cookie, and the `Origin` header against `Host`.
pub fn csrf_ok(jar: &CookieJar, headers: &HeaderMap, submitted: &str) -> bool {
    let Some(cookie) = jar.get(CSRF_COOKIE) else {
        return false;
    };
    if cookie.value().len() < 32 || !bool::from(cookie.value().as_bytes().ct_eq(submitted.as_bytes())) {
        return false;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin.split("://").nth(1).is_some_and(|o| o == host),
        // Same-origin form posts from older browsers may omit Origin; the token check stands.
        _ => true,
    }
}

/// A signed-in console user. Without a valid session the request is sent to the login page.
#[derive(Debug, Clone)]
pub struct ConsoleUser(pub Principal);

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(Redirect::to("/console/login").into_response());
        };
        match state.identity.authenticate(&token).await {
            Ok(mut p) => {
                p.request_id = crate::extract::request_id(parts);
                // A person with an issued password must choose their own before anything else.
                let path = parts.uri.path();
                if p.must_change_password && path != "/console/password" && path != "/console/logout" {
                    return Err(Redirect::to("/console/password").into_response());
                }
                Ok(ConsoleUser(p))
            }
            Err(_) => {
                let expired = Cookie::build((SESSION_COOKIE, "")).path("/").build();
                Err((jar.remove(expired), Redirect::to("/console/login")).into_response())
            }
        }
    }
}

/// A console form body. A body that does not parse (a tampered or stale form, a field of
/// the wrong kind) is answered with the console's error page in the viewer's language —
/// never the framework's plain-text message.
#[derive(Debug)]
pub struct ConsoleForm<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for ConsoleForm<T> {
    type Rejection = Response;
    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let path = req.uri().path().to_string();
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(ConsoleForm(v)),
            Err(rejection) => {
                tracing::debug!(detail = %rejection.body_text(), path, "a console form did not parse");
                let jar = CookieJar::from_headers(&headers);
                let (jar, page) = pages::page_for(state, jar, &headers, None, &path);
                let lang = page.lang;
                let status = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                Err((
                    jar,
                    pages::error_page(
                        status,
                        page,
                        t(lang, "title.malformed_form"),
                        t(lang, "error.malformed_form"),
                    ),
                )
                    .into_response())
            }
        }
    }
}

/// Renders a template with the console's security headers.
pub fn html<T: Template>(status: StatusCode, tpl: &T) -> Response {
    match tpl.render() {
        Ok(body) => {
            let mut res = (status, Html(body)).into_response();
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The console's 404 page.
pub fn not_found_page(lang: Lang) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Page {
            lang,
            csrf: String::new(),
            me: None,
            nav: Vec::new(),
            path: "/console/".into(),
            notice: None,
        },
        t(lang, "title.route_not_found"),
        t(lang, "ui.not_found"),
    )
}

/// The language of a console request.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    request_lang(headers)
}
