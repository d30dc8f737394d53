//! Catalog entries (the catalog chain) and governance items, as stored. The rules
//! that move them are in `shuyu-catalog`; here they are only read and written.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, opt_time, text, time};
use crate::{Conn, Result};

const E: &str = "catalog_entries";
const G: &str = "governance_items";

/// A stored catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// Its id.
    pub id: String,
    /// `resource`, `operation`, `development` or `social`.
    pub kind: String,
    /// The organisation that keeps it (provider, operator or developer).
    pub org_id: String,
    /// The entry it derives from (operation → resource, development → operation).
    pub parent_id: Option<String>,
    /// The dataset it describes (resource and social entries).
    pub dataset_id: Option<String>,
    /// Its title.
    pub title: String,
    /// Its state code.
    pub state: String,
    /// 1, 2, 3 … each time it is revised.
    pub revision: i64,
    /// The kind-specific content, as JSON.
    pub body_json: String,
    /// The last decision's note (a return or rejection reason).
    pub note: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was last decided on.
    pub decided_at: Option<Timestamp>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When it was (last) published.
    pub published_at: Option<Timestamp>,
}

const ECOLS: &str = "id, kind, org_id, parent_id, dataset_id, title, state, revision, body_json, note, \
                     created_at, created_by, updated_at, decided_at, decided_by, published_at";

fn decode_entry(r: &sqlx::any::AnyRow) -> Result<EntryRecord> {
    Ok(EntryRecord {
        id: text(r, E, "id")?,
        kind: text(r, E, "kind")?,
        org_id: text(r, E, "org_id")?,
        parent_id: opt_text(r, E, "parent_id")?,
        dataset_id: opt_text(r, E, "dataset_id")?,
        title: text(r, E, "title")?,
        state: text(r, E, "state")?,
        revision: int(r, E, "revision")?,
        body_json: text(r, E, "body_json")?,
        note: opt_text(r, E, "note")?,
        created_at: time(r, E, "created_at")?,
        created_by: text(r, E, "created_by")?,
        updated_at: time(r, E, "updated_at")?,
        decided_at: opt_time(r, E, "decided_at")?,
        decided_by: opt_text(r, E, "decided_by")?,
        published_at: opt_time(r, E, "published_at")?,
    })
}

/// Adds an entry.
pub async fn insert_entry(c: &mut Conn, e: &EntryRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO catalog_entries ({ECOLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ));
    sqlx::query(sql)
        .bind(e.id.clone())
        .bind(e.kind.clone())
        .bind(e.org_id.clone())
        .bind(e.parent_id.clone())
        .bind(e.dataset_id.clone())
        .bind(e.title.clone())
        .bind(e.state.clone())
        .bind(e.revision)
        .bind(e.body_json.clone())
        .bind(e.note.clone())
        .bind(to_millis(e.created_at))
        .bind(e.created_by.clone())
        .bind(to_millis(e.updated_at))
        .bind(e.decided_at.map(to_millis))
        .bind(e.decided_by.clone())
        .bind(e.published_at.map(to_millis))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes the mutable columns back.
pub async fn update_entry(c: &mut Conn, e: &EntryRecord) -> Result<()> {
    sqlx::query(
        "UPDATE catalog_entries SET title = $2, state = $3, revision = $4, body_json = $5, note = $6, \
         updated_at = $7, decided_at = $8, decided_by = $9, published_at = $10 WHERE id = $1",
    )
    .bind(e.id.clone())
    .bind(e.title.clone())
    .bind(e.state.clone())
    .bind(e.revision)
    .bind(e.body_json.clone())
    .bind(e.note.clone())
    .bind(to_millis(e.updated_at))
    .bind(e.decided_at.map(to_millis))
    .bind(e.decided_by.clone())
    .bind(e.published_at.map(to_millis))
    .execute(c)
    .await?;
    Ok(())
}

/// One entry.
pub async fn get_entry(c: &mut Conn, id: &str) -> Result<Option<EntryRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {ECOLS} FROM catalog_entries WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_entry)
        .transpose()
}

/// The entries of one kind (optionally in one state), oldest first.
pub async fn entries(c: &mut Conn, kind: &str, state: Option<&str>) -> Result<Vec<EntryRecord>> {
    let rows = match state {
        Some(s) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {ECOLS} FROM catalog_entries WHERE kind = $1 AND state = $2 ORDER BY created_at, id"
            ));
            sqlx::query(sql)
                .bind(kind.to_string())
                .bind(s.to_string())
                .fetch_all(c)
                .await?
        }
        None => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {ECOLS} FROM catalog_entries WHERE kind = $1 ORDER BY created_at, id"
            ));
            sqlx::query(sql).bind(kind.to_string()).fetch_all(c).await?
        }
    };
    rows.iter().map(decode_entry).collect()
}

