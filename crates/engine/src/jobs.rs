//! Code-to-data jobs: a developer's named SQL outputs — the same SQL that ran on the samples —
//! run on the **full data** inside the domain, under the scenario manifest:
//! - each output is planned against the scenario's views (the approved fields only: a field
//!   outside the manifest fails when it is planned, naming the field), then **compiled into the
//!   output algebra** ([`crate::algebra`]): a shape the gate understands, or a refusal naming the
//!   rule. Check-only mode stops there; a submission with a refused output is refused;
//! - the runner runs the plan the algebra builds — never the developer's — over the views'
//!   providers (the row scope in the scan, entity keys opaque, identifying fields withheld, the
//!   manifest's generalizations applied), computing per-entity evidence in the same plan, under
//!   limits on memory (a pool that also records the peak), time and rows scanned; a queue run by a
//!   runner with a concurrency limit; cancellation; jobs survive a restart; the agreement beneath
//!   is guarded — a job does not start under a suspended agreement and a running one is stopped;
//! - every output goes through the gate; it is staged encrypted in the vault with its report,
//!   evidence and members (who is behind each cell, for the disclosure ledger) and never shown
//!   before release — not even its size. A job that fails on full data says a fixed code and the
//!   operator that failed; the engine's own words, which may quote the data, are kept encrypted
//!   for the operator's security staff (each read audited). Metering is recorded for billing
//!   its developer sees it in coarse bands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::{Deserialize, Serialize};
use shuyu_audit::entry::Actor;
use shuyu_core::actor::Principal;
use shuyu_gate::{Context, RedactedReport, ReportRecord};
use shuyu_policy::Action;
use shuyu_store::jobs::{self, JobOutputRecord, JobRecord};
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::log::Event;
use shuyu_store::{StoreError, data_requests};
use utoipa::ToSchema;

use crate::EngineError;
use crate::algebra::{self, Admitted, Catalog, Profile, ShapeDescription};
use crate::scenario::{EntityKey, Meter, Rows, ScenarioTable, Scope, View};
use crate::sql::{df, options};
use crate::workspace::{Source, Workspaces, overrides_of, parse_manifest};

/// What a developer submits: one or more named outputs, each one SQL query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The outputs, by name.
    pub outputs: Vec<JobOutputSpec>,
}

/// One named output of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOutputSpec {
    /// Its name (letters, digits, `_`, `-`; unique in the job).
    pub name: String,
    /// The query (DataFusion's dialect), as it ran on the samples.
    pub sql: String,
}

/// The limits a job runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Wall-clock time per job.
    pub time: std::time::Duration,
    /// Memory for sorts, joins and aggregations.
    pub memory: usize,
    /// Rows the job may read (over all its tables).
    pub max_rows_scanned: u64,
    /// Jobs running at once.
    pub concurrency: usize,
    /// Attempts before a job interrupted by restarts is failed.
    pub max_attempts: i64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            time: std::time::Duration::from_secs(600),
            memory: 2 << 30,
            max_rows_scanned: 200_000_000,
            concurrency: 1,
            max_attempts: 3,
        }
    }
}

/// What a job measured, exactly, for billing. Kept inside the platform: its developer
/// sees [`MeteringView`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metering {
    /// Process CPU time while the job ran (ms).
    pub cpu_ms: u64,
    /// Wall-clock time (ms).
    pub wall_ms: u64,
    /// Rows read from the vault.
    pub rows_scanned: u64,
    /// Bytes of those rows in memory.
    pub bytes_scanned: u64,
    /// The most memory the job's operators held at once (bytes).
    pub peak_memory: u64,
    /// Bytes of the outputs.
    pub output_bytes: u64,
}

/// A job's metering as its developer sees it: what it read, and time and memory in coarse
/// steps — an exact peak or output size would count the cells it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeteringView {
    /// Rows read from the vault (the tables the job read, whole).
    pub rows_scanned: u64,
    /// Bytes read.
    pub bytes_scanned: u64,
    /// Wall-clock time, whole seconds (rounded up).
    pub wall_s: u64,
    /// CPU time, whole seconds (rounded up).
    pub cpu_s: u64,
    /// Peak memory, MiB, rounded up to a power of two.
    pub peak_memory_mib: u64,
}

impl Metering {
    /// The developer's view.
    pub fn banded(&self) -> MeteringView {
        let mib = self.peak_memory.div_ceil(1 << 20).max(1);
        MeteringView {
            rows_scanned: self.rows_scanned,
            bytes_scanned: self.bytes_scanned,
            wall_s: self.wall_ms.div_ceil(1000),
            cpu_s: self.cpu_ms.div_ceil(1000),
            peak_memory_mib: mib.next_power_of_two(),
        }
    }
}

/// Why an output was refused by the algebra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RefusalView {
    /// The rule.
    pub rule: String,
    /// What it names (a field, a function, a table).
    pub subject: String,
    /// Where (key, predicate, measure), when it matters.
    pub place: Option<String>,
}

