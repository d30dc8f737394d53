//! Failed-login counters, per username and per client address, kept in the
//! database so every replica enforces the same lockout.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_time, time};
use crate::{Conn, Result};

const T: &str = "login_throttle";

/// The failure count of one subject within its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// `user:NAME` or `ip:ADDR`.
    pub subject: String,
    /// Failures since `window_start`.
    pub failures: i64,
    /// When the current counting window began.
    pub window_start: Timestamp,
    /// Until when logins are refused, if locked.
    pub locked_until: Option<Timestamp>,
}

/// The counter of `subject`, if it has failed before.
pub async fn get(c: &mut Conn, subject: &str) -> Result<Option<ThrottleRecord>> {
    let row =
        sqlx::query("SELECT subject, failures, window_start, locked_until FROM login_throttle WHERE subject = $1")
            .bind(subject.to_string())
            .fetch_optional(c)
            .await?;
    row.map(|r| {
        Ok(ThrottleRecord {
            subject: subject.to_string(),
            failures: int(&r, T, "failures")?,
            window_start: time(&r, T, "window_start")?,
            locked_until: opt_time(&r, T, "locked_until")?,
        })
    })
    .transpose()
}

/// Stores a counter (insert or replace).
pub async fn put(c: &mut Conn, r: &ThrottleRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_throttle (subject, failures, window_start, locked_until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, \
         window_start = excluded.window_start, locked_until = excluded.locked_until",
    )
    .bind(r.subject.clone())
    .bind(r.failures)
    .bind(to_millis(r.window_start))
    .bind(r.locked_until.map(to_millis))
    .execute(c)
    .await?;
    Ok(())
}

/// Forgets a subject's failures (after a successful login).
pub async fn clear(c: &mut Conn, subject: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE subject = $1")
        .bind(subject.to_string())
        .execute(c)
        .await?;
    Ok(())
}
