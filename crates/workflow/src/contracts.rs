//! Agreements as a service (R-14…R-17): drafted by the grantor from a cleared application
//! with every clause YP9 lists, issued, and signed by both parties with **their own**
//! Ed25519 keys — the platform stores only public keys and verifies each signature over
//! the agreement's digest, so it cannot sign for anyone. The grantee also signs the
//! data-security commitment (B§25). The pure machine in [`crate::agreement`] decides
//! every step; this module persists, authorizes and audits.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shuyu_core::actor::Principal;
use shuyu_core::error::{FieldError, Validation};
use shuyu_identity::IdentityError;
use shuyu_policy::{Action, Resource};
use shuyu_store::agreements::{self, AgreementRecord};
use shuyu_store::lifecycle::{self, StateTable};
use shuyu_store::orgs::OrgRecord;
use utoipa::ToSchema;

use crate::agreement::{self as machine, Actor, Agreement, AgreementKind, AgreementState, Event, Party};
use crate::application::ApplicationState;
use crate::service::{ApplicationBody, Lifecycle, LifecycleError, save};
use crate::term::Term;
use jiff::civil::Date;

/// The clauses an agreement must carry (YP9), with the template's default text.
pub const CLAUSES: [(&str, &str); 12] = [
    ("scope", "授权范围：以本协议附件所列授权数据资源目录及字段为限。"),
    (
        "platform",
        "运营平台：市公共数据授权运营平台（运营域）。原始数据不出域。",
    ),
    ("products", "数据产品清单及审核要求：产品经出域审核后方可提供。"),
    ("asset_ownership", "数据资产归属：按国家和本市有关规定执行。"),
    ("disclosure", "信息披露：按规定公开授权运营情况。"),
    ("evaluation", "评估标准：按年度评估办法执行。"),
    ("pricing", "定价：公益用途有条件无偿，产业用途有条件有偿。"),
    ("security", "安全责任：落实数据安全负责人及安全管理制度。"),
    ("rights", "双方权利：按本协议约定。"),
    ("liabilities", "违约责任：违约的，责令整改；情节严重的，终止授权。"),
    ("term", "授权期限：不超过三年，期满前六个月内可申请续签。"),
    ("exit", "退出：协议终止后封存并销毁相关数据，日志保存不少于六个月。"),
];

/// Further clauses of a development agreement (Y§18–23).
pub const DEVELOPMENT_CLAUSES: [(&str, &str); 4] = [
    ("revenue_sharing", "收益分配：按约定比例分配。"),
    ("fees", "费用：按约定标准收取。"),
    ("prohibited", "禁止条款：不得超范围使用数据，不得向第三方提供原始数据。"),
    ("credit_commitment", "信用承诺：开发主体作出信用承诺。"),
];

/// A draft's terms.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementRequest {
    /// First day in force.
    #[schema(value_type = String, format = Date)]
    pub term_start: Date,
    /// Last day in force (at most three years after the start).
    #[schema(value_type = String, format = Date)]
    pub term_end: Date,
    /// Clause texts replacing the template's (keys from the template only).
    #[serde(default)]
    pub clauses: BTreeMap<String, String>,
}

/// The audit log's retention tag of everything done under agreement `id`.
pub fn retention_tag(id: &str) -> String {
    format!("agreement:{id}")
}

/// What the parties sign: the whole agreement, canonical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgreementDocument {
    /// Its id.
    pub id: String,
    /// `operation` or `development`.
    pub kind: String,
    /// The grantor organisation.
    pub grantor_org: String,
    /// The grantee organisation.
    pub grantee_org: String,
    /// First day in force.
    pub term_start: String,
    /// Last day in force.
    pub term_end: String,
    /// Every clause, by key.
    pub clauses: BTreeMap<String, String>,
    /// The application's scenario list and data-need list (the authorized scope).
    pub scope: ApplicationBody,
}

impl AgreementDocument {
    /// SHA-256 of the canonical JSON (struct order, clauses sorted), hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(serde_json::to_vec(self).unwrap_or_default()))
    }
}

