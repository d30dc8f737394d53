//! Developer workspaces and their masked samples, as stored. What a sample holds and how
//! it is built is `shuyu-engine`'s; its rows are in the vault, encrypted.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, text, time};
use crate::{Conn, Result};

const W: &str = "workspaces";
const S: &str = "samples";

/// A stored workspace: one per approved data request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    /// Its id.
    pub id: String,
    /// The data request it serves.
    pub request_id: String,
    /// The agreement beneath which it works.
    pub agreement_id: String,
    /// The requesting organisation (whose developers use it).
    pub org_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The digest of the manifest its samples follow.
    pub manifest_digest: String,
    /// Its keys (pseudonyms, tokens, draws), wrapped under the master key.
    pub keys_wrapped: String,
    /// `open` or `sealed`.
    pub state: String,
    /// When it opened.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

const WCOLS: &str =
    "id, request_id, agreement_id, org_id, scenario, manifest_digest, keys_wrapped, state, created_at, updated_at";

fn decode_workspace(r: &sqlx::any::AnyRow) -> Result<WorkspaceRecord> {
    Ok(WorkspaceRecord {
        id: text(r, W, "id")?,
        request_id: text(r, W, "request_id")?,
        agreement_id: text(r, W, "agreement_id")?,
        org_id: text(r, W, "org_id")?,
        scenario: text(r, W, "scenario")?,
        manifest_digest: text(r, W, "manifest_digest")?,
        keys_wrapped: text(r, W, "keys_wrapped")?,
        state: text(r, W, "state")?,
        created_at: time(r, W, "created_at")?,
        updated_at: time(r, W, "updated_at")?,
    })
}

/// Adds a workspace.
pub async fn insert(c: &mut Conn, w: &WorkspaceRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO workspaces ({WCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ));
    sqlx::query(sql)
        .bind(w.id.clone())
        .bind(w.request_id.clone())
        .bind(w.agreement_id.clone())
        .bind(w.org_id.clone())
        .bind(w.scenario.clone())
        .bind(w.manifest_digest.clone())
        .bind(w.keys_wrapped.clone())
        .bind(w.state.clone())
        .bind(to_millis(w.created_at))
        .bind(to_millis(w.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes state and manifest back if the row is still as read at `read_at` (else
/// [`crate::StoreError::Stale`]).
pub async fn update(c: &mut Conn, w: &WorkspaceRecord, read_at: Timestamp) -> Result<()> {
    let done = sqlx::query(
        "UPDATE workspaces SET manifest_digest = $2, state = $3, updated_at = $4, keys_wrapped = $6 \
         WHERE id = $1 AND updated_at = $5",
    )
    .bind(w.id.clone())
    .bind(w.manifest_digest.clone())
    .bind(w.state.clone())
    .bind(to_millis(w.updated_at))
    .bind(to_millis(read_at))
    .bind(w.keys_wrapped.clone())
    .execute(c)
    .await?;
    crate::one_row(done, W)
}

/// One workspace.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<WorkspaceRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {WCOLS} FROM workspaces WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_workspace)
        .transpose()
}

/// The workspace of a data request.
pub async fn of_request(c: &mut Conn, request_id: &str) -> Result<Option<WorkspaceRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {WCOLS} FROM workspaces WHERE request_id = $1"));
    sqlx::query(sql)
        .bind(request_id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_workspace)
        .transpose()
}

/// Every workspace, oldest first.
pub async fn all(c: &mut Conn) -> Result<Vec<WorkspaceRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {WCOLS} FROM workspaces ORDER BY created_at, id"));
    sqlx::query(sql)
        .fetch_all(c)
        .await?
        .iter()
        .map(decode_workspace)
        .collect()
}

/// A stored masked sample of one dataset in one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRecord {
    /// Its id.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The table name developers query it by.
    pub table_name: String,
    /// The dataset.
    pub dataset_id: String,
    /// The dataset version it was drawn from (lineage).
    pub version_id: String,
    /// How it was drawn, as JSON.
    pub spec_json: String,
    /// Its fields with their techniques, as JSON.
    pub fields_json: String,
    /// Its measured re-identification risk, as JSON.
    pub risk_json: String,
    /// `shown` or `withheld` (risk above the limit even after generalization).
    pub status: String,
    /// Rows of the version within the approved row scope.
    pub source_rows: i64,
    /// Rows in the sample.
    pub sample_rows: i64,
    /// Where its rows are in the vault (none when withheld).
    pub object_path: Option<String>,
    /// Its data key, wrapped under the master key.
    pub wrapped_key: Option<String>,
    /// When it was built.
    pub created_at: Timestamp,
}

