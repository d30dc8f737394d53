//! The console's data pages: datasets (upload with progress, the error report,
//! the classification review grid with masked examples only), the catalog chain
//! with exactly the actions the viewer may take, and governance items. Like the
//! API, nothing here can show a record: the catalog service returns metadata.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use shuyu_catalog::chain::{EntryEvent, EntryKind, EntryState};
use shuyu_catalog::entries::{EntryDraft, EntryView, FREQUENCIES, FieldRequest, SECTORS};
use shuyu_catalog::governance::{ItemKind, ItemView, Outcome, RaiseItem};
use shuyu_catalog::{Correction, VersionView};
use shuyu_core::actor::Principal;
use shuyu_core::i18n::{Lang, t};
use shuyu_core::party::Role;

use super::pages::{csrf_failed, explain, form_page, page_for};
use super::{ConsoleForm, ConsoleUser, Notice, Page, csrf_ok, html};
use crate::AppState;
use crate::api::datasets::{import_request, receive, row_error};
use crate::problem::ApiError;

// ----- datasets ----------------------------------------------------------

struct DatasetRow {
    name: String,
    title: String,
    grade: String,
    versions: Vec<VersionRow>,
}

struct VersionRow {
    id: String,
    no: i64,
    state: String,
    state_code: &'static str,
    rows: String,
    errors: i64,
}

#[derive(Template)]
#[template(path = "datasets.html")]
struct DatasetsTpl {
    page: Page,
    datasets: Vec<DatasetRow>,
    can_upload: bool,
    form_error: Option<String>,
    max_mib: u64,
    /// This rendering's form token (one import per click).
    form_token: String,
}

fn state_label(lang: Lang, code: &str) -> String {
    t(lang, &format!("ui.state.{code}"))
}

async fn render_datasets(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let datasets = match state.catalog.list(p).await {
        Ok(all) => all
            .into_iter()
            .map(|(d, versions)| DatasetRow {
                name: d.name,
                title: d.title,
                grade: d.grade,
                versions: versions
                    .iter()
                    .rev()
                    .map(|v| VersionRow {
                        id: v.id.clone(),
                        no: v.version_no,
                        state: state_label(lang, v.state.code()),
                        state_code: v.state.code(),
                        rows: format!("{} / {}", v.rows_accepted, v.rows_read),
                        errors: v.error_count,
                    })
                    .collect(),
            })
            .collect(),
        Err(e) => return super::pages::error_page(explain(e, lang).0, page, t(lang, "ui.nav.datasets"), String::new()),
    };
    let can_upload = p.has_role(Role::Provider) || p.has_role(Role::Developer);
    html(
        status,
        &DatasetsTpl {
            page,
            datasets,
            can_upload,
            form_error,
            max_mib: state.cfg.max_upload_bytes / (1024 * 1024),
            form_token: super::submissions::Submissions::token(),
        },
    )
}

/// The datasets the viewer may read, and (for providers) the upload form.
pub async fn datasets_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/datasets");
    (jar, render_datasets(&state, &p, page, None, StatusCode::OK).await).into_response()
}

