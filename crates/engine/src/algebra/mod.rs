//! The output algebra: the few shapes of job output whose disclosure shuyu can reason about, and
//! the compiler that admits a developer's SQL only when its planned DataFusion logical plan is
//! one of them — refusing everything else with the rule that refused it.
//!
//! Blocking bad SQL by listing it cannot win (Diffix fell to sub-queries, DataSHIELD to
//! arithmetic); so nothing is blocked here — things are *admitted*:
//! - an **aggregate table**: GROUP BY keys × measures over one relation. Keys are approved,
//!   non-identifying fields or the admitted generalizations of them ([`scalar`]). Measures are
//!   `COUNT(*)`, `COUNT(field)`, `COUNT(DISTINCT <entity key>)`, `SUM`/`AVG` of an admitted
//!   numeric argument, `STDDEV`/`VARIANCE`, the regression family (`regr_slope`,
//!   `regr_intercept`, `regr_r2`, `regr_count`, `corr`, `covar_*`: a statistical model's
//!   output), and a ratio of two of these — scaled by literals, rounded, cast. No `FILTER`, no
//!   `DISTINCT` but the entity's, no `CASE` inside a measure, no arithmetic across measures but
//!   the ratio, no minimum, maximum, median or percentile: each of those returns one person's
//!   value. `HAVING` compares a measure with a constant or filters on keys; `ORDER BY` and
//!   `LIMIT` order and cut the rows;
//! - **record-level rows** ("microdata"): approved, non-identifying fields only, and only where
//!   the manifest's outputs permit microdata; always to human review, k-anonymous by entity.
//!
//! The relation is the scenario's tables, each read through its [`crate::scenario`] view, joined
//! only on the keys that link them (a person's or an enterprise's key on both sides), inner or
//! left; its row predicates use approved non-identifying fields only (a predicate on an
//! identifier is a single-subject query). Table functions and other row multipliers
//! (`generate_series`, `range`, `unnest`, `VALUES`, cross joins) do not exist in a job.
//!
//! A compiled output ([`Admitted`]) is never run as the developer wrote it: [`build`] makes the
//! plan that runs — the same keys, predicates and measures, computed from per-entity partial sums
//! so that every cell's evidence counts people, not rows ([`build::Built`]).

pub(crate) mod build;
pub(crate) mod scalar;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::{Column, DFSchema, DFSchemaRef};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, Operator};
use shuyu_classify::FieldType;
use shuyu_gate::MeasureKind;

use crate::sample::Entity;
use crate::scenario::{RESERVED, View, ViewField};
use scalar::{Lineage, Place, admit, lineage_text};

/// Why an output is refused: a stable rule id and what it names (a field, a function, a table —
/// the developer's own SQL, never a value of the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule (`identifier`, `cross_join`, `order_statistic`, …).
    pub rule: &'static str,
    /// What it names.
    pub subject: String,
    /// Where in the query (key, predicate, measure), when it matters.
    pub place: Option<&'static str>,
}

impl Refusal {
    pub(crate) fn new(rule: &'static str, subject: &str) -> Refusal {
        Refusal {
            rule,
            subject: subject.chars().take(120).collect(),
            place: None,
        }
    }

    pub(crate) fn with_place(mut self, place: &'static str) -> Refusal {
        self.place = Some(place);
        self
    }
}

/// Every rule a refusal may name (each has a message in both languages: tested).
pub const RULES: &[&str] = &[
    "identifier",
    "unknown_table",
    "unknown_column",
    "reserved_name",
    "cross_join",
    "join_key",
    "join_condition",
    "join_type",
    "subquery",
    "nested_aggregate",
    "window",
    "union",
    "row_multiplier",
    "literal_rows",
    "grouping_sets",
    "function",
    "operator",
    "pattern",
    "in_list",
    "parameter",
    "wildcard",
    "aggregate",
    "order_statistic",
    "filtered_aggregate",
    "distinct_aggregate",
    "entity_count",
    "conditional_measure",
    "measure_arithmetic",
    "key_expression",
    "key_not_shown",
    "having",
    "order_by",
    "limit",
    "duplicate_column",
    "record_level",
    "shape",
];

/// How strict the compiler is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A job on full data inside the domain.
    Job {
        /// Whether the manifest's outputs permit record-level rows.
        microdata: bool,
    },
    /// The offline output checker (`shuyu gate check`) on an analyst's own files: as a job,
    /// but order statistics (ACRO checks them by its own rules) and record-level rows are
    /// admitted, each record being its own entity.
    Offline,
}

impl Profile {
    fn microdata(self) -> bool {
        match self {
            Profile::Job { microdata } => microdata,
            Profile::Offline => true,
        }
    }
}

/// One table of the relation, as the query names it.
#[derive(Debug, Clone)]
pub(crate) struct RelTable {
    /// The qualifier its columns carry (the alias, or the table's name).
    pub(crate) qualifier: String,
    /// The table's name in the session.
    pub(crate) table: String,
    /// Its view.
    pub(crate) view: Arc<View>,
}

/// The relation: tables joined on linking keys.
#[derive(Debug, Clone)]
pub(crate) enum Relation {
    /// One table (index into [`Resolver::tables`]).
    Scan(usize),
    /// Two relations joined on key pairs (left column, right column).
    Join {
        left: Box<Relation>,
        right: Box<Relation>,
        kind: JoinType,
        on: Vec<(Column, Column)>,
    },
}

