//! Which scalar expressions the algebra admits, and where.
//!
//! Three places take a scalar expression, each with its own allow-list:
//! - a **key** (a GROUP BY expression, a record-level column): approved, non-identifying fields
//!   and the generalizations of them one writes to bin or coarsen — date parts, truncations,
//!   substrings, rounding, `CASE` on literal bounds, arithmetic;
//! - a **predicate** (WHERE, HAVING on keys, the extra conditions of an inner join): the same,
//!   with comparisons, `IN` lists of literals, `LIKE` with a literal pattern, `BETWEEN`, `AND`,
//!   `OR`, `NOT`;
//! - a measure's **argument** (inside SUM, AVG, …): numeric arithmetic on approved fields and
//!   literals, casts, date parts and a few continuous functions — no `CASE`, no comparison, no
//!   predicate: a conditional inside a measure hides a subgroup from the threshold.
//!
//! Identifying fields (ID numbers, credit codes, names, mobiles, cards, addresses, plates,
//! e-mails) are refused in every place: an identifier may only link tables (a join key) or be
//! the entity counted by `COUNT(DISTINCT …)`, which the compiler handles itself. Subqueries,
//! window functions, table functions, parameters and unnesting are refused everywhere.

use std::collections::BTreeSet;

use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, Operator};
use shuyu_classify::FieldType;

use super::{Refusal, Resolver};

/// Where an expression stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A group key or a record-level column.
    Key,
    /// A row predicate.
    Predicate,
    /// A measure's argument.
    Argument,
}

impl Place {
    fn code(self) -> &'static str {
        match self {
            Place::Key => "key",
            Place::Predicate => "predicate",
            Place::Argument => "measure",
        }
    }
}

/// Functions of keys and predicates.
const KEY_FUNCTIONS: &[&str] = &[
    "date_part",
    "datepart",
    "date_trunc",
    "datetrunc",
    "date_bin",
    "to_date",
    "make_date",
    "to_char",
    "substr",
    "substring",
    "left",
    "right",
    "split_part",
    "upper",
    "lower",
    "btrim",
    "trim",
    "ltrim",
    "rtrim",
    "concat",
    "starts_with",
    "ends_with",
    "length",
    "char_length",
    "character_length",
    "floor",
    "ceil",
    "round",
    "trunc",
    "abs",
    "coalesce",
    "nullif",
    "greatest",
    "least",
];

/// Functions of a measure's argument: continuous ones, and those that read a number or a date
/// out of a field (a year out of `YYYY-MM`, an age out of two dates).
const ARGUMENT_FUNCTIONS: &[&str] = &[
    "date_part",
    "datepart",
    "date_trunc",
    "to_date",
    "make_date",
    "substr",
    "substring",
    "left",
    "right",
    "split_part",
    "abs",
    "round",
    "ln",
    "log",
    "log10",
    "log2",
    "sqrt",
    "power",
    "pow",
    "exp",
];

/// Whether the algebra offers `name` in any place (workspace queries offer these too).
pub(crate) fn offered(name: &str) -> bool {
    KEY_FUNCTIONS.contains(&name) || ARGUMENT_FUNCTIONS.contains(&name)
}

/// The source fields an admitted expression reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// Their types.
    pub(crate) types: BTreeSet<FieldType>,
    /// Their (table index, field name).
    pub(crate) fields: BTreeSet<(usize, String)>,
}

/// Admits `e` (over `schema`) in `place`, returning what it reads.
pub(crate) fn admit(e: &Expr, place: Place, schema: &DFSchema, r: &Resolver) -> Result<Lineage, Refusal> {
    let mut out = Lineage::default();
    walk(e, place, schema, r, &mut out)?;
    Ok(out)
}

