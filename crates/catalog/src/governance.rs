//! Governance requests and objections (R-25, B§17, YP5(一)4): whoever works with a
//! dataset raises a data-quality request or an objection; its provider must answer
//! by a deadline (verified: corrected, or no fault found); the raiser or the
//! authority closes it, or the raiser reopens it with a new deadline. Open items past
//! their deadline are overdue and show on the authority's dashboard.

use serde::{Deserialize, Serialize};
use shuyu_core::actor::Principal;
use shuyu_core::error::FieldError;
use shuyu_import::Column;
use shuyu_policy::Action;
use shuyu_store::catalogs::{self, GovernanceRecord};
use shuyu_store::datasets;
use utoipa::ToSchema;

use crate::{Catalog, CatalogError, dataset_resource};

/// The default time a provider has to answer, in days ("在规定期限内").
pub const DEFAULT_DEADLINE_DAYS: i64 = 15;
/// The longest deadline that may be set.
pub const MAX_DEADLINE_DAYS: i64 = 90;

/// A request about data quality, or an objection to the data (异议数据).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// 数据治理需求.
    Quality,
    /// 异议数据.
    Objection,
}

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting for the provider.
    Open,
    /// Answered; the raiser checks.
    Answered,
    /// Done.
    Closed,
}

impl ItemState {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            ItemState::Open => "open",
            ItemState::Answered => "answered",
            ItemState::Closed => "closed",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<ItemState> {
        [ItemState::Open, ItemState::Answered, ItemState::Closed]
            .into_iter()
            .find(|x| x.code() == s)
    }
}

/// What can happen to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEvent {
    /// The provider answers.
    Answer,
    /// The raiser is not satisfied: open again.
    Reopen,
    /// The raiser or the authority closes it.
    Close,
}

/// A transition that the rules do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a governance item that is {from:?} cannot be {event:?}")]
pub struct IllegalItemTransition {
    /// Its state.
    pub from: ItemState,
    /// The event.
    pub event: ItemEvent,
}

/// The next state, or why not.
pub fn transition(from: ItemState, event: ItemEvent) -> Result<ItemState, IllegalItemTransition> {
    match (from, event) {
        (ItemState::Open, ItemEvent::Answer) => Ok(ItemState::Answered),
        (ItemState::Answered, ItemEvent::Reopen) => Ok(ItemState::Open),
        (ItemState::Open | ItemState::Answered, ItemEvent::Close) => Ok(ItemState::Closed),
        (from, event) => Err(IllegalItemTransition { from, event }),
    }
}

/// How the provider found the matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The data was wrong and is corrected (a new version follows).
    Corrected,
    /// Verified: the data is right.
    NoFault,
}

/// A new item.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseItem {
    /// `quality` or `objection`.
    pub kind: ItemKind,
    /// The dataset concerned (its id).
    pub dataset_id: String,
    /// The column concerned, if one.
    #[serde(default)]
    pub field: Option<String>,
    /// A one-line subject (1–200 characters).
    pub subject: String,
    /// What is wrong (1–4000 characters). Describe, do not paste records.
    pub detail: String,
    /// Days the provider has to answer (1–90, default 15).
    #[serde(default)]
    pub deadline_days: Option<i64>,
}

/// An item as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemView {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: ItemKind,
    /// Its state.
    pub state: ItemState,
    /// The dataset concerned.
    pub dataset_id: String,
    /// That dataset's title.
    pub dataset_title: String,
    /// The provider that must answer.
    pub provider_org_id: String,
    /// Who raised it.
    pub raised_by: String,
    /// The column concerned.
    pub field: Option<String>,
    /// Subject.
    pub subject: String,
    /// Detail.
    pub detail: String,
    /// When the answer is due (RFC 3339).
    pub deadline: String,
    /// Whether it is open past its deadline.
    pub overdue: bool,
    /// The provider's answer.
    pub answer: Option<String>,
    /// `corrected` or `no_fault`.
    pub outcome: Option<String>,
    /// When it was answered.
    pub answered_at: Option<String>,
    /// When it was raised.
    pub created_at: String,
}

