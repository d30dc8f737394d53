//! The console's authorization-lifecycle pages: calls and applications (apply, review,
//! decide, notice and object), agreements (sign with one's own key, renew, suspend,
//! rectify, terminate) and data requests (request, review, the signed manifest). Each page
//! shows exactly the forms its viewer's part of the journey needs; the lifecycle service
//! decides and refuses, and its refusal is shown in the viewer's language.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use shuyu_catalog::chain::{EntryKind, EntryState};
use shuyu_core::actor::Principal;
use shuyu_core::error::FieldError;
use shuyu_core::i18n::{Lang, t};
use shuyu_core::party::{OrgKind, Role};
use shuyu_workflow::call::CallEvent;
use shuyu_workflow::contracts::{AgreementRequest, RectificationStep, SignWhat, message_to_sign};
use shuyu_workflow::requests::{DataRequestBody, NewDataRequest, OUTPUTS, RequestItem, ReviewDecision, RowScope};
use shuyu_workflow::review::ReviewEvent;
use shuyu_workflow::service::{
    ApplicationBody, Attestations, Audience, DataNeed, Decision, FieldNeed, LifecycleError, NewCall, Scenario,
};

use super::pages::{error_page, explain, form_page, page_for};
use super::{ConsoleForm, ConsoleUser, Notice, Page, html};
use crate::AppState;
use crate::problem::ApiError;

fn some(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn text(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("").trim().to_string()
}

fn date(field: &'static str, v: &Option<String>) -> Result<jiff::civil::Date, ApiError> {
    text(v)
        .parse()
        .map_err(|_| ApiError::from(FieldError::new(field, "not_a_date").arg("field", field)))
}

/// `name: reason` per line (a full-width colon works too).
fn field_lines(v: &Option<String>) -> Vec<FieldNeed> {
    text(v)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once([':', '：']) {
            Some((n, r)) => FieldNeed {
                name: n.trim().into(),
                reason: r.trim().into(),
            },
            None => FieldNeed {
                name: l.into(),
                reason: String::new(),
            },
        })
        .collect()
}

fn label(lang: Lang, code: &str) -> String {
    t(lang, &format!("ui.life.state.{code}"))
}

fn notice(page: &mut Page, key: &str) {
    page.notice = Some(Notice {
        kind: "ok",
        text: t(page.lang, key),
        secret: None,
    });
}

/// Re-renders a page after one form action: its notice on success, its error (in the
/// viewer's language, with the status the API would give) otherwise.
async fn after_action<F, Fut>(mut page: Page, result: Result<&'static str, ApiError>, render: F) -> Response
where
    F: FnOnce(Page, Option<String>, StatusCode) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    match result {
        Ok(key) => {
            notice(&mut page, key);
            render(page, None, StatusCode::OK).await
        }
        Err(e) => {
            let (status, msg) = explain(e, page.lang);
            render(page, Some(msg), status).await
        }
    }
}

// ----- calls and applications --------------------------------------------

struct CallRow {
    id: String,
    title: String,
    org_name: String,
    audience: String,
    state: String,
    state_code: String,
    deadline: String,
    can_publish: bool,
}

struct ObjectionRow {
    index: usize,
    text: String,
    answer: String,
}

struct AppRow {
    id: String,
    call_title: String,
    applicant: String,
    state: String,
    state_code: String,
    scenarios: String,
    /// The call's scoring criteria by name, in scoring order.
    criteria_names: String,
    /// What an expert scores: each scenario with its purpose and expected value, the data
    /// needs with their reasons, the attestations, the attachments.
    detail_scenarios: Vec<String>,
    detail_needs: Vec<String>,
    detail_attestations: String,
    detail_attachments: Vec<String>,
    aggregate: String,
    progress: String,
    notice_until: String,
    objections: Vec<ObjectionRow>,
    can_submit: bool,
    can_start_review: bool,
    can_declare: bool,
    can_score: bool,
    can_decide: bool,
    can_object: bool,
    can_answer: bool,
    can_close_notice: bool,
    can_draft_agreement: bool,
}

