//! User accounts. A user belongs to one organisation and holds roles that
//! organisation's kind permits.

use shuyu_core::clock::{Timestamp, to_millis};
use shuyu_core::id::{OrgId, UserId};
use shuyu_core::party::{Role, RoleSet, Status};
use shuyu_core::secret::Secret;
use sqlx::Row;

use crate::row::{int, parsed, text, time};
use crate::{Conn, Result, StoreError};

const T: &str = "users";
const COLS: &str = "id, org_id, username, display_name, roles, password_hash, must_change_password, \
                    status, created_at, updated_at, password_changed_at";

/// A stored user account.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Its id.
    pub id: UserId,
    /// The organisation it belongs to.
    pub org_id: OrgId,
    /// The login name (unique, normalised).
    pub username: String,
    /// The person's name as shown.
    pub display_name: String,
    /// The roles it holds.
    pub roles: RoleSet,
    /// The argon2id PHC string; wrapped so it never reaches a log line.
    pub password_hash: Secret<String>,
    /// Set when an administrator issued the password: the console asks for a new one.
    pub must_change_password: bool,
    /// Active or disabled.
    pub status: Status,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When the password was last set.
    pub password_changed_at: Timestamp,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<UserRecord> {
    let roles = text(row, T, "roles")?;
    Ok(UserRecord {
        id: parsed(row, T, "id")?,
        org_id: parsed(row, T, "org_id")?,
        username: text(row, T, "username")?,
        display_name: text(row, T, "display_name")?,
        roles: RoleSet::from_stored(&roles).map_err(|e| StoreError::Corrupt {
            table: T,
            column: "roles",
            detail: e.to_string(),
        })?,
        password_hash: Secret::new(text(row, T, "password_hash")?),
        must_change_password: int(row, T, "must_change_password")? != 0,
        status: parsed(row, T, "status")?,
        created_at: time(row, T, "created_at")?,
        updated_at: time(row, T, "updated_at")?,
        password_changed_at: time(row, T, "password_changed_at")?,
    })
}

/// Adds a user.
pub async fn insert(c: &mut Conn, u: &UserRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, org_id, username, display_name, roles, password_hash, \
         must_change_password, status, created_at, updated_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(u.id.to_string())
    .bind(u.org_id.to_string())
    .bind(u.username.clone())
    .bind(u.display_name.clone())
    .bind(u.roles.to_stored())
    .bind(u.password_hash.expose().clone())
    .bind(i64::from(u.must_change_password))
    .bind(u.status.code())
    .bind(to_millis(u.created_at))
    .bind(to_millis(u.updated_at))
    .bind(to_millis(u.password_changed_at))
    .execute(c)
    .await?;
    Ok(())
}

/// Writes every mutable column of `u` back (the username and organisation never change).
pub async fn update(c: &mut Conn, u: &UserRecord) -> Result<()> {
    sqlx::query(
        "UPDATE users SET display_name = $2, roles = $3, password_hash = $4, must_change_password = $5, \
         status = $6, updated_at = $7, password_changed_at = $8 WHERE id = $1",
    )
    .bind(u.id.to_string())
    .bind(u.display_name.clone())
    .bind(u.roles.to_stored())
    .bind(u.password_hash.expose().clone())
    .bind(i64::from(u.must_change_password))
    .bind(u.status.code())
    .bind(to_millis(u.updated_at))
    .bind(to_millis(u.password_changed_at))
    .execute(c)
    .await?;
    Ok(())
}

/// One user by id.
pub async fn get(c: &mut Conn, id: UserId) -> Result<Option<UserRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM users WHERE id = $1"));
    let row = sqlx::query(sql).bind(id.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// One user by (normalised) username.
pub async fn find_by_username(c: &mut Conn, username: &str) -> Result<Option<UserRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM users WHERE username = $1"));
    let row = sqlx::query(sql).bind(username.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// A page of users, optionally of one organisation, oldest first.
pub async fn list(c: &mut Conn, org: Option<OrgId>, limit: i64, offset: i64) -> Result<Vec<UserRecord>> {
    let rows = match org {
        Some(org) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM users WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            ));
            sqlx::query(sql)
                .bind(org.to_string())
                .bind(limit)
                .bind(offset)
                .fetch_all(c)
                .await?
        }
        None => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
            ));
            sqlx::query(sql).bind(limit).bind(offset).fetch_all(c).await?
        }
    };
    rows.iter().map(decode).collect()
}

/// Number of active users of an organisation.
pub async fn count_active_in_org(c: &mut Conn, org: OrgId) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND status = 'active'")
        .bind(org.to_string())
        .fetch_one(c)
        .await?;
    Ok(row.try_get::<i64, _>("n")?)
}

/// Active users holding `role` in active organisations of `kind` (e.g. the platform administrators).
pub async fn count_active_with_role(c: &mut Conn, org_kind: &str, role: Role) -> Result<i64> {
    // Roles are stored space-separated; pad both sides so "admin" does not match "xadmin".
    let rows = sqlx::query(
        "SELECT u.roles AS roles FROM users u JOIN orgs o ON o.id = u.org_id \
         WHERE u.status = 'active' AND o.status = 'active' AND o.kind = $1",
    )
    .bind(org_kind.to_string())
    .fetch_all(c)
    .await?;
    let mut n = 0;
    for row in rows {
        let roles: String = row.try_get("roles")?;
        if roles.split_whitespace().any(|r| r == role.code()) {
            n += 1;
        }
    }
    Ok(n)
}