fn item_view(g: &GovernanceRecord, title: &str, now: jiff::Timestamp) -> ItemView {
    let state = ItemState::parse(&g.state).unwrap_or(ItemState::Closed);
    ItemView {
        id: g.id.clone(),
        kind: if g.kind == "objection" {
            ItemKind::Objection
        } else {
            ItemKind::Quality
        },
        state,
        dataset_id: g.dataset_id.clone(),
        dataset_title: title.to_string(),
        provider_org_id: g.provider_org_id.clone(),
        raised_by: g.raised_by.clone(),
        field: g.field.clone(),
        subject: g.subject.clone(),
        detail: g.detail.clone(),
        deadline: g.deadline.to_string(),
        overdue: state == ItemState::Open && now > g.deadline,
        answer: g.answer.clone(),
        outcome: g.outcome.clone(),
        answered_at: g.answered_at.map(|t| t.to_string()),
        created_at: g.created_at.to_string(),
    }
}

fn bounded(errs: &mut Vec<FieldError>, field: &str, v: &str, max: usize) -> String {
    let v = v.trim();
    if v.is_empty() {
        errs.push(FieldError::new(field, "field_required"));
    } else if v.chars().count() > max {
        errs.push(FieldError::new(field, "too_long").arg("max", max));
    }
    v.to_string()
}

fn days(d: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * d)
}

