//! Interactive SQL on a workspace's samples (DataFusion's dialect). Each query gets a fresh
//! session holding only the workspace's shown samples as in-memory tables: no catalog of
//! datasets, no file or URL tables (`SELECT * FROM 'path'` is off), no information schema,
//! and only queries — DDL (`CREATE EXTERNAL TABLE …`), DML and `SET`-style statements are
//! refused by the planner. Time and memory are limited; results come a page at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::EngineError;

/// What a developer asks.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One SQL query (DataFusion's dialect) over the workspace's tables.
    pub sql: String,
    /// Rows to skip (for the next page).
    #[serde(default)]
    pub offset: usize,
    /// Rows per page (at most [`QueryLimits::max_page`]; default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The limits every query runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Wall-clock time.
    pub time: Duration,
    /// Memory for sorts, joins and aggregations (bytes).
    pub memory: usize,
    /// Rows per page at most.
    pub max_page: usize,
    /// Longest SQL text accepted (bytes).
    pub max_sql: usize,
    /// Queries one user may run at once.
    pub per_user: usize,
    /// Queries one organisation may run at once.
    pub per_org: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            // Below the server's 30 s request timeout, so the developer is told that the
            // query's own limit stopped it.
            time: Duration::from_secs(25),
            memory: 256 * 1024 * 1024,
            max_page: 1000,
            max_sql: 64 * 1024,
            per_user: 2,
            per_org: 4,
        }
    }
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueryColumn {
    /// Its name.
    pub name: String,
    /// Its Arrow type.
    pub data_type: String,
}

/// One page of a query's result (values as text; null as null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueryPage {
    /// The columns.
    pub columns: Vec<QueryColumn>,
    /// The rows of this page.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows skipped.
    pub offset: usize,
    /// Whether more rows follow.
    pub has_more: bool,
    /// How long it took (ms).
    pub elapsed_ms: u64,
}

/// Runs `req` over `tables` (name → masked sample batches) on a thread of its own, apart from
/// the server's: the operating system shares the cores between running queries, so a query that
/// keeps its thread busy (a cross join running out its time) slows others a little and never
/// stalls the API or another user's query. How many run at once is bounded by the caller
/// (per user, per organisation); each stops itself at its time limit.
pub(crate) async fn run(
    tables: Vec<(String, Vec<RecordBatch>)>,
    req: &QueryRequest,
    limits: QueryLimits,
) -> Result<QueryPage, EngineError> {
    let req = req.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("shuyu-query".into())
        .spawn(move || {
            let out = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(rt) => rt.block_on(run_here(tables, &req, limits)),
                Err(e) => Err(EngineError::Task(e.to_string())),
            };
            let _ = tx.send(out);
        })
        .map_err(|e| EngineError::Task(e.to_string()))?;
    match tokio::time::timeout(limits.time + Duration::from_secs(2), rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(EngineError::Task("the query thread ended without an answer".into())),
        Err(_) => Err(EngineError::QueryTimeout(limits.time.as_secs())),
    }
}

