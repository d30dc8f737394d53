//! The console's pages.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use shuyu_core::actor::Principal;
use shuyu_core::i18n::{Lang, render, t};
use shuyu_core::id::{OrgId, UserId};
use shuyu_core::party::{OrgKind, Role, Status};
use shuyu_identity::{NewOrg, NewUser};
use shuyu_policy::{Action, Resource};

use super::{
    ConsoleForm, ConsoleUser, LANG_COOKIE, Notice, Page, SESSION_COOKIE, csrf_ok, csrf_token, html, lang_of, me_view,
    nav_for,
};
use crate::AppState;
use crate::extract::Client;
use crate::problem::ApiError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl {
    page: Page,
    username: String,
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordTpl {
    page: Page,
    forced: bool,
}

struct Link {
    href: &'static str,
    label: String,
}

struct RoleCard {
    role: &'static str,
    title: String,
    duties: String,
    links: Vec<Link>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomeTpl {
    page: Page,
    cards: Vec<RoleCard>,
    reminders: Vec<ReminderRow>,
}

/// One reminder on the home page.
struct ReminderRow {
    kind: String,
    label: String,
    title: String,
    due: String,
    overdue: bool,
    href: &'static str,
}

struct OrgRow {
    name: String,
    kind: String,
    region: String,
    uscc: String,
    jurisdiction: String,
    status: String,
    status_code: &'static str,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsTpl {
    page: Page,
    orgs: Vec<OrgRow>,
    can_create: bool,
    form_error: Option<String>,
    kinds: Vec<(String, String)>,
    regions: Vec<(String, String)>,
    jurisdictions: Vec<(String, String)>,
}

struct UserRow {
    username: String,
    display_name: String,
    org_name: String,
    roles: String,
    status: String,
    status_code: &'static str,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersTpl {
    page: Page,
    users: Vec<UserRow>,
    orgs: Vec<(String, String)>,
    form_error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTpl {
    page: Page,
    title: String,
    detail: String,
}

/// An error page.
pub fn error_page(status: StatusCode, page: Page, title: String, detail: String) -> Response {
    html(status, &ErrorTpl { page, title, detail })
}

pub(super) fn page_for(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    p: Option<&Principal>,
    path: &str,
) -> (CookieJar, Page) {
    let lang = lang_of(headers);
    let (jar, csrf) = csrf_token(jar, state.cfg.cookie_secure);
    let page = Page {
        lang,
        csrf,
        me: p.map(|p| me_view(p, lang)),
        nav: p
            .map(|p| {
                nav_for(
                    p,
                    lang,
                    path,
                    state.identity.allows(p, Action::AuditRead, &Resource::Platform),
                )
            })
            .unwrap_or_default(),
        path: path.to_string(),
        notice: None,
    };
    (jar, page)
}

/// The page of a form post whose CSRF token (and origin) passed, or the refusal to send.
pub(super) fn form_page(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    p: Option<&Principal>,
    path: &str,
    csrf: &str,
) -> Result<(CookieJar, Page), Box<Response>> {
    let ok = csrf_ok(&jar, headers, csrf);
    let (jar, page) = page_for(state, jar, headers, p, path);
    if ok {
        Ok((jar, page))
    } else {
        Err(Box::new((jar, csrf_failed(page)).into_response()))
    }
}

/// The text of an error for a person: the message, then each field's.
pub(super) fn explain(err: impl Into<ApiError>, lang: Lang) -> (StatusCode, String) {
    let err: ApiError = err.into();
    let mut text = render(lang, &err.message);
    for f in &err.fields {
        text.push('；');
        text.push_str(&render(lang, &f.message()));
    }
    (err.status, text)
}

pub(super) fn csrf_failed(page: Page) -> Response {
    let lang = page.lang;
    error_page(
        StatusCode::FORBIDDEN,
        page,
        t(lang, "title.csrf_failed"),
        t(lang, "error.csrf_failed"),
    )
}

// ----- login, logout, language ------------------------------------------

pub async fn login_page(State(state): State<AppState>, jar: CookieJar, headers: HeaderMap) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, None, "/console/login");
    (
        jar,
        html(
            StatusCode::OK,
            &LoginTpl {
                page,
                username: String::new(),
            },
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Client(client): Client,
    ConsoleForm(form): ConsoleForm<LoginForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, None, "/console/login", &form.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    match state.identity.login(&form.username, &form.password, &client).await {
        Ok(s) => {
            let ttl = state.identity.config().session_ttl.as_secs();
            let cookie = Cookie::build((SESSION_COOKIE, s.token.expose().clone()))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.cfg.cookie_secure)
                .max_age(cookie::time::Duration::seconds(ttl))
                .build();
            let target = if s.principal.must_change_password {
                "/console/password"
            } else {
                "/console/"
            };
            (jar.add(cookie), Redirect::to(target)).into_response()
        }
        Err(e) => {
            let (status, text) = explain(e, page.lang);
            page.notice = Some(Notice {
                kind: "warn",
                text,
                secret: None,
            });
            (
                jar,
                html(
                    status,
                    &LoginTpl {
                        page,
                        username: form.username,
                    },
                ),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    user: ConsoleUser,
    ConsoleForm(form): ConsoleForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&jar, &headers, &form.csrf) {
        let (jar, page) = page_for(&state, jar, &headers, Some(&user.0), "/console/");
        return (jar, csrf_failed(page)).into_response();
    }
    if let Err(e) = state.identity.logout(&user.0).await {
        tracing::warn!(error = %e, "logout failed");
    }
    let cleared = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    (jar.remove(cleared), Redirect::to("/console/login")).into_response()
}

#[derive(Deserialize)]
pub struct LangForm {
    csrf: String,
    lang: String,
    #[serde(default)]
    back: String,
}

pub async fn switch_lang(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<LangForm>,
) -> Response {
    if !csrf_ok(&jar, &headers, &form.csrf) {
        let (jar, page) = page_for(&state, jar, &headers, None, "/console/");
        return (jar, csrf_failed(page)).into_response();
    }
    let lang = Lang::from_tag(&form.lang).unwrap_or_default();
    let cookie = Cookie::build((LANG_COOKIE, lang.tag()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.cfg.cookie_secure)
        .max_age(cookie::time::Duration::days(365))
        .build();
    // Only ever return to a console page (no open redirect).
    let back = if super::owns(&form.back) && !form.back.starts_with("/static/") && !form.back.contains("//") {
        form.back
    } else {
        "/console/".into()
    };
    (jar.add(cookie), Redirect::to(&back)).into_response()
}

// ----- password ---------------------------------------------------------

pub async fn password_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/password");
    (
        jar,
        html(
            StatusCode::OK,
            &PasswordTpl {
                page,
                forced: p.must_change_password,
            },
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn password_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(form): ConsoleForm<PasswordForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/password", &form.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    if form.new_password != form.confirm_password {
        page.notice = Some(Notice {
            kind: "warn",
            text: t(page.lang, "ui.password.mismatch"),
            secret: None,
        });
        return (
            jar,
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &PasswordTpl {
                    page,
                    forced: p.must_change_password,
                },
            ),
        )
            .into_response();
    }
    match state
        .identity
        .change_own_password(&p, &form.current_password, &form.new_password)
        .await
    {
        Ok(()) => (jar, Redirect::to("/console/?notice=password_changed")).into_response(),
        Err(e) => {
            let (status, text) = explain(e, page.lang);
            page.notice = Some(Notice {
                kind: "warn",
                text,
                secret: None,
            });
            (
                jar,
                html(
                    status,
                    &PasswordTpl {
                        page,
                        forced: p.must_change_password,
                    },
                ),
            )
                .into_response()
        }
    }
}

// ----- home -------------------------------------------------------------

#[derive(Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    notice: Option<String>,
}

fn cards_for(p: &Principal, lang: Lang) -> Vec<RoleCard> {
    p.roles
        .iter()
        .map(|r| {
            let links = match r {
                Role::Admin => vec![Link {
                    href: "/console/users",
                    label: t(lang, "ui.nav.users"),
                }],
                Role::Authority | Role::Supervisor => vec![
                    Link {
                        href: "/console/orgs",
                        label: t(lang, "ui.nav.orgs"),
                    },
                    Link {
                        href: "/console/catalogs",
                        label: t(lang, "ui.nav.catalogs"),
                    },
                    Link {
                        href: "/console/governance",
                        label: t(lang, "ui.nav.governance"),
                    },
                ],
                Role::Provider | Role::Operator | Role::Developer => vec![
                    Link {
                        href: "/console/datasets",
                        label: t(lang, "ui.nav.datasets"),
                    },
                    Link {
                        href: "/console/catalogs",
                        label: t(lang, "ui.nav.catalogs"),
                    },
                    Link {
                        href: "/console/governance",
                        label: t(lang, "ui.nav.governance"),
                    },
                ],
                _ => Vec::new(),
            };
            RoleCard {
                role: r.code(),
                title: t(lang, &format!("role.{}", r.code())),
                duties: t(lang, &format!("ui.duties.{}", r.code())),
                links,
            }
        })
        .collect()
}

pub async fn home(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<HomeQuery>,
) -> Response {
    let (jar, mut page) = page_for(&state, jar, &headers, Some(&p), "/console/");
    if q.notice.as_deref() == Some("password_changed") {
        page.notice = Some(Notice {
            kind: "ok",
            text: t(page.lang, "ui.password.changed"),
            secret: None,
        });
    }
    // The authority's dashboard: governance items its providers let pass their deadline.
    if page.notice.is_none()
        && p.has_role(Role::Authority)
        && let Ok(overdue) = state.catalog.items(&p, true).await
        && !overdue.is_empty()
    {
        page.notice = Some(Notice {
            kind: "warn",
            text: format!("{}：{}", t(page.lang, "ui.home.overdue"), overdue.len()),
            secret: None,
        });
    }
    let cards = cards_for(&p, page.lang);
    let lang = page.lang;
    let reminders = crate::api::requests::all_reminders(&state, &p)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| ReminderRow {
            label: t(lang, &format!("ui.reminder.{}", r.kind)),
            href: match r.kind.as_str() {
                k if k.starts_with("data_request") => "/console/data-requests",
                "governance_answer" => "/console/governance",
                _ => "/console/agreements",
            },
            kind: r.kind,
            title: r.title,
            due: r.due.unwrap_or_default(),
            overdue: r.overdue,
        })
        .collect();
    (jar, html(StatusCode::OK, &HomeTpl { page, cards, reminders })).into_response()
}

// ----- organisations ----------------------------------------------------

async fn render_orgs(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let orgs = match state.identity.list_orgs(p, crate::api::MAX_PAGE, 0).await {
        Ok(o) => o,
        Err(e) => {
            let (status, text) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.orgs"), text);
        }
    };
    let regions = state.identity.regions();
    let region_name = |code: &str| {
        regions
            .iter()
            .find(|r| r.code.as_str() == code)
            .map(|r| {
                if lang == Lang::En {
                    r.name_en.clone()
                } else {
                    r.name_zh.clone()
                }
            })
            .unwrap_or_else(|| code.to_string())
    };
    let rows = orgs
        .iter()
        .map(|o| OrgRow {
            name: o.name.clone(),
            kind: t(lang, &format!("kind.{}", o.kind.code())),
            region: region_name(o.region.as_str()),
            uscc: o.uscc.clone().unwrap_or_default(),
            jurisdiction: t(
                lang,
                &format!("jurisdiction.{}", o.jurisdiction.map_or("unrecorded", |j| j.code())),
            ),
            status: t(lang, &format!("status.{}", o.status.code())),
            status_code: o.status.code(),
        })
        .collect();
    let probe = Resource::Org {
        id: OrgId::generate(),
        kind: OrgKind::Provider,
        region: p.region.clone(),
        status: Status::Active,
    };
    let can_create = state.identity.allows(p, Action::OrgCreate, &probe);
    let kinds = OrgKind::ALL
        .iter()
        .map(|k| (k.code().to_string(), t(lang, &format!("kind.{}", k.code()))))
        .collect();
    let region_options = regions
        .iter()
        .filter(|r| {
            let probe = Resource::Org {
                id: OrgId::generate(),
                kind: OrgKind::Provider,
                region: r.code.clone(),
                status: Status::Active,
            };
            state.identity.allows(p, Action::OrgCreate, &probe)
        })
        .map(|r| {
            (
                r.code.as_str().to_string(),
                format!("{} {}", r.code, region_name(r.code.as_str())),
            )
        })
        .collect();
    html(
        status,
        &OrgsTpl {
            page,
            orgs: rows,
            can_create,
            form_error,
            kinds,
            regions: region_options,
            jurisdictions: shuyu_core::party::Jurisdiction::ALL
                .iter()
                .map(|j| (j.code().to_string(), t(lang, &format!("jurisdiction.{}", j.code()))))
                .collect(),
        },
    )
}

pub async fn orgs_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/orgs");
    (jar, render_orgs(&state, &p, page, None, StatusCode::OK).await).into_response()
}

#[derive(Deserialize)]
pub struct OrgForm {
    csrf: String,
    name: String,
    kind: String,
    region: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    jurisdiction: String,
}

pub async fn orgs_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(form): ConsoleForm<OrgForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/orgs", &form.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let uscc = Some(form.uscc.trim().to_string()).filter(|s| !s.is_empty());
    match state
        .identity
        .create_org(
            &p,
            NewOrg {
                name: form.name,
                kind: form.kind,
                region: form.region,
                uscc,
                jurisdiction: Some(form.jurisdiction).filter(|j| !j.trim().is_empty()),
            },
        )
        .await
    {
        Ok(o) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: format!("{}：{}", t(page.lang, "ui.orgs.created"), o.name),
                secret: None,
            });
            (jar, render_orgs(&state, &p, page, None, StatusCode::OK).await).into_response()
        }
        Err(e) => {
            let (status, text) = explain(e, page.lang);
            (jar, render_orgs(&state, &p, page, Some(text), status).await).into_response()
        }
    }
}