impl Relation {
    fn tables(&self, out: &mut Vec<usize>) {
        match self {
            Relation::Scan(i) => out.push(*i),
            Relation::Join { left, right, .. } => {
                left.tables(out);
                right.tables(out);
            }
        }
    }
}

/// Resolves a plan's columns to the tables and fields of the relation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolver {
    pub(crate) tables: Vec<RelTable>,
}

impl Resolver {
    /// The table (index) and field a column of `schema` is.
    pub(crate) fn field<'a>(&'a self, schema: &DFSchema, c: &Column) -> Result<(usize, &'a ViewField), Refusal> {
        if c.name.starts_with(RESERVED) {
            return Err(Refusal::new("reserved_name", &c.name));
        }
        let i = schema
            .index_of_column(c)
            .map_err(|_| Refusal::new("unknown_column", &c.name))?;
        let (q, f) = schema.qualified_field(i);
        let q = q.map(|q| q.table().to_string()).unwrap_or_default();
        let t = self
            .tables
            .iter()
            .position(|t| t.qualifier == q)
            .ok_or_else(|| Refusal::new("unknown_column", f.name()))?;
        let field = self.tables[t]
            .view
            .field(f.name())
            .ok_or_else(|| Refusal::new("unknown_column", f.name()))?;
        Ok((t, field))
    }
}

/// One group key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// Its expression over the relation.
    pub(crate) expr: Expr,
    /// Its lineage text (source fields and transform; names do not matter).
    pub(crate) lineage: String,
    /// The source types.
    pub(crate) sources: Vec<FieldType>,
}

/// A regression-family function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Regr {
    Slope,
    Intercept,
    R2,
    Count,
    Corr,
    CovarSamp,
    CovarPop,
}

/// What an aggregate computes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AggKind {
    /// `COUNT(*)`.
    Records,
    /// `COUNT(x)`.
    NonNull(Expr),
    /// `COUNT(DISTINCT <key of the relation's entity>)`: the column.
    Entities(Expr),
    /// `SUM(x)`.
    Sum(Expr),
    /// `AVG(x)`.
    Mean(Expr),
    /// Variance or standard deviation of x.
    Spread { arg: Expr, sample: bool, root: bool },
    /// A regression-family function of (y, x).
    Regression { func: Regr, y: Expr, x: Expr },
    /// A minimum, maximum, median or percentile (offline only): the function itself.
    Order(AggregateFunction),
}

impl AggKind {
    /// The gate's family of the measure.
    pub(crate) fn family(&self) -> MeasureKind {
        match self {
            AggKind::Records | AggKind::NonNull(_) | AggKind::Entities(_) => MeasureKind::Count,
            AggKind::Sum(_) | AggKind::Mean(_) => MeasureKind::Linear,
            AggKind::Spread { .. } => MeasureKind::Spread,
            AggKind::Regression { func: Regr::Count, .. } => MeasureKind::Count,
            AggKind::Regression { .. } => MeasureKind::Regression,
            AggKind::Order(_) => MeasureKind::Order,
        }
    }
}

/// One aggregate of the query (shown, or only in HAVING).
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub(crate) kind: AggKind,
    /// The source types its arguments read.
    pub(crate) sources: Vec<FieldType>,
}

/// What one output column is.
#[derive(Debug, Clone)]
pub(crate) enum ColumnRole {
    /// Group key `i`.
    Key(usize),
    /// A measure: the developer's expression over the aggregate's output, the aggregates it
    /// reads, and its family.
    Measure {
        expr: Expr,
        aggregates: Vec<usize>,
        kind: MeasureKind,
    },
    /// A record-level column: its expression over the relation.
    Detail(Expr),
}

/// One output column.
#[derive(Debug, Clone)]
pub(crate) struct OutputColumn {
    pub(crate) name: String,
    pub(crate) role: ColumnRole,
    pub(crate) sources: Vec<FieldType>,
}

/// The admitted shape.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// An aggregate table.
    Table {
        keys: Vec<Key>,
        aggregates: Vec<Aggregate>,
        /// The developer's aggregate output schema (what measure and HAVING expressions refer to).
        agg_schema: DFSchemaRef,
        /// HAVING, over `agg_schema`.
        having: Option<Expr>,
    },
    /// Record-level rows.
    Microdata,
}

/// A job output the gate understands.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    pub(crate) resolver: Resolver,
    pub(crate) relation: Relation,
    /// The relation's schema in the developer's plan (what predicates and keys refer to).
    pub(crate) rel_schema: DFSchemaRef,
    /// Row predicates (WHERE, and the extra conditions of inner joins).
    pub(crate) predicates: Vec<Expr>,
    pub(crate) body: Body,
    pub(crate) columns: Vec<OutputColumn>,
    /// ORDER BY: (output column, ascending, nulls first).
    pub(crate) order: Vec<(usize, bool, bool)>,
    /// LIMIT: (skip, fetch).
    pub(crate) limit: Option<(usize, Option<usize>)>,
}

impl Admitted {
    /// The table whose entity the output's records belong to: the first (leftmost) one whose
    /// dataset has an entity key; `None` when no table has one (each record is its own).
    pub(crate) fn entity_table(&self) -> Option<usize> {
        let mut order = Vec::new();
        self.relation.tables(&mut order);
        order
            .iter()
            .copied()
            .find(|t| self.resolver.tables[*t].view.entity_column.is_some())
            .or(order.first().copied())
    }

    /// The relation's tables, left to right.
    pub(crate) fn tables(&self) -> Vec<usize> {
        let mut order = Vec::new();
        self.relation.tables(&mut order);
        order
    }