async fn run_here(
    tables: Vec<(String, Vec<RecordBatch>)>,
    req: &QueryRequest,
    limits: QueryLimits,
) -> Result<QueryPage, EngineError> {
    let started = Instant::now();
    if req.sql.len() > limits.max_sql {
        return Err(EngineError::Query(format!(
            "the query is longer than {} bytes",
            limits.max_sql
        )));
    }
    let page = req.limit.unwrap_or(100).clamp(1, limits.max_page);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory, 1.0)
        .build_arc()
        .map_err(|e| EngineError::Task(e.to_string()))?;
    let config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(2)
        .with_batch_size(8192);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let mut names = Vec::new();
    for (name, batches) in tables {
        names.push(name.clone());
        let Some(schema) = batches.first().map(|b| b.schema()) else {
            continue;
        };
        let table = MemTable::try_new(schema, vec![batches]).map_err(df)?;
        ctx.register_table(name.as_str(), Arc::new(table)).map_err(df)?;
    }
    let known: std::collections::BTreeSet<String> = names.into_iter().collect();
    let work = async {
        let frame = ctx.sql_with_options(&req.sql, options()).await.map_err(df)?;
        // Admitted before anything runs (constant folding would already evaluate a call).
        admit(frame.logical_plan(), &known)?;
        let frame = frame.limit(req.offset, Some(page + 1)).map_err(df)?;
        let schema = frame.schema().as_arrow().clone();
        let mut stream = frame.execute_stream().await.map_err(df)?;
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let opts = FormatOptions::default();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(df)?;
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<Vec<_>, _>>()?;
            for i in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .zip(&formatters)
                        .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                        .collect(),
                );
            }
        }
        let has_more = rows.len() > page;
        rows.truncate(page);
        Ok::<_, EngineError>(QueryPage {
            columns: schema
                .fields()
                .iter()
                .map(|f| QueryColumn {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                })
                .collect(),
            rows,
            offset: req.offset,
            has_more,
            elapsed_ms: 0,
        })
    };
    let mut out = match tokio::time::timeout(limits.time, work).await {
        Ok(r) => r.map_err(|e| match e {
            EngineError::Query(m) if m.contains("Resources exhausted") => {
                EngineError::QueryMemory((limits.memory / (1024 * 1024)) as u64)
            }
            other => other,
        })?,
        Err(_) => return Err(EngineError::QueryTimeout(limits.time.as_secs())),
    };
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// Longest value a sizing argument (`repeat`'s count, `lpad`'s length) may ask for.
pub const MAX_SIZE_ARGUMENT: i64 = 1000;

/// Scalar functions a workspace query may call besides the algebra's: string, number, date and
/// conditional functions whose result is no larger than their arguments (plus the sized ones,
/// bounded by [`MAX_SIZE_ARGUMENT`]). Generators (`generate_series`, `range`), `array_repeat`
/// and everything not named here are not offered: allowed is only what is understood.
const QUERY_FUNCTIONS: &[&str] = &[
    "concat_ws",
    "replace",
    "reverse",
    "strpos",
    "instr",
    "translate",
    "initcap",
    "ascii",
    "chr",
    "octet_length",
    "bit_length",
    "regexp_like",
    "regexp_match",
    "regexp_replace",
    "regexp_count",
    "md5",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "to_hex",
    "to_timestamp",
    "to_timestamp_seconds",
    "to_timestamp_millis",
    "to_unixtime",
    "from_unixtime",
    "now",
    "current_date",
    "current_time",
    "date_format",
    "nvl",
    "nvl2",
    "ifnull",
    "isnan",
    "iszero",
    "signum",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "degrees",
    "radians",
    "pi",
    "cbrt",
    "gcd",
    "lcm",
    "factorial",
    "random",
    "arrow_typeof",
    "get_field",
    "named_struct",
    "struct",
    "make_array",
    "array_length",
    "array_element",
    "cardinality",
    "array_has",
    "array_position",
    "array_sort",
    "array_distinct",
];

/// Functions whose result can be larger than their arguments, with the position of the argument
/// that sizes it: admitted with a literal size of at most [`MAX_SIZE_ARGUMENT`].
const SIZED_FUNCTIONS: &[(&str, usize)] = &[("repeat", 1), ("lpad", 1), ("rpad", 1)];

