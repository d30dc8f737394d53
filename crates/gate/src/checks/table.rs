//! Checks of aggregate tables, as ACRO defines them: minimum records per cell, empty cells,
//! n-k dominance, p-percent, and residual degrees of freedom of regressions.

use shuyu_core::error::Message;

use super::{Check, Context, flag};
use crate::output::{MeasureKind, Output, Role};
use crate::report::{Finding, FlaggedCell, Outcome, Remedy};
use crate::rules::Contributors;

/// Minimum entities per cell (ACRO `MinimumThresholdCheck`, counting people or enterprises, not
/// rows): a cell of fewer than `threshold` entities — including an empty one — lets a reader
/// learn about the few people in it. Every measure is also judged by its own contributors (a
/// sum over a subgroup discloses about that subgroup), and an output with no cell at all fails
/// too: "nothing matched" says as much about a small group as "one matched".
#[derive(Debug, Clone, Copy, Default)]
pub struct Threshold;

impl Check for Threshold {
    fn id(&self) -> &'static str {
        "threshold"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let Some(table) = output.table() else {
            return Finding::pass(self.id(), Message::new("gate.msg.not_a_table"));
        };
        let t = ctx.rules.threshold;
        if !table.cells.iter().any(|c| c.row.is_some()) {
            return Finding::whole(
                self.id(),
                Outcome::Fail,
                Message::new("gate.msg.empty_output").arg("threshold", t.to_string()),
                Some(Remedy::Coarsen),
            );
        }
        let measures: Vec<(&str, &[usize])> = output
            .columns
            .iter()
            .filter_map(|c| match &c.role {
                Role::Measure { slots, .. } if !slots.is_empty() => Some((c.name.as_str(), slots.as_slice())),
                _ => None,
            })
            .collect();
        let mut cells = Vec::new();
        for c in &table.cells {
            if c.entities < t {
                cells.push(flag(output, c, None));
                continue;
            }
            if ctx.rules.contributors == Contributors::Cell {
                continue;
            }
            for (name, slots) in &measures {
                let small = slots
                    .iter()
                    .filter_map(|s| c.contributions.get(*s))
                    .any(|k| k.nonzero < t);
                if small {
                    cells.push(flag(output, c, Some(name)));
                }
            }
        }
        if let Some(base) = table.rounded.filter(|_| counts_only(output)) {
            // Rounded counts no longer show the small numbers; a person confirms (as ACRO does).
            return Finding::from_cells(
                self.id(),
                Outcome::Review,
                cells,
                Message::new("gate.msg.rounded").arg("base", base.to_string()),
                Remedy::Suppress,
            );
        }
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            cells,
            Message::new("gate.msg.threshold").arg("threshold", t.to_string()),
            if counts_only(output) {
                Remedy::Round {
                    base: ctx.rules.round_base,
                }
            } else {
                Remedy::Suppress
            },
        )
    }
}

/// Whether every measure is a count (rounding protects those).
fn counts_only(output: &Output) -> bool {
    output
        .columns
        .iter()
        .all(|c| !matches!(&c.role, Role::Measure { kind, .. } if *kind != MeasureKind::Count))
}

/// Empty cells (ACRO `PresenceOfZeroCheck`) of frequency and order-statistic tables: "nobody in
/// district X has condition Y" is itself a disclosure about everyone in district X.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zeros;

impl Check for Zeros {
    fn id(&self) -> &'static str {
        "zeros"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let Some(table) = output.table() else {
            return Finding::pass(self.id(), Message::new("gate.msg.not_a_table"));
        };
        if !(output.has_measure(MeasureKind::Count) || output.has_measure(MeasureKind::Order)) {
            return Finding::pass(self.id(), Message::new("gate.msg.zeros_not_relevant"));
        }
        if !ctx.rules.zeros_disclosive {
            return Finding::pass(self.id(), Message::new("gate.msg.zeros_allowed"));
        }
        let cells: Vec<FlaggedCell> = table
            .cells
            .iter()
            .filter(|c| c.records == 0)
            .map(|c| flag(output, c, None))
            .collect();
        if cells.is_empty() && !table.zeros_enumerated && output.key_columns().len() > 1 {
            let reason = if table.groups_filtered {
                "gate.msg.zeros_filtered"
            } else {
                "gate.msg.zeros_too_many"
            };
            return Finding::pass(self.id(), Message::new(reason));
        }
        let result = if table.rounded.is_some() && counts_only(output) {
            Outcome::Review
        } else {
            Outcome::Fail
        };
        Finding::from_cells(
            self.id(),
            result,
            cells,
            Message::new("gate.msg.zeros"),
            Remedy::Suppress,
        )
    }
}

