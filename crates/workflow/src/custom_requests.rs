//! Custom processing requests as a service (定制化服务需求, R-26, B§17, YP5(三)3): the
//! grantee of an agreement in force asks its grantor — the authority for an operator
//! (Binzhou), the operator for a developer (Yancheng) — for a processing service it needs,
//! with the day it needs it by; the grantor estimates the cost; the requester accepts the
//! charge (or declines); the grantor delivers and the accepted charge is billed to the
//! requester. The pure machine in [`crate::custom`] decides every step.

use serde::{Deserialize, Serialize};
use shuyu_core::actor::Principal;
use shuyu_core::error::{FieldError, Validation};
use shuyu_identity::IdentityError;
use shuyu_policy::{Action, Resource};
use shuyu_store::agreements;
use shuyu_store::custom_requests::{self, CustomRequestRecord};
use shuyu_store::orgs::OrgRecord;
use utoipa::ToSchema;

use crate::custom::{self, CustomActor, CustomEvent, CustomState};
use crate::service::{Lifecycle, LifecycleError, save, text};
use jiff::civil::Date;

/// What is asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomBody {
    /// What processing is needed (e.g. a linkage, a cleaning, a derived indicator).
    pub description: String,
    /// The data it concerns (catalog entries or dataset names, free text).
    #[serde(default)]
    pub data: String,
}

/// A new custom request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomRequest {
    /// The agreement it is asked under (the requester is its grantee).
    pub agreement_id: String,
    /// A title (1–200 characters).
    pub title: String,
    /// What is asked.
    pub body: CustomBody,
    /// The day it is needed by.
    #[schema(value_type = String, format = Date)]
    pub wanted_by: Date,
}

/// A custom request as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomRequestView {
    /// Its id.
    pub id: String,
    /// The agreement.
    pub agreement_id: String,
    /// Who asks and pays.
    pub requester_org: String,
    /// Who serves.
    pub provider_org: String,
    /// Its title.
    pub title: String,
    /// What is asked.
    pub body: CustomBody,
    /// `requested`, `estimated`, `accepted`, `delivered` or `closed`.
    pub state: String,
    /// The estimate or the accepted charge, in fen (CNY cents), once known.
    pub cost_cents: Option<u64>,
    /// The charge billed to the requester (on delivery).
    pub billed_cents: Option<u64>,
    /// The day it is needed by.
    pub wanted_by: String,
    /// Past that day and not delivered or closed.
    pub overdue: bool,
}

/// An event on a custom request, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "event", deny_unknown_fields)]
pub enum CustomStep {
    /// The provider estimates the cost (fen).
    Estimate {
        /// In fen.
        cost_cents: u64,
    },
    /// The requester accepts the estimate.
    AcceptCharge,
    /// The provider delivers.
    Deliver,
    /// Either side declines before delivery.
    Decline,
}

fn machine_of(r: &CustomRequestRecord) -> Result<CustomState, LifecycleError> {
    serde_json::from_str(&r.machine_json).map_err(|_| LifecycleError::NotFound("custom_request"))
}

fn code(s: CustomState) -> &'static str {
    match s {
        CustomState::Requested => "requested",
        CustomState::Estimated { .. } => "estimated",
        CustomState::Accepted { .. } => "accepted",
        CustomState::Delivered { .. } => "delivered",
        CustomState::Closed => "closed",
    }
}

impl Lifecycle {
    fn custom_resource(r: &CustomRequestRecord, requester: &OrgRecord, provider: &OrgRecord) -> Resource {
        Resource::CustomRequest {
            id: r.id.clone(),
            org: requester.id,
            org_kind: requester.kind,
            region: requester.region.clone(),
            provider: (provider.id, provider.kind, provider.region.clone()),
            state: r.state.clone(),
        }
    }

