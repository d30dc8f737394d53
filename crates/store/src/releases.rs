//! Releases, as stored: a request to let one checked job output leave the domain to a named
//! recipient. Reviewers record structured decisions (YP5(四)'s six points) and any overrides
//! of the gate's findings; once enough approve, the output is released as a watermarked copy
//! encrypted in the vault, with its watermark spec and its disclosure ledger entry (what it
//! revealed, for differencing later releases against). What the report, decisions, mark spec
//! and ledger hold is `shuyu-gate`'s and `shuyu-engine`'s; this module keeps each transition
//! one conditional `UPDATE`, so a late review never reopens a decided release and a copy is
//! never released twice or without approval.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, opt_time, text, time};
use crate::{Conn, Result};

const T: &str = "releases";

/// A stored release of one job output to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    /// Its id.
    pub id: String,
    /// The job whose output it releases.
    pub job_id: String,
    /// The output's name within the job.
    pub output_name: String,
    /// The data request the job served (releases of one request are differenced against each other).
    pub request_id: String,
    /// The workspace the job was submitted from.
    pub workspace_id: String,
    /// The developer's organisation.
    pub org_id: String,
    /// The user who asked for the release.
    pub requested_by: String,
    /// Who receives the copy (its watermark names them): the directory organisation's name, or
    /// the public.
    pub recipient: String,
    /// The recipient organisation's id (none when the recipient is the public, and for releases
    /// stored before recipients were directory organisations).
    pub recipient_org_id: Option<String>,
    /// Whether the copy leaves the country (the gate's cross-border check and the review weigh it).
    pub cross_border: bool,
    /// The remedy applied to the output before release (e.g. none, suppression, rounding).
    pub remedy: String,
    /// `requested`, `rejected`, `approved` or `released`.
    pub state: String,
    /// How many reviewers must approve before it may be released.
    pub required_reviewers: i64,
    /// The disclosure gate's report on the output as it would be released, as JSON.
    pub report_json: String,
    /// The reviewers' structured decisions so far (the six points each), as JSON.
    pub decisions_json: String,
    /// The gate findings reviewers overrode, with their reasons, as JSON.
    pub overrides_json: String,
    /// How the released copy is watermarked for the recipient, as JSON (once released).
    pub mark_spec_json: Option<String>,
    /// What the released copy revealed — its disclosure ledger entry — as JSON (once released).
    pub ledger_json: Option<String>,
    /// Where the watermarked copy is in the vault (once released).
    pub object_path: Option<String>,
    /// The copy's data key, wrapped under the master key (once released).
    pub wrapped_key: Option<String>,
    /// When it was requested.
    pub created_at: Timestamp,
    /// When it was approved, rejected or (last) released.
    pub decided_at: Option<Timestamp>,
    /// The evidence of the released copy (so a download is judged again), as JSON.
    pub evidence_json: Option<String>,
}

const COLS: &str = "id, job_id, output_name, request_id, workspace_id, org_id, requested_by, recipient, \
                    cross_border, remedy, state, required_reviewers, report_json, decisions_json, \
                    overrides_json, mark_spec_json, ledger_json, object_path, wrapped_key, created_at, decided_at, \
                    evidence_json, recipient_org_id";

fn decode(r: &sqlx::any::AnyRow) -> Result<ReleaseRecord> {
    Ok(ReleaseRecord {
        id: text(r, T, "id")?,
        job_id: text(r, T, "job_id")?,
        output_name: text(r, T, "output_name")?,
        request_id: text(r, T, "request_id")?,
        workspace_id: text(r, T, "workspace_id")?,
        org_id: text(r, T, "org_id")?,
        requested_by: text(r, T, "requested_by")?,
        recipient: text(r, T, "recipient")?,
        cross_border: int(r, T, "cross_border")? != 0,
        remedy: text(r, T, "remedy")?,
        state: text(r, T, "state")?,
        required_reviewers: int(r, T, "required_reviewers")?,
        report_json: text(r, T, "report_json")?,
        decisions_json: text(r, T, "decisions_json")?,
        overrides_json: text(r, T, "overrides_json")?,
        mark_spec_json: opt_text(r, T, "mark_spec_json")?,
        ledger_json: opt_text(r, T, "ledger_json")?,
        object_path: opt_text(r, T, "object_path")?,
        wrapped_key: opt_text(r, T, "wrapped_key")?,
        created_at: time(r, T, "created_at")?,
        decided_at: opt_time(r, T, "decided_at")?,
        evidence_json: opt_text(r, T, "evidence_json")?,
        recipient_org_id: opt_text(r, T, "recipient_org_id")?,
    })
}

/// Adds a release (normally `requested`, with no decisions yet).
pub async fn insert(c: &mut Conn, r: &ReleaseRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO releases ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23)"
    ));
    sqlx::query(sql)
        .bind(r.id.clone())
        .bind(r.job_id.clone())
        .bind(r.output_name.clone())
        .bind(r.request_id.clone())
        .bind(r.workspace_id.clone())
        .bind(r.org_id.clone())
        .bind(r.requested_by.clone())
        .bind(r.recipient.clone())
        .bind(i64::from(r.cross_border))
        .bind(r.remedy.clone())
        .bind(r.state.clone())
        .bind(r.required_reviewers)
        .bind(r.report_json.clone())
        .bind(r.decisions_json.clone())
        .bind(r.overrides_json.clone())
        .bind(r.mark_spec_json.clone())
        .bind(r.ledger_json.clone())
        .bind(r.object_path.clone())
        .bind(r.wrapped_key.clone())
        .bind(to_millis(r.created_at))
        .bind(r.decided_at.map(to_millis))
        .bind(r.evidence_json.clone())
        .bind(r.recipient_org_id.clone())
        .execute(c)
        .await?;
    Ok(())
}

