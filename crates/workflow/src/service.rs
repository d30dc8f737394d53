//! Calls and applications as a service: the pure machines of [`crate::call`]
//! and [`crate::application`] wrapped with validation, authorization (Cedar, via the
//! identity service), persistence and audit — one transaction per change.

use serde::{Deserialize, Serialize};
use shuyu_catalog::entries::{EntryBody, SECTORS};
use shuyu_core::actor::Principal;
use shuyu_core::clock::Timestamp;
use shuyu_core::error::{ErrorKind, FieldError, Message, UserFacing, Validation};
use shuyu_core::id::OrgId;
use shuyu_core::party::OrgKind;
use shuyu_identity::{Identity, IdentityError};
use shuyu_policy::{Action, Resource};
use shuyu_store::catalogs;
use shuyu_store::lifecycle::{self, ApplicationRecord, CallRecord, StateTable};
use shuyu_store::orgs::{self, OrgRecord};
use shuyu_store::{StoreError, Tx};
use utoipa::ToSchema;

use crate::Refused;
use crate::application::{self, ApplicationActor, ApplicationEvent, ApplicationState};
use crate::call::{self, Call, CallActor, CallEvent, CallState};
use crate::notice::{Notice, NoticeEvent};
use crate::review::{ExpertState, Review, ReviewActor, ReviewEvent};
use jiff::civil::Date;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Authorization or the store, from the identity service.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such object.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Input values broke rules.
    #[error(transparent)]
    Invalid(#[from] Validation),
    /// The machine refused the transition.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The agreement beneath the action is not in force (not yet, suspended, expired,
    /// cancelled or terminated, or the operator's agreement above it is not).
    #[error("agreement {agreement} is not in force")]
    NotInForce {
        /// The agreement.
        agreement: String,
    },
}

impl From<FieldError> for LifecycleError {
    fn from(e: FieldError) -> Self {
        LifecycleError::Invalid(e.into())
    }
}

impl UserFacing for LifecycleError {
    fn kind(&self) -> ErrorKind {
        match self {
            LifecycleError::Identity(e) => e.kind(),
            LifecycleError::Store(e) => e.kind(),
            LifecycleError::NotFound(_) => ErrorKind::NotFound,
            LifecycleError::Invalid(_) => ErrorKind::Invalid,
            LifecycleError::Refused(_) => ErrorKind::Conflict,
            LifecycleError::NotInForce { .. } => ErrorKind::Forbidden,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            LifecycleError::Identity(e) => e.code(),
            LifecycleError::Store(e) => e.code(),
            LifecycleError::NotFound(_) => "not_found",
            LifecycleError::Invalid(v) => v.code(),
            LifecycleError::Refused(_) => "refused",
            LifecycleError::NotInForce { .. } => "agreement_not_in_force",
        }
    }
    fn message(&self) -> Message {
        match self {
            LifecycleError::Identity(e) => e.message(),
            LifecycleError::NotFound(o) => Message::new("error.not_found").arg_key("object", format!("object.{o}")),
            LifecycleError::Refused(r) => Message::new("error.refused")
                .arg("event", r.event)
                .arg("state", r.state)
                .arg_key("rule", format!("refusal.{}", r.rule)),
            LifecycleError::NotInForce { agreement } => {
                Message::new("error.agreement_not_in_force").arg("agreement", agreement)
            }
            other => Message::new(format!("error.{}", other.code())),
        }
    }
    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            LifecycleError::Identity(e) => e.field_errors(),
            LifecycleError::Invalid(v) => v.field_errors(),
            _ => Vec::new(),
        }
    }
}

/// The day of an instant in the city (China Standard Time, UTC+8, no daylight saving).
pub fn city_today(now: Timestamp) -> Date {
    now.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).date()
}

/// Who may apply to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Operators (the authority's call; Binzhou's one level, Yancheng's first level).
    Operator,
    /// Developers (the operator's call in two-level mode, or a county authority's).
    Developer,
}

impl Audience {
    fn code(self) -> &'static str {
        match self {
            Audience::Operator => "operator",
            Audience::Developer => "developer",
        }
    }
    fn kind(self) -> OrgKind {
        match self {
            Audience::Operator => OrgKind::Operator,
            Audience::Developer => OrgKind::Developer,
        }
    }
}

/// A new call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    /// The title (1–200 characters).
    pub title: String,
    /// The conditions applicants must meet (1–4000 characters).
    pub conditions: String,
    /// Who may apply.
    pub audience: Audience,
    /// The last day applications are accepted (`YYYY-MM-DD`, city time).
    #[schema(value_type = String, format = Date)]
    pub deadline: Date,
    /// The published review criteria (1–20, each 1–200 characters).
    pub criteria: Vec<String>,
    /// Days of public notice of the results (1–60, default 7).
    #[serde(default)]
    pub notice_days: Option<u32>,
    /// Expert scores needed to close a review (1–15, default 3).
    #[serde(default)]
    pub quorum: Option<u32>,
}

/// The stored content of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallBody {
    /// The conditions.
    pub conditions: String,
    /// The review criteria.
    pub criteria: Vec<String>,
    /// Days of public notice.
    pub notice_days: u32,
    /// Scores needed to close a review.
    pub quorum: u32,
}

/// A call as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallView {
    /// Its id.
    pub id: String,
    /// The issuer.
    pub org_id: String,
    /// The issuer's name.
    pub org_name: String,
    /// Who may apply.
    pub audience: Audience,
    /// Its title.
    pub title: String,
    /// `draft`, `open`, `closed` or `withdrawn` (closed once the deadline passed).
    pub state: String,
    /// The last day applications are accepted.
    pub deadline: String,
    /// Whether it accepts applications today.
    pub accepts_applications: bool,
    /// Conditions and criteria.
    pub body: CallBody,
    /// When it was created.
    pub created_at: String,
}

