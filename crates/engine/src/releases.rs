//! Release review and what leaves the domain.
//!
//! A developer asks to release one output of a **finished** job to a recipient, with a remedy if
//! the gate suggested one. The output is judged again — remedied, compared entity by entity with
//! everything already released to the same developer organisation and to the public (the
//! disclosure ledger, [`crate::differencing`]), and for its destination — and an output that still
//! fails cannot be asked for at all. The data request's reviewers see the SQL, the shape the
//! algebra admitted, the full report with the flagged cells by key, the comparisons and the output
//! as the gate lets reviewers see it ([`shuyu_gate::ReviewCopy`]); they record structured
//! decisions on YP5(四)'s six points and overrides with reasons (on the audit log). When enough
//! reviewers approved, `shuyu_gate::mint` — the only constructor of what leaves, which runs the
//! checks itself — makes the release; it is watermarked for its recipient, sealed in the vault,
//! and what it revealed is entered in the ledger. A download mints again from the stored copy.
//! The developer (and oversight) see each report without key values.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use shuyu_audit::entry::Actor;
use shuyu_core::actor::Principal;
use shuyu_gate::release::{Decision, Override, ReviewPoint};
use shuyu_gate::watermark::{self, Candidate, Mark, MarkSpec, WatermarkKey};
use shuyu_gate::{
    Approval, Comparison, Context, Destination, MeasureKind, Output, RedactedReport, Report, ReportRecord, Role, Shape,
    mint,
};
use shuyu_policy::Action;
use shuyu_store::jobs;
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::log::Event;
use shuyu_store::releases::{self, ReleaseRecord};
use shuyu_store::{StoreError, settings};
use utoipa::ToSchema;

use crate::EngineError;
use crate::algebra::ShapeDescription;
use crate::differencing::{self, LedgerEntry, Members};
use crate::jobs::{OutputMeta, job_output_key_id};
use crate::products::PUBLIC_RECIPIENTS;
use crate::workspace::Workspaces;

const SECRET_SETTING: &str = "watermark_secret";
/// The purpose the watermark secret is wrapped under.
pub const WATERMARK_SECRET_PURPOSE: &str = "shuyu/watermark-secret/v1";
/// The settings key holding the wrapped watermark secret (re-wrapped by key rotation).
pub const WATERMARK_SECRET_SETTING: &str = SECRET_SETTING;

/// Flagged cells a reviewer sees per finding at most.
pub const REVIEW_CELLS: usize = 200;

/// The vault key id of a release's watermarked copy.
pub fn release_key_id(release_id: &str) -> String {
    format!("{release_id}.release")
}

/// What a developer asks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The job.
    pub job_id: String,
    /// The output's name.
    pub output: String,
    /// The recipient: an organisation of the directory, by its id or its registered name, or
    /// the public (`社会公众` / `public`). Whether it is outside the mainland is what the data
    /// authority recorded for that organisation, never something the requester says.
    pub recipient: String,
    /// `none` (default), `suppress` (primary and secondary) or `round`.
    #[serde(default)]
    pub remedy: Option<String>,
}

/// A reviewer's decision on a release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseReview {
    /// Whether the reviewer approves.
    pub approve: bool,
    /// The six points, each satisfied or not (codes: fits_approved_use, sources_stated,
    /// no_raw_or_sensitive, no_personal_or_secret_risk, no_cross_border, other_risks_considered).
    #[schema(value_type = Object)]
    pub points: std::collections::BTreeMap<ReviewPoint, bool>,
    /// Reasons, in the reviewer's words.
    pub reasons: String,
    /// Overrides of checks that did not pass: check id → why the output may leave anyway.
    #[serde(default)]
    pub overrides: std::collections::BTreeMap<String, String>,
}

/// A release's report as its viewer may see it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "view", rename_all = "snake_case")]
pub enum ReleaseReport {
    /// The reviewers': every finding with its flagged cells by key.
    Full(ReportRecord),
    /// Everybody else's: outcomes and coarse counts, no key value.
    Redacted(RedactedReport),
}

impl ReleaseReport {
    /// In one language: the reviewers' with their flagged cells (capped), everybody else's
    /// without key values.
    pub fn render(&self, lang: shuyu_core::i18n::Lang) -> RenderedReleaseReport {
        match self {
            ReleaseReport::Full(r) => RenderedReleaseReport::Full(r.render(lang, REVIEW_CELLS)),
            ReleaseReport::Redacted(r) => RenderedReleaseReport::Summary(r.render(lang)),
        }
    }