/// The bytes a signer signs: a domain label, the document's digest and what is signed.
pub fn message_to_sign(digest: &str, what: SignWhat) -> String {
    format!("shuyu-agreement-v1\n{digest}\n{}\n", what.code())
}

/// What a signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignWhat {
    /// The agreement.
    Agreement,
    /// The data-security commitment (数据安全承诺书; the grantee only).
    Commitment,
}

impl SignWhat {
    fn code(self) -> &'static str {
        match self {
            SignWhat::Agreement => "agreement",
            SignWhat::Commitment => "commitment",
        }
    }
}

/// One signature, verifiable by anyone with the document and the public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignatureRecord {
    /// What was signed.
    pub what: SignWhat,
    /// Which party.
    #[schema(value_type = String)]
    pub party: Party,
    /// The signing user.
    pub user_id: String,
    /// Their public key (base64, 32 bytes).
    pub public_key: String,
    /// The Ed25519 signature (base64) over [`message_to_sign`].
    pub signature: String,
    /// When (RFC 3339).
    pub signed_at: String,
}

/// An agreement as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgreementView {
    /// The signed document.
    pub document: AgreementDocument,
    /// Its digest (what signatures cover).
    pub digest: String,
    /// `draft`, `signing`, `active`, `suspended`, `expired`, `cancelled` or `terminated`.
    pub state: String,
    /// Whether access under it is open today.
    pub effective: bool,
    /// The renewed term's last day, once renewed.
    pub renewed_until: Option<String>,
    /// The signatures, each re-verified.
    pub signatures: Vec<(SignatureRecord, bool)>,
    /// Its rectifications: the open case and the closed ones.
    pub rectification: RectificationFile,
}

/// One rectification case: the violation, the 30-day machine, the holder's report and the
/// grantor's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RectificationCase {
    /// The machine's value (state, deadline, whether suspended meanwhile).
    #[schema(value_type = Object)]
    pub rectification: crate::rectification::Rectification,
    /// The violation found.
    pub violation: String,
    /// The holder's report of what was rectified.
    pub report: Option<String>,
    /// The grantor's note on accepting or rejecting.
    pub decision_note: Option<String>,
    /// The day it was ordered.
    pub ordered_at: String,
}

/// An agreement's rectifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RectificationFile {
    /// The case still open, if any (one at a time).
    pub open: Option<RectificationCase>,
    /// Closed cases, oldest first.
    pub closed: Vec<RectificationCase>,
}

/// A rectification step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RectificationStep {
    /// The grantor orders one.
    Order {
        /// The violation found.
        violation: String,
        /// Whether to suspend the agreement meanwhile.
        suspend: bool,
    },
    /// The holder reports it done.
    Report {
        /// What was rectified.
        report: String,
    },
    /// The grantor decides.
    Decide {
        /// Accepted (restore) or not (terminate).
        accepted: bool,
        /// Why.
        note: String,
    },
}

