//! Calls for applications and applications, as stored. The rules that move them are
//! in `shuyu-workflow`; here they are only read and written.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{opt_text, opt_time, text, time};
use crate::{Conn, Result};

const C: &str = "calls";
const A: &str = "applications";

/// A stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Its id.
    pub id: String,
    /// The issuing organisation.
    pub org_id: String,
    /// Who may apply: `operator` or `developer`.
    pub audience: String,
    /// Its title.
    pub title: String,
    /// Its state code.
    pub state: String,
    /// The last day applications are accepted (`YYYY-MM-DD`).
    pub deadline: String,
    /// The conditions and criteria, as JSON.
    pub body_json: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

const CCOLS: &str = "id, org_id, audience, title, state, deadline, body_json, created_at, created_by, updated_at";

fn decode_call(r: &sqlx::any::AnyRow) -> Result<CallRecord> {
    Ok(CallRecord {
        id: text(r, C, "id")?,
        org_id: text(r, C, "org_id")?,
        audience: text(r, C, "audience")?,
        title: text(r, C, "title")?,
        state: text(r, C, "state")?,
        deadline: text(r, C, "deadline")?,
        body_json: text(r, C, "body_json")?,
        created_at: time(r, C, "created_at")?,
        created_by: text(r, C, "created_by")?,
        updated_at: time(r, C, "updated_at")?,
    })
}

/// Adds a call.
pub async fn insert_call(c: &mut Conn, r: &CallRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO calls ({CCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ));
    sqlx::query(sql)
        .bind(r.id.clone())
        .bind(r.org_id.clone())
        .bind(r.audience.clone())
        .bind(r.title.clone())
        .bind(r.state.clone())
        .bind(r.deadline.clone())
        .bind(r.body_json.clone())
        .bind(to_millis(r.created_at))
        .bind(r.created_by.clone())
        .bind(to_millis(r.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes a call's state back.
pub async fn update_call(c: &mut Conn, r: &CallRecord) -> Result<()> {
    sqlx::query("UPDATE calls SET state = $2, updated_at = $3 WHERE id = $1")
        .bind(r.id.clone())
        .bind(r.state.clone())
        .bind(to_millis(r.updated_at))
        .execute(c)
        .await?;
    Ok(())
}

/// One call.
pub async fn get_call(c: &mut Conn, id: &str) -> Result<Option<CallRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {CCOLS} FROM calls WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_call)
        .transpose()
}

/// Every call, newest first.
pub async fn calls(c: &mut Conn) -> Result<Vec<CallRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {CCOLS} FROM calls ORDER BY created_at DESC, id"));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode_call).collect()
}

/// A stored application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    /// Its id.
    pub id: String,
    /// The call it answers.
    pub call_id: String,
    /// The applying organisation.
    pub org_id: String,
    /// Its state code.
    pub state: String,
    /// Scenarios, data needs and attestations, as JSON.
    pub body_json: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was submitted.
    pub submitted_at: Option<Timestamp>,
    /// The authority's decision (approval, government approval reference), as JSON.
    pub decision_json: Option<String>,
}

const ACOLS: &str =
    "id, call_id, org_id, state, body_json, created_at, created_by, updated_at, submitted_at, decision_json";

fn decode_application(r: &sqlx::any::AnyRow) -> Result<ApplicationRecord> {
    Ok(ApplicationRecord {
        id: text(r, A, "id")?,
        call_id: text(r, A, "call_id")?,
        org_id: text(r, A, "org_id")?,
        state: text(r, A, "state")?,
        body_json: text(r, A, "body_json")?,
        created_at: time(r, A, "created_at")?,
        created_by: text(r, A, "created_by")?,
        updated_at: time(r, A, "updated_at")?,
        submitted_at: opt_time(r, A, "submitted_at")?,
        decision_json: opt_text(r, A, "decision_json")?,
    })
}

/// Adds an application.
pub async fn insert_application(c: &mut Conn, r: &ApplicationRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO applications ({ACOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ));
    sqlx::query(sql)
        .bind(r.id.clone())
        .bind(r.call_id.clone())
        .bind(r.org_id.clone())
        .bind(r.state.clone())
        .bind(r.body_json.clone())
        .bind(to_millis(r.created_at))
        .bind(r.created_by.clone())
        .bind(to_millis(r.updated_at))
        .bind(r.submitted_at.map(to_millis))
        .bind(r.decision_json.clone())
        .execute(c)
        .await?;
    Ok(())
}

/// Writes an application's mutable columns back.
pub async fn update_application(c: &mut Conn, r: &ApplicationRecord) -> Result<()> {
    sqlx::query("UPDATE applications SET state = $2, body_json = $3, updated_at = $4, submitted_at = $5 WHERE id = $1")
        .bind(r.id.clone())
        .bind(r.state.clone())
        .bind(r.body_json.clone())
        .bind(to_millis(r.updated_at))
        .bind(r.submitted_at.map(to_millis))
        .execute(c)
        .await?;
    Ok(())
}