impl Catalog {
    async fn item(&self, id: &str) -> Result<GovernanceRecord, CatalogError> {
        catalogs::get_item(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(CatalogError::NotFound("governance_item"))
    }

    async fn dataset_and_org(
        &self,
        id: &str,
    ) -> Result<(shuyu_store::datasets::DatasetRecord, shuyu_store::orgs::OrgRecord), CatalogError> {
        let d = datasets::get(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(CatalogError::NotFound("dataset"))?;
        let o = self.org(&d.org_id).await?;
        Ok((d, o))
    }

    /// Raises a governance request or an objection; its provider must answer by the deadline.
    pub async fn raise(&self, p: &Principal, r: &RaiseItem) -> Result<ItemView, CatalogError> {
        let (d, o) = self.dataset_and_org(&r.dataset_id).await?;
        self.identity
            .authorize(p, Action::GovernanceRaise, &dataset_resource(&d, &o, false))
            .await?;
        let mut errs = Vec::new();
        let subject = bounded(&mut errs, "subject", &r.subject, 200);
        let detail = bounded(&mut errs, "detail", &r.detail, 4000);
        let deadline_days = r.deadline_days.unwrap_or(DEFAULT_DEADLINE_DAYS);
        if !(1..=MAX_DEADLINE_DAYS).contains(&deadline_days) {
            errs.push(FieldError::new("deadline_days", "deadline_range").arg("max", MAX_DEADLINE_DAYS));
        }
        if let Some(f) = &r.field {
            let columns: Vec<Column> = match &d.current_version {
                Some(v) => datasets::get_version(&mut *self.identity.store().read().await?, v)
                    .await?
                    .map(|v| serde_json::from_str(&v.columns_json).unwrap_or_default())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if !columns.iter().any(|c| &c.name == f) {
                errs.push(FieldError::new("field", "unknown_value").arg("value", f));
            }
        }
        if !errs.is_empty() {
            return Err(shuyu_core::error::Validation(errs).into());
        }
        let now = self.identity.clock().now();
        let rec = GovernanceRecord {
            id: uuid::Uuid::now_v7().to_string(),
            kind: match r.kind {
                ItemKind::Quality => "quality".into(),
                ItemKind::Objection => "objection".into(),
            },
            dataset_id: d.id.clone(),
            provider_org_id: d.org_id.clone(),
            raised_by: p.user_id.to_string(),
            raised_by_org: p.org_id.to_string(),
            subject,
            detail,
            field: r.field.clone(),
            state: ItemState::Open.code().into(),
            deadline: now.saturating_add(days(deadline_days)).unwrap_or(now),
            answer: None,
            outcome: None,
            answered_at: None,
            answered_by: None,
            closed_at: None,
            created_at: now,
        };
        let mut event = shuyu_identity::audit::by(
            p,
            now,
            "governance.raise",
            "governance_item",
            rec.id.clone(),
            None,
            None,
        );
        event.payload = Some(serde_json::json!({
            "kind": rec.kind, "dataset": rec.dataset_id, "field": rec.field, "deadline": rec.deadline.to_string(),
        }));
        let stored = rec.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    catalogs::insert_item(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(item_view(&rec, &d.title, now))
    }

    /// The provider answers an open item.
    pub async fn answer(
        &self,
        p: &Principal,
        id: &str,
        answer: &str,
        outcome: Outcome,
    ) -> Result<ItemView, CatalogError> {
        let mut g = self.item(id).await?;
        let (d, o) = self.dataset_and_org(&g.dataset_id).await?;
        self.identity
            .authorize(p, Action::GovernanceAnswer, &dataset_resource(&d, &o, false))
            .await?;
        let mut errs = Vec::new();
        let answer = bounded(&mut errs, "answer", answer, 4000);
        if !errs.is_empty() {
            return Err(shuyu_core::error::Validation(errs).into());
        }
        let next = transition(
            ItemState::parse(&g.state).unwrap_or(ItemState::Closed),
            ItemEvent::Answer,
        )?;
        let now = self.identity.clock().now();
        g.state = next.code().into();
        g.answer = Some(answer);
        g.outcome = Some(
            match outcome {
                Outcome::Corrected => "corrected",
                Outcome::NoFault => "no_fault",
            }
            .into(),
        );
        g.answered_at = Some(now);
        g.answered_by = Some(p.user_id.to_string());
        self.save_item(p, &g, "governance.answer", now).await?;
        Ok(item_view(&g, &d.title, now))
    }

    /// Closes an item (its raiser, or the authority), or reopens an answered one with a new deadline (its raiser).
    pub async fn close_or_reopen(
        &self,
        p: &Principal,
        id: &str,
        reopen_days: Option<i64>,
    ) -> Result<ItemView, CatalogError> {
        let mut g = self.item(id).await?;
        let (d, o) = self.dataset_and_org(&g.dataset_id).await?;
        let raiser = g.raised_by == p.user_id.to_string();
        match (raiser, reopen_days) {
            (true, _) => {}
            // Only whoever raised an item can find the answer wanting.
            (false, Some(_)) => {
                return Err(CatalogError::Identity(shuyu_identity::IdentityError::Forbidden {
                    action: "governance.reopen",
                }));
            }
            (false, None) => {
                self.identity
                    .authorize(p, Action::GovernanceClose, &dataset_resource(&d, &o, false))
                    .await?;
            }
        }
        let now = self.identity.clock().now();
        let from = ItemState::parse(&g.state).unwrap_or(ItemState::Closed);
        let action = match reopen_days {
            Some(n) => {
                if !(1..=MAX_DEADLINE_DAYS).contains(&n) {
                    return Err(FieldError::new("deadline_days", "deadline_range")
                        .arg("max", MAX_DEADLINE_DAYS)
                        .into());
                }
                g.state = transition(from, ItemEvent::Reopen)?.code().into();
                g.deadline = now.saturating_add(days(n)).unwrap_or(now);
                "governance.reopen"
            }
            None => {
                g.state = transition(from, ItemEvent::Close)?.code().into();
                g.closed_at = Some(now);
                "governance.close"
            }
        };
        self.save_item(p, &g, action, now).await?;
        Ok(item_view(&g, &d.title, now))
    }

    async fn save_item(
        &self,
        p: &Principal,
        g: &GovernanceRecord,
        action: &str,
        now: jiff::Timestamp,
    ) -> Result<(), CatalogError> {
        let mut event = shuyu_identity::audit::by(p, now, action, "governance_item", g.id.clone(), None, None);
        event.payload =
            Some(serde_json::json!({ "state": g.state, "outcome": g.outcome, "deadline": g.deadline.to_string() }));
        let stored = g.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    catalogs::update_item(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    /// The items the principal may see: those of datasets it may oversee or answer for, and those it raised.
    /// With `overdue_only`, only open items past their deadline (the authority's dashboard).
    pub async fn items(&self, p: &Principal, overdue_only: bool) -> Result<Vec<ItemView>, CatalogError> {
        let all = catalogs::items(&mut *self.identity.store().read().await?).await?;
        let now = self.identity.clock().now();
        let me = p.user_id.to_string();
        let mut out = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for g in all {
            if !seen.contains_key(&g.dataset_id) {
                let (d, o) = self.dataset_and_org(&g.dataset_id).await?;
                let may = self
                    .identity
                    .allows(p, Action::GovernanceRead, &dataset_resource(&d, &o, false));
                seen.insert(g.dataset_id.clone(), (d.title, may));
            }
            let (title, may) = &seen[&g.dataset_id];
            if *may || g.raised_by == me {
                let v = item_view(&g, title, now);
                if !overdue_only || v.overdue {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_answered_before_they_can_be_reopened() {
        assert_eq!(transition(ItemState::Open, ItemEvent::Answer), Ok(ItemState::Answered));
        assert!(transition(ItemState::Open, ItemEvent::Reopen).is_err());
        assert_eq!(transition(ItemState::Answered, ItemEvent::Reopen), Ok(ItemState::Open));
        assert!(transition(ItemState::Closed, ItemEvent::Answer).is_err());
        assert!(transition(ItemState::Closed, ItemEvent::Close).is_err());
    }
}