/// A decision chosen but not yet confirmed: the page names the outcome and asks again.
struct PendingDecision {
    id: String,
    /// `approve` or `reject`.
    outcome: String,
    /// The outcome in words.
    label: String,
    /// The confirming button's words.
    button: String,
    approval_ref: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsTpl {
    pending: Option<PendingDecision>,
    page: Page,
    calls: Vec<CallRow>,
    apps: Vec<AppRow>,
    can_create_call: bool,
    open_calls: Vec<(String, String)>,
    entries: Vec<(String, String)>,
    operator_applicant: bool,
    sectors: Vec<(String, String)>,
    today: String,
    form_error: Option<String>,
}

async fn render_calls(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    render_calls_with(state, p, page, form_error, status, None).await
}

async fn render_calls_with(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
    pending: Option<PendingDecision>,
) -> Response {
    let lang = page.lang;
    let life = &state.lifecycle;
    let (calls, apps) = match (life.calls(p).await, life.applications(p, None).await) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.calls"), msg);
        }
    };
    // The listing carries summaries; each row shows its review and notice too.
    let mut full = Vec::with_capacity(apps.len());
    for a in apps {
        full.push(life.application(p, &a.id).await.unwrap_or(a));
    }
    let apps = full;
    let me_org = p.org_id.to_string();
    let me_user = p.user_id.to_string();
    let agreements = life.agreements(p).await.unwrap_or_default();
    let call_rows = calls
        .iter()
        .map(|c| CallRow {
            id: c.id.clone(),
            title: c.title.clone(),
            org_name: c.org_name.clone(),
            audience: t(
                lang,
                &format!(
                    "kind.{}",
                    if c.audience == Audience::Developer {
                        "developer"
                    } else {
                        "operator"
                    }
                ),
            ),
            state: label(lang, &c.state),
            state_code: c.state.clone(),
            deadline: c.deadline.clone(),
            can_publish: c.org_id == me_org && c.state == "draft",
        })
        .collect();
    let app_rows = apps
        .iter()
        .map(|a| {
            let call = calls.iter().find(|c| c.id == a.call_id);
            let issuer = call.is_some_and(|c| c.org_id == me_org);
            let mine = a.org_id == me_org;
            let my_expert_state = a
                .review
                .as_ref()
                .and_then(|r| r.experts.iter().find(|(u, _)| *u == me_user))
                .map(|(_, s)| s.clone());
            let open_objections = a
                .notice
                .as_ref()
                .map(|n| n.objections.iter().any(|o| o.answer.is_none()))
                .unwrap_or(false);
            AppRow {
                id: a.id.clone(),
                call_title: call.map(|c| c.title.clone()).unwrap_or_default(),
                applicant: a.org_name.clone(),
                state: label(lang, &a.state),
                state_code: a.state.clone(),
                scenarios: a
                    .body
                    .scenarios
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join("、"),
                criteria_names: call.map(|c| c.body.criteria.join("、")).unwrap_or_default(),
                detail_scenarios: a
                    .body
                    .scenarios
                    .iter()
                    .map(|s| {
                        format!(
                            "{}（{}）：{} — {}",
                            s.name,
                            t(lang, &format!("ui.sector.{}", s.sector)),
                            s.purpose,
                            s.expected_value
                        )
                    })
                    .collect(),
                detail_needs: a
                    .body
                    .data_needs
                    .iter()
                    .flat_map(|n| n.fields.iter().map(|f| format!("{}：{}", f.name, f.reason)))
                    .collect(),
                detail_attestations: {
                    let at = &a.body.attestations;
                    [
                        (at.good_credit, "ui.life.att_credit"),
                        (at.security_systems, "ui.life.att_systems"),
                        (at.mlps_level3, "ui.life.att_mlps"),
                        (at.crypto_assessment, "ui.life.att_crypto"),
                    ]
                    .iter()
                    .map(|(yes, k)| format!("{}{}", if *yes { "✓ " } else { "✗ " }, t(lang, k)))
                    .chain(std::iter::once(format!(
                        "{}：{}",
                        t(lang, "ui.life.att_officer"),
                        at.security_officer
                    )))
                    .collect::<Vec<_>>()
                    .join("；")
                },
                detail_attachments: a
                    .attachments
                    .iter()
                    .map(|f| {
                        format!(
                            "{}（{}，{} KiB，SHA-256 {}…）",
                            f.name,
                            f.media_type,
                            (f.size + 1023) / 1024,
                            f.sha256.chars().take(12).collect::<String>()
                        )
                    })
                    .collect(),
                aggregate: a
                    .review
                    .as_ref()
                    .map(|r| {
                        r.aggregate
                            .iter()
                            .map(|x| format!("{x:.1}"))
                            .collect::<Vec<_>>()
                            .join(" / ")
                    })
                    .unwrap_or_default(),
                progress: a
                    .review
                    .as_ref()
                    .map(|r| format!("{}/{}", r.scored, r.quorum))
                    .unwrap_or_default(),
                notice_until: a.notice.as_ref().map(|n| n.until.clone()).unwrap_or_default(),
                objections: a
                    .notice
                    .as_ref()
                    .map(|n| {
                        n.objections
                            .iter()
                            .enumerate()
                            .map(|(i, o)| ObjectionRow {
                                index: i,
                                text: o.text.clone(),
                                answer: o.answer.clone().unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                can_submit: mine && a.state == "draft",
                can_start_review: issuer && a.state == "submitted",
                can_declare: a.state == "in_review" && my_expert_state.as_deref() == Some("assigned"),
                can_score: a.state == "in_review" && my_expert_state.as_deref() == Some("cleared"),
                can_decide: issuer && a.state == "in_review",
                can_object: a.state == "on_notice" && !mine,
                can_answer: issuer && open_objections,
                can_close_notice: issuer && a.state == "on_notice",
                can_draft_agreement: issuer
                    && a.state == "cleared"
                    && !agreements
                        .iter()
                        .any(|g| g.document.grantee_org == a.org_id && g.document.scope == a.body),
            }
        })
        .collect();
    let applicant_kind = match p.org_kind {
        OrgKind::Operator => Some(Audience::Operator),
        OrgKind::Developer => Some(Audience::Developer),
        _ => None,
    };
    let open_calls: Vec<(String, String)> = calls
        .iter()
        .filter(|c| c.accepts_applications && Some(c.audience) == applicant_kind)
        .map(|c| (c.id.clone(), format!("{}（{}）", c.title, c.org_name)))
        .collect();
    let entry_kind = if p.org_kind == OrgKind::Operator {
        EntryKind::Resource
    } else {
        EntryKind::Development
    };
    let entries = state
        .catalog
        .list_entries(p, entry_kind, Some(EntryState::Published))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let fields = e
                .body
                .fields
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
                .join(", ");
            (e.id, format!("{}（{}：{}）", e.title, e.org_name, fields))
        })
        .collect();
    let sectors = shuyu_catalog::entries::SECTORS
        .iter()
        .map(|s| (s.to_string(), t(lang, &format!("ui.sector.{s}"))))
        .collect();
    html(
        status,
        &CallsTpl {
            pending,
            today: shuyu_workflow::service::city_today(state.identity.clock().now()).to_string(),
            page,
            calls: call_rows,
            apps: app_rows,
            can_create_call: p.has_role(Role::Authority) || p.has_role(Role::Operator),
            open_calls,
            entries,
            operator_applicant: p.org_kind == OrgKind::Operator,
            sectors,
            form_error,
        },
    )
}

/// Calls for applications and applications, with the viewer's part of each.
pub async fn calls_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/calls");
    (jar, render_calls(&state, &p, page, None, StatusCode::OK).await).into_response()
}