/// One release.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM releases WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every release, newest first (the reviewers' queue and the operator's list).
pub async fn all(c: &mut Conn) -> Result<Vec<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM releases ORDER BY created_at DESC, id DESC"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}

/// A job's releases, oldest first (what became of each of its outputs).
pub async fn of_job(c: &mut Conn, job_id: &str) -> Result<Vec<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM releases WHERE job_id = $1 ORDER BY created_at, id"
    ));
    sqlx::query(sql)
        .bind(job_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The releases of one data request that actually left the domain, oldest first: their ledger
/// entries are what a new release of the same request is differenced against.
pub async fn released_of_request(c: &mut Conn, request_id: &str) -> Result<Vec<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM releases WHERE request_id = $1 AND state = 'released' ORDER BY created_at, id"
    ));
    sqlx::query(sql)
        .bind(request_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The releases that left the domain to one recipient, under any data request, oldest first:
/// a new release to the same recipient is differenced against them too.
pub async fn released_to(c: &mut Conn, recipient: &str) -> Result<Vec<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM releases WHERE recipient = $1 AND state = 'released' ORDER BY created_at, id"
    ));
    sqlx::query(sql)
        .bind(recipient.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// Every released release, oldest first (master-key rotation re-wraps their copies' keys).
pub async fn all_released(c: &mut Conn) -> Result<Vec<ReleaseRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM releases WHERE state = 'released' ORDER BY created_at, id"
    ));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}

/// Records reviews while the release is still `requested`: sets its decisions, overrides and
/// `state` (`requested` while more reviews are needed, `rejected` or `approved`; the last two
/// also set `decided_at`). Only a `requested` release changes — so a review arriving after the
/// decision never reopens it. Returns whether it changed.
pub async fn set_review(
    c: &mut Conn,
    id: &str,
    decisions_json: &str,
    overrides_json: &str,
    state: &str,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE releases SET decisions_json = $2, overrides_json = $3, state = $4, \
         decided_at = CASE WHEN $4 IN ('rejected', 'approved') THEN $5 ELSE decided_at END \
         WHERE id = $1 AND state = 'requested'",
    )
    .bind(id.to_string())
    .bind(decisions_json.to_string())
    .bind(overrides_json.to_string())
    .bind(state.to_string())
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The releases of a data request still waiting for review (`requested`) — what closes with
/// the request when its agreement ends for good.
pub async fn pending_of_request(c: &mut Conn, request_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM releases WHERE request_id = $1 AND state = 'requested' ORDER BY id")
        .bind(request_id.to_string())
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| crate::row::text(r, "releases", "id")).collect()
}

/// Cancels a release still `requested` (its agreement ended for good); sets `decided_at`.
/// Returns whether it changed — a release already decided stays as it was.
pub async fn cancel_pending(c: &mut Conn, id: &str, now: Timestamp) -> Result<bool> {
    let done =
        sqlx::query("UPDATE releases SET state = 'cancelled', decided_at = $2 WHERE id = $1 AND state = 'requested'")
            .bind(id.to_string())
            .bind(to_millis(now))
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Where a released copy is and what is kept with it.
#[derive(Debug, Clone, Copy)]
pub struct ReleasedCopy<'a> {
    /// The watermarked copy in the vault.
    pub object_path: &'a str,
    /// Its data key, wrapped under the master key.
    pub wrapped_key: &'a str,
    /// Its watermark spec, as JSON.
    pub mark_spec_json: &'a str,
    /// What it revealed (its ledger entry), as JSON.
    pub ledger_json: &'a str,
    /// Its evidence, as JSON.
    pub evidence_json: &'a str,
}

/// Moves an `approved` release to `released`, recording where the watermarked copy is, its
/// wrapped key, its watermark spec and its disclosure ledger entry, and sets `decided_at`.
/// Only an approved release changes — so nothing is released without approval, or twice.
/// Returns whether it changed.
pub async fn set_released(c: &mut Conn, id: &str, copy: &ReleasedCopy<'_>, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE releases SET state = 'released', object_path = $2, wrapped_key = $3, mark_spec_json = $4, \
         ledger_json = $5, decided_at = $6, evidence_json = $7 WHERE id = $1 AND state = 'approved'",
    )
    .bind(id.to_string())
    .bind(copy.object_path.to_string())
    .bind(copy.wrapped_key.to_string())
    .bind(copy.mark_spec_json.to_string())
    .bind(copy.ledger_json.to_string())
    .bind(to_millis(now))
    .bind(copy.evidence_json.to_string())
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a release's wrapped key (master-key rotation re-wraps the copy's key); a missing
/// release is [`crate::StoreError::Stale`].
pub async fn set_key(c: &mut Conn, id: &str, wrapped_key: &str) -> Result<()> {
    let done = sqlx::query("UPDATE releases SET wrapped_key = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(wrapped_key.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, T)
}