/// A scenario (应用场景) of an application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What the data is used for.
    pub purpose: String,
    /// `health`, `finance`, `manufacturing`, `governance` or `other`.
    pub sector: String,
    /// The value expected.
    pub expected_value: String,
    /// Public welfare (有条件无偿) or commercial (有条件有偿).
    pub public_welfare: bool,
}

/// One requested field and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldNeed {
    /// The field, as the catalog entry lists it.
    pub name: String,
    /// Why it is needed (least necessary).
    #[serde(default)]
    pub reason: String,
}

/// One line of the data-need list (数据需求清单): fields of a catalog entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataNeed {
    /// The catalog entry: a published, authorizable resource entry (operator calls) or a
    /// published development entry (developer calls).
    pub entry_id: String,
    /// The fields needed.
    pub fields: Vec<FieldNeed>,
}

/// The applicant's eligibility attestations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestations {
    /// No serious dishonesty record (信用状况良好).
    #[serde(default)]
    pub good_credit: bool,
    /// Data-security management systems in place.
    #[serde(default)]
    pub security_systems: bool,
    /// The named data-security officer.
    #[serde(default)]
    pub security_officer: String,
    /// Operators: MLPS level 3 (等保三级).
    #[serde(default)]
    pub mlps_level3: bool,
    /// Operators: commercial-cryptography assessment passed (密评).
    #[serde(default)]
    pub crypto_assessment: bool,
}

/// An application's content, as written and stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationBody {
    /// The scenario list.
    #[serde(default)]
    pub scenarios: Vec<Scenario>,
    /// The data-need list.
    #[serde(default)]
    pub data_needs: Vec<DataNeed>,
    /// The attestations.
    #[serde(default)]
    pub attestations: Attestations,
}

/// An application as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationView {
    /// Its id.
    pub id: String,
    /// The call.
    pub call_id: String,
    /// The applicant.
    pub org_id: String,
    /// The applicant's name.
    pub org_name: String,
    /// Its state.
    pub state: String,
    /// Its content.
    pub body: ApplicationBody,
    /// When it was submitted.
    pub submitted_at: Option<String>,
    /// The expert review, once started (scores shown to the issuer and oversight only).
    pub review: Option<ReviewView>,
    /// The decision, once taken.
    pub decision: Option<Decision>,
    /// The public notice, once published.
    pub notice: Option<NoticeView>,
    /// Its attachments (certificates, assessments …), without content.
    pub attachments: Vec<AttachmentMeta>,
}

/// An attachment as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttachmentMeta {
    /// Its id.
    pub id: String,
    /// The file name.
    pub name: String,
    /// `application/pdf`, `image/png` or `image/jpeg` (detected from the content).
    pub media_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the content, hex (also on the audit log).
    pub sha256: String,
}

/// The largest attachment accepted.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// The most attachments one application carries.
pub const MAX_ATTACHMENTS: usize = 20;

/// The media type of an attachment, from its first bytes (never from what the client says).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

fn meta(a: &lifecycle::AttachmentRecord) -> AttachmentMeta {
    AttachmentMeta {
        id: a.id.clone(),
        name: a.name.clone(),
        media_type: a.media_type.clone(),
        size: a.size,
        sha256: a.sha256.clone(),
    }
}

/// The expert review as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewView {
    /// Experts assigned, with their state (`assigned`, `recused`, `cleared`, `scored`).
    pub experts: Vec<(String, String)>,
    /// Mean score per criterion over the experts who scored (empty for applicants).
    pub aggregate: Vec<f64>,
    /// Scores given so far / needed.
    pub scored: usize,
    /// Needed to close.
    pub quorum: usize,
    /// Closed.
    pub closed: bool,
}

/// The authority's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Approved or not.
    pub approved: bool,
    /// The government approval's reference (document number); required to approve.
    #[serde(default)]
    pub approval_ref: String,
    /// Why (shown on the notice).
    #[serde(default)]
    pub reason: String,
}

/// One objection on a notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Objection {
    /// Who objected (user id).
    pub by: String,
    /// What.
    pub text: String,
    /// The issuer's answer.
    pub answer: Option<String>,
}

/// A notice as stored: the machine's state and the objections' texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NoticeRecord {
    pub(crate) notice: crate::notice::Notice,
    pub(crate) objections: Vec<Objection>,
}

/// The public notice as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeView {
    /// The last day of the notice period.
    pub until: String,
    /// The objections and their answers.
    pub objections: Vec<Objection>,
    /// Closed.
    pub closed: bool,
}

pub(crate) fn text(errs: &mut Vec<FieldError>, field: &str, v: &str, max: usize) -> String {
    let v = v.trim();
    if v.is_empty() {
        errs.push(FieldError::new(field, "field_required"));
    } else if v.chars().count() > max {
        errs.push(FieldError::new(field, "too_long").arg("max", max));
    }
    v.to_string()
}

fn call_of(r: &CallRecord) -> Call {
    Call {
        state: match r.state.as_str() {
            "open" => CallState::Open,
            "closed" => CallState::Closed,
            "withdrawn" => CallState::Withdrawn,
            _ => CallState::Draft,
        },
        deadline: r.deadline.parse().unwrap_or(Date::MIN),
    }
}

fn app_state(s: &str) -> ApplicationState {
    [
        ApplicationState::Draft,
        ApplicationState::Submitted,
        ApplicationState::InReview,
        ApplicationState::OnNotice,
        ApplicationState::Cleared,
        ApplicationState::Rejected,
        ApplicationState::Withdrawn,
    ]
    .into_iter()
    .find(|x| x.code() == s)
    .unwrap_or(ApplicationState::Withdrawn)
}

/// The lifecycle service.
#[derive(Clone)]
pub struct Lifecycle {
    pub(crate) identity: Identity,
    /// Signs scenario manifests with the domain's key.
    pub(crate) signer: std::sync::Arc<dyn shuyu_core::sign::DocumentSigner>,
    /// Bumped on every change of an agreement or data request: what is running beneath an
    /// agreement re-checks it at once.
    pub(crate) changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").finish_non_exhaustive()
    }
}

