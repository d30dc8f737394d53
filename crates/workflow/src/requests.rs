//! Data requests as a service (一场景一清单一审核, R-24): per approved scenario of an
//! agreement in force, one list of development-catalog fields with row scope, purpose,
//! retention and security measures, reviewed by the chain the agreement implies —
//! an operation agreement granted by the authority is reviewed by the authority and by
//! each provider whose data it names (Binzhou's one level); a development agreement
//! granted by an operator, by that operator (Yancheng's two levels). Approval issues the
//! **scenario manifest**: one canonical document signed with the domain's key, which the
//! operation domain compiles into enforcement. Any change is a new revision and a new
//! review; each manifest carries its diff against the one before.
//!
//! Everything beneath an agreement is reached through [`Lifecycle::guard`]: the agreement
//! (and, for a development agreement, the operator's own agreement above it) must be in
//! force when a request starts, and a request still running when it stops being in force
//! (suspension, termination, cancellation, expiry) ends with the same refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shuyu_catalog::entries::EntryBody;
use shuyu_core::actor::Principal;
use shuyu_core::error::{FieldError, Validation};
use shuyu_core::id::OrgId;
use shuyu_core::party::{OrgKind, RegionCode};
use shuyu_identity::IdentityError;
use shuyu_policy::{Action, Resource};
use shuyu_store::agreements::{self, AgreementRecord};
use shuyu_store::catalogs::{self, EntryRecord};
use shuyu_store::data_requests::{self, DataRequestRecord, ManifestRecord};
use shuyu_store::regions;
use utoipa::ToSchema;

use crate::Refused;
use crate::agreement::{self as machine, Agreement, AgreementKind};
use crate::contracts::AgreementDocument;
use crate::data_request::{self, RequestActor, RequestEffect, RequestEvent, RequestState};
use crate::service::{FieldNeed, Lifecycle, LifecycleError, Scenario, text};
use jiff::civil::Date;

/// What an approved scenario may put out of the domain (each still passes the gate).
pub const OUTPUTS: [&str; 5] = ["statistics", "report", "model", "verification", "dataset"];

/// The longest retention a request may ask for (days).
pub const MAX_RETENTION_DAYS: u32 = 3 * 366;

/// The longest a caller may wait for a change ([`Lifecycle::wait_data_request`]).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// One line of the list: fields of a published development-catalog entry, each with its reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestItem {
    /// The development-catalog entry.
    pub entry_id: String,
    /// The fields, each with why it is needed.
    pub fields: Vec<FieldNeed>,
}

/// Which rows: a region (a county, or the city) and a period, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowScope {
    /// A region code (6 digits); none means the whole area of the data.
    #[serde(default)]
    pub region: Option<String>,
    /// First day of the period.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub from: Option<Date>,
    /// Last day of the period.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
}

/// An operator's (a reviewer's) override of one field's de-identification technique for this
/// scenario, with its reason; it becomes part of the manifest the workspace follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskingOverride {
    /// The development entry (as in the list).
    pub entry_id: String,
    /// The field.
    pub field: String,
    /// The technique's code (one of `shuyu_mask::catalog::RULE_CODES`).
    pub technique: String,
    /// Why.
    pub reason: String,
    /// The reviewing organisation that set it (filled in by the platform).
    #[serde(default)]
    pub by_org: String,
}

/// The list as written (数据需求清单 of one scenario).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequestBody {
    /// The datasets and fields.
    #[serde(default)]
    pub items: Vec<RequestItem>,
    /// The row scope.
    #[serde(default)]
    pub rows: RowScope,
    /// What the data is used for in this scenario.
    #[serde(default)]
    pub purpose: String,
    /// How long results and samples may be kept (days).
    #[serde(default)]
    pub retention_days: u32,
    /// The security measures taken.
    #[serde(default)]
    pub security_measures: String,
    /// The kinds of output the scenario needs (from [`OUTPUTS`]).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Reviewers' overrides of the rule catalog (set through a review, never by the requester).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(read_only)]
    pub masking: Vec<MaskingOverride>,
}

/// A new request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDataRequest {
    /// The agreement it is made under.
    pub agreement_id: String,
    /// The scenario's name, as the agreement's scope lists it.
    pub scenario: String,
    /// The list.
    #[serde(default)]
    pub body: DataRequestBody,
}

/// One dataset of a manifest: what the domain will expose of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestDataset {
    /// The development entry.
    pub entry_id: String,
    /// The resource entry it derives from.
    pub resource_entry_id: String,
    /// The dataset behind it.
    pub dataset_id: Option<String>,
    /// The dataset's name.
    pub dataset_name: Option<String>,
    /// The provider keeping it.
    pub provider_org: String,
    /// The approved fields, sorted.
    pub fields: Vec<String>,
}

/// The scenario manifest (场景清单): everything the operation domain enforces for one
/// scenario, canonical (struct order, sorted lists) and signed by the domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScenarioManifest {
    /// The data request.
    pub request_id: String,
    /// The approved revision.
    pub revision: u32,
    /// The agreement.
    pub agreement_id: String,
    /// The scenario, as the agreement lists it.
    pub scenario: Scenario,
    /// The requesting organisation.
    pub requester_org: String,
    /// The datasets and fields.
    pub datasets: Vec<ManifestDataset>,
    /// The row scope.
    pub rows: RowScope,
    /// The kinds of output allowed.
    pub outputs: Vec<String>,
    /// First day of the term.
    pub term_start: String,
    /// Last day of the term (the renewed term's, once renewed).
    pub term_end: String,
    /// Retention of results and samples (days).
    pub retention_days: u32,
    /// The security measures.
    pub security_measures: String,
    /// Cross-border transfer: always `none` (R-38(5)).
    pub cross_border: String,
    /// The organisations that approved it.
    pub approved_by: Vec<String>,
    /// Overrides of the rule catalog for this scenario, each with its reason (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masking: Vec<MaskingOverride>,
    /// The digest of the manifest it replaces.
    pub previous_digest: Option<String>,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
}

