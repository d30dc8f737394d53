//! Regions: the city and its counties.

use shuyu_core::party::{Region, RegionCode};

use crate::row::{opt_text, text};
use crate::{Conn, Result, StoreError};

const T: &str = "regions";

fn decode(row: &sqlx::any::AnyRow) -> Result<Region> {
    let code = |col: &'static str, s: String| {
        RegionCode::parse(&s).map_err(|e| StoreError::Corrupt {
            table: T,
            column: col,
            detail: e.rule.to_string(),
        })
    };
    Ok(Region {
        code: code("code", text(row, T, "code")?)?,
        name_zh: text(row, T, "name_zh")?,
        name_en: text(row, T, "name_en")?,
        parent: opt_text(row, T, "parent")?.map(|p| code("parent", p)).transpose()?,
    })
}

/// Adds a region.
pub async fn insert(c: &mut Conn, r: &Region) -> Result<()> {
    sqlx::query("INSERT INTO regions (code, name_zh, name_en, parent) VALUES ($1, $2, $3, $4)")
        .bind(r.code.as_str().to_string())
        .bind(r.name_zh.clone())
        .bind(r.name_en.clone())
        .bind(r.parent.as_ref().map(|p| p.as_str().to_string()))
        .execute(c)
        .await?;
    Ok(())
}

/// Every region, the city first, then counties by code.
pub async fn list(c: &mut Conn) -> Result<Vec<Region>> {
    let rows = sqlx::query(
        "SELECT code, name_zh, name_en, parent FROM regions \
         ORDER BY CASE WHEN parent IS NULL THEN 0 ELSE 1 END, code",
    )
    .fetch_all(c)
    .await?;
    rows.iter().map(decode).collect()
}

/// One region by code.
pub async fn get(c: &mut Conn, code: &RegionCode) -> Result<Option<Region>> {
    let row = sqlx::query("SELECT code, name_zh, name_en, parent FROM regions WHERE code = $1")
        .bind(code.as_str().to_string())
        .fetch_optional(c)
        .await?;
    row.as_ref().map(decode).transpose()
}
