//! The plan that runs an admitted output: built from the [`Admitted`] algebra, never from the
//! developer's plan, so nothing the compiler did not understand can run.
//!
//! An aggregate table is computed in two steps, so that every cell's evidence counts entities:
//! 1. per (cell, entity) — the group keys plus the hidden entity column — the records, a
//!    fingerprint of which rows they are (XOR of the rows' keyed identities), and for each
//!    measure argument its sum, count and sum of squares; for regressions the sums of the pairs;
//! 2. per cell, from those partial sums: the measures the developer asked for (a mean is the sum
//!    of sums over the sum of counts, a variance or a regression slope from the sums of squares
//!    and products, exactly as SQL defines them) and, riding along in hidden columns, the
//!    evidence: entities, records, and for each argument the contributing entities (non-null,
//!    non-zero), the sum of the per-entity totals, the largest, the two largest, the negatives.
//!
//! Step 1's rows are the output's **members**: which entities, with which rows, are behind each
//! cell — what the disclosure ledger compares releases by. Divisions in a measure are guarded (a
//! zero denominator gives null, not an error that would tell a zero).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::Result as DfResult;
use datafusion::functions::expr_fn::{nullif, sqrt};
use datafusion::functions_aggregate::expr_fn::{bit_xor, count, max, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, SortExpr, Volatility,
    cast as cast_expr, create_udaf, lit, when,
};
use datafusion::prelude::SessionContext;
use shuyu_gate::output::cell_text;
use shuyu_gate::{Cell, Column as GateColumn, Contribution, MicrodataEvidence, Output, Role, Shape, TableEvidence};

use super::{Admitted, AggKind, Body, ColumnRole, Regr, Relation};
use crate::EngineError;
use crate::scenario::{ENTITY, ROW};
use crate::sql::df;

/// What running an admitted output produced.
pub(crate) struct Built {
    /// The output and its evidence.
    pub(crate) output: Output,
    /// Per (cell, entity): keys (as text), the entity, its records and their rows' fingerprint.
    pub(crate) members: Option<RecordBatch>,
}

