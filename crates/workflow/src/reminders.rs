//! Reminders (待办): what the lifecycle waits for from the principal's organisation, with
//! its deadline — lists to review, signatures to give, renewals whose window is open,
//! rectifications to report or decide, custom requests to estimate, accept or deliver,
//! applications to send to a panel, score, decide, answer objections to or take off notice.
//! Computed from the stored states on request, so they never drift from them.

use serde::Serialize;
use shuyu_core::actor::Principal;
use utoipa::ToSchema;

use crate::service::{Lifecycle, LifecycleError};

/// One thing waiting for the principal's organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reminder {
    /// What to do: `data_request_review`, `data_request_returned`, `agreement_sign`,
    /// `agreement_renewal`, `rectification_report`, `rectification_decide`,
    /// `custom_estimate`, `custom_accept`, `custom_deliver`, `application_review`,
    /// `application_decide`, `review_score`, `notice_answer`, `notice_close`,
    /// `rectification_failed` (the catalog adds `governance_answer`).
    pub kind: String,
    /// The object's id.
    pub id: String,
    /// What it is about.
    pub title: String,
    /// The deadline, if there is one (YYYY-MM-DD).
    pub due: Option<String>,
    /// Past its deadline.
    pub overdue: bool,
}

impl Lifecycle {
    /// What waits for the principal's organisation, soonest deadline first.
    pub async fn reminders(&self, p: &Principal) -> Result<Vec<Reminder>, LifecycleError> {
        let me = p.org_id.to_string();
        let today = self.today();
        let mut out = Vec::new();
        let mut push = |kind: &str, id: &str, title: &str, due: Option<String>| {
            let overdue = due
                .as_deref()
                .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                .is_some_and(|d| today > d);
            out.push(Reminder {
                kind: kind.into(),
                id: id.into(),
                title: title.into(),
                due,
                overdue,
            });
        };
        for r in self.data_requests(p).await? {
            if r.state == "in_review" && r.pending.contains(&me) {
                push("data_request_review", &r.id, &r.scenario, None);
            }
            if r.requester_org == me && r.state == "draft" && r.note.is_some() {
                push("data_request_returned", &r.id, &r.scenario, None);
            }
        }
        for a in self.agreements(p).await? {
            let d = &a.document;
            let grantor = d.grantor_org == me;
            let grantee = d.grantee_org == me;
            let title = format!("{} → {}", d.grantor_org, d.grantee_org);
            if a.state == "signing" && (grantor || grantee) {
                let signed = |party: &str| {
                    a.signatures
                        .iter()
                        .any(|(s, _)| format!("{:?}", s.party).eq_ignore_ascii_case(party))
                };
                if (grantor && !signed("grantor")) || (grantee && !signed("grantee")) {
                    push("agreement_sign", &d.id, &title, None);
                }
            }
            let term = d
                .term_start
                .parse::<jiff::civil::Date>()
                .ok()
                .zip(d.term_end.parse::<jiff::civil::Date>().ok())
                .and_then(|(start, end)| crate::term::Term::new(start, end).ok());
            if grantee && a.effective && a.renewed_until.is_none() && term.is_some_and(|t| t.in_renewal_window(today)) {
                push("agreement_renewal", &d.id, &title, Some(d.term_end.clone()));
            }
            // A rectification that failed ended the agreement: both parties have what follows
            // to do (the grantee returns or destroys what it holds, the grantor confirms it).
            if a.state == "terminated"
                && (grantor || grantee)
                && a.rectification
                    .closed
                    .last()
                    .is_some_and(|c| c.rectification.state == crate::rectification::RectificationState::Failed)
            {
                push("rectification_failed", &d.id, &title, None);
            }
            if let Some(case) = &a.rectification.open {
                let due = Some(case.rectification.deadline.to_string());
                if grantee && case.report.is_none() {
                    push("rectification_report", &d.id, &case.violation, due.clone());
                }
                if grantor && case.report.is_some() {
                    push("rectification_decide", &d.id, &case.violation, due);
                }
            }
        }
        // Applications: the call's issuer sends a submitted application to its
        // panel once the call has closed, decides once the quorum has scored, and closes the
        // notice once its period is over; an assigned expert declares and scores.
        let me_user = p.user_id.to_string();
        let mut calls = std::collections::HashMap::new();
        for a in self.applications(p, None).await? {
            if !matches!(a.state.as_str(), "submitted" | "in_review" | "on_notice") {
                continue;
            }
            if !calls.contains_key(&a.call_id) {
                calls.insert(a.call_id.clone(), self.load_call(&a.call_id).await?.0);
            }
            let call = &calls[&a.call_id];
            let issuer = call.org_id == me;
            let title = format!("{} · {}", call.title, a.org_name);
            let past = |d: &str| d.parse::<jiff::civil::Date>().is_ok_and(|d| today > d);
            match a.state.as_str() {
                "submitted" if issuer && past(&call.deadline) => push("application_review", &a.id, &title, None),
                "in_review" => {
                    if let Some(r) = self.application(p, &a.id).await?.review {
                        if issuer && !r.closed && r.scored >= r.quorum {
                            push("application_decide", &a.id, &title, None);
                        }
                        if r.experts
                            .iter()
                            .any(|(u, st)| *u == me_user && (st == "assigned" || st == "cleared"))
                        {
                            push("review_score", &a.id, &title, None);
                        }
                    }
                }
                "on_notice" if issuer => {
                    if let Some(n) = self.application(p, &a.id).await?.notice
                        && !n.closed
                    {
                        // An objection unanswered holds the notice open, whatever the date;
                        // once all are answered and the period is over, the sweep clears it
                        // (the issuer may do so first).
                        if n.objections.iter().any(|o| o.answer.is_none()) {
                            push("notice_answer", &a.id, &title, Some(n.until.clone()));
                        } else if past(&n.until) {
                            push("notice_close", &a.id, &title, None);
                        }
                    }
                }
                _ => {}
            }
        }
        for c in self.custom_requests(p).await? {
            let due = Some(c.wanted_by.clone());
            match c.state.as_str() {
                "requested" if c.provider_org == me => push("custom_estimate", &c.id, &c.title, due),
                "estimated" if c.requester_org == me => push("custom_accept", &c.id, &c.title, due),
                "accepted" if c.provider_org == me => push("custom_deliver", &c.id, &c.title, due),
                _ => {}
            }
        }
        out.sort_by(|a, b| (a.due.is_none(), &a.due).cmp(&(b.due.is_none(), &b.due)));
        Ok(out)
    }
}
