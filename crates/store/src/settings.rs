//! Installation-wide settings: written once at `init` (installation id, city, the wrapped
//! audit log key), replaced only by a master-key rotation.

use sqlx::Row;

use crate::{Conn, Result};

/// The value of `key`, if set.
pub async fn get(c: &mut Conn, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key.to_string())
        .fetch_optional(c)
        .await?;
    Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
}

/// Sets `key` unless it is already set; returns whether it was written.
pub async fn put_if_absent(c: &mut Conn, key: &str, value: &str) -> Result<bool> {
    if get(&mut *c, key).await?.is_some() {
        return Ok(false);
    }
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
        .bind(key.to_string())
        .bind(value.to_string())
        .execute(c)
        .await?;
    Ok(true)
}

/// Sets a value, replacing any previous one (the master-key rotation replaces the wrapped log key).
pub async fn set(c: &mut Conn, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key.to_string())
    .bind(value.to_string())
    .execute(c)
    .await?;
    Ok(())
}
