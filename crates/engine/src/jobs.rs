//! Code-to-data jobs: a developer's named SQL outputs — the same SQL that ran on the samples —
//! run on the **full data** inside the domain, under the scenario manifest:
//! - only the approved fields exist in the job's catalog; each dataset is a view whose plan
//!   filters the stored rows by the manifest's row scope (a DataFusion `Filter` under the view,
//!   pushed down by the optimizer — never text spliced into the SQL) and projects the approved
//!   fields; keyed fields carry the same tokens and pseudonyms as the samples;
//! - a job naming a field outside the manifest fails when it is planned, naming the field;
//! - limits on memory (a pool that also records the peak), time and rows scanned; a queue run
//!   by a runner with a concurrency limit; cancellation; jobs survive a restart (re-queued, or
//!   failed with a reason after too many attempts); the agreement beneath is guarded — a job
//!   does not start under a suspended agreement and a running one is stopped;
//! - every output goes through the gate with the evidence computed in its own plan; it is
//!   staged encrypted in the vault with its report and never shown before release; metering
//!   (CPU, wall time, rows and bytes scanned, peak memory, output size) is recorded (R-36).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Column as DfColumn, SchemaError};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions::string::expr_fn::starts_with;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit};
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::{Deserialize, Serialize};
use shuyu_audit::entry::Actor;
use shuyu_core::actor::Principal;
use shuyu_gate::{Context, Report};
use shuyu_policy::Action;
use shuyu_store::jobs::{self, JobOutputRecord, JobRecord};
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::log::Event;
use shuyu_store::{StoreError, data_requests};
use utoipa::ToSchema;

use crate::EngineError;
use crate::evidence::{self, Sources};
use crate::sample::{self, Full, Plan, ScopeTest};
use crate::sql::df;
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
    /// Rows the job may read (over all its tables, after the row scope).
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

/// What a job measured, for billing (R-36).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Metering {
    /// Process CPU time while the job ran (ms).
    pub cpu_ms: u64,
    /// Wall-clock time (ms).
    pub wall_ms: u64,
    /// Rows read after the row scope.
    pub rows_scanned: u64,
    /// Bytes of those rows in memory.
    pub bytes_scanned: u64,
    /// The most memory the job's operators held at once (bytes).
    pub peak_memory: u64,
    /// Bytes of the outputs.
    pub output_bytes: u64,
}

/// Planning (and, without running, the gate's static view) of one output.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutputCheck {
    /// The output.
    pub name: String,
    /// Whether it plans against the approved catalog.
    pub planned: bool,
    /// Why it does not (a field outside the manifest, a syntax error, a shape the gate cannot
    /// read).
    pub error: Option<String>,
    /// The field outside the manifest, when that is why.
    pub field: Option<String>,
    /// What the gate can tell without data (identifier columns, record-level rows).
    #[schema(value_type = Object)]
    pub report: Option<Report>,
}

