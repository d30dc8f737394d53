//! Jobs, release review and products in the console. A developer submits a job from a
//! workspace (or only checks it), follows it, reads each output's gate report and asks for a
//! release with a remedy; a reviewer sees the output as the gate lets reviewers see it beside
//! the report and records the six points; an operator publishes what was released as a
//! product. Every figure shown is the engine's or the gate's: the pages never hold full data.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use shuyu_core::actor::Principal;
use shuyu_core::i18n::t;
use shuyu_engine::RenderedReleaseReport;
use shuyu_engine::views::{
    AppliedRules, Comparison, FlaggedCell, RenderedReport, ReportSummary, ReviewCopy, ReviewPoint,
};
use shuyu_engine::{
    DelistRequest, JobOutputSpec, JobRequest, JobView, OutputCheck, ProductKind, ProductView, PublishRequest,
    ReleaseRequest, ReleaseReview, ReleaseView, WorkspaceSummary,
};

use super::pages::{error_page, explain, form_page, page_for};
use super::{ConsoleForm, ConsoleUser, Page, html};
use crate::AppState;

/// Rows of an output a reviewer sees beside its report.
const REVIEW_ROWS: usize = 200;

/// A flagged cell as one line: its keys, and the column.
fn cell_label(c: &FlaggedCell) -> String {
    let mut s = c
        .keys
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(col) = &c.column {
        if !s.is_empty() {
            s.push_str(" · ");
        }
        s.push_str(col);
    }
    if s.is_empty() {
        s.push('—');
    }
    s
}

/// A finding as the pages show it.
struct FindingRow {
    id: String,
    result: String,
    title: String,
    explanation: String,
    remedy: Option<String>,
    /// The flagged cells by key (reviewers only).
    cells: Vec<String>,
    /// How many cells it flagged, as a band (everybody else).
    flagged: Option<String>,
}

/// A rendered report as the pages show it.
struct ReportView {
    verdict: String,
    findings: Vec<FindingRow>,
    /// The rules the checks applied: the grade, the threshold, k and the dominance share.
    rules: Option<(String, u64, u64, f64)>,
}

fn rules_row(r: &Option<AppliedRules>) -> Option<(String, u64, u64, f64)> {
    r.as_ref().map(|a| {
        (
            a.grade.clone().unwrap_or_else(|| "—".into()),
            a.rules.threshold,
            a.rules.k,
            a.rules.nk_share,
        )
    })
}

/// The reviewers' view of a report: the flagged cells by key.
fn report_view(r: &RenderedReport) -> ReportView {
    ReportView {
        verdict: r.verdict.code().to_string(),
        rules: rules_row(&r.rules),
        findings: r
            .checks
            .iter()
            .map(|f| FindingRow {
                id: f.id.clone(),
                result: f.result.code().to_string(),
                title: f.title.clone(),
                explanation: f.explanation.clone(),
                remedy: f.remedy.as_ref().map(|r| r.explanation.clone()),
                cells: f.cells.iter().take(50).map(cell_label).collect(),
                flagged: None,
            })
            .collect(),
    }
}

/// Everybody else's view of a report: outcomes and bands, no key value.
fn summary_view(r: &ReportSummary) -> ReportView {
    ReportView {
        verdict: r.verdict.code().to_string(),
        rules: rules_row(&r.rules),
        findings: r
            .checks
            .iter()
            .map(|f| FindingRow {
                id: f.id.clone(),
                result: f.result.code().to_string(),
                title: f.title.clone(),
                explanation: f.explanation.clone(),
                remedy: f.remedy.as_ref().map(|r| r.explanation.clone()),
                cells: Vec::new(),
                flagged: (f.flagged != "0").then(|| f.flagged.clone()),
            })
            .collect(),
    }
}

fn release_report_view(r: &RenderedReleaseReport) -> ReportView {
    match r {
        RenderedReleaseReport::Full(r) => report_view(r),
        RenderedReleaseReport::Summary(r) => summary_view(r),
    }
}