/// One change and its audit event, in one transaction.
pub(crate) async fn save<F>(identity: &Identity, event: shuyu_store::log::Event, f: F) -> Result<(), LifecycleError>
where
    F: for<'t, 'c> FnOnce(&'t mut Tx<'c>) -> BoxFut<'t> + Send + 'static,
{
    identity.store().write_audited(event, f).await?;
    Ok(())
}

/// Parses a stored JSON value; what does not parse is `Corrupt` — never a default (a review of
/// quorum 0, a call without conditions, a notice without objections would each open a door).
pub(crate) fn stored<T: serde::de::DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    json: &str,
) -> Result<T, LifecycleError> {
    serde_json::from_str(json).map_err(|e| {
        LifecycleError::Store(StoreError::Corrupt {
            table,
            column,
            detail: e.to_string(),
        })
    })
}

/// The `updated_at` of a change to a row read at `read_at`: now, but strictly later than what
/// was read, so optimistic checks (`… AND updated_at = read_at`) tell every write apart even
/// when the clock has not moved.
pub(crate) fn later(read_at: Timestamp, now: Timestamp) -> Timestamp {
    if now > read_at {
        now
    } else {
        read_at
            .checked_add(jiff::SignedDuration::from_millis(1))
            .unwrap_or(read_at)
    }
}

/// A boxed store future borrowing the transaction.
pub(crate) type BoxFut<'t> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 't>>;

