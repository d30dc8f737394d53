//! The audit log in the database: entries, payloads, the Merkle tree's
//! perfect subtrees, checkpoints, cosignatures, retention. Appends happen only
//! in the writer (`writer.rs`), inside the transaction of the change they
//! record; everything here that reads is safe to call from any connection.

use std::collections::HashMap;

use shuyu_audit::Hash;
use shuyu_audit::entry::{Actor, Entry, ObjectRef, Outcome, VERSION, canonical};
use shuyu_audit::merkle::{Frontier, NodeId, consistency_ranges, inclusion_ranges, pieces, range_hash};
use shuyu_core::clock::{Timestamp, to_millis};
use sqlx::Row;

use crate::lineage::{self, Link};
use crate::row::{int, opt_text, text};
use crate::{Conn, Result, StoreError};

/// An action to record, as the code that performs it describes it.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it happened (the caller's clock).
    pub time: Timestamp,
    /// Who acted.
    pub actor: Actor,
    /// What was done, e.g. `org.create`.
    pub action: String,
    /// To what.
    pub object: ObjectRef,
    /// Digest of the object's state before.
    pub before: Option<String>,
    /// Digest of the object's state after.
    pub after: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request that caused it.
    pub request: Option<String>,
    /// Details kept for review until purged (may contain personal data; never hashed into the leaf).
    pub payload: Option<serde_json::Value>,
    /// What this entry's payload retention follows (e.g. an agreement id).
    pub retention_tag: Option<String>,
    /// Lineage edges this action creates.
    pub links: Vec<Link>,
}

impl Event {
    /// A successful action on `kind`/`id` by `actor` at `time`.
    pub fn new(time: Timestamp, actor: Actor, action: &str, kind: &str, id: impl Into<String>) -> Self {
        Event {
            time,
            actor,
            action: action.to_string(),
            object: ObjectRef {
                kind: kind.to_string(),
                id: id.into(),
            },
            before: None,
            after: None,
            outcome: Outcome::Success,
            request: None,
            payload: None,
            retention_tag: None,
            links: Vec::new(),
        }
    }
}

/// The upper levels of the Merkle tree, kept in memory: nodes never change once
/// written, so they can be cached forever. From level [`NodeCache::MIN_LEVEL`] up
/// there is one node per 1 024 entries (10 000 nodes for 10 M entries), and a proof
/// then reads only its lower levels from the database.
#[derive(Debug, Default)]
pub struct NodeCache {
    map: std::sync::RwLock<HashMap<NodeId, Hash>>,
}

impl NodeCache {
    /// The lowest level cached.
    pub const MIN_LEVEL: u32 = 10;

    fn get(&self, id: &NodeId) -> Option<Hash> {
        self.map.read().ok()?.get(id).copied()
    }

    /// Remembers nodes (those below [`NodeCache::MIN_LEVEL`] are ignored).
    pub fn remember(&self, nodes: impl IntoIterator<Item = (NodeId, Hash)>) {
        if let Ok(mut m) = self.map.write() {
            m.extend(nodes.into_iter().filter(|(id, _)| id.level >= Self::MIN_LEVEL));
        }
    }

    /// Forgets everything (after the database was changed behind the writer's back).
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.write() {
            m.clear();
        }
    }
}

/// Like [`nodes`], answering the upper levels from `cache` and filling it.
pub async fn nodes_cached(c: &mut Conn, cache: &NodeCache, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
    let mut out = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match cache.get(id) {
            Some(h) => {
                out.insert(*id, h);
            }
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        let fetched = nodes(c, &missing).await?;
        cache.remember(fetched.iter().map(|(k, v)| (*k, *v)));
        out.extend(fetched);
    }
    Ok(out)
}

/// The writer's view of the tree's right edge, cached between batches.
#[derive(Debug, Clone)]
pub struct Head {
    frontier: Frontier,
    prev_leaf: Option<Hash>,
}

fn hash32(bytes: Vec<u8>, what: &'static str) -> Result<Hash> {
    bytes.try_into().map_err(|_| StoreError::Corrupt {
        table: "audit_nodes",
        column: "hash",
        detail: format!("{what}: not 32 bytes"),
    })
}

/// Number of entries in the log.
pub async fn size(c: &mut Conn) -> Result<u64> {
    let row = sqlx::query("SELECT COALESCE(MAX(seq) + 1, 0) AS n FROM audit_entries")
        .fetch_one(c)
        .await?;
    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
}

