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
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            time: Duration::from_secs(30),
            memory: 256 * 1024 * 1024,
            max_page: 1000,
            max_sql: 64 * 1024,
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

/// Runs `req` over `tables` (name → masked sample batches).
pub(crate) async fn run(
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
    for (name, batches) in tables {
        let Some(schema) = batches.first().map(|b| b.schema()) else {
            continue;
        };
        let table = MemTable::try_new(schema, vec![batches]).map_err(df)?;
        ctx.register_table(name.as_str(), Arc::new(table)).map_err(df)?;
    }
    let work = async {
        let frame = ctx.sql_with_options(&req.sql, options()).await.map_err(df)?;
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