    /// Whether the query restricts its groups after aggregating (HAVING, LIMIT).
    pub(crate) fn groups_filtered(&self) -> bool {
        self.limit.is_some() || matches!(&self.body, Body::Table { having: Some(_), .. })
    }

    /// The admitted shape in words, for reviewers (codes; the console translates them).
    pub(crate) fn describe(&self) -> ShapeDescription {
        let tables: Vec<String> = self
            .tables()
            .iter()
            .map(|t| self.resolver.tables[*t].table.clone())
            .collect();
        let (shape, keys, measures) = match &self.body {
            Body::Table { keys, .. } => {
                let model = self.columns.iter().any(|c| {
                    matches!(
                        c.role,
                        ColumnRole::Measure {
                            kind: MeasureKind::Regression,
                            ..
                        }
                    )
                });
                (
                    if model { "model" } else { "table" },
                    keys.iter().map(|k| k.lineage.clone()).collect(),
                    self.columns
                        .iter()
                        .filter(|c| matches!(c.role, ColumnRole::Measure { .. }))
                        .map(|c| c.name.clone())
                        .collect(),
                )
            }
            Body::Microdata => ("microdata", Vec::new(), Vec::new()),
        };
        ShapeDescription {
            shape: shape.to_string(),
            tables,
            keys,
            measures,
            predicates: self
                .predicates
                .iter()
                .map(|p| lineage_text(p, &self.rel_schema, &self.resolver))
                .collect(),
            entity: self
                .entity_table()
                .and_then(|t| self.resolver.tables[t].view.entity)
                .map(|e| match e {
                    Entity::Person => "person",
                    Entity::Enterprise => "enterprise",
                })
                .unwrap_or("record")
                .to_string(),
        }
    }
}

/// An admitted output's shape in words: what reviewers read beside the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ShapeDescription {
    /// `table`, `model` or `microdata`.
    pub shape: String,
    /// The tables read.
    pub tables: Vec<String>,
    /// Each key's lineage (source field and transform).
    pub keys: Vec<String>,
    /// The measure columns.
    pub measures: Vec<String>,
    /// The row predicates, by source field.
    pub predicates: Vec<String>,
    /// Whose records the cells count: `person`, `enterprise` or `record`.
    pub entity: String,
}

/// The views of a session's tables, by table name.
pub(crate) type Catalog = HashMap<String, Arc<View>>;