fn c(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

fn f64_of(e: Expr) -> Expr {
    cast_expr(e, DataType::Float64)
}

fn zero_to_null(e: Expr) -> Expr {
    nullif(e, lit(ScalarValue::Int64(Some(0))))
}

fn counted(cond: Expr) -> DfResult<Expr> {
    Ok(sum(when(cond, lit(1i64)).otherwise(lit(0i64))?))
}

/// The relation as a plan over the session's tables (the engine's providers).
async fn relation(ctx: &SessionContext, a: &Admitted, rel: &Relation) -> Result<LogicalPlanBuilder, EngineError> {
    match rel {
        Relation::Scan(i) => {
            let t = &a.resolver.tables[*i];
            let provider = ctx.table_provider(t.table.as_str()).await.map_err(df)?;
            let mut b = LogicalPlanBuilder::scan(t.table.as_str(), provider_as_source(provider), None).map_err(df)?;
            if t.qualifier != t.table {
                b = b.alias(t.qualifier.as_str()).map_err(df)?;
            }
            Ok(b)
        }
        Relation::Join { left, right, kind, on } => {
            let l = Box::pin(relation(ctx, a, left)).await?;
            let r = Box::pin(relation(ctx, a, right)).await?.build().map_err(df)?;
            let (lk, rk): (Vec<Column>, Vec<Column>) = on.iter().cloned().unzip();
            l.join(r, *kind, (lk, rk), None).map_err(df)
        }
    }
}

/// The relation with its row predicates.
async fn base(ctx: &SessionContext, a: &Admitted) -> Result<LogicalPlanBuilder, EngineError> {
    let mut b = relation(ctx, a, &a.relation).await?;
    if let Some(p) = a.predicates.iter().cloned().reduce(Expr::and) {
        b = b.filter(p).map_err(df)?;
    }
    Ok(b)
}

/// The hidden column of a table of the relation.
fn hidden(a: &Admitted, table: usize, name: &str) -> Expr {
    Expr::Column(Column::new(Some(a.resolver.tables[table].qualifier.clone()), name))
}

/// One measure argument's partial sums.
struct Slot {
    arg: Expr,
    sum: bool,
    squares: bool,
}

/// Runs an admitted output in `ctx` (whose tables are the engine's providers of the same views).
pub(crate) async fn run(
    ctx: &SessionContext,
    a: &Admitted,
    name: &str,
    max_enumerated: usize,
) -> Result<Built, EngineError> {
    match &a.body {
        Body::Microdata => microdata(ctx, a, name).await,
        Body::Table { .. } => table(ctx, a, name, max_enumerated).await,
    }
}

async fn microdata(ctx: &SessionContext, a: &Admitted, name: &str) -> Result<Built, EngineError> {
    let entity_table = a
        .entity_table()
        .ok_or_else(|| EngineError::Task("no table in the relation".into()))?;
    let mut exprs: Vec<Expr> = Vec::with_capacity(a.columns.len() + 1);
    for col in &a.columns {
        let ColumnRole::Detail(e) = &col.role else {
            return Err(EngineError::Task("a record-level column that is not a detail".into()));
        };
        exprs.push(e.clone().alias(&col.name));
    }
    exprs.push(hidden(a, entity_table, ENTITY).alias("__ev_ent"));
    let mut b = base(ctx, a).await?.project(exprs).map_err(df)?;
    b = order_and_limit(b, a)?;
    let plan = b.build().map_err(df)?;
    let all = collect(ctx, plan).await?;
    let width = a.columns.len();
    let out = all.project(&(0..width).collect::<Vec<_>>())?;
    let ent = all.column(width);
    let ent = cast(ent, &DataType::Int64)?;
    let ent = ent.as_primitive::<arrow::datatypes::Int64Type>();
    let entities = (0..ent.len())
        .map(|i| {
            if ent.is_null(i) {
                u64::MAX - i as u64
            } else {
                ent.value(i) as u64
            }
        })
        .collect();
    let columns = a
        .columns
        .iter()
        .map(|col| GateColumn {
            name: col.name.clone(),
            role: Role::Detail,
            sources: col.sources.clone(),
        })
        .collect();
    Ok(Built {
        output: Output::new(name, out, columns, Shape::Microdata(MicrodataEvidence { entities })),
        members: None,
    })
}

fn order_and_limit(mut b: LogicalPlanBuilder, a: &Admitted) -> Result<LogicalPlanBuilder, EngineError> {
    if !a.order.is_empty() {
        let sorts: Vec<SortExpr> = a
            .order
            .iter()
            .filter_map(|(i, asc, nulls_first)| a.columns.get(*i).map(|col| c(&col.name).sort(*asc, *nulls_first)))
            .collect();
        b = b.sort(sorts).map_err(df)?;
    }
    if let Some((skip, fetch)) = a.limit {
        b = b.limit(skip, fetch).map_err(df)?;
    }
    Ok(b)
}

async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> Result<RecordBatch, EngineError> {
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let batches = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(df)?
        .collect()
        .await
        .map_err(df)?;
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    Ok(concat_batches(&schema, &batches)?)
}

async fn table(ctx: &SessionContext, a: &Admitted, name: &str, max_enumerated: usize) -> Result<Built, EngineError> {
    let Body::Table {
        keys,
        aggregates,
        agg_schema,
        having,
    } = &a.body
    else {
        return Err(EngineError::Task("not a table".into()));
    };
    let entity_table = a
        .entity_table()
        .ok_or_else(|| EngineError::Task("no table in the relation".into()))?;
    let n_keys = keys.len();
    // The slots: one per distinct measure argument.
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of: Vec<Option<usize>> = Vec::with_capacity(aggregates.len());
    for g in aggregates {
        let (arg, needs_sum, squares) = match &g.kind {
            AggKind::Sum(x) | AggKind::Mean(x) => (Some(x), true, false),
            AggKind::NonNull(x) => (Some(x), false, false),
            AggKind::Spread { arg, .. } => (Some(arg), true, true),
            _ => (None, false, false),
        };
        slot_of.push(arg.map(|x| {
            let key = x.to_string();
            match slots.iter().position(|s| s.arg.to_string() == key) {
                Some(i) => {
                    slots[i].sum |= needs_sum;
                    slots[i].squares |= squares;
                    i
                }
                None => {
                    slots.push(Slot {
                        arg: x.clone(),
                        sum: needs_sum,
                        squares,
                    });
                    slots.len() - 1
                }
            }
        }));
    }
    // Step 1: per (cell, entity).
    let mut group: Vec<Expr> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.expr.clone().alias(format!("__k{i}")))
        .collect();
    group.push(hidden(a, entity_table, ENTITY).alias("__ent"));
    let fingerprint = a
        .tables()
        .into_iter()
        .map(|t| hidden(a, t, ROW))
        .reduce(|x, y| Expr::BinaryExpr(BinaryExpr::new(Box::new(x), Operator::BitwiseXor, Box::new(y))))
        .ok_or_else(|| EngineError::Task("no table in the relation".into()))?;
    let mut inner: Vec<Expr> = vec![count(lit(1i64)).alias("__r"), bit_xor(fingerprint).alias("__fp")];
    for (j, s) in slots.iter().enumerate() {
        inner.push(count(s.arg.clone()).alias(format!("__c{j}")));
        if s.sum {
            inner.push(sum(s.arg.clone()).alias(format!("__s{j}")));
        }
        if s.squares {
            let v = f64_of(s.arg.clone());
            inner.push(sum(v.clone() * v).alias(format!("__q{j}")));
        }
    }
    for (i, g) in aggregates.iter().enumerate() {
        match &g.kind {
            AggKind::Entities(col) => inner.push(count(col.clone()).alias(format!("__d{i}"))),
            AggKind::Regression { y, x, .. } => {
                let both = y.clone().is_not_null().and(x.clone().is_not_null());
                let (fy, fx) = (f64_of(y.clone()), f64_of(x.clone()));
                let only =
                    |v: Expr| -> DfResult<Expr> { when(both.clone(), v).otherwise(lit(ScalarValue::Float64(None))) };
                inner.push(counted(both.clone()).map_err(df)?.alias(format!("__pn{i}")));
                inner.push(sum(only(fx.clone()).map_err(df)?).alias(format!("__px{i}")));
                inner.push(sum(only(fy.clone()).map_err(df)?).alias(format!("__py{i}")));
                inner.push(sum(only(fx.clone() * fx.clone()).map_err(df)?).alias(format!("__pxx{i}")));
                inner.push(sum(only(fx.clone() * fy.clone()).map_err(df)?).alias(format!("__pxy{i}")));
                inner.push(sum(only(fy.clone() * fy).map_err(df)?).alias(format!("__pyy{i}")));
            }
            AggKind::Order(f) => {
                let arg = f
                    .params
                    .args
                    .first()
                    .cloned()
                    .ok_or_else(|| EngineError::Task("an order statistic without argument".into()))?;
                inner.push(max(arg).alias(format!("__o{i}")));
            }
            _ => {}
        }
    }
    let inner_plan = base(ctx, a)
        .await?
        .aggregate(group, inner)
        .map_err(df)?
        .build()
        .map_err(df)?;
    let inner_schema = Arc::new(inner_plan.schema().as_arrow().clone());
    let members = ctx
        .execute_logical_plan(inner_plan)
        .await
        .map_err(df)?
        .collect()
        .await
        .map_err(df)?;
    let members_schema = members.first().map(|b| b.schema()).unwrap_or(inner_schema);
    // Step 2: per cell.
    // Two partitions, so the per-cell aggregate uses both cores too.
    let mut first_half = members.clone();
    let second_half = first_half.split_off(members.len().div_ceil(2));
    let source = MemTable::try_new(members_schema.clone(), vec![first_half, second_half]).map_err(df)?;
    let mut outer_group: Vec<Expr> = (0..n_keys).map(|i| c(&format!("__k{i}"))).collect();
    if n_keys == 0 {
        outer_group.clear();
    }
    let mut outer: Vec<Expr> = vec![count(lit(1i64)).alias("__E"), sum(c("__r")).alias("__R")];
    for (j, s) in slots.iter().enumerate() {
        let present = if s.sum {
            c(&format!("__s{j}"))
        } else {
            zero_to_null(c(&format!("__c{j}")))
        };
        let v = f64_of(present.clone());
        outer.push(count(present.clone()).alias(format!("__n{j}")));
        outer.push(
            counted(v.clone().not_eq(lit(0f64)))
                .map_err(df)?
                .alias(format!("__nz{j}")),
        );
        outer.push(sum(v.clone()).alias(format!("__S{j}")));
        outer.push(max(v.clone()).alias(format!("__M{j}")));
        outer.push(top2().call(vec![v.clone()]).alias(format!("__T{j}")));
        outer.push(counted(v.lt(lit(0f64))).map_err(df)?.alias(format!("__N{j}")));
        outer.push(sum(c(&format!("__c{j}"))).alias(format!("__C{j}")));
        if s.sum {
            outer.push(sum(c(&format!("__s{j}"))).alias(format!("__U{j}")));
        }
        if s.squares {
            outer.push(sum(c(&format!("__q{j}"))).alias(format!("__Q{j}")));
        }
    }
    for (i, g) in aggregates.iter().enumerate() {
        match &g.kind {
            AggKind::Entities(_) => outer.push(
                counted(c(&format!("__d{i}")).gt(lit(0i64)))
                    .map_err(df)?
                    .alias(format!("__D{i}")),
            ),
            AggKind::Regression { .. } => {
                for p in ["pn", "px", "py", "pxx", "pxy", "pyy"] {
                    outer.push(sum(c(&format!("__{p}{i}"))).alias(format!("__{}{i}", p.to_uppercase())));
                }
                outer.push(
                    counted(c(&format!("__pn{i}")).gt(lit(0i64)))
                        .map_err(df)?
                        .alias(format!("__PE{i}")),
                );
            }
            AggKind::Order(f) => {
                let mut g = f.clone();
                if let Some(first) = g.params.args.first_mut() {
                    *first = c(&format!("__o{i}"));
                }
                outer.push(Expr::AggregateFunction(g).alias(format!("__O{i}")));
            }
            _ => {}
        }
    }
    let mut b = LogicalPlanBuilder::scan("__members", provider_as_source(Arc::new(source)), None)
        .map_err(df)?
        .aggregate(outer_group, outer)
        .map_err(df)?;
    // The measures, from the partial sums.
    let value = |i: usize| -> Result<Expr, EngineError> { measure_value(&aggregates[i].kind, i, slot_of[i]) };
    let rewrite = |e: &Expr| -> Result<Expr, EngineError> { rewrite_over_aggregate(e, agg_schema, n_keys, &value) };
    if let Some(h) = having {
        b = b.filter(rewrite(h)?).map_err(df)?;
    }
    let mut exprs: Vec<Expr> = Vec::with_capacity(a.columns.len() + 8);
    for col in &a.columns {
        let e = match &col.role {
            ColumnRole::Key(i) => c(&format!("__k{i}")),
            ColumnRole::Measure { expr, .. } => guard_divisions(rewrite(expr)?)?,
            ColumnRole::Detail(_) => return Err(EngineError::Task("a detail column in a table".into())),
        };
        exprs.push(e.alias(&col.name));
    }
    let width = exprs.len();
    let mut evidence = vec![c("__E").alias("__ev_E"), c("__R").alias("__ev_R")];
    for j in 0..slots.len() {
        for p in ["n", "nz", "S", "M", "T", "N"] {
            evidence.push(c(&format!("__{p}{j}")).alias(format!("__ev_{p}{j}")));
        }
    }
    let regressions: Vec<usize> = aggregates
        .iter()
        .enumerate()
        .filter(|(_, g)| matches!(g.kind, AggKind::Regression { .. }))
        .map(|(i, _)| i)
        .collect();
    for i in &regressions {
        evidence.push(c(&format!("__PN{i}")).alias(format!("__ev_PN{i}")));
        evidence.push(c(&format!("__PE{i}")).alias(format!("__ev_PE{i}")));
    }
    exprs.extend(evidence);
    b = b.project(exprs).map_err(df)?;
    b = order_and_limit(b, a)?;
    let all = collect(ctx, b.build().map_err(df)?).await?;
    let out = all.project(&(0..width).collect::<Vec<_>>())?;
    let stats = all.project(&(width..all.num_columns()).collect::<Vec<_>>())?;
    let floats: Vec<ArrayRef> = (0..stats.num_columns())
        .map(|i| cast(stats.column(i), &DataType::Float64))
        .collect::<Result<_, _>>()?;
    let value_at = |col: usize, row: usize| -> Option<f64> {
        let a = floats.get(col)?.as_primitive::<Float64Type>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let key_columns: Vec<usize> = a
        .columns
        .iter()
        .enumerate()
        .filter(|(_, col)| matches!(col.role, ColumnRole::Key(_)))
        .map(|(i, _)| i)
        .collect();
    let regression_base = 2 + 6 * slots.len();
    let mut cells = Vec::with_capacity(out.num_rows());
    for row in 0..out.num_rows() {
        let key = key_columns
            .iter()
            .map(|k| cell_text(out.column(*k), row).unwrap_or_default())
            .collect();
        let contributions = (0..slots.len())
            .map(|j| {
                let at = |p: usize| value_at(2 + 6 * j + p, row);
                Contribution {
                    n: at(0).unwrap_or(0.0) as u64,
                    nonzero: at(1).unwrap_or(0.0) as u64,
                    sum: at(2).unwrap_or(0.0),
                    largest: at(3).unwrap_or(0.0),
                    top2: at(4).unwrap_or(0.0),
                    negatives: at(5).unwrap_or(0.0) as u64,
                }
            })
            .collect();
        let residual_dof = (0..regressions.len())
            .filter_map(|r| {
                let pairs = value_at(regression_base + 2 * r, row)?;
                let entities = value_at(regression_base + 2 * r + 1, row)?;
                Some(pairs.min(entities) as i64 - 2)
            })
            .min();
        cells.push(Cell {
            key,
            row: Some(row),
            records: value_at(1, row).unwrap_or(0.0) as u64,
            entities: value_at(0, row).unwrap_or(0.0) as u64,
            contributions,
            residual_dof,
        });
    }
    let groups_filtered = a.groups_filtered();
    let zeros_enumerated = if key_columns.len() < 2 {
        true
    } else if groups_filtered {
        false
    } else {
        enumerate_zeros(&mut cells, key_columns.len(), max_enumerated)
    };
    let columns = a
        .columns
        .iter()
        .map(|col| GateColumn {
            name: col.name.clone(),
            role: match &col.role {
                ColumnRole::Key(_) | ColumnRole::Detail(_) => Role::Key,
                ColumnRole::Measure {
                    aggregates: aggs, kind, ..
                } => Role::Measure {
                    kind: *kind,
                    slots: {
                        let mut s: Vec<usize> = aggs.iter().filter_map(|g| slot_of[*g]).collect();
                        s.dedup();
                        s
                    },
                },
            },
            sources: col.sources.clone(),
        })
        .collect();
    let members = members_table(&members, n_keys)?;
    Ok(Built {
        output: Output::new(
            name,
            out,
            columns,
            Shape::Table(TableEvidence {
                cells,
                zeros_enumerated,
                groups_filtered,
                rounded: None,
            }),
        ),
        members: Some(members),
    })
}

/// The members as stored: keys as text, entity, records, fingerprint.
fn members_table(batches: &[RecordBatch], n_keys: usize) -> Result<RecordBatch, EngineError> {
    let mut fields = Vec::with_capacity(n_keys + 3);
    for i in 0..n_keys {
        fields.push(Field::new(format!("k{i}"), DataType::Utf8, true));
    }
    fields.push(Field::new("entity", DataType::Int64, true));
    fields.push(Field::new("records", DataType::Int64, true));
    fields.push(Field::new("fingerprint", DataType::Int64, true));
    let schema = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(n_keys + 3);
        for i in 0..n_keys {
            arrays.push(key_text(b.column(i))?);
        }
        for (name, t) in [
            ("__ent", DataType::Int64),
            ("__r", DataType::Int64),
            ("__fp", DataType::Int64),
        ] {
            let col = b
                .column_by_name(name)
                .ok_or_else(|| EngineError::Task(format!("no {name} among the members")))?;
            arrays.push(cast(col, &t)?);
        }
        out.push(RecordBatch::try_new(schema.clone(), arrays)?);
    }
    Ok(concat_batches(&schema, &out)?)
}