/// The upload form's target: the CSRF token and the right to import are checked before
/// the file is stored; the file streams to disk; the import's version page follows (303).
pub async fn upload(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    form: Multipart,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/datasets");
    let csrf_jar = jar.clone();
    let check_headers = headers.clone();
    let catalog = state.catalog.clone();
    let principal = p.clone();
    let submissions = state.submissions.clone();
    let user = p.user_id.to_string();

    let claimed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let claim = claimed.clone();
    let earlier = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let first = earlier.clone();
    let received = receive(&state, form, move |text| async move {
        if !csrf_ok(
            &csrf_jar,
            &check_headers,
            text.get("csrf").map(String::as_str).unwrap_or(""),
        ) {
            return Err(ApiError::simple(StatusCode::FORBIDDEN, "csrf_failed"));
        }
        let name = text.get("dataset").map(String::as_str).unwrap_or("");
        catalog.may_import(&principal, name).await.map_err(ApiError::from)?;
        // The form's second post (a double click, two scripts) is not a second import.
        if let Some(token) = text.get("form_token").filter(|t| !t.is_empty()) {
            match submissions.begin(&principal.user_id.to_string(), token) {
                None => {
                    *claim.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
                }
                Some(super::submissions::Seen::Done(url)) => {
                    *first.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(url);
                    return Err(ApiError::simple(StatusCode::CONFLICT, "form_submitted"));
                }
                Some(super::submissions::Seen::Pending) => {
                    return Err(ApiError::simple(StatusCode::CONFLICT, "form_pending"));
                }
            }
        }
        Ok(())
    })
    .await;
    let token = claimed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let finish = |result: Option<String>| {
        if let Some(t) = &token {
            state.submissions.finish(&user, t, result);
        }
    };
    let (upload, source, mut text) = match received {
        Ok(r) => r,
        Err(e) if e.code == "csrf_failed" => return (jar, csrf_failed(page)).into_response(),
        // The first post's result, as if this one had made it.
        Err(e) if e.code == "form_submitted" => {
            let to = earlier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| "/console/datasets".into());
            return (jar, Redirect::to(&to)).into_response();
        }
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            return (jar, render_datasets(&state, &p, page, Some(msg), status).await).into_response();
        }
    };
    text.remove("csrf");
    text.remove("form_token");
    let name = text.remove("dataset").unwrap_or_default();
    let title = text.remove("title").filter(|s| !s.trim().is_empty());
    // An empty choice in the form means "detect" / "default".
    text.retain(|_, v| !v.trim().is_empty());
    let result = async {
        let req = import_request(&mut text)?;
        let opts = req.options()?;
        state
            .catalog
            .import(&p, &name, title.as_deref(), &upload.path, &source, &opts)
            .await
            .map_err(ApiError::from)
    }
    .await;
    drop(upload);
    match result {
        Ok((v, _)) => {
            let to = format!("/console/datasets/versions/{}", v.id);
            finish(Some(to.clone()));
            (jar, Redirect::to(&to)).into_response()
        }
        Err(e) => {
            finish(None);
            let (status, msg) = explain(e, page.lang);
            (jar, render_datasets(&state, &p, page, Some(msg), status).await).into_response()
        }
    }
}

struct ColumnRow {
    name: String,
    field_type: String,
    sensitivity: String,
    grade: String,
    confidence: String,
    examples: String,
    evidence: String,
    overridden: bool,
}