/// Compiles a planned output into the algebra, or says which rule refuses it.
pub(crate) fn compile(plan: &LogicalPlan, catalog: &Catalog, profile: Profile) -> Result<Admitted, Refusal> {
    // Above the output: ORDER BY and LIMIT.
    let mut node = plan;
    let mut limit = None;
    let mut sort: Option<&datafusion::logical_expr::Sort> = None;
    loop {
        match node {
            LogicalPlan::Limit(l) if limit.is_none() && sort.is_none() => {
                let skip = literal_usize(l.skip.as_deref())?.unwrap_or(0);
                let fetch = literal_usize(l.fetch.as_deref())?;
                limit = Some((skip, fetch));
                node = l.input.as_ref();
            }
            LogicalPlan::Sort(s) if sort.is_none() => {
                if s.fetch.is_some() {
                    return Err(Refusal::new("limit", "LIMIT"));
                }
                sort = Some(s);
                node = s.input.as_ref();
            }
            LogicalPlan::Limit(_) => return Err(Refusal::new("limit", "LIMIT")),
            LogicalPlan::Sort(_) => return Err(Refusal::new("order_by", "ORDER BY")),
            _ => break,
        }
    }
    let mut admitted = match node {
        LogicalPlan::Projection(p) => {
            // ORDER BY on something not shown leaves a projection over the sort: a ranking by a
            // measure nobody checks.
            if matches!(p.input.as_ref(), LogicalPlan::Sort(_)) {
                return Err(Refusal::new("order_by", "ORDER BY"));
            }
            core(p, catalog, profile)?
        }
        LogicalPlan::Distinct(Distinct::All(input)) => match input.as_ref() {
            LogicalPlan::Projection(p) => distinct(p, catalog)?,
            _ => return Err(Refusal::new("shape", "DISTINCT")),
        },
        LogicalPlan::Distinct(Distinct::On(_)) => return Err(Refusal::new("shape", "DISTINCT ON")),
        LogicalPlan::Union(_) => return Err(Refusal::new("union", "UNION")),
        LogicalPlan::Window(_) => return Err(Refusal::new("window", "OVER")),
        other => return Err(refusal_of(other)),
    };
    if let Some(s) = sort {
        let schema = s.input.schema();
        for e in &s.expr {
            let Expr::Column(c) = &e.expr else {
                return Err(Refusal::new("order_by", &expression_name(&e.expr)));
            };
            let i = schema
                .index_of_column(c)
                .map_err(|_| Refusal::new("order_by", &c.name))?;
            admitted.order.push((i, e.asc, e.nulls_first));
        }
    }
    admitted.limit = limit;
    // A group key must be shown: a table's rows are labelled by their keys.
    if let Body::Table { keys, .. } = &admitted.body {
        for (i, key) in keys.iter().enumerate() {
            if !admitted
                .columns
                .iter()
                .any(|c| matches!(c.role, ColumnRole::Key(k) if k == i))
            {
                return Err(Refusal::new("key_not_shown", &key.lineage));
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for c in &admitted.columns {
        if c.name.starts_with(RESERVED) {
            return Err(Refusal::new("reserved_name", &c.name));
        }
        if !names.insert(c.name.clone()) {
            return Err(Refusal::new("duplicate_column", &c.name));
        }
    }
    Ok(admitted)
}

fn literal_usize(e: Option<&Expr>) -> Result<Option<usize>, Refusal> {
    match e {
        None => Ok(None),
        Some(Expr::Literal(v, _)) => {
            if v.is_null() {
                return Ok(None);
            }
            let n: i64 = v
                .to_string()
                .parse()
                .map_err(|_| Refusal::new("limit", &v.to_string()))?;
            usize::try_from(n)
                .map(Some)
                .map_err(|_| Refusal::new("limit", &v.to_string()))
        }
        Some(other) => Err(Refusal::new("limit", &expression_name(other))),
    }
}

/// The relation and its row predicates under a node.
fn relation_of(node: &LogicalPlan, catalog: &Catalog) -> Result<(Resolver, Relation, Vec<Expr>, DFSchemaRef), Refusal> {
    let schema = node.schema().clone();
    let mut predicates = Vec::new();
    let mut n = node;
    while let LogicalPlan::Filter(f) = n {
        split_and(&f.predicate, &mut predicates);
        n = f.input.as_ref();
    }
    let mut resolver = Resolver::default();
    let mut extra = Vec::new();
    let mut relation = relation(n, catalog, &mut resolver, &mut extra)?;
    predicates.extend(extra);
    // A join without keys (FROM a, b WHERE a.k = b.k): its keys are in the predicates.
    let mut rest = Vec::new();
    for p in predicates {
        if let Some((a, b)) = linking_pair(&p, &schema, &resolver)
            && link(&mut relation, &resolver, &a, &b)
        {
            continue;
        }
        rest.push(p);
    }
    if has_unlinked(&relation) {
        return Err(Refusal::new("cross_join", "JOIN"));
    }
    for p in &rest {
        admit(p, Place::Predicate, &schema, &resolver)?;
    }
    Ok((resolver, relation, rest, schema))
}

fn split_and(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::And => {
            split_and(&b.left, out);
            split_and(&b.right, out);
        }
        other => out.push(other.clone()),
    }
}

/// `a = b` between two key columns that may link tables.
fn linking_pair(e: &Expr, schema: &DFSchema, r: &Resolver) -> Option<(Column, Column)> {
    let Expr::BinaryExpr(b) = e else { return None };
    if b.op != Operator::Eq {
        return None;
    }
    let (Expr::Column(x), Expr::Column(y)) = (b.left.as_ref(), b.right.as_ref()) else {
        return None;
    };
    let (tx, fx) = r.field(schema, x).ok()?;
    let (ty, fy) = r.field(schema, y).ok()?;
    (tx != ty && linkable(fx, fy)).then(|| (qualified(r, tx, fx), qualified(r, ty, fy)))
}

fn qualified(r: &Resolver, t: usize, f: &ViewField) -> Column {
    Column::new(Some(r.tables[t].qualifier.clone()), f.name.clone())
}

/// Whether two fields are keys of the same kind of entity (a party id links to either).
fn linkable(a: &ViewField, b: &ViewField) -> bool {
    let party = |f: &ViewField| f.field_type == FieldType::PartyId;
    match (a.entity(), b.entity()) {
        (Some(x), Some(y)) => x == y || party(a) || party(b),
        _ => false,
    }
}

/// Puts a linking pair on the innermost join whose two sides hold one column each.
fn link(rel: &mut Relation, r: &Resolver, a: &Column, b: &Column) -> bool {
    let Relation::Join { left, right, on, kind } = rel else {
        return false;
    };
    if link(left, r, a, b) || link(right, r, a, b) {
        return true;
    }
    // A condition of the WHERE links only an inner join (on an outer one it filters).
    if *kind != JoinType::Inner {
        return false;
    }
    if holds(left, r, a) && holds(right, r, b) {
        on.push((a.clone(), b.clone()));
        true
    } else if holds(left, r, b) && holds(right, r, a) {
        on.push((b.clone(), a.clone()));
        true
    } else {
        false
    }
}

/// Whether a side of a join holds the table a column is qualified by.
fn holds(side: &Relation, r: &Resolver, c: &Column) -> bool {
    let mut t = Vec::new();
    side.tables(&mut t);
    t.iter()
        .any(|i| Some(r.tables[*i].qualifier.as_str()) == c.relation.as_ref().map(|q| q.table()))
}

fn has_unlinked(rel: &Relation) -> bool {
    match rel {
        Relation::Scan(_) => false,
        Relation::Join { left, right, on, .. } => on.is_empty() || has_unlinked(left) || has_unlinked(right),
    }
}

/// The relation under the WHERE: scans of the scenario's tables, joined on linking keys.
fn relation(
    node: &LogicalPlan,
    catalog: &Catalog,
    r: &mut Resolver,
    extra: &mut Vec<Expr>,
) -> Result<Relation, Refusal> {
    match node {
        LogicalPlan::TableScan(scan) => {
            let name = scan.table_name.table().to_string();
            scan_of(&name, &name, catalog, r)
        }
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::TableScan(scan) => scan_of(scan.table_name.table(), a.alias.table(), catalog, r),
            other => Err(refusal_within(other)),
        },
        LogicalPlan::Join(j) => {
            let kind = match j.join_type {
                JoinType::Inner | JoinType::Left => j.join_type,
                JoinType::Right => return Err(Refusal::new("join_type", "RIGHT JOIN")),
                JoinType::Full => return Err(Refusal::new("join_type", "FULL JOIN")),
                _ => return Err(Refusal::new("subquery", "semi/anti join")),
            };
            let left = relation(&j.left, catalog, r, extra)?;
            let right = relation(&j.right, catalog, r, extra)?;
            let schema = j.schema.clone();
            let mut on = Vec::new();
            for (a, b) in &j.on {
                let pair = Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                    Box::new(a.clone()),
                    Operator::Eq,
                    Box::new(b.clone()),
                ));
                match linking_pair(&pair, &schema, r) {
                    Some(p) => on.push(p),
                    None => return Err(join_refusal(&pair, &schema, r)),
                }
            }
            let mut rel = Relation::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                on: Vec::new(),
            };
            if let Relation::Join { on: o, .. } = &mut rel {
                *o = on;
            }
            if let Some(filter) = &j.filter {
                let mut parts = Vec::new();
                split_and(filter, &mut parts);
                for p in parts {
                    // The join's own condition: a key pair across its two sides links them,
                    // whatever the kind of join.
                    if let Some((a, b)) = linking_pair(&p, &schema, r)
                        && let Relation::Join { left, right, on, .. } = &mut rel
                    {
                        if holds(left, r, &a) && holds(right, r, &b) {
                            on.push((a, b));
                            continue;
                        }
                        if holds(left, r, &b) && holds(right, r, &a) {
                            on.push((b, a));
                            continue;
                        }
                    }
                    if kind != JoinType::Inner {
                        return Err(Refusal::new("join_condition", &columns_of(&p, &schema, r)));
                    }
                    if is_column_equality(&p) {
                        return Err(join_refusal(&p, &schema, r));
                    }
                    extra.push(p);
                }
            }
            Ok(rel)
        }
        other => Err(refusal_of(other)),
    }
}

