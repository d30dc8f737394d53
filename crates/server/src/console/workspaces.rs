//! The workspace page: a developer's workspaces, each sample with its risk figures, a schema
//! browser showing each field's technique, and a SQL editor whose results come a page at a
//! time. Everything here is the engine's masked output; the page never sees full data.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use shuyu_core::actor::Principal;
use shuyu_core::i18n::t;
use shuyu_engine::{Method, QueryPage, QueryRequest, WorkspaceSummary, WorkspaceView};

use super::pages::{error_page, explain, form_page, page_for};
use super::{ConsoleForm, ConsoleUser, Page, html};
use crate::AppState;

/// Rows per page in the console's results grid.
const PAGE_ROWS: usize = 50;

#[derive(Template)]
#[template(path = "workspaces.html")]
struct WorkspacesTpl {
    page: Page,
    list: Vec<WorkspaceSummary>,
    current: Option<WorkspaceView>,
    sql: String,
    result: Option<QueryPage>,
    next_offset: usize,
    prev_offset: Option<usize>,
    form_error: Option<String>,
}

/// Which workspace to show.
#[derive(Debug, Deserialize)]
pub struct Which {
    ws: Option<String>,
}

/// The SQL editor's form.
#[derive(Debug, Deserialize)]
pub struct QueryForm {
    csrf: String,
    ws: String,
    sql: String,
    #[serde(default)]
    offset: Option<usize>,
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    p: &Principal,
    page: Page,
    ws: Option<&str>,
    sql: String,
    result: Option<QueryPage>,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let list = match state.workspaces.list(p).await {
        Ok(l) => l,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.workspaces"), msg);
        }
    };
    let chosen = ws.map(str::to_string).or_else(|| list.first().map(|w| w.id.clone()));
    let current = match chosen {
        Some(id) => match state.workspaces.get(p, &id).await {
            Ok(v) => Some(v),
            Err(e) => {
                let (status, msg) = explain(e, lang);
                return error_page(status, page, t(lang, "ui.nav.workspaces"), msg);
            }
        },
        None => None,
    };
    let sql = if sql.is_empty() {
        current
            .as_ref()
            .and_then(|w| w.samples.iter().find(|s| s.status == "shown"))
            .map(|s| format!("SELECT * FROM {}", s.table))
            .unwrap_or_default()
    } else {
        sql
    };
    let (next_offset, prev_offset) = match &result {
        Some(r) => (
            r.offset + r.rows.len(),
            (r.offset > 0).then(|| r.offset.saturating_sub(PAGE_ROWS)),
        ),
        None => (0, None),
    };
    html(
        status,
        &WorkspacesTpl {
            page,
            list,
            current,
            sql,
            result,
            next_offset,
            prev_offset,
            form_error,
        },
    )
}

/// The workspaces page (`?ws=` picks one).
pub async fn workspaces_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(w): Query<Which>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/workspaces");
    let res = render(
        &state,
        &p,
        page,
        w.ws.as_deref(),
        String::new(),
        None,
        None,
        StatusCode::OK,
    )
    .await;
    (jar, res).into_response()
}

/// Runs the editor's query and shows one page of its result (or why it failed).
pub async fn workspaces_query(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<QueryForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/workspaces", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let req = QueryRequest {
        sql: f.sql.clone(),
        offset: f.offset.unwrap_or(0),
        limit: Some(PAGE_ROWS),
    };
    let res = match state.workspaces.query(&p, &f.ws, &req).await {
        Ok(r) => render(&state, &p, page, Some(&f.ws), f.sql, Some(r), None, StatusCode::OK).await,
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render(&state, &p, page, Some(&f.ws), f.sql, None, Some(msg), status).await
        }
    };
    (jar, res).into_response()
}

/// The redraw form of one sample.
#[derive(Debug, Deserialize)]
pub struct RedrawForm {
    csrf: String,
    ws: String,
    table: String,
    fraction: Option<String>,
    by: Option<String>,
    min_per_stratum: Option<String>,
}

/// Redraws one sample with the settings of the form (empty fields keep the platform's).
pub async fn workspaces_redraw(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<RedrawForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/workspaces", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let mut spec = state.workspaces.default_spec();
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut bad = Vec::new();
    if let Some(v) = text(&f.fraction) {
        match v.parse::<f64>() {
            Ok(x) => spec.fraction = x,
            Err(_) => bad.push(shuyu_core::error::FieldError::new("fraction", "not_a_number").arg("field", "fraction")),
        }
    }
    if let Some(by) = text(&f.by) {
        let min = match text(&f.min_per_stratum).map(|v| v.parse::<usize>()) {
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                bad.push(
                    shuyu_core::error::FieldError::new("min_per_stratum", "not_a_number")
                        .arg("field", "min_per_stratum"),
                );
                0
            }
            None => 5,
        };
        spec.method = Method::Stratified {
            by,
            min_per_stratum: min,
        };
    }
    let res = if !bad.is_empty() {
        let (status, msg) = explain(shuyu_core::error::Validation(bad), page.lang);
        render(&state, &p, page, Some(&f.ws), String::new(), None, Some(msg), status).await
    } else {
        match state.workspaces.redraw(&p, &f.ws, &f.table, &spec).await {
            Ok(_) => {
                page.notice = Some(super::Notice {
                    kind: "ok",
                    text: t(page.lang, "ui.ws.redrawn"),
                    secret: None,
                });
                render(&state, &p, page, Some(&f.ws), String::new(), None, None, StatusCode::OK).await
            }
            Err(e) => {
                let (status, msg) = explain(e, page.lang);
                render(&state, &p, page, Some(&f.ws), String::new(), None, Some(msg), status).await
            }
        }
    };
    (jar, res).into_response()
}