/// Loads the given nodes (leaves from the entries, higher levels from the node table); every one must exist.
pub async fn nodes(c: &mut Conn, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
    let mut out = HashMap::with_capacity(ids.len());
    let (leaves, inner): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|id| id.level == 0);
    for chunk in leaves.chunks(200) {
        let mut sql = String::from("SELECT seq, leaf FROM audit_entries WHERE seq IN (");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", i + 1));
        }
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.idx as i64);
        }
        for row in q.fetch_all(&mut *c).await? {
            let id = NodeId {
                level: 0,
                idx: int(&row, "audit_entries", "seq")? as u64,
            };
            out.insert(id, hash32(row.try_get::<Vec<u8>, _>("leaf")?, "leaf")?);
        }
    }
    for chunk in inner.chunks(200) {
        let mut sql = String::from("SELECT level, idx, hash FROM audit_nodes WHERE ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(block = ${} AND level = ${} AND idx = ${})",
                3 * i + 1,
                3 * i + 2,
                3 * i + 3
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(block_of(id)).bind(i64::from(id.level)).bind(id.idx as i64);
        }
        for row in q.fetch_all(&mut *c).await? {
            let id = NodeId {
                level: int(&row, "audit_nodes", "level")? as u32,
                idx: int(&row, "audit_nodes", "idx")? as u64,
            };
            out.insert(id, hash32(row.try_get::<Vec<u8>, _>("hash")?, "node")?);
        }
    }
    if let Some(missing) = ids.iter().find(|id| !out.contains_key(id)) {
        return Err(StoreError::Corrupt {
            table: "audit_nodes",
            column: "hash",
            detail: format!("node (level {}, index {}) is missing", missing.level, missing.idx),
        });
    }
    Ok(out)
}

/// The 1024-leaf block a node's leaves start in (its clustering key on disk).
fn block_of(id: &NodeId) -> i64 {
    (id.idx.checked_shl(id.level).unwrap_or(u64::MAX) >> 10) as i64
}

/// A multi-row `INSERT` of `rows` rows of `cols` columns: `($1,…,$cols),(…)`.
fn values_sql(head: &str, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 5);
    sql.push_str(head);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for k in 0..cols {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", r * cols + k + 1));
        }
        sql.push(')');
    }
    sql
}

// Rows per statement: sqlx's per-parameter cost grows with the statement's
// parameter count, so moderate statements beat one huge one (measured; BENCHMARKS.md).
const ENTRY_ROWS: usize = 16;
const NODE_ROWS: usize = 64;
const PAYLOAD_ROWS: usize = 32;

/// The writer's head: reuses the cached one when no other process appended since.
pub(crate) async fn load_head(c: &mut Conn, cached: Option<Head>) -> Result<Head> {
    let n = size(&mut *c).await?;
    if let Some(h) = cached
        && h.frontier.size() == n
    {
        return Ok(h);
    }
    let ids = Frontier::node_ids(n);
    let found = nodes(&mut *c, &ids).await?;
    let hashes: Vec<Hash> = ids.iter().map(|id| found[id]).collect();
    let frontier = Frontier::from_nodes(n, &hashes).ok_or(StoreError::Corrupt {
        table: "audit_nodes",
        column: "hash",
        detail: "frontier does not rebuild".into(),
    })?;
    let prev_leaf = match n {
        0 => None,
        _ => {
            let leaf = NodeId { level: 0, idx: n - 1 };
            Some(nodes(&mut *c, &[leaf]).await?[&leaf])
        }
    };
    Ok(Head { frontier, prev_leaf })
}

