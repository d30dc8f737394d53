//! Code-to-data jobs and their staged outputs, as stored. A developer submits named SQL
//! outputs from a workspace; a runner inside the domain runs them on the full data, and
//! each output is staged encrypted in the vault with the disclosure gate's report — never
//! shown before release. How a job runs and what its spec, report and metering hold is
//! `shuyu-engine`'s; this module keeps the state machine's transitions atomic (each is one
//! conditional `UPDATE`), so two runners never take one job and a cancel never races a finish.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, opt_time, text, time};
use crate::{Conn, Result};

const J: &str = "jobs";
const O: &str = "job_outputs";

/// The reason [`recover`] stores on a running job it puts back in the queue, so the
/// developer sees why the job started over.
pub const REQUEUED_AFTER_RESTART: &str = "re-queued after a restart";

/// A stored job: one submission of a developer's named outputs in one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// The workspace it was submitted from (its samples are what the developer tried it on).
    pub workspace_id: String,
    /// The data request the workspace serves (what the job may touch).
    pub request_id: String,
    /// The agreement beneath which it runs.
    pub agreement_id: String,
    /// The developer's organisation.
    pub org_id: String,
    /// The user who submitted it.
    pub submitted_by: String,
    /// Its named SQL outputs and limits, as JSON.
    pub spec_json: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed, was cancelled or was re-queued.
    pub reason: Option<String>,
    /// What it consumed (rows scanned, time, bytes), as JSON, once it ended.
    pub metering_json: Option<String>,
    /// How many times a runner has claimed it (bounds retries after crashes).
    pub attempts: i64,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When a runner last claimed it.
    pub started_at: Option<Timestamp>,
    /// When it ended (done, failed or cancelled).
    pub finished_at: Option<Timestamp>,
    /// Why a failed job failed, in the engine's own words, wrapped under the master key (for the
    /// operator's security staff only: it may quote full data).
    pub diagnostics_wrapped: Option<String>,
}

const JCOLS: &str = "id, workspace_id, request_id, agreement_id, org_id, submitted_by, spec_json, state, reason, \
                     metering_json, attempts, created_at, started_at, finished_at, diagnostics_wrapped";

fn decode_job(r: &sqlx::any::AnyRow) -> Result<JobRecord> {
    Ok(JobRecord {
        id: text(r, J, "id")?,
        workspace_id: text(r, J, "workspace_id")?,
        request_id: text(r, J, "request_id")?,
        agreement_id: text(r, J, "agreement_id")?,
        org_id: text(r, J, "org_id")?,
        submitted_by: text(r, J, "submitted_by")?,
        spec_json: text(r, J, "spec_json")?,
        state: text(r, J, "state")?,
        reason: opt_text(r, J, "reason")?,
        metering_json: opt_text(r, J, "metering_json")?,
        attempts: int(r, J, "attempts")?,
        created_at: time(r, J, "created_at")?,
        started_at: opt_time(r, J, "started_at")?,
        finished_at: opt_time(r, J, "finished_at")?,
        diagnostics_wrapped: opt_text(r, J, "diagnostics_wrapped")?,
    })
}

/// Adds a job (normally `queued`, with no attempts yet).
pub async fn insert(c: &mut Conn, j: &JobRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs ({JCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ));
    sqlx::query(sql)
        .bind(j.id.clone())
        .bind(j.workspace_id.clone())
        .bind(j.request_id.clone())
        .bind(j.agreement_id.clone())
        .bind(j.org_id.clone())
        .bind(j.submitted_by.clone())
        .bind(j.spec_json.clone())
        .bind(j.state.clone())
        .bind(j.reason.clone())
        .bind(j.metering_json.clone())
        .bind(j.attempts)
        .bind(to_millis(j.created_at))
        .bind(j.started_at.map(to_millis))
        .bind(j.finished_at.map(to_millis))
        .bind(j.diagnostics_wrapped.clone())
        .execute(c)
        .await?;
    Ok(())
}

/// One job.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<JobRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {JCOLS} FROM jobs WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_job)
        .transpose()
}

