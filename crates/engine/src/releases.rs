//! Release review and what leaves the domain.
//!
//! A developer asks to release one checked job output to a recipient, with a remedy if the gate
//! suggested one; the output is judged again — remedied, against the disclosure ledger of
//! everything already released under the same data request, and for its destination. The
//! operator's reviewers (the data request's reviewers) record structured decisions on
//! YP5(四)'s six points, and overrides with reasons for checks that did not pass (on the audit
//! log). When enough reviewers approved, `shuyu_gate::mint` — the only constructor of what
//! leaves — makes the release; it is watermarked for its recipient, sealed in the vault, and
//! what it revealed is entered in the ledger. A download mints again from the stored copy, so
//! every byte that leaves went through the gate.

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use shuyu_audit::entry::Actor;
use shuyu_core::actor::Principal;
use shuyu_gate::release::{Decision, Override, ReviewPoint};
use shuyu_gate::watermark::{self, Candidate, Mark, MarkSpec, WatermarkKey};
use shuyu_gate::{Approval, Context, Destination, LedgerEntry, MeasureKind, Output, Report, Role, Shape, mint};
use shuyu_policy::Action;
use shuyu_store::jobs;
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::log::Event;
use shuyu_store::releases::{self, ReleaseRecord};
use shuyu_store::{StoreError, settings};
use utoipa::ToSchema;

use crate::EngineError;
use crate::jobs::job_output_key_id;
use crate::workspace::Workspaces;

const SECRET_SETTING: &str = "watermark_secret";
/// The purpose the watermark secret is wrapped under.
pub const WATERMARK_SECRET_PURPOSE: &str = "shuyu/watermark-secret/v1";
/// The settings key holding the wrapped watermark secret (re-wrapped by key rotation).
pub const WATERMARK_SECRET_SETTING: &str = SECRET_SETTING;

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
    /// The recipient (an organisation's name).
    pub recipient: String,
    /// Whether the recipient is outside the mainland (refused, R-38(5)).
    #[serde(default)]
    pub cross_border: bool,
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

/// A release as developers and reviewers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseView {
    /// Its id.
    pub id: String,
    /// The job and output.
    pub job_id: String,
    /// The output.
    pub output: String,
    /// The recipient.
    pub recipient: String,
    /// Whether the recipient is abroad.
    pub cross_border: bool,
    /// The remedy applied.
    pub remedy: String,
    /// `requested`, `rejected` or `released`.
    pub state: String,
    /// Approving reviewers needed.
    pub required_reviewers: i64,
    /// The gate's report on what would leave.
    #[schema(value_type = Object)]
    pub report: Report,
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
}

/// What `shuyu watermark detect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    /// The outcome: found (the release and recipient), ambiguous, inconclusive, not found.
    pub detection: watermark::Detection,
    /// Releases considered.
    pub candidates: usize,
}

/// A table as CSV: a header row, then each value's canonical text (numbers at full precision,
/// which the watermark needs), nulls empty.
fn to_csv(batches: &[RecordBatch]) -> Result<String, EngineError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let task = |e: csv::Error| EngineError::Task(e.to_string());
    if let Some(first) = batches.first() {
        w.write_record(first.schema().fields().iter().map(|f| f.name().as_str()))
            .map_err(task)?;
    }
    for b in batches {
        for row in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| shuyu_gate::output::cell_text(c, row).unwrap_or_default())
                .collect();
            w.write_record(&cells).map_err(task)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| EngineError::Task(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| EngineError::Task(e.to_string()))
}

fn corrupt(column: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table: "releases",
        column,
        detail: e.to_string(),
    }
}

fn view(r: &ReleaseRecord) -> Result<ReleaseView, EngineError> {
    Ok(ReleaseView {
        id: r.id.clone(),
        job_id: r.job_id.clone(),
        output: r.output_name.clone(),
        recipient: r.recipient.clone(),
        cross_border: r.cross_border,
        remedy: r.remedy.clone(),
        state: r.state.clone(),
        required_reviewers: r.required_reviewers,
        report: serde_json::from_str(&r.report_json).map_err(corrupt("report_json"))?,
        decisions: serde_json::from_str(&r.decisions_json).map_err(corrupt("decisions_json"))?,
        overrides: serde_json::from_str(&r.overrides_json).map_err(corrupt("overrides_json"))?,
        created_at: r.created_at.to_string(),
        decided_at: r.decided_at.map(|t| t.to_string()),
        can_review: false,
    })
}