/// Planning and compiling of one output (check-only mode).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutputCheck {
    /// The output.
    pub name: String,
    /// Whether it plans against the approved fields and the algebra admits it.
    pub planned: bool,
    /// Why it does not plan (a syntax error, a field outside the manifest), in the planner's
    /// words — planning sees no data.
    pub error: Option<String>,
    /// The field outside the manifest, when that is why.
    pub field: Option<String>,
    /// The rule that refused it, when the algebra did.
    pub refusal: Option<RefusalView>,
    /// What the algebra admitted.
    pub shape: Option<ShapeDescription>,
}

/// A job as its developer (and oversight) see it: states, metering bands, reports without key
/// values — never an output's rows or size.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed or was cancelled: a code (and, for a failure on full data, the operator).
    pub reason: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// What it asked for.
    pub request: JobRequest,
    /// Its metering, once finished.
    pub metering: Option<MeteringView>,
    /// Its outputs' reports (never their rows).
    pub outputs: Vec<JobOutputView>,
    /// When it was submitted, started and finished (RFC 3339).
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// One staged output: its verdict, shape and report, never its rows or size.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOutputView {
    /// The output's name.
    pub name: String,
    /// The gate's verdict.
    pub verdict: String,
    /// What the algebra admitted.
    pub shape: Option<ShapeDescription>,
    /// The gate's report without key values (reviewers see the full report on the release).
    #[schema(value_type = Object)]
    pub report: RedactedReport,
}

/// What is stored of an admitted output beside its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputMeta {
    /// The SQL it was compiled from.
    pub(crate) sql: String,
    /// The admitted shape.
    pub(crate) shape: ShapeDescription,
    /// Its keys in the members' order: the output column and the lineage.
    pub(crate) keys: Vec<KeyMeta>,
    /// What its values depend on, for the ledger's comparisons.
    pub(crate) basis: crate::differencing::Basis,
}

/// One key of an admitted output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyMeta {
    pub(crate) column: String,
    pub(crate) lineage: String,
}

/// The jobs' shared state: the runner's wake-up call and the running jobs' abort handles.
#[derive(Debug, Default)]
pub(crate) struct JobRuntime {
    wake: tokio::sync::Notify,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

/// The vault key id of a job output's staged object.
pub fn job_output_key_id(job_id: &str, name: &str) -> String {
    format!("{job_id}.{name}.job-output")
}

/// The vault key id of a job output's members.
pub fn job_members_key_id(job_id: &str, name: &str) -> String {
    format!("{job_id}.{name}.job-members")
}

/// The purpose a failed job's diagnostics are wrapped under.
pub fn diagnostics_purpose(job_id: &str) -> String {
    format!("shuyu/job-diagnostics/v1/{job_id}")
}

/// A memory pool that enforces the limit and remembers the most it held.
#[derive(Debug)]
struct PeakPool {
    inner: GreedyMemoryPool,
    peak: AtomicUsize,
}

impl PeakPool {
    fn note(&self) {
        self.peak.fetch_max(self.inner.reserved(), Ordering::Relaxed);
    }
}

impl std::fmt::Display for PeakPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes reserved, peak {}",
            self.reserved(),
            self.peak.load(Ordering::Relaxed)
        )
    }
}

impl MemoryPool for PeakPool {
    fn name(&self) -> &str {
        "shuyu-peak"
    }
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note();
    }
    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }
    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> datafusion::error::Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.note();
        Ok(())
    }
    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
}

/// The process's CPU time (user + system) in ms, from `/proc/self/stat` (Linux; `None`
/// elsewhere). With one job at a time it is the job's; with more it is shared.
fn process_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of USER_HZ = 100.
    Some((utime + stime) * 10)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn field_error(field: &str, rule: &'static str) -> EngineError {
    EngineError::BadSpec(shuyu_core::error::Validation(vec![shuyu_core::error::FieldError::new(
        field.to_string(),
        rule,
    )]))
}

/// A session for a developer's SQL or the engine's plans: no information schema, no table
/// functions (`generate_series`, `range` … do not exist in a job), two partitions.
pub(crate) fn session(runtime: Option<Arc<RuntimeEnv>>) -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(2);
    let ctx = match runtime {
        Some(r) => SessionContext::new_with_config_rt(config, r),
        None => SessionContext::new_with_config(config),
    };
    let functions: Vec<String> = ctx.state().table_functions().keys().cloned().collect();
    for f in functions {
        ctx.deregister_udtf(&f);
    }
    ctx
}

/// The session the developer's SQL is planned in: each view's approved fields, no rows. Its table
/// functions stay registered so that a query reading one plans — and is refused by name by the
/// algebra; the developer's plan never runs.
pub(crate) fn planning_session(views: &[Arc<View>]) -> Result<(SessionContext, Catalog), EngineError> {
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions(2),
    );
    let mut catalog = Catalog::new();
    for v in views {
        ctx.register_table(v.table.as_str(), Arc::new(ScenarioTable::for_planning(v.clone())))
            .map_err(df)?;
        catalog.insert(v.table.clone(), v.clone());
    }
    Ok((ctx, catalog))
}