/// A workspace's jobs, newest first (the developer's job list).
pub async fn of_workspace(c: &mut Conn, workspace_id: &str) -> Result<Vec<JobRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {JCOLS} FROM jobs WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
    ));
    sqlx::query(sql)
        .bind(workspace_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode_job)
        .collect()
}

/// The jobs waiting for a runner, oldest first (first come, first served).
pub async fn queued(c: &mut Conn) -> Result<Vec<JobRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {JCOLS} FROM jobs WHERE state = 'queued' ORDER BY created_at, id"
    ));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode_job).collect()
}

/// Moves a job from `queued` to `running`, only if it is still queued — so two runners never
/// take one job; sets `started_at` and counts the attempt. Returns whether it was claimed.
pub async fn claim(c: &mut Conn, id: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'running', started_at = $2, attempts = attempts + 1 \
         WHERE id = $1 AND state = 'queued'",
    )
    .bind(id.to_string())
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a running job as `state` (`done`, `failed` or `cancelled`) with its reason and
/// metering, only if it is still running — a job cancelled meanwhile stays cancelled.
/// Returns whether it changed.
pub async fn finish(
    c: &mut Conn,
    id: &str,
    state: &str,
    reason: Option<&str>,
    metering_json: Option<&str>,
    diagnostics_wrapped: Option<&str>,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = $2, reason = $3, metering_json = $4, finished_at = $5, diagnostics_wrapped = $6 \
         WHERE id = $1 AND state = 'running'",
    )
    .bind(id.to_string())
    .bind(state.to_string())
    .bind(reason.map(str::to_string))
    .bind(metering_json.map(str::to_string))
    .bind(to_millis(now))
    .bind(diagnostics_wrapped.map(str::to_string))
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a job that has not ended (`queued` or `running`) with a reason; one that has
/// ended keeps its outcome. Returns whether it changed.
pub async fn cancel(c: &mut Conn, id: &str, reason: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', reason = $2, finished_at = $3 \
         WHERE id = $1 AND state IN ('queued', 'running')",
    )
    .bind(id.to_string())
    .bind(reason.to_string())
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// After a restart no job is really running: each `running` job goes back to `queued` with
/// [`REQUEUED_AFTER_RESTART`] as its reason (and no `started_at`), except one that has
/// already had `max_attempts` attempts — it likely crashed the runner — which becomes
/// `failed` with a reason saying so instead. Returns (requeued, failed).
pub async fn recover(c: &mut Conn, max_attempts: i64, now: Timestamp) -> Result<(u64, u64)> {
    let failed = sqlx::query(
        "UPDATE jobs SET state = 'failed', reason = $1, finished_at = $2 \
         WHERE state = 'running' AND attempts >= $3",
    )
    .bind(format!(
        "failed after {max_attempts} attempts, each interrupted by a restart"
    ))
    .bind(to_millis(now))
    .bind(max_attempts)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let requeued =
        sqlx::query("UPDATE jobs SET state = 'queued', reason = $1, started_at = NULL WHERE state = 'running'")
            .bind(REQUEUED_AFTER_RESTART.to_string())
            .execute(&mut *c)
            .await?
            .rows_affected();
    Ok((requeued, failed))
}

/// One named output of a job, staged in the vault until it is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutputRecord {
    /// The job.
    pub job_id: String,
    /// The output's name, as the spec gives it (unique within the job).
    pub name: String,
    /// The disclosure gate's verdict on it.
    pub verdict: String,
    /// Rows in the output.
    pub rows: i64,
    /// Its size in bytes (before encryption).
    pub bytes: i64,
    /// The gate's disclosure report, as JSON.
    pub report_json: String,
    /// The evidence the gate judged (computed inside the query's plan), as JSON.
    pub evidence_json: String,
    /// Where its rows are in the vault (none when nothing was staged).
    pub object_path: Option<String>,
    /// Its data key, wrapped under the master key.
    pub wrapped_key: Option<String>,
    /// When it was staged.
    pub created_at: Timestamp,
    /// What the output algebra admitted (shape, keys by lineage, the SQL), as JSON.
    pub algebra_json: Option<String>,
    /// Where its members (entities and rows behind each cell) are in the vault.
    pub members_path: Option<String>,
    /// The members' data key, wrapped under the master key.
    pub members_wrapped_key: Option<String>,
}