/// The columns a watermark reads: keys identify rows, numeric measures (or, for record-level
/// outputs, numeric details) carry the marks.
fn mark_spec(output: &Output) -> MarkSpec {
    let numeric = |i: usize| {
        output
            .batch
            .schema()
            .fields()
            .get(i)
            .is_some_and(|f| f.data_type().is_numeric())
    };
    let (mut keys, mut marks) = (Vec::new(), Vec::new());
    for (i, c) in output.columns.iter().enumerate() {
        match (&c.role, &output.shape) {
            (Role::Key, _) => keys.push(c.name.clone()),
            (Role::Measure { kind, .. }, _) if *kind != MeasureKind::Listing && numeric(i) => {
                marks.push(c.name.clone())
            }
            (Role::Detail, Shape::Microdata) if numeric(i) => marks.push(c.name.clone()),
            (Role::Detail, Shape::Microdata) => keys.push(c.name.clone()),
            _ => {}
        }
    }
    MarkSpec {
        key_columns: keys,
        mark_columns: marks,
    }
}

impl Workspaces {
    /// The installation's watermark secret (made and wrapped under the master key on first use).
    async fn watermark_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
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
                    settings::set(tx.conn(), SECRET_SETTING, &wrapped).await?;
                    tx.record(Event::new(
                        now,
                        Actor::system("engine:releases"),
                        "watermark.secret_created",
                        "installation",
                        SECRET_SETTING.to_string(),
                    ));
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        // Two first uses at once: the stored one wins.
        let stored = settings::get(&mut *self.inner.identity.store().read().await?, SECRET_SETTING)
            .await?
            .ok_or(EngineError::NotFound("watermark_secret"))?;
        Ok(zeroize::Zeroizing::new(
            self.inner.master.unwrap(WATERMARK_SECRET_PURPOSE, &stored)?,
        ))
    }

    /// A staged output with its evidence, read from the vault.
    async fn staged(&self, job_id: &str, name: &str) -> Result<Output, EngineError> {
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
        let batch = match batches.first() {
            Some(b) => arrow::compute::concat_batches(&b.schema(), &batches)?,
            None => RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty())),
        };
        Ok(Output::from_parts(name, batch, evidence))
    }

    /// The output as it would leave: remedied, and judged against the ledger and destination.
    async fn judged(&self, r: &ReleaseRecord) -> Result<(Output, Report), EngineError> {
        let staged = self.staged(&r.job_id, &r.output_name).await?;
        let rules = shuyu_gate::Rules::default();
        let ctx0 = Context {
            rules: &rules,
            ledger: &[],
            destination: None,
        };
        let first = shuyu_gate::checks::run(&staged, &ctx0);
        let output = match r.remedy.as_str() {
            "suppress" => {
                shuyu_gate::remedy::suppress(&staged, &first)
                    .map_err(|e| EngineError::Task(e.to_string()))?
                    .output
            }
            "round" => {
                shuyu_gate::remedy::round(&staged, rules.round_base)
                    .map_err(|e| EngineError::Task(e.to_string()))?
                    .output
            }
            _ => staged,
        };
        // The disclosure ledger: everything released under the same data request, and everything
        // released to the same recipient under any other.
        let mut prior = {
            let mut c = self.inner.identity.store().read().await?;
            let mut prior = releases::released_of_request(&mut c, &r.request_id).await?;
            prior.extend(releases::released_to(&mut c, &r.recipient).await?);
            prior
        };
        prior.sort_by(|a, b| a.id.cmp(&b.id));
        prior.dedup_by(|a, b| a.id == b.id);
        let ledger: Vec<LedgerEntry> = prior
            .iter()
            .filter(|p| p.id != r.id)
            .filter_map(|p| p.ledger_json.as_deref())
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        let destination = Destination {
            recipient: r.recipient.clone(),
            cross_border: r.cross_border,
        };
        let report = shuyu_gate::checks::run(
            &output,
            &Context {
                rules: &rules,
                ledger: &ledger,
                destination: Some(&destination),
            },
        );
        Ok((output, report))
    }

    /// Asks to release one output of a finished job to a recipient.
    pub async fn request_release(&self, p: &Principal, req: &ReleaseRequest) -> Result<ReleaseView, EngineError> {
        let job = jobs::get(&mut *self.inner.identity.store().read().await?, &req.job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&job.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.inner
            .identity
            .authorize(p, Action::WorkspaceQuery, &resource)
            .await?;
        let remedy = req.remedy.clone().unwrap_or_else(|| "none".into());
        if !matches!(remedy.as_str(), "none" | "suppress" | "round") {
            return Err(EngineError::BadOverride {
                field: "remedy".into(),
                technique: remedy,
            });
        }
        if req.recipient.trim().is_empty() || req.recipient.chars().count() > 200 {
            return Err(EngineError::BadSpec(shuyu_core::error::Validation(vec![
                shuyu_core::error::FieldError::new("recipient", "field_required"),
            ])));
        }
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
            recipient: req.recipient.trim().to_string(),
            cross_border: req.cross_border,
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
        };
        let (_, report) = self.judged(&record).await?;
        record.report_json = serde_json::to_string(&report).map_err(|e| EngineError::Task(e.to_string()))?;
        let mut e = shuyu_identity::audit::by(p, now, "release.request", "release", record.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "job": job.id, "output": req.output, "recipient": record.recipient, "cross_border": record.cross_border,
            "remedy": record.remedy, "verdict": report.verdict.code(),
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

    /// Mints a released copy again from its sealed, watermarked table and its stored report and
    /// approval (callers authorize and audit): a release not `released` is [`EngineError::ReleaseClosed`].
    pub(crate) async fn mint_copy(&self, r: &ReleaseRecord) -> Result<shuyu_gate::Released<String>, EngineError> {
        let (Some(path), Some(wrapped), "released") = (&r.object_path, &r.wrapped_key, r.state.as_str()) else {
            return Err(EngineError::ReleaseClosed(r.state.clone()));
        };
        let batches = self
            .inner
            .vault
            .read(&release_key_id(&r.id), path, wrapped, None)
            .await?;
        let text = to_csv(&batches)?;
        let report: Report = serde_json::from_str(&r.report_json).map_err(corrupt("report_json"))?;
        let approval = Approval {
            decisions: serde_json::from_str(&r.decisions_json).map_err(corrupt("decisions_json"))?,
            overrides: serde_json::from_str(&r.overrides_json).map_err(corrupt("overrides_json"))?,
            required_reviewers: r.required_reviewers.max(1) as usize,
        };
        mint(&r.id, text, &report, &approval).map_err(EngineError::Gate)
    }

    pub(crate) async fn release_record(&self, id: &str) -> Result<ReleaseRecord, EngineError> {
        releases::get(&mut *self.inner.identity.store().read().await?, id)
            .await?
            .ok_or(EngineError::NotFound("release"))
    }

    /// Whether `p` may see a release: its developers' organisation, or its reviewers.
    async fn may_see(&self, p: &Principal, r: &ReleaseRecord) -> Result<bool, EngineError> {
        let w = self.load(&r.workspace_id).await?;
        if self
            .inner
            .identity
            .allows(p, Action::WorkspaceRead, &self.resource(&w).await?)
        {
            return Ok(true);
        }
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        Ok(self.inner.identity.allows(p, Action::DataRequestReview, &resource))
    }

    /// One release.
    pub async fn release(&self, p: &Principal, id: &str) -> Result<ReleaseView, EngineError> {
        let r = self.release_record(id).await?;
        if !self.may_see(p, &r).await? {
            return Err(EngineError::NotFound("release"));
        }
        self.viewed(p, &r).await
    }

    /// What the release's reviewers (and its developers) see beside the report: the output as it
    /// would leave, with flagged cells marked — made by the gate, which withholds the rows when
    /// they are raw records or personal information.
    pub async fn release_preview(
        &self,
        p: &Principal,
        id: &str,
        max_rows: usize,
    ) -> Result<shuyu_gate::ReviewCopy, EngineError> {
        let r = self.release_record(id).await?;
        if !self.may_see(p, &r).await? {
            return Err(EngineError::NotFound("release"));
        }
        let (output, report) = self.judged(&r).await?;
        Ok(shuyu_gate::review_copy(&output, &report, max_rows))
    }

    /// A release as `p` sees it: with whether `p` may review it now.
    async fn viewed(&self, p: &Principal, r: &ReleaseRecord) -> Result<ReleaseView, EngineError> {
        let mut v = view(r)?;
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        v.can_review = r.state == "requested" && self.inner.identity.allows(p, Action::DataRequestReview, &resource);
        Ok(v)
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
        let approval = Approval {
            decisions: decisions.clone(),
            overrides: overrides.clone(),
            required_reviewers: r.required_reviewers.max(1) as usize,
        };
        let (output, report) = self.judged(&r).await?;
        let state = if !review.approve { "rejected" } else { "requested" };
        // Mint when the approval is complete; until then the decision is recorded.
        let minted = if review.approve {
            match mint(&r.id, output.batch.clone(), &report, &approval) {
                Ok(released) => Some(released),
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
            "overrides": review.overrides, "verdict": report.verdict.code(),
        }));
        let decisions_json = serde_json::to_string(&decisions).map_err(|e| EngineError::Task(e.to_string()))?;
        let overrides_json = serde_json::to_string(&overrides).map_err(|e| EngineError::Task(e.to_string()))?;
        let report_json = serde_json::to_string(&report).map_err(|e| EngineError::Task(e.to_string()))?;
        let Some(released) = minted else {
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
            let _ = report_json;
            return self.viewed(p, &self.release_record(&r.id).await?).await;
        };
        // Released: watermark for the recipient, seal, record what it revealed.
        let spec = mark_spec(&output);
        let secret = self.watermark_secret().await?;
        let key = WatermarkKey::derive(
            &secret,
            &Mark {
                release: r.id.clone(),
                recipient: r.recipient.clone(),
            },
        );
        let marked = watermark::embed(released.value(), &key, &spec).map_err(|e| EngineError::Task(e.to_string()))?;
        let path = format!("releases/{}.parquet", r.id);
        let mut w = self
            .inner
            .vault
            .writer(&release_key_id(&r.id), &path, marked.batch.schema())?;
        if let Err(err) = w.write(&marked.batch) {
            self.inner.vault.abandon(w);
            return Err(err.into());
        }
        let sealed = self.inner.vault.seal(w).await?;
        let ledger = LedgerEntry::of(&r.id, &output);
        let ledger_json = serde_json::to_string(&ledger).map_err(|e| EngineError::Task(e.to_string()))?;
        let spec_json = serde_json::to_string(&spec).map_err(|e| EngineError::Task(e.to_string()))?;
        let mut done = Event::new(
            now,
            Actor::system("engine:releases"),
            "release.mint",
            "release",
            r.id.clone(),
        );
        done.payload = Some(serde_json::json!({
            "recipient": r.recipient, "rows": marked.batch.num_rows(), "watermark_bits": marked.bits,
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
                    releases::set_released(
                        tx.conn(),
                        &id,
                        &object_path,
                        &wrapped_key,
                        &spec_json,
                        &ledger_json,
                        now,
                    )
                    .await?;
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
    /// from the stored report and approval, so nothing leaves that the gate did not pass.
    pub async fn download_release(&self, p: &Principal, id: &str) -> Result<shuyu_gate::Released<String>, EngineError> {
        let r = self.release_record(id).await?;
        let w = self.load(&r.workspace_id).await?;
        self.inner
            .identity
            .authorize(p, Action::WorkspaceRead, &self.resource(&w).await?)
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