/// Every form of the calls page (`action` says which).
#[derive(Debug, Deserialize)]
pub struct CallsForm {
    csrf: String,
    action: String,
    id: Option<String>,
    title: Option<String>,
    conditions: Option<String>,
    audience: Option<String>,
    deadline: Option<String>,
    criteria: Option<String>,
    notice_days: Option<String>,
    quorum: Option<String>,
    scenario: Option<String>,
    purpose: Option<String>,
    sector: Option<String>,
    expected_value: Option<String>,
    public_welfare: Option<String>,
    entry_id: Option<String>,
    fields: Option<String>,
    good_credit: Option<String>,
    security_systems: Option<String>,
    security_officer: Option<String>,
    mlps_level3: Option<String>,
    crypto_assessment: Option<String>,
    experts: Option<String>,
    conflict: Option<String>,
    scores: Option<String>,
    /// The decision's outcome, chosen by the button pressed: `approve` or `reject` (no default).
    outcome: Option<String>,
    /// `yes` once the page named the outcome and it was confirmed.
    confirm: Option<String>,
    approval_ref: Option<String>,
    reason: Option<String>,
    objection: Option<String>,
    index: Option<String>,
    answer: Option<String>,
    term_start: Option<String>,
    term_end: Option<String>,
}

fn list(v: &Option<String>) -> Vec<String> {
    text(v)
        .split([',', '，', '、', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

async fn calls_action(state: &AppState, p: &Principal, f: &CallsForm) -> Result<&'static str, ApiError> {
    let life = &state.lifecycle;
    let id = text(&f.id);
    match f.action.as_str() {
        "create_call" => {
            let c = NewCall {
                title: text(&f.title),
                conditions: text(&f.conditions),
                audience: if f.audience.as_deref() == Some("developer") {
                    Audience::Developer
                } else {
                    Audience::Operator
                },
                deadline: date("deadline", &f.deadline)?,
                criteria: list(&f.criteria),
                notice_days: some(&f.notice_days).and_then(|d| d.parse().ok()),
                quorum: some(&f.quorum).and_then(|d| d.parse().ok()),
            };
            life.create_call(p, &c).await?;
            Ok("ui.life.call_created")
        }
        "publish" => {
            life.call_event(p, &id, CallEvent::Publish).await?;
            Ok("ui.life.call_published")
        }
        "apply" => {
            let body = ApplicationBody {
                scenarios: vec![Scenario {
                    name: text(&f.scenario),
                    purpose: text(&f.purpose),
                    sector: text(&f.sector),
                    expected_value: text(&f.expected_value),
                    public_welfare: f.public_welfare.is_some(),
                }],
                data_needs: vec![DataNeed {
                    entry_id: text(&f.entry_id),
                    fields: field_lines(&f.fields),
                }],
                attestations: Attestations {
                    good_credit: f.good_credit.is_some(),
                    security_systems: f.security_systems.is_some(),
                    security_officer: text(&f.security_officer),
                    mlps_level3: f.mlps_level3.is_some(),
                    crypto_assessment: f.crypto_assessment.is_some(),
                },
            };
            let app = life.create_application(p, &id, &body).await?;
            life.submit_application(p, &app.id).await?;
            Ok("ui.life.applied")
        }
        "submit" => {
            life.submit_application(p, &id).await?;
            Ok("ui.life.applied")
        }
        "start_review" => {
            life.start_review(p, &id, &list(&f.experts)).await?;
            Ok("ui.life.review_started")
        }
        "declare" => {
            life.expert(
                p,
                &id,
                ReviewEvent::Declare {
                    conflict: f.conflict.is_some(),
                },
            )
            .await?;
            Ok("ui.life.declared")
        }
        "score" => {
            let scores: Result<Vec<u8>, _> = list(&f.scores).iter().map(|s| s.parse::<u8>()).collect();
            let scores =
                scores.map_err(|_| ApiError::from(FieldError::new("scores", "not_a_number").arg("field", "scores")))?;
            life.expert(p, &id, ReviewEvent::Score { scores }).await?;
            Ok("ui.life.scored")
        }
        "decide" => {
            let approved = match text(&f.outcome).as_str() {
                "approve" => true,
                "reject" => false,
                _ => {
                    return Err(ApiError::from(
                        FieldError::new("outcome", "required").arg("field", "outcome"),
                    ));
                }
            };
            let d = Decision {
                approved,
                approval_ref: text(&f.approval_ref),
                reason: text(&f.reason),
            };
            life.decide(p, &id, &d).await?;
            Ok("ui.life.decided")
        }
        "object" => {
            life.object(p, &id, &text(&f.objection)).await?;
            Ok("ui.life.objected")
        }
        "answer" => {
            let index: usize = text(&f.index).parse().unwrap_or(usize::MAX);
            life.answer_objection(p, &id, index, &text(&f.answer)).await?;
            Ok("ui.life.answered")
        }
        "close_notice" => {
            life.clear_notice(p, &id).await?;
            Ok("ui.life.notice_closed")
        }
        "draft_agreement" => {
            let r = AgreementRequest {
                term_start: date("term_start", &f.term_start)?,
                term_end: date("term_end", &f.term_end)?,
                clauses: Default::default(),
            };
            life.draft_agreement(p, &id, &r).await?;
            Ok("ui.life.agreement_drafted")
        }
        _ => Err(LifecycleError::NotFound("event").into()),
    }
}

/// Handles the calls page's forms.
pub async fn calls_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<CallsForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/calls", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    // A decision is taken in two steps: the button chooses the outcome, the page names it
    // and asks for a confirmation; only the confirmed post decides (a mis-click decides nothing).
    if f.action == "decide" && f.confirm.as_deref() != Some("yes") {
        let outcome = text(&f.outcome);
        if outcome == "approve" || outcome == "reject" {
            let lang = page.lang;
            let pending = PendingDecision {
                id: text(&f.id),
                label: t(lang, &format!("ui.life.outcome_{outcome}")),
                button: t(lang, &format!("ui.life.confirm_{outcome}")),
                outcome,
                approval_ref: text(&f.approval_ref),
                reason: text(&f.reason),
            };
            let res = render_calls_with(&state, &p, page, None, StatusCode::OK, Some(pending)).await;
            return (jar, res).into_response();
        }
    }
    let res = after_action(page, calls_action(&state, &p, &f).await, |page, error, status| {
        render_calls(&state, &p, page, error, status)
    })
    .await;
    (jar, res).into_response()
}

// ----- agreements ---------------------------------------------------------

struct SignatureRow {
    what: String,
    party: String,
    verified: bool,
}

struct AgreementRow {
    id: String,
    kind: String,
    grantor: String,
    grantee: String,
    term: String,
    renewed_until: String,
    state: String,
    state_code: String,
    effective: bool,
    digest: String,
    message_agreement: String,
    message_commitment: String,
    signatures: Vec<SignatureRow>,
    rect_open: String,
    rect_deadline: String,
    rect_report: String,
    rect_closed: usize,
    is_grantor: bool,
    is_grantee: bool,
    can_sign: bool,
    can_commit: bool,
    /// The grantor's buttons that apply in this state.
    events: Vec<(&'static str, String)>,
}

struct CustomRow {
    id: String,
    title: String,
    description: String,
    state: String,
    state_code: String,
    cost: String,
    billed: String,
    wanted_by: String,
    overdue: bool,
    can_estimate: bool,
    can_accept: bool,
    can_deliver: bool,
    can_decline: bool,
}

#[derive(Template)]
#[template(path = "agreements.html")]
struct AgreementsTpl {
    page: Page,
    rows: Vec<AgreementRow>,
    can_sign_at_all: bool,
    customs: Vec<CustomRow>,
    custom_agreements: Vec<(String, String)>,
    form_error: Option<String>,
}

fn yuan(cents: u64) -> String {
    format!("¥{}.{:02}", cents / 100, cents % 100)
}

async fn render_agreements(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let all = match state.lifecycle.agreements(p).await {
        Ok(a) => a,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.agreements"), msg);
        }
    };
    let me = p.org_id.to_string();
    let orgs: std::collections::HashMap<String, String> = state
        .identity
        .list_orgs(p, 1000, 0)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect();
    let name = |id: &str| orgs.get(id).cloned().unwrap_or_else(|| id.to_string());
    let rows = all
        .iter()
        .map(|a| {
            let d = &a.document;
            let is_grantor = d.grantor_org == me;
            let is_grantee = d.grantee_org == me;
            let signed = |what: SignWhat, party: &str| {
                a.signatures
                    .iter()
                    .any(|(s, _)| s.what == what && format!("{:?}", s.party).eq_ignore_ascii_case(party))
            };
            let open = a.rectification.open.as_ref();
            AgreementRow {
                id: d.id.clone(),
                kind: t(lang, &format!("ui.life.kind_{}", d.kind)),
                grantor: name(&d.grantor_org),
                grantee: name(&d.grantee_org),
                term: format!("{} — {}", d.term_start, d.term_end),
                renewed_until: a.renewed_until.clone().unwrap_or_default(),
                state: label(lang, &a.state),
                state_code: a.state.clone(),
                effective: a.effective,
                digest: a.digest.clone(),
                message_agreement: message_to_sign(&a.digest, SignWhat::Agreement),
                message_commitment: message_to_sign(&a.digest, SignWhat::Commitment),
                signatures: a
                    .signatures
                    .iter()
                    .map(|(s, ok)| SignatureRow {
                        what: t(
                            lang,
                            &format!(
                                "ui.life.sign_{}",
                                if s.what == SignWhat::Agreement {
                                    "agreement"
                                } else {
                                    "commitment"
                                }
                            ),
                        ),
                        party: t(
                            lang,
                            &format!("ui.life.party_{}", format!("{:?}", s.party).to_lowercase()),
                        ),
                        verified: *ok,
                    })
                    .collect(),
                rect_open: open.map(|c| c.violation.clone()).unwrap_or_default(),
                rect_deadline: open.map(|c| c.rectification.deadline.to_string()).unwrap_or_default(),
                rect_report: open.and_then(|c| c.report.clone()).unwrap_or_default(),
                rect_closed: a.rectification.closed.len(),
                is_grantor,
                is_grantee,
                can_sign: a.state == "signing"
                    && ((is_grantor && !signed(SignWhat::Agreement, "grantor"))
                        || (is_grantee && !signed(SignWhat::Agreement, "grantee"))),
                can_commit: a.state == "signing" && is_grantee && !signed(SignWhat::Commitment, "grantee"),
                events: if is_grantor {
                    match a.state.as_str() {
                        "draft" => vec!["issue"],
                        "active" => vec!["suspend", "terminate"],
                        "suspended" => vec!["restore", "terminate"],
                        _ => Vec::new(),
                    }
                    .into_iter()
                    .map(|e| (e, t(lang, &format!("ui.life.event_{e}"))))
                    .collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let customs = state
        .lifecycle
        .custom_requests(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let provider = c.provider_org == me;
            let requester = c.requester_org == me;
            CustomRow {
                state: label(lang, &format!("custom_{}", c.state)),
                cost: c.cost_cents.map(yuan).unwrap_or_default(),
                billed: c.billed_cents.map(yuan).unwrap_or_default(),
                can_estimate: provider && matches!(c.state.as_str(), "requested" | "estimated"),
                can_accept: requester && c.state == "estimated",
                can_deliver: provider && c.state == "accepted",
                can_decline: (provider || requester)
                    && matches!(c.state.as_str(), "requested" | "estimated" | "accepted"),
                id: c.id,
                title: c.title,
                description: c.body.description,
                state_code: c.state,
                wanted_by: c.wanted_by,
                overdue: c.overdue,
            }
        })
        .collect();
    let custom_agreements = all
        .iter()
        .filter(|a| a.document.grantee_org == me && a.effective)
        .map(|a| {
            (
                a.document.id.clone(),
                format!(
                    "{} → {}（{}）",
                    name(&a.document.grantor_org),
                    name(&a.document.grantee_org),
                    a.document.term_end
                ),
            )
        })
        .collect();
    html(
        status,
        &AgreementsTpl {
            page,
            rows,
            can_sign_at_all: p.has_role(Role::Authority) || p.has_role(Role::Operator) || p.has_role(Role::Developer),
            customs,
            custom_agreements,
            form_error,
        },
    )
}

/// The viewer's agreements: sign, renew, sanction.
pub async fn agreements_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/agreements");
    (jar, render_agreements(&state, &p, page, None, StatusCode::OK).await).into_response()
}

/// Every form of the agreements page.
#[derive(Debug, Deserialize)]
pub struct AgreementsForm {
    csrf: String,
    action: String,
    id: Option<String>,
    public_key: Option<String>,
    what: Option<String>,
    signature: Option<String>,
    end: Option<String>,
    violation: Option<String>,
    suspend: Option<String>,
    report: Option<String>,
    accepted: Option<String>,
    note: Option<String>,
    title: Option<String>,
    description: Option<String>,
    wanted_by: Option<String>,
    cost_yuan: Option<String>,
}

/// "1234.5" yuan as fen, or a field error.
fn fen(v: &Option<String>) -> Result<u64, ApiError> {
    let bad = || ApiError::from(FieldError::new("cost_yuan", "not_a_number").arg("field", "cost_yuan"));
    let t = text(v);
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if frac.len() > 2 || whole.is_empty() {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
}

async fn agreements_action(state: &AppState, p: &Principal, f: &AgreementsForm) -> Result<&'static str, ApiError> {
    use shuyu_workflow::agreement::Event;
    let life = &state.lifecycle;
    let id = text(&f.id);
    let event = |e: Event| async move { life.agreement_event(p, &id, e).await.map(|_| ()) };
    match f.action.as_str() {
        "signing_key" => {
            life.register_signing_key(p, &text(&f.public_key)).await?;
            Ok("ui.life.key_registered")
        }
        "sign" => {
            let what = if f.what.as_deref() == Some("commitment") {
                SignWhat::Commitment
            } else {
                SignWhat::Agreement
            };
            life.sign_agreement(p, &text(&f.id), what, &text(&f.signature)).await?;
            Ok("ui.life.signed")
        }
        "issue" => {
            event(Event::Issue { objections_open: 0 }).await?;
            Ok("ui.life.issued")
        }
        "suspend" => {
            event(Event::Suspend).await?;
            Ok("ui.life.suspended")
        }
        "restore" => {
            event(Event::Restore).await?;
            Ok("ui.life.restored")
        }
        "terminate" => {
            event(Event::Terminate).await?;
            Ok("ui.life.terminated")
        }
        "cancel" => {
            event(Event::Cancel).await?;
            Ok("ui.life.cancelled")
        }
        "renew" => {
            event(Event::Renew {
                end: date("end", &f.end)?,
            })
            .await?;
            Ok("ui.life.renewed")
        }
        "rect_order" => {
            let step = RectificationStep::Order {
                violation: text(&f.violation),
                suspend: f.suspend.is_some(),
            };
            life.rectification(p, &text(&f.id), step).await?;
            Ok("ui.life.rect_ordered")
        }
        "rect_report" => {
            let step = RectificationStep::Report {
                report: text(&f.report),
            };
            life.rectification(p, &text(&f.id), step).await?;
            Ok("ui.life.rect_reported")
        }
        "custom_create" => {
            let n = shuyu_workflow::custom_requests::NewCustomRequest {
                agreement_id: text(&f.id),
                title: text(&f.title),
                body: shuyu_workflow::custom_requests::CustomBody {
                    description: text(&f.description),
                    data: String::new(),
                },
                wanted_by: date("wanted_by", &f.wanted_by)?,
            };
            life.create_custom_request(p, &n).await?;
            Ok("ui.life.custom_created")
        }
        "custom_estimate" | "custom_accept" | "custom_deliver" | "custom_decline" => {
            use shuyu_workflow::custom_requests::CustomStep;
            let step = match f.action.as_str() {
                "custom_estimate" => CustomStep::Estimate {
                    cost_cents: fen(&f.cost_yuan)?,
                },
                "custom_accept" => CustomStep::AcceptCharge,
                "custom_deliver" => CustomStep::Deliver,
                _ => CustomStep::Decline,
            };
            life.custom_request_step(p, &text(&f.id), step).await?;
            Ok("ui.life.custom_updated")
        }
        "rect_decide" => {
            let step = RectificationStep::Decide {
                accepted: f.accepted.as_deref() == Some("yes"),
                note: text(&f.note),
            };
            life.rectification(p, &text(&f.id), step).await?;
            Ok("ui.life.rect_decided")
        }
        _ => Err(LifecycleError::NotFound("event").into()),
    }
}

/// Handles the agreements page's forms.
pub async fn agreements_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<AgreementsForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/agreements", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let res = after_action(page, agreements_action(&state, &p, &f).await, |page, error, status| {
        render_agreements(&state, &p, page, error, status)
    })
    .await;
    (jar, res).into_response()
}

