//! Differencing against the disclosure ledger.
//!
//! Two released tables leak when a cell of one and a cell of the other — or their margins over
//! the keys both share — are made of nearly the same records: subtracting the two values tells
//! about the few people in one and not the other (a complement, a one-person difference, two
//! overlapping ranges, a tracker). Whether two cells are "nearly the same" cannot be judged from
//! their column names or their values: the engine compares them **entity by entity** — for every
//! earlier release to the same developer organisation, and every public one, which entities are
//! behind each of its cells, with which rows — and hands the gate one [`Comparison`] per earlier
//! release. This check flags every cell of the new output in a group where the two overlap and
//! differ by fewer entities than the threshold. A ledger entry the engine could not read is a
//! failure, never a pass.

use serde::{Deserialize, Serialize};
use shuyu_core::error::Message;

use super::{Check, Context, flag};
use crate::output::Output;
use crate::report::{Finding, FlaggedCell, Outcome, Remedy};

/// The new output compared with one earlier release (or another output of the same job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum Comparison {
    /// Compared on the keys both share (by lineage: the same source field and transform),
    /// named as the new output names them; empty keys compare the tables' totals.
    Compared {
        /// The earlier release.
        release: String,
        /// The new output's key columns the comparison groups by.
        keys: Vec<String>,
        /// Each group (values of `keys`) in which both tables have entities.
        groups: Vec<GroupDifference>,
    },
    /// The earlier release's ledger entry could not be read: the check fails closed.
    Unreadable {
        /// The earlier release.
        release: String,
    },
}

/// One group of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDifference {
    /// The values of the comparison's keys.
    pub key: Vec<String>,
    /// Entities behind both tables' cells of the group.
    pub common: u64,
    /// Entities behind one table's cells of the group and not the other's.
    pub only: u64,
    /// Entities behind both whose contribution differs (other records, or other numbers of them,
    /// as far as the two tables' measures can tell).
    pub changed: u64,
}

impl GroupDifference {
    /// Whether subtracting the two groups tells about fewer than `t` entities: they overlap, and
    /// the entities whose contribution differs — in one and not the other, or in both with other
    /// records — are a few.
    pub fn discloses(&self, t: u64) -> bool {
        let differing = self.only + self.changed;
        self.common > 0 && differing > 0 && differing < t
    }
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
        let names = output.key_names();
        let mut cells: Vec<FlaggedCell> = Vec::new();
        let mut releases = std::collections::BTreeSet::new();
        let mut unreadable = std::collections::BTreeSet::new();
        for comparison in ctx.ledger {
            let (release, keys, groups) = match comparison {
                Comparison::Unreadable { release } => {
                    unreadable.insert(release.clone());
                    continue;
                }
                Comparison::Compared { release, keys, groups } => (release, keys, groups),
            };
            let Some(positions) = keys
                .iter()
                .map(|k| names.iter().position(|n| n == k))
                .collect::<Option<Vec<usize>>>()
            else {
                // Keys the output does not have: the comparison is not about this output.
                unreadable.insert(release.clone());
                continue;
            };
            for g in groups {
                if !g.discloses(ctx.rules.threshold) {
                    continue;
                }
                releases.insert(release.clone());
                for c in table.cells.iter().filter(|c| c.row.is_some()) {
                    let projected: Vec<&String> = positions.iter().filter_map(|p| c.key.get(*p)).collect();
                    if projected.len() == g.key.len() && projected.iter().zip(&g.key).all(|(a, b)| *a == b) {
                        cells.push(flag(output, c, None));
                    }
                }
            }
        }
        if !unreadable.is_empty() {
            return Finding::whole(
                self.id(),
                Outcome::Fail,
                Message::new("gate.msg.ledger_unreadable")
                    .arg("releases", unreadable.into_iter().collect::<Vec<_>>().join(", ")),
                Some(Remedy::Rewrite),
            );
        }
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            cells,
            Message::new("gate.msg.differencing")
                .arg("threshold", ctx.rules.threshold.to_string())
                .arg("releases", releases.into_iter().collect::<Vec<_>>().join(", ")),
            Remedy::Suppress,
        )
    }
}