/// Plans `sql` and compiles it into the algebra: a field outside the views is named, a shape
/// outside the algebra refused with its rule.
pub(crate) async fn prepare(
    ctx: &SessionContext,
    catalog: &Catalog,
    name: &str,
    sql: &str,
    profile: Profile,
) -> Result<Admitted, EngineError> {
    let frame = ctx
        .sql_with_options(sql, options())
        .await
        .map_err(|e| not_approved(name, &e).unwrap_or_else(|| df(e)))?;
    algebra::compile(frame.logical_plan(), catalog, profile).map_err(|r| EngineError::Refused {
        output: name.to_string(),
        rule: r.rule,
        subject: r.subject,
        place: r.place,
    })
}

/// What a failure on full data may say: a fixed code and the operator, from the kind of error —
/// never its text.
pub(crate) fn failure_code(e: &EngineError) -> String {
    use shuyu_core::error::UserFacing;
    match e {
        EngineError::Query(text) | EngineError::Task(text) => format!("job_failed:{}", operator_of(text)),
        EngineError::Arrow(a) => format!("job_failed:{}", operator_of(&a.to_string())),
        EngineError::Mask(_) => "job_failed:masking".into(),
        other => other.code().to_string(),
    }
}

/// The operator a failure's text points at (the text itself stays inside the domain).
fn operator_of(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("cast") || t.contains("parse") {
        "cast"
    } else if t.contains("divide") || t.contains("overflow") || t.contains("arithmetic") {
        "arithmetic"
    } else if t.contains("join") {
        "join"
    } else if t.contains("aggregat") {
        "aggregate"
    } else if t.contains("sort") {
        "sort"
    } else {
        "execution"
    }
}

impl Workspaces {
    fn runtime(&self) -> &JobRuntime {
        &self.inner.jobs
    }

    /// The workspace's manifest and the sources it approves.
    pub(crate) async fn job_sources(
        &self,
        w: &shuyu_store::workspaces::WorkspaceRecord,
    ) -> Result<(shuyu_workflow::requests::ScenarioManifest, Vec<Source>), EngineError> {
        let manifests =
            data_requests::manifests(&mut *self.inner.identity.store().read().await?, &w.request_id).await?;
        let m = manifests.first().ok_or(EngineError::NotFound("scenario_manifest"))?;
        let manifest = parse_manifest(&m.manifest_json)?;
        let sources = self.sources(&manifest).await?;
        Ok((manifest, sources))
    }

    /// The scenario's view of each source.
    pub(crate) fn views(
        &self,
        manifest: &shuyu_workflow::requests::ScenarioManifest,
        sources: &[Source],
    ) -> Result<Vec<Arc<View>>, EngineError> {
        let entity =
            crate::sample::scenario_entity(sources.iter().map(|s| (s.columns.as_slice(), s.approved.as_slice())));
        let overrides = overrides_of(manifest);
        sources
            .iter()
            .map(|s| {
                View::new(
                    crate::scenario::Names {
                        table: &s.table,
                        dataset: &s.dataset_id,
                        version: &s.version.id,
                    },
                    &s.columns,
                    &s.approved,
                    overrides.get(&s.dataset_id).map(Vec::as_slice).unwrap_or(&[]),
                    Scope::of(&manifest.rows, &s.columns, &s.approved),
                    entity,
                )
                .map(Arc::new)
            })
            .collect()
    }