/// Admits a planned workspace query: it reads the workspace's samples only, and calls only
/// offered functions, sized ones with small literal sizes — so no query inflates values past
/// what the memory limit can see, or generates rows from nothing.
pub(crate) fn admit(
    plan: &datafusion::logical_expr::LogicalPlan,
    tables: &std::collections::BTreeSet<String>,
) -> Result<(), EngineError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, LogicalPlan};
    let mut refused: Option<EngineError> = None;
    let check_expr = |e: &Expr, refused: &mut Option<EngineError>| {
        let _ = e.apply(|x| {
            if let Expr::ScalarFunction(f) = x {
                let name = f.func.name().to_ascii_lowercase();
                if let Some((_, at)) = SIZED_FUNCTIONS.iter().find(|(n, _)| *n == name) {
                    let small = f
                        .args
                        .get(*at)
                        .and_then(literal_int)
                        .is_some_and(|n| (0..=MAX_SIZE_ARGUMENT).contains(&n));
                    if !small {
                        *refused = Some(EngineError::QueryRefused {
                            rule: "size_argument",
                            subject: name,
                        });
                        return Ok(TreeNodeRecursion::Stop);
                    }
                } else if !crate::algebra::scalar::offered(&name) && !QUERY_FUNCTIONS.contains(&name.as_str()) {
                    *refused = Some(EngineError::QueryRefused {
                        rule: "function_not_allowed",
                        subject: name,
                    });
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
    };
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table().to_string();
            if !tables.contains(&name) {
                refused = Some(EngineError::QueryRefused {
                    rule: "table_not_in_workspace",
                    subject: name,
                });
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        let _ = node.apply_expressions(|e| {
            check_expr(e, &mut refused);
            Ok(if refused.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
        Ok(if refused.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    refused.map_or(Ok(()), Err)
}

/// The value of an integer literal (through casts), if `e` is one.
fn literal_int(e: &datafusion::logical_expr::Expr) -> Option<i64> {
    use datafusion::logical_expr::Expr;
    match e {
        Expr::Literal(v, _) => v
            .cast_to(&arrow::datatypes::DataType::Int64)
            .ok()
            .and_then(|v| match v {
                datafusion::common::ScalarValue::Int64(n) => n,
                _ => None,
            }),
        Expr::Cast(c) => literal_int(&c.expr),
        Expr::TryCast(c) => literal_int(&c.expr),
        Expr::Alias(a) => literal_int(&a.expr),
        _ => None,
    }
}

/// Queries only: no DDL (`CREATE EXTERNAL TABLE …` would read files), no DML, no `SET`.
pub(crate) fn options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A query's text as it is recorded (audit payloads, job views): every literal that reads as an
/// identifier — an ID number, a credit code, a mobile, a card, an e-mail, in any encoding the
/// gate's scan knows — replaced by a digest. A developer may type a person's ID number into a
/// query (the algebra refuses it), but the log keeps ids and digests only, never personal data.
pub fn recorded(sql: &str) -> String {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        // Not even tokens: keep only its digest.
        return format!("<sql sha256:{}>", digest8(sql));
    };
    let mut out = String::with_capacity(sql.len());
    for t in tokens {
        let redact = match &t {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) | Token::NationalStringLiteral(s) => {
                !shuyu_gate::checks::find_identifiers(s).is_empty()
            }
            Token::Number(n, _) => !shuyu_gate::checks::find_identifiers(n).is_empty(),
            _ => false,
        };
        if redact {
            out.push_str(&format!("'<redacted sha256:{}>'", digest8(&t.to_string())));
        } else {
            out.push_str(&t.to_string());
        }
    }
    out
}

/// A short text as recorded: itself, or its digest when it reads as an identifier.
pub(crate) fn recorded_text(s: &str) -> String {
    if shuyu_gate::checks::find_identifiers(s).is_empty() {
        s.to_string()
    } else {
        format!("<redacted sha256:{}>", digest8(s))
    }
}

fn digest8(s: &str) -> String {
    let d = <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes());
    hex::encode(&d[..4])
}

/// DataFusion's explanation, without its internal backtrace.
pub(crate) fn df(e: DataFusionError) -> EngineError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(m) => EngineError::Query(format!("Resources exhausted: {m}")),
        // What the engine's own table providers raised inside DataFusion.
        DataFusionError::External(inner) => match inner.downcast_ref::<EngineError>() {
            Some(EngineError::TooManyRows(n)) => EngineError::TooManyRows(*n),
            Some(EngineError::Missing(c)) => EngineError::Missing(c.clone()),
            Some(other) => EngineError::Task(other.to_string()),
            None => EngineError::Query(inner.to_string()),
        },
        root => EngineError::Query(root.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn people(n: i64) -> Vec<(String, Vec<RecordBatch>)> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Utf8, false),
            Field::new("age", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(
                    (0..n).map(|i| format!("P{i:06}")).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from((0..n).map(|i| 18 + i % 70).collect::<Vec<_>>())),
            ],
        )
        .expect("batch");
        vec![("population".to_string(), vec![batch])]
    }

    fn ask(sql: &str, offset: usize, limit: usize) -> QueryRequest {
        QueryRequest {
            sql: sql.into(),
            offset,
            limit: Some(limit),
        }
    }

    #[test]
    fn identifiers_typed_into_a_query_are_not_recorded() {
        let sql = "SELECT COUNT(*) FROM population WHERE person_id = '110101197001010011' AND region = 379901 AND phone = 13812345678";
        let kept = recorded(sql);
        assert!(!kept.contains("110101197001010011"), "{kept}");
        assert!(!kept.contains("13812345678"), "{kept}");
        assert!(
            kept.contains("379901") && kept.contains("person_id") && kept.contains("redacted"),
            "{kept}"
        );
        assert_eq!(
            recorded("SELECT region, COUNT(*) FROM population GROUP BY region"),
            "SELECT region, COUNT(*) FROM population GROUP BY region"
        );
    }

    #[tokio::test]
    async fn results_come_a_page_at_a_time() {
        let limits = QueryLimits::default();
        let sql = "SELECT person_id FROM population ORDER BY person_id";
        let first = run(people(25), &ask(sql, 0, 10), limits).await.expect("page 1");
        assert_eq!(first.rows.len(), 10);
        assert!(first.has_more);
        assert_eq!(first.rows[0][0].as_deref(), Some("P000000"));
        let last = run(people(25), &ask(sql, 20, 10), limits).await.expect("page 3");
        assert_eq!(last.rows.len(), 5);
        assert!(!last.has_more);
        assert_eq!(last.rows[4][0].as_deref(), Some("P000024"));
        assert_eq!(first.columns[0].name, "person_id");
    }

    #[tokio::test]
    async fn only_queries_over_the_given_tables_run() {
        let limits = QueryLimits::default();
        for sql in [
            "CREATE TABLE x AS SELECT 1",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM information_schema.tables",
            "SET datafusion.execution.batch_size = 1",
            "DELETE FROM population",
            "SELECT * FROM dataset_versions",
        ] {
            let e = run(people(5), &ask(sql, 0, 10), limits).await.expect_err(sql);
            assert!(matches!(e, EngineError::Query(_)), "{sql}: {e:?}");
        }
    }

    #[tokio::test]
    async fn a_query_past_its_time_or_memory_is_stopped() {
        let slow = QueryLimits {
            time: Duration::from_millis(200),
            ..QueryLimits::default()
        };
        let cross = "SELECT count(*) FROM population a, population b, population c WHERE a.age + b.age + c.age = -1";
        let e = run(people(2_000), &ask(cross, 0, 10), slow).await.expect_err("time");
        assert!(matches!(e, EngineError::QueryTimeout(_)), "{e:?}");
        let small = QueryLimits {
            memory: 64 * 1024,
            ..QueryLimits::default()
        };
        let sort = "SELECT person_id, count(*) FROM population GROUP BY person_id ORDER BY person_id";
        let e = run(people(200_000), &ask(sort, 0, 10), small)
            .await
            .expect_err("memory");
        assert!(matches!(e, EngineError::QueryMemory(_)), "{e:?}");
        let long = QueryLimits {
            max_sql: 10,
            ..QueryLimits::default()
        };
        assert!(run(people(1), &ask("SELECT 1 + 1 + 1", 0, 1), long).await.is_err());
    }
}