fn time_string(t: Timestamp) -> String {
    // RFC 3339, UTC, millisecond precision: stable across platforms and databases.
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct NewRow {
    seq: i64,
    leaf: Hash,
    event: Event,
    line: String,
    payload: Option<(String, String)>,
}

/// Appends events to the log inside the writer's transaction; returns the Merkle nodes it wrote.
pub(crate) async fn append(c: &mut Conn, head: &mut Head, events: Vec<Event>) -> Result<Vec<(NodeId, Hash)>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let t0 = std::time::Instant::now();
    let mut rows = Vec::with_capacity(events.len());
    let mut new_nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(events.len() * 2);
    for event in events {
        let seq = head.frontier.size();
        let payload = match &event.payload {
            Some(p) => {
                let body = canonical(p).map_err(|e| StoreError::Audit(e.to_string()))?;
                // The digest the entry commits to is of exactly the stored canonical body.
                let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
                Some((digest, body))
            }
            None => None,
        };
        let entry = Entry {
            v: VERSION,
            seq,
            time: time_string(event.time),
            actor: event.actor.clone(),
            action: event.action.clone(),
            object: event.object.clone(),
            before: event.before.clone(),
            after: event.after.clone(),
            outcome: event.outcome,
            request: event.request.clone(),
            payload: payload.as_ref().map(|(d, _)| d.clone()),
            prev: head.prev_leaf.map(hex::encode).unwrap_or_default(),
            hash: String::new(),
        };
        let (_, line, leaf) = entry.seal().map_err(|e| StoreError::Audit(e.to_string()))?;
        new_nodes.extend(head.frontier.append(leaf));
        head.prev_leaf = Some(leaf);
        rows.push(NewRow {
            seq: seq as i64,
            leaf,
            event,
            line,
            payload,
        });
    }
    let t_built = t0.elapsed();
    const ENTRY_COLS: &str = "INSERT INTO audit_entries (seq, leaf, time, actor_user, actor_org, action, object_type, \
                              object_id, outcome, request_id, retention_tag, line) VALUES ";
    for chunk in rows.chunks(ENTRY_ROWS) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql(ENTRY_COLS, chunk.len(), 12)));
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(r.leaf.to_vec())
                .bind(to_millis(r.event.time))
                .bind(r.event.actor.user.clone())
                .bind(r.event.actor.org.clone())
                .bind(r.event.action.clone())
                .bind(r.event.object.kind.clone())
                .bind(r.event.object.id.clone())
                .bind(r.event.outcome.code())
                .bind(r.event.request.clone())
                .bind(r.event.retention_tag.clone())
                .bind(r.line.clone());
        }
        q.execute(&mut *c).await?;
    }
    let with_payload: Vec<&NewRow> = rows.iter().filter(|r| r.payload.is_some()).collect();
    for chunk in with_payload.chunks(PAYLOAD_ROWS) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql(
            "INSERT INTO audit_payloads (seq, digest, body) VALUES ",
            chunk.len(),
            3,
        )));
        for r in chunk {
            let (digest, body) = r.payload.clone().unwrap_or_default();
            q = q.bind(r.seq).bind(digest).bind(body);
        }
        q.execute(&mut *c).await?;
    }
    let t_entries = t0.elapsed();
    let inner: Vec<&(NodeId, Hash)> = new_nodes.iter().filter(|(id, _)| id.level > 0).collect();
    for chunk in inner.chunks(NODE_ROWS) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql(
            "INSERT INTO audit_nodes (block, level, idx, hash) VALUES ",
            chunk.len(),
            4,
        )));
        for (id, hash) in chunk {
            q = q
                .bind(block_of(id))
                .bind(i64::from(id.level))
                .bind(id.idx as i64)
                .bind(hash.to_vec());
        }
        q.execute(&mut *c).await?;
    }
    for r in &rows {
        for link in &r.event.links {
            lineage::insert_edge(&mut *c, link, r.seq).await?;
        }
    }
    tracing::debug!(
        entries = rows.len(),
        build_us = t_built.as_micros() as u64,
        entries_us = (t_entries - t_built).as_micros() as u64,
        nodes_us = (t0.elapsed() - t_entries).as_micros() as u64,
        "audit entries appended"
    );
    Ok(new_nodes)
}

/// The root hash of the tree at `size` (≤ the current size).
pub async fn root_at(c: &mut Conn, size: u64) -> Result<Hash> {
    root_with(c, None, size).await
}

async fn fetch(c: &mut Conn, cache: Option<&NodeCache>, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
    match cache {
        Some(cache) => nodes_cached(c, cache, ids).await,
        None => nodes(c, ids).await,
    }
}

pub(crate) async fn root_with(c: &mut Conn, cache: Option<&NodeCache>, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(shuyu_audit::merkle::empty_root());
    }
    let ids = Frontier::node_ids(size);
    let found = fetch(c, cache, &ids).await?;
    let hashes: Vec<Hash> = ids.iter().map(|id| found[id]).collect();
    range_hash(&hashes).ok_or(StoreError::Corrupt {
        table: "audit_nodes",
        column: "hash",
        detail: "empty frontier".into(),
    })
}

