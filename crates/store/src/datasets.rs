//! Datasets and their versions (the metadata; the data itself is in the vault).

use shuyu_core::clock::{Timestamp, to_millis};
use sqlx::Row;

use crate::row::{int, opt_text, opt_time, text, time};
use crate::{Conn, Result};

const T: &str = "datasets";
const V: &str = "dataset_versions";

/// A stored dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    /// Its id.
    pub id: String,
    /// The providing organisation.
    pub org_id: String,
    /// Machine name, unique within the organisation (`population`).
    pub name: String,
    /// Human title (`人口基础信息`).
    pub title: String,
    /// Confirmed grade code (`L1`…`L4`, `important`, `core`).
    pub grade: String,
    /// `active` or `withdrawn`.
    pub status: String,
    /// The version in use.
    pub current_version: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

fn decode(r: &sqlx::any::AnyRow) -> Result<DatasetRecord> {
    Ok(DatasetRecord {
        id: text(r, T, "id")?,
        org_id: text(r, T, "org_id")?,
        name: text(r, T, "name")?,
        title: text(r, T, "title")?,
        grade: text(r, T, "grade")?,
        status: text(r, T, "status")?,
        current_version: opt_text(r, T, "current_version")?,
        created_at: time(r, T, "created_at")?,
        updated_at: time(r, T, "updated_at")?,
    })
}

const DCOLS: &str = "id, org_id, name, title, grade, status, current_version, created_at, updated_at";

/// Adds a dataset.
pub async fn insert(c: &mut Conn, d: &DatasetRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO datasets (id, org_id, name, title, grade, status, current_version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(d.id.clone())
    .bind(d.org_id.clone())
    .bind(d.name.clone())
    .bind(d.title.clone())
    .bind(d.grade.clone())
    .bind(d.status.clone())
    .bind(d.current_version.clone())
    .bind(to_millis(d.created_at))
    .bind(to_millis(d.updated_at))
    .execute(c)
    .await?;
    Ok(())
}

/// Writes the mutable columns back.
pub async fn update(c: &mut Conn, d: &DatasetRecord) -> Result<()> {
    sqlx::query(
        "UPDATE datasets SET title = $2, grade = $3, status = $4, current_version = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(d.id.clone())
    .bind(d.title.clone())
    .bind(d.grade.clone())
    .bind(d.status.clone())
    .bind(d.current_version.clone())
    .bind(to_millis(d.updated_at))
    .execute(c)
    .await?;
    Ok(())
}

/// One dataset.
pub async fn get(c: &mut Conn, id: &str) -> Result<Option<DatasetRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {DCOLS} FROM datasets WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// A dataset by organisation and name.
pub async fn find(c: &mut Conn, org_id: &str, name: &str) -> Result<Option<DatasetRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {DCOLS} FROM datasets WHERE org_id = $1 AND name = $2"));
    sqlx::query(sql)
        .bind(org_id.to_string())
        .bind(name.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// All datasets, oldest first (optionally of one organisation).
pub async fn list(c: &mut Conn, org_id: Option<&str>) -> Result<Vec<DatasetRecord>> {
    let rows = match org_id {
        Some(o) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {DCOLS} FROM datasets WHERE org_id = $1 ORDER BY created_at, id"
            ));
            sqlx::query(sql).bind(o.to_string()).fetch_all(c).await?
        }
        None => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {DCOLS} FROM datasets ORDER BY created_at, id"));
            sqlx::query(sql).fetch_all(c).await?
        }
    };
    rows.iter().map(decode).collect()
}