    /// The installation's entity key (derived from its watermark secret: one secret, two uses,
    /// separated by label).
    pub(crate) async fn entity_key(&self) -> Result<EntityKey, EngineError> {
        use hmac::{KeyInit, Mac};
        let secret = self.watermark_secret().await?;
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&secret)
            .map_err(|_| EngineError::Task("the installation secret cannot key a MAC".into()))?;
        mac.update(b"shuyu/entity-key/v1");
        let bytes = mac.finalize().into_bytes();
        let mut k = [0u8; 16];
        k.copy_from_slice(&bytes[..16]);
        Ok(EntityKey::new(k))
    }

    /// The gate's rules for a scenario: those of the strictest grade among its approved fields.
    pub(crate) fn rules_for(&self, sources: &[Source]) -> shuyu_gate::Rules {
        match grade_of(sources) {
            Some(l) => self.inner.gate.for_level(&l).clone(),
            None => self.inner.gate.default.clone(),
        }
    }

    /// Checks a job request's form: names, count, sizes.
    fn validate_request(&self, req: &JobRequest) -> Result<(), EngineError> {
        if req.outputs.is_empty() || req.outputs.len() > 20 {
            return Err(field_error("outputs", "out_of_range"));
        }
        let mut seen = std::collections::HashSet::new();
        for o in &req.outputs {
            if !valid_name(&o.name) {
                return Err(field_error("outputs.name", "invalid_format"));
            }
            if !seen.insert(o.name.as_str()) {
                return Err(field_error("outputs.name", "duplicate"));
            }
            if o.sql.trim().is_empty() || o.sql.len() > self.inner.limits.max_sql {
                return Err(field_error("outputs.sql", "out_of_range"));
            }
        }
        Ok(())
    }

    /// Plans and compiles every output: the check-only mode.
    async fn plan_outputs(
        &self,
        manifest: &shuyu_workflow::requests::ScenarioManifest,
        sources: &[Source],
        req: &JobRequest,
    ) -> Result<Vec<(OutputCheck, Option<Admitted>)>, EngineError> {
        let views = self.views(manifest, sources)?;
        let (ctx, catalog) = planning_session(&views)?;
        let profile = profile_of(manifest);
        let mut out = Vec::new();
        for o in &req.outputs {
            let check = match prepare(&ctx, &catalog, &o.name, &o.sql, profile).await {
                Ok(a) => (
                    OutputCheck {
                        name: o.name.clone(),
                        planned: true,
                        error: None,
                        field: None,
                        refusal: None,
                        shape: Some(a.describe()),
                    },
                    Some(a),
                ),
                Err(e) => (
                    OutputCheck {
                        name: o.name.clone(),
                        planned: false,
                        field: match &e {
                            EngineError::NotApproved { field, .. } => Some(field.clone()),
                            _ => None,
                        },
                        refusal: match &e {
                            EngineError::Refused {
                                rule, subject, place, ..
                            } => Some(RefusalView {
                                rule: rule.to_string(),
                                subject: subject.clone(),
                                place: place.map(str::to_string),
                            }),
                            _ => None,
                        },
                        error: match &e {
                            EngineError::Query(text) => Some(text.clone()),
                            EngineError::Refused { .. } | EngineError::NotApproved { .. } => None,
                            other => Some(shuyu_core::error::UserFacing::code(other).to_string()),
                        },
                        shape: None,
                    },
                    None,
                ),
            };
            out.push(check);
        }
        Ok(out)
    }

    /// Validates a job without running it: planning against the manifest and the output
    /// algebra — which rule would refuse which output. Nothing reads data.
    pub async fn check_job(
        &self,
        p: &Principal,
        workspace_id: &str,
        req: &JobRequest,
    ) -> Result<Vec<OutputCheck>, EngineError> {
        let w = self.open_for_query(p, workspace_id).await?;
        // Planning touches no data, but it is work beneath the agreement: it stops with it.
        self.inner.lifecycle.require_in_force(&w.agreement_id).await?;
        self.validate_request(req)?;
        let (manifest, sources) = self.job_sources(&w).await?;
        Ok(self
            .plan_outputs(&manifest, &sources, req)
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    /// Submits a job: every output must plan against the manifest and be admitted by the
    /// algebra (else the first that is not is refused, naming the field or the rule), then it is
    /// queued; the runner picks it up.
    pub async fn submit_job(
        &self,
        p: &Principal,
        workspace_id: &str,
        req: &JobRequest,
    ) -> Result<JobView, EngineError> {
        let w = self.open_for_query(p, workspace_id).await?;
        self.validate_request(req)?;
        let (manifest, sources) = self.job_sources(&w).await?;
        let views = self.views(&manifest, &sources)?;
        let (ctx, catalog) = planning_session(&views)?;
        let profile = profile_of(&manifest);
        for o in &req.outputs {
            if let Err(e) = prepare(&ctx, &catalog, &o.name, &o.sql, profile).await {
                // An output the algebra refuses is an attempt the supervisors see: which rule
                // refused what, the query recorded without identifiers.
                if let EngineError::Refused { rule, subject, .. } = &e {
                    let now = self.inner.identity.clock().now();
                    let mut event =
                        shuyu_identity::audit::by(p, now, "job.refused", "workspace", w.id.clone(), None, None);
                    event.outcome = shuyu_audit::entry::Outcome::Denied;
                    event.payload = Some(serde_json::json!({
                        "output": o.name, "rule": rule, "subject": crate::sql::recorded_text(subject),
                        "sql": crate::sql::recorded(&o.sql),
                    }));
                    self.record(event).await?;
                }
                return Err(e);
            }
        }
        self.inner.lifecycle.require_in_force(&w.agreement_id).await?;
        let now = self.inner.identity.clock().now();
        let record = JobRecord {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: w.id.clone(),
            request_id: w.request_id.clone(),
            agreement_id: w.agreement_id.clone(),
            org_id: w.org_id.clone(),
            submitted_by: p.user_id.to_string(),
            spec_json: serde_json::to_string(req).map_err(|e| EngineError::Task(e.to_string()))?,
            state: "queued".into(),
            reason: None,
            metering_json: None,
            attempts: 0,
            created_at: now,
            started_at: None,
            finished_at: None,
            diagnostics_wrapped: None,
        };
        let mut e = shuyu_identity::audit::by(p, now, "job.submit", "job", record.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "workspace": w.id,
            "outputs": req.outputs.iter().map(|o| serde_json::json!({
                "name": o.name, "sql": crate::sql::recorded(&o.sql),
                "sql_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(o.sql.as_bytes())),
            })).collect::<Vec<_>>(),
        }));
        e.links = vec![Link {
            from: NodeRef::new("workspace", w.id.clone()),
            to: NodeRef::new("job", record.id.clone()),
            relation: "submitted_in".into(),
        }];
        let stored = record.clone();
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    jobs::insert(tx.conn(), &stored).await?;
                    tx.record(e);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        self.runtime().wake.notify_one();
        self.view(record).await
    }

    async fn view(&self, j: JobRecord) -> Result<JobView, EngineError> {
        let outputs = jobs::outputs(&mut *self.inner.identity.store().read().await?, &j.id).await?;
        let corrupt = |column: &'static str| {
            move |e: serde_json::Error| StoreError::Corrupt {
                table: "jobs",
                column,
                detail: e.to_string(),
            }
        };
        let metering: Option<Metering> = match &j.metering_json {
            Some(m) => Some(serde_json::from_str(m).map_err(corrupt("metering_json"))?),
            None => None,
        };
        let mut request: JobRequest = serde_json::from_str(&j.spec_json).map_err(corrupt("spec_json"))?;
        for o in &mut request.outputs {
            o.sql = crate::sql::recorded(&o.sql);
        }
        Ok(JobView {
            request,
            metering: metering.map(|m| m.banded()),
            outputs: outputs
                .into_iter()
                .map(|o| {
                    let meta: Option<OutputMeta> = match &o.algebra_json {
                        Some(m) => Some(serde_json::from_str(m).map_err(corrupt("algebra_json"))?),
                        None => None,
                    };
                    Ok(JobOutputView {
                        report: serde_json::from_str::<ReportRecord>(&o.report_json)
                            .map_err(corrupt("report_json"))?
                            .redacted(),
                        name: o.name,
                        verdict: o.verdict,
                        shape: meta.map(|m| m.shape),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            id: j.id,
            workspace_id: j.workspace_id,
            state: j.state,
            reason: j.reason,
            submitted_by: j.submitted_by,
            created_at: j.created_at.to_string(),
            started_at: j.started_at.map(|t| t.to_string()),
            finished_at: j.finished_at.map(|t| t.to_string()),
        })
    }

    /// One job, for those who may read its workspace (to anyone else it does not exist).
    pub async fn job(&self, p: &Principal, job_id: &str) -> Result<JobView, EngineError> {
        let j = jobs::get(&mut *self.inner.identity.store().read().await?, job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&j.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::JobRead, &resource, "job").await?;
        self.view(j).await
    }

    /// A workspace's jobs, newest first.
    pub async fn jobs_of(&self, p: &Principal, workspace_id: &str) -> Result<Vec<JobView>, EngineError> {
        let w = self.load(workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::JobRead, &resource, "workspace")
            .await?;
        let list = jobs::of_workspace(&mut *self.inner.identity.store().read().await?, &w.id).await?;
        let mut out = Vec::with_capacity(list.len());
        for j in list {
            out.push(self.view(j).await?);
        }
        Ok(out)
    }

    /// The engine's own explanation of a failed job for the operator's security staff
    /// (`job.diagnostics`), with every value-like run taken out (the full text, which may
    /// quote full data, stays wrapped in the store); every read is an audit entry.
    pub async fn job_diagnostics(
        &self,
        p: &Principal,
        job_id: &str,
    ) -> Result<crate::diagnostics::JobDiagnostics, EngineError> {
        let j = jobs::get(&mut *self.inner.identity.store().read().await?, job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&j.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.inner
            .identity
            .authorize(p, Action::JobDiagnostics, &resource)
            .await?;
        let Some(wrapped) = &j.diagnostics_wrapped else {
            return Err(EngineError::NotFound("job_diagnostics"));
        };
        let text = self.inner.master.unwrap(&diagnostics_purpose(&j.id), wrapped)?;
        let now = self.inner.identity.clock().now();
        let e = shuyu_identity::audit::by(p, now, "job.diagnostics_read", "job", j.id.clone(), None, None);
        self.record(e).await?;
        let text = String::from_utf8_lossy(&text);
        let (text, redacted) = crate::diagnostics::scrub(&text);
        Ok(crate::diagnostics::JobDiagnostics {
            job_id: j.id,
            reason: j.reason,
            text,
            redacted,
        })
    }

    /// Cancels a queued or running job (a running one is stopped at once).
    pub async fn cancel_job(&self, p: &Principal, job_id: &str) -> Result<JobView, EngineError> {
        let j = jobs::get(&mut *self.inner.identity.store().read().await?, job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&j.workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.inner
            .identity
            .authorize(p, Action::WorkspaceQuery, &resource)
            .await?;
        self.stop(&j.id, "cancelled by the developer", Some(p)).await?;
        self.job(p, job_id).await
    }

    /// Cancels a job in the store and aborts it if it runs; audited.
    async fn stop(&self, job_id: &str, reason: &str, by: Option<&Principal>) -> Result<bool, EngineError> {
        let now = self.inner.identity.clock().now();
        let mut e = match by {
            Some(p) => shuyu_identity::audit::by(p, now, "job.cancel", "job", job_id.to_string(), None, None),
            None => Event::new(
                now,
                Actor::system("engine:jobs"),
                "job.cancel",
                "job",
                job_id.to_string(),
            ),
        };
        e.payload = Some(serde_json::json!({ "reason": reason }));
        let id = job_id.to_string();
        let why = reason.to_string();
        let changed = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    let changed = jobs::cancel(tx.conn(), &id, &why, now).await?;
                    if changed {
                        tx.record(e);
                    } else {
                        tx.housekeeping("the job had already finished");
                    }
                    Ok::<_, StoreError>(changed)
                })
            })
            .await?;
        if let Ok(mut running) = self.runtime().running.lock()
            && let Some(h) = running.remove(job_id)
        {
            h.abort();
        }
        Ok(changed)
    }

    /// Re-queues jobs a restart interrupted (failing those past their attempts), then runs
    /// queued jobs as they come, `concurrency` at a time. Also stops the running jobs of a
    /// workspace that is sealed.
    pub fn spawn_job_runner(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let now = self.inner.identity.clock().now();
            let max = self.inner.job_limits.max_attempts;
            match self
                .inner
                .identity
                .store()
                .write(move |tx| {
                    Box::pin(async move {
                        let (requeued, failed) = jobs::recover(tx.conn(), max, now).await?;
                        if requeued + failed > 0 {
                            let mut e =
                                Event::new(now, Actor::system("engine:jobs"), "job.recover", "job", "*".to_string());
                            e.payload = Some(serde_json::json!({ "requeued": requeued, "failed": failed }));
                            tx.record(e);
                        } else {
                            tx.housekeeping("no job was interrupted");
                        }
                        Ok::<_, StoreError>((requeued, failed))
                    })
                })
                .await
            {
                Ok((requeued, failed)) if requeued + failed > 0 => {
                    tracing::info!(requeued, failed, "jobs interrupted by a restart recovered")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not recover interrupted jobs"),
            }
            let slots = Arc::new(tokio::sync::Semaphore::new(self.inner.job_limits.concurrency.max(1)));
            loop {
                match self.next_queued().await {
                    Ok(Some(job)) => {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            me.run_job(job).await;
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "the job queue could not be read"),
                }
                tokio::select! {
                    _ = self.runtime().wake.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        })
    }

    /// Runs every queued job now, one after another (the demo and tests; the server uses the
    /// runner). Returns how many ran.
    pub async fn run_queued(&self) -> Result<usize, EngineError> {
        let mut n = 0;
        while let Some(job) = self.next_queued().await? {
            self.run_job(job).await;
            n += 1;
        }
        Ok(n)
    }

    /// Claims the oldest queued job (so no other runner takes it).
    async fn next_queued(&self) -> Result<Option<JobRecord>, EngineError> {
        let queued = jobs::queued(&mut *self.inner.identity.store().read().await?).await?;
        for j in queued {
            let now = self.inner.identity.clock().now();
            let id = j.id.clone();
            let claimed = self
                .inner
                .identity
                .store()
                .write(move |tx| {
                    Box::pin(async move {
                        let claimed = jobs::claim(tx.conn(), &id, now).await?;
                        if claimed {
                            tx.record(Event::new(
                                now,
                                Actor::system("engine:jobs"),
                                "job.start",
                                "job",
                                id.clone(),
                            ));
                        } else {
                            tx.housekeeping("another runner took the job");
                        }
                        Ok::<_, StoreError>(claimed)
                    })
                })
                .await?;
            if claimed {
                return Ok(Some(j));
            }
        }
        Ok(None)
    }

    /// Runs one claimed job to its end, recording the outcome; never panics the runner.
    async fn run_job(&self, job: JobRecord) {
        let started = Instant::now();
        let cpu0 = process_cpu_ms();
        let me = self.clone();
        let j = job.clone();
        let task = tokio::spawn(async move { me.execute(&j).await });
        if let Ok(mut running) = self.runtime().running.lock() {
            running.insert(job.id.clone(), task.abort_handle());
        }
        let outcome = task.await;
        if let Ok(mut running) = self.runtime().running.lock() {
            running.remove(&job.id);
        }
        let (state, reason, metering, diagnostics) = match outcome {
            Ok(Ok(mut m)) => {
                m.wall_ms = started.elapsed().as_millis() as u64;
                m.cpu_ms = match (cpu0, process_cpu_ms()) {
                    (Some(a), Some(b)) => b.saturating_sub(a),
                    _ => 0,
                };
                ("done", None, Some(m), None)
            }
            Ok(Err(e)) => {
                // A fixed code and the operator only: the engine's text may quote full data, so
                // it goes nowhere but into the encrypted diagnostics.
                let code = failure_code(&e);
                tracing::warn!(job = %job.id, code = %code, "a job failed");
                let wrapped = self
                    .inner
                    .master
                    .wrap(&diagnostics_purpose(&job.id), e.to_string().as_bytes())
                    .ok();
                ("failed", Some(code), None, wrapped)
            }
            Err(join) if join.is_panic() => {
                tracing::error!(job = %job.id, "a job panicked");
                ("failed", Some("job_failed:internal".to_string()), None, None)
            }
            // Aborted: cancelled (the store already says so) or the runtime is shutting down.
            Err(_) => return,
        };
        let now = self.inner.identity.clock().now();
        let mut e = Event::new(now, Actor::system("engine:jobs"), "job.finish", "job", job.id.clone());
        e.payload = Some(serde_json::json!({ "state": state, "reason": reason, "metering": metering }));
        if state != "done" {
            e.outcome = shuyu_audit::entry::Outcome::Failure;
        }
        let id = job.id.clone();
        let metering_json = metering.and_then(|m| serde_json::to_string(&m).ok());
        let result = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    if jobs::finish(
                        tx.conn(),
                        &id,
                        state,
                        reason.as_deref(),
                        metering_json.as_deref(),
                        diagnostics.as_deref(),
                        now,
                    )
                    .await?
                    {
                        tx.record(e);
                    } else {
                        tx.housekeeping("the job was cancelled while it ran");
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        if let Err(e) = result {
            tracing::error!(job = %job.id, error = %e, "could not record a job's end");
        }
    }

    /// The job's work: plan and compile each output against the scenario's views, run the
    /// algebra's plan on the full data beneath the agreement, check each output, stage it
    /// encrypted with its report, evidence and members.
    async fn execute(&self, job: &JobRecord) -> Result<Metering, EngineError> {
        let w = self.load(&job.workspace_id).await?;
        if w.state != "open" {
            return Err(EngineError::Sealed(w.id.clone()));
        }
        let req: JobRequest = serde_json::from_str(&job.spec_json).map_err(|e| StoreError::Corrupt {
            table: "jobs",
            column: "spec_json",
            detail: e.to_string(),
        })?;
        let (manifest, sources) = self.job_sources(&w).await?;
        let views = self.views(&manifest, &sources)?;
        let masking = self.keys(&w.keys_wrapped, &w.id)?;
        let key = self.entity_key().await?;
        let rules = self.rules_for(&sources);
        let grade = grade_of(&sources);
        let limits = self.inner.job_limits;
        let profile = profile_of(&manifest);
        let work = async {
            let pool = Arc::new(PeakPool {
                inner: GreedyMemoryPool::new(limits.memory),
                peak: AtomicUsize::new(0),
            });
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(pool.clone())
                .build_arc()
                .map_err(|e| EngineError::Task(e.to_string()))?;
            let engine = session(Some(runtime));
            let meter = Arc::new(Meter {
                max_rows: limits.max_rows_scanned,
                ..Meter::default()
            });
            for (v, s) in views.iter().zip(&sources) {
                let (Some(path), Some(wrapped)) = (&s.version.object_path, &s.version.wrapped_key) else {
                    continue;
                };
                v.check_stored()?;
                let rows = Rows::Vault {
                    vault: self.inner.vault.clone(),
                    path: path.clone(),
                    wrapped: wrapped.clone(),
                };
                let table = ScenarioTable::for_engine(v.clone(), rows, key.clone(), masking.clone(), meter.clone());
                engine.register_table(v.table.as_str(), Arc::new(table)).map_err(df)?;
            }
            let (planner, catalog) = planning_session(&views)?;
            let mut staged = Vec::new();
            let mut read = std::collections::BTreeSet::new();
            for o in &req.outputs {
                let admitted = prepare(&planner, &catalog, &o.name, &o.sql, profile).await?;
                for t in admitted.tables() {
                    read.insert(admitted.resolver.tables[t].view.version_id.clone());
                }
                let built = algebra::build::run(&engine, &admitted, &o.name, rules.max_enumerated_cells)
                    .await
                    .map_err(|e| match e {
                        EngineError::Query(m) if m.contains("Resources exhausted") => {
                            EngineError::QueryMemory((limits.memory / (1024 * 1024)) as u64)
                        }
                        other => other,
                    })?;
                let report = shuyu_gate::checks::run(&built.output, &Context::alone(&rules)).with_grade(grade.clone());
                let meta = OutputMeta {
                    sql: crate::sql::recorded(&o.sql),
                    shape: admitted.describe(),
                    keys: key_meta(&admitted),
                    basis: crate::differencing::basis_of(&admitted, built.members.as_ref()),
                };
                staged.push(self.stage(job, &o.name, &built, &report, &meta).await?);
            }
            let metering = Metering {
                rows_scanned: meter.rows.load(Ordering::Relaxed),
                bytes_scanned: meter.bytes.load(Ordering::Relaxed),
                peak_memory: pool.peak.load(Ordering::Relaxed) as u64,
                output_bytes: staged.iter().map(|s| s.bytes.max(0) as u64).sum(),
                ..Metering::default()
            };
            let links: Vec<Link> = read
                .into_iter()
                .map(|v| Link {
                    from: NodeRef::new("dataset_version", v),
                    to: NodeRef::new("job", job.id.clone()),
                    relation: "read_by".into(),
                })
                .collect();
            Ok::<_, EngineError>((metering, staged, links))
        };
        let guarded = self.inner.lifecycle.guard(&job.agreement_id, async {
            Ok(tokio::time::timeout(limits.time, work).await)
        });
        let (metering, staged, links) = match guarded.await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(EngineError::QueryTimeout(limits.time.as_secs())),
            Err(e) => return Err(e.into()),
        };
        let now = self.inner.identity.clock().now();
        let mut e = Event::new(now, Actor::system("engine:jobs"), "job.outputs", "job", job.id.clone());
        e.payload = Some(serde_json::json!({
            "outputs": staged.iter().map(|o| serde_json::json!({"name": o.name, "verdict": o.verdict})).collect::<Vec<_>>(),
        }));
        e.links = links;
        for o in &staged {
            e.links.push(Link {
                from: NodeRef::new("job", job.id.clone()),
                to: NodeRef::new("job_output", format!("{}/{}", job.id, o.name)),
                relation: "produced".into(),
            });
        }
        let records = staged.clone();
        let id = job.id.clone();
        let stored = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    // A job cancelled while it ran takes no outputs.
                    let running = jobs::get(tx.conn(), &id).await?.is_some_and(|j| j.state == "running");
                    if !running {
                        tx.housekeeping("the job was cancelled while it ran: its outputs are discarded");
                        return Ok::<_, StoreError>(false);
                    }
                    for r in &records {
                        jobs::insert_output(tx.conn(), r).await?;
                    }
                    tx.record(e);
                    Ok(true)
                })
            })
            .await;
        let kept = matches!(stored, Ok(true));
        if !kept {
            for o in &staged {
                for p in [&o.object_path, &o.members_path].into_iter().flatten() {
                    let _ = self.inner.vault.delete(p).await;
                }
            }
        }
        stored?;
        Ok(metering)
    }

    /// Seals one output (and its members) in the vault under their own keys; returns its record.
    async fn stage(
        &self,
        job: &JobRecord,
        name: &str,
        built: &algebra::build::Built,
        report: &shuyu_gate::Report,
        meta: &OutputMeta,
    ) -> Result<JobOutputRecord, EngineError> {
        let output = &built.output;
        let path = format!("jobs/{}/{name}.parquet", job.id);
        let mut w = self
            .inner
            .vault
            .writer(&job_output_key_id(&job.id, name), &path, output.batch().schema())?;
        if let Err(e) = w.write(output.batch()) {
            self.inner.vault.abandon(w);
            return Err(e.into());
        }
        let sealed = self.inner.vault.seal(w).await?;
        let members = match &built.members {
            Some(m) => {
                let path = format!("jobs/{}/{name}.members.parquet", job.id);
                let mut w = self.inner.vault.writer_with(
                    &job_members_key_id(&job.id, name),
                    &path,
                    m.schema(),
                    &["entity", "fingerprint"],
                )?;
                if let Err(e) = w.write(m) {
                    self.inner.vault.abandon(w);
                    let _ = self.inner.vault.delete(&sealed.path).await;
                    return Err(e.into());
                }
                Some(self.inner.vault.seal(w).await?)
            }
            None => None,
        };
        let json = |v: Result<String, serde_json::Error>| v.map_err(|e| EngineError::Task(e.to_string()));
        Ok(JobOutputRecord {
            job_id: job.id.clone(),
            name: name.to_string(),
            verdict: report.verdict().code().to_string(),
            rows: output.num_rows() as i64,
            bytes: output.batch().get_array_memory_size() as i64,
            report_json: json(serde_json::to_string(&report.record()))?,
            evidence_json: json(serde_json::to_string(&output.evidence()))?,
            object_path: Some(sealed.path),
            wrapped_key: Some(sealed.wrapped_key),
            created_at: self.inner.identity.clock().now(),
            algebra_json: Some(json(serde_json::to_string(meta))?),
            members_path: members.as_ref().map(|m| m.path.clone()),
            members_wrapped_key: members.map(|m| m.wrapped_key),
        })
    }
}