// ----- data requests --------------------------------------------------------

struct RequestRow {
    id: String,
    scenario: String,
    state: String,
    state_code: String,
    revision: u32,
    in_force: bool,
    items: String,
    pending: usize,
    note: String,
    manifest_digest: String,
    manifest_signature: String,
    manifest_json: String,
    changes: Vec<String>,
    mine: bool,
    can_review: bool,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsTpl {
    page: Page,
    rows: Vec<RequestRow>,
    agreements: Vec<(String, String)>,
    scenarios: Vec<String>,
    entries: Vec<(String, String)>,
    outputs: Vec<(String, String)>,
    form_error: Option<String>,
}

async fn render_requests(
    state: &AppState,
    p: &Principal,
    page: Page,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = page.lang;
    let all = match state.lifecycle.data_requests(p).await {
        Ok(a) => a,
        Err(e) => {
            let (status, msg) = explain(e, lang);
            return error_page(status, page, t(lang, "ui.nav.requests"), msg);
        }
    };
    let me = p.org_id.to_string();
    let rows = all
        .iter()
        .map(|r| RequestRow {
            id: r.id.clone(),
            scenario: r.scenario.clone(),
            state: label(lang, &r.state),
            state_code: r.state.clone(),
            revision: r.revision,
            in_force: r.in_force,
            items: r
                .body
                .items
                .iter()
                .map(|i| {
                    i.fields
                        .iter()
                        .map(|f| format!("{}（{}）", f.name, f.reason))
                        .collect::<Vec<_>>()
                        .join("、")
                })
                .collect::<Vec<_>>()
                .join("；"),
            pending: r.pending.len(),
            note: r.note.clone().unwrap_or_default(),
            manifest_digest: r.manifest.as_ref().map(|m| m.digest.clone()).unwrap_or_default(),
            manifest_signature: r.manifest.as_ref().map(|m| m.signature.clone()).unwrap_or_default(),
            manifest_json: r
                .manifest
                .as_ref()
                .and_then(|m| serde_json::to_string_pretty(&m.manifest).ok())
                .unwrap_or_default(),
            changes: r
                .manifest
                .as_ref()
                .map(|m| {
                    m.changes
                        .iter()
                        .map(|c| format!("{}：+{} −{}", c.what, c.added.join(","), c.removed.join(",")))
                        .collect()
                })
                .unwrap_or_default(),
            mine: r.requester_org == me,
            can_review: r.state == "in_review" && r.pending.contains(&me),
        })
        .collect();
    let agreements: Vec<_> = state
        .lifecycle
        .agreements(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.document.grantee_org == me && a.effective)
        .collect();
    let scenarios = agreements
        .iter()
        .flat_map(|a| a.document.scope.scenarios.iter().map(|s| s.name.clone()))
        .collect();
    let agreements = agreements
        .iter()
        .map(|a| {
            (
                a.document.id.clone(),
                format!(
                    "{} — {}（{}）",
                    a.document.term_start, a.document.term_end, a.document.id
                ),
            )
        })
        .collect();
    let entries = state
        .catalog
        .list_entries(p, EntryKind::Development, Some(EntryState::Published))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let fields = e
                .body
                .fields
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
                .join(", ");
            (e.id, format!("{}（{}）", e.title, fields))
        })
        .collect();
    let outputs = OUTPUTS
        .iter()
        .map(|o| (o.to_string(), t(lang, &format!("ui.life.output_{o}"))))
        .collect();
    html(
        status,
        &RequestsTpl {
            page,
            rows,
            agreements,
            scenarios,
            entries,
            outputs,
            form_error,
        },
    )
}