pub(crate) async fn prove(c: &mut Conn, cache: Option<&NodeCache>, ranges: &[(u64, u64)]) -> Result<Vec<Hash>> {
    let per_range: Vec<Vec<NodeId>> = ranges.iter().map(|(s, e)| pieces(*s, *e)).collect();
    let all: Vec<NodeId> = per_range.iter().flatten().copied().collect();
    let found = fetch(c, cache, &all).await?;
    per_range
        .iter()
        .map(|ids| {
            let hs: Vec<Hash> = ids.iter().map(|id| found[id]).collect();
            range_hash(&hs).ok_or(StoreError::Corrupt {
                table: "audit_nodes",
                column: "hash",
                detail: "empty range".into(),
            })
        })
        .collect()
}

/// The leaf hash of entry `seq`.
pub async fn leaf(c: &mut Conn, seq: u64) -> Result<Hash> {
    let id = NodeId { level: 0, idx: seq };
    Ok(nodes(c, &[id]).await?[&id])
}

/// The inclusion proof of entry `seq` in the tree of `size` entries.
pub async fn inclusion_proof(c: &mut Conn, seq: u64, size: u64) -> Result<Vec<Hash>> {
    prove(c, None, &inclusion_ranges(seq, size)).await
}

/// The consistency proof between tree sizes `first` and `second`.
pub async fn consistency_proof(c: &mut Conn, first: u64, second: u64) -> Result<Vec<Hash>> {
    prove(c, None, &consistency_ranges(first, second)).await
}

/// One stored entry, with the columns kept for search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its position.
    pub seq: u64,
    /// When it happened.
    pub time: Timestamp,
    /// The canonical line.
    pub line: String,
    /// The payload, unless purged or never kept.
    pub payload: Option<String>,
    /// When the payload was purged.
    pub purged_at: Option<Timestamp>,
}

fn decode_entry(row: &sqlx::any::AnyRow) -> Result<StoredEntry> {
    Ok(StoredEntry {
        seq: int(row, "audit_entries", "seq")? as u64,
        time: crate::row::time(row, "audit_entries", "time")?,
        line: text(row, "audit_entries", "line")?,
        payload: opt_text(row, "audit_payloads", "body")?,
        purged_at: crate::row::opt_time(row, "audit_payloads", "purged_at")?,
    })
}

const ENTRY_SELECT: &str = "SELECT e.seq, e.time, e.line, p.body, p.purged_at FROM audit_entries e \
                            LEFT JOIN audit_payloads p ON p.seq = e.seq";

/// Entries with `start <= seq < end`, in order.
pub async fn range(c: &mut Conn, start: u64, end: u64) -> Result<Vec<StoredEntry>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{ENTRY_SELECT} WHERE e.seq >= $1 AND e.seq < $2 ORDER BY e.seq"
    ));
    let rows = sqlx::query(sql)
        .bind(start as i64)
        .bind(end as i64)
        .fetch_all(c)
        .await?;
    rows.iter().map(decode_entry).collect()
}

/// Search criteria; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Acting user id.
    pub actor_user: Option<String>,
    /// Acting organisation id.
    pub actor_org: Option<String>,
    /// Action, exact or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    /// Object type.
    pub object_type: Option<String>,
    /// Object id.
    pub object_id: Option<String>,
    /// Not before.
    pub from: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// Only entries before this seq (paging backwards).
    pub before_seq: Option<u64>,
}

/// The newest entries matching `filter`, newest first, at most `limit`.
pub async fn search(c: &mut Conn, filter: &Filter, limit: i64) -> Result<Vec<StoredEntry>> {
    let mut sql = format!("{ENTRY_SELECT} WHERE 1 = 1");
    let mut binds: Vec<either::Bind> = Vec::new();
    let mut push = |sql: &mut String, cond: &str, b: either::Bind| {
        binds.push(b);
        sql.push_str(&format!(" AND {cond} ${}", binds.len()));
    };
    if let Some(v) = &filter.actor_user {
        push(&mut sql, "e.actor_user =", either::Bind::Text(v.clone()));
    }
    if let Some(v) = &filter.actor_org {
        push(&mut sql, "e.actor_org =", either::Bind::Text(v.clone()));
    }
    if let Some(v) = &filter.action {
        if let Some(prefix) = v.strip_suffix('.') {
            push(&mut sql, "e.action >=", either::Bind::Text(format!("{prefix}.")));
            push(&mut sql, "e.action <", either::Bind::Text(format!("{prefix}/")));
        } else {
            push(&mut sql, "e.action =", either::Bind::Text(v.clone()));
        }
    }
    if let Some(v) = &filter.object_type {
        push(&mut sql, "e.object_type =", either::Bind::Text(v.clone()));
    }
    if let Some(v) = &filter.object_id {
        push(&mut sql, "e.object_id =", either::Bind::Text(v.clone()));
    }
    if let Some(v) = filter.from {
        push(&mut sql, "e.time >=", either::Bind::Int(to_millis(v)));
    }
    if let Some(v) = filter.until {
        push(&mut sql, "e.time <", either::Bind::Int(to_millis(v)));
    }
    if let Some(v) = filter.before_seq {
        push(&mut sql, "e.seq <", either::Bind::Int(v as i64));
    }
    binds.push(either::Bind::Int(limit.clamp(1, 1000)));
    sql.push_str(&format!(" ORDER BY e.seq DESC LIMIT ${}", binds.len()));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            either::Bind::Text(s) => q.bind(s),
            either::Bind::Int(i) => q.bind(i),
        };
    }
    let rows = q.fetch_all(c).await?;
    rows.iter().map(decode_entry).collect()
}