impl Lifecycle {
    /// The service over the identity service (authorization, clock, store), signing the
    /// documents it issues with `signer` (the domain's key, held by the ledger).
    pub fn new(identity: Identity, signer: std::sync::Arc<dyn shuyu_core::sign::DocumentSigner>) -> Self {
        Lifecycle {
            identity,
            signer,
            changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    pub(crate) async fn org(&self, id: &str) -> Result<OrgRecord, LifecycleError> {
        let id: OrgId = id.parse().map_err(|_| LifecycleError::NotFound("org"))?;
        orgs::get(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(LifecycleError::NotFound("org"))
    }

    pub(crate) fn today(&self) -> Date {
        city_today(self.identity.clock().now())
    }

    fn call_resource(r: &CallRecord, org: &OrgRecord) -> Resource {
        Resource::Call {
            id: r.id.clone(),
            org: org.id,
            org_kind: org.kind,
            region: org.region.clone(),
            audience: r.audience.clone(),
            state: r.state.clone(),
        }
    }

    fn call_view(&self, r: &CallRecord, org: &OrgRecord) -> Result<CallView, LifecycleError> {
        let today = self.today();
        // A call past its deadline is closed, whether or not the daily job has recorded it yet.
        let c = call::transition(&call_of(r), CallEvent::Tick, CallActor::System, today).unwrap_or(call_of(r));
        Ok(CallView {
            id: r.id.clone(),
            org_id: r.org_id.clone(),
            org_name: org.name.clone(),
            audience: if r.audience == "developer" {
                Audience::Developer
            } else {
                Audience::Operator
            },
            title: r.title.clone(),
            state: c.state.code().into(),
            deadline: r.deadline.clone(),
            accepts_applications: call::accepts_applications(&c, today),
            body: stored("calls", "body_json", &r.body_json)?,
            created_at: r.created_at.to_string(),
        })
    }

    pub(crate) async fn load_call(&self, id: &str) -> Result<(CallRecord, OrgRecord), LifecycleError> {
        let r = lifecycle::get_call(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(LifecycleError::NotFound("call"))?;
        let o = self.org(&r.org_id).await?;
        Ok((r, o))
    }

    /// Creates a draft call issued by the principal's organisation.
    pub async fn create_call(&self, p: &Principal, c: &NewCall) -> Result<CallView, LifecycleError> {
        let org = self.org(&p.org_id.to_string()).await?;
        let now = self.identity.clock().now();
        let mut rec = CallRecord {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org.id.to_string(),
            audience: c.audience.code().into(),
            title: String::new(),
            state: CallState::Draft.code().into(),
            deadline: c.deadline.to_string(),
            body_json: String::new(),
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
        };
        self.identity
            .authorize(p, Action::CallEdit, &Self::call_resource(&rec, &org))
            .await?;
        let mut errs = Vec::new();
        rec.title = text(&mut errs, "title", &c.title, 200);
        let conditions = text(&mut errs, "conditions", &c.conditions, 4000);
        if c.deadline < self.today() {
            errs.push(FieldError::new("deadline", "date_in_past").arg("value", c.deadline));
        }
        if c.criteria.is_empty() || c.criteria.len() > 20 {
            errs.push(FieldError::new("criteria", "criteria_count"));
        }
        let criteria: Vec<String> = c
            .criteria
            .iter()
            .enumerate()
            .map(|(i, x)| text(&mut errs, &format!("criteria[{i}]"), x, 200))
            .collect();
        let notice_days = c.notice_days.unwrap_or(7);
        if !(1..=60).contains(&notice_days) {
            errs.push(FieldError::new("notice_days", "deadline_range").arg("max", 60));
        }
        let quorum = c.quorum.unwrap_or(3);
        if !(1..=15).contains(&quorum) {
            errs.push(FieldError::new("quorum", "quorum_range"));
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        rec.body_json = serde_json::to_string(&CallBody {
            conditions,
            criteria,
            notice_days,
            quorum,
        })
        .unwrap_or_default();
        let mut event = shuyu_identity::audit::by(p, now, "call.create", "call", rec.id.clone(), None, None);
        event.payload =
            Some(serde_json::json!({ "audience": rec.audience, "deadline": rec.deadline, "title": rec.title }));
        let stored = rec.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move { lifecycle::insert_call(tx.conn(), &stored).await })
        })
        .await?;
        self.call_view(&rec, &org)
    }

    /// Publishes or withdraws a call.
    pub async fn call_event(&self, p: &Principal, id: &str, event: CallEvent) -> Result<CallView, LifecycleError> {
        let (mut rec, org) = self.load_call(id).await?;
        self.identity
            .authorize(p, Action::CallEdit, &Self::call_resource(&rec, &org))
            .await?;
        let next = call::transition(&call_of(&rec), event, CallActor::Issuer, self.today())?;
        rec.state = next.state.code().into();
        rec.updated_at = self.identity.clock().now();
        let event = shuyu_identity::audit::by(
            p,
            rec.updated_at,
            &format!("call.{}", event.code()),
            "call",
            rec.id.clone(),
            None,
            None,
        );
        let stored = rec.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move { lifecycle::update_call(tx.conn(), &stored).await })
        })
        .await?;
        self.call_view(&rec, &org)
    }

    /// The calls the principal may read, newest first.
    pub async fn calls(&self, p: &Principal) -> Result<Vec<CallView>, LifecycleError> {
        let all = lifecycle::calls(&mut *self.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for r in all {
            let org = self.org(&r.org_id).await?;
            if self
                .identity
                .allows(p, Action::CallRead, &Self::call_resource(&r, &org))
            {
                out.push(self.call_view(&r, &org)?);
            }
        }
        Ok(out)
    }

    /// One call.
    pub async fn call(&self, p: &Principal, id: &str) -> Result<CallView, LifecycleError> {
        let (r, org) = self.load_call(id).await?;
        self.identity
            .authorize(p, Action::CallRead, &Self::call_resource(&r, &org))
            .await?;
        self.call_view(&r, &org)
    }

    fn app_resource(r: &ApplicationRecord, org: &OrgRecord, call_org: &OrgRecord) -> Resource {
        Resource::Application {
            id: r.id.clone(),
            org: org.id,
            org_kind: org.kind,
            region: org.region.clone(),
            call_org: (call_org.id, call_org.kind, call_org.region.clone()),
            state: r.state.clone(),
        }
    }

    fn app_view(r: &ApplicationRecord, org: &OrgRecord) -> Result<ApplicationView, LifecycleError> {
        Ok(ApplicationView {
            id: r.id.clone(),
            call_id: r.call_id.clone(),
            org_id: r.org_id.clone(),
            org_name: org.name.clone(),
            state: r.state.clone(),
            body: stored("applications", "body_json", &r.body_json)?,
            submitted_at: r.submitted_at.map(|t| t.to_string()),
            review: None,
            decision: r
                .decision_json
                .as_deref()
                .map(|d| stored("applications", "decision_json", d))
                .transpose()?,
            notice: None,
            attachments: Vec::new(),
        })
    }

    /// The view with its review (aggregate only for those who may see scores) and notice.
    async fn full_view(
        &self,
        p: &Principal,
        r: &ApplicationRecord,
        org: &OrgRecord,
        call_org: &OrgRecord,
    ) -> Result<ApplicationView, LifecycleError> {
        let mut v = Self::app_view(r, org)?;
        let mut c = self.identity.store().read().await?;
        v.attachments = lifecycle::attachments(&mut c, &r.id).await?.iter().map(meta).collect();
        if let Some(json) = lifecycle::get_state(&mut c, StateTable::Review, &r.id).await? {
            let rv: Review = stored("lifecycle_states", "review", &json)?;
            // Scores are for the issuer and oversight; the applicant sees progress only (a
            // view with fewer parts, not a denial: nothing to audit).
            let sees_scores = self
                .identity
                .allows(p, Action::ApplicationScores, &Self::app_resource(r, org, call_org));
            v.review = Some(ReviewView {
                experts: rv
                    .experts
                    .iter()
                    .map(|(k, e)| {
                        let st = match e {
                            ExpertState::Assigned => "assigned",
                            ExpertState::Recused => "recused",
                            ExpertState::Cleared => "cleared",
                            ExpertState::Scored { .. } => "scored",
                        };
                        (k.clone(), st.to_string())
                    })
                    .collect(),
                aggregate: if sees_scores { rv.aggregate() } else { Vec::new() },
                scored: rv.scored(),
                quorum: rv.quorum,
                closed: rv.closed,
            });
        }
        if let Some(json) = lifecycle::get_state(&mut c, StateTable::Notice, &r.id).await? {
            let n: NoticeRecord = stored("lifecycle_states", "notice", &json)?;
            v.notice = Some(NoticeView {
                until: n.notice.until.to_string(),
                objections: n.objections,
                closed: n.notice.closed,
            });
        }
        Ok(v)
    }

    pub(crate) async fn load_app(
        &self,
        id: &str,
    ) -> Result<(ApplicationRecord, OrgRecord, CallRecord, OrgRecord), LifecycleError> {
        let r = lifecycle::get_application(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(LifecycleError::NotFound("application"))?;
        let org = self.org(&r.org_id).await?;
        let (call, call_org) = self.load_call(&r.call_id).await?;
        Ok((r, org, call, call_org))
    }

    /// Starts an application of the principal's organisation to call `call_id`, as a draft.
    pub async fn create_application(
        &self,
        p: &Principal,
        call_id: &str,
        body: &ApplicationBody,
    ) -> Result<ApplicationView, LifecycleError> {
        let (call, call_org) = self.load_call(call_id).await?;
        self.identity
            .authorize(p, Action::CallRead, &Self::call_resource(&call, &call_org))
            .await?;
        let org = self.org(&p.org_id.to_string()).await?;
        let now = self.identity.clock().now();
        let rec = ApplicationRecord {
            id: uuid::Uuid::now_v7().to_string(),
            call_id: call.id.clone(),
            org_id: org.id.to_string(),
            state: ApplicationState::Draft.code().into(),
            body_json: serde_json::to_string(body).unwrap_or_default(),
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
            submitted_at: None,
            decision_json: None,
        };
        self.identity
            .authorize(p, Action::ApplicationEdit, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        let audience = if call.audience == "developer" {
            Audience::Developer
        } else {
            Audience::Operator
        };
        if org.kind != audience.kind() {
            return Err(FieldError::new("call", "audience_mismatch")
                .arg("audience", audience.code())
                .into());
        }
        if !call::accepts_applications(&call_of(&call), self.today()) {
            return Err(Refused::new("call", call_of(&call).state.code(), "apply", "call_closed").into());
        }
        self.check(&call, body, false).await?;
        let event = shuyu_identity::audit::by(p, now, "application.create", "application", rec.id.clone(), None, None);
        let stored = rec.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move { lifecycle::insert_application(tx.conn(), &stored).await })
        })
        .await?;
        Self::app_view(&rec, &org)
    }

    /// Replaces a draft's content.
    pub async fn update_application(
        &self,
        p: &Principal,
        id: &str,
        body: &ApplicationBody,
    ) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, call, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ApplicationEdit, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        if rec.state != ApplicationState::Draft.code() {
            return Err(Refused::new("application", app_state(&rec.state).code(), "update", "not_a_draft").into());
        }
        self.check(&call, body, false).await?;
        rec.body_json = serde_json::to_string(body).unwrap_or_default();
        rec.updated_at = self.identity.clock().now();
        let event = shuyu_identity::audit::by(
            p,
            rec.updated_at,
            "application.update",
            "application",
            rec.id.clone(),
            None,
            None,
        );
        let stored = rec.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move { lifecycle::update_application(tx.conn(), &stored).await })
        })
        .await?;
        Self::app_view(&rec, &org)
    }

    /// Attaches a file to a draft application (its applicant): PDF, PNG or JPEG by content, at
    /// most [`MAX_ATTACHMENT_BYTES`], at most [`MAX_ATTACHMENTS`]; its SHA-256 goes on the
    /// audit log.
    pub async fn attach(
        &self,
        p: &Principal,
        id: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<AttachmentMeta, LifecycleError> {
        use base64::Engine;
        use sha2::Digest;
        let (rec, org, _, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ApplicationEdit, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        if rec.state != ApplicationState::Draft.code() {
            return Err(Refused::new("application", app_state(&rec.state).code(), "attach", "not_a_draft").into());
        }
        let mut errs = Vec::new();
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let name = text(&mut errs, "name", base, 200);
        let media_type = sniff(bytes);
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            errs.push(FieldError::new("file", "attachment_too_large").arg("max", MAX_ATTACHMENT_BYTES / (1024 * 1024)));
        } else if media_type.is_none() {
            errs.push(FieldError::new("file", "attachment_type"));
        }
        let existing = lifecycle::attachments(&mut *self.identity.store().read().await?, id).await?;
        if existing.len() >= MAX_ATTACHMENTS {
            errs.push(FieldError::new("file", "attachment_count").arg("max", MAX_ATTACHMENTS));
        }
        let Some(media_type) = media_type.filter(|_| errs.is_empty()) else {
            return Err(Validation(errs).into());
        };
        let now = self.identity.clock().now();
        let a = lifecycle::AttachmentRecord {
            id: uuid::Uuid::now_v7().to_string(),
            application_id: rec.id.clone(),
            name,
            media_type: media_type.into(),
            size: bytes.len() as i64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            created_at: now,
            created_by: p.user_id.to_string(),
        };
        let content = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut event =
            shuyu_identity::audit::by(p, now, "application.attach", "application", rec.id.clone(), None, None);
        event.payload =
            Some(serde_json::json!({ "attachment": a.id, "name": a.name, "sha256": a.sha256, "size": a.size }));
        let stored = a.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move { lifecycle::insert_attachment(tx.conn(), &stored, &content).await })
        })
        .await?;
        Ok(meta(&a))
    }

    /// One attachment with its content, for whoever may read the application.
    pub async fn attachment(
        &self,
        p: &Principal,
        id: &str,
        attachment_id: &str,
    ) -> Result<(AttachmentMeta, Vec<u8>), LifecycleError> {
        use base64::Engine;
        let (rec, org, _, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ApplicationRead, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        let (a, content) = lifecycle::attachment(&mut *self.identity.store().read().await?, id, attachment_id)
            .await?
            .ok_or(LifecycleError::NotFound("attachment"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|_| LifecycleError::NotFound("attachment"))?;
        Ok((meta(&a), bytes))
    }

    /// Checks an application's content against its call: every problem named at once.
    /// `complete` demands what submission needs (scenarios, needs, reasons, attestations).
    async fn check(
        &self,
        call: &CallRecord,
        b: &ApplicationBody,
        complete: bool,
    ) -> Result<(u32, u32), LifecycleError> {
        let mut errs = Vec::new();
        let mut unreasoned = 0u32;
        if complete && b.scenarios.is_empty() {
            errs.push(FieldError::new("scenarios", "field_required"));
        }
        for (i, s) in b.scenarios.iter().enumerate() {
            text(&mut errs, &format!("scenarios[{i}].name"), &s.name, 200);
            text(&mut errs, &format!("scenarios[{i}].purpose"), &s.purpose, 2000);
            text(
                &mut errs,
                &format!("scenarios[{i}].expected_value"),
                &s.expected_value,
                2000,
            );
            if !SECTORS.contains(&s.sector.as_str()) {
                errs.push(FieldError::new(format!("scenarios[{i}].sector"), "unknown_value").arg("value", &s.sector));
            }
        }
        if complete && b.data_needs.is_empty() {
            errs.push(FieldError::new("data_needs", "field_required"));
        }
        let (want_kind, authorizable) = if call.audience == "developer" {
            ("development", false)
        } else {
            ("resource", true)
        };
        for (i, need) in b.data_needs.iter().enumerate() {
            let path = format!("data_needs[{i}]");
            let entry = catalogs::get_entry(&mut *self.identity.store().read().await?, &need.entry_id).await?;
            let body: Option<EntryBody> = match entry {
                Some(e) if e.kind == want_kind && e.state == "published" => {
                    let b: EntryBody = stored("catalog_entries", "body_json", &e.body_json)?;
                    if authorizable && !b.authorizable {
                        errs.push(
                            FieldError::new(format!("{path}.entry_id"), "not_authorizable")
                                .arg("value", &e.title)
                                .arg("basis", b.restriction_basis.clone().unwrap_or_default()),
                        );
                    }
                    Some(b)
                }
                _ => {
                    errs.push(
                        FieldError::new(format!("{path}.entry_id"), "parent_not_published")
                            .arg("value", &need.entry_id)
                            .arg("kind", want_kind),
                    );
                    None
                }
            };
            if complete && need.fields.is_empty() {
                errs.push(FieldError::new(format!("{path}.fields"), "field_required"));
            }
            for (j, f) in need.fields.iter().enumerate() {
                if let Some(b) = &body
                    && !b.fields.iter().any(|x| x.name == f.name)
                {
                    errs.push(
                        FieldError::new(format!("{path}.fields[{j}].name"), "not_in_parent").arg("name", &f.name),
                    );
                }
                if f.reason.trim().is_empty() {
                    unreasoned += 1;
                    if complete {
                        errs.push(
                            FieldError::new(format!("{path}.fields[{j}].reason"), "reason_required")
                                .arg("name", &f.name),
                        );
                    }
                }
            }
        }
        let a = &b.attestations;
        let mut missing = 0u32;
        let mut attest = |ok: bool, field: &str| {
            if !ok {
                missing += 1;
                if complete {
                    errs.push(FieldError::new(format!("attestations.{field}"), "attestation_required"));
                }
            }
        };
        attest(a.good_credit, "good_credit");
        attest(a.security_systems, "security_systems");
        attest(!a.security_officer.trim().is_empty(), "security_officer");
        if call.audience == "operator" {
            attest(a.mlps_level3, "mlps_level3");
            attest(a.crypto_assessment, "crypto_assessment");
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        Ok((unreasoned, missing))
    }

    /// Submits a draft: the call must accept applications today, every requested field needs
    /// its reason and every attestation must be given.
    pub async fn submit_application(&self, p: &Principal, id: &str) -> Result<ApplicationView, LifecycleError> {
        self.application_event(p, id, "submit").await
    }

    /// Withdraws an application (before it is decided).
    pub async fn withdraw_application(&self, p: &Principal, id: &str) -> Result<ApplicationView, LifecycleError> {
        self.application_event(p, id, "withdraw").await
    }

    async fn application_event(&self, p: &Principal, id: &str, what: &str) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, call, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ApplicationEdit, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        let today = self.today();
        let body: ApplicationBody = stored("applications", "body_json", &rec.body_json)?;
        let event = if what == "submit" {
            let call_open = call::accepts_applications(&call_of(&call), today);
            if !call_open {
                // A closed call is the first thing to say, before what the draft lacks.
                application::transition(
                    app_state(&rec.state),
                    ApplicationEvent::Submit {
                        call_open,
                        unreasoned_fields: 0,
                        missing_attestations: 0,
                    },
                    ApplicationActor::Applicant,
                    today,
                )?;
            }
            let (unreasoned, missing) = self.check(&call, &body, true).await?;
            ApplicationEvent::Submit {
                call_open,
                unreasoned_fields: unreasoned,
                missing_attestations: missing,
            }
        } else {
            ApplicationEvent::Withdraw
        };
        let next = application::transition(app_state(&rec.state), event, ApplicationActor::Applicant, today)?;
        let now = self.identity.clock().now();
        rec.state = next.code().into();
        rec.updated_at = now;
        if what == "submit" {
            rec.submitted_at = Some(now);
        }
        let mut audit = shuyu_identity::audit::by(
            p,
            now,
            &format!("application.{what}"),
            "application",
            rec.id.clone(),
            None,
            None,
        );
        audit.payload = Some(serde_json::json!({ "call": rec.call_id, "state": rec.state }));
        let stored = rec.clone();
        save(&self.identity, audit, move |tx| {
            Box::pin(async move { lifecycle::update_application(tx.conn(), &stored).await })
        })
        .await?;
        Self::app_view(&rec, &org)
    }

    /// The applications the principal may read (optionally to one call).
    pub async fn applications(
        &self,
        p: &Principal,
        call_id: Option<&str>,
    ) -> Result<Vec<ApplicationView>, LifecycleError> {
        let all = lifecycle::applications(&mut *self.identity.store().read().await?, call_id).await?;
        let mut out = Vec::new();
        // Many applications share a call and an applicant: each is loaded once.
        let mut orgs = std::collections::HashMap::new();
        let mut call_orgs = std::collections::HashMap::new();
        for r in all {
            if !orgs.contains_key(&r.org_id) {
                orgs.insert(r.org_id.clone(), self.org(&r.org_id).await?);
            }
            if !call_orgs.contains_key(&r.call_id) {
                call_orgs.insert(r.call_id.clone(), self.load_call(&r.call_id).await?.1);
            }
            let (org, call_org) = (&orgs[&r.org_id], &call_orgs[&r.call_id]);
            if self
                .identity
                .allows(p, Action::ApplicationRead, &Self::app_resource(&r, org, call_org))
            {
                out.push(Self::app_view(&r, org)?);
            }
        }
        Ok(out)
    }

    /// One application, with its review and notice.
    pub async fn application(&self, p: &Principal, id: &str) -> Result<ApplicationView, LifecycleError> {
        let (r, org, _, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ApplicationRead, &Self::app_resource(&r, &org, &call_org))
            .await?;
        self.full_view(p, &r, &org, &call_org).await
    }

    /// The issuer of the application's call, authorized as such.
    pub(crate) async fn as_issuer(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<(ApplicationRecord, OrgRecord, CallRecord, OrgRecord), LifecycleError> {
        let (r, org, call, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::CallEdit, &Self::call_resource(&call, &call_org))
            .await?;
        Ok((r, org, call, call_org))
    }

    async fn store_app(
        &self,
        p: &Principal,
        rec: &ApplicationRecord,
        action: &str,
        state: Option<(StateTable, String)>,
    ) -> Result<(), LifecycleError> {
        let now = self.identity.clock().now();
        let audit = shuyu_identity::audit::by(p, now, action, "application", rec.id.clone(), None, None);
        self.store_app_with(audit, rec, state).await
    }

    /// Stores an application (and one of its state records) with its audit event.
    async fn store_app_with(
        &self,
        mut audit: shuyu_store::log::Event,
        rec: &ApplicationRecord,
        state: Option<(StateTable, String)>,
    ) -> Result<(), LifecycleError> {
        let now = self.identity.clock().now();
        audit.payload = Some(serde_json::json!({ "state": rec.state }));
        let stored = rec.clone();
        save(&self.identity, audit, move |tx| {
            Box::pin(async move {
                lifecycle::update_application(tx.conn(), &stored).await?;
                if let Some((table, json)) = &state {
                    lifecycle::put_state(tx.conn(), *table, &stored.id, json, now).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The call's issuer sends a submitted application (its call closed) to the expert panel:
    /// `experts` are usernames of accounts with the expert role.
    pub async fn start_review(
        &self,
        p: &Principal,
        id: &str,
        experts: &[String],
    ) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, call, call_org) = self.as_issuer(p, id).await?;
        let today = self.today();
        if call::accepts_applications(&call_of(&call), today) {
            return Err(Refused::new(
                "application",
                app_state(&rec.state).code(),
                "start_review",
                "call_not_closed",
            )
            .into());
        }
        let mut errs = Vec::new();
        let mut panel = std::collections::BTreeMap::new();
        let mut c = self.identity.store().read().await?;
        for (i, name) in experts.iter().enumerate() {
            match shuyu_store::users::find_by_username(&mut c, name).await? {
                Some(u) if u.roles.contains(shuyu_core::party::Role::Expert) => {
                    panel.insert(u.id.to_string(), ExpertState::Assigned);
                }
                _ => errs.push(FieldError::new(format!("experts[{i}]"), "not_an_expert").arg("value", name)),
            }
        }
        drop(c);
        let body: CallBody = stored("calls", "body_json", &call.body_json)?;
        if panel.len() < body.quorum as usize {
            errs.push(FieldError::new("experts", "quorum_range"));
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        let next = application::transition(
            app_state(&rec.state),
            ApplicationEvent::StartReview,
            ApplicationActor::Issuer,
            today,
        )?;
        rec.state = next.code().into();
        rec.updated_at = self.identity.clock().now();
        let review = Review {
            criteria: body.criteria.len(),
            quorum: body.quorum as usize,
            experts: panel,
            closed: false,
        };
        let json = serde_json::to_string(&review).unwrap_or_default();
        self.store_app(p, &rec, "application.start_review", Some((StateTable::Review, json)))
            .await?;
        self.full_view(p, &rec, &org, &call_org).await
    }

    /// An assigned expert declares a conflict of interest (or none), or scores every criterion.
    pub async fn expert(&self, p: &Principal, id: &str, event: ReviewEvent) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, _, call_org) = self.load_app(id).await?;
        self.identity
            .authorize(p, Action::ReviewScore, &Self::app_resource(&rec, &org, &call_org))
            .await?;
        let json = lifecycle::get_state(&mut *self.identity.store().read().await?, StateTable::Review, id)
            .await?
            .ok_or(LifecycleError::NotFound("review"))?;
        let review: Review = serde_json::from_str(&json).map_err(|_| LifecycleError::NotFound("review"))?;
        let next = crate::review::transition(&review, &event, &ReviewActor::Expert(p.user_id.to_string()))?;
        rec.updated_at = self.identity.clock().now();
        let action = match event {
            ReviewEvent::Declare { .. } => "review.declare",
            _ => "review.score",
        };
        self.store_app(
            p,
            &rec,
            action,
            Some((StateTable::Review, serde_json::to_string(&next).unwrap_or_default())),
        )
        .await?;
        self.full_view(p, &rec, &org, &call_org).await
    }

    /// The issuer decides on the panel's aggregate (closing the review): approval needs the
    /// government approval's reference and puts the result on public notice.
    pub async fn decide(&self, p: &Principal, id: &str, d: &Decision) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, call, call_org) = self.as_issuer(p, id).await?;
        let json = lifecycle::get_state(&mut *self.identity.store().read().await?, StateTable::Review, id)
            .await?
            .ok_or(LifecycleError::NotFound("review"))?;
        let review: Review = serde_json::from_str(&json).map_err(|_| LifecycleError::NotFound("review"))?;
        let closed = crate::review::transition(&review, &ReviewEvent::Close, &ReviewActor::Authority)?;
        let today = self.today();
        let next = application::transition(
            app_state(&rec.state),
            ApplicationEvent::Decide {
                approved: d.approved,
                government_approval: !d.approval_ref.trim().is_empty(),
            },
            ApplicationActor::Issuer,
            today,
        )?;
        rec.state = next.code().into();
        rec.decision_json = serde_json::to_string(d).ok();
        rec.updated_at = self.identity.clock().now();
        self.store_app(
            p,
            &rec,
            "application.decide",
            Some((StateTable::Review, serde_json::to_string(&closed).unwrap_or_default())),
        )
        .await?;
        if next == ApplicationState::OnNotice {
            let body: CallBody = stored("calls", "body_json", &call.body_json)?;
            let until = today
                .checked_add(jiff::Span::new().days(i64::from(body.notice_days.max(1))))
                .unwrap_or(today);
            let notice = NoticeRecord {
                notice: Notice {
                    until,
                    objections: Vec::new(),
                    closed: false,
                },
                objections: Vec::new(),
            };
            self.store_app(
                p,
                &rec,
                "notice.publish",
                Some((StateTable::Notice, serde_json::to_string(&notice).unwrap_or_default())),
            )
            .await?;
        }
        self.full_view(p, &rec, &org, &call_org).await
    }

    pub(crate) async fn notice_of(&self, id: &str) -> Result<NoticeRecord, LifecycleError> {
        let json = lifecycle::get_state(&mut *self.identity.store().read().await?, StateTable::Notice, id)
            .await?
            .ok_or(LifecycleError::NotFound("notice"))?;
        stored("lifecycle_states", "notice", &json)
    }

    /// Anyone with an account objects to a result on public notice, during its period.
    pub async fn object(&self, p: &Principal, id: &str, text_: &str) -> Result<ApplicationView, LifecycleError> {
        let (rec, org, _, call_org) = self.load_app(id).await?;
        let mut errs = Vec::new();
        let t = text(&mut errs, "text", text_, 4000);
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        let mut n = self.notice_of(id).await?;
        n.notice = crate::notice::transition(&n.notice, NoticeEvent::Object, false, self.today())?;
        n.objections.push(Objection {
            by: p.user_id.to_string(),
            text: t,
            answer: None,
        });
        self.store_app(
            p,
            &rec,
            "notice.object",
            Some((StateTable::Notice, serde_json::to_string(&n).unwrap_or_default())),
        )
        .await?;
        self.full_view(p, &rec, &org, &call_org).await
    }

    /// The issuer answers objection `index`.
    pub async fn answer_objection(
        &self,
        p: &Principal,
        id: &str,
        index: usize,
        answer: &str,
    ) -> Result<ApplicationView, LifecycleError> {
        let (rec, org, _, call_org) = self.as_issuer(p, id).await?;
        let mut errs = Vec::new();
        let a = text(&mut errs, "answer", answer, 4000);
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        let mut n = self.notice_of(id).await?;
        n.notice = crate::notice::transition(&n.notice, NoticeEvent::Answer { index }, true, self.today())?;
        if let Some(o) = n.objections.get_mut(index) {
            o.answer = Some(a);
        }
        self.store_app(
            p,
            &rec,
            "notice.answer",
            Some((StateTable::Notice, serde_json::to_string(&n).unwrap_or_default())),
        )
        .await?;
        self.full_view(p, &rec, &org, &call_org).await
    }

    /// The issuer closes the notice (its period over, every objection answered): the
    /// application is cleared for an agreement.
    pub async fn clear_notice(&self, p: &Principal, id: &str) -> Result<ApplicationView, LifecycleError> {
        let (mut rec, org, _, call_org) = self.as_issuer(p, id).await?;
        let mut n = self.notice_of(id).await?;
        let today = self.today();
        n.notice = crate::notice::transition(&n.notice, NoticeEvent::Close, true, today)?;
        let next = application::transition(
            app_state(&rec.state),
            ApplicationEvent::ClearNotice { notice_closed: true },
            ApplicationActor::Issuer,
            today,
        )?;
        rec.state = next.code().into();
        rec.updated_at = self.identity.clock().now();
        self.store_app(
            p,
            &rec,
            "notice.close",
            Some((StateTable::Notice, serde_json::to_string(&n).unwrap_or_default())),
        )
        .await?;
        self.full_view(p, &rec, &org, &call_org).await
    }
    /// What time alone changes in calls and applications, recorded by the
    /// platform: a call past its deadline is closed (`call.close`), and a result on public
    /// notice whose period is over with every objection answered is cleared (`notice.close`)
    /// — the issuer then drafts the agreement. A notice with an objection unanswered stays
    /// open; its issuer is reminded to answer (`notice_answer`). A record that cannot be read
    /// is reported and left as it is (never moved on a guess); the others still move.
    /// Returns how many changed.
    pub(crate) async fn sweep_applications(&self) -> Result<usize, LifecycleError> {
        let today = self.today();
        let system = || shuyu_audit::entry::Actor::system("lifecycle");
        let mut changed = 0;
        let calls = lifecycle::calls(&mut *self.identity.store().read().await?).await?;
        for mut rec in calls {
            let before = call_of(&rec);
            let next = call::transition(&before, CallEvent::Tick, CallActor::System, today)?;
            if next == before {
                continue;
            }
            rec.state = next.state.code().into();
            rec.updated_at = self.identity.clock().now();
            let event = shuyu_identity::audit::change(
                rec.updated_at,
                system(),
                None,
                "call.close",
                "call",
                rec.id.clone(),
                None,
                None,
            );
            let stored = rec.clone();
            save(&self.identity, event, move |tx| {
                Box::pin(async move { lifecycle::update_call(tx.conn(), &stored).await })
            })
            .await?;
            changed += 1;
        }
        let apps = lifecycle::applications(&mut *self.identity.store().read().await?, None).await?;
        for mut rec in apps
            .into_iter()
            .filter(|a| a.state == ApplicationState::OnNotice.code())
        {
            let mut n = match self.notice_of(&rec.id).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(application = %rec.id, error = %e, "a notice could not be read; left as it is");
                    continue;
                }
            };
            let Ok(closed) = crate::notice::transition(&n.notice, NoticeEvent::Close, true, today) else {
                continue;
            };
            n.notice = closed;
            let next = application::transition(
                app_state(&rec.state),
                ApplicationEvent::ClearNotice { notice_closed: true },
                ApplicationActor::System,
                today,
            )?;
            rec.state = next.code().into();
            rec.updated_at = self.identity.clock().now();
            let json = serde_json::to_string(&n).map_err(|e| {
                LifecycleError::Store(shuyu_store::StoreError::Corrupt {
                    table: "lifecycle_states",
                    column: "notice",
                    detail: e.to_string(),
                })
            })?;
            let event = shuyu_identity::audit::change(
                rec.updated_at,
                system(),
                None,
                "notice.close",
                "application",
                rec.id.clone(),
                None,
                None,
            );
            self.store_app_with(event, &rec, Some((StateTable::Notice, json)))
                .await?;
            changed += 1;
        }
        Ok(changed)
    }
}