impl ScenarioManifest {
    /// SHA-256 of the canonical JSON, hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(serde_json::to_vec(self).unwrap_or_default()))
    }
}

/// The bytes the domain signs for a manifest.
pub fn manifest_message(digest: &str) -> String {
    format!("shuyu-manifest-v1\n{digest}\n")
}

/// One difference between a manifest and the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ManifestChange {
    /// What changed: `dataset`, `fields`, `rows`, `outputs`, `term_end`, `retention_days`,
    /// `security_measures`.
    pub what: String,
    /// The development entry, for `dataset` and `fields`.
    pub entry_id: Option<String>,
    /// What was added.
    pub added: Vec<String>,
    /// What was removed.
    pub removed: Vec<String>,
}

/// The changes from `before` to `after` (empty for the first manifest).
pub fn manifest_diff(before: &ScenarioManifest, after: &ScenarioManifest) -> Vec<ManifestChange> {
    let mut out = Vec::new();
    let mut change = |what: &str, entry: Option<&str>, added: Vec<String>, removed: Vec<String>| {
        if !added.is_empty() || !removed.is_empty() {
            out.push(ManifestChange {
                what: what.into(),
                entry_id: entry.map(str::to_string),
                added,
                removed,
            });
        }
    };
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> (Vec<String>, Vec<String>) {
        (b.difference(a).cloned().collect(), a.difference(b).cloned().collect())
    };
    let old: BTreeMap<&str, &ManifestDataset> = before.datasets.iter().map(|d| (d.entry_id.as_str(), d)).collect();
    let new: BTreeMap<&str, &ManifestDataset> = after.datasets.iter().map(|d| (d.entry_id.as_str(), d)).collect();
    let (added, removed) = diff(
        &old.keys().map(|k| k.to_string()).collect(),
        &new.keys().map(|k| k.to_string()).collect(),
    );
    change("dataset", None, added, removed);
    for (id, n) in &new {
        let before_fields = old.get(id).map(|o| set(&o.fields)).unwrap_or_default();
        let (a, r) = diff(&before_fields, &set(&n.fields));
        change("fields", Some(id), a, r);
    }
    for (id, o) in &old {
        if !new.contains_key(id) {
            change("fields", Some(id), Vec::new(), o.fields.clone());
        }
    }
    let one = |v: String| vec![v];
    if before.rows != after.rows {
        change(
            "rows",
            None,
            one(serde_json::to_string(&after.rows).unwrap_or_default()),
            one(serde_json::to_string(&before.rows).unwrap_or_default()),
        );
    }
    let (a, r) = diff(&set(&before.outputs), &set(&after.outputs));
    change("outputs", None, a, r);
    for (what, b, a) in [
        ("term_end", before.term_end.clone(), after.term_end.clone()),
        (
            "retention_days",
            before.retention_days.to_string(),
            after.retention_days.to_string(),
        ),
        (
            "security_measures",
            before.security_measures.clone(),
            after.security_measures.clone(),
        ),
    ] {
        if a != b {
            change(what, None, one(a), one(b));
        }
    }
    out
}

/// An issued manifest as shown: the document, its digest, the domain's signature, and
/// what changed against the one before.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ManifestView {
    /// The document.
    pub manifest: ScenarioManifest,
    /// Its digest.
    pub digest: String,
    /// The domain's Ed25519 signature over `shuyu-manifest-v1\n{digest}\n`, base64.
    pub signature: String,
    /// The changes against the previous revision's manifest.
    pub changes: Vec<ManifestChange>,
}

/// A data request as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataRequestView {
    /// Its id.
    pub id: String,
    /// The agreement.
    pub agreement_id: String,
    /// The scenario.
    pub scenario: String,
    /// The requester.
    pub requester_org: String,
    /// `draft`, `in_review`, `approved`, `rejected` or `revoked`.
    pub state: String,
    /// The revision being written, reviewed or in force.
    pub revision: u32,
    /// The review chain (organisation ids).
    pub reviewers: Vec<String>,
    /// Who has still to approve.
    pub pending: Vec<String>,
    /// The list.
    pub body: DataRequestBody,
    /// The last reviewer's note.
    pub note: Option<String>,
    /// Whether the agreement beneath it is in force today.
    pub in_force: bool,
    /// The manifest in force (the latest issued), if any.
    pub manifest: Option<ManifestView>,
    /// Changes with each save: pass it back as `since` to wait for the next change.
    pub version: String,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Approve (the last approval issues the manifest).
    Approve,
    /// Send back for changes.
    Return,
    /// Refuse.
    Reject,
}

fn parse_state(json: &str) -> Result<RequestState, LifecycleError> {
    serde_json::from_str(json).map_err(|_| LifecycleError::NotFound("data_request"))
}

fn revision_of(s: &RequestState) -> u32 {
    match s {
        RequestState::Draft { revision }
        | RequestState::InReview { revision, .. }
        | RequestState::Approved { revision } => *revision,
        RequestState::Rejected | RequestState::Revoked => 0,
    }
}

/// A development entry resolved up its chain to the resource entry it derives from.
struct Resolved {
    entry: EntryRecord,
    body: EntryBody,
    ancestors: Vec<String>,
    resource: EntryRecord,
}