/// The fields an expression names (never its literals, which the developer may have typed data
/// into).
fn columns_of(e: &Expr, schema: &DFSchema, r: &Resolver) -> String {
    let mut names: Vec<String> = e
        .column_refs()
        .into_iter()
        .map(|c| {
            r.field(schema, c)
                .map(|(_, f)| f.name.clone())
                .unwrap_or_else(|_| c.name.clone())
        })
        .collect();
    names.sort();
    names.dedup();
    names.join(", ")
}

fn is_column_equality(e: &Expr) -> bool {
    matches!(e, Expr::BinaryExpr(b) if b.op == Operator::Eq
        && matches!(b.left.as_ref(), Expr::Column(_))
        && matches!(b.right.as_ref(), Expr::Column(_)))
}

/// Why a join condition does not link: names the columns.
fn join_refusal(e: &Expr, schema: &DFSchema, r: &Resolver) -> Refusal {
    if let Expr::BinaryExpr(b) = e
        && let (Expr::Column(x), Expr::Column(y)) = (b.left.as_ref(), b.right.as_ref())
    {
        let name = |c: &Column| {
            r.field(schema, c)
                .map(|(_, f)| f.name.clone())
                .unwrap_or_else(|_| c.name.clone())
        };
        return Refusal::new("join_key", &format!("{} = {}", name(x), name(y)));
    }
    Refusal::new("join_key", "ON")
}

fn scan_of(table: &str, qualifier: &str, catalog: &Catalog, r: &mut Resolver) -> Result<Relation, Refusal> {
    let Some(view) = catalog.get(table) else {
        return Err(Refusal::new("unknown_table", table));
    };
    if r.tables.iter().any(|t| t.qualifier == qualifier) {
        return Err(Refusal::new("duplicate_column", qualifier));
    }
    r.tables.push(RelTable {
        qualifier: qualifier.to_string(),
        table: table.to_string(),
        view: view.clone(),
    });
    Ok(Relation::Scan(r.tables.len() - 1))
}