// ----- accounts ---------------------------------------------------------

async fn render_users(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let (users, orgs) = match (
        state.identity.list_users(p, None, crate::api::MAX_PAGE, 0).await,
        state.identity.list_orgs(p, crate::api::MAX_PAGE, 0).await,
    ) {
        (Ok(u), Ok(o)) => (u, o),
        (Err(e), _) | (_, Err(e)) => {
            let (status, text) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.users"), text);
        }
    };
    let rows = users
        .iter()
        .map(|(u, o)| UserRow {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            org_name: o.name.clone(),
            roles: u
                .roles
                .iter()
                .map(|r| t(lang, &format!("role.{}", r.code())))
                .collect::<Vec<_>>()
                .join("、"),
            status: t(lang, &format!("status.{}", u.status.code())),
            status_code: u.status.code(),
        })
        .collect();
    let creatable = orgs
        .iter()
        .filter(|o| o.status == Status::Active)
        .filter(|o| {
            let probe = Resource::User {
                id: UserId::generate(),
                org: o.id,
                org_kind: o.kind,
                region: o.region.clone(),
                roles: vec![o.kind.code().to_string()],
            };
            state.identity.allows(p, Action::UserCreate, &probe)
        })
        .map(|o| (o.id.to_string(), o.name.clone()))
        .collect();
    html(
        status,
        &UsersTpl {
            page,
            users: rows,
            orgs: creatable,
            form_error,
        },
    )
}

