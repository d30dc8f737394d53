//! Login sessions. Only a SHA-256 digest of each token is stored, so a copy
//! of the database does not let anyone log in.

use shuyu_core::clock::{Timestamp, to_millis};
use shuyu_core::id::{SessionId, UserId};

use crate::row::{opt_text, opt_time, parsed, text, time};
use crate::{Conn, Result};

const T: &str = "sessions";
const COLS: &str = "id, token_hash, user_id, created_at, expires_at, last_seen_at, revoked_at, client_ip, user_agent";

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its id.
    pub id: SessionId,
    /// Hex SHA-256 of the bearer token.
    pub token_hash: String,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it began.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was last used.
    pub last_seen_at: Timestamp,
    /// When it was revoked (logout, account disabled), if it was.
    pub revoked_at: Option<Timestamp>,
    /// The client address at login.
    pub client_ip: Option<String>,
    /// The client's user agent at login (truncated).
    pub user_agent: Option<String>,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: parsed(row, T, "id")?,
        token_hash: text(row, T, "token_hash")?,
        user_id: parsed(row, T, "user_id")?,
        created_at: time(row, T, "created_at")?,
        expires_at: time(row, T, "expires_at")?,
        last_seen_at: time(row, T, "last_seen_at")?,
        revoked_at: opt_time(row, T, "revoked_at")?,
        client_ip: opt_text(row, T, "client_ip")?,
        user_agent: opt_text(row, T, "user_agent")?,
    })
}

/// Adds a session.
pub async fn insert(c: &mut Conn, s: &SessionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, last_seen_at, revoked_at, client_ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(s.id.to_string())
    .bind(s.token_hash.clone())
    .bind(s.user_id.to_string())
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.expires_at))
    .bind(to_millis(s.last_seen_at))
    .bind(s.revoked_at.map(to_millis))
    .bind(s.client_ip.clone())
    .bind(s.user_agent.clone())
    .execute(c)
    .await?;
    Ok(())
}

/// The session whose token hashes to `token_hash`.
pub async fn find_by_token_hash(c: &mut Conn, token_hash: &str) -> Result<Option<SessionRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM sessions WHERE token_hash = $1"));
    let row = sqlx::query(sql).bind(token_hash.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// Records use of a session.
pub async fn touch(c: &mut Conn, id: SessionId, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(to_millis(now))
        .execute(c)
        .await?;
    Ok(())
}

/// Revokes one session (logout). Returns whether a live session was revoked.
pub async fn revoke(c: &mut Conn, id: SessionId, now: Timestamp) -> Result<bool> {
    let r = sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id.to_string())
        .bind(to_millis(now))
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Revokes every live session of a user (account disabled, password changed). Returns how many.
pub async fn revoke_all_for_user(c: &mut Conn, user: UserId, now: Timestamp, except: Option<SessionId>) -> Result<u64> {
    let r = sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3")
        .bind(user.to_string())
        .bind(to_millis(now))
        .bind(except.map(|s| s.to_string()).unwrap_or_default())
        .execute(c)
        .await?;
    Ok(r.rows_affected())
}

/// Deletes sessions that expired before `before` (housekeeping).
pub async fn delete_expired(c: &mut Conn, before: Timestamp) -> Result<u64> {
    let r = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(to_millis(before))
        .execute(c)
        .await?;
    Ok(r.rows_affected())
}