/// Data requests: the requester's lists, the reviewers' queue, the signed manifests.
pub async fn requests_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
) -> Response {
    let (jar, page) = page_for(&state, jar, &headers, Some(&p), "/console/data-requests");
    (jar, render_requests(&state, &p, page, None, StatusCode::OK).await).into_response()
}

/// Every form of the data-requests page.
#[derive(Debug, Deserialize)]
pub struct RequestsForm {
    csrf: String,
    action: String,
    id: Option<String>,
    agreement_id: Option<String>,
    scenario: Option<String>,
    entry_id: Option<String>,
    fields: Option<String>,
    region: Option<String>,
    purpose: Option<String>,
    retention_days: Option<String>,
    security_measures: Option<String>,
    output_statistics: Option<String>,
    output_report: Option<String>,
    output_model: Option<String>,
    output_verification: Option<String>,
    output_dataset: Option<String>,
    note: Option<String>,
}

impl RequestsForm {
    /// The output kinds ticked (one checkbox each).
    fn outputs(&self) -> Vec<String> {
        [
            ("statistics", &self.output_statistics),
            ("report", &self.output_report),
            ("model", &self.output_model),
            ("verification", &self.output_verification),
            ("dataset", &self.output_dataset),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.to_string())
        .collect()
    }
}

