//! Agreements and users' signing public keys, as stored. The rules are in `shuyu-workflow`.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{text, time};
use crate::{Conn, Result};

const T: &str = "agreements";

/// A stored agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRecord {
    /// Its id.
    pub id: String,
    /// The application it follows from.
    pub application_id: String,
    /// Who grants.
    pub grantor_org: String,
    /// Who is granted.
    pub grantee_org: String,
    /// Its state code.
    pub state: String,
    /// The state machine's value, as JSON.
    pub machine_json: String,
    /// The clauses, as JSON.
    pub body_json: String,
    /// The signatures, as JSON.
    pub signatures_json: String,
    /// When it was drafted.
    pub created_at: Timestamp,
    /// Who drafted it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

const COLS: &str = "id, application_id, grantor_org, grantee_org, state, machine_json, body_json, signatures_json, \
                    created_at, created_by, updated_at";

fn decode(r: &sqlx::any::AnyRow) -> Result<AgreementRecord> {
    Ok(AgreementRecord {
        id: text(r, T, "id")?,
        application_id: text(r, T, "application_id")?,
        grantor_org: text(r, T, "grantor_org")?,
        grantee_org: text(r, T, "grantee_org")?,
        state: text(r, T, "state")?,
        machine_json: text(r, T, "machine_json")?,
        body_json: text(r, T, "body_json")?,
        signatures_json: text(r, T, "signatures_json")?,
        created_at: time(r, T, "created_at")?,
        created_by: text(r, T, "created_by")?,
        updated_at: time(r, T, "updated_at")?,
    })
}

/// Adds an agreement.
pub async fn insert(c: &mut Conn, a: &AgreementRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO agreements ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ));
    sqlx::query(sql)
        .bind(a.id.clone())
        .bind(a.application_id.clone())
        .bind(a.grantor_org.clone())
        .bind(a.grantee_org.clone())
        .bind(a.state.clone())
        .bind(a.machine_json.clone())
        .bind(a.body_json.clone())
        .bind(a.signatures_json.clone())
        .bind(to_millis(a.created_at))
        .bind(a.created_by.clone())
        .bind(to_millis(a.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes the mutable columns back if the row is still as read at `read_at` (its
/// `updated_at` then); otherwise [`crate::StoreError::Stale`] — a signature and a suspension
/// arriving together must not overwrite each other.
pub async fn update(c: &mut Conn, a: &AgreementRecord, read_at: Timestamp) -> Result<()> {
    let done = sqlx::query(
        "UPDATE agreements SET state = $2, machine_json = $3, signatures_json = $4, updated_at = $5 \
         WHERE id = $1 AND updated_at = $6",
    )
    .bind(a.id.clone())
    .bind(a.state.clone())
    .bind(a.machine_json.clone())
    .bind(a.signatures_json.clone())
    .bind(to_millis(a.updated_at))
    .bind(to_millis(read_at))
    .execute(c)
    .await?;
    crate::one_row(done, T)
}

/// One agreement.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<AgreementRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM agreements WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every agreement, oldest first (listings filter by authorization).
pub async fn all(c: &mut Conn) -> Result<Vec<AgreementRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM agreements ORDER BY created_at, id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}

/// The agreements an organisation is party to (as grantor or grantee).
pub async fn of_org(c: &mut Conn, org_id: &str) -> Result<Vec<AgreementRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM agreements WHERE grantor_org = $1 OR grantee_org = $1 ORDER BY created_at, id"
    ));
    sqlx::query(sql)
        .bind(org_id.to_string())
        .fetch_all(c)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// A user's registered signing public key (base64), if any.
pub async fn signing_key(c: &mut Conn, user_id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT public_key FROM signing_keys WHERE user_id = $1")
        .bind(user_id.to_string())
        .fetch_optional(c)
        .await?;
    row.as_ref().map(|r| text(r, "signing_keys", "public_key")).transpose()
}

/// Registers (or replaces) a user's signing public key.
pub async fn put_signing_key(c: &mut Conn, user_id: &str, public_key: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (user_id, public_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET public_key = excluded.public_key, created_at = excluded.created_at",
    )
    .bind(user_id.to_string())
    .bind(public_key.to_string())
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(())
}