fn walk(e: &Expr, place: Place, schema: &DFSchema, r: &Resolver, out: &mut Lineage) -> Result<(), Refusal> {
    let conditional = |what: &str| {
        if place == Place::Argument {
            Err(Refusal::new("conditional_measure", what))
        } else {
            Ok(())
        }
    };
    match e {
        Expr::Alias(a) => walk(&a.expr, place, schema, r, out),
        Expr::Column(c) => {
            let (table, field) = r.field(schema, c)?;
            if field.identifying() {
                return Err(Refusal::new("identifier", &field.name).with_place(place.code()));
            }
            out.types.insert(field.field_type);
            out.fields.insert((table, field.name.clone()));
            Ok(())
        }
        Expr::Literal(..) => Ok(()),
        Expr::BinaryExpr(b) => {
            match b.op {
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo => {}
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::And
                | Operator::Or
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom => conditional(&b.op.to_string())?,
                Operator::StringConcat => {
                    if place == Place::Argument {
                        return Err(Refusal::new("function", "||").with_place(place.code()));
                    }
                }
                // Bit operations pack values (the characters of a code into a number); regular
                // expressions and the rest are not needed to bin or to filter.
                other => return Err(Refusal::new("operator", &other.to_string()).with_place(place.code())),
            }
            walk(&b.left, place, schema, r, out)?;
            walk(&b.right, place, schema, r, out)
        }
        Expr::Like(l) | Expr::SimilarTo(l) => {
            conditional("LIKE")?;
            if !matches!(l.pattern.as_ref(), Expr::Literal(..)) {
                return Err(Refusal::new("pattern", "LIKE"));
            }
            walk(&l.expr, place, schema, r, out)
        }
        Expr::Not(x)
        | Expr::IsNotNull(x)
        | Expr::IsNull(x)
        | Expr::IsTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotTrue(x)
        | Expr::IsNotFalse(x)
        | Expr::IsNotUnknown(x) => {
            conditional("IS / NOT")?;
            walk(x, place, schema, r, out)
        }
        Expr::Negative(x) => walk(x, place, schema, r, out),
        Expr::Between(b) => {
            conditional("BETWEEN")?;
            walk(&b.expr, place, schema, r, out)?;
            walk(&b.low, place, schema, r, out)?;
            walk(&b.high, place, schema, r, out)
        }
        Expr::Case(c) => {
            conditional("CASE")?;
            if let Some(x) = &c.expr {
                walk(x, place, schema, r, out)?;
            }
            for (when, then) in &c.when_then_expr {
                walk(when, Place::Predicate, schema, r, out)?;
                walk(then, place, schema, r, out)?;
            }
            if let Some(x) = &c.else_expr {
                walk(x, place, schema, r, out)?;
            }
            Ok(())
        }
        Expr::Cast(c) => walk(&c.expr, place, schema, r, out),
        Expr::TryCast(c) => walk(&c.expr, place, schema, r, out),
        Expr::ScalarFunction(f) => {
            let name = f.func.name().to_ascii_lowercase();
            let allowed = match place {
                Place::Key | Place::Predicate => KEY_FUNCTIONS,
                Place::Argument => ARGUMENT_FUNCTIONS,
            };
            if !allowed.contains(&name.as_str()) {
                return Err(Refusal::new("function", &name).with_place(place.code()));
            }
            for a in &f.args {
                walk(a, place, schema, r, out)?;
            }
            Ok(())
        }
        Expr::InList(l) => {
            conditional("IN")?;
            if l.list.iter().any(|x| !matches!(x, Expr::Literal(..))) {
                return Err(Refusal::new("in_list", "IN"));
            }
            walk(&l.expr, place, schema, r, out)
        }
        Expr::AggregateFunction(f) => Err(Refusal::new("nested_aggregate", f.func.name())),
        Expr::WindowFunction(_) => Err(Refusal::new("window", "OVER")),
        Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_) | Expr::SetComparison(_) => {
            Err(Refusal::new("subquery", "subquery"))
        }
        Expr::OuterReferenceColumn(..) => Err(Refusal::new("subquery", "outer reference")),
        Expr::Placeholder(_) => Err(Refusal::new("parameter", "$")),
        Expr::ScalarVariable(..) => Err(Refusal::new("parameter", "@")),
        Expr::Unnest(_) => Err(Refusal::new("row_multiplier", "UNNEST")),
        Expr::GroupingSet(_) => Err(Refusal::new("grouping_sets", "GROUPING SETS")),
        #[allow(deprecated)]
        Expr::Wildcard { .. } => Err(Refusal::new("wildcard", "*")),
        Expr::HigherOrderFunction(_) | Expr::Lambda(_) | Expr::LambdaVariable(_) => {
            Err(Refusal::new("function", "lambda"))
        }
    }
}

/// The display of an expression with each column named by its source field (dataset id and
/// field), without aliases — two keys with the same lineage are the same key whatever the
/// developer called them.
pub(crate) fn lineage_text(e: &Expr, schema: &DFSchema, r: &Resolver) -> String {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let named = e.clone().transform(|x| {
        Ok(match x {
            Expr::Alias(a) => Transformed::yes(*a.expr),
            Expr::Column(c) => match r.field(schema, &c) {
                Ok((t, f)) => Transformed::yes(Expr::Column(datafusion::common::Column::from_name(format!(
                    "{}.{}",
                    r.tables[t].view.dataset_id, f.name
                )))),
                Err(_) => Transformed::no(Expr::Column(c)),
            },
            other => Transformed::no(other),
        })
    });
    match named {
        Ok(t) => t.data.to_string(),
        Err(_) => e.to_string(),
    }
}