struct ErrorRow {
    row: i64,
    field: String,
    message: String,
    digest: String,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionTpl {
    page: Page,
    v: VersionView,
    state: String,
    columns: Vec<ColumnRow>,
    errors: Vec<ErrorRow>,
    offset: i64,
    next: Option<i64>,
    prev: Option<i64>,
    reviewable: bool,
    can_roll_back: bool,
    types: Vec<&'static str>,
    grades: Vec<&'static str>,
    form_error: Option<String>,
    /// What this version changes against the current one; the breaking ones are ticked to accept.
    changes: Vec<ChangeRow>,
}

struct ChangeRow {
    key: String,
    what: String,
    breaking: bool,
}

/// Paging of the error report.
#[derive(Debug, Deserialize)]
pub struct ErrorsQuery {
    #[serde(default)]
    offset: Option<i64>,
}

const ERROR_PAGE: i64 = 200;

async fn render_version(
    state: &AppState,
    p: &Principal,
    page: Page,
    id: &str,
    offset: i64,
    form_error: Option<String>,
) -> Response {
    let lang = page.lang;
    let v = match state.catalog.version(p, id).await {
        Ok(v) => v,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return super::pages::error_page(status, page, t(lang, "ui.data.version"), msg);
        }
    };
    let offset = offset.max(0);
    let errors = state
        .catalog
        .errors(p, id, ERROR_PAGE, offset)
        .await
        .unwrap_or_default();
    // The buttons show where the review is possible; the policies decide when one is pressed.
    let reviewable = v.state == shuyu_catalog::version::VersionState::PendingReview
        && (p.has_role(Role::Provider) || p.has_role(Role::Developer));
    // A current version that replaced another can be taken back (a wrong file accepted).
    let can_roll_back = v.state == shuyu_catalog::version::VersionState::Active
        && v.version_no > 1
        && (p.has_role(Role::Provider) || p.has_role(Role::Developer));
    let columns = v
        .columns
        .iter()
        .map(|c| ColumnRow {
            name: c.name.clone(),
            field_type: c.class.field_type.code().into(),
            sensitivity: t(
                lang,
                &format!(
                    "ui.sensitivity.{}",
                    serde_json::to_value(c.class.sensitivity)
                        .ok()
                        .and_then(|x| x.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            ),
            grade: c.class.grade.code(),
            confidence: format!("{:.0}%", c.class.confidence * 100.0),
            examples: c.examples.join("、"),
            evidence: c.class.evidence.clone(),
            overridden: c.overridden,
        })
        .collect();
    let total = v.error_count;
    let changes = v
        .changes
        .iter()
        .map(|c| {
            let mut what = t(lang, &format!("ui.data.change_{}", c.kind));
            if let Some(col) = &c.column {
                what.push_str(&format!(" 「{col}」"));
            }
            if let (Some(a), Some(b)) = (&c.from, &c.to) {
                what.push_str(&format!(" {a} → {b}"));
            } else if let Some(b) = &c.to {
                what.push_str(&format!(" ({b})"));
            }
            ChangeRow {
                key: c.key(),
                what,
                breaking: c.breaking,
            }
        })
        .collect();
    let tpl = VersionTpl {
        changes,
        state: state_label(lang, v.state.code()),
        columns,
        errors: errors
            .iter()
            .map(|e| {
                let dto = row_error(lang, e);
                ErrorRow {
                    row: dto.row,
                    field: dto.field,
                    message: dto.message,
                    digest: dto.value_digest,
                }
            })
            .collect(),
        offset,
        next: (offset + ERROR_PAGE < total.min(100_000)).then_some(offset + ERROR_PAGE),
        prev: (offset > 0).then_some((offset - ERROR_PAGE).max(0)),
        reviewable,
        can_roll_back,
        types: shuyu_catalog::FieldType::ALL.iter().map(|f| f.code()).collect(),
        grades: vec!["L1", "L2", "L3", "L4", "important", "core"],
        form_error,
        page,
        v,
    };
    html(StatusCode::OK, &tpl)
}

/// One version: counts, the classification grid (masked examples), the error report.
pub async fn version_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Path(id): Path<String>,
    Query(q): Query<ErrorsQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/datasets");
    (
        jar,
        render_version(&state, &p, page, &id, q.offset.unwrap_or(0), None).await,
    )
        .into_response()
}

/// A review action on a version.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    /// `correct`, `accept` or `reject`.
    action: String,
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    field_type: Option<String>,
    #[serde(default)]
    grade: Option<String>,
    /// Accepting: one `confirm_{n}` box per breaking change, its value the change's key
    /// (a form carries no repeated keys here).
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

impl ReviewForm {
    /// The breaking changes ticked as confirmed.
    fn confirmed(&self) -> Vec<String> {
        self.rest
            .iter()
            .filter(|(k, _)| k.starts_with("confirm_"))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Corrects a column, accepts or rejects the version.
pub async fn review(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Path(id): Path<String>,
    ConsoleForm(f): ConsoleForm<ReviewForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/datasets", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let lang = page.lang;
    let result = match f.action.as_str() {
        "correct" => {
            let column = f.column.unwrap_or_default();
            let original = state.catalog.version(&p, &id).await.ok().and_then(|v| {
                v.columns
                    .iter()
                    .find(|c| c.name == column)
                    .map(|c| (c.class.field_type.code().to_string(), c.class.grade.code()))
            });
            // Only what changed is a correction (the grid sends both selects).
            let (ft, gr) = match original {
                Some((ft0, gr0)) => (f.field_type.filter(|x| *x != ft0), f.grade.filter(|x| *x != gr0)),
                None => (f.field_type, f.grade),
            };
            state
                .catalog
                .correct(
                    &p,
                    &id,
                    &column,
                    Correction {
                        field_type: ft,
                        grade: gr,
                    },
                )
                .await
                .map(|_| "ui.data.corrected")
        }
        "accept" => state
            .catalog
            .accept(&p, &id, &f.confirmed())
            .await
            .map(|_| "ui.data.accepted"),
        "reject" => state.catalog.reject(&p, &id).await.map(|_| "ui.data.rejected"),
        "rollback" => state
            .catalog
            .roll_back_from(&p, &id)
            .await
            .map(|_| "ui.data.rolled_back"),
        _ => return (jar, super::not_found_page(lang)).into_response(),
    };
    if result.is_ok() && matches!(f.action.as_str(), "accept" | "rollback") {
        state.data_changed();
    }
    match result {
        Ok(key) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: t(lang, key),
                secret: None,
            });
            (jar, render_version(&state, &p, page, &id, 0, None).await).into_response()
        }
        Err(e) => {
            let msg = explain(e, lang).1;
            (jar, render_version(&state, &p, page, &id, 0, Some(msg)).await).into_response()
        }
    }
}