/// The linear measures and, for each, whether any of its cells has a negative contribution —
/// dominance is undefined then and the cells go to a person (ACRO's rule).
fn linear_measures(output: &Output) -> Vec<(usize, &[usize], bool)> {
    let Some(table) = output.table() else {
        return Vec::new();
    };
    output
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match &c.role {
            Role::Measure {
                kind: MeasureKind::Linear,
                slots,
            } if !slots.is_empty() => {
                let negative = table.cells.iter().any(|cell| {
                    slots
                        .iter()
                        .any(|s| cell.contributions.get(*s).is_some_and(|c| c.negatives > 0))
                });
                Some((i, slots.as_slice(), negative))
            }
            _ => None,
        })
        .collect()
}

/// Runs a dominance rule over every linear measure's cells.
fn dominance(
    check: &dyn Check,
    output: &Output,
    disclosive: impl Fn(&crate::output::Contribution) -> bool,
    message: Message,
) -> Finding {
    let measures = linear_measures(output);
    let Some(table) = output.table().filter(|_| !measures.is_empty()) else {
        return Finding::pass(check.id(), Message::new("gate.msg.no_linear_measure"));
    };
    let mut failed = Vec::new();
    let mut negative = Vec::new();
    for (col, slots, has_negative) in measures {
        let name = output.columns[col].name.as_str();
        for cell in &table.cells {
            let contributions = slots.iter().filter_map(|s| cell.contributions.get(*s));
            if has_negative {
                if contributions.clone().any(|c| c.negatives > 0) {
                    negative.push(flag(output, cell, Some(name)));
                }
            } else if contributions.clone().any(&disclosive) {
                failed.push(flag(output, cell, Some(name)));
            }
        }
    }
    if !failed.is_empty() || negative.is_empty() {
        let mut finding = Finding::from_cells(check.id(), Outcome::Fail, failed, message, Remedy::Suppress);
        if !negative.is_empty() {
            // Both: the failures decide, the negative cells are listed too.
            finding.extend_cells(negative);
        }
        return finding;
    }
    Finding::from_cells(
        check.id(),
        Outcome::Review,
        negative,
        Message::new("gate.msg.negative"),
        Remedy::Rewrite,
    )
}

/// n-k dominance (ACRO `NKCheck`, n = 2, k = 90 %): when two contributors make most of a cell's
/// total, each can estimate the other's value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dominance;

impl Check for Dominance {
    fn id(&self) -> &'static str {
        "nk-dominance"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let share = ctx.rules.nk_share;
        dominance(
            self,
            output,
            |c| c.n > 0 && c.sum != 0.0 && c.top2 / c.sum >= share,
            Message::new("gate.msg.nk").arg("share", format!("{}", share * 100.0)),
        )
    }
}

/// p-percent (ACRO `PPercentCheck`, p = 10 %): when the rest of a cell's contributors add up to
/// less than p % of the largest, the second largest can estimate the largest within p %.
#[derive(Debug, Clone, Copy, Default)]
pub struct PPercent;

impl Check for PPercent {
    fn id(&self) -> &'static str {
        "p-percent"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let p = ctx.rules.p_ratio;
        dominance(
            self,
            output,
            |c| {
                if c.n == 0 {
                    return false;
                }
                let rest = c.sum - c.top2;
                let ratio = if c.largest == 0.0 { rest } else { rest / c.largest };
                ratio < p
            },
            Message::new("gate.msg.p_percent").arg("p", format!("{}", p * 100.0)),
        )
    }
}

/// Residual degrees of freedom of regressions (ACRO `MinimumDoFCheck`): a model fitted to
/// barely more records than parameters nearly reproduces the records.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResidualDof;

impl Check for ResidualDof {
    fn id(&self) -> &'static str {
        "residual-dof"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let Some(table) = output.table().filter(|_| output.has_measure(MeasureKind::Regression)) else {
            return Finding::pass(self.id(), Message::new("gate.msg.no_regression"));
        };
        let min = ctx.rules.residual_dof;
        let cells = table
            .cells
            .iter()
            .filter(|c| c.row.is_some() && c.residual_dof.is_none_or(|d| d < min))
            .map(|c| flag(output, c, None))
            .collect();
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            cells,
            Message::new("gate.msg.dof").arg("dof", min.to_string()),
            Remedy::Coarsen,
        )
    }
}
