//! Data requests and their scenario manifests, as stored. The rules are in `shuyu-workflow`.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, text, time};
use crate::{Conn, Result};

const T: &str = "data_requests";

/// A stored data request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequestRecord {
    /// Its id.
    pub id: String,
    /// The agreement it is made under.
    pub agreement_id: String,
    /// The scenario's name, as the agreement's scope lists it.
    pub scenario: String,
    /// The requesting organisation (the agreement's grantee).
    pub requester_org: String,
    /// Its state code.
    pub state: String,
    /// The state machine's value, as JSON.
    pub machine_json: String,
    /// The review chain (organisation ids), as JSON.
    pub reviewers_json: String,
    /// The list being written or reviewed, as JSON.
    pub body_json: String,
    /// The last reviewer's note (a return or rejection reason).
    pub note: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

const COLS: &str = "id, agreement_id, scenario, requester_org, state, machine_json, reviewers_json, body_json, note, \
                    created_at, created_by, updated_at";

fn decode(r: &sqlx::any::AnyRow) -> Result<DataRequestRecord> {
    Ok(DataRequestRecord {
        id: text(r, T, "id")?,
        agreement_id: text(r, T, "agreement_id")?,
        scenario: text(r, T, "scenario")?,
        requester_org: text(r, T, "requester_org")?,
        state: text(r, T, "state")?,
        machine_json: text(r, T, "machine_json")?,
        reviewers_json: text(r, T, "reviewers_json")?,
        body_json: text(r, T, "body_json")?,
        note: opt_text(r, T, "note")?,
        created_at: time(r, T, "created_at")?,
        created_by: text(r, T, "created_by")?,
        updated_at: time(r, T, "updated_at")?,
    })
}

/// Adds a request.
pub async fn insert(c: &mut Conn, d: &DataRequestRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO data_requests ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ));
    sqlx::query(sql)
        .bind(d.id.clone())
        .bind(d.agreement_id.clone())
        .bind(d.scenario.clone())
        .bind(d.requester_org.clone())
        .bind(d.state.clone())
        .bind(d.machine_json.clone())
        .bind(d.reviewers_json.clone())
        .bind(d.body_json.clone())
        .bind(d.note.clone())
        .bind(to_millis(d.created_at))
        .bind(d.created_by.clone())
        .bind(to_millis(d.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes the mutable columns back, if the row is still as read at `read_at` (its
/// `updated_at` then); otherwise [`crate::StoreError::Stale`] — two reviewers approving at
/// once must not lose an approval.
pub async fn update(c: &mut Conn, d: &DataRequestRecord, read_at: Timestamp) -> Result<()> {
    let done = sqlx::query(
        "UPDATE data_requests SET state = $2, machine_json = $3, reviewers_json = $4, body_json = $5, note = $6, \
         updated_at = $7 WHERE id = $1 AND updated_at = $8",
    )
    .bind(d.id.clone())
    .bind(d.state.clone())
    .bind(d.machine_json.clone())
    .bind(d.reviewers_json.clone())
    .bind(d.body_json.clone())
    .bind(d.note.clone())
    .bind(to_millis(d.updated_at))
    .bind(to_millis(read_at))
    .execute(c)
    .await?;
    crate::one_row(done, T)
}

/// One request.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<DataRequestRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM data_requests WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every request, oldest first (listings filter by authorization).
pub async fn all(c: &mut Conn) -> Result<Vec<DataRequestRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM data_requests ORDER BY created_at, id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}

/// The requests made under one agreement.
pub async fn of_agreement(c: &mut Conn, agreement_id: &str) -> Result<Vec<DataRequestRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM data_requests WHERE agreement_id = $1 ORDER BY created_at, id"
    ));
    sqlx::query(sql)
        .bind(agreement_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// An issued scenario manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    /// The request.
    pub request_id: String,
    /// The approved revision.
    pub revision: i64,
    /// The canonical document.
    pub manifest_json: String,
    /// SHA-256 of `manifest_json`, hex.
    pub digest: String,
    /// The domain's Ed25519 signature over the digest, base64.
    pub signature: String,
    /// When it was issued.
    pub issued_at: Timestamp,
}

fn decode_manifest(r: &sqlx::any::AnyRow) -> Result<ManifestRecord> {
    const M: &str = "scenario_manifests";
    Ok(ManifestRecord {
        request_id: text(r, M, "request_id")?,
        revision: int(r, M, "revision")?,
        manifest_json: text(r, M, "manifest_json")?,
        digest: text(r, M, "digest")?,
        signature: text(r, M, "signature")?,
        issued_at: time(r, M, "issued_at")?,
    })
}

/// Adds an issued manifest.
pub async fn insert_manifest(c: &mut Conn, m: &ManifestRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO scenario_manifests (request_id, revision, manifest_json, digest, signature, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(m.request_id.clone())
    .bind(m.revision)
    .bind(m.manifest_json.clone())
    .bind(m.digest.clone())
    .bind(m.signature.clone())
    .bind(to_millis(m.issued_at))
    .execute(c)
    .await?;
    Ok(())
}

/// A request's manifests, newest revision first.
pub async fn manifests(c: &mut Conn, request_id: &str) -> Result<Vec<ManifestRecord>> {
    sqlx::query(
        "SELECT request_id, revision, manifest_json, digest, signature, issued_at FROM scenario_manifests \
         WHERE request_id = $1 ORDER BY revision DESC",
    )
    .bind(request_id.to_string())
    .fetch_all(c)
    .await?
    .iter()
    .map(decode_manifest)
    .collect()
}
