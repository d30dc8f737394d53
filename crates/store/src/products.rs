//! Products, as stored: a released job output published into the public product catalog
//! as a dataset or a report. The record keeps what the catalog shows — the scenario,
//! the source versions (as JSON, from the lineage), the columns, the terms — and whether the
//! product is still listed. Its content stays the release's; what the kinds, access and
//! sources mean is `shuyu-engine`'s.

use shuyu_core::clock::{Timestamp, to_millis};

use crate::row::{int, opt_text, opt_time, text, time};
use crate::{Conn, Result};

const T: &str = "products";

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    /// Its id.
    pub id: String,
    /// The release whose copy it offers (one product per release).
    pub release_id: String,
    /// `dataset` or `report`.
    pub kind: String,
    /// Its title, as the catalog lists it.
    pub title: String,
    /// What it contains and what it is for.
    pub summary: String,
    /// The terms of use a consumer accepts.
    pub terms: String,
    /// The data request (scenario) it was made under.
    pub request_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The developer organisation that made it.
    pub maker_org_id: String,
    /// The operator organisation that published it.
    pub publisher_org_id: String,
    /// The user who published it.
    pub published_by: String,
    /// `open` (every account) or `recipient` (the release's recipient only).
    pub access: String,
    /// The source dataset versions it was computed from, as JSON.
    pub sources_json: String,
    /// Its columns, as JSON.
    pub columns_json: String,
    /// Rows in the released copy.
    pub row_count: i64,
    /// `listed` or `delisted`.
    pub state: String,
    /// Why it was delisted.
    pub delist_reason: Option<String>,
    /// When it was published.
    pub published_at: Timestamp,
    /// When it was delisted.
    pub delisted_at: Option<Timestamp>,
}

const COLS: &str = "id, release_id, kind, title, summary, terms, request_id, scenario, maker_org_id, \
                    publisher_org_id, published_by, access, sources_json, columns_json, row_count, state, \
                    delist_reason, published_at, delisted_at";

fn decode(r: &sqlx::any::AnyRow) -> Result<ProductRecord> {
    Ok(ProductRecord {
        id: text(r, T, "id")?,
        release_id: text(r, T, "release_id")?,
        kind: text(r, T, "kind")?,
        title: text(r, T, "title")?,
        summary: text(r, T, "summary")?,
        terms: text(r, T, "terms")?,
        request_id: text(r, T, "request_id")?,
        scenario: text(r, T, "scenario")?,
        maker_org_id: text(r, T, "maker_org_id")?,
        publisher_org_id: text(r, T, "publisher_org_id")?,
        published_by: text(r, T, "published_by")?,
        access: text(r, T, "access")?,
        sources_json: text(r, T, "sources_json")?,
        columns_json: text(r, T, "columns_json")?,
        row_count: int(r, T, "row_count")?,
        state: text(r, T, "state")?,
        delist_reason: opt_text(r, T, "delist_reason")?,
        published_at: time(r, T, "published_at")?,
        delisted_at: opt_time(r, T, "delisted_at")?,
    })
}

/// Adds a product; a second product of the same release is a unique-constraint error.
pub async fn insert(c: &mut Conn, p: &ProductRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO products ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19)"
    ));
    sqlx::query(sql)
        .bind(p.id.clone())
        .bind(p.release_id.clone())
        .bind(p.kind.clone())
        .bind(p.title.clone())
        .bind(p.summary.clone())
        .bind(p.terms.clone())
        .bind(p.request_id.clone())
        .bind(p.scenario.clone())
        .bind(p.maker_org_id.clone())
        .bind(p.publisher_org_id.clone())
        .bind(p.published_by.clone())
        .bind(p.access.clone())
        .bind(p.sources_json.clone())
        .bind(p.columns_json.clone())
        .bind(p.row_count)
        .bind(p.state.clone())
        .bind(p.delist_reason.clone())
        .bind(to_millis(p.published_at))
        .bind(p.delisted_at.map(to_millis))
        .execute(c)
        .await?;
    Ok(())
}

/// One product.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<ProductRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM products WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// The product of a release, if it was published.
pub async fn of_release(c: &mut Conn, release_id: &str) -> Result<Option<ProductRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM products WHERE release_id = $1"));
    sqlx::query(sql)
        .bind(release_id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every product, newest first (the catalog filters by state and by the agreement chain).
pub async fn all(c: &mut Conn) -> Result<Vec<ProductRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM products ORDER BY published_at DESC, id DESC"
    ));
    sqlx::query(sql).fetch_all(c).await?.iter().map(decode).collect()
}

/// Delists a listed product with a reason. Only a `listed` product changes, so a product is
/// delisted once; returns whether it changed.
pub async fn delist(c: &mut Conn, id: &str, reason: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE products SET state = 'delisted', delist_reason = $2, delisted_at = $3 \
         WHERE id = $1 AND state = 'listed'",
    )
    .bind(id.to_string())
    .bind(reason.to_string())
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}