/// The rule refusing a derived table: what makes its rows, if that is the reason, else a subquery.
fn refusal_within(node: &LogicalPlan) -> Refusal {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = None;
    let _ = node.apply(|n| {
        if matches!(
            n,
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) | LogicalPlan::Unnest(_)
        ) {
            found = Some(refusal_of(n));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found.unwrap_or_else(|| refusal_of(node))
}

/// The rule refusing a node that is not a table, a join or a filter.
fn refusal_of(node: &LogicalPlan) -> Refusal {
    match node {
        LogicalPlan::Values(_) => Refusal::new("literal_rows", "VALUES"),
        LogicalPlan::EmptyRelation(_) => Refusal::new("literal_rows", "SELECT without FROM"),
        LogicalPlan::Unnest(_) => Refusal::new("row_multiplier", "UNNEST"),
        LogicalPlan::Union(_) => Refusal::new("union", "UNION"),
        LogicalPlan::Window(_) => Refusal::new("window", "OVER"),
        LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => Refusal::new("nested_aggregate", "subquery"),
        LogicalPlan::RecursiveQuery(_) => Refusal::new("subquery", "WITH RECURSIVE"),
        _ => Refusal::new("subquery", "subquery"),
    }
}

/// `SELECT … FROM … [WHERE …] [GROUP BY …] [HAVING …]`.
fn core(p: &datafusion::logical_expr::Projection, catalog: &Catalog, profile: Profile) -> Result<Admitted, Refusal> {
    let names: Vec<String> = p.schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut node = p.input.as_ref();
    let mut having = None;
    if let LogicalPlan::Filter(f) = node
        && matches!(f.input.as_ref(), LogicalPlan::Aggregate(_))
    {
        having = Some(f.predicate.clone());
        node = f.input.as_ref();
    }
    let LogicalPlan::Aggregate(agg) = node else {
        if has_aggregate(node) {
            return Err(Refusal::new("nested_aggregate", "subquery"));
        }
        return microdata(p, catalog, profile);
    };
    let (resolver, relation, predicates, rel_schema) = relation_of(&agg.input, catalog)?;
    let mut keys = Vec::with_capacity(agg.group_expr.len());
    for g in &agg.group_expr {
        let lineage = admit(g, Place::Key, &rel_schema, &resolver)?;
        keys.push(Key {
            expr: g.clone(),
            lineage: lineage_text(g, &rel_schema, &resolver),
            sources: lineage.types.into_iter().collect(),
        });
    }
    let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
    for a in &agg.aggr_expr {
        aggregates.push(aggregate(a, &rel_schema, &resolver, &relation, profile)?);
    }
    let n_groups = agg.group_expr.len();
    let agg_schema = agg.schema.clone();
    let mut columns = Vec::with_capacity(p.expr.len());
    for (i, e) in p.expr.iter().enumerate() {
        columns.push(output_column(&names[i], e, &agg_schema, n_groups, &keys, &aggregates)?);
    }
    if let Some(h) = &having {
        check_having(h, &agg_schema, n_groups)?;
    }
    let admitted = Admitted {
        resolver,
        relation,
        rel_schema,
        predicates,
        body: Body::Table {
            keys,
            aggregates,
            agg_schema,
            having,
        },
        columns,
        order: Vec::new(),
        limit: None,
    };
    Ok(admitted)
}

fn has_aggregate(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = false;
    let _ = plan.apply(|n| {
        if matches!(n, LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// `SELECT DISTINCT keys FROM …`: a table of keys without measures.
fn distinct(p: &datafusion::logical_expr::Projection, catalog: &Catalog) -> Result<Admitted, Refusal> {
    let (resolver, relation, predicates, rel_schema) = relation_of(&p.input, catalog)?;
    let mut keys = Vec::with_capacity(p.expr.len());
    let mut columns = Vec::with_capacity(p.expr.len());
    for (i, e) in p.expr.iter().enumerate() {
        let lineage = admit(e, Place::Key, &rel_schema, &resolver)?;
        let sources: Vec<FieldType> = lineage.types.into_iter().collect();
        keys.push(Key {
            expr: strip_alias(e),
            lineage: lineage_text(e, &rel_schema, &resolver),
            sources: sources.clone(),
        });
        columns.push(OutputColumn {
            name: p.schema.field(i).name().clone(),
            role: ColumnRole::Key(i),
            sources,
        });
    }
    // The developer's aggregate schema is that of the keys alone.
    let agg_schema = p.schema.clone();
    Ok(Admitted {
        resolver,
        relation,
        rel_schema,
        predicates,
        body: Body::Table {
            keys,
            aggregates: Vec::new(),
            agg_schema,
            having: None,
        },
        columns,
        order: Vec::new(),
        limit: None,
    })
}

fn strip_alias(e: &Expr) -> Expr {
    match e {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other.clone(),
    }
}

/// Record-level rows, where the profile permits them.
fn microdata(
    p: &datafusion::logical_expr::Projection,
    catalog: &Catalog,
    profile: Profile,
) -> Result<Admitted, Refusal> {
    let (resolver, relation, predicates, rel_schema) = relation_of(&p.input, catalog)?;
    let mut columns = Vec::with_capacity(p.expr.len());
    for (i, e) in p.expr.iter().enumerate() {
        // An identifier is refused by name before the shape is.
        let lineage = admit(e, Place::Key, &rel_schema, &resolver)?;
        columns.push(OutputColumn {
            name: p.schema.field(i).name().clone(),
            role: ColumnRole::Detail(strip_alias(e)),
            sources: lineage.types.into_iter().collect(),
        });
    }
    if !profile.microdata() {
        return Err(Refusal::new("record_level", "SELECT"));
    }
    Ok(Admitted {
        resolver,
        relation,
        rel_schema,
        predicates,
        body: Body::Microdata,
        columns,
        order: Vec::new(),
        limit: None,
    })
}

/// Whether an expression holds a condition (CASE, a comparison, a predicate).
fn conditional(e: &Expr) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = false;
    let _ = e.apply(|x| {
        let cond = match x {
            Expr::Case(_)
            | Expr::Like(_)
            | Expr::SimilarTo(_)
            | Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Between(_)
            | Expr::InList(_) => true,
            Expr::BinaryExpr(b) => matches!(
                b.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::And
                    | Operator::Or
            ),
            Expr::ScalarFunction(f) => matches!(f.func.name(), "nullif" | "coalesce"),
            _ => false,
        };
        if cond {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn aggregate_fn(e: &Expr) -> Option<&AggregateFunction> {
    match e {
        Expr::Alias(a) => aggregate_fn(&a.expr),
        Expr::AggregateFunction(f) => Some(f),
        _ => None,
    }
}

/// Admits one aggregate.
fn aggregate(
    e: &Expr,
    schema: &DFSchema,
    r: &Resolver,
    rel: &Relation,
    profile: Profile,
) -> Result<Aggregate, Refusal> {
    let f = aggregate_fn(e).ok_or_else(|| Refusal::new("aggregate", &expression_name(e)))?;
    let name = f.func.name().to_ascii_lowercase();
    let params = &f.params;
    if params.filter.is_some() {
        return Err(Refusal::new("filtered_aggregate", &name));
    }
    let order_stat = matches!(
        name.as_str(),
        "min"
            | "max"
            | "median"
            | "approx_median"
            | "percentile_cont"
            | "approx_percentile_cont"
            | "approx_percentile_cont_with_weight"
            | "first_value"
            | "last_value"
            | "nth_value"
            | "mode"
    );
    if order_stat {
        if profile == Profile::Offline && !params.distinct && matches!(rel, Relation::Scan(_)) {
            let mut sources = Lineage::default();
            for a in &params.args {
                sources.types.extend(admit(a, Place::Argument, schema, r)?.types);
            }
            return Ok(Aggregate {
                kind: AggKind::Order(f.clone()),
                sources: sources.types.into_iter().collect(),
            });
        }
        return Err(Refusal::new("order_statistic", &name));
    }
    if !params.order_by.is_empty() {
        return Err(Refusal::new("aggregate", &name));
    }
    let args = &params.args;
    let one = |place: Place| -> Result<(Expr, Vec<FieldType>), Refusal> {
        match args.as_slice() {
            [a] => Ok((a.clone(), admit(a, place, schema, r)?.types.into_iter().collect())),
            _ => Err(Refusal::new("aggregate", &name)),
        }
    };
    let kind = match name.as_str() {
        "count" => {
            if params.distinct {
                let [Expr::Column(c)] = args.as_slice() else {
                    return Err(Refusal::new("entity_count", &name));
                };
                let (_, field) = r.field(schema, c)?;
                if field.entity().is_none() {
                    return Err(Refusal::new("entity_count", &field.name));
                }
                return Ok(Aggregate {
                    kind: AggKind::Entities(Expr::Column(c.clone())),
                    sources: vec![field.field_type],
                });
            }
            match args.as_slice() {
                [] => AggKind::Records,
                [Expr::Literal(v, _)] if !v.is_null() => AggKind::Records,
                _ => {
                    // COUNT(x) counts records with a value: x may be any admitted field, but no
                    // condition (COUNT(CASE WHEN … THEN 1 END) hides a subgroup as a SUM would).
                    let [a] = args.as_slice() else {
                        return Err(Refusal::new("aggregate", &name));
                    };
                    if conditional(a) {
                        return Err(Refusal::new("conditional_measure", &name));
                    }
                    // The records with a (linked) key: its value is never read.
                    if let Expr::Column(c) = a
                        && let Ok((_, field)) = r.field(schema, c)
                        && field.entity().is_some()
                    {
                        return Ok(Aggregate {
                            kind: AggKind::NonNull(a.clone()),
                            sources: vec![field.field_type],
                        });
                    }
                    let (a, sources) = one(Place::Key)?;
                    return Ok(Aggregate {
                        kind: AggKind::NonNull(a),
                        sources,
                    });
                }
            }
        }
        _ if params.distinct => return Err(Refusal::new("distinct_aggregate", &name)),
        "sum" | "avg" | "mean" => {
            let (a, sources) = one(Place::Argument)?;
            return Ok(Aggregate {
                kind: if name == "sum" {
                    AggKind::Sum(a)
                } else {
                    AggKind::Mean(a)
                },
                sources,
            });
        }
        "stddev" | "stddev_samp" | "stddev_pop" | "var" | "var_samp" | "var_pop" | "variance" | "var_sample"
        | "var_population" => {
            let (a, sources) = one(Place::Argument)?;
            return Ok(Aggregate {
                kind: AggKind::Spread {
                    arg: a,
                    sample: !name.ends_with("pop") && !name.ends_with("population"),
                    root: name.starts_with("stddev"),
                },
                sources,
            });
        }
        "regr_slope" | "regr_intercept" | "regr_r2" | "regr_count" | "corr" | "covar_samp" | "covar" | "covar_pop" => {
            let [y, x] = args.as_slice() else {
                return Err(Refusal::new("aggregate", &name));
            };
            let mut sources = admit(y, Place::Argument, schema, r)?;
            sources.types.extend(admit(x, Place::Argument, schema, r)?.types);
            let func = match name.as_str() {
                "regr_slope" => Regr::Slope,
                "regr_intercept" => Regr::Intercept,
                "regr_r2" => Regr::R2,
                "regr_count" => Regr::Count,
                "corr" => Regr::Corr,
                "covar_pop" => Regr::CovarPop,
                _ => Regr::CovarSamp,
            };
            return Ok(Aggregate {
                kind: AggKind::Regression {
                    func,
                    y: y.clone(),
                    x: x.clone(),
                },
                sources: sources.types.into_iter().collect(),
            });
        }
        _ => return Err(Refusal::new("aggregate", &name)),
    };
    Ok(Aggregate {
        kind,
        sources: Vec::new(),
    })
}

/// The aggregates an output expression reads: one, or two in a ratio; none for a literal.
fn measure_shape(e: &Expr, schema: &DFSchema, n_groups: usize, keys_seen: &mut bool) -> Result<Vec<usize>, Refusal> {
    let shape = |x: &Expr, seen: &mut bool| measure_shape(x, schema, n_groups, seen);
    match e {
        Expr::Alias(a) => shape(&a.expr, keys_seen),
        Expr::Column(c) => {
            let i = schema
                .index_of_column(c)
                .map_err(|_| Refusal::new("unknown_column", &c.name))?;
            if i < n_groups {
                *keys_seen = true;
                Ok(Vec::new())
            } else {
                Ok(vec![i - n_groups])
            }
        }
        Expr::Literal(..) => Ok(Vec::new()),
        Expr::Cast(c) => shape(&c.expr, keys_seen),
        Expr::TryCast(c) => shape(&c.expr, keys_seen),
        Expr::Negative(x) => shape(x, keys_seen),
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
            ) =>
        {
            let l = shape(&b.left, keys_seen)?;
            let r = shape(&b.right, keys_seen)?;
            match (l.len(), r.len()) {
                (0, _) | (_, 0) => Ok([l, r].concat()),
                (1, 1) if b.op == Operator::Divide => Ok([l, r].concat()),
                _ => Err(Refusal::new("measure_arithmetic", &b.op.to_string())),
            }
        }
        Expr::ScalarFunction(f)
            if matches!(
                f.func.name().to_ascii_lowercase().as_str(),
                "round" | "floor" | "ceil" | "trunc" | "abs"
            ) =>
        {
            let mut out = Vec::new();
            for (i, a) in f.args.iter().enumerate() {
                let s = shape(a, keys_seen)?;
                if i > 0 && !s.is_empty() {
                    return Err(Refusal::new("measure_arithmetic", f.func.name()));
                }
                out.extend(s);
            }
            Ok(out)
        }
        Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Err(Refusal::new("subquery", "subquery")),
        other => Err(Refusal::new("measure_arithmetic", &expression_name(other))),
    }
}

fn expression_name(e: &Expr) -> String {
    match e {
        Expr::ScalarFunction(f) => f.func.name().to_string(),
        Expr::Case(_) => "CASE".into(),
        Expr::BinaryExpr(b) => b.op.to_string(),
        _ => "expression".into(),
    }
}

/// One output column of an aggregate table.
fn output_column(
    name: &str,
    e: &Expr,
    agg_schema: &DFSchema,
    n_groups: usize,
    keys: &[Key],
    aggregates: &[Aggregate],
) -> Result<OutputColumn, Refusal> {
    // A plain reference to a group key is the key.
    if let Expr::Column(c) = strip_alias_ref(e) {
        let i = agg_schema
            .index_of_column(c)
            .map_err(|_| Refusal::new("unknown_column", &c.name))?;
        if i < n_groups {
            return Ok(OutputColumn {
                name: name.to_string(),
                role: ColumnRole::Key(i),
                sources: keys[i].sources.clone(),
            });
        }
    }
    let mut keys_seen = false;
    let mut aggs = measure_shape(e, agg_schema, n_groups, &mut keys_seen)?;
    if keys_seen {
        return Err(Refusal::new("key_expression", name));
    }
    if aggs.is_empty() {
        return Err(Refusal::new("key_expression", name));
    }
    aggs.dedup();
    let kind = aggs
        .iter()
        .map(|a| aggregates[*a].kind.family())
        .max_by_key(|k| severity(*k))
        .unwrap_or(MeasureKind::Other);
    let mut sources: Vec<FieldType> = aggs.iter().flat_map(|a| aggregates[*a].sources.clone()).collect();
    sources.sort();
    sources.dedup();
    Ok(OutputColumn {
        name: name.to_string(),
        role: ColumnRole::Measure {
            expr: e.clone(),
            aggregates: aggs,
            kind,
        },
        sources,
    })
}

fn strip_alias_ref(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_alias_ref(&a.expr),
        other => other,
    }
}

/// How severe a family is for the checks, to pick one for a column mixing two.
fn severity(k: MeasureKind) -> u8 {
    match k {
        MeasureKind::Listing => 6,
        MeasureKind::Order => 5,
        MeasureKind::Linear => 4,
        MeasureKind::Regression => 3,
        MeasureKind::Spread => 2,
        MeasureKind::Other => 1,
        MeasureKind::Count => 0,
    }
}

/// HAVING: measures compared with constants, and conditions on the keys.
fn check_having(e: &Expr, schema: &DFSchema, n_groups: usize) -> Result<(), Refusal> {
    match e {
        Expr::BinaryExpr(b) if matches!(b.op, Operator::And | Operator::Or) => {
            check_having(&b.left, schema, n_groups)?;
            check_having(&b.right, schema, n_groups)
        }
        Expr::Not(x) => check_having(x, schema, n_groups),
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) =>
        {
            let mut lk = false;
            let mut rk = false;
            let l = measure_shape(&b.left, schema, n_groups, &mut lk)?;
            let r = measure_shape(&b.right, schema, n_groups, &mut rk)?;
            // One side a measure or a key, the other a constant.
            let constant = |s: &Vec<usize>, k: bool| s.is_empty() && !k;
            if constant(&l, lk) || constant(&r, rk) {
                Ok(())
            } else {
                Err(Refusal::new("having", &b.op.to_string()))
            }
        }
        Expr::Between(b) => {
            let mut k = false;
            measure_shape(&b.expr, schema, n_groups, &mut k)?;
            let mut lk = false;
            let mut hk = false;
            let (l, h) = (
                measure_shape(&b.low, schema, n_groups, &mut lk)?,
                measure_shape(&b.high, schema, n_groups, &mut hk)?,
            );
            if l.is_empty() && h.is_empty() && !lk && !hk {
                Ok(())
            } else {
                Err(Refusal::new("having", "BETWEEN"))
            }
        }
        Expr::IsNull(x) | Expr::IsNotNull(x) => {
            let mut k = false;
            measure_shape(x, schema, n_groups, &mut k).map(|_| ())
        }
        _ => Err(Refusal::new("having", &expression_name(e))),
    }
}
