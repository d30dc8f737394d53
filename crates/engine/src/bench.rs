//! For benchmarks: builds a sample of a stored version exactly as a workspace does (read the
//! needed columns from the vault, draw, mask, measure, generalize) and returns its figures
//! only — no rows leave through here.

use shuyu_import::Column;
use shuyu_mask::catalog::ScenarioKeys;
use shuyu_vault::Vault;
use shuyu_workflow::requests::RowScope;

use crate::EngineError;
use crate::sample::{self, Full, Plan, SampleRisk, SampleSpec};

/// Builds the sample of every column of a stored version (the person key drives the draws)
/// and returns its risk figures and row count.
pub async fn sample_stored(
    vault: &Vault,
    key_id: &str,
    path: &str,
    wrapped: &str,
    columns: &[Column],
    spec: &SampleSpec,
) -> Result<(SampleRisk, usize), EngineError> {
    let approved: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let keys = ScenarioKeys {
        pseudonym: [1; 32],
        token: [2; 32],
        random: [3; 32],
    };
    let scope = RowScope::default();
    let entity = sample::scenario_entity(std::iter::once((columns, approved.as_slice())));
    let plan = Plan {
        columns,
        approved: &approved,
        scope: &scope,
        entity,
        spec,
        keys: &keys,
        overrides: &[],
    };
    let needed = sample::needed_columns(&plan);
    let full = Full {
        batches: vault.read(key_id, path, wrapped, Some(&needed)).await?,
    };
    let built = sample::build(&full, &plan)?;
    Ok((built.risk, built.batch.num_rows()))
}

/// The baseline: reads the same columns from the vault (decrypt and decode), nothing else.
/// Returns the rows read.
pub async fn read_stored(vault: &Vault, key_id: &str, path: &str, wrapped: &str) -> Result<usize, EngineError> {
    let batches = vault.read(key_id, path, wrapped, None).await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// For the governed-job benchmark: runs `sql` over a dataset's full batches as a job does — the
/// dataset the scenario's view (the row scope on `region` when given, only `approved`, entity
/// keys opaque), the SQL compiled into the output algebra and run by the plan it builds, with
/// per-entity evidence, and every check run — and returns the output's row count (no rows
/// leave).
pub async fn governed_aggregate(
    batches: Vec<arrow::array::RecordBatch>,
    columns: &[Column],
    approved: &[String],
    region: Option<&str>,
    sql: &str,
) -> Result<usize, EngineError> {
    use std::sync::Arc;
    let keys = ScenarioKeys {
        pseudonym: [1; 32],
        token: [2; 32],
        random: [3; 32],
    };
    let scope = RowScope {
        region: region.map(str::to_string),
        from: None,
        to: None,
    };
    let entity = sample::scenario_entity(std::iter::once((columns, approved)));
    let view = Arc::new(crate::scenario::View::new(
        crate::scenario::Names {
            table: "t",
            dataset: "t",
            version: "v1",
        },
        columns,
        approved,
        &[],
        crate::scenario::Scope::of(&scope, columns, approved),
        entity,
    )?);
    let engine = crate::jobs::session(None);
    let table = crate::scenario::ScenarioTable::for_engine(
        view.clone(),
        crate::scenario::Rows::Batches(batches),
        crate::scenario::EntityKey::new([9; 16]),
        keys,
        Arc::default(),
    );
    engine.register_table("t", Arc::new(table)).map_err(crate::sql::df)?;
    let (planner, catalog) = crate::jobs::planning_session(&[view])?;
    let admitted = crate::jobs::prepare(
        &planner,
        &catalog,
        "bench",
        sql,
        crate::algebra::Profile::Job { microdata: false },
    )
    .await?;
    let rules = shuyu_gate::Rules::default();
    let built = crate::algebra::build::run(&engine, &admitted, "bench", rules.max_enumerated_cells).await?;
    let report = shuyu_gate::checks::run(&built.output, &shuyu_gate::Context::alone(&rules));
    // The report is part of the work measured; its verdict is not the benchmark's business.
    std::hint::black_box(&report);
    Ok(built.output.num_rows())
}

/// The baseline: the same SQL in raw DataFusion over the same batches (one table `t`, no
/// scope, no evidence, no checks). Returns the output's row count.
pub async fn raw_aggregate(batches: Vec<arrow::array::RecordBatch>, sql: &str) -> Result<usize, EngineError> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| EngineError::Missing("rows".into()))?;
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(crate::sql::df)?;
    let ctx = datafusion::prelude::SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(2),
    );
    ctx.register_table("t", std::sync::Arc::new(table))
        .map_err(crate::sql::df)?;
    let out = ctx
        .sql(sql)
        .await
        .map_err(crate::sql::df)?
        .collect()
        .await
        .map_err(crate::sql::df)?;
    Ok(out.iter().map(|b| b.num_rows()).sum())
}
