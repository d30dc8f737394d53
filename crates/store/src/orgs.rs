//! Organisations: every party of the rules is one (R-03…R-10).

use shuyu_core::clock::{Timestamp, to_millis};
use shuyu_core::id::OrgId;
use shuyu_core::party::{Jurisdiction, OrgKind, RegionCode, Status};
use sqlx::Row;

use crate::row::{opt_text, parsed, text, time};
use crate::{Conn, Result, StoreError};

const T: &str = "orgs";
const COLS: &str = "id, name, kind, region, uscc, status, created_at, updated_at, jurisdiction";

/// A stored organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its id.
    pub id: OrgId,
    /// Its registered name (unique).
    pub name: String,
    /// Which party it is.
    pub kind: OrgKind,
    /// The city or the county it belongs to.
    pub region: RegionCode,
    /// Its unified social credit code, when known (checked on entry).
    pub uscc: Option<String>,
    /// Active or disabled.
    pub status: Status,
    /// Where it is, as the data authority recorded it (none yet: treated as outside the
    /// mainland when it would receive data).
    pub jurisdiction: Option<Jurisdiction>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<OrgRecord> {
    let region = text(row, T, "region")?;
    Ok(OrgRecord {
        id: parsed(row, T, "id")?,
        name: text(row, T, "name")?,
        kind: parsed(row, T, "kind")?,
        region: RegionCode::parse(&region).map_err(|e| StoreError::Corrupt {
            table: T,
            column: "region",
            detail: e.rule.to_string(),
        })?,
        uscc: opt_text(row, T, "uscc")?,
        status: parsed(row, T, "status")?,
        jurisdiction: opt_text(row, T, "jurisdiction")?
            .map(|j| {
                j.parse::<Jurisdiction>().map_err(|e| StoreError::Corrupt {
                    table: T,
                    column: "jurisdiction",
                    detail: e.rule.to_string(),
                })
            })
            .transpose()?,
        created_at: time(row, T, "created_at")?,
        updated_at: time(row, T, "updated_at")?,
    })
}

/// Adds an organisation.
pub async fn insert(c: &mut Conn, o: &OrgRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO orgs (id, name, kind, region, uscc, status, created_at, updated_at, jurisdiction) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(o.id.to_string())
    .bind(o.name.clone())
    .bind(o.kind.code())
    .bind(o.region.as_str().to_string())
    .bind(o.uscc.clone())
    .bind(o.status.code())
    .bind(to_millis(o.created_at))
    .bind(to_millis(o.updated_at))
    .bind(o.jurisdiction.map(|j| j.code().to_string()))
    .execute(c)
    .await?;
    Ok(())
}

/// Writes every mutable column of `o` back.
pub async fn update(c: &mut Conn, o: &OrgRecord) -> Result<()> {
    sqlx::query(
        "UPDATE orgs SET name = $2, kind = $3, region = $4, uscc = $5, status = $6, updated_at = $7, \
         jurisdiction = $8 WHERE id = $1",
    )
    .bind(o.id.to_string())
    .bind(o.name.clone())
    .bind(o.kind.code())
    .bind(o.region.as_str().to_string())
    .bind(o.uscc.clone())
    .bind(o.status.code())
    .bind(to_millis(o.updated_at))
    .bind(o.jurisdiction.map(|j| j.code().to_string()))
    .execute(c)
    .await?;
    Ok(())
}

/// One organisation by id.
pub async fn get(c: &mut Conn, id: OrgId) -> Result<Option<OrgRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE id = $1"));
    let row = sqlx::query(sql).bind(id.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// One organisation by exact name.
pub async fn find_by_name(c: &mut Conn, name: &str) -> Result<Option<OrgRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE name = $1"));
    let row = sqlx::query(sql).bind(name.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// One organisation by unified social credit code.
pub async fn find_by_uscc(c: &mut Conn, uscc: &str) -> Result<Option<OrgRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE uscc = $1"));
    let row = sqlx::query(sql).bind(uscc.to_string()).fetch_optional(c).await?;
    row.as_ref().map(decode).transpose()
}

/// A page of organisations, oldest first.
pub async fn list(c: &mut Conn, limit: i64, offset: i64) -> Result<Vec<OrgRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM orgs ORDER BY created_at, id LIMIT $1 OFFSET $2"
    ));
    let rows = sqlx::query(sql).bind(limit).bind(offset).fetch_all(c).await?;
    rows.iter().map(decode).collect()
}

/// Number of organisations.
pub async fn count(c: &mut Conn) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM orgs").fetch_one(c).await?;
    Ok(row.try_get::<i64, _>("n")?)
}