/// A stored dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its id.
    pub id: String,
    /// Its dataset.
    pub dataset_id: String,
    /// 1, 2, 3 … within the dataset.
    pub version_no: i64,
    /// `pending_review`, `active`, `superseded`, `rejected`, `destroyed`.
    pub status: String,
    /// The uploaded file's name.
    pub source_name: String,
    /// `csv`, `xlsx`, `parquet`, `jsonl`.
    pub format: String,
    /// The text encoding read.
    pub encoding: String,
    /// Data rows read.
    pub rows_read: i64,
    /// Rows kept.
    pub rows_accepted: i64,
    /// Rows quarantined.
    pub rows_quarantined: i64,
    /// Bad values found.
    pub error_count: i64,
    /// The vault object of the good rows.
    pub object_path: Option<String>,
    /// Their data key, wrapped under the master key.
    pub wrapped_key: Option<String>,
    /// Bytes stored.
    pub bytes: i64,
    /// The vault object of the quarantined rows.
    pub quarantine_path: Option<String>,
    /// Its data key, wrapped.
    pub quarantine_key: Option<String>,
    /// The columns and their classification (JSON).
    pub columns_json: String,
    /// The version's grade code.
    pub grade: String,
    /// When it was imported.
    pub created_at: Timestamp,
    /// Who imported it (user id).
    pub created_by: String,
    /// When it was accepted or rejected.
    pub decided_at: Option<Timestamp>,
    /// Who decided (user id).
    pub decided_by: Option<String>,
}

const VCOLS: &str = "id, dataset_id, version_no, status, source_name, format, encoding, rows_read, rows_accepted, \
                     rows_quarantined, error_count, object_path, wrapped_key, bytes, quarantine_path, quarantine_key, \
                     columns_json, grade, created_at, created_by, decided_at, decided_by";

fn decode_version(r: &sqlx::any::AnyRow) -> Result<VersionRecord> {
    Ok(VersionRecord {
        id: text(r, V, "id")?,
        dataset_id: text(r, V, "dataset_id")?,
        version_no: int(r, V, "version_no")?,
        status: text(r, V, "status")?,
        source_name: text(r, V, "source_name")?,
        format: text(r, V, "format")?,
        encoding: text(r, V, "encoding")?,
        rows_read: int(r, V, "rows_read")?,
        rows_accepted: int(r, V, "rows_accepted")?,
        rows_quarantined: int(r, V, "rows_quarantined")?,
        error_count: int(r, V, "error_count")?,
        object_path: opt_text(r, V, "object_path")?,
        wrapped_key: opt_text(r, V, "wrapped_key")?,
        bytes: int(r, V, "bytes")?,
        quarantine_path: opt_text(r, V, "quarantine_path")?,
        quarantine_key: opt_text(r, V, "quarantine_key")?,
        columns_json: text(r, V, "columns_json")?,
        grade: text(r, V, "grade")?,
        created_at: time(r, V, "created_at")?,
        created_by: text(r, V, "created_by")?,
        decided_at: opt_time(r, V, "decided_at")?,
        decided_by: opt_text(r, V, "decided_by")?,
    })
}

/// Adds a version.
pub async fn insert_version(c: &mut Conn, v: &VersionRecord) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO dataset_versions ({VCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22)"
    ));
    sqlx::query(sql)
        .bind(v.id.clone())
        .bind(v.dataset_id.clone())
        .bind(v.version_no)
        .bind(v.status.clone())
        .bind(v.source_name.clone())
        .bind(v.format.clone())
        .bind(v.encoding.clone())
        .bind(v.rows_read)
        .bind(v.rows_accepted)
        .bind(v.rows_quarantined)
        .bind(v.error_count)
        .bind(v.object_path.clone())
        .bind(v.wrapped_key.clone())
        .bind(v.bytes)
        .bind(v.quarantine_path.clone())
        .bind(v.quarantine_key.clone())
        .bind(v.columns_json.clone())
        .bind(v.grade.clone())
        .bind(to_millis(v.created_at))
        .bind(v.created_by.clone())
        .bind(v.decided_at.map(to_millis))
        .bind(v.decided_by.clone())
        .execute(c)
        .await?;
    Ok(())
}

/// Writes a version's mutable columns back (status, classification, keys when destroyed).
pub async fn update_version(c: &mut Conn, v: &VersionRecord) -> Result<()> {
    sqlx::query(
        "UPDATE dataset_versions SET status = $2, columns_json = $3, grade = $4, object_path = $5, wrapped_key = $6, \
         quarantine_path = $7, quarantine_key = $8, decided_at = $9, decided_by = $10 WHERE id = $1",
    )
    .bind(v.id.clone())
    .bind(v.status.clone())
    .bind(v.columns_json.clone())
    .bind(v.grade.clone())
    .bind(v.object_path.clone())
    .bind(v.wrapped_key.clone())
    .bind(v.quarantine_path.clone())
    .bind(v.quarantine_key.clone())
    .bind(v.decided_at.map(to_millis))
    .bind(v.decided_by.clone())
    .execute(c)
    .await?;
    Ok(())
}