mod either {
    pub enum Bind {
        Text(String),
        Int(i64),
    }
}

// ----- checkpoints and cosignatures ---------------------------------------

/// Stores a signed checkpoint (JSON). A second one for the same size is ignored.
pub async fn put_checkpoint(c: &mut Conn, size: u64, checkpoint_json: &str, at: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (size, checkpoint, signed_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
    )
    .bind(size as i64)
    .bind(checkpoint_json.to_string())
    .bind(to_millis(at))
    .execute(c)
    .await?;
    Ok(())
}

/// The checkpoint JSON of the largest signed size.
pub async fn latest_checkpoint(c: &mut Conn) -> Result<Option<String>> {
    let row = sqlx::query("SELECT checkpoint FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
        .fetch_optional(c)
        .await?;
    row.map(|r| text(&r, "audit_checkpoints", "checkpoint")).transpose()
}

/// The checkpoint JSON for `size`, if one was signed.
pub async fn checkpoint(c: &mut Conn, size: u64) -> Result<Option<String>> {
    let row = sqlx::query("SELECT checkpoint FROM audit_checkpoints WHERE size = $1")
        .bind(size as i64)
        .fetch_optional(c)
        .await?;
    row.map(|r| text(&r, "audit_checkpoints", "checkpoint")).transpose()
}

/// Every stored checkpoint JSON, smallest size first.
pub async fn checkpoints(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT checkpoint FROM audit_checkpoints ORDER BY size")
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r| text(r, "audit_checkpoints", "checkpoint"))
        .collect()
}

/// Stores a witness's cosignature (replacing an earlier one by the same key for the same size).
pub async fn put_cosignature(
    c: &mut Conn,
    size: u64,
    key_id: &str,
    witness: &str,
    json: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_cosignatures (size, key_id, witness, cosignature, received_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (size, key_id) DO UPDATE SET cosignature = excluded.cosignature, received_at = excluded.received_at",
    )
    .bind(size as i64)
    .bind(key_id.to_string())
    .bind(witness.to_string())
    .bind(json.to_string())
    .bind(to_millis(at))
    .execute(c)
    .await?;
    Ok(())
}

/// The cosignature JSONs of checkpoint `size`.
pub async fn cosignatures(c: &mut Conn, size: u64) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT cosignature FROM audit_cosignatures WHERE size = $1 ORDER BY received_at")
        .bind(size as i64)
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r| text(r, "audit_cosignatures", "cosignature"))
        .collect()
}

// ----- retention --------------------------------------------------------

/// Records that what `tag` names ended at `ended_at`; its payloads are kept until `retain_until`.
pub async fn set_retention(c: &mut Conn, tag: &str, ended_at: Timestamp, retain_until: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_retention (tag, ended_at, retain_until) VALUES ($1, $2, $3) \
         ON CONFLICT (tag) DO UPDATE SET ended_at = excluded.ended_at, retain_until = excluded.retain_until",
    )
    .bind(tag.to_string())
    .bind(to_millis(ended_at))
    .bind(to_millis(retain_until))
    .execute(c)
    .await?;
    Ok(())
}

/// Purges the payloads whose retention ended before `now`: the body is removed, the digest
/// (which the entry commits to) stays. Returns how many payloads were purged.
pub async fn purge_expired(c: &mut Conn, now: Timestamp) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE audit_payloads SET body = NULL, purged_at = $1 WHERE purged_at IS NULL AND seq IN \
         (SELECT e.seq FROM audit_entries e JOIN audit_retention r ON r.tag = e.retention_tag WHERE r.retain_until <= $1)",
    )
    .bind(to_millis(now))
    .execute(c)
    .await?;
    Ok(r.rows_affected())
}