/// A key column as the canonical text of its values ([`cell_text`]). Text and integers print
/// the same either way, so those are cast as whole columns; other types go value by value.
fn key_text(k: &ArrayRef) -> Result<ArrayRef, EngineError> {
    Ok(match k.data_type() {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => cast(k, &DataType::Utf8)?,
        _ => Arc::new(
            (0..k.len())
                .map(|r| cell_text(k, r))
                .collect::<arrow::array::StringArray>(),
        ),
    })
}

/// The value of aggregate `i` from the per-cell partial sums.
fn measure_value(kind: &AggKind, i: usize, slot: Option<usize>) -> Result<Expr, EngineError> {
    let s = |p: &str| -> Result<Expr, EngineError> {
        let j = slot.ok_or_else(|| EngineError::Task("a measure without its argument".into()))?;
        Ok(c(&format!("__{p}{j}")))
    };
    let fz = |e: Expr| nullif(e, lit(0f64));
    Ok(match kind {
        AggKind::Records => c("__R"),
        AggKind::NonNull(_) => s("C")?,
        AggKind::Entities(_) => c(&format!("__D{i}")),
        AggKind::Sum(_) => s("U")?,
        AggKind::Mean(_) => f64_of(s("U")?) / fz(f64_of(s("C")?)),
        AggKind::Spread { sample, root, .. } => {
            let n = f64_of(s("C")?);
            let total = f64_of(s("U")?);
            let squares = f64_of(s("Q")?);
            let den = if *sample { n.clone() - lit(1f64) } else { n.clone() };
            let var = (squares - total.clone() * total / fz(n)) / fz(den);
            if *root {
                sqrt(when(var.clone().lt(lit(0f64)), lit(0f64)).otherwise(var).map_err(df)?)
            } else {
                var
            }
        }
        AggKind::Regression { func, .. } => {
            let v = |p: &str| f64_of(c(&format!("__{p}{i}")));
            let (n, sx, sy, sxx, sxy, syy) = (v("PN"), v("PX"), v("PY"), v("PXX"), v("PXY"), v("PYY"));
            let dxx = n.clone() * sxx - sx.clone() * sx.clone();
            let dxy = n.clone() * sxy.clone() - sx.clone() * sy.clone();
            let dyy = n.clone() * syy - sy.clone() * sy.clone();
            match func {
                Regr::Count => c(&format!("__PN{i}")),
                Regr::Slope => dxy / fz(dxx),
                Regr::Intercept => (sy - (dxy / fz(dxx)) * sx) / fz(n),
                Regr::R2 => (dxy.clone() * dxy) / fz(dxx * dyy),
                Regr::Corr => dxy / fz(sqrt(dxx * dyy)),
                Regr::CovarSamp => (sxy - sx * sy / fz(n.clone())) / fz(n - lit(1f64)),
                Regr::CovarPop => (sxy - sx * sy / fz(n.clone())) / fz(n),
            }
        }
        AggKind::Order(_) => c(&format!("__O{i}")),
    })
}