/// One output of a job with its report (never its size).
struct OutputRow {
    name: String,
    verdict: String,
    shape: Option<String>,
    report: ReportView,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsTpl {
    page: Page,
    workspaces: Vec<WorkspaceSummary>,
    ws: Option<WorkspaceSummary>,
    jobs: Vec<JobView>,
    job: Option<JobView>,
    outputs: Vec<OutputRow>,
    checks: Option<Vec<OutputCheck>>,
    name: String,
    sql: String,
    form_error: Option<String>,
}

impl JobsTpl {
    fn running(&self) -> bool {
        self.job
            .as_ref()
            .is_some_and(|j| j.state == "queued" || j.state == "running")
    }
}

/// Which workspace and job to show.
#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    ws: Option<String>,
    job: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn render_jobs(
    state: &AppState,
    p: &Principal,
    page: Page,
    ws: Option<&str>,
    job: Option<&str>,
    checks: Option<Vec<OutputCheck>>,
    form: (String, String),
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let title = t(lang, "ui.nav.jobs");
    let workspaces = match state.workspaces.list(p).await {
        Ok(l) => l,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, title, msg);
        }
    };
    let job = match job {
        Some(id) => match state.workspaces.job(p, id).await {
            Ok(j) => Some(j),
            Err(e) => {
                let (status, msg) = explain(e, lang);
                return error_page(status, page, title, msg);
            }
        },
        None => None,
    };
    let chosen = ws
        .map(str::to_string)
        .or_else(|| job.as_ref().map(|j| j.workspace_id.clone()))
        .or_else(|| workspaces.iter().find(|w| w.state == "open").map(|w| w.id.clone()));
    let ws = chosen.and_then(|id| workspaces.iter().find(|w| w.id == id).cloned());
    let jobs = match &ws {
        Some(w) => match state.workspaces.jobs_of(p, &w.id).await {
            Ok(j) => j,
            Err(e) => {
                let (status, msg) = explain(e, lang);
                return error_page(status, page, title, msg);
            }
        },
        None => Vec::new(),
    };
    let outputs = job
        .as_ref()
        .map(|j| {
            j.outputs
                .iter()
                .map(|o| OutputRow {
                    name: o.name.clone(),
                    verdict: o.verdict.clone(),
                    shape: o.shape.as_ref().map(|s| t(lang, &format!("ui.job.shape_{}", s.shape))),
                    report: summary_view(&o.report.render(lang)),
                })
                .collect()
        })
        .unwrap_or_default();
    let (name, sql) = form;
    html(
        status,
        &JobsTpl {
            page,
            workspaces,
            ws,
            jobs,
            job,
            outputs,
            checks,
            name,
            sql,
            form_error,
        },
    )
}

/// The jobs page (`?ws=` picks a workspace, `?job=` a job).
pub async fn jobs_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<JobsQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/jobs");
    let res = render_jobs(
        &state,
        &p,
        page,
        q.ws.as_deref(),
        q.job.as_deref(),
        None,
        (String::new(), String::new()),
        None,
        StatusCode::OK,
    )
    .await;
    (jar, res).into_response()
}

/// The job form: one named output; `mode` is `check` (plan only) or `submit`.
#[derive(Debug, Deserialize)]
pub struct JobForm {
    csrf: String,
    ws: String,
    name: String,
    sql: String,
    mode: String,
}

/// Checks or submits a job; a submitted job is shown as it runs.
pub async fn jobs_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<JobForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/jobs", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let req = JobRequest {
        outputs: vec![JobOutputSpec {
            name: f.name.trim().to_string(),
            sql: f.sql.clone(),
        }],
    };
    let form = (f.name.clone(), f.sql.clone());
    let res = if f.mode == "check" {
        match state.workspaces.check_job(&p, &f.ws, &req).await {
            Ok(c) => render_jobs(&state, &p, page, Some(&f.ws), None, Some(c), form, None, StatusCode::OK).await,
            Err(e) => {
                let (status, msg) = explain(e, page.lang);
                render_jobs(&state, &p, page, Some(&f.ws), None, None, form, Some(msg), status).await
            }
        }
    } else {
        match state.workspaces.submit_job(&p, &f.ws, &req).await {
            Ok(j) => Redirect::to(&format!("/console/jobs?ws={}&job={}", j.workspace_id, j.id)).into_response(),
            Err(e) => {
                let (status, msg) = explain(e, page.lang);
                render_jobs(&state, &p, page, Some(&f.ws), None, None, form, Some(msg), status).await
            }
        }
    };
    (jar, res).into_response()
}

/// A form naming one job.
#[derive(Debug, Deserialize)]
pub struct JobRef {
    csrf: String,
    job: String,
}

/// Cancels a queued or running job.
pub async fn jobs_cancel(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<JobRef>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/jobs", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let res = match state.workspaces.cancel_job(&p, &f.job).await {
        Ok(j) => Redirect::to(&format!("/console/jobs?ws={}&job={}", j.workspace_id, j.id)).into_response(),
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            let title = t(page.lang, "ui.nav.jobs");
            error_page(status, page, title, msg)
        }
    };
    (jar, res).into_response()
}