const OCOLS: &str = "job_id, name, verdict, rows, bytes, report_json, evidence_json, object_path, wrapped_key, \
                     created_at, algebra_json, members_path, members_wrapped_key";

fn decode_output(r: &sqlx::any::AnyRow) -> Result<JobOutputRecord> {
    Ok(JobOutputRecord {
        job_id: text(r, O, "job_id")?,
        name: text(r, O, "name")?,
        verdict: text(r, O, "verdict")?,
        rows: int(r, O, "rows")?,
        bytes: int(r, O, "bytes")?,
        report_json: text(r, O, "report_json")?,
        evidence_json: text(r, O, "evidence_json")?,
        object_path: opt_text(r, O, "object_path")?,
        wrapped_key: opt_text(r, O, "wrapped_key")?,
        created_at: time(r, O, "created_at")?,
        algebra_json: opt_text(r, O, "algebra_json")?,
        members_path: opt_text(r, O, "members_path")?,
        members_wrapped_key: opt_text(r, O, "members_wrapped_key")?,
    })
}

/// Adds a job's output.
pub async fn insert_output(c: &mut Conn, o: &JobOutputRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO job_outputs ({OCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ));
    sqlx::query(sql)
        .bind(o.job_id.clone())
        .bind(o.name.clone())
        .bind(o.verdict.clone())
        .bind(o.rows)
        .bind(o.bytes)
        .bind(o.report_json.clone())
        .bind(o.evidence_json.clone())
        .bind(o.object_path.clone())
        .bind(o.wrapped_key.clone())
        .bind(to_millis(o.created_at))
        .bind(o.algebra_json.clone())
        .bind(o.members_path.clone())
        .bind(o.members_wrapped_key.clone())
        .execute(c)
        .await?;
    Ok(())
}

/// A job's outputs, by name.
pub async fn outputs(c: &mut Conn, job_id: &str) -> Result<Vec<JobOutputRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {OCOLS} FROM job_outputs WHERE job_id = $1 ORDER BY name"
    ));
    sqlx::query(sql)
        .bind(job_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode_output)
        .collect()
}

/// Every job output (master-key rotation re-wraps their keys; the vault sweep keeps their objects).
pub async fn all_outputs(c: &mut Conn) -> Result<Vec<JobOutputRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {OCOLS} FROM job_outputs ORDER BY job_id, name"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode_output).collect()
}

/// Replaces an output's wrapped key (master-key rotation); a missing output is
/// [`crate::StoreError::Stale`].
pub async fn set_output_key(c: &mut Conn, job_id: &str, name: &str, wrapped_key: &str) -> Result<()> {
    let done = sqlx::query("UPDATE job_outputs SET wrapped_key = $3 WHERE job_id = $1 AND name = $2")
        .bind(job_id.to_string())
        .bind(name.to_string())
        .bind(wrapped_key.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, O)
}

/// Replaces an output's members' wrapped key (master-key rotation).
pub async fn set_members_key(c: &mut Conn, job_id: &str, name: &str, wrapped_key: &str) -> Result<()> {
    let done = sqlx::query("UPDATE job_outputs SET members_wrapped_key = $3 WHERE job_id = $1 AND name = $2")
        .bind(job_id.to_string())
        .bind(name.to_string())
        .bind(wrapped_key.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, O)
}

/// Replaces a failed job's wrapped diagnostics (master-key rotation).
pub async fn set_diagnostics(c: &mut Conn, id: &str, wrapped: &str) -> Result<()> {
    let done = sqlx::query("UPDATE jobs SET diagnostics_wrapped = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(wrapped.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, J)
}

/// Every job (master-key rotation re-wraps their diagnostics).
pub async fn all(c: &mut Conn) -> Result<Vec<JobRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {JCOLS} FROM jobs ORDER BY created_at, id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode_job).collect()
}