/// The entries derived from `parent_id`.
pub async fn children(c: &mut Conn, parent_id: &str) -> Result<Vec<EntryRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ECOLS} FROM catalog_entries WHERE parent_id = $1 ORDER BY created_at, id"
    ));
    let rows = sqlx::query(sql).bind(parent_id.to_string()).fetch_all(c).await?;
    rows.iter().map(decode_entry).collect()
}

/// A stored governance request or objection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceRecord {
    /// Its id.
    pub id: String,
    /// `quality` (a governance request) or `objection`.
    pub kind: String,
    /// The dataset it concerns.
    pub dataset_id: String,
    /// The dataset's provider, who must answer.
    pub provider_org_id: String,
    /// The user who raised it.
    pub raised_by: String,
    /// That user's organisation.
    pub raised_by_org: String,
    /// A one-line subject.
    pub subject: String,
    /// What is wrong.
    pub detail: String,
    /// The field concerned, if one.
    pub field: Option<String>,
    /// `open`, `answered` or `closed`.
    pub state: String,
    /// When the answer is due.
    pub deadline: Timestamp,
    /// The provider's answer.
    pub answer: Option<String>,
    /// `corrected` or `no_fault`.
    pub outcome: Option<String>,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// When it was closed.
    pub closed_at: Option<Timestamp>,
    /// When it was raised.
    pub created_at: Timestamp,
}

const GCOLS: &str = "id, kind, dataset_id, provider_org_id, raised_by, raised_by_org, subject, detail, field, \
                     state, deadline, answer, outcome, answered_at, answered_by, closed_at, created_at";

fn decode_item(r: &sqlx::any::AnyRow) -> Result<GovernanceRecord> {
    Ok(GovernanceRecord {
        id: text(r, G, "id")?,
        kind: text(r, G, "kind")?,
        dataset_id: text(r, G, "dataset_id")?,
        provider_org_id: text(r, G, "provider_org_id")?,
        raised_by: text(r, G, "raised_by")?,
        raised_by_org: text(r, G, "raised_by_org")?,
        subject: text(r, G, "subject")?,
        detail: text(r, G, "detail")?,
        field: opt_text(r, G, "field")?,
        state: text(r, G, "state")?,
        deadline: time(r, G, "deadline")?,
        answer: opt_text(r, G, "answer")?,
        outcome: opt_text(r, G, "outcome")?,
        answered_at: opt_time(r, G, "answered_at")?,
        answered_by: opt_text(r, G, "answered_by")?,
        closed_at: opt_time(r, G, "closed_at")?,
        created_at: time(r, G, "created_at")?,
    })
}

/// Adds a governance item.
pub async fn insert_item(c: &mut Conn, g: &GovernanceRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO governance_items ({GCOLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    ));
    sqlx::query(sql)
        .bind(g.id.clone())
        .bind(g.kind.clone())
        .bind(g.dataset_id.clone())
        .bind(g.provider_org_id.clone())
        .bind(g.raised_by.clone())
        .bind(g.raised_by_org.clone())
        .bind(g.subject.clone())
        .bind(g.detail.clone())
        .bind(g.field.clone())
        .bind(g.state.clone())
        .bind(to_millis(g.deadline))
        .bind(g.answer.clone())
        .bind(g.outcome.clone())
        .bind(g.answered_at.map(to_millis))
        .bind(g.answered_by.clone())
        .bind(g.closed_at.map(to_millis))
        .bind(to_millis(g.created_at))
        .execute(c)
        .await?;
    Ok(())
}

/// Writes the mutable columns back.
pub async fn update_item(c: &mut Conn, g: &GovernanceRecord) -> Result<()> {
    sqlx::query(
        "UPDATE governance_items SET state = $2, deadline = $3, answer = $4, outcome = $5, answered_at = $6, \
         answered_by = $7, closed_at = $8 WHERE id = $1",
    )
    .bind(g.id.clone())
    .bind(g.state.clone())
    .bind(to_millis(g.deadline))
    .bind(g.answer.clone())
    .bind(g.outcome.clone())
    .bind(g.answered_at.map(to_millis))
    .bind(g.answered_by.clone())
    .bind(g.closed_at.map(to_millis))
    .execute(c)
    .await?;
    Ok(())
}

/// One governance item.
pub async fn get_item(c: &mut Conn, id: &str) -> Result<Option<GovernanceRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {GCOLS} FROM governance_items WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_item)
        .transpose()
}

/// All governance items, earliest deadline first.
pub async fn items(c: &mut Conn) -> Result<Vec<GovernanceRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {GCOLS} FROM governance_items ORDER BY deadline, id"));
    let rows = sqlx::query(sql).fetch_all(c).await?;
    rows.iter().map(decode_item).collect()
}
