//! Differencing against the disclosure ledger: what a scenario (and a recipient) already
//! received is remembered cell by cell, and a new table whose cells differ from an earlier
//! table's by a few records — after summing over the dimensions one of them lacks — would let
//! the recipient subtract the two and learn about those few people.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use shuyu_core::error::Message;

use super::{Check, Context, flag};
use crate::output::Output;
use crate::report::{Finding, FlaggedCell, Outcome, Remedy};

/// What one released table revealed: its keys and each cell's record count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The release that revealed it.
    pub release: String,
    /// The output's name in that release.
    pub output: String,
    /// The key column names.
    pub keys: Vec<String>,
    /// Each released cell: key values (in `keys` order) and records.
    pub cells: Vec<LedgerCell>,
}

/// One released cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerCell {
    /// Key values, in the entry's key order.
    pub key: Vec<String>,
    /// Records in the cell.
    pub records: u64,
}

impl LedgerEntry {
    /// What releasing `output` reveals (its shown cells; suppressed cells are not revealed and
    /// are left out by the caller, who passes the released output).
    pub fn of(release: &str, output: &Output) -> Option<LedgerEntry> {
        let table = output.table()?;
        Some(LedgerEntry {
            release: release.to_string(),
            output: output.name.clone(),
            keys: output.key_names(),
            cells: table
                .cells
                .iter()
                .filter(|c| c.row.is_some())
                .map(|c| LedgerCell {
                    key: c.key.clone(),
                    records: c.records,
                })
                .collect(),
        })
    }
}

/// Sums cells' records over the keys not in `onto` (`onto` ⊆ `keys`).
fn project<'a>(
    keys: &[String],
    onto: &[String],
    cells: impl Iterator<Item = (&'a [String], u64)>,
) -> Option<HashMap<Vec<String>, u64>> {
    let positions: Vec<usize> = onto
        .iter()
        .map(|k| keys.iter().position(|x| x == k))
        .collect::<Option<_>>()?;
    let mut out: HashMap<Vec<String>, u64> = HashMap::new();
    for (key, records) in cells {
        let projected: Vec<String> = positions
            .iter()
            .map(|p| key.get(*p).cloned().unwrap_or_default())
            .collect();
        *out.entry(projected).or_default() += records;
    }
    Some(out)
}

/// The differencing check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Differencing;

impl Check for Differencing {
    fn id(&self) -> &'static str {
        "differencing"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let Some(table) = output.table() else {
            return Finding::pass(self.id(), Message::new("gate.msg.not_a_table"));
        };
        if ctx.ledger.is_empty() {
            return Finding::pass(self.id(), Message::new("gate.msg.ledger_empty"));
        }
        let keys = output.key_names();
        let key_set: BTreeSet<&String> = keys.iter().collect();
        let shown: Vec<_> = table.cells.iter().filter(|c| c.row.is_some()).collect();
        let mut cells: Vec<FlaggedCell> = Vec::new();
        let mut releases = BTreeSet::new();
        for entry in ctx.ledger {
            let entry_set: BTreeSet<&String> = entry.keys.iter().collect();
            // Compare on the keys both tables share, when one table's keys contain the other's.
            let common: Vec<String> = if entry_set.is_subset(&key_set) {
                entry.keys.clone()
            } else if key_set.is_subset(&entry_set) {
                keys.clone()
            } else {
                continue;
            };
            let Some(new) = project(&keys, &common, shown.iter().map(|c| (c.key.as_slice(), c.records))) else {
                continue;
            };
            let Some(old) = project(
                &entry.keys,
                &common,
                entry.cells.iter().map(|c| (c.key.as_slice(), c.records)),
            ) else {
                continue;
            };
            for (key, n) in &new {
                let Some(o) = old.get(key) else { continue };
                let d = n.abs_diff(*o);
                if d > 0 && d < ctx.rules.threshold {
                    releases.insert(entry.release.clone());
                    let positions: Vec<usize> =
                        common.iter().filter_map(|k| keys.iter().position(|x| x == k)).collect();
                    for c in &shown {
                        let projected: Vec<&String> = positions.iter().filter_map(|p| c.key.get(*p)).collect();
                        if projected.iter().zip(key).all(|(a, b)| *a == b) {
                            cells.push(flag(output, c, None));
                        }
                    }
                }
            }
        }
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            cells,
            Message::new("gate.msg.differencing")
                .arg("threshold", ctx.rules.threshold.to_string())
                .arg("releases", releases.into_iter().collect::<Vec<_>>().join(", ")),
            Remedy::Coarsen,
        )
    }
}