/// Asking for a release of one output.
#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    csrf: String,
    job: String,
    output: String,
    recipient: String,
    #[serde(default)]
    remedy: Option<String>,
}

/// Asks for a release; the release is shown with its (judged again) report.
pub async fn releases_request(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<ReleaseForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/releases", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let req = ReleaseRequest {
        job_id: f.job.clone(),
        output: f.output.clone(),
        recipient: f.recipient.clone(),
        remedy: f.remedy.clone().filter(|r| !r.is_empty()),
    };
    let res = match state.workspaces.request_release(&p, &req).await {
        Ok(r) => Redirect::to(&format!("/console/releases?id={}", r.id)).into_response(),
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render_jobs(
                &state,
                &p,
                page,
                None,
                Some(&f.job),
                None,
                (String::new(), String::new()),
                Some(msg),
                status,
            )
            .await
        }
    };
    (jar, res).into_response()
}

/// A release in the list or under review.
struct ReleaseRow {
    view: ReleaseView,
    report: ReportView,
}

/// A comparison with an earlier release, as reviewers see it.
struct ComparisonRow {
    release: String,
    keys: String,
    close: usize,
    unreadable: bool,
}

/// A reviewer's decision as shown.
struct DecisionRow {
    reviewer: String,
    approve: bool,
    reasons: String,
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesTpl {
    page: Page,
    list: Vec<ReleaseView>,
    current: Option<ReleaseRow>,
    copy: Option<ReviewCopy>,
    comparisons: Vec<ComparisonRow>,
    decisions: Vec<DecisionRow>,
    points: Vec<(&'static str, String)>,
    product: Option<ProductView>,
    can_publish: bool,
    form_error: Option<String>,
}

/// Which release to show.
#[derive(Debug, Deserialize)]
pub struct ReleasesQuery {
    id: Option<String>,
}

async fn render_releases(
    state: &AppState,
    p: &Principal,
    page: Page,
    id: Option<&str>,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let title = t(lang, "ui.nav.releases");
    let list = match state.workspaces.releases(p).await {
        Ok(l) => l,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, title, msg);
        }
    };
    let (mut current, mut copy, mut product, mut can_publish) = (None, None, None, false);
    let mut comparisons = Vec::new();
    if let Some(id) = id {
        let view = match state.workspaces.release(p, id).await {
            Ok(v) => v,
            Err(e) => {
                let (status, msg) = explain(e, lang);
                return error_page(status, page, title, msg);
            }
        };
        // The output is shown to its reviewers only, while it awaits review.
        if view.state == "requested"
            && view.can_review
            && let Ok(preview) = state.workspaces.release_preview(p, id, REVIEW_ROWS).await
        {
            copy = Some(preview.copy);
            comparisons = preview
                .comparisons
                .iter()
                .map(|c| match c {
                    Comparison::Compared { release, keys, groups } => ComparisonRow {
                        release: release.clone(),
                        keys: keys.join(", "),
                        close: groups.iter().filter(|g| g.discloses(10)).count(),
                        unreadable: false,
                    },
                    Comparison::Unreadable { release } => ComparisonRow {
                        release: release.clone(),
                        keys: String::new(),
                        close: 0,
                        unreadable: true,
                    },
                })
                .collect();
        }
        if view.state == "released" {
            product = state
                .workspaces
                .product_of_release(Some(p), &view.id)
                .await
                .unwrap_or_default();
            can_publish = product.is_none() && state.workspaces.may_publish(p, &view.id).await.unwrap_or(false);
        }
        current = Some(ReleaseRow {
            report: release_report_view(&view.report.render(lang)),
            view,
        });
    }
    let decisions = current
        .as_ref()
        .map(|c| {
            c.view
                .decisions
                .iter()
                .map(|d| DecisionRow {
                    reviewer: d.reviewer.clone(),
                    approve: d.approve,
                    reasons: d.reasons.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let points = ReviewPoint::ALL
        .iter()
        .map(|p| (p.code(), t(lang, &format!("gate.point.{}", p.code()))))
        .collect();
    html(
        status,
        &ReleasesTpl {
            page,
            list,
            current,
            copy,
            comparisons,
            decisions,
            points,
            product,
            can_publish,
            form_error,
        },
    )
}

/// The releases page: the queue, and one release with its output beside its report.
pub async fn releases_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<ReleasesQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/releases");
    let res = render_releases(&state, &p, page, q.id.as_deref(), None, StatusCode::OK).await;
    (jar, res).into_response()
}

/// Records a reviewer's decision: the six points (checkboxes `point_<code>`), reasons, and an
/// override reason per check that did not pass (`override_<check>`); `decision` approves or
/// rejects.
pub async fn releases_review(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/releases", &field("csrf")) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let id = field("id");
    let points = ReviewPoint::ALL
        .iter()
        .map(|pt| (*pt, f.contains_key(&format!("point_{}", pt.code()))))
        .collect();
    let overrides = f
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("override_")?.to_string(), v.trim().to_string())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let review = ReleaseReview {
        approve: field("decision") == "approve",
        points,
        reasons: field("reasons"),
        overrides,
    };
    let res = match state.workspaces.review_release(&p, &id, &review).await {
        Ok(r) => Redirect::to(&format!("/console/releases?id={}", r.id)).into_response(),
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render_releases(&state, &p, page, Some(&id), Some(msg), status).await
        }
    };
    (jar, res).into_response()
}

/// The released copy (minted again by the gate) for the release's developers.
pub async fn releases_download(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    match state.workspaces.download_release(&p, &id).await {
        Ok(r) => {
            let name = format!("release-{}", r.release());
            crate::api::csv_attachment(&name, r.into_value())
        }
        Err(e) => {
            let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/releases");
            let (status, msg) = explain(e, page.lang);
            let title = t(page.lang, "ui.nav.releases");
            (jar, error_page(status, page, title, msg)).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "products.html")]
struct ProductsTpl {
    page: Page,
    list: Vec<ProductView>,
    current: Option<ProductView>,
    form_error: Option<String>,
}

async fn render_products(
    state: &AppState,
    p: &Principal,
    page: Page,
    id: Option<&str>,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let title = t(lang, "ui.nav.products");
    let list = match state.workspaces.products(Some(p), false).await {
        Ok(l) => l,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, title, msg);
        }
    };
    let current = match id {
        Some(id) => match state.workspaces.product(Some(p), id).await {
            Ok(v) => Some(v),
            Err(e) => {
                let (status, msg) = explain(e, lang);
                return error_page(status, page, title, msg);
            }
        },
        None => None,
    };
    html(
        status,
        &ProductsTpl {
            page,
            list,
            current,
            form_error,
        },
    )
}