/// One application.
pub async fn get_application(c: &mut Conn, id: &str) -> Result<Option<ApplicationRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {ACOLS} FROM applications WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_application)
        .transpose()
}

/// The applications to a call, oldest first (or all, when `call_id` is `None`).
pub async fn applications(c: &mut Conn, call_id: Option<&str>) -> Result<Vec<ApplicationRecord>> {
    let rows = match call_id {
        Some(id) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {ACOLS} FROM applications WHERE call_id = $1 ORDER BY created_at, id"
            ));
            sqlx::query(sql).bind(id.to_string()).fetch_all(c).await?
        }
        None => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {ACOLS} FROM applications ORDER BY created_at, id"));
            sqlx::query(sql).fetch_all(c).await?
        }
    };
    rows.iter().map(decode_application).collect()
}

/// The stored state (JSON) of an application's review or notice: `table` is
/// `application_reviews` or `application_notices`.
pub async fn get_state(c: &mut Conn, table: StateTable, application_id: &str) -> Result<Option<String>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT state_json FROM {} WHERE application_id = $1",
        table.name()
    ));
    let row = sqlx::query(sql)
        .bind(application_id.to_string())
        .fetch_optional(c)
        .await?;
    row.as_ref().map(|r| text(r, table.name(), "state_json")).transpose()
}

/// Writes an application's review or notice state (insert or replace).
pub async fn put_state(
    c: &mut Conn,
    table: StateTable,
    application_id: &str,
    json: &str,
    now: Timestamp,
) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (application_id, state_json, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (application_id) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
        table.name()
    ));
    sqlx::query(sql)
        .bind(application_id.to_string())
        .bind(json.to_string())
        .bind(to_millis(now))
        .execute(c)
        .await?;
    Ok(())
}

/// Which per-application state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTable {
    /// The expert review.
    Review,
    /// The public notice.
    Notice,
    /// The rectifications of the application's agreement.
    Rectification,
}

impl StateTable {
    fn name(self) -> &'static str {
        match self {
            StateTable::Review => "application_reviews",
            StateTable::Notice => "application_notices",
            StateTable::Rectification => "agreement_rectifications",
        }
    }
}

/// An application's attachment, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    /// Its id.
    pub id: String,
    /// The application.
    pub application_id: String,
    /// The file name as uploaded (sanitised).
    pub name: String,
    /// The detected media type.
    pub media_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// When it was attached.
    pub created_at: Timestamp,
    /// Who attached it.
    pub created_by: String,
}

const ATT: &str = "application_attachments";

fn decode_attachment(r: &sqlx::any::AnyRow) -> Result<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: text(r, ATT, "id")?,
        application_id: text(r, ATT, "application_id")?,
        name: text(r, ATT, "name")?,
        media_type: text(r, ATT, "media_type")?,
        size: crate::row::int(r, ATT, "size")?,
        sha256: text(r, ATT, "sha256")?,
        created_at: time(r, ATT, "created_at")?,
        created_by: text(r, ATT, "created_by")?,
    })
}

/// Adds an attachment with its content (base64).
pub async fn insert_attachment(c: &mut Conn, a: &AttachmentRecord, content_b64: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO application_attachments (id, application_id, name, media_type, size, sha256, content_b64, \
         created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.id.clone())
    .bind(a.application_id.clone())
    .bind(a.name.clone())
    .bind(a.media_type.clone())
    .bind(a.size)
    .bind(a.sha256.clone())
    .bind(content_b64.to_string())
    .bind(to_millis(a.created_at))
    .bind(a.created_by.clone())
    .execute(c)
    .await?;
    Ok(())
}

/// An application's attachments (without content), oldest first.
pub async fn attachments(c: &mut Conn, application_id: &str) -> Result<Vec<AttachmentRecord>> {
    sqlx::query(
        "SELECT id, application_id, name, media_type, size, sha256, created_at, created_by \
         FROM application_attachments WHERE application_id = $1 ORDER BY created_at, id",
    )
    .bind(application_id.to_string())
    .fetch_all(c)
    .await?
    .iter()
    .map(decode_attachment)
    .collect()
}

/// One attachment with its content (base64).
pub async fn attachment(c: &mut Conn, application_id: &str, id: &str) -> Result<Option<(AttachmentRecord, String)>> {
    let row = sqlx::query(
        "SELECT id, application_id, name, media_type, size, sha256, created_at, created_by, content_b64 \
         FROM application_attachments WHERE application_id = $1 AND id = $2",
    )
    .bind(application_id.to_string())
    .bind(id.to_string())
    .fetch_optional(c)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((decode_attachment(&r)?, text(&r, ATT, "content_b64")?))),
    }
}