fn verify(doc_digest: &str, s: &SignatureRecord) -> bool {
    let key = STANDARD
        .decode(&s.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let sig = STANDARD
        .decode(&s.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    match (key, sig) {
        (Some(k), Some(sig)) => k.verify(message_to_sign(doc_digest, s.what).as_bytes(), &sig).is_ok(),
        _ => false,
    }
}

struct Loaded {
    rect: RectificationFile,
    rec: AgreementRecord,
    machine: Agreement,
    doc: AgreementDocument,
    grantor: OrgRecord,
    grantee: OrgRecord,
}

impl Lifecycle {
    /// Registers (or replaces) the public key the principal signs agreements with (base64 of
    /// the 32-byte Ed25519 key). The private key never reaches the platform.
    pub async fn register_signing_key(&self, p: &Principal, public_key: &str) -> Result<(), LifecycleError> {
        let me = Resource::User {
            id: p.user_id,
            org: p.org_id,
            org_kind: p.org_kind,
            region: p.region.clone(),
            roles: p.roles.iter().map(|r| r.code().to_string()).collect(),
        };
        self.identity.authorize(p, Action::SigningKeyRegister, &me).await?;
        let ok = STANDARD
            .decode(public_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .is_some_and(|b| VerifyingKey::from_bytes(&b).is_ok());
        if !ok {
            return Err(FieldError::new("public_key", "ed25519_key").into());
        }
        let now = self.identity.clock().now();
        let key = public_key.trim().to_string();
        let user = p.user_id.to_string();
        let mut event = shuyu_identity::audit::by(p, now, "signing_key.register", "user", user.clone(), None, None);
        event.payload = Some(serde_json::json!({ "public_key": key }));
        save(&self.identity, event, move |tx| {
            Box::pin(async move { agreements::put_signing_key(tx.conn(), &user, &key, now).await })
        })
        .await
    }

    fn agreement_resource(rec: &AgreementRecord, grantor: &OrgRecord, grantee: &OrgRecord) -> Resource {
        Resource::Agreement {
            id: rec.id.clone(),
            org: grantor.id,
            org_kind: grantor.kind,
            region: grantor.region.clone(),
            grantee: (grantee.id, grantee.kind, grantee.region.clone()),
            state: rec.state.clone(),
        }
    }

    async fn load_agreement(&self, id: &str) -> Result<Loaded, LifecycleError> {
        let rec = agreements::get(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(LifecycleError::NotFound("agreement"))?;
        let machine: Agreement = crate::service::stored("agreements", "machine_json", &rec.machine_json)?;
        let doc: AgreementDocument = crate::service::stored("agreements", "body_json", &rec.body_json)?;
        let grantor = self.org(&rec.grantor_org).await?;
        let grantee = self.org(&rec.grantee_org).await?;
        let rect = match lifecycle::get_state(
            &mut *self.identity.store().read().await?,
            StateTable::Rectification,
            &rec.application_id,
        )
        .await?
        {
            Some(j) => crate::service::stored("lifecycle_states", "rectification", &j)?,
            None => RectificationFile::default(),
        };
        Ok(Loaded {
            rect,
            rec,
            machine,
            doc,
            grantor,
            grantee,
        })
    }

    fn agreement_view(&self, l: &Loaded) -> Result<AgreementView, LifecycleError> {
        let digest = l.doc.digest();
        let sigs: Vec<SignatureRecord> =
            crate::service::stored("agreements", "signatures_json", &l.rec.signatures_json)?;
        Ok(AgreementView {
            digest: digest.clone(),
            state: l.machine.state.code().into(),
            effective: machine::is_effective(&l.machine, self.today()),
            renewed_until: l.machine.next_term.map(|t| t.end().to_string()),
            rectification: l.rect.clone(),
            signatures: sigs
                .into_iter()
                .map(|s| {
                    let ok = verify(&digest, &s);
                    (s, ok)
                })
                .collect(),
            document: l.doc.clone(),
        })
    }

    /// Stores an agreement with its audit entry: a new one (`read_at` None) or a change to
    /// the row as read at `read_at`.
    async fn store_agreement(
        &self,
        p: &Principal,
        rec: &AgreementRecord,
        action: &str,
        read_at: Option<shuyu_core::clock::Timestamp>,
    ) -> Result<(), LifecycleError> {
        let now = self.identity.clock().now();
        let mut event = shuyu_identity::audit::by(p, now, action, "agreement", rec.id.clone(), None, None);
        event.payload = Some(serde_json::json!({ "state": rec.state }));
        event.retention_tag = Some(retention_tag(&rec.id));
        let stored = rec.clone();
        save(&self.identity, event, move |tx| {
            Box::pin(async move {
                match read_at {
                    None => agreements::insert(tx.conn(), &stored).await,
                    Some(read_at) => agreements::update(tx.conn(), &stored, read_at).await,
                }
            })
        })
        .await
    }

    /// The grantor drafts the agreement of a cleared application from the template.
    pub async fn draft_agreement(
        &self,
        p: &Principal,
        application_id: &str,
        r: &AgreementRequest,
    ) -> Result<AgreementView, LifecycleError> {
        let (app, applicant, call, call_org) = self.as_issuer(p, application_id).await?;
        if app.state != ApplicationState::Cleared.code() {
            return Err(crate::Refused::new("agreement", "none", "draft", "notice_open").into());
        }
        let mut errs = Vec::new();
        let term = match Term::new(r.term_start, r.term_end) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(FieldError::new("term_end", e.rule()));
                None
            }
        };
        if r.term_start < self.today() {
            errs.push(FieldError::new("term_start", "date_in_past").arg("value", r.term_start));
        }
        let kind = if call.audience == "developer" {
            AgreementKind::Development
        } else {
            AgreementKind::Operation
        };
        let mut clauses: BTreeMap<String, String> =
            CLAUSES.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if kind == AgreementKind::Development {
            clauses.extend(DEVELOPMENT_CLAUSES.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        }
        for (k, v) in &r.clauses {
            match clauses.get_mut(k) {
                Some(c) => *c = crate::service::text(&mut errs, &format!("clauses.{k}"), v, 4000),
                None => errs.push(FieldError::new(format!("clauses.{k}"), "unknown_value").arg("value", k)),
            }
        }
        let Some(term) = term.filter(|_| errs.is_empty()) else {
            return Err(Validation(errs).into());
        };
        let id = uuid::Uuid::now_v7().to_string();
        let doc = AgreementDocument {
            id: id.clone(),
            kind: match kind {
                AgreementKind::Operation => "operation".into(),
                AgreementKind::Development => "development".into(),
            },
            grantor_org: call_org.id.to_string(),
            grantee_org: applicant.id.to_string(),
            term_start: term.start().to_string(),
            term_end: term.end().to_string(),
            clauses,
            scope: crate::service::stored("applications", "body_json", &app.body_json)?,
        };
        let m = Agreement {
            kind,
            term,
            next_term: None,
            state: AgreementState::Draft,
            renewals: 0,
        };
        let now = self.identity.clock().now();
        let rec = AgreementRecord {
            id,
            application_id: app.id.clone(),
            grantor_org: call_org.id.to_string(),
            grantee_org: applicant.id.to_string(),
            state: m.state.code().into(),
            machine_json: serde_json::to_string(&m).unwrap_or_default(),
            body_json: serde_json::to_string(&doc).unwrap_or_default(),
            signatures_json: "[]".into(),
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
        };
        self.identity
            .authorize(
                p,
                Action::AgreementEdit,
                &Self::agreement_resource(&rec, &call_org, &applicant),
            )
            .await?;
        self.store_agreement(p, &rec, "agreement.draft", None).await?;
        let l = self.load_agreement(&rec.id).await?;
        self.agreement_view(&l)
    }

    /// One agreement, with its digest and its re-verified signatures.
    pub async fn agreement(&self, p: &Principal, id: &str) -> Result<AgreementView, LifecycleError> {
        let l = self.load_agreement(id).await?;
        self.identity
            .authorize(
                p,
                Action::AgreementRead,
                &Self::agreement_resource(&l.rec, &l.grantor, &l.grantee),
            )
            .await?;
        self.agreement_view(&l)
    }

    /// The agreements the principal may read (its own as either party; oversight: all).
    pub async fn agreements(&self, p: &Principal) -> Result<Vec<AgreementView>, LifecycleError> {
        let all = agreements::all(&mut *self.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for rec in all {
            let l = self.load_agreement(&rec.id).await?;
            if self.identity.allows(
                p,
                Action::AgreementRead,
                &Self::agreement_resource(&l.rec, &l.grantor, &l.grantee),
            ) {
                out.push(self.agreement_view(&l)?);
            }
        }
        Ok(out)
    }

    fn party_of(p: &Principal, l: &Loaded) -> Option<Party> {
        if p.org_id == l.grantor.id {
            Some(Party::Grantor)
        } else if p.org_id == l.grantee.id {
            Some(Party::Grantee)
        } else {
            None
        }
    }

    /// A party signs the agreement (or, the grantee, the commitment) with its own key:
    /// `signature` is base64 of the Ed25519 signature over [`message_to_sign`].
    pub async fn sign_agreement(
        &self,
        p: &Principal,
        id: &str,
        what: SignWhat,
        signature: &str,
    ) -> Result<AgreementView, LifecycleError> {
        let mut l = self.load_agreement(id).await?;
        self.identity
            .authorize(
                p,
                Action::AgreementSign,
                &Self::agreement_resource(&l.rec, &l.grantor, &l.grantee),
            )
            .await?;
        let party = Self::party_of(p, &l).ok_or(IdentityError::Forbidden {
            action: "agreement.sign",
        })?;
        let public_key = agreements::signing_key(&mut *self.identity.store().read().await?, &p.user_id.to_string())
            .await?
            .ok_or_else(|| FieldError::new("signature", "no_signing_key"))?;
        let now = self.identity.clock().now();
        let record = SignatureRecord {
            what,
            party,
            user_id: p.user_id.to_string(),
            public_key,
            signature: signature.trim().to_string(),
            signed_at: now.to_string(),
        };
        let digest = l.doc.digest();
        if !verify(&digest, &record) {
            return Err(FieldError::new("signature", "bad_signature").into());
        }
        let event = match what {
            SignWhat::Agreement => Event::Sign,
            SignWhat::Commitment => Event::SignCommitment,
        };
        let (next, _effects) = machine::transition(&l.machine, event, Actor::Party(party), self.today())?;
        let mut sigs: Vec<SignatureRecord> =
            crate::service::stored("agreements", "signatures_json", &l.rec.signatures_json)?;
        sigs.push(record);
        l.rec.signatures_json = serde_json::to_string(&sigs).unwrap_or_default();
        l.rec.state = next.state.code().into();
        l.rec.machine_json = serde_json::to_string(&next).unwrap_or_default();
        let read_at = l.rec.updated_at;
        l.rec.updated_at = crate::service::later(read_at, now);
        l.machine = next;
        self.store_agreement(p, &l.rec, &format!("agreement.sign_{}", what.code()), Some(read_at))
            .await?;
        self.changed();
        self.agreement_view(&l)
    }

    /// Sends `event` to an agreement: `issue`, `suspend`, `restore`, `terminate` (its grantor),
    /// `cancel` or `renew` (a party). Effects the platform must carry out are audited with it.
    pub async fn agreement_event(
        &self,
        p: &Principal,
        id: &str,
        event: Event,
    ) -> Result<AgreementView, LifecycleError> {
        let l = self.load_agreement(id).await?;
        let resource = Self::agreement_resource(&l.rec, &l.grantor, &l.grantee);
        let party = Self::party_of(p, &l);
        let actor = match event {
            Event::Cancel | Event::Renew { .. } => {
                self.identity.authorize(p, Action::AgreementSign, &resource).await?;
                Actor::Party(party.ok_or(IdentityError::Forbidden {
                    action: "agreement.sign",
                })?)
            }
            _ => {
                self.identity.authorize(p, Action::AgreementEdit, &resource).await?;
                Actor::Party(Party::Grantor)
            }
        };
        let event = match event {
            // Issuing is blocked while the notice has unanswered objections.
            Event::Issue { .. } => Event::Issue {
                // A notice that cannot be read is an error, never "no objections".
                objections_open: self.notice_of(&l.rec.application_id).await?.notice.open_objections(),
            },
            e => e,
        };
        self.apply(
            Some(p),
            l,
            Some((event, actor)),
            format!("agreement.{}", event.code()),
            None,
            serde_json::json!({}),
        )
        .await
    }

    /// Carries out an agreement event (if any) and a rectification change (if any) in one
    /// transaction with one audit entry: access closing for good (termination, cancellation)
    /// revokes every data request beneath the agreement in the same transaction; a
    /// suspension only denies access ([`Lifecycle::guard`]) until restoration.
    async fn apply(
        &self,
        who: Option<&Principal>,
        mut l: Loaded,
        event: Option<(Event, Actor)>,
        action: String,
        rectification: Option<String>,
        detail: serde_json::Value,
    ) -> Result<AgreementView, LifecycleError> {
        let now = self.identity.clock().now();
        let read_at = l.rec.updated_at;
        l.rec.updated_at = crate::service::later(read_at, now);
        let mut effects = Vec::new();
        if let Some((event, actor)) = event {
            let (next, fx) = machine::transition(&l.machine, event, actor, self.today())?;
            l.rec.state = next.state.code().into();
            l.rec.machine_json = serde_json::to_string(&next).unwrap_or_default();
            l.machine = next;
            effects = fx;
        }
        let revoked = if effects.contains(&machine::Effect::RevokeAccess)
            && !matches!(l.machine.state, AgreementState::Suspended)
        {
            self.requests_to_revoke(&l.rec.id).await?
        } else {
            Vec::new()
        };
        // Releases still waiting for review beneath a revoked request close with it: nothing
        // asked for under an agreement that ended can still be reviewed and leave.
        let mut cancelled = Vec::new();
        for r in &revoked {
            cancelled.extend(
                shuyu_store::releases::pending_of_request(&mut *self.identity.store().read().await?, &r.id).await?,
            );
        }
        let mut audit = match who {
            Some(p) => shuyu_identity::audit::by(p, now, &action, "agreement", l.rec.id.clone(), None, None),
            None => shuyu_identity::audit::change(
                now,
                shuyu_audit::entry::Actor::system("lifecycle"),
                None,
                &action,
                "agreement",
                l.rec.id.clone(),
                None,
                None,
            ),
        };
        // Everything said under an agreement follows its retention (≥ 6 months after it ends).
        let tag = retention_tag(&l.rec.id);
        audit.retention_tag = Some(tag.clone());
        let retain_until = effects.iter().find_map(|e| match e {
            machine::Effect::RetainLogsUntil { day } => day
                .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
                .ok()
                .map(|z| z.timestamp()),
            _ => None,
        });
        audit.payload = Some(serde_json::json!({
            "state": l.rec.state,
            "effects": effects,
            "revoked_data_requests": revoked.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            "cancelled_releases": cancelled,
            "detail": detail,
        }));
        if let Some(json) = &rectification {
            l.rect = crate::service::stored("lifecycle_states", "rectification", json)?;
        }
        let stored = l.rec.clone();
        save(&self.identity, audit, move |tx| {
            Box::pin(async move {
                agreements::update(tx.conn(), &stored, read_at).await?;
                if let Some(until) = retain_until {
                    shuyu_store::log::set_retention(tx.conn(), &tag, now, until).await?;
                }
                if let Some(json) = rectification {
                    lifecycle::put_state(tx.conn(), StateTable::Rectification, &stored.application_id, &json, now)
                        .await?;
                }
                for mut r in revoked {
                    let read_at = r.updated_at;
                    r.updated_at = crate::service::later(read_at, now);
                    shuyu_store::data_requests::update(tx.conn(), &r, read_at).await?;
                }
                for id in &cancelled {
                    shuyu_store::releases::cancel_pending(tx.conn(), id, now).await?;
                }
                Ok(())
            })
        })
        .await?;
        self.changed();
        self.agreement_view(&l)
    }

    /// A rectification step (整改, R-17): the grantor orders one for a violation (30 days,
    /// optionally suspending the agreement meanwhile), the grantee reports it done, the
    /// grantor accepts (restoring a suspended agreement) or rejects (terminating it). The
    /// agreement's change and the case's are one transaction.
    pub async fn rectification(
        &self,
        p: &Principal,
        id: &str,
        step: RectificationStep,
    ) -> Result<AgreementView, LifecycleError> {
        use crate::rectification::{self as rect, RectificationActor, RectificationEffect, RectificationEvent};
        let l = self.load_agreement(id).await?;
        let resource = Self::agreement_resource(&l.rec, &l.grantor, &l.grantee);
        let today = self.today();
        let mut errs = Vec::new();
        let mut file = l.rect.clone();
        let (effects, code, detail) = match &step {
            RectificationStep::Order { violation, suspend } => {
                self.identity.authorize(p, Action::AgreementEdit, &resource).await?;
                let violation = crate::service::text(&mut errs, "violation", violation, 4000);
                if !errs.is_empty() {
                    return Err(Validation(errs).into());
                }
                if file.open.is_some() {
                    return Err(crate::Refused::new("rectification", "ordered", "order", "already_open").into());
                }
                if !machine::is_effective(&l.machine, today) && l.machine.state != AgreementState::Suspended {
                    return Err(LifecycleError::NotInForce {
                        agreement: l.rec.id.clone(),
                    });
                }
                let (r, fx) = rect::order(today, *suspend);
                file.open = Some(RectificationCase {
                    rectification: r,
                    violation: violation.clone(),
                    report: None,
                    decision_note: None,
                    ordered_at: today.to_string(),
                });
                (
                    fx,
                    "order",
                    serde_json::json!({ "violation": violation, "suspend": suspend }),
                )
            }
            RectificationStep::Report { report } => {
                self.identity.authorize(p, Action::AgreementSign, &resource).await?;
                if Self::party_of(p, &l) != Some(Party::Grantee) {
                    return Err(IdentityError::Forbidden {
                        action: "agreement.sign",
                    }
                    .into());
                }
                let report = crate::service::text(&mut errs, "report", report, 4000);
                if !errs.is_empty() {
                    return Err(Validation(errs).into());
                }
                let case = file.open.as_mut().ok_or(crate::Refused::new(
                    "rectification",
                    "none",
                    "report",
                    "not_in_this_state",
                ))?;
                let (r, fx) = rect::transition(
                    &case.rectification,
                    RectificationEvent::Report,
                    RectificationActor::Holder,
                    today,
                )?;
                case.rectification = r;
                case.report = Some(report);
                (fx, "report", serde_json::json!({}))
            }
            RectificationStep::Decide { accepted, note } => {
                self.identity.authorize(p, Action::AgreementEdit, &resource).await?;
                let note = crate::service::text(&mut errs, "note", note, 4000);
                if !errs.is_empty() {
                    return Err(Validation(errs).into());
                }
                let case = file.open.as_mut().ok_or(crate::Refused::new(
                    "rectification",
                    "none",
                    "decide",
                    "not_in_this_state",
                ))?;
                let ev = if *accepted {
                    RectificationEvent::Accept
                } else {
                    RectificationEvent::Reject
                };
                let (r, fx) = rect::transition(&case.rectification, ev, RectificationActor::Authority, today)?;
                case.rectification = r;
                case.decision_note = Some(note.clone());
                (
                    fx,
                    if *accepted { "accept" } else { "reject" },
                    serde_json::json!({ "note": note }),
                )
            }
        };
        if let Some(case) = file.open.take_if(|c| {
            matches!(
                c.rectification.state,
                rect::RectificationState::Accepted | rect::RectificationState::Failed
            )
        }) {
            file.closed.push(case);
        }
        let grantor = Actor::Party(Party::Grantor);
        let event = effects.iter().find_map(|e| match e {
            RectificationEffect::SuspendAgreement => Some((Event::Suspend, grantor)),
            RectificationEffect::RestoreAgreement => {
                (l.machine.state == AgreementState::Suspended).then_some((Event::Restore, grantor))
            }
            RectificationEffect::TerminateAgreement => Some((Event::Terminate, grantor)),
        });
        let json = serde_json::to_string(&file).unwrap_or_default();
        self.apply(
            Some(p),
            l,
            event,
            format!("agreement.rectification_{code}"),
            Some(json),
            detail,
        )
        .await
    }

    /// Records what time alone changed: an agreement past its term becomes `expired` (access
    /// closed, its data requests revoked, sealing started, its logs retained ≥ 6 months), and a
    /// renewed one moves onto its next term; overdue rectifications fail and end their
    /// agreement; calls close at their deadline and notices clear when their period is over
    /// (see [`Lifecycle::sweep_applications`]). Returns how many changed. Denial does not wait
    /// for this — [`Lifecycle::guard`] reads the date — but the record and the effects do.
    pub async fn sweep(&self) -> Result<usize, LifecycleError> {
        let all = agreements::all(&mut *self.identity.store().read().await?).await?;
        let today = self.today();
        let mut changed = 0;
        for rec in all {
            let m = match serde_json::from_str::<Agreement>(&rec.machine_json) {
                Ok(m) => m,
                Err(e) => {
                    // Never moved on a guess; the guard refuses it anyway (it cannot read it either).
                    tracing::error!(agreement = %rec.id, error = %e, "an agreement could not be read; left as it is");
                    continue;
                }
            };
            let Ok((next, _)) = machine::transition(&m, Event::Tick, Actor::System, today) else {
                continue;
            };
            if next == m {
                continue;
            }
            let action = if next.state.code() == "expired" {
                "agreement.expire"
            } else {
                "agreement.next_term"
            };
            let l = self.load_agreement(&rec.id).await?;
            self.apply(
                None,
                l,
                Some((Event::Tick, Actor::System)),
                action.into(),
                None,
                serde_json::json!({}),
            )
            .await?;
            changed += 1;
        }
        changed += self.sweep_rectifications(today).await?;
        changed += self.sweep_applications().await?;
        Ok(changed)
    }

    /// Rectifications past their 30 days without a report fail: the case closes as
    /// failed and the agreement is terminated — its requests revoked, its pending releases
    /// cancelled — in one transaction, with the failure on the agreement's record and in the
    /// grantor's and grantee's reminders (`rectification_failed`).
    async fn sweep_rectifications(&self, today: Date) -> Result<usize, LifecycleError> {
        use crate::rectification::{self as rect, RectificationActor, RectificationEffect, RectificationEvent};
        let all = agreements::all(&mut *self.identity.store().read().await?).await?;
        let mut changed = 0;
        for rec in all {
            let l = match self.load_agreement(&rec.id).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(agreement = %rec.id, error = %e, "an agreement could not be read; left as it is");
                    continue;
                }
            };
            let Some(case) = &l.rect.open else { continue };
            let (next, effects) = rect::transition(
                &case.rectification,
                RectificationEvent::Tick,
                RectificationActor::System,
                today,
            )?;
            if next.state != rect::RectificationState::Failed {
                continue;
            }
            let mut file = l.rect.clone();
            if let Some(mut case) = file.open.take() {
                case.rectification = next;
                case.decision_note = Some("overdue".into());
                file.closed.push(case);
            }
            let terminate = effects.contains(&RectificationEffect::TerminateAgreement)
                && machine::transition(&l.machine, Event::Terminate, Actor::Party(Party::Grantor), today).is_ok();
            let event = terminate.then_some((Event::Terminate, Actor::Party(Party::Grantor)));
            let json = serde_json::to_string(&file).map_err(|e| {
                LifecycleError::Store(shuyu_store::StoreError::Corrupt {
                    table: "lifecycle_states",
                    column: "state_json",
                    detail: e.to_string(),
                })
            })?;
            self.apply(
                None,
                l,
                event,
                "agreement.rectification_overdue".into(),
                Some(json),
                serde_json::json!({ "deadline": next.deadline.to_string() }),
            )
            .await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Runs [`Lifecycle::sweep`] every `every` (the server starts this after one sweep of its own).
    pub fn spawn_sweeper(self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the server has just swept.
            tick.tick().await;
            loop {
                tick.tick().await;
                match self.sweep().await {
                    Ok(n) if n > 0 => tracing::info!(changed = n, "the lifecycle sweep recorded what time changed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "the lifecycle sweep failed"),
                }
            }
        })
    }

    /// Whether organisation `org_id` holds an agreement in force today as grantee.
    pub async fn holds_effective_agreement(&self, org_id: &str) -> Result<bool, LifecycleError> {
        let all = agreements::of_org(&mut *self.identity.store().read().await?, org_id).await?;
        let today = self.today();
        Ok(all.iter().any(|a| {
            a.grantee_org == org_id
                && serde_json::from_str::<Agreement>(&a.machine_json).is_ok_and(|m| machine::is_effective(&m, today))
        }))
    }
}