/// The developer's expression over the aggregate's output, over the per-cell partial sums.
fn rewrite_over_aggregate(
    e: &Expr,
    schema: &DFSchema,
    n_keys: usize,
    value: &dyn Fn(usize) -> Result<Expr, EngineError>,
) -> Result<Expr, EngineError> {
    let mut failure: Option<EngineError> = None;
    let out = e
        .clone()
        .transform_up(|x| {
            Ok(match x {
                Expr::Column(col) => match schema.index_of_column(&col) {
                    Ok(i) if i < n_keys => Transformed::yes(c(&format!("__k{i}"))),
                    Ok(i) => match value(i - n_keys) {
                        Ok(v) => Transformed::yes(v),
                        Err(err) => {
                            failure = Some(err);
                            Transformed::no(Expr::Column(col))
                        }
                    },
                    Err(_) => Transformed::no(Expr::Column(col)),
                },
                Expr::Alias(a) => Transformed::yes(*a.expr),
                other => Transformed::no(other),
            })
        })
        .map_err(df)?;
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(out.data)
}

/// Every division (and remainder) by zero gives null rather than an error.
fn guard_divisions(e: Expr) -> Result<Expr, EngineError> {
    Ok(e.transform_up(|x| {
        Ok(match x {
            Expr::BinaryExpr(b) if matches!(b.op, Operator::Divide | Operator::Modulo) => Transformed::yes(
                Expr::BinaryExpr(BinaryExpr::new(b.left, b.op, Box::new(zero_to_null(*b.right)))),
            ),
            other => Transformed::no(other),
        })
    })
    .map_err(df)?
    .data)
}