// ----- catalogs ----------------------------------------------------------

struct EntryRow {
    id: String,
    title: String,
    org_name: String,
    state: String,
    state_code: &'static str,
    grade: String,
    revision: i64,
    note: String,
    detail: String,
    events: Vec<(&'static str, String)>,
    needs_note: bool,
}

#[derive(Template)]
#[template(path = "catalogs.html")]
struct CatalogsTpl {
    page: Page,
    kind: &'static str,
    tabs: Vec<(&'static str, String, bool)>,
    entries: Vec<EntryRow>,
    can_create: bool,
    datasets: Vec<(String, String)>,
    parents: Vec<(String, String)>,
    frequencies: Vec<(&'static str, String)>,
    sectors: Vec<(&'static str, String)>,
    hint: String,
    fields_hint: String,
    form_error: Option<String>,
}

/// Which catalog to show.
#[derive(Debug, Deserialize)]
pub struct CatalogQuery {
    #[serde(default)]
    kind: Option<String>,
}

fn entry_detail(lang: Lang, e: &EntryView) -> String {
    let b = &e.body;
    // Chinese and English punctuation differ; the page's language decides.
    let (colon, open, comma, close, list) = match lang {
        Lang::En => (": ", " (", ", ", ")", ", "),
        _ => ("：", "（", "，", "）", "、"),
    };
    let mut parts = vec![b.description.clone()];
    if !b.fields.is_empty() {
        parts.push(format!(
            "{}{colon}{}",
            t(lang, "field.fields"),
            b.fields
                .iter()
                .map(|f| match &f.reason {
                    Some(r) => format!("{}{open}{}{comma}{}{close}", f.name, f.grade, r),
                    None => format!("{}{open}{}{close}", f.name, f.grade),
                })
                .collect::<Vec<_>>()
                .join(list)
        ));
    }
    if !b.authorizable {
        parts.push(format!(
            "{}{colon}{}",
            t(lang, "ui.catalog.not_authorizable"),
            b.restriction_basis.clone().unwrap_or_default()
        ));
    }
    if let Some(p) = &b.purpose {
        parts.push(format!("{}{colon}{p}", t(lang, "field.purpose")));
    }
    if let Some(s) = &b.source {
        parts.push(format!("{}{colon}{s}", t(lang, "field.source")));
    }
    parts.join(" · ")
}

async fn render_catalogs(
    state: &AppState,
    p: &Principal,
    page: Page,
    kind: EntryKind,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let entries = match state.catalog.list_entries(p, kind, None).await {
        Ok(e) => e,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return super::pages::error_page(status, page, t(lang, "ui.nav.catalogs"), msg);
        }
    };
    let mut rows = Vec::new();
    for e in &entries {
        let events = state.catalog.allowed_events(p, e).await.unwrap_or_default();
        rows.push(EntryRow {
            id: e.id.clone(),
            title: e.title.clone(),
            org_name: e.org_name.clone(),
            state: state_label(lang, e.state.code()),
            state_code: e.state.code(),
            grade: e.body.grade.clone(),
            revision: e.revision,
            note: e.note.clone().unwrap_or_default(),
            detail: entry_detail(lang, e),
            needs_note: events
                .iter()
                .any(|ev| matches!(ev, EntryEvent::Return | EntryEvent::Reject)),
            events: events
                .iter()
                .map(|ev| (ev.code(), t(lang, &format!("ui.event.{}", ev.code()))))
                .collect(),
        });
    }
    let can_create = state.catalog.may_keep(p, kind);
    let mut datasets = Vec::new();
    let mut parents = Vec::new();
    if can_create {
        match kind {
            EntryKind::Resource => {
                let own = p.org_id.to_string();
                datasets = state
                    .catalog
                    .list(p)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(d, _)| d.org_id == own && d.current_version.is_some())
                    .map(|(d, _)| (d.name.clone(), format!("{}（{}）", d.title, d.name)))
                    .collect();
            }
            EntryKind::Operation | EntryKind::Development => {
                let parent_kind = if kind == EntryKind::Operation {
                    EntryKind::Resource
                } else {
                    EntryKind::Operation
                };
                parents = state
                    .catalog
                    .list_entries(p, parent_kind, Some(EntryState::Published))
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| {
                        let fields = e
                            .body
                            .fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        (e.id.clone(), format!("{} · {} · [{}]", e.title, e.org_name, fields))
                    })
                    .collect();
            }
            EntryKind::Social => {}
        }
    }
    let tabs = EntryKind::ALL
        .iter()
        .map(|k| (k.code(), t(lang, &format!("ui.catalog.{}", k.code())), *k == kind))
        .collect();
    html(
        status,
        &CatalogsTpl {
            kind: kind.code(),
            tabs,
            entries: rows,
            can_create,
            datasets,
            parents,
            frequencies: FREQUENCIES
                .iter()
                .map(|f| (*f, t(lang, &format!("ui.frequency.{f}"))))
                .collect(),
            sectors: SECTORS
                .iter()
                .map(|s| (*s, t(lang, &format!("ui.sector.{s}"))))
                .collect(),
            hint: t(lang, &format!("ui.catalog.hint_{}", kind.code())),
            fields_hint: t(lang, &format!("ui.catalog.fields_{}", kind.code())),
            form_error,
            page,
        },
    )
}

fn kind_of(q: Option<&str>) -> EntryKind {
    q.and_then(EntryKind::parse).unwrap_or(EntryKind::Resource)
}

/// The catalog chain, one catalog per tab.
pub async fn catalogs_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<CatalogQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/catalogs");
    let kind = kind_of(q.kind.as_deref());
    (jar, render_catalogs(&state, &p, page, kind, None, StatusCode::OK).await).into_response()
}