async fn requests_action(state: &AppState, p: &Principal, f: &RequestsForm) -> Result<&'static str, ApiError> {
    let life = &state.lifecycle;
    let id = text(&f.id);
    match f.action.as_str() {
        "create" => {
            let retention = text(&f.retention_days);
            let retention_days = if retention.is_empty() {
                0
            } else {
                retention.parse().map_err(|_| {
                    ApiError::from(FieldError::new("retention_days", "not_a_number").arg("field", "retention_days"))
                })?
            };
            let n = NewDataRequest {
                agreement_id: text(&f.agreement_id),
                scenario: text(&f.scenario),
                body: DataRequestBody {
                    items: vec![RequestItem {
                        entry_id: text(&f.entry_id),
                        fields: field_lines(&f.fields),
                    }],
                    rows: RowScope {
                        region: some(&f.region),
                        from: None,
                        to: None,
                    },
                    purpose: text(&f.purpose),
                    retention_days,
                    security_measures: text(&f.security_measures),
                    outputs: f.outputs(),
                    masking: Vec::new(),
                },
            };
            let r = life.create_data_request(p, &n).await?;
            life.data_request_event(p, &r.id, "submit").await?;
            Ok("ui.life.request_submitted")
        }
        "submit" | "amend" | "withdraw" => {
            life.data_request_event(p, &id, &f.action).await?;
            Ok("ui.life.request_updated")
        }
        "approve" | "return" | "reject" => {
            let d = match f.action.as_str() {
                "approve" => ReviewDecision::Approve,
                "return" => ReviewDecision::Return,
                _ => ReviewDecision::Reject,
            };
            life.review_data_request(p, &id, d, some(&f.note).as_deref()).await?;
            Ok("ui.life.request_reviewed")
        }
        _ => Err(LifecycleError::NotFound("event").into()),
    }
}

/// Handles the data-requests page's forms. For its requester this runs beneath the
/// agreement: when the agreement is not in force the refusal is shown.
pub async fn requests_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ConsoleUser(p): ConsoleUser,
    ConsoleForm(f): ConsoleForm<RequestsForm>,
) -> Response {
    let (jar, page) = match form_page(&state, jar, &headers, Some(&p), "/console/data-requests", &f.csrf) {
        Ok(x) => x,
        Err(refused) => return *refused,
    };
    let res = after_action(page, requests_action(&state, &p, &f).await, |page, error, status| {
        render_requests(&state, &p, page, error, status)
    })
    .await;
    (jar, res).into_response()
}