/// The product catalog (`?id=` shows one product).
pub async fn products_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Query(q): Query<ReleasesQuery>,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/products");
    let res = render_products(&state, &p, page, q.id.as_deref(), None, StatusCode::OK).await;
    (jar, res).into_response()
}

/// Publishing a release as a product.
#[derive(Debug, Deserialize)]
pub struct PublishForm {
    csrf: String,
    release: String,
    kind: String,
    title: String,
    #[serde(default)]
    summary: String,
    terms: String,
}

/// Publishes a released output as a product (an operator reviewing its request).
pub async fn products_publish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<PublishForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/releases", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let req = PublishRequest {
        release_id: f.release.clone(),
        kind: if f.kind == "dataset" {
            ProductKind::Dataset
        } else {
            ProductKind::Report
        },
        title: f.title,
        summary: f.summary,
        terms: f.terms,
    };
    let res = match state.workspaces.publish_product(&p, &req).await {
        Ok(v) => Redirect::to(&format!("/console/products?id={}", v.id)).into_response(),
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render_releases(&state, &p, page, Some(&f.release), Some(msg), status).await
        }
    };
    (jar, res).into_response()
}

/// Delisting a product.
#[derive(Debug, Deserialize)]
pub struct DelistForm {
    csrf: String,
    id: String,
    reason: String,
}

/// Delists a product with a reason.
pub async fn products_delist(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<DelistForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/products", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let req = DelistRequest { reason: f.reason };
    let res = match state.workspaces.delist_product(&p, &f.id, &req).await {
        Ok(v) => Redirect::to(&format!("/console/products?id={}", v.id)).into_response(),
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render_products(&state, &p, page, Some(&f.id), Some(msg), status).await
        }
    };
    (jar, res).into_response()
}

/// The product's content (minted again by the gate) for those it is for.
pub async fn products_content(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    match state.workspaces.download_product(&p, &id).await {
        Ok(r) => crate::api::csv_attachment(&format!("product-{id}"), r.into_value()),
        Err(e) => {
            let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/products");
            let (status, msg) = explain(e, page.lang);
            let title = t(page.lang, "ui.nav.products");
            (jar, error_page(status, page, title, msg)).into_response()
        }
    }
}