/// The create form of every catalog (which parts apply depends on the kind).
#[derive(Debug, Deserialize)]
pub struct EntryForm {
    csrf: String,
    kind: String,
    title: String,
    description: String,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    update_frequency: Option<String>,
    #[serde(default)]
    sector: Option<String>,
    #[serde(default)]
    keywords: Option<String>,
    #[serde(default)]
    not_authorizable: Option<String>,
    #[serde(default)]
    restriction_basis: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    /// One field per line: `name: reason` (demands), `name = grade` (development), `name` (social).
    #[serde(default)]
    fields: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    legal_basis: Option<String>,
}

fn some(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn parse_fields(kind: EntryKind, text: &str) -> Vec<FieldRequest> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let split = |seps: &[char]| match l.find(seps) {
                Some(i) => {
                    let sep_len = l[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                    (l[..i].trim().to_string(), some(Some(l[i + sep_len..].to_string())))
                }
                None => (l.to_string(), None),
            };
            match kind {
                EntryKind::Development => {
                    let (name, grade) = split(&['=']);
                    FieldRequest {
                        name,
                        grade,
                        ..FieldRequest::default()
                    }
                }
                EntryKind::Social => {
                    let (name, field_type) = split(&[':', '：']);
                    FieldRequest {
                        name,
                        field_type,
                        ..FieldRequest::default()
                    }
                }
                _ => {
                    let (name, reason) = split(&[':', '：']);
                    FieldRequest {
                        name,
                        reason,
                        ..FieldRequest::default()
                    }
                }
            }
        })
        .collect()
}

