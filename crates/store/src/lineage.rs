//! The lineage graph (监管溯源, R-31): typed nodes (dataset version, sample,
//! job, output, release, product, API call, destruction certificate) and the
//! derivations between them. Edges are written by the log writer together with
//! the audit entry that records them, so the graph is as trustworthy as the log.

use sqlx::Row;

use crate::row::{int, text};
use crate::{Conn, Result};

/// A node: its kind and the id of the thing it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRef {
    /// `dataset_version`, `sample`, `job`, `output`, `release`, `product`, `api_call`, `destruction`, …
    pub kind: String,
    /// The id of the thing.
    pub id: String,
}

impl NodeRef {
    /// A node reference.
    pub fn new(kind: &str, id: impl Into<String>) -> Self {
        NodeRef {
            kind: kind.to_string(),
            id: id.into(),
        }
    }

    /// The stored key, `kind:id`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }

    /// Parses `kind:id`.
    pub fn parse(s: &str) -> Option<NodeRef> {
        let (kind, id) = s.split_once(':')?;
        (!kind.is_empty() && !id.is_empty()).then(|| NodeRef::new(kind, id))
    }
}

/// "`to` derives from `from`" (e.g. a sample from a dataset version), by `relation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The source.
    pub from: NodeRef,
    /// The derived thing.
    pub to: NodeRef,
    /// How (`sampled_from`, `computed_by`, `released_as`, …).
    pub relation: String,
}

async fn ensure_node(c: &mut Conn, n: &NodeRef, seq: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO lineage_nodes (id, kind, ref_id, first_seq) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(n.key())
    .bind(n.kind.clone())
    .bind(n.id.clone())
    .bind(seq)
    .execute(c)
    .await?;
    Ok(())
}

pub(crate) async fn insert_edge(c: &mut Conn, l: &Link, seq: i64) -> Result<()> {
    ensure_node(&mut *c, &l.from, seq).await?;
    ensure_node(&mut *c, &l.to, seq).await?;
    sqlx::query(
        "INSERT INTO lineage_edges (src, dst, relation, seq) VALUES ($1, $2, $3, $4) ON CONFLICT (src, dst, relation) DO NOTHING",
    )
    .bind(l.from.key())
    .bind(l.to.key())
    .bind(l.relation.clone())
    .bind(seq)
    .execute(c)
    .await?;
    Ok(())
}

/// One edge reached by a traversal, with its distance from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The edge's source.
    pub from: NodeRef,
    /// The edge's target.
    pub to: NodeRef,
    /// The relation.
    pub relation: String,
    /// The audit entry that recorded the edge.
    pub seq: u64,
    /// Steps from the start node.
    pub depth: u32,
}

async fn walk(c: &mut Conn, start: &NodeRef, forward: bool, max_depth: u32) -> Result<Vec<Reached>> {
    // Recursive CTE (SQLite and PostgreSQL): follow edges away from (or towards) the start.
    let (next_col, join) = if forward {
        ("dst", "e.src = w.node")
    } else {
        ("src", "e.dst = w.node")
    };
    let sql = format!(
        "WITH RECURSIVE w(node, depth) AS ( \
             SELECT $1, 0 \
             UNION \
             SELECT e.{next_col}, w.depth + 1 FROM lineage_edges e JOIN w ON {join} WHERE w.depth < $2 \
         ) \
         SELECT DISTINCT e.src AS src, e.dst AS dst, e.relation AS relation, e.seq AS seq, w.depth + 1 AS depth \
         FROM w JOIN lineage_edges e ON {join} WHERE w.depth < $2 ORDER BY depth, seq, src, dst, relation"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(start.key())
        .bind(i64::from(max_depth))
        .fetch_all(c)
        .await?;
    let mut out: Vec<Reached> = Vec::new();
    for r in rows {
        let (src, dst) = (text(&r, "lineage_edges", "src")?, text(&r, "lineage_edges", "dst")?);
        let (Some(from), Some(to)) = (NodeRef::parse(&src), NodeRef::parse(&dst)) else {
            continue;
        };
        let relation = text(&r, "lineage_edges", "relation")?;
        let seq = int(&r, "lineage_edges", "seq")? as u64;
        let depth = r.try_get::<i64, _>("depth")? as u32;
        // The same edge reached at several depths is reported once, at its nearest.
        if !out
            .iter()
            .any(|x| x.from == from && x.to == to && x.relation == relation)
        {
            out.push(Reached {
                from,
                to,
                relation,
                seq,
                depth,
            });
        }
    }
    Ok(out)
}

/// Everything that derives from `start`, transitively (at most `max_depth` steps).
pub async fn derived(c: &mut Conn, start: &NodeRef, max_depth: u32) -> Result<Vec<Reached>> {
    walk(c, start, true, max_depth).await
}

/// Everything `start` comes from, transitively (at most `max_depth` steps).
pub async fn sources(c: &mut Conn, start: &NodeRef, max_depth: u32) -> Result<Vec<Reached>> {
    walk(c, start, false, max_depth).await
}
