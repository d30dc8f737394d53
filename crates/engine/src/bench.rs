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