/// Creates a draft entry from the console.
pub async fn create_entry(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<EntryForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/catalogs", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let kind = kind_of(Some(&f.kind));
    let draft = EntryDraft {
        title: f.title,
        description: f.description,
        dataset: some(f.dataset),
        parent_id: some(f.parent_id),
        update_frequency: some(f.update_frequency),
        sector: some(f.sector),
        keywords: f
            .keywords
            .unwrap_or_default()
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        authorizable: (kind == EntryKind::Resource).then_some(f.not_authorizable.is_none()),
        restriction_basis: if f.not_authorizable.is_some() {
            some(f.restriction_basis)
        } else {
            None
        },
        fields: parse_fields(kind, &f.fields.unwrap_or_default()),
        purpose: some(f.purpose),
        source: some(f.source),
        legal_basis: some(f.legal_basis),
    };
    match state.catalog.create_entry(&p, kind, &draft).await {
        Ok(e) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: format!("{}：{}", t(page.lang, "ui.catalog.created"), e.title),
                secret: None,
            });
            (jar, render_catalogs(&state, &p, page, kind, None, StatusCode::OK).await).into_response()
        }
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            (jar, render_catalogs(&state, &p, page, kind, Some(msg), status).await).into_response()
        }
    }
}

/// An event on an entry from the console.
#[derive(Debug, Deserialize)]
pub struct EventForm {
    csrf: String,
    kind: String,
    event: String,
    #[serde(default)]
    note: Option<String>,
}

/// Sends an event to an entry (the buttons of the catalog page).
pub async fn entry_event(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Path(id): Path<String>,
    ConsoleForm(f): ConsoleForm<EventForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/catalogs", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let kind = kind_of(Some(&f.kind));
    let Some(event) = EntryEvent::parse(&f.event) else {
        return (jar, super::not_found_page(page.lang)).into_response();
    };
    match state.catalog.act_on_entry(&p, &id, event, f.note.as_deref()).await {
        Ok(e) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: format!("{}：{}", e.title, state_label(page.lang, e.state.code())),
                secret: None,
            });
            (jar, render_catalogs(&state, &p, page, kind, None, StatusCode::OK).await).into_response()
        }
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            (jar, render_catalogs(&state, &p, page, kind, Some(msg), status).await).into_response()
        }
    }
}

// ----- governance --------------------------------------------------------

struct ItemRow {
    id: String,
    kind: String,
    dataset: String,
    subject: String,
    detail: String,
    field: String,
    state: String,
    state_code: &'static str,
    deadline: String,
    overdue: bool,
    answer: String,
    can_answer: bool,
    can_close: bool,
}

#[derive(Template)]
#[template(path = "governance.html")]
struct GovernanceTpl {
    page: Page,
    items: Vec<ItemRow>,
    datasets: Vec<(String, String)>,
    overdue: usize,
    form_error: Option<String>,
}