impl Lifecycle {
    /// Whether the agreement is in force today: its own machine says so and, for an
    /// agreement granted by an operator (two-level mode), the operator's own agreement
    /// with the authority is in force too — terminating the operator closes every
    /// developer's door beneath it.
    pub async fn agreement_in_force(&self, rec: &AgreementRecord) -> Result<bool, LifecycleError> {
        let today = self.today();
        let own = serde_json::from_str::<Agreement>(&rec.machine_json).is_ok_and(|m| machine::is_effective(&m, today));
        if !own {
            return Ok(false);
        }
        let grantor = self.org(&rec.grantor_org).await?;
        if grantor.kind != OrgKind::Operator {
            return Ok(true);
        }
        let above = agreements::of_org(&mut *self.identity.store().read().await?, &rec.grantor_org).await?;
        Ok(above.iter().any(|a| {
            a.grantee_org == rec.grantor_org
                && serde_json::from_str::<Agreement>(&a.machine_json)
                    .is_ok_and(|m| m.kind == AgreementKind::Operation && machine::is_effective(&m, today))
        }))
    }

    /// The agreement, when it is in force (else `NotInForce`): what work beneath it checks
    /// before it starts.
    pub async fn require_in_force(&self, agreement_id: &str) -> Result<AgreementRecord, LifecycleError> {
        let rec = agreements::get(&mut *self.identity.store().read().await?, agreement_id)
            .await?
            .ok_or(LifecycleError::NotFound("agreement"))?;
        if !self.agreement_in_force(&rec).await? {
            return Err(LifecycleError::NotInForce {
                agreement: agreement_id.to_string(),
            });
        }
        Ok(rec)
    }