/// Adds a cell of no records for every combination of the keys' values not in the output.
fn enumerate_zeros(cells: &mut Vec<Cell>, dims: usize, max: usize) -> bool {
    let mut values: Vec<Vec<String>> = vec![Vec::new(); dims];
    for (d, vals) in values.iter_mut().enumerate() {
        let mut seen = BTreeSet::new();
        for c in cells.iter() {
            if let Some(v) = c.key.get(d) {
                seen.insert(v.clone());
            }
        }
        *vals = seen.into_iter().collect();
    }
    let total = values.iter().try_fold(1usize, |acc, v| acc.checked_mul(v.len()));
    match total {
        None => return false,
        Some(t) if t > max => return false,
        // No rows (a plan checked without data): nothing is empty that is not all empty.
        Some(0) => return true,
        Some(_) => {}
    }
    let present: HashSet<Vec<String>> = cells.iter().map(|c| c.key.clone()).collect();
    let mut combo = vec![0usize; dims];
    loop {
        let key: Vec<String> = combo.iter().enumerate().map(|(d, i)| values[d][*i].clone()).collect();
        if !present.contains(&key) {
            cells.push(Cell {
                key,
                row: None,
                records: 0,
                entities: 0,
                contributions: Vec::new(),
                residual_dof: None,
            });
        }
        let mut d = dims;
        loop {
            if d == 0 {
                return true;
            }
            d -= 1;
            combo[d] += 1;
            if combo[d] < values[d].len() {
                break;
            }
            combo[d] = 0;
        }
    }
}

