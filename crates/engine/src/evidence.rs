//! Runs an output's SQL and computes, in the same plan, the evidence the gate judges it by.
//!
//! The query is planned by DataFusion; the engine reads the plan, never the SQL text:
//! - the aggregate under the output's projection is found, and to it are added hidden
//!   aggregates — records per cell, and for every `SUM`/`AVG` argument its non-null count, sum,
//!   largest value, two largest and negatives; `regr_count` for regressions — which ride along
//!   to the output rows, so the statistics are those of exactly the cells released;
//! - each output column's lineage is followed through projections, joins, unions, subquery
//!   aliases and scalar subqueries to the source fields' types (renaming a column does not hide
//!   an ID number);
//! - anything the gate cannot read (grouping sets, window functions over an aggregate, a
//!   projection between the output and its aggregate) fails closed with a clear message.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::expr_fn::{count, max, regr_count, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Accumulator, Aggregate, AggregateUDF, Distinct, Expr, JoinType, LogicalPlan, Projection, Volatility, create_udaf,
    lit, when,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use shuyu_classify::FieldType;
use shuyu_gate::output::cell_text;
use shuyu_gate::{Cell, Column, Contribution, MeasureKind, Output, Role, Shape, TableEvidence};

use crate::EngineError;
use crate::sql::{df, options};

/// Source field types by table, then by column.
pub type Sources = HashMap<String, HashMap<String, FieldType>>;

const HIDDEN: &str = "__shuyu_gate_";

/// Plans and runs `sql` in `ctx`, returning the output with the gate's evidence.
pub(crate) async fn run(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    sources: &Sources,
    max_enumerated: usize,
) -> Result<Output, EngineError> {
    let frame = ctx
        .sql_with_options(sql, options())
        .await
        .map_err(|e| crate::jobs::not_approved(name, &e).unwrap_or_else(|| df(e)))?;
    let plan = frame.logical_plan().clone();
    let width = plan.schema().fields().len();
    let column_sources: Vec<Vec<FieldType>> = (0..width)
        .map(|i| {
            let mut out = BTreeSet::new();
            lineage(&plan, i, sources, &mut out);
            out.into_iter().collect()
        })
        .collect();
    let names: Vec<String> = plan.schema().fields().iter().map(|f| f.name().clone()).collect();
    match find_aggregate(&plan)? {
        None => {
            let batches = ctx
                .execute_logical_plan(plan)
                .await
                .map_err(df)?
                .collect()
                .await
                .map_err(df)?;
            let batch = concat(&batches.first().map(|b| b.schema()), &batches)?;
            Ok(Output {
                name: name.to_string(),
                columns: names
                    .into_iter()
                    .zip(column_sources)
                    .map(|(name, sources)| Column {
                        name,
                        role: Role::Detail,
                        sources,
                    })
                    .collect(),
                batch,
                shape: Shape::Microdata,
            })
        }
        Some(found) => table(ctx, name, found, names, column_sources, max_enumerated).await,
    }
}

fn concat(schema: &Option<arrow::datatypes::SchemaRef>, batches: &[RecordBatch]) -> Result<RecordBatch, EngineError> {
    match schema {
        Some(s) => Ok(concat_batches(s, batches)?),
        None => Ok(RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty()))),
    }
}

/// Where the aggregate sits: the nodes above the output projection, the projection, the nodes
/// between it and the aggregate, and the aggregate.
struct Found {
    above: Vec<LogicalPlan>,
    projection: Projection,
    between: Vec<LogicalPlan>,
    aggregate: Aggregate,
}

fn unsupported(what: &str) -> EngineError {
    EngineError::GateUnsupported(what.to_string())
}

/// Finds the output's aggregate, if the output is an aggregate table.
fn find_aggregate(plan: &LogicalPlan) -> Result<Option<Found>, EngineError> {
    let mut above = Vec::new();
    let mut node = plan;
    // Above the output projection: ordering and limits only.
    let projection = loop {
        match node {
            LogicalPlan::Projection(p) => break p.clone(),
            LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
                above.push(node.clone());
                node = node.inputs()[0];
            }
            _ => return Ok(None),
        }
    };
    let mut between = Vec::new();
    let input = projection.input.clone();
    let mut node = input.as_ref();
    loop {
        match node {
            LogicalPlan::Aggregate(a) => {
                if a.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
                    return Err(unsupported("GROUPING SETS / ROLLUP / CUBE"));
                }
                return Ok(Some(Found {
                    above,
                    projection,
                    between,
                    aggregate: a.clone(),
                }));
            }
            LogicalPlan::Filter(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
                between.push(node.clone());
                node = node.inputs()[0];
            }
            LogicalPlan::Window(_) => {
                // A window over an aggregate's cells (ranks, running totals) would need evidence
                // per window; over raw rows it is record-level detail.
                return if contains_aggregate(node) {
                    Err(unsupported("window functions over an aggregate"))
                } else {
                    Ok(None)
                };
            }
            LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) | LogicalPlan::Distinct(_) => {
                return if contains_aggregate(node) {
                    Err(unsupported(
                        "an aggregate inside a subquery; aggregate in the outermost query",
                    ))
                } else {
                    Ok(None)
                };
            }
            _ => return Ok(None),
        }
    }
}