async fn render_governance(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let items: Vec<ItemView> = match state.catalog.items(p, false).await {
        Ok(i) => i,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return super::pages::error_page(status, page, t(lang, "ui.nav.governance"), msg);
        }
    };
    let datasets: Vec<(String, String)> = state
        .catalog
        .list(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|(d, _)| d.current_version.is_some())
        .map(|(d, _)| (d.id.clone(), format!("{}（{}）", d.title, d.name)))
        .collect();
    let me = p.user_id.to_string();
    let own_org = p.org_id.to_string();
    let rows: Vec<ItemRow> = items
        .iter()
        .map(|i| ItemRow {
            id: i.id.clone(),
            kind: t(
                lang,
                match i.kind {
                    ItemKind::Quality => "ui.governance.quality",
                    ItemKind::Objection => "ui.governance.objection",
                },
            ),
            dataset: i.dataset_title.clone(),
            subject: i.subject.clone(),
            detail: i.detail.clone(),
            field: i.field.clone().unwrap_or_default(),
            state: state_label(lang, i.state.code()),
            state_code: i.state.code(),
            deadline: i.deadline.chars().take(10).collect(),
            overdue: i.overdue,
            answer: i.answer.clone().unwrap_or_default(),
            can_answer: i.state == shuyu_catalog::governance::ItemState::Open
                && p.has_role(Role::Provider)
                && i.provider_org_id == own_org,
            can_close: i.state != shuyu_catalog::governance::ItemState::Closed
                && (i.raised_by == me || p.has_role(Role::Authority)),
        })
        .collect();
    let overdue = rows.iter().filter(|r| r.overdue).count();
    html(
        status,
        &GovernanceTpl {
            page,
            items: rows,
            datasets,
            overdue,
            form_error,
        },
    )
}

/// Governance requests and objections: raise, answer, close; overdue ones marked.
pub async fn governance_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/governance");
    (jar, render_governance(&state, &p, page, None, StatusCode::OK).await).into_response()
}

/// Raise, answer or close from the console.
#[derive(Debug, Deserialize)]
pub struct GovernanceForm {
    csrf: String,
    /// `raise`, `answer` or `close`.
    action: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    dataset_id: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    deadline_days: Option<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// Handles the governance page's forms.
pub async fn governance_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<GovernanceForm>,
) -> Response {
    let (jar, mut page) = match form_page(&state, jar, &headers, Some(&p), "/console/governance", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let lang = page.lang;
    let id = f.id.clone().unwrap_or_default();
    let result = match f.action.as_str() {
        "raise" => {
            let days = match some(f.deadline_days) {
                None => Ok(None),
                Some(d) => d.parse::<i64>().map(Some).map_err(|_| {
                    ApiError::from(
                        shuyu_core::error::FieldError::new("deadline_days", "not_a_number")
                            .arg("field", "deadline_days"),
                    )
                }),
            };
            match days {
                Err(e) => Err(e),
                Ok(deadline_days) => state
                    .catalog
                    .raise(
                        &p,
                        &RaiseItem {
                            kind: if f.kind.as_deref() == Some("objection") {
                                ItemKind::Objection
                            } else {
                                ItemKind::Quality
                            },
                            dataset_id: f.dataset_id.unwrap_or_default(),
                            field: some(f.field),
                            subject: f.subject.unwrap_or_default(),
                            detail: f.detail.unwrap_or_default(),
                            deadline_days,
                        },
                    )
                    .await
                    .map(|_| "ui.governance.raised")
                    .map_err(ApiError::from),
            }
        }
        "answer" => {
            let outcome = if f.outcome.as_deref() == Some("corrected") {
                Outcome::Corrected
            } else {
                Outcome::NoFault
            };
            state
                .catalog
                .answer(&p, &id, f.answer.as_deref().unwrap_or(""), outcome)
                .await
                .map(|_| "ui.governance.answered")
                .map_err(ApiError::from)
        }
        "close" => state
            .catalog
            .close_or_reopen(&p, &id, None)
            .await
            .map(|_| "ui.governance.closed")
            .map_err(ApiError::from),
        _ => return (jar, super::not_found_page(lang)).into_response(),
    };
    match result {
        Ok(key) => {
            page.notice = Some(Notice {
                kind: "ok",
                text: t(lang, key),
                secret: None,
            });
            (jar, render_governance(&state, &p, page, None, StatusCode::OK).await).into_response()
        }
        Err(e) => {
            let (status, msg) = explain(e, lang);
            (jar, render_governance(&state, &p, page, Some(msg), status).await).into_response()
        }
    }
}