    /// The ids of the checks that did not pass (what a reviewer must override).
    pub fn not_passed(&self) -> Vec<String> {
        match self {
            ReleaseReport::Full(r) => r
                .checks
                .iter()
                .filter(|f| f.result != shuyu_gate::Outcome::Pass)
                .map(|f| f.id.clone())
                .collect(),
            ReleaseReport::Redacted(r) => r
                .checks
                .iter()
                .filter(|f| f.result != shuyu_gate::Outcome::Pass)
                .map(|f| f.id.clone())
                .collect(),
        }
    }

    /// The verdict.
    pub fn verdict(&self) -> shuyu_gate::Outcome {
        match self {
            ReleaseReport::Full(r) => r.verdict,
            ReleaseReport::Redacted(r) => r.verdict,
        }
    }
}

/// A release's report in one language.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "view", rename_all = "snake_case")]
pub enum RenderedReleaseReport {
    /// The reviewers'.
    Full(shuyu_gate::RenderedReport),
    /// Everybody else's.
    Summary(shuyu_gate::ReportSummary),
}

/// A release as developers and reviewers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseView {
    /// Its id.
    pub id: String,
    /// The job and output.
    pub job_id: String,
    /// The output.
    pub output: String,
    /// The recipient (a directory organisation's name, or the public).
    pub recipient: String,
    /// The recipient organisation's id (none for the public).
    pub recipient_org_id: Option<String>,
    /// Whether the recipient is outside the mainland, as the directory records it.
    pub cross_border: bool,
    /// The remedy applied.
    pub remedy: String,
    /// `requested`, `rejected` or `released`.
    pub state: String,
    /// Approving reviewers needed.
    pub required_reviewers: i64,
    /// The gate's report on what would leave.
    #[schema(value_type = Object)]
    pub report: ReleaseReport,
    /// The reviewers' decisions.
    #[schema(value_type = Object)]
    pub decisions: Vec<Decision>,
    /// Their overrides.
    #[schema(value_type = Object)]
    pub overrides: Vec<Override>,
    /// When it was asked for (RFC 3339).
    pub created_at: String,
    /// When it was decided.
    pub decided_at: Option<String>,
    /// Whether the viewer is one of its reviewers and it awaits review.
    pub can_review: bool,
    /// For its reviewers: the output's SQL.
    pub sql: Option<String>,
    /// For its reviewers: the shape the output algebra admitted.
    pub shape: Option<ShapeDescription>,
}

/// What a release's reviewers see beside its report.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasePreview {
    /// The output as it would leave, flagged cells marked (rows withheld when raw).
    pub copy: shuyu_gate::ReviewCopy,
    /// The comparisons with earlier releases.
    pub comparisons: Vec<Comparison>,
}

/// What `shuyu watermark detect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    /// The outcome: found (the release and recipient), ambiguous, inconclusive, not found.
    pub detection: watermark::Detection,
    /// Releases considered.
    pub candidates: usize,
}

fn corrupt(column: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table: "releases",
        column,
        detail: e.to_string(),
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v).map_err(|e| EngineError::Task(e.to_string()))
}

/// The columns a watermark reads: keys identify rows, numeric measures (or, for record-level
/// outputs, numeric details) carry the marks.
fn mark_spec(output: &Output) -> MarkSpec {
    let numeric = |i: usize| {
        output
            .batch()
            .schema()
            .fields()
            .get(i)
            .is_some_and(|f| f.data_type().is_numeric())
    };
    let (mut keys, mut marks) = (Vec::new(), Vec::new());
    for (i, c) in output.columns().iter().enumerate() {
        match (&c.role, output.shape()) {
            (Role::Key, _) => keys.push(c.name.clone()),
            (Role::Measure { kind, .. }, _) if *kind != MeasureKind::Listing && numeric(i) => {
                marks.push(c.name.clone())
            }
            (Role::Detail, Shape::Microdata(_)) if numeric(i) => marks.push(c.name.clone()),
            (Role::Detail, Shape::Microdata(_)) => keys.push(c.name.clone()),
            _ => {}
        }
    }
    MarkSpec {
        key_columns: keys,
        mark_columns: marks,
    }
}

/// A release's recipient as the directory knows it.
struct Recipient {
    /// Its registered name (or the public's).
    name: String,
    /// Its organisation (none for the public).
    org_id: Option<String>,
    /// Whether data sent there leaves the mainland: the jurisdiction the authority recorded;
    /// an organisation with none recorded counts as outside (fail closed).
    cross_border: bool,
}

/// Whether a recipient is the public.
pub(crate) fn is_public(recipient: &str) -> bool {
    PUBLIC_RECIPIENTS.contains(&recipient)
}

/// One staged output, with what the algebra said of it.
struct Staged {
    output: Output,
    meta: OutputMeta,
}