/// `top2(x)`: the sum of the two largest non-null values — the contributor statistic the
/// dominance rules need that DataFusion has no aggregate for.
fn top2() -> Arc<AggregateUDF> {
    static TOP2: std::sync::OnceLock<Arc<AggregateUDF>> = std::sync::OnceLock::new();
    TOP2.get_or_init(|| {
        Arc::new(create_udaf(
            "shuyu_top2",
            vec![DataType::Float64],
            Arc::new(DataType::Float64),
            Volatility::Immutable,
            Arc::new(|_| Ok(Box::new(Top2::default()))),
            Arc::new(vec![DataType::Float64, DataType::Float64]),
        ))
    })
    .clone()
}

#[derive(Debug, Default)]
struct Top2 {
    first: Option<f64>,
    second: Option<f64>,
}

impl Top2 {
    fn push(&mut self, v: f64) {
        match self.first {
            None => self.first = Some(v),
            Some(f) if v > f => {
                self.second = Some(f);
                self.first = Some(v);
            }
            Some(_) => {
                if self.second.is_none_or(|s| v > s) {
                    self.second = Some(v);
                }
            }
        }
    }

    fn push_array(&mut self, a: &ArrayRef) {
        let a: &Float64Array = a.as_primitive::<Float64Type>();
        for v in a.iter().flatten() {
            self.push(v);
        }
    }
}

impl Accumulator for Top2 {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        if let Some(a) = values.first() {
            self.push_array(a);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.first.map(|f| f + self.second.unwrap_or(0.0))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(self.first),
            ScalarValue::Float64(self.second),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        for s in states {
            self.push_array(s);
        }
        Ok(())
    }
}

// Keep the unused-import lint honest for helper types only used in some configurations.
#[allow(dead_code)]
fn _types(_: &HashMap<String, AggregateFunction>) {}
