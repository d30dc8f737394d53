//! API keys for machine clients: scoped to an organisation, shown once,
//! stored as a SHA-256 digest, revocable, with a last-used time.

use shuyu_core::clock::{Timestamp, to_millis};
use shuyu_core::id::{ApiKeyId, OrgId, UserId};
use shuyu_core::party::RoleSet;

use crate::row::{opt_time, parsed, text, time};
use crate::{Conn, Result, StoreError};

const T: &str = "api_keys";
const COLS: &str =
    "id, org_id, created_by, name, prefix, secret_hash, roles, created_at, expires_at, revoked_at, last_used_at";

/// A stored API key (without its secret, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// The organisation it acts for.
    pub org_id: OrgId,
    /// Who created it.
    pub created_by: UserId,
    /// A label chosen by its creator.
    pub name: String,
    /// The first characters of the key, shown in lists so people can tell keys apart.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub secret_hash: String,
    /// The roles it acts in (never more than its creator held).
    pub roles: RoleSet,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if it has an expiry.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// When it was last used.
    pub last_used_at: Option<Timestamp>,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<ApiKeyRecord> {
    let roles = text(row, T, "roles")?;
    Ok(ApiKeyRecord {
        id: parsed(row, T, "id")?,
        org_id: parsed(row, T, "org_id")?,
        created_by: parsed(row, T, "created_by")?,
        name: text(row, T, "name")?,
        prefix: text(row, T, "prefix")?,
        secret_hash: text(row, T, "secret_hash")?,
        roles: RoleSet::from_stored(&roles).map_err(|e| StoreError::Corrupt {
            table: T,
            column: "roles",
            detail: e.to_string(),
        })?,
        created_at: time(row, T, "created_at")?,
        expires_at: opt_time(row, T, "expires_at")?,
        revoked_at: opt_time(row, T, "revoked_at")?,
        last_used_at: opt_time(row, T, "last_used_at")?,
    })
}

/// Adds a key.
pub async fn insert(c: &mut Conn, k: &ApiKeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, created_by, name, prefix, secret_hash, roles, created_at, expires_at, revoked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(k.id.to_string())
    .bind(k.org_id.to_string())
    .bind(k.created_by.to_string())
    .bind(k.name.clone())
    .bind(k.prefix.clone())
    .bind(k.secret_hash.clone())
    .bind(k.roles.to_stored())
    .bind(to_millis(k.created_at))
    .bind(k.expires_at.map(to_millis))
    .bind(k.revoked_at.map(to_millis))
    .bind(k.last_used_at.map(to_millis))
    .execute(c)
    .await?;
    Ok(())
}

/// One key by id.
pub async fn get(c: &mut Conn, id: ApiKeyId) -> Result<Option<ApiKeyRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM api_keys WHERE id = $1"));
    let row = sqlx::query(sql).bind(id.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// The key whose secret hashes to `secret_hash`.
pub async fn find_by_secret_hash(c: &mut Conn, secret_hash: &str) -> Result<Option<ApiKeyRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM api_keys WHERE secret_hash = $1"));
    let row = sqlx::query(sql).bind(secret_hash.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// The keys of an organisation, newest first.
pub async fn list_by_org(c: &mut Conn, org: OrgId) -> Result<Vec<ApiKeyRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
    ));
    let rows = sqlx::query(sql).bind(org.to_string()).fetch_all(c).await?;
    rows.iter().map(decode).collect()
}

/// Revokes a key. Returns whether a live key was revoked.
pub async fn revoke(c: &mut Conn, id: ApiKeyId, now: Timestamp) -> Result<bool> {
    let r = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id.to_string())
        .bind(to_millis(now))
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Records use of a key.
pub async fn touch(c: &mut Conn, id: ApiKeyId, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(now))
        .execute(c)
        .await?;
    Ok(())
}