/// One version.
pub async fn get_version(c: &mut Conn, id: &str) -> Result<Option<VersionRecord>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {VCOLS} FROM dataset_versions WHERE id = $1"));
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(decode_version)
        .transpose()
}

/// The versions of a dataset, newest first.
pub async fn versions(c: &mut Conn, dataset_id: &str) -> Result<Vec<VersionRecord>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VCOLS} FROM dataset_versions WHERE dataset_id = $1 ORDER BY version_no DESC"
    ));
    let rows = sqlx::query(sql).bind(dataset_id.to_string()).fetch_all(c).await?;
    rows.iter().map(decode_version).collect()
}

/// The next version number of a dataset.
pub async fn next_version_no(c: &mut Conn, dataset_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version_no), 0) + 1 AS n FROM dataset_versions WHERE dataset_id = $1")
        .bind(dataset_id.to_string())
        .fetch_one(c)
        .await?;
    Ok(row.try_get::<i64, _>("n")?)
}

/// Every vault object a version, a workspace's sample, a job's output or a release's watermarked copy still
/// refers to (to sweep orphans after a crash).
pub async fn live_objects(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT object_path, quarantine_path FROM dataset_versions")
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        out.extend(opt_text(&r, V, "object_path")?);
        out.extend(opt_text(&r, V, "quarantine_path")?);
    }
    // Workspaces' samples live in the same vault.
    for r in sqlx::query("SELECT object_path FROM samples")
        .fetch_all(&mut *c)
        .await?
    {
        out.extend(opt_text(&r, "samples", "object_path")?);
    }
    // So do jobs' staged outputs and their members.
    for r in sqlx::query("SELECT object_path, members_path FROM job_outputs")
        .fetch_all(&mut *c)
        .await?
    {
        out.extend(opt_text(&r, "job_outputs", "object_path")?);
        out.extend(opt_text(&r, "job_outputs", "members_path")?);
    }
    // And released outputs' watermarked copies.
    for r in sqlx::query("SELECT object_path FROM releases")
        .fetch_all(&mut *c)
        .await?
    {
        out.extend(opt_text(&r, "releases", "object_path")?);
    }
    Ok(out)
}

/// One row of an import error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrorRecord {
    /// 1-based data row.
    pub row_no: i64,
    /// The column (`*` for a malformed row).
    pub field: String,
    /// The rule broken.
    pub rule: String,
    /// Digest of the value (never the value).
    pub value_digest: String,
}

/// Stores an error report (in chunks).
pub async fn insert_errors(c: &mut Conn, version_id: &str, errors: &[ImportErrorRecord]) -> Result<()> {
    for chunk in errors.chunks(50) {
        let mut sql = String::from("INSERT INTO import_errors (version_id, row_no, field, rule, value_digest) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${},${},${},${},${})", b + 1, b + 2, b + 3, b + 4, b + 5));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            q = q
                .bind(version_id.to_string())
                .bind(e.row_no)
                .bind(e.field.clone())
                .bind(e.rule.clone())
                .bind(e.value_digest.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// A page of a version's error report, in row order.
pub async fn errors(c: &mut Conn, version_id: &str, limit: i64, offset: i64) -> Result<Vec<ImportErrorRecord>> {
    let rows = sqlx::query(
        "SELECT row_no, field, rule, value_digest FROM import_errors WHERE version_id = $1 ORDER BY row_no, field LIMIT $2 OFFSET $3",
    )
    .bind(version_id.to_string())
    .bind(limit)
    .bind(offset)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ImportErrorRecord {
                row_no: int(r, "import_errors", "row_no")?,
                field: text(r, "import_errors", "field")?,
                rule: text(r, "import_errors", "rule")?,
                value_digest: text(r, "import_errors", "value_digest")?,
            })
        })
        .collect()
}
