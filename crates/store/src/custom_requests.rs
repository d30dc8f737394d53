//! Custom processing requests, as stored. The rules are in `shuyu-workflow`.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{text, time};
use crate::{Conn, Result};

const T: &str = "custom_requests";

/// A stored custom request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRequestRecord {
    /// Its id.
    pub id: String,
    /// The agreement it is asked under.
    pub agreement_id: String,
    /// Who asks (and pays): the agreement's grantee.
    pub requester_org: String,
    /// Who serves: the agreement's grantor.
    pub provider_org: String,
    /// Its title.
    pub title: String,
    /// What is asked, as JSON.
    pub body_json: String,
    /// Its state code.
    pub state: String,
    /// The state machine's value, as JSON.
    pub machine_json: String,
    /// The day the requester needs it by (YYYY-MM-DD).
    pub wanted_by: String,
    /// When it was asked.
    pub created_at: Timestamp,
    /// Who asked.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

const COLS: &str = "id, agreement_id, requester_org, provider_org, title, body_json, state, machine_json, wanted_by, \
                    created_at, created_by, updated_at";

fn decode(r: &sqlx::any::AnyRow) -> Result<CustomRequestRecord> {
    Ok(CustomRequestRecord {
        id: text(r, T, "id")?,
        agreement_id: text(r, T, "agreement_id")?,
        requester_org: text(r, T, "requester_org")?,
        provider_org: text(r, T, "provider_org")?,
        title: text(r, T, "title")?,
        body_json: text(r, T, "body_json")?,
        state: text(r, T, "state")?,
        machine_json: text(r, T, "machine_json")?,
        wanted_by: text(r, T, "wanted_by")?,
        created_at: time(r, T, "created_at")?,
        created_by: text(r, T, "created_by")?,
        updated_at: time(r, T, "updated_at")?,
    })
}

/// Adds a request.
pub async fn insert(c: &mut Conn, d: &CustomRequestRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO custom_requests ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ));
    sqlx::query(sql)
        .bind(d.id.clone())
        .bind(d.agreement_id.clone())
        .bind(d.requester_org.clone())
        .bind(d.provider_org.clone())
        .bind(d.title.clone())
        .bind(d.body_json.clone())
        .bind(d.state.clone())
        .bind(d.machine_json.clone())
        .bind(d.wanted_by.clone())
        .bind(to_millis(d.created_at))
        .bind(d.created_by.clone())
        .bind(to_millis(d.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes the state back if the row is still as read at `read_at` (else
/// [`crate::StoreError::Stale`]).
pub async fn update(c: &mut Conn, d: &CustomRequestRecord, read_at: Timestamp) -> Result<()> {
    let done = sqlx::query(
        "UPDATE custom_requests SET state = $2, machine_json = $3, updated_at = $4 WHERE id = $1 AND updated_at = $5",
    )
    .bind(d.id.clone())
    .bind(d.state.clone())
    .bind(d.machine_json.clone())
    .bind(to_millis(d.updated_at))
    .bind(to_millis(read_at))
    .execute(c)
    .await?;
    crate::one_row(done, T)
}

/// One request.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<CustomRequestRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM custom_requests WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every request, oldest first (each then filtered by `custom_request.read`).
pub async fn all(c: &mut Conn) -> Result<Vec<CustomRequestRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM custom_requests ORDER BY created_at, id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}