/// The strictest grade (`L1` … `L4`) among a scenario's approved fields: it picks the gate's
/// rules, and the report names it.
pub(crate) fn grade_of(sources: &[Source]) -> Option<String> {
    sources
        .iter()
        .flat_map(|s| s.columns.iter().filter(|c| s.approved.contains(&c.name)))
        .filter_map(|c| c.class.grade.level)
        .max()
        .map(|l| format!("{l:?}"))
}

/// The profile a manifest's outputs allow.
pub(crate) fn profile_of(manifest: &shuyu_workflow::requests::ScenarioManifest) -> Profile {
    Profile::Job {
        microdata: manifest.outputs.iter().any(|o| o == "microdata"),
    }
}

/// The keys of an admitted table, in the members' order.
pub(crate) fn key_meta(a: &Admitted) -> Vec<KeyMeta> {
    let algebra::Body::Table { keys, .. } = &a.body else {
        return Vec::new();
    };
    keys.iter()
        .enumerate()
        .map(|(i, k)| KeyMeta {
            column: a
                .columns
                .iter()
                .find(|c| matches!(c.role, algebra::ColumnRole::Key(j) if j == i))
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            lineage: k.lineage.clone(),
        })
        .collect()
}

/// DataFusion's "no field named x" as the job error naming the field.
pub(crate) fn not_approved(output: &str, e: &DataFusionError) -> Option<EngineError> {
    match e.find_root() {
        DataFusionError::SchemaError(err, _) => match err.as_ref() {
            SchemaError::FieldNotFound { field, .. } => Some(EngineError::NotApproved {
                output: output.to_string(),
                field: field.name.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_developer_sees_metering_in_coarse_steps() {
        let m = Metering {
            cpu_ms: 1,
            wall_ms: 1001,
            rows_scanned: 10,
            bytes_scanned: 20,
            peak_memory: 3 * (1 << 20) + 1,
            output_bytes: 12345,
        };
        let v = m.banded();
        assert_eq!((v.wall_s, v.cpu_s, v.peak_memory_mib), (2, 1, 4));
        assert!(!serde_json::to_string(&v).expect("json").contains("12345"));
    }

    #[test]
    fn a_failure_names_an_operator_never_the_text() {
        let e = EngineError::Query(
            "Arrow error: Cast error: Cannot cast string '张三,379901199001011234' to value of Int64 type".into(),
        );
        let code = failure_code(&e);
        assert_eq!(code, "job_failed:cast");
        assert!(!code.contains("3799"));
    }
}