/// An output as it would leave, and what the gate says of it.
struct Judged {
    output: Output,
    report: Report,
    comparisons: Vec<Comparison>,
    meta: OutputMeta,
}

impl Workspaces {
    /// The installation's watermark secret (made and wrapped under the master key on first use).
    pub(crate) async fn watermark_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
        let stored = settings::get(&mut *self.inner.identity.store().read().await?, SECRET_SETTING).await?;
        if let Some(w) = stored {
            return Ok(zeroize::Zeroizing::new(
                self.inner.master.unwrap(WATERMARK_SECRET_PURPOSE, &w)?,
            ));
        }
        let mut secret = zeroize::Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut secret).map_err(|e| shuyu_keyring::KeyringError::Random(e.to_string()))?;
        let wrapped = self.inner.master.wrap(WATERMARK_SECRET_PURPOSE, &secret)?;
        let now = self.inner.identity.clock().now();
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    // Two first uses at once: the one stored first wins.
                    if settings::get(tx.conn(), SECRET_SETTING).await?.is_some() {
                        tx.housekeeping("the watermark secret was made meanwhile");
                        return Ok::<_, StoreError>(());
                    }
                    settings::set(tx.conn(), SECRET_SETTING, &wrapped).await?;
                    tx.record(Event::new(
                        now,
                        Actor::system("engine:releases"),
                        "watermark.secret_created",
                        "installation",
                        SECRET_SETTING.to_string(),
                    ));
                    Ok(())
                })
            })
            .await?;
        let stored = settings::get(&mut *self.inner.identity.store().read().await?, SECRET_SETTING)
            .await?
            .ok_or(EngineError::NotFound("watermark_secret"))?;
        Ok(zeroize::Zeroizing::new(
            self.inner.master.unwrap(WATERMARK_SECRET_PURPOSE, &stored)?,
        ))
    }

    /// A staged output with its evidence and meta, read from the vault.
    async fn staged(&self, job_id: &str, name: &str) -> Result<Staged, EngineError> {
        let outputs = jobs::outputs(&mut *self.inner.identity.store().read().await?, job_id).await?;
        let o = outputs
            .into_iter()
            .find(|o| o.name == name)
            .ok_or(EngineError::NotFound("job_output"))?;
        let (Some(path), Some(wrapped)) = (&o.object_path, &o.wrapped_key) else {
            return Err(EngineError::NotFound("job_output"));
        };
        let batches = self
            .inner
            .vault
            .read(&job_output_key_id(job_id, name), path, wrapped, None)
            .await?;
        let evidence: shuyu_gate::Evidence =
            serde_json::from_str(&o.evidence_json).map_err(|e| StoreError::Corrupt {
                table: "job_outputs",
                column: "evidence_json",
                detail: e.to_string(),
            })?;
        let meta: OutputMeta =
            serde_json::from_str(o.algebra_json.as_deref().unwrap_or_default()).map_err(|e| StoreError::Corrupt {
                table: "job_outputs",
                column: "algebra_json",
                detail: e.to_string(),
            })?;
        let batch = match batches.first() {
            Some(b) => arrow::compute::concat_batches(&b.schema(), &batches)?,
            None => RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty())),
        };
        Ok(Staged {
            output: Output::from_parts(name, batch, evidence),
            meta,
        })
    }

    /// The members of a job output (who is behind each cell).
    async fn members(&self, job_id: &str, name: &str, n_keys: usize) -> Result<Option<Members>, EngineError> {
        let outputs = jobs::outputs(&mut *self.inner.identity.store().read().await?, job_id).await?;
        let Some(o) = outputs.into_iter().find(|o| o.name == name) else {
            return Ok(None);
        };
        let (Some(path), Some(wrapped)) = (&o.members_path, &o.members_wrapped_key) else {
            return Ok(None);
        };
        let batches = self
            .inner
            .vault
            .read(&differencing::members_key(job_id, name), path, wrapped, None)
            .await?;
        Ok(differencing::members_of(&batches, n_keys))
    }

    /// The ledger a release is compared with: every release made for the same developer
    /// organisation, and every public one (not `r` itself).
    async fn ledger_for(&self, r: &ReleaseRecord) -> Result<Vec<ReleaseRecord>, EngineError> {
        let all = releases::all_released(&mut *self.inner.identity.store().read().await?).await?;
        Ok(all
            .into_iter()
            .filter(|p| p.id != r.id && (p.org_id == r.org_id || is_public(&p.recipient)))
            .collect())
    }

    /// Compares an output with the ledger, entity by entity.
    async fn compare(
        &self,
        r: &ReleaseRecord,
        staged: &Staged,
        output: &Output,
    ) -> Result<Vec<Comparison>, EngineError> {
        let prior = self.ledger_for(r).await?;
        if prior.is_empty() || output.table().is_none() {
            return Ok(Vec::new());
        }
        let n_keys = staged.meta.keys.len();
        let Some(mine) = self.members(&r.job_id, &r.output_name, n_keys).await? else {
            // This output's members cannot be read: nothing can be compared, so nothing passes.
            return Ok(prior
                .iter()
                .map(|p| Comparison::Unreadable { release: p.id.clone() })
                .collect());
        };
        let shown = differencing::shown_cells(&staged.meta, output);
        let mut cache: HashMap<(String, String), Option<Members>> = HashMap::new();
        let mut out = Vec::with_capacity(prior.len());
        for p in prior {
            let entry: Option<LedgerEntry> = p.ledger_json.as_deref().and_then(|j| serde_json::from_str(j).ok());
            let Some(entry) = entry else {
                out.push(Comparison::Unreadable { release: p.id.clone() });
                continue;
            };
            let key = (entry.job.clone(), entry.output.clone());
            if !cache.contains_key(&key) {
                let members = self
                    .members(&entry.job, &entry.output, entry.keys.len())
                    .await
                    .ok()
                    .flatten();
                cache.insert(key.clone(), members);
            }
            match cache.get(&key).and_then(Option::as_ref) {
                Some(theirs) => out.push(differencing::compare(&staged.meta, &shown, &mine, &entry, theirs)),
                None => out.push(Comparison::Unreadable { release: p.id.clone() }),
            }
        }
        Ok(out)
    }

    /// The output as it would leave: remedied, compared with the ledger, judged for its
    /// destination.
    async fn judged(&self, r: &ReleaseRecord) -> Result<Judged, EngineError> {
        let staged = self.staged(&r.job_id, &r.output_name).await?;
        let (grade, rules) = self.rules_of_request(r).await?;
        let destination = Destination {
            recipient: r.recipient.clone(),
            cross_border: r.cross_border,
        };
        let comparisons = self.compare(r, &staged, &staged.output).await?;
        let first = shuyu_gate::checks::run(
            &staged.output,
            &Context {
                rules: &rules,
                ledger: &comparisons,
                destination: Some(&destination),
            },
        );
        let output = match r.remedy.as_str() {
            "suppress" => {
                shuyu_gate::remedy::suppress(&staged.output, &first, &rules)
                    .map_err(|e| EngineError::Task(e.to_string()))?
                    .output
            }
            "round" => {
                shuyu_gate::remedy::round(&staged.output, rules.round_base)
                    .map_err(|e| EngineError::Task(e.to_string()))?
                    .output
            }
            _ => staged.output.clone(),
        };
        let comparisons = if r.remedy == "none" {
            comparisons
        } else {
            self.compare(r, &staged, &output).await?
        };
        let report = shuyu_gate::checks::run(
            &output,
            &Context {
                rules: &rules,
                ledger: &comparisons,
                destination: Some(&destination),
            },
        )
        .with_grade(grade);
        Ok(Judged {
            output,
            report,
            comparisons,
            meta: staged.meta,
        })
    }

    /// The gate's rules for the scenario a release's job served.
    async fn rules_of_request(&self, r: &ReleaseRecord) -> Result<(Option<String>, shuyu_gate::Rules), EngineError> {
        let w = self.load(&r.workspace_id).await?;
        let (_, sources) = self.job_sources(&w).await?;
        Ok((crate::jobs::grade_of(&sources), self.rules_for(&sources)))
    }

    /// The recipient a developer named: the public, or an active organisation of the directory
    /// by id or exact registered name. Anything else is refused, naming the field and the rule.
    async fn recipient_of(&self, named: &str) -> Result<Recipient, EngineError> {
        let named = named.trim();
        let refuse = |rule: &'static str| {
            EngineError::BadSpec(shuyu_core::error::Validation(vec![shuyu_core::error::FieldError::new(
                "recipient",
                rule,
            )]))
        };
        if named.is_empty() || named.chars().count() > 200 {
            return Err(refuse("field_required"));
        }
        if is_public(named) {
            return Ok(Recipient {
                name: named.to_string(),
                org_id: None,
                cross_border: false,
            });
        }
        let mut c = self.inner.identity.store().read().await?;
        let org = match named.parse::<shuyu_core::id::OrgId>() {
            Ok(id) => shuyu_store::orgs::get(&mut c, id).await?,
            Err(_) => shuyu_store::orgs::find_by_name(&mut c, named).await?,
        };
        match org {
            Some(o) if o.status == shuyu_core::party::Status::Active => Ok(Recipient {
                name: o.name,
                org_id: Some(o.id.to_string()),
                cross_border: o.jurisdiction.is_none_or(|j| j.cross_border()),
            }),
            _ => Err(refuse("recipient_not_in_directory")),
        }
    }

    /// Asks to release one output of a finished job to a recipient. An output that still fails
    /// the gate after the remedy asked for cannot be asked for.
    pub async fn request_release(&self, p: &Principal, req: &ReleaseRequest) -> Result<ReleaseView, EngineError> {
        let job = jobs::get(&mut *self.inner.identity.store().read().await?, &req.job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&job.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::JobRead, &resource, "job").await?;
        self.inner
            .identity
            .authorize(p, Action::WorkspaceQuery, &resource)
            .await?;
        // Nothing is asked for beneath an agreement not in force (suspended, in
        // rectification, expired, ended).
        self.inner.lifecycle.require_in_force(&w.agreement_id).await?;
        if job.state != "done" {
            return Err(EngineError::JobNotDone(job.state.clone()));
        }
        let remedy = req.remedy.clone().unwrap_or_else(|| "none".into());
        if !matches!(remedy.as_str(), "none" | "suppress" | "round") {
            return Err(EngineError::BadOverride {
                field: "remedy".into(),
                technique: remedy,
            });
        }
        let recipient = self.recipient_of(&req.recipient).await?;
        // Two-person review when any approved field of the scenario is L3 or above, or
        // important data; one reviewer otherwise.
        let (_, sources) = self.job_sources(&w).await?;
        let sensitive = sources.iter().any(|s| {
            s.columns.iter().filter(|c| s.approved.contains(&c.name)).any(|c| {
                c.class.grade.tier != shuyu_classify::Tier::General
                    || c.class.grade.level >= Some(shuyu_classify::Level::L3)
            })
        });
        let now = self.inner.identity.clock().now();
        let mut record = ReleaseRecord {
            id: uuid::Uuid::now_v7().to_string(),
            job_id: job.id.clone(),
            output_name: req.output.clone(),
            request_id: job.request_id.clone(),
            workspace_id: w.id.clone(),
            org_id: w.org_id.clone(),
            requested_by: p.user_id.to_string(),
            recipient: recipient.name,
            recipient_org_id: recipient.org_id,
            cross_border: recipient.cross_border,
            remedy,
            state: "requested".into(),
            required_reviewers: if sensitive { 2 } else { 1 },
            report_json: String::new(),
            decisions_json: "[]".into(),
            overrides_json: "[]".into(),
            mark_spec_json: None,
            ledger_json: None,
            object_path: None,
            wrapped_key: None,
            created_at: now,
            decided_at: None,
            evidence_json: None,
        };
        let judged = self.judged(&record).await?;
        if judged.report.verdict() == shuyu_gate::Outcome::Fail {
            let failing: Vec<&str> = judged
                .report
                .checks()
                .iter()
                .filter(|f| f.result() == shuyu_gate::Outcome::Fail)
                .map(|f| f.id())
                .collect();
            return Err(EngineError::FailsGate {
                checks: failing.join(", "),
            });
        }
        record.report_json = json(&judged.report.record())?;
        let mut e = shuyu_identity::audit::by(p, now, "release.request", "release", record.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "job": job.id, "output": req.output, "recipient": record.recipient, "cross_border": record.cross_border,
            "remedy": record.remedy, "verdict": judged.report.verdict().code(),
        }));
        e.links = vec![Link {
            from: NodeRef::new("job_output", format!("{}/{}", job.id, req.output)),
            to: NodeRef::new("release", record.id.clone()),
            relation: "released_as".into(),
        }];
        let stored = record.clone();
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    releases::insert(tx.conn(), &stored).await?;
                    tx.record(e);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        self.viewed(p, &record).await
    }

    /// The stored approval of a release.
    fn approval_of(r: &ReleaseRecord) -> Result<Approval, EngineError> {
        Ok(Approval::new(
            serde_json::from_str(&r.decisions_json).map_err(corrupt("decisions_json"))?,
            serde_json::from_str(&r.overrides_json).map_err(corrupt("overrides_json"))?,
            r.required_reviewers.max(1) as usize,
        ))
    }

    /// Mints a released copy again from its sealed, watermarked table, its evidence and its
    /// approval — the gate runs its checks on it again (callers authorize and audit): a release not
    /// `released` is [`EngineError::ReleaseClosed`].
    pub(crate) async fn mint_copy(&self, r: &ReleaseRecord) -> Result<shuyu_gate::Released<String>, EngineError> {
        let (Some(path), Some(wrapped), "released") = (&r.object_path, &r.wrapped_key, r.state.as_str()) else {
            return Err(EngineError::ReleaseClosed(r.state.clone()));
        };
        // Every door a copy leaves by (a release's download, a product's, publishing) closes
        // with the agreement it was made under.
        self.in_force_for(r).await?;
        let batches = self
            .inner
            .vault
            .read(&release_key_id(&r.id), path, wrapped, None)
            .await?;
        let evidence: shuyu_gate::Evidence =
            serde_json::from_str(r.evidence_json.as_deref().unwrap_or_default()).map_err(corrupt("evidence_json"))?;
        let batch = match batches.first() {
            Some(b) => arrow::compute::concat_batches(&b.schema(), &batches)?,
            None => RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty())),
        };
        let output = Output::from_parts(&r.output_name, batch, evidence);
        let (_, rules) = self.rules_of_request(r).await?;
        let destination = Destination {
            recipient: r.recipient.clone(),
            cross_border: r.cross_border,
        };
        let minted = mint(
            &r.id,
            output,
            &Context {
                rules: &rules,
                ledger: &[],
                destination: Some(&destination),
            },
            &Self::approval_of(r)?,
            None,
        )
        .map_err(EngineError::Gate)?;
        minted.released.to_csv().map_err(EngineError::Gate)
    }

    /// Refused (`not_in_force`) unless the agreement of the release's workspace is in force.
    async fn in_force_for(&self, r: &ReleaseRecord) -> Result<(), EngineError> {
        let w = self.load(&r.workspace_id).await?;
        self.inner.lifecycle.require_in_force(&w.agreement_id).await?;
        Ok(())
    }

    pub(crate) async fn release_record(&self, id: &str) -> Result<ReleaseRecord, EngineError> {
        releases::get(&mut *self.inner.identity.store().read().await?, id)
            .await?
            .ok_or(EngineError::NotFound("release"))
    }

    /// Whether `p` reviews a release (the data request's reviewers).
    async fn reviews(&self, p: &Principal, r: &ReleaseRecord) -> Result<bool, EngineError> {
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        Ok(self.inner.identity.allows(p, Action::DataRequestReview, &resource))
    }

    /// Whether `p` may see a release: its developers' organisation (and oversight), or its
    /// reviewers.
    async fn may_see(&self, p: &Principal, r: &ReleaseRecord) -> Result<bool, EngineError> {
        let w = self.load(&r.workspace_id).await?;
        if self
            .inner
            .identity
            .allows(p, Action::WorkspaceRead, &self.resource(&w).await?)
        {
            return Ok(true);
        }
        self.reviews(p, r).await
    }

    /// One release.
    pub async fn release(&self, p: &Principal, id: &str) -> Result<ReleaseView, EngineError> {
        let r = self.release_record(id).await?;
        if !self.may_see(p, &r).await? {
            return Err(EngineError::NotFound("release"));
        }
        self.viewed(p, &r).await
    }

    /// What the release's reviewers see beside the report: the output as it would leave, with
    /// flagged cells marked — made by the gate, which withholds the rows when they are raw records
    /// or personal information — and the comparisons with earlier releases. Nobody else sees the
    /// output before it is released.
    pub async fn release_preview(
        &self,
        p: &Principal,
        id: &str,
        max_rows: usize,
    ) -> Result<ReleasePreview, EngineError> {
        let r = self.release_record(id).await?;
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        self.authorize_hidden(p, Action::ReleasePreview, &resource, "release")
            .await?;
        let judged = self.judged(&r).await?;
        Ok(ReleasePreview {
            copy: shuyu_gate::review_copy(&judged.output, &judged.report, max_rows),
            comparisons: judged.comparisons,
        })
    }

    /// A release as `p` sees it: its reviewers the full report, the SQL and the shape; everybody
    /// else the report without key values.
    async fn viewed(&self, p: &Principal, r: &ReleaseRecord) -> Result<ReleaseView, EngineError> {
        let record: ReportRecord = serde_json::from_str(&r.report_json).map_err(corrupt("report_json"))?;
        let reviewer = self.reviews(p, r).await?;
        let meta = if reviewer {
            let outputs = jobs::outputs(&mut *self.inner.identity.store().read().await?, &r.job_id).await?;
            outputs
                .into_iter()
                .find(|o| o.name == r.output_name)
                .and_then(|o| o.algebra_json)
                .map(|j| serde_json::from_str::<OutputMeta>(&j))
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    table: "job_outputs",
                    column: "algebra_json",
                    detail: e.to_string(),
                })?
        } else {
            None
        };
        Ok(ReleaseView {
            id: r.id.clone(),
            job_id: r.job_id.clone(),
            output: r.output_name.clone(),
            recipient: r.recipient.clone(),
            recipient_org_id: r.recipient_org_id.clone(),
            cross_border: r.cross_border,
            remedy: r.remedy.clone(),
            state: r.state.clone(),
            required_reviewers: r.required_reviewers,
            report: if reviewer {
                ReleaseReport::Full(record)
            } else {
                ReleaseReport::Redacted(record.redacted())
            },
            decisions: serde_json::from_str(&r.decisions_json).map_err(corrupt("decisions_json"))?,
            overrides: serde_json::from_str(&r.overrides_json).map_err(corrupt("overrides_json"))?,
            created_at: r.created_at.to_string(),
            decided_at: r.decided_at.map(|t| t.to_string()),
            can_review: r.state == "requested" && reviewer,
            sql: meta.as_ref().map(|m| m.sql.clone()),
            shape: meta.map(|m| m.shape),
        })
    }

    /// The releases `p` may see (the reviewer queue is those `requested`), newest first.
    pub async fn releases(&self, p: &Principal) -> Result<Vec<ReleaseView>, EngineError> {
        let all = releases::all(&mut *self.inner.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for r in all {
            if self.may_see(p, &r).await? {
                out.push(self.viewed(p, &r).await?);
            }
        }
        Ok(out)
    }

    /// Records one reviewer's decision; when enough approved and every check that did not pass
    /// is overridden, mints the release, watermarks it for its recipient, seals it and enters
    /// what it revealed in the ledger.
    pub async fn review_release(
        &self,
        p: &Principal,
        id: &str,
        review: &ReleaseReview,
    ) -> Result<ReleaseView, EngineError> {
        let r = self.release_record(id).await?;
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        self.inner
            .identity
            .authorize(p, Action::DataRequestReview, &resource)
            .await?;
        if r.state != "requested" {
            return Err(EngineError::ReleaseClosed(r.state.clone()));
        }
        // Reviewed and minted only while the agreement is in force: a suspension holds the
        // review, an ending cancels the release.
        self.in_force_for(&r).await?;
        if review.reasons.trim().is_empty() {
            return Err(EngineError::BadSpec(shuyu_core::error::Validation(vec![
                shuyu_core::error::FieldError::new("reasons", "field_required"),
            ])));
        }
        let reviewer = p.user_id.to_string();
        let mut decisions: Vec<Decision> =
            serde_json::from_str(&r.decisions_json).map_err(corrupt("decisions_json"))?;
        let mut overrides: Vec<Override> =
            serde_json::from_str(&r.overrides_json).map_err(corrupt("overrides_json"))?;
        decisions.retain(|d| d.reviewer != reviewer);
        overrides.retain(|o| o.reviewer != reviewer);
        decisions.push(Decision {
            reviewer: reviewer.clone(),
            points: ReviewPoint::ALL
                .iter()
                .map(|pt| (*pt, review.points.get(pt).copied().unwrap_or(false)))
                .collect(),
            reasons: review.reasons.trim().to_string(),
            approve: review.approve,
        });
        for (check, reason) in &review.overrides {
            overrides.push(Override {
                check: check.clone(),
                reviewer: reviewer.clone(),
                reason: reason.trim().to_string(),
            });
        }
        let approval = Approval::new(
            decisions.clone(),
            overrides.clone(),
            r.required_reviewers.max(1) as usize,
        );
        let judged = self.judged(&r).await?;
        let (_, rules) = self.rules_of_request(&r).await?;
        let destination = Destination {
            recipient: r.recipient.clone(),
            cross_border: r.cross_border,
        };
        let spec = mark_spec(&judged.output);
        let secret = self.watermark_secret().await?;
        let key = WatermarkKey::derive(
            &secret,
            &Mark {
                release: r.id.clone(),
                recipient: r.recipient.clone(),
            },
        );
        let state = if !review.approve { "rejected" } else { "requested" };
        // Mint when the approval is complete; until then the decision is recorded.
        let minted = if review.approve {
            let ctx = Context {
                rules: &rules,
                ledger: &judged.comparisons,
                destination: Some(&destination),
            };
            match mint(&r.id, judged.output.clone(), &ctx, &approval, Some((&key, &spec))) {
                Ok(m) => Some(m),
                Err(shuyu_gate::GateError::NotEnoughReviewers { .. }) => None,
                Err(e) => {
                    // A decision that cannot release (a check not overridden, a point left
                    // unsatisfied) is not recorded as an approval: the reviewer is told why.
                    return Err(EngineError::Gate(e));
                }
            }
        } else {
            None
        };
        let now = self.inner.identity.clock().now();
        let mut e = shuyu_identity::audit::by(p, now, "release.review", "release", r.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "approve": review.approve, "points": review.points, "reasons": review.reasons,
            "overrides": review.overrides, "verdict": judged.report.verdict().code(),
        }));
        let decisions_json = json(&decisions)?;
        let overrides_json = json(&overrides)?;
        let Some(minted) = minted else {
            let id = r.id.clone();
            let next = state.to_string();
            self.inner
                .identity
                .store()
                .write(move |tx| {
                    Box::pin(async move {
                        if !releases::set_review(tx.conn(), &id, &decisions_json, &overrides_json, &next, now).await? {
                            return Err(StoreError::Stale("releases"));
                        }
                        tx.record(e);
                        Ok::<_, StoreError>(())
                    })
                })
                .await?;
            return self.viewed(p, &self.release_record(&r.id).await?).await;
        };
        // Released: sealed as marked for the recipient, and what it revealed is remembered.
        let released = minted.released.value();
        let path = format!("releases/{}.parquet", r.id);
        let mut w = self
            .inner
            .vault
            .writer(&release_key_id(&r.id), &path, released.batch().schema())?;
        if let Err(err) = w.write(released.batch()) {
            self.inner.vault.abandon(w);
            return Err(err.into());
        }
        let sealed = self.inner.vault.seal(w).await?;
        let ledger = LedgerEntry::of(
            &r.id,
            &r.org_id,
            is_public(&r.recipient),
            &r.job_id,
            &judged.meta,
            released,
        );
        let ledger_json = json(&ledger)?;
        let spec_json = json(&spec)?;
        let evidence_json = json(&released.evidence())?;
        let mut done = Event::new(
            now,
            Actor::system("engine:releases"),
            "release.mint",
            "release",
            r.id.clone(),
        );
        done.payload = Some(serde_json::json!({
            "recipient": r.recipient, "watermark_bits": minted.watermark_bits,
            "overrides": overrides, "reviewers": decisions.iter().map(|d| d.reviewer.clone()).collect::<Vec<_>>(),
        }));
        let id = r.id.clone();
        let (object_path, wrapped_key) = (sealed.path.clone(), sealed.wrapped_key.clone());
        let stored = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    if !releases::set_review(tx.conn(), &id, &decisions_json, &overrides_json, "approved", now).await? {
                        return Err(StoreError::Stale("releases"));
                    }
                    let copy = releases::ReleasedCopy {
                        object_path: &object_path,
                        wrapped_key: &wrapped_key,
                        mark_spec_json: &spec_json,
                        ledger_json: &ledger_json,
                        evidence_json: &evidence_json,
                    };
                    releases::set_released(tx.conn(), &id, &copy, now).await?;
                    tx.record(e);
                    tx.record(done);
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        if let Err(err) = stored {
            let _ = self.inner.vault.delete(&sealed.path).await;
            return Err(err.into());
        }
        self.viewed(p, &self.release_record(&r.id).await?).await
    }

    /// The released, watermarked copy as CSV for its developers' organisation — minted again
    /// from the stored copy, so nothing leaves that the gate did not pass.
    pub async fn download_release(&self, p: &Principal, id: &str) -> Result<shuyu_gate::Released<String>, EngineError> {
        let r = self.release_record(id).await?;
        let w = self.load(&r.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::ReleaseDownload, &resource, "release")
            .await?;
        let released = self.mint_copy(&r).await?;
        let now = self.inner.identity.clock().now();
        let e = shuyu_identity::audit::by(p, now, "release.download", "release", r.id.clone(), None, None);
        self.record(e).await?;
        Ok(released)
    }
}