fn contains_aggregate(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|p| {
        if matches!(p, LogicalPlan::Aggregate(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The aggregate function beneath an alias, if `e` is one.
fn aggregate_fn(e: &Expr) -> Option<&AggregateFunction> {
    match e {
        Expr::Alias(a) => aggregate_fn(&a.expr),
        Expr::AggregateFunction(f) => Some(f),
        _ => None,
    }
}

/// Whether an aggregate counts the records of its group: `COUNT(*)` or `COUNT(<non-null
/// literal>)`, not distinct, unfiltered.
fn counts_records(e: &Expr) -> bool {
    aggregate_fn(e).is_some_and(|f| {
        f.func.name().eq_ignore_ascii_case("count")
            && !f.params.distinct
            && f.params.filter.is_none()
            && matches!(f.params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
    })
}

fn kind_of(f: &AggregateFunction) -> MeasureKind {
    let name = f.func.name().to_ascii_lowercase();
    match name.as_str() {
        "count" | "approx_distinct" | "regr_count" => MeasureKind::Count,
        "sum" | "avg" | "mean" => MeasureKind::Linear,
        "min"
        | "max"
        | "median"
        | "approx_median"
        | "percentile_cont"
        | "approx_percentile_cont"
        | "approx_percentile_cont_with_weight"
        | "first_value"
        | "last_value"
        | "nth_value" => MeasureKind::Order,
        "stddev" | "stddev_pop" | "stddev_samp" | "var" | "var_pop" | "var_samp" | "var_population" | "var_sample" => {
            MeasureKind::Spread
        }
        n if n.starts_with("regr_") || n == "corr" || n.starts_with("covar") => MeasureKind::Regression,
        "array_agg" | "string_agg" => MeasureKind::Listing,
        _ => MeasureKind::Other,
    }
}

/// How severe a kind is for the checks, to pick one kind for a column mixing several.
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

async fn table(
    ctx: &SessionContext,
    name: &str,
    found: Found,
    names: Vec<String>,
    column_sources: Vec<Vec<FieldType>>,
    max_enumerated: usize,
) -> Result<Output, EngineError> {
    let agg = &found.aggregate;
    let n_groups = agg.group_expr.len();
    let agg_schema = agg.schema.clone();
    // Hidden statistics: records, then per linear argument 5 values, then per regression 1.
    let mut hidden: Vec<Expr> = vec![count(lit(1i64))];
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut slots_by_aggr: Vec<Vec<usize>> = Vec::new();
    let mut dof_columns: Vec<usize> = Vec::new();
    let mut kinds: Vec<MeasureKind> = Vec::new();
    let top2 = Arc::new(top2_udaf());
    for e in &agg.aggr_expr {
        let f = aggregate_fn(e).ok_or_else(|| unsupported("an aggregate expression the gate cannot read"))?;
        let kind = kind_of(f);
        kinds.push(kind);
        let mut slots = Vec::new();
        if kind == MeasureKind::Linear
            && let Some(arg) = f.params.args.first()
        {
            let key = arg.to_string();
            let next = slot_of.len();
            let slot = *slot_of.entry(key).or_insert_with(|| {
                let v = datafusion::logical_expr::cast(arg.clone(), DataType::Float64);
                hidden.push(count(v.clone()));
                hidden.push(sum(v.clone()));
                hidden.push(max(v.clone()));
                hidden.push(top2.call(vec![v.clone()]));
                let negative = when(v.lt(lit(0.0f64)), lit(1i64)).otherwise(lit(0i64));
                hidden.push(sum(negative.unwrap_or_else(|_| lit(0i64))));
                next
            });
            slots.push(slot);
        }
        if kind == MeasureKind::Regression && f.params.args.len() == 2 {
            dof_columns.push(hidden.len());
            hidden.push(regr_count(f.params.args[0].clone(), f.params.args[1].clone()));
        }
        slots_by_aggr.push(slots);
    }
    // The records per cell: the query's own COUNT(*) when it has one (no second count).
    let records_of = agg.aggr_expr.iter().position(counts_records).map(|j| {
        let (q, f) = agg_schema.qualified_field(n_groups + j);
        Expr::Column(datafusion::common::Column::from((q, f)))
    });
    let n_hidden = hidden.len();
    let hidden: Vec<Expr> = hidden
        .into_iter()
        .enumerate()
        .skip(usize::from(records_of.is_some()))
        .map(|(i, e)| e.alias(format!("{HIDDEN}{i}")))
        .collect();
    let mut aggr_expr = agg.aggr_expr.clone();
    aggr_expr.extend(hidden);
    let mut node =
        LogicalPlan::Aggregate(Aggregate::try_new(agg.input.clone(), agg.group_expr.clone(), aggr_expr).map_err(df)?);
    let mut groups_filtered = !found.above.is_empty() && found.above.iter().any(|p| matches!(p, LogicalPlan::Limit(_)));
    for between in found.between.iter().rev() {
        if matches!(between, LogicalPlan::Filter(_) | LogicalPlan::Limit(_)) {
            groups_filtered = true;
        }
        node = between.with_new_exprs(between.expressions(), vec![node]).map_err(df)?;
    }
    // The output's columns: what each reads from the aggregate.
    let mut columns = Vec::with_capacity(names.len());
    for (i, e) in found.projection.expr.iter().enumerate() {
        let mut kind: Option<MeasureKind> = None;
        let mut slots = Vec::new();
        for c in e.column_refs() {
            let Ok(j) = agg_schema.index_of_column(c) else {
                return Err(unsupported("a column the gate cannot trace to the aggregate"));
            };
            if j >= n_groups {
                let a = j - n_groups;
                let k = kinds.get(a).copied().unwrap_or(MeasureKind::Other);
                kind = Some(match kind {
                    Some(prev) if severity(prev) >= severity(k) => prev,
                    _ => k,
                });
                slots.extend(slots_by_aggr.get(a).into_iter().flatten().copied());
            }
        }
        if has_subquery(e) {
            return Err(unsupported("a subquery in the output's columns"));
        }
        columns.push(Column {
            name: names[i].clone(),
            role: match kind {
                Some(kind) => Role::Measure { kind, slots },
                None => Role::Key,
            },
            sources: column_sources.get(i).cloned().unwrap_or_default(),
        });
    }
    let mut exprs = found.projection.expr.clone();
    exprs.extend((0..n_hidden).map(|i| match (i, &records_of) {
        (0, Some(count)) => count.clone().alias(format!("{HIDDEN}0")),
        _ => Expr::Column(datafusion::common::Column::from_name(format!("{HIDDEN}{i}"))),
    }));
    node = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(node)).map_err(df)?);
    for above in found.above.iter().rev() {
        node = above.with_new_exprs(above.expressions(), vec![node]).map_err(df)?;
    }
    let batches = ctx
        .execute_logical_plan(node)
        .await
        .map_err(df)?
        .collect()
        .await
        .map_err(df)?;
    let width = names.len();
    let all = concat(&batches.first().map(|b| b.schema()), &batches)?;
    let (batch, stats) = if all.num_columns() == width + n_hidden {
        let out = all.project(&(0..width).collect::<Vec<_>>())?;
        let stats = all.project(&(width..width + n_hidden).collect::<Vec<_>>())?;
        (out, stats)
    } else {
        // No rows: nothing to judge but the (empty) output.
        let schema = Arc::new(arrow::datatypes::Schema::new(
            found.projection.schema.fields().iter().cloned().collect::<Vec<_>>(),
        ));
        (
            RecordBatch::new_empty(schema),
            RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())),
        )
    };
    let key_cols: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.role == Role::Key)
        .map(|(i, _)| i)
        .collect();
    let n_slots = slot_of.len();
    let floats: Vec<ArrayRef> = (0..stats.num_columns())
        .map(|i| cast(stats.column(i), &DataType::Float64))
        .collect::<Result<_, _>>()?;
    let value = |col: usize, row: usize| -> Option<f64> {
        let a = floats.get(col)?.as_primitive::<Float64Type>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let mut cells = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let key = key_cols
            .iter()
            .map(|c| cell_text(batch.column(*c), row).unwrap_or_default())
            .collect();
        let contributions = (0..n_slots)
            .map(|s| {
                let base = 1 + 5 * s;
                Contribution {
                    n: value(base, row).unwrap_or(0.0) as u64,
                    sum: value(base + 1, row).unwrap_or(0.0),
                    largest: value(base + 2, row).unwrap_or(0.0),
                    top2: value(base + 3, row).unwrap_or(0.0),
                    negatives: value(base + 4, row).unwrap_or(0.0) as u64,
                }
            })
            .collect();
        let residual_dof = dof_columns
            .iter()
            .filter_map(|c| value(*c, row).map(|n| n as i64 - 2))
            .min();
        cells.push(Cell {
            key,
            row: Some(row),
            records: value(0, row).unwrap_or(0.0) as u64,
            contributions,
            residual_dof,
        });
    }
    let zeros_enumerated = if key_cols.len() < 2 {
        true
    } else if groups_filtered {
        false
    } else {
        enumerate_zeros(&mut cells, key_cols.len(), max_enumerated)
    };
    Ok(Output {
        name: name.to_string(),
        batch,
        columns,
        shape: Shape::Table(TableEvidence {
            cells,
            zeros_enumerated,
            groups_filtered,
            rounded: None,
        }),
    })
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

fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        if matches!(x, Expr::ScalarSubquery(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Every source type the plan reads (the conservative answer for a node the lineage does not
/// know).
fn all_sources(plan: &LogicalPlan, sources: &Sources, out: &mut BTreeSet<FieldType>) {
    let _ = plan.apply(|p| {
        if let LogicalPlan::TableScan(scan) = p
            && let Some(cols) = sources.get(scan.table_name.table())
        {
            out.extend(cols.values().copied());
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The source field types output column `idx` of `plan` derives from.
fn lineage(plan: &LogicalPlan, idx: usize, sources: &Sources, out: &mut BTreeSet<FieldType>) {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let schema = plan.schema();
            if idx < schema.fields().len() {
                let field = schema.field(idx).name();
                if let Some(t) = sources.get(scan.table_name.table()).and_then(|c| c.get(field)) {
                    out.insert(*t);
                }
            }
        }
        LogicalPlan::Projection(p) => {
            if let Some(e) = p.expr.get(idx) {
                expr_lineage(e, &p.input, sources, out);
            }
        }
        LogicalPlan::Aggregate(a) => {
            let e = a
                .group_expr
                .get(idx)
                .or_else(|| a.aggr_expr.get(idx - a.group_expr.len().min(idx)));
            if let Some(e) = e.filter(|_| idx < a.group_expr.len() + a.aggr_expr.len()) {
                expr_lineage(e, &a.input, sources, out);
            }
        }
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => lineage(&j.left, idx, sources, out),
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => lineage(&j.right, idx, sources, out),
                _ if idx < left => lineage(&j.left, idx, sources, out),
                _ => lineage(&j.right, idx - left, sources, out),
            }
        }
        LogicalPlan::Union(u) => {
            for input in &u.inputs {
                lineage(input, idx, sources, out);
            }
        }
        LogicalPlan::Window(w) => {
            let width = w.input.schema().fields().len();
            if idx < width {
                lineage(&w.input, idx, sources, out);
            } else if let Some(e) = w.window_expr.get(idx - width) {
                expr_lineage(e, &w.input, sources, out);
            }
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Distinct(Distinct::All(_)) => {
            if let Some(input) = plan.inputs().first() {
                lineage(input, idx, sources, out);
            }
        }
        LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {}
        other => all_sources(other, sources, out),
    }
}

/// The source types an expression over `input` derives from, scalar subqueries included.
fn expr_lineage(e: &Expr, input: &LogicalPlan, sources: &Sources, out: &mut BTreeSet<FieldType>) {
    for c in e.column_refs() {
        match input.schema().index_of_column(c) {
            Ok(j) => lineage(input, j, sources, out),
            // An outer reference or a name the schema does not hold: every source of that name.
            Err(_) => {
                for cols in sources.values() {
                    if let Some(t) = cols.get(&c.name) {
                        out.insert(*t);
                    }
                }
            }
        }
    }
    let _ = e.apply(|x| {
        if let Expr::ScalarSubquery(s) = x {
            lineage(&s.subquery, 0, sources, out);
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// `top2(x)`: the sum of the two largest non-null values — the contributor statistic the
/// dominance rules need that DataFusion has no aggregate for.
fn top2_udaf() -> AggregateUDF {
    create_udaf(
        "shuyu_top2",
        vec![DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Top2::default()))),
        Arc::new(vec![DataType::Float64, DataType::Float64]),
    )
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