pub async fn users_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/users");
    (jar, render_users(&state, &p, page, None, StatusCode::OK).await).into_response()
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    org_id: String,
    username: String,
    display_name: String,
    #[serde(default)]
    role_admin: Option<String>,
}

pub async fn users_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(form): ConsoleForm<UserForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/users", &form.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let roles = if form.role_admin.is_some() {
        vec!["admin".to_string()]
    } else {
        Vec::new()
    };
    let req = NewUser {
        org_id: form.org_id,
        username: form.username,
        display_name: form.display_name,
        roles,
        password: None,
    };
    match state.identity.create_user(&p, req).await {
        Ok((u, tmp)) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: format!(
                    "{} {}。{}",
                    t(page.lang, "ui.users.created"),
                    u.username,
                    t(page.lang, "ui.users.temporary")
                ),
                secret: tmp.map(|s| s.into_inner()),
            });
            (jar, render_users(&state, &p, page, None, StatusCode::OK).await).into_response()
        }
        Err(e) => {
            let status_text = explain(e, page.lang);
            (
                jar,
                render_users(&state, &p, page, Some(status_text.1), status_text.0).await,
            )
                .into_response()
        }
    }
}

// ----- audit ------------------------------------------------------------

struct CheckpointPanel {
    size: u64,
    root_hex: String,
    time: String,
    key_id: String,
    origin: String,
    witnesses: Vec<(String, String, String)>,
}