const SCOLS: &str = "id, workspace_id, table_name, dataset_id, version_id, spec_json, fields_json, risk_json, status, \
                     source_rows, sample_rows, object_path, wrapped_key, created_at";

fn decode_sample(r: &sqlx::any::AnyRow) -> Result<SampleRecord> {
    Ok(SampleRecord {
        id: text(r, S, "id")?,
        workspace_id: text(r, S, "workspace_id")?,
        table_name: text(r, S, "table_name")?,
        dataset_id: text(r, S, "dataset_id")?,
        version_id: text(r, S, "version_id")?,
        spec_json: text(r, S, "spec_json")?,
        fields_json: text(r, S, "fields_json")?,
        risk_json: text(r, S, "risk_json")?,
        status: text(r, S, "status")?,
        source_rows: int(r, S, "source_rows")?,
        sample_rows: int(r, S, "sample_rows")?,
        object_path: opt_text(r, S, "object_path")?,
        wrapped_key: opt_text(r, S, "wrapped_key")?,
        created_at: time(r, S, "created_at")?,
    })
}

/// Adds a sample.
pub async fn insert_sample(c: &mut Conn, s: &SampleRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO samples ({SCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ));
    sqlx::query(sql)
        .bind(s.id.clone())
        .bind(s.workspace_id.clone())
        .bind(s.table_name.clone())
        .bind(s.dataset_id.clone())
        .bind(s.version_id.clone())
        .bind(s.spec_json.clone())
        .bind(s.fields_json.clone())
        .bind(s.risk_json.clone())
        .bind(s.status.clone())
        .bind(s.source_rows)
        .bind(s.sample_rows)
        .bind(s.object_path.clone())
        .bind(s.wrapped_key.clone())
        .bind(to_millis(s.created_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Removes a workspace's samples (before they are rebuilt; the caller deletes their objects).
pub async fn delete_samples(c: &mut Conn, workspace_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM samples WHERE workspace_id = $1")
        .bind(workspace_id.to_string())
        .execute(c)
        .await?;
    Ok(())
}

/// Removes one sample of a workspace (before it is redrawn; the caller deletes its object).
pub async fn delete_sample(c: &mut Conn, workspace_id: &str, table_name: &str) -> Result<()> {
    sqlx::query("DELETE FROM samples WHERE workspace_id = $1 AND table_name = $2")
        .bind(workspace_id.to_string())
        .bind(table_name.to_string())
        .execute(c)
        .await?;
    Ok(())
}

/// A workspace's samples, by table name.
pub async fn samples(c: &mut Conn, workspace_id: &str) -> Result<Vec<SampleRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {SCOLS} FROM samples WHERE workspace_id = $1 ORDER BY table_name"
    ));
    sqlx::query(sql)
        .bind(workspace_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode_sample)
        .collect()
}

/// Every sample (master-key rotation re-wraps their keys).
pub async fn all_samples(c: &mut Conn) -> Result<Vec<SampleRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {SCOLS} FROM samples ORDER BY id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode_sample).collect()
}

/// Replaces a sample's wrapped key (master-key rotation).
pub async fn set_sample_key(c: &mut Conn, id: &str, wrapped_key: &str) -> Result<()> {
    let done = sqlx::query("UPDATE samples SET wrapped_key = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(wrapped_key.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, S)
}

/// Replaces a workspace's wrapped keys (master-key rotation).
pub async fn set_keys(c: &mut Conn, id: &str, keys_wrapped: &str) -> Result<()> {
    let done = sqlx::query("UPDATE workspaces SET keys_wrapped = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(keys_wrapped.to_string())
        .execute(c)
        .await?;
    crate::one_row(done, W)
}