    /// Runs `work` beneath agreement `agreement_id`: refused if the agreement is not in force
    /// now, and cut short with the same refusal the moment it stops being in force
    /// (suspension, termination, cancellation — noticed at once — or expiry, noticed within
    /// a few seconds). Jobs, queries and waits of developers all run through here.
    pub async fn guard<T>(
        &self,
        agreement_id: &str,
        work: impl std::future::Future<Output = Result<T, LifecycleError>>,
    ) -> Result<T, LifecycleError> {
        self.require_in_force(agreement_id).await?;
        let mut changes = self.changes.subscribe();
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                r = changes.changed() => {
                    if r.is_err() {
                        return Err(LifecycleError::NotInForce { agreement: agreement_id.to_string() });
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            self.require_in_force(agreement_id).await?;
        }
    }

    /// The policy resource of a data request: what its reviewers are authorized against — also
    /// for the releases beneath it (R-38: the operator's reviewers check what leaves).
    pub async fn data_request_resource(&self, request_id: &str) -> Result<Resource, LifecycleError> {
        let (rec, org, _) = self.load_request(request_id).await?;
        self.request_resource(&rec, &org)
    }

    fn request_resource(
        &self,
        r: &DataRequestRecord,
        org: &shuyu_store::orgs::OrgRecord,
    ) -> Result<Resource, LifecycleError> {
        let reviewers: Vec<String> = crate::service::stored("data_requests", "reviewers_json", &r.reviewers_json)?;
        Ok(Resource::DataRequest {
            id: r.id.clone(),
            org: org.id,
            org_kind: org.kind,
            region: org.region.clone(),
            reviewers: reviewers.iter().filter_map(|s| s.parse::<OrgId>().ok()).collect(),
            state: r.state.clone(),
        })
    }

    async fn resolve(&self, entry_id: &str) -> Result<Option<Resolved>, LifecycleError> {
        let mut conn = self.identity.store().read().await?;
        let Some(entry) = catalogs::get_entry(&mut conn, entry_id).await? else {
            return Ok(None);
        };
        if entry.kind != "development" || entry.state != "published" {
            return Ok(None);
        }
        let body: EntryBody = crate::service::stored("catalog_entries", "body_json", &entry.body_json)?;
        let mut ancestors = vec![entry.id.clone()];
        let mut cur = entry.clone();
        // development → operation → resource; a bounded walk, whatever is stored.
        for _ in 0..4 {
            if cur.kind == "resource" {
                return Ok(Some(Resolved {
                    entry,
                    body,
                    ancestors,
                    resource: cur,
                }));
            }
            let Some(parent) = cur.parent_id.clone() else { break };
            let Some(next) = catalogs::get_entry(&mut conn, &parent).await? else {
                break;
            };
            ancestors.push(next.id.clone());
            cur = next;
        }
        Ok(None)
    }

    /// Checks a list against the agreement's scope: every problem named at once. Returns the
    /// number of fields without a reason and the resolved entries.
    async fn check_request(
        &self,
        doc: &AgreementDocument,
        b: &DataRequestBody,
        complete: bool,
    ) -> Result<(u32, Vec<(RequestItem, Resolved)>), LifecycleError> {
        let mut errs = Vec::new();
        let mut unreasoned = 0u32;
        let mut resolved = Vec::new();
        if complete && b.items.is_empty() {
            errs.push(FieldError::new("items", "field_required"));
        }
        for (i, item) in b.items.iter().enumerate() {
            let path = format!("items[{i}]");
            let Some(r) = self.resolve(&item.entry_id).await? else {
                errs.push(
                    FieldError::new(format!("{path}.entry_id"), "parent_not_published")
                        .arg("value", &item.entry_id)
                        .arg("kind", "development"),
                );
                continue;
            };
            // Least necessary: within the agreement's data-need list, field by field.
            let need = doc.scope.data_needs.iter().find(|n| r.ancestors.contains(&n.entry_id));
            if need.is_none() {
                errs.push(
                    FieldError::new(format!("{path}.entry_id"), "outside_agreement").arg("value", &r.entry.title),
                );
            }
            if complete && item.fields.is_empty() {
                errs.push(FieldError::new(format!("{path}.fields"), "field_required"));
            }
            let mut seen = BTreeSet::new();
            for (j, f) in item.fields.iter().enumerate() {
                let fp = format!("{path}.fields[{j}]");
                if !r.body.fields.iter().any(|x| x.name == f.name) {
                    errs.push(FieldError::new(format!("{fp}.name"), "not_in_parent").arg("name", &f.name));
                } else if need.is_some_and(|n| !n.fields.iter().any(|x| x.name == f.name)) {
                    errs.push(FieldError::new(format!("{fp}.name"), "outside_agreement").arg("value", &f.name));
                }
                if !seen.insert(f.name.clone()) {
                    errs.push(FieldError::new(format!("{fp}.name"), "duplicate_field").arg("name", &f.name));
                }
                if f.reason.trim().is_empty() {
                    unreasoned += 1;
                    if complete {
                        errs.push(FieldError::new(format!("{fp}.reason"), "reason_required").arg("name", &f.name));
                    }
                }
            }
            resolved.push((item.clone(), r));
        }
        if let Some(code) = &b.rows.region {
            let known = match RegionCode::parse(code) {
                Ok(c) => regions::get(&mut *self.identity.store().read().await?, &c)
                    .await?
                    .is_some(),
                Err(_) => false,
            };
            if !known {
                errs.push(FieldError::new("rows.region", "unknown_region").arg("value", code));
            }
        }
        if let (Some(from), Some(to)) = (b.rows.from, b.rows.to)
            && to < from
        {
            errs.push(FieldError::new("rows.to", "date_before_start").arg("value", to));
        }
        if complete || !b.purpose.trim().is_empty() {
            text(&mut errs, "purpose", &b.purpose, 2000);
        }
        if complete || !b.security_measures.trim().is_empty() {
            text(&mut errs, "security_measures", &b.security_measures, 4000);
        }
        if complete && b.retention_days == 0 {
            errs.push(FieldError::new("retention_days", "field_required"));
        }
        if b.retention_days > MAX_RETENTION_DAYS {
            errs.push(FieldError::new("retention_days", "too_large").arg("max", MAX_RETENTION_DAYS));
        }
        if complete && b.outputs.is_empty() {
            errs.push(FieldError::new("outputs", "field_required"));
        }
        for (i, o) in b.outputs.iter().enumerate() {
            if !OUTPUTS.contains(&o.as_str()) {
                errs.push(FieldError::new(format!("outputs[{i}]"), "unknown_value").arg("value", o));
            }
        }
        if !complete && !b.masking.is_empty() {
            errs.push(FieldError::new("masking", "set_by_reviewers"));
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        Ok((unreasoned, resolved))
    }

    async fn agreement_doc(&self, rec: &AgreementRecord) -> Result<(Agreement, AgreementDocument), LifecycleError> {
        let m: Agreement =
            serde_json::from_str(&rec.machine_json).map_err(|_| LifecycleError::NotFound("agreement"))?;
        let doc: AgreementDocument =
            serde_json::from_str(&rec.body_json).map_err(|_| LifecycleError::NotFound("agreement"))?;
        Ok((m, doc))
    }

    async fn load_request(
        &self,
        id: &str,
    ) -> Result<(DataRequestRecord, shuyu_store::orgs::OrgRecord, AgreementRecord), LifecycleError> {
        let mut conn = self.identity.store().read().await?;
        let r = data_requests::get(&mut conn, id)
            .await?
            .ok_or(LifecycleError::NotFound("data_request"))?;
        let a = agreements::get(&mut conn, &r.agreement_id)
            .await?
            .ok_or(LifecycleError::NotFound("agreement"))?;
        drop(conn);
        let org = self.org(&r.requester_org).await?;
        Ok((r, org, a))
    }

    async fn request_view(
        &self,
        r: &DataRequestRecord,
        a: &AgreementRecord,
    ) -> Result<DataRequestView, LifecycleError> {
        let in_force = self.agreement_in_force(a).await?;
        self.request_view_with(r, in_force).await
    }

    /// The view, with whether its agreement is in force already known.
    async fn request_view_with(
        &self,
        r: &DataRequestRecord,
        in_force: bool,
    ) -> Result<DataRequestView, LifecycleError> {
        let state = parse_state(&r.machine_json)?;
        let manifests = data_requests::manifests(&mut *self.identity.store().read().await?, &r.id).await?;
        let manifest = manifests.first().map(|m| manifest_view(m, manifests.get(1)));
        Ok(DataRequestView {
            id: r.id.clone(),
            agreement_id: r.agreement_id.clone(),
            scenario: r.scenario.clone(),
            requester_org: r.requester_org.clone(),
            state: state.code().into(),
            revision: revision_of(&state),
            reviewers: crate::service::stored("data_requests", "reviewers_json", &r.reviewers_json)?,
            pending: match &state {
                RequestState::InReview { pending, .. } => pending.iter().cloned().collect(),
                _ => Vec::new(),
            },
            body: crate::service::stored("data_requests", "body_json", &r.body_json)?,
            note: r.note.clone(),
            in_force,
            manifest: manifest.transpose()?,
            version: r.updated_at.as_millisecond().to_string(),
        })
    }

    /// The requester's reads and writes run beneath its agreement; reviewers and oversight
    /// read whatever the agreement's state.
    async fn beneath<T>(
        &self,
        p: &Principal,
        r: &DataRequestRecord,
        work: impl std::future::Future<Output = Result<T, LifecycleError>>,
    ) -> Result<T, LifecycleError> {
        if p.org_id.to_string() == r.requester_org {
            self.guard(&r.agreement_id, work).await
        } else {
            work.await
        }
    }

    /// Starts the data request of one scenario of an agreement in force (its grantee).
    pub async fn create_data_request(
        &self,
        p: &Principal,
        n: &NewDataRequest,
    ) -> Result<DataRequestView, LifecycleError> {
        let a = agreements::get(&mut *self.identity.store().read().await?, &n.agreement_id)
            .await?
            .ok_or(LifecycleError::NotFound("agreement"))?;
        let org = self.org(&a.grantee_org).await?;
        let now = self.identity.clock().now();
        let mut rec = DataRequestRecord {
            id: uuid::Uuid::now_v7().to_string(),
            agreement_id: a.id.clone(),
            scenario: n.scenario.trim().to_string(),
            requester_org: a.grantee_org.clone(),
            state: "draft".into(),
            machine_json: serde_json::to_string(&RequestState::Draft { revision: 1 }).unwrap_or_default(),
            reviewers_json: "[]".into(),
            body_json: String::new(),
            note: None,
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
        };
        self.identity
            .authorize(p, Action::DataRequestEdit, &self.request_resource(&rec, &org)?)
            .await?;
        if p.org_id != org.id {
            return Err(IdentityError::Forbidden {
                action: "data_request.edit",
            }
            .into());
        }
        self.guard(&a.id, async {
            let (_, doc) = self.agreement_doc(&a).await?;
            if !doc.scope.scenarios.iter().any(|s| s.name == rec.scenario) {
                return Err(FieldError::new("scenario", "outside_agreement")
                    .arg("value", &rec.scenario)
                    .into());
            }
            self.check_request(&doc, &n.body, false).await?;
            rec.body_json = serde_json::to_string(&n.body).unwrap_or_default();
            let mut event = shuyu_identity::audit::by(
                p,
                now,
                "data_request.create",
                "data_request",
                rec.id.clone(),
                None,
                None,
            );
            event.payload = Some(serde_json::json!({ "agreement": rec.agreement_id, "scenario": rec.scenario }));
            event.retention_tag = Some(crate::contracts::retention_tag(&rec.agreement_id));
            let stored = rec.clone();
            crate::service::save(&self.identity, event, move |tx| {
                Box::pin(async move { data_requests::insert(tx.conn(), &stored).await })
            })
            .await
            .map_err(|e| match e {
                LifecycleError::Store(shuyu_store::StoreError::Unique(_)) => {
                    FieldError::new("scenario", "one_list_per_scenario")
                        .arg("value", &rec.scenario)
                        .into()
                }
                e => e,
            })?;
            self.changed();
            self.request_view(&rec, &a).await
        })
        .await
    }

    /// Rewrites a draft's list.
    pub async fn update_data_request(
        &self,
        p: &Principal,
        id: &str,
        body: &DataRequestBody,
    ) -> Result<DataRequestView, LifecycleError> {
        let (mut rec, org, a) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestEdit, &self.request_resource(&rec, &org)?)
            .await?;
        self.guard(&a.id, async {
            let state = parse_state(&rec.machine_json)?;
            if !matches!(state, RequestState::Draft { .. }) {
                return Err(Refused::new("data_request", state.code(), "update", "not_a_draft").into());
            }
            let (_, doc) = self.agreement_doc(&a).await?;
            self.check_request(&doc, body, false).await?;
            // Reviewers' overrides stay with the list; the requester cannot change them.
            let before: DataRequestBody = crate::service::stored("data_requests", "body_json", &rec.body_json)?;
            let mut body = body.clone();
            body.masking = before.masking;
            rec.body_json = serde_json::to_string(&body).unwrap_or_default();
            self.store_request(p, &mut rec, "data_request.update", None, serde_json::json!({}))
                .await?;
            self.request_view(&rec, &a).await
        })
        .await
    }

    async fn store_request(
        &self,
        p: &Principal,
        rec: &mut DataRequestRecord,
        action: &str,
        manifest: Option<ManifestRecord>,
        payload: serde_json::Value,
    ) -> Result<(), LifecycleError> {
        let read_at = rec.updated_at;
        let now = self.identity.clock().now();
        rec.updated_at = crate::service::later(read_at, now);
        let mut event = shuyu_identity::audit::by(p, now, action, "data_request", rec.id.clone(), None, None);
        event.payload = Some(serde_json::json!({ "state": rec.state, "detail": payload }));
        event.retention_tag = Some(crate::contracts::retention_tag(&rec.agreement_id));
        let stored = rec.clone();
        crate::service::save(&self.identity, event, move |tx| {
            Box::pin(async move {
                data_requests::update(tx.conn(), &stored, read_at).await?;
                if let Some(m) = manifest {
                    data_requests::insert_manifest(tx.conn(), &m).await?;
                }
                Ok(())
            })
        })
        .await?;
        self.changed();
        Ok(())
    }

    /// The requester submits, amends (a new revision and review) or withdraws its request.
    pub async fn data_request_event(
        &self,
        p: &Principal,
        id: &str,
        event: &str,
    ) -> Result<DataRequestView, LifecycleError> {
        let (mut rec, org, a) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestEdit, &self.request_resource(&rec, &org)?)
            .await?;
        if p.org_id != org.id {
            return Err(IdentityError::Forbidden {
                action: "data_request.edit",
            }
            .into());
        }
        let state = parse_state(&rec.machine_json)?;
        let work = async {
            let (ev, reviewers) = match event {
                "submit" => {
                    let (_, doc) = self.agreement_doc(&a).await?;
                    let body: DataRequestBody = crate::service::stored("data_requests", "body_json", &rec.body_json)?;
                    let (unreasoned, resolved) = self.check_request(&doc, &body, true).await?;
                    let reviewers = self.review_chain(&a, &resolved).await?;
                    (
                        RequestEvent::Submit {
                            reviewers: reviewers.clone(),
                            unreasoned_fields: unreasoned,
                            agreement_effective: self.agreement_in_force(&a).await?,
                        },
                        Some(reviewers),
                    )
                }
                "amend" => (RequestEvent::Amend, None),
                "withdraw" => (RequestEvent::Revoke, None),
                _ => return Err(LifecycleError::NotFound("event")),
            };
            let (next, effects) = data_request::transition(&state, &ev, &RequestActor::Requester)?;
            if let Some(r) = reviewers {
                rec.reviewers_json = serde_json::to_string(&r).unwrap_or_default();
            }
            if event == "submit" {
                rec.note = None;
            }
            rec.state = next.code().into();
            rec.machine_json = serde_json::to_string(&next).unwrap_or_default();
            self.store_request(
                p,
                &mut rec,
                &format!("data_request.{event}"),
                None,
                serde_json::json!({ "effects": effects }),
            )
            .await?;
            self.request_view(&rec, &a).await
        };
        // Withdrawing is always possible, even when the agreement is no longer in force.
        if event == "withdraw" {
            work.await
        } else {
            self.guard(&a.id, work).await
        }
    }