    pub(crate) fn custom_view(&self, r: &CustomRequestRecord) -> Result<CustomRequestView, LifecycleError> {
        let m = machine_of(r)?;
        let (cost, billed) = match m {
            CustomState::Estimated { cost_cents } | CustomState::Accepted { cost_cents } => (Some(cost_cents), None),
            CustomState::Delivered { cost_cents } => (Some(cost_cents), Some(cost_cents)),
            _ => (None, None),
        };
        let open = !matches!(m, CustomState::Delivered { .. } | CustomState::Closed);
        Ok(CustomRequestView {
            id: r.id.clone(),
            agreement_id: r.agreement_id.clone(),
            requester_org: r.requester_org.clone(),
            provider_org: r.provider_org.clone(),
            title: r.title.clone(),
            body: crate::service::stored("custom_requests", "body_json", &r.body_json)?,
            state: code(m).into(),
            cost_cents: cost,
            billed_cents: billed,
            overdue: open && r.wanted_by.parse::<Date>().is_ok_and(|d| self.today() > d),
            wanted_by: r.wanted_by.clone(),
        })
    }

    /// The grantee of an agreement in force asks its grantor for a custom service.
    pub async fn create_custom_request(
        &self,
        p: &Principal,
        n: &NewCustomRequest,
    ) -> Result<CustomRequestView, LifecycleError> {
        let a = agreements::get(&mut *self.identity.store().read().await?, &n.agreement_id)
            .await?
            .ok_or(LifecycleError::NotFound("agreement"))?;
        let requester = self.org(&a.grantee_org).await?;
        let provider = self.org(&a.grantor_org).await?;
        let now = self.identity.clock().now();
        let mut errs = Vec::new();
        let title = text(&mut errs, "title", &n.title, 200);
        let description = text(&mut errs, "body.description", &n.body.description, 4000);
        if n.wanted_by < self.today() {
            errs.push(FieldError::new("wanted_by", "date_in_past").arg("value", n.wanted_by));
        }
        let rec = CustomRequestRecord {
            id: uuid::Uuid::now_v7().to_string(),
            agreement_id: a.id.clone(),
            requester_org: a.grantee_org.clone(),
            provider_org: a.grantor_org.clone(),
            title,
            body_json: serde_json::to_string(&CustomBody {
                description,
                data: n.body.data.trim().to_string(),
            })
            .unwrap_or_default(),
            state: code(CustomState::Requested).into(),
            machine_json: serde_json::to_string(&CustomState::Requested).unwrap_or_default(),
            wanted_by: n.wanted_by.to_string(),
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
        };
        self.identity
            .authorize(
                p,
                Action::CustomRequestEdit,
                &Self::custom_resource(&rec, &requester, &provider),
            )
            .await?;
        if p.org_id != requester.id {
            return Err(IdentityError::Forbidden {
                action: "custom_request.edit",
            }
            .into());
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        self.guard(&a.id, async {
            let mut event = shuyu_identity::audit::by(
                p,
                now,
                "custom_request.create",
                "custom_request",
                rec.id.clone(),
                None,
                None,
            );
            event.payload = Some(serde_json::json!({ "agreement": rec.agreement_id, "wanted_by": rec.wanted_by }));
            event.retention_tag = Some(crate::contracts::retention_tag(&rec.agreement_id));
            let stored = rec.clone();
            save(&self.identity, event, move |tx| {
                Box::pin(async move { custom_requests::insert(tx.conn(), &stored).await })
            })
            .await?;
            self.changed();
            self.custom_view(&rec)
        })
        .await
    }

    async fn load_custom(&self, id: &str) -> Result<(CustomRequestRecord, OrgRecord, OrgRecord), LifecycleError> {
        let r = custom_requests::get(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(LifecycleError::NotFound("custom_request"))?;
        let requester = self.org(&r.requester_org).await?;
        let provider = self.org(&r.provider_org).await?;
        Ok((r, requester, provider))
    }

    /// One step: the provider estimates, delivers or declines; the requester accepts the
    /// charge or declines. The requester's steps run beneath its agreement.
    pub async fn custom_request_step(
        &self,
        p: &Principal,
        id: &str,
        step: CustomStep,
    ) -> Result<CustomRequestView, LifecycleError> {
        let (mut rec, requester, provider) = self.load_custom(id).await?;
        let resource = Self::custom_resource(&rec, &requester, &provider);
        let (actor, event) = match step {
            CustomStep::Estimate { cost_cents } => (CustomActor::Operator, CustomEvent::Estimate { cost_cents }),
            CustomStep::Deliver => (CustomActor::Operator, CustomEvent::Deliver),
            CustomStep::AcceptCharge => (CustomActor::Requester, CustomEvent::AcceptCharge),
            CustomStep::Decline if p.org_id == provider.id => (CustomActor::Operator, CustomEvent::Decline),
            CustomStep::Decline => (CustomActor::Requester, CustomEvent::Decline),
        };
        let (action, name) = match actor {
            CustomActor::Operator => (Action::CustomRequestServe, "custom_request.serve"),
            CustomActor::Requester => (Action::CustomRequestEdit, "custom_request.edit"),
        };
        self.identity.authorize(p, action, &resource).await?;
        let party = match actor {
            CustomActor::Operator => provider.id,
            CustomActor::Requester => requester.id,
        };
        if p.org_id != party {
            return Err(IdentityError::Forbidden { action: name }.into());
        }
        let agreement = rec.agreement_id.clone();
        let work = async {
            let next = custom::transition(machine_of(&rec)?, event, actor)?;
            let read_at = rec.updated_at;
            let now = self.identity.clock().now();
            rec.updated_at = crate::service::later(read_at, now);
            rec.state = code(next).into();
            rec.machine_json = serde_json::to_string(&next).unwrap_or_default();
            let step_code = match event {
                CustomEvent::Estimate { .. } => "estimate",
                CustomEvent::AcceptCharge => "accept_charge",
                CustomEvent::Deliver => "deliver",
                CustomEvent::Decline => "decline",
            };
            let mut audit = shuyu_identity::audit::by(
                p,
                now,
                &format!("custom_request.{step_code}"),
                "custom_request",
                rec.id.clone(),
                None,
                None,
            );
            audit.payload = Some(serde_json::json!({ "state": next }));
            audit.retention_tag = Some(crate::contracts::retention_tag(&rec.agreement_id));
            let stored = rec.clone();
            save(&self.identity, audit, move |tx| {
                Box::pin(async move { custom_requests::update(tx.conn(), &stored, read_at).await })
            })
            .await?;
            self.changed();
            self.custom_view(&rec)
        };
        if actor == CustomActor::Requester && event != CustomEvent::Decline {
            self.guard(&agreement, work).await
        } else {
            work.await
        }
    }

    /// One custom request.
    pub async fn custom_request(&self, p: &Principal, id: &str) -> Result<CustomRequestView, LifecycleError> {
        let (rec, requester, provider) = self.load_custom(id).await?;
        self.identity
            .authorize(
                p,
                Action::CustomRequestRead,
                &Self::custom_resource(&rec, &requester, &provider),
            )
            .await?;
        self.custom_view(&rec)
    }

    /// The custom requests the principal asked, serves, or (oversight) may read.
    pub async fn custom_requests(&self, p: &Principal) -> Result<Vec<CustomRequestView>, LifecycleError> {
        // Every request, each kept only if the policy lets the principal read it: who sees
        // which is Cedar's to say, not a role test here.
        let all = custom_requests::all(&mut *self.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for r in all {
            let requester = self.org(&r.requester_org).await?;
            let provider = self.org(&r.provider_org).await?;
            if self.identity.allows(
                p,
                Action::CustomRequestRead,
                &Self::custom_resource(&r, &requester, &provider),
            ) {
                out.push(self.custom_view(&r)?);
            }
        }
        Ok(out)
    }
}