/// A job as its developer and reviewers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// What it asked for.
    pub request: JobRequest,
    /// Its metering, once finished.
    pub metering: Option<Metering>,
    /// Its outputs' reports (never their rows).
    pub outputs: Vec<JobOutputView>,
    /// When it was submitted, started and finished (RFC 3339).
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// One staged output: its figures and its disclosure report, never its rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOutputView {
    /// The output's name.
    pub name: String,
    /// The gate's verdict.
    pub verdict: String,
    /// Rows staged.
    pub rows: i64,
    /// Bytes staged.
    pub bytes: i64,
    /// The gate's report.
    #[schema(value_type = Object)]
    pub report: Report,
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

    /// Plans every output against the approved catalog (empty tables of the approved fields)
    /// and runs the gate on what it can tell without data — the check-only mode.
    async fn plan_outputs(&self, sources: &[Source], req: &JobRequest) -> Result<Vec<OutputCheck>, EngineError> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(false));
        let mut types: Sources = HashMap::new();
        for s in sources {
            let fields: Vec<Field> = s
                .approved
                .iter()
                .filter_map(|name| s.columns.iter().find(|c| &c.name == name))
                .map(|c| Field::new(&c.name, shuyu_import::arrow_type(c.class.field_type), true))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let table = MemTable::try_new(schema, vec![vec![]]).map_err(df)?;
            ctx.register_table(s.table.as_str(), Arc::new(table)).map_err(df)?;
            types.insert(s.table.clone(), source_types(s));
        }
        let rules = shuyu_gate::Rules::default();
        let mut out = Vec::new();
        for o in &req.outputs {
            let check = match evidence::run(&ctx, &o.name, &o.sql, &types, rules.max_enumerated_cells).await {
                Ok(output) => OutputCheck {
                    name: o.name.clone(),
                    planned: true,
                    error: None,
                    field: None,
                    report: Some(shuyu_gate::checks::run(
                        &output,
                        &Context {
                            rules: &rules,
                            ledger: &[],
                            destination: None,
                        },
                    )),
                },
                Err(e) => OutputCheck {
                    name: o.name.clone(),
                    planned: false,
                    field: match &e {
                        EngineError::NotApproved { field, .. } => Some(field.clone()),
                        _ => None,
                    },
                    error: Some(e.to_string()),
                    report: None,
                },
            };
            out.push(check);
        }
        Ok(out)
    }

    /// Validates a job without running it: planning against the manifest, and the gate's rules
    /// that need no data — which rule would block which output.
    pub async fn check_job(
        &self,
        p: &Principal,
        workspace_id: &str,
        req: &JobRequest,
    ) -> Result<Vec<OutputCheck>, EngineError> {
        let w = self.open_for_query(p, workspace_id).await?;
        self.validate_request(req)?;
        let (_, sources) = self.job_sources(&w).await?;
        self.plan_outputs(&sources, req).await
    }

    /// Submits a job: it must plan against the manifest (else the first output that does not
    /// is refused, naming the field), then it is queued; the runner picks it up.
    pub async fn submit_job(
        &self,
        p: &Principal,
        workspace_id: &str,
        req: &JobRequest,
    ) -> Result<JobView, EngineError> {
        let w = self.open_for_query(p, workspace_id).await?;
        self.validate_request(req)?;
        let (_, sources) = self.job_sources(&w).await?;
        for c in self.plan_outputs(&sources, req).await? {
            if !c.planned {
                return Err(match c.field {
                    Some(field) => EngineError::NotApproved { output: c.name, field },
                    None => EngineError::Query(c.error.unwrap_or_default()),
                });
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
        };
        let mut e = shuyu_identity::audit::by(p, now, "job.submit", "job", record.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "workspace": w.id,
            "outputs": req.outputs.iter().map(|o| serde_json::json!({
                "name": o.name, "sql": o.sql,
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
        Ok(JobView {
            request: serde_json::from_str(&j.spec_json).map_err(corrupt("spec_json"))?,
            metering: match &j.metering_json {
                Some(m) => Some(serde_json::from_str(m).map_err(corrupt("metering_json"))?),
                None => None,
            },
            outputs: outputs
                .into_iter()
                .map(|o| {
                    Ok(JobOutputView {
                        report: serde_json::from_str(&o.report_json).map_err(corrupt("report_json"))?,
                        name: o.name,
                        verdict: o.verdict,
                        rows: o.rows,
                        bytes: o.bytes,
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

    /// One job, for those who may read its workspace.
    pub async fn job(&self, p: &Principal, job_id: &str) -> Result<JobView, EngineError> {
        let j = jobs::get(&mut *self.inner.identity.store().read().await?, job_id)
            .await?
            .ok_or(EngineError::NotFound("job"))?;
        let w = self.load(&j.workspace_id).await?;
        let resource = self.resource(&w).await?;
        if !self.inner.identity.allows(p, Action::WorkspaceRead, &resource) {
            return Err(EngineError::NotFound("job"));
        }
        self.view(j).await
    }

    /// A workspace's jobs, newest first.
    pub async fn jobs_of(&self, p: &Principal, workspace_id: &str) -> Result<Vec<JobView>, EngineError> {
        let w = self.load(workspace_id).await?;
        let resource = self.resource(&w).await?;
        if !self.inner.identity.allows(p, Action::WorkspaceRead, &resource) {
            return Err(EngineError::NotFound("workspace"));
        }
        let list = jobs::of_workspace(&mut *self.inner.identity.store().read().await?, &w.id).await?;
        let mut out = Vec::with_capacity(list.len());
        for j in list {
            out.push(self.view(j).await?);
        }
        Ok(out)
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
        let (state, reason, metering) = match outcome {
            Ok(Ok(mut m)) => {
                m.wall_ms = started.elapsed().as_millis() as u64;
                m.cpu_ms = match (cpu0, process_cpu_ms()) {
                    (Some(a), Some(b)) => b.saturating_sub(a),
                    _ => 0,
                };
                ("done", None, Some(m))
            }
            Ok(Err(e)) => {
                let code = shuyu_core::error::UserFacing::code(&e);
                tracing::warn!(job = %job.id, error = %e, "a job failed");
                ("failed", Some(format!("{code}: {e}")), None)
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
                    if jobs::finish(tx.conn(), &id, state, reason.as_deref(), metering_json.as_deref(), now).await? {
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

    /// The job's work: load the approved, scoped full data; run each output with its
    /// evidence; check it; stage it encrypted with its report.
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
        let keys = self.keys(&w.keys_wrapped, &w.id)?;
        let overrides = overrides_of(&manifest);
        let limits = self.inner.job_limits;
        let work = async {
            let pool = Arc::new(PeakPool {
                inner: GreedyMemoryPool::new(limits.memory),
                peak: AtomicUsize::new(0),
            });
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(pool.clone())
                .build_arc()
                .map_err(|e| EngineError::Task(e.to_string()))?;
            let ctx = SessionContext::new_with_config_rt(
                SessionConfig::new()
                    .with_information_schema(false)
                    .with_target_partitions(2),
                runtime,
            );
            let mut metering = Metering::default();
            let mut types: Sources = HashMap::new();
            let mut links = Vec::new();
            for s in &sources {
                let (Some(path), Some(wrapped)) = (&s.version.object_path, &s.version.wrapped_key) else {
                    continue;
                };
                let over = overrides.get(&s.dataset_id).cloned().unwrap_or_default();
                let spec = self.inner.spec.clone();
                let plan = Plan {
                    columns: &s.columns,
                    approved: &s.approved,
                    scope: &manifest.rows,
                    entity: None,
                    spec: &spec,
                    keys: &keys,
                    overrides: &over,
                };
                let needed = sample::job_columns(&plan);
                let full = Full {
                    batches: self
                        .inner
                        .vault
                        .read(&s.version.id, path, wrapped, Some(&needed))
                        .await?,
                };
                let rows: u64 = full.batches.iter().map(|b| b.num_rows() as u64).sum();
                metering.rows_scanned += rows;
                metering.bytes_scanned += full
                    .batches
                    .iter()
                    .map(|b| b.get_array_memory_size() as u64)
                    .sum::<u64>();
                if metering.rows_scanned > limits.max_rows_scanned {
                    return Err(EngineError::TooManyRows(limits.max_rows_scanned));
                }
                let batch = match full.batches.is_empty() {
                    true => continue,
                    false => sample::job_table(&full, &plan)?,
                };
                let view = scoped_view(&s.table, batch, &s.approved, &sample::scope_filter(&plan))?;
                ctx.register_table(s.table.as_str(), Arc::new(view)).map_err(df)?;
                // The planner inlines the view: its scan is of the inner table.
                types.insert(format!("__full_{}", s.table), source_types(s));
                types.insert(s.table.clone(), source_types(s));
                links.push(Link {
                    from: NodeRef::new("dataset_version", s.version.id.clone()),
                    to: NodeRef::new("job", job.id.clone()),
                    relation: "read_by".into(),
                });
            }
            let rules = shuyu_gate::Rules::default();
            let mut staged = Vec::new();
            for o in &req.outputs {
                let output = evidence::run(&ctx, &o.name, &o.sql, &types, rules.max_enumerated_cells)
                    .await
                    .map_err(|e| match e {
                        EngineError::Query(m) if m.contains("Resources exhausted") => {
                            EngineError::QueryMemory((limits.memory / (1024 * 1024)) as u64)
                        }
                        other => other,
                    })?;
                let report = shuyu_gate::checks::run(
                    &output,
                    &Context {
                        rules: &rules,
                        ledger: &[],
                        destination: None,
                    },
                );
                metering.output_bytes += output.batch.get_array_memory_size() as u64;
                staged.push(self.stage(job, &o.name, &output, &report).await?);
            }
            metering.peak_memory = pool.peak.load(Ordering::Relaxed) as u64;
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
            "outputs": staged.iter().map(|o| serde_json::json!({"name": o.name, "verdict": o.verdict, "rows": o.rows})).collect::<Vec<_>>(),
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
        let stored = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    for r in &records {
                        jobs::insert_output(tx.conn(), r).await?;
                    }
                    tx.record(e);
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        if let Err(err) = stored {
            for o in &staged {
                if let Some(p) = &o.object_path {
                    let _ = self.inner.vault.delete(p).await;
                }
            }
            return Err(err.into());
        }
        Ok(metering)
    }

    /// Seals one output in the vault under its own key and returns its record.
    async fn stage(
        &self,
        job: &JobRecord,
        name: &str,
        output: &shuyu_gate::Output,
        report: &Report,
    ) -> Result<JobOutputRecord, EngineError> {
        let path = format!("jobs/{}/{name}.parquet", job.id);
        let mut w = self
            .inner
            .vault
            .writer(&job_output_key_id(&job.id, name), &path, output.batch.schema())?;
        if let Err(e) = w.write(&output.batch) {
            self.inner.vault.abandon(w);
            return Err(e.into());
        }
        let sealed = self.inner.vault.seal(w).await?;
        let evidence = output.evidence();
        Ok(JobOutputRecord {
            job_id: job.id.clone(),
            name: name.to_string(),
            verdict: report.verdict.code().to_string(),
            rows: output.batch.num_rows() as i64,
            bytes: output.batch.get_array_memory_size() as i64,
            report_json: serde_json::to_string(report).map_err(|e| EngineError::Task(e.to_string()))?,
            evidence_json: serde_json::to_string(&evidence).map_err(|e| EngineError::Task(e.to_string()))?,
            object_path: Some(sealed.path),
            wrapped_key: Some(sealed.wrapped_key),
            created_at: self.inner.identity.clock().now(),
        })
    }
}

/// The classified types of a source's fields.
fn source_types(s: &Source) -> HashMap<String, shuyu_classify::FieldType> {
    s.columns.iter().map(|c| (c.name.clone(), c.class.field_type)).collect()
}

/// A dataset as a job's table: a view over the job's full data that filters by the row scope
/// and shows only the approved fields. The inner table is not in the session's catalog.
pub(crate) fn scoped_view(
    table: &str,
    batches: Vec<RecordBatch>,
    approved: &[String],
    scope: &[(String, ScopeTest)],
) -> Result<ViewTable, EngineError> {
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Err(EngineError::Missing("rows".into()));
    };
    let inner = MemTable::try_new(schema.clone(), vec![batches]).map_err(df)?;
    let mut builder =
        LogicalPlanBuilder::scan(format!("__full_{table}"), provider_as_source(Arc::new(inner)), None).map_err(df)?;
    let mut predicate: Option<Expr> = None;
    for (column, test) in scope {
        let c = col(DfColumn::from_name(column.clone()));
        let e = match test {
            ScopeTest::Prefix(p) => prefix_test(c, schema.field_with_name(column).ok().map(|f| f.data_type()), p),
            ScopeTest::Between { from, to, date } => {
                let bound = |v: &String| {
                    if *date {
                        cast(lit(v.clone()), DataType::Date32)
                    } else {
                        lit(v.clone())
                    }
                };
                let mut e = c.clone().is_not_null();
                if let Some(f) = from {
                    e = e.and(c.clone().gt_eq(bound(f)));
                }
                if let Some(t) = to {
                    e = e.and(c.clone().lt_eq(bound(t)));
                }
                e
            }
        };
        predicate = Some(match predicate {
            Some(p) => p.and(e),
            None => e,
        });
    }
    if let Some(p) = predicate {
        builder = builder.filter(p).map_err(df)?;
    }
    let shown: Vec<Expr> = approved
        .iter()
        .map(|a| col(DfColumn::from_name(a.clone())).alias(a))
        .collect();
    let plan = builder.project(shown).map_err(df)?.build().map_err(df)?;
    Ok(ViewTable::new(plan, None))
}

/// "The region code starts with `prefix`" on a column of the stored type, the same rule as the
/// samples' (the value's text starts with the prefix). On integer codes no value is formatted —
/// casting every code to text was most of a governed job's overhead: the integers whose text
/// starts with the prefix are one range per digit count, and the six-digit range of region
/// codes comes first, so when every row is in it the other ranges are never evaluated.
fn prefix_test(c: Expr, data_type: Option<&DataType>, prefix: &str) -> Expr {
    let number = prefix
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0 && prefix.bytes().all(|b| b.is_ascii_digit()) && !prefix.starts_with('0'));
    match (data_type, number) {
        (Some(t), Some(n)) if t.is_integer() => {
            let digits = prefix.len() as u32;
            let mut widths: Vec<u32> = (0..=(19u32.saturating_sub(digits))).collect();
            // Region codes have six digits: that range first.
            if let Some(six) = 6u32.checked_sub(digits) {
                widths.retain(|w| *w != six);
                widths.insert(0, six);
            }
            let ranges = widths.into_iter().filter_map(|w| {
                let scale = 10i64.checked_pow(w)?;
                let lower = n.checked_mul(scale)?;
                let upper = (n + 1).checked_mul(scale).map_or(i64::MAX, |u| u - 1);
                Some(
                    c.clone()
                        .gt_eq(cast(lit(lower), DataType::Int64))
                        .and(c.clone().lt_eq(cast(lit(upper), DataType::Int64))),
                )
            });
            ranges.reduce(Expr::or).unwrap_or(lit(false))
        }
        (Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View), _) => starts_with(c, lit(prefix.to_string())),
        _ => starts_with(cast(c, DataType::Utf8), lit(prefix.to_string())),
    }
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
    use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};

    use super::*;

    /// The regions a job sees under a region scope, over a region column of `array`'s type.
    async fn seen(array: ArrayRef, prefix: &str) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![Field::new("region", array.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(schema, vec![array]).expect("batch");
        let scope = vec![("region".to_string(), ScopeTest::Prefix(prefix.to_string()))];
        let view = scoped_view("t", vec![batch], &["region".to_string()], &scope).expect("view");
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(view)).expect("register");
        let out = ctx
            .sql("SELECT CAST(region AS VARCHAR) AS r FROM t ORDER BY r")
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let mut regions = Vec::new();
        for b in &out {
            for row in 0..b.num_rows() {
                regions.push(shuyu_gate::output::cell_text(b.column(0), row).unwrap_or_default());
            }
        }
        regions
    }

    #[tokio::test]
    async fn the_region_scope_keeps_the_same_rows_whatever_the_stored_type() {
        let codes = [379901i64, 379999, 380001, 379900, 37990, 3799011, 279901];
        let ints: ArrayRef = Arc::new(Int64Array::from(codes.to_vec()));
        let texts: ArrayRef = Arc::new(StringArray::from(
            codes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ));
        let narrow: ArrayRef = Arc::new(Int32Array::from(codes.iter().map(|c| *c as i32).collect::<Vec<_>>()));
        for array in [ints, narrow, texts] {
            let kind = array.data_type().clone();
            // A city covers its counties; a county only itself (and, as text, 3799011).
            let city = seen(array.clone(), "3799").await;
            let county = seen(array.clone(), "379901").await;
            // As on the samples: the value's text starts with the prefix.
            assert_eq!(city, ["37990", "379900", "379901", "3799011", "379999"], "{kind}");
            assert_eq!(county, ["379901", "3799011"], "{kind}");
        }
    }
}