    /// The chain the agreement implies: its grantor and, when the grantor is the
    /// authority, every provider whose data the list names.
    async fn review_chain(
        &self,
        a: &AgreementRecord,
        resolved: &[(RequestItem, Resolved)],
    ) -> Result<BTreeSet<String>, LifecycleError> {
        let mut chain = BTreeSet::from([a.grantor_org.clone()]);
        let grantor = self.org(&a.grantor_org).await?;
        if grantor.kind == OrgKind::Authority {
            chain.extend(resolved.iter().map(|(_, r)| r.resource.org_id.clone()));
        }
        Ok(chain)
    }

    /// A reviewer of the chain approves, returns (with a note) or rejects. The last
    /// approval issues the signed scenario manifest, in the same transaction.
    pub async fn review_data_request(
        &self,
        p: &Principal,
        id: &str,
        decision: ReviewDecision,
        note: Option<&str>,
    ) -> Result<DataRequestView, LifecycleError> {
        self.review_data_request_with(p, id, decision, note, &[]).await
    }

    /// As [`Lifecycle::review_data_request`], an approval carrying overrides of the rule
    /// catalog for fields of the list (each with its reason); they join the list and, with
    /// the last approval, the manifest.
    pub async fn review_data_request_with(
        &self,
        p: &Principal,
        id: &str,
        decision: ReviewDecision,
        note: Option<&str>,
        overrides: &[MaskingOverride],
    ) -> Result<DataRequestView, LifecycleError> {
        let (mut rec, org, a) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestReview, &self.request_resource(&rec, &org)?)
            .await?;
        let state = parse_state(&rec.machine_json)?;
        let ev = match decision {
            ReviewDecision::Approve => RequestEvent::Approve,
            ReviewDecision::Return => RequestEvent::Return,
            ReviewDecision::Reject => RequestEvent::Reject,
        };
        let mut errs = Vec::new();
        let note = note.map(|n| text(&mut errs, "note", n, 2000));
        if decision != ReviewDecision::Approve && note.is_none() {
            errs.push(FieldError::new("note", "field_required"));
        }
        let mut body: DataRequestBody = crate::service::stored("data_requests", "body_json", &rec.body_json)?;
        if !overrides.is_empty() && decision != ReviewDecision::Approve {
            errs.push(FieldError::new("overrides", "approve_only"));
        }
        for (i, o) in overrides.iter().enumerate() {
            let listed = body
                .items
                .iter()
                .any(|it| it.entry_id == o.entry_id && it.fields.iter().any(|f| f.name == o.field));
            if !listed {
                errs.push(FieldError::new(format!("overrides[{i}].field"), "not_in_list").arg("value", &o.field));
            }
            if shuyu_mask::catalog::Rule::from_code(&o.technique).is_none() {
                errs.push(
                    FieldError::new(format!("overrides[{i}].technique"), "unknown_value").arg("value", &o.technique),
                );
            }
            text(&mut errs, &format!("overrides[{i}].reason"), &o.reason, 500);
        }
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        for o in overrides {
            body.masking
                .retain(|m| !(m.entry_id == o.entry_id && m.field == o.field));
            body.masking.push(MaskingOverride {
                reason: o.reason.trim().to_string(),
                by_org: p.org_id.to_string(),
                ..o.clone()
            });
        }
        body.masking
            .sort_by(|x, y| (&x.entry_id, &x.field).cmp(&(&y.entry_id, &y.field)));
        rec.body_json = serde_json::to_string(&body).unwrap_or_default();
        let (next, effects) = data_request::transition(&state, &ev, &RequestActor::Reviewer(p.org_id.to_string()))?;
        let mut manifest = None;
        for e in &effects {
            if let RequestEffect::IssueManifest { revision } = e {
                if !self.agreement_in_force(&a).await? {
                    return Err(LifecycleError::NotInForce {
                        agreement: a.id.clone(),
                    });
                }
                manifest = Some(self.issue_manifest(&rec, &a, *revision).await?);
            }
        }
        rec.state = next.code().into();
        rec.machine_json = serde_json::to_string(&next).unwrap_or_default();
        if note.is_some() {
            rec.note = note;
        }
        let action = match decision {
            ReviewDecision::Approve => "data_request.approve",
            ReviewDecision::Return => "data_request.return",
            ReviewDecision::Reject => "data_request.reject",
        };
        let payload = serde_json::json!({
            "effects": effects,
            "manifest_digest": manifest.as_ref().map(|m| m.digest.clone()),
            "masking_overrides": overrides,
        });
        self.store_request(p, &mut rec, action, manifest, payload).await?;
        self.request_view(&rec, &a).await
    }

    async fn issue_manifest(
        &self,
        rec: &DataRequestRecord,
        a: &AgreementRecord,
        revision: u32,
    ) -> Result<ManifestRecord, LifecycleError> {
        let (m, doc) = self.agreement_doc(a).await?;
        let body: DataRequestBody = crate::service::stored("data_requests", "body_json", &rec.body_json)?;
        let (_, resolved) = self.check_request(&doc, &body, true).await?;
        let previous = data_requests::manifests(&mut *self.identity.store().read().await?, &rec.id).await?;
        let mut datasets: Vec<ManifestDataset> = resolved
            .iter()
            .map(|(item, r)| {
                let rb: EntryBody = crate::service::stored("catalog_entries", "body_json", &r.resource.body_json)?;
                let mut fields: Vec<String> = item.fields.iter().map(|f| f.name.clone()).collect();
                fields.sort();
                Ok(ManifestDataset {
                    entry_id: r.entry.id.clone(),
                    resource_entry_id: r.resource.id.clone(),
                    dataset_id: r.resource.dataset_id.clone(),
                    dataset_name: rb.dataset_name,
                    provider_org: r.resource.org_id.clone(),
                    fields,
                })
            })
            .collect::<Result<_, LifecycleError>>()?;
        datasets.sort_by(|x, y| x.entry_id.cmp(&y.entry_id));
        let mut outputs = body.outputs.clone();
        outputs.sort();
        outputs.dedup();
        let term = m.next_term.unwrap_or(m.term);
        let manifest = ScenarioManifest {
            request_id: rec.id.clone(),
            revision,
            agreement_id: a.id.clone(),
            scenario: doc
                .scope
                .scenarios
                .iter()
                .find(|s| s.name == rec.scenario)
                .cloned()
                .unwrap_or_default(),
            requester_org: rec.requester_org.clone(),
            datasets,
            rows: body.rows.clone(),
            outputs,
            term_start: m.term.start().to_string(),
            term_end: term.end().to_string(),
            retention_days: body.retention_days,
            security_measures: body.security_measures.trim().to_string(),
            cross_border: "none".into(),
            approved_by: crate::service::stored("data_requests", "reviewers_json", &rec.reviewers_json)?,
            masking: body.masking.clone(),
            previous_digest: previous.first().map(|p| p.digest.clone()),
            issued_at: self.identity.clock().now().to_string(),
        };
        let digest = manifest.digest();
        Ok(ManifestRecord {
            request_id: rec.id.clone(),
            revision: i64::from(revision),
            manifest_json: serde_json::to_string(&manifest).unwrap_or_default(),
            signature: self.signer.sign(manifest_message(&digest).as_bytes()),
            digest,
            issued_at: self.identity.clock().now(),
        })
    }

    /// One request, with the manifest in force.
    pub async fn data_request(&self, p: &Principal, id: &str) -> Result<DataRequestView, LifecycleError> {
        let (rec, org, a) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestRead, &self.request_resource(&rec, &org)?)
            .await?;
        self.beneath(p, &rec, self.request_view(&rec, &a)).await
    }

    /// Waits (up to [`MAX_WAIT`]) until the request changes from version `since`, then shows
    /// it — a client follows its review without polling. Beneath the agreement: a wait still
    /// open when the agreement stops being in force ends with that refusal.
    pub async fn wait_data_request(
        &self,
        p: &Principal,
        id: &str,
        since: &str,
        wait: Duration,
    ) -> Result<DataRequestView, LifecycleError> {
        let (rec, org, _) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestRead, &self.request_resource(&rec, &org)?)
            .await?;
        let wait = wait.min(MAX_WAIT);
        let mut changes = self.changes.subscribe();
        let work = async {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let (rec, _, a) = self.load_request(id).await?;
                if rec.updated_at.as_millisecond().to_string() != since {
                    return self.request_view(&rec, &a).await;
                }
                tokio::select! {
                    r = changes.changed() => { if r.is_err() { return self.request_view(&rec, &a).await; } }
                    _ = tokio::time::sleep_until(deadline) => return self.request_view(&rec, &a).await,
                }
            }
        };
        self.beneath(p, &rec, work).await
    }

    /// Every request the principal may read.
    pub async fn data_requests(&self, p: &Principal) -> Result<Vec<DataRequestView>, LifecycleError> {
        let all = data_requests::all(&mut *self.identity.store().read().await?).await?;
        let mut out = Vec::new();
        let mut in_force: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for rec in all {
            let org = self.org(&rec.requester_org).await?;
            if !self
                .identity
                .allows(p, Action::DataRequestRead, &self.request_resource(&rec, &org)?)
            {
                continue;
            }
            // Many requests share an agreement: whether it is in force is worked out once.
            let in_force = match in_force.get(&rec.agreement_id) {
                Some(f) => *f,
                None => {
                    let Some(a) = agreements::get(&mut *self.identity.store().read().await?, &rec.agreement_id).await?
                    else {
                        continue;
                    };
                    let f = self.agreement_in_force(&a).await?;
                    in_force.insert(rec.agreement_id.clone(), f);
                    f
                }
            };
            out.push(self.request_view_with(&rec, in_force).await?);
        }
        Ok(out)
    }

    /// Every manifest issued for a request, newest first, each with its changes.
    pub async fn manifests(&self, p: &Principal, id: &str) -> Result<Vec<ManifestView>, LifecycleError> {
        let (rec, org, _) = self.load_request(id).await?;
        self.identity
            .authorize(p, Action::DataRequestRead, &self.request_resource(&rec, &org)?)
            .await?;
        self.beneath(p, &rec, async {
            let all = data_requests::manifests(&mut *self.identity.store().read().await?, id).await?;
            all.iter()
                .enumerate()
                .map(|(i, m)| manifest_view(m, all.get(i + 1)))
                .collect()
        })
        .await
    }

    /// Revokes every request under an agreement that ended (terminated, cancelled), in the
    /// agreement's own transaction; `effects` says whether access must close.
    pub(crate) async fn requests_to_revoke(
        &self,
        agreement_id: &str,
    ) -> Result<Vec<DataRequestRecord>, LifecycleError> {
        let all = data_requests::of_agreement(&mut *self.identity.store().read().await?, agreement_id).await?;
        let mut out = Vec::new();
        for mut r in all {
            let s = parse_state(&r.machine_json)?;
            if let Ok((next, _)) = data_request::transition(&s, &RequestEvent::Revoke, &RequestActor::System) {
                r.state = next.code().into();
                r.machine_json = serde_json::to_string(&next).unwrap_or_default();
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The domain's public key, for verifying manifests offline.
    pub fn manifest_public_key_pem(&self) -> String {
        self.signer.public_key_pem()
    }

    /// A receiver that wakes on every change of an agreement or data request — for services
    /// that follow the lifecycle (the engine opens and seals workspaces on it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
}

fn manifest_view(m: &ManifestRecord, previous: Option<&ManifestRecord>) -> Result<ManifestView, LifecycleError> {
    let parse = |m: &ManifestRecord| -> Result<ScenarioManifest, LifecycleError> {
        serde_json::from_str(&m.manifest_json).map_err(|_| LifecycleError::NotFound("manifest"))
    };
    let manifest = parse(m)?;
    let changes = match previous {
        Some(p) => manifest_diff(&parse(p)?, &manifest),
        None => Vec::new(),
    };
    Ok(ManifestView {
        manifest,
        digest: m.digest.clone(),
        signature: m.signature.clone(),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(fields: &[&str], outputs: &[&str], term_end: &str) -> ScenarioManifest {
        ScenarioManifest {
            request_id: "r".into(),
            revision: 1,
            agreement_id: "a".into(),
            scenario: Scenario::default(),
            requester_org: "o".into(),
            datasets: vec![ManifestDataset {
                entry_id: "e1".into(),
                resource_entry_id: "r1".into(),
                dataset_id: None,
                dataset_name: Some("medical_visit".into()),
                provider_org: "p".into(),
                fields: fields.iter().map(|s| s.to_string()).collect(),
            }],
            rows: RowScope::default(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            term_start: "2027-01-01".into(),
            term_end: term_end.into(),
            retention_days: 90,
            security_measures: "域内处理".into(),
            cross_border: "none".into(),
            approved_by: vec!["x".into()],
            masking: Vec::new(),
            previous_digest: None,
            issued_at: "t".into(),
        }
    }

    #[test]
    fn the_diff_names_each_change_and_nothing_else() {
        let a = manifest(&["visits", "icd10"], &["statistics"], "2027-12-31");
        assert!(manifest_diff(&a, &a).is_empty());
        let mut b = manifest(&["visits", "cost_total"], &["statistics", "model"], "2028-12-31");
        b.datasets.push(ManifestDataset {
            entry_id: "e2".into(),
            fields: vec!["kwh".into()],
            ..b.datasets[0].clone()
        });
        let d = manifest_diff(&a, &b);
        type Row<'a> = (&'a str, Option<&'a str>, Vec<&'a str>, Vec<&'a str>);
        let what: Vec<Row> = d
            .iter()
            .map(|c| {
                (
                    c.what.as_str(),
                    c.entry_id.as_deref(),
                    c.added.iter().map(String::as_str).collect(),
                    c.removed.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            what,
            vec![
                ("dataset", None, vec!["e2"], vec![]),
                ("fields", Some("e1"), vec!["cost_total"], vec!["icd10"]),
                ("fields", Some("e2"), vec!["kwh"], vec![]),
                ("outputs", None, vec!["model"], vec![]),
                ("term_end", None, vec!["2028-12-31"], vec!["2027-12-31"]),
            ]
        );
        // A dataset dropped takes its fields with it.
        let back = manifest_diff(&b, &a);
        assert!(
            back.iter()
                .any(|c| c.what == "fields" && c.entry_id.as_deref() == Some("e2") && c.removed == vec!["kwh"])
        );
    }

    #[test]
    fn the_digest_changes_with_any_field_and_the_message_is_labelled() {
        let a = manifest(&["visits"], &["statistics"], "2027-12-31");
        let mut b = a.clone();
        b.rows.region = Some("379902".into());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
        assert!(manifest_message(&a.digest()).starts_with("shuyu-manifest-v1\n"));
    }
}