/// Names the release and recipient a leaked copy came from (`shuyu watermark detect`): every
/// release is a candidate, its key derived from the installation's watermark secret.
pub async fn attribute(
    store: &shuyu_store::Store,
    master: &shuyu_keyring::MasterKey,
    path: &std::path::Path,
) -> Result<Attribution, EngineError> {
    let table = watermark::read_leaked(path).map_err(|e| EngineError::BadFile {
        file: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut conn = store.read().await?;
    let released = releases::all_released(&mut conn).await?;
    let secret = match settings::get(&mut conn, SECRET_SETTING).await? {
        Some(w) => zeroize::Zeroizing::new(master.unwrap(WATERMARK_SECRET_PURPOSE, &w)?),
        None => zeroize::Zeroizing::new(Vec::new()),
    };
    let candidates: Vec<Candidate> = released
        .iter()
        .filter_map(|r| {
            let spec: MarkSpec = serde_json::from_str(r.mark_spec_json.as_deref()?).ok()?;
            let mark = Mark {
                release: r.id.clone(),
                recipient: r.recipient.clone(),
            };
            Some(Candidate {
                key: WatermarkKey::derive(&secret, &mark),
                mark,
                spec,
            })
        })
        .collect();
    Ok(Attribution {
        detection: watermark::detect(&table, &candidates),
        candidates: candidates.len(),
    })
}