struct AuditRow {
    seq: u64,
    time: String,
    actor: String,
    action: String,
    object: String,
    outcome: String,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object_type: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTpl {
    page: Page,
    checkpoint: Option<CheckpointPanel>,
    rows: Vec<AuditRow>,
    q: AuditQuery,
    error: Option<String>,
}

fn local_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn day_start(s: &str) -> Option<jiff::Timestamp> {
    let d: jiff::civil::Date = s.trim().parse().ok()?;
    d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

pub async fn audit_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<AuditQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/audit");
    let lang = page.lang;
    if let Err(e) = state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await
    {
        let (status, text) = explain(e, lang);
        return (jar, error_page(status, page, t(lang, "ui.nav.audit"), text)).into_response();
    }
    let mut error = None;
    let checkpoint = match state.ledger.latest().await {
        Ok(Some(cp)) => {
            let witnesses = state
                .ledger
                .cosignatures(cp.size)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let when = jiff::Timestamp::from_second(c.time).map(local_time).unwrap_or_default();
                    (c.witness, c.key_id, when)
                })
                .collect();
            Some(CheckpointPanel {
                size: cp.size,
                root_hex: cp.root_hash().map(hex_of).unwrap_or_default(),
                time: jiff::Timestamp::from_second(cp.time)
                    .map(local_time)
                    .unwrap_or_default(),
                key_id: cp.key_id,
                origin: cp.origin,
                witnesses,
            })
        }
        Ok(None) => None,
        Err(e) => {
            error = Some(explain(ApiError::from_user_facing(&e), lang).1);
            None
        }
    };
    let mut filter = shuyu_store::log::Filter {
        action: Some(q.action.trim().to_string()).filter(|s| !s.is_empty()),
        object_type: Some(q.object_type.trim().to_string()).filter(|s| !s.is_empty()),
        object_id: Some(q.object_id.trim().to_string()).filter(|s| !s.is_empty()),
        from: day_start(&q.from),
        until: day_start(&q.until).map(|t| t + jiff::SignedDuration::from_hours(24)),
        ..Default::default()
    };
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    if !q.actor.trim().is_empty() {
        match state.identity.store().read().await {
            Ok(mut c) => match shuyu_store::users::find_by_username(&mut c, &q.actor.trim().to_lowercase()).await {
                Ok(Some(u)) => filter.actor_user = Some(u.id.to_string()),
                _ => filter.actor_user = Some(format!("no such user: {}", q.actor.trim())),
            },
            Err(e) => error = Some(explain(e, lang).1),
        }
    }
    let found = state.ledger.search(&filter, 200).await.unwrap_or_else(|e| {
        error = Some(explain(ApiError::from_user_facing(&e), lang).1);
        Vec::new()
    });
    let mut rows = Vec::with_capacity(found.len());
    for e in found {
        let Ok(entry) = serde_json::from_str::<shuyu_audit::entry::Entry>(&e.line) else {
            continue;
        };
        let actor = match (&entry.actor.user, &entry.actor.system) {
            (Some(uid), _) => {
                if !names.contains_key(uid) {
                    let name = match (uid.parse::<UserId>(), state.identity.store().read().await) {
                        (Ok(id), Ok(mut c)) => shuyu_store::users::get(&mut c, id)
                            .await
                            .ok()
                            .flatten()
                            .map(|u| u.username)
                            .unwrap_or_else(|| uid.clone()),
                        _ => uid.clone(),
                    };
                    names.insert(uid.clone(), name);
                }
                let mut a = names.get(uid).cloned().unwrap_or_default();
                if entry.actor.key.is_some() {
                    a.push_str(" (API key)");
                }
                a
            }
            (None, Some(sys)) => format!("{}: {sys}", t(lang, "ui.audit.system")),
            (None, None) => "-".into(),
        };
        rows.push(AuditRow {
            seq: entry.seq,
            time: local_time(e.time),
            actor,
            action: entry.action,
            object: format!("{} {}", entry.object.kind, entry.object.id),
            outcome: entry.outcome.code().to_string(),
        });
    }
    (
        jar,
        html(
            StatusCode::OK,
            &AuditTpl {
                page,
                checkpoint,
                rows,
                q,
                error,
            },
        ),
    )
        .into_response()
}

fn hex_of(h: shuyu_audit::Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn audit_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let result = match state
        .identity
        .authorize(&p, Action::AuditExport, &Resource::Platform)
        .await
    {
        Ok(()) => crate::api::audit::export_response(&state, &p).await,
        Err(e) => Err(ApiError::from(e)),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/audit");
            let lang = page.lang;
            let (status, text) = explain(e, lang);
            (jar, error_page(status, page, t(lang, "ui.nav.audit"), text)).into_response()
        }
    }
}
