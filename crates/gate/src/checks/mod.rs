//! The checks. Each is a [`Check`] with a stable id; [`run`] applies them all to an output.

use std::collections::BTreeMap;

use crate::output::{Cell, Output};
use crate::report::{Finding, FlaggedCell, Report};
use crate::rules::Rules;

mod ledger;
mod pi;
mod rows;
mod table;

pub use ledger::{Comparison, Differencing, GroupDifference};
pub use pi::{PersonalInfo, find_identifiers};
pub use rows::{KAnonymity, RawRows};
pub use table::{Dominance, PPercent, ResidualDof, Threshold, Zeros};

/// Where an output is going.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    /// The recipient (an organisation's name or id).
    pub recipient: String,
    /// Whether the recipient is outside the mainland (R-38(5): refused).
    pub cross_border: bool,
}

/// What a check may consult besides the output.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The thresholds.
    pub rules: &'a Rules,
    /// The output compared with everything already revealed to the same developer organisation
    /// and to the public (computed by the engine from the disclosure ledger, entity by entity).
    pub ledger: &'a [Comparison],
    /// The recipient, when the output is to be released to one.
    pub destination: Option<&'a Destination>,
}

impl<'a> Context<'a> {
    /// The context of a check with no ledger and no destination (a job's own report).
    pub fn alone(rules: &'a Rules) -> Context<'a> {
        Context {
            rules,
            ledger: &[],
            destination: None,
        }
    }
}

/// One disclosure check. Implementations are pure: the same output and context give the same
/// finding, so a report can be reproduced by anyone holding the evidence.
pub trait Check: Send + Sync {
    /// The stable id (used in reports, overrides and the audit log).
    fn id(&self) -> &'static str;
    /// Judges one output.
    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding;
}

/// Every check, in report order.
pub fn standard() -> Vec<Box<dyn Check>> {
    vec![
        Box::new(RawRows),
        Box::new(PersonalInfo),
        Box::new(Threshold),
        Box::new(Zeros),
        Box::new(Dominance),
        Box::new(PPercent),
        Box::new(ResidualDof),
        Box::new(KAnonymity),
        Box::new(Differencing),
        Box::new(CrossBorder),
    ]
}

/// Runs every check on an output.
pub fn run(output: &Output, ctx: &Context<'_>) -> Report {
    let findings = standard().iter().map(|c| c.run(output, ctx)).collect();
    Report::new(&output.name, findings, ctx.rules)
}

/// The cross-border destination check (R-38(5)): no output leaves the country.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossBorder;

impl Check for CrossBorder {
    fn id(&self) -> &'static str {
        "cross-border"
    }

    fn run(&self, _output: &Output, ctx: &Context<'_>) -> Finding {
        use shuyu_core::error::Message;
        match ctx.destination {
            None => Finding::pass(self.id(), Message::new("gate.msg.no_recipient")),
            Some(d) if !d.cross_border => Finding::pass(
                self.id(),
                Message::new("gate.msg.domestic").arg("recipient", d.recipient.clone()),
            ),
            Some(d) => Finding::whole(
                self.id(),
                crate::report::Outcome::Fail,
                Message::new("gate.msg.cross_border").arg("recipient", d.recipient.clone()),
                Some(crate::report::Remedy::Rewrite),
            ),
        }
    }
}

/// A table cell as a flagged cell: its key values by key column.
pub(crate) fn flag(output: &Output, cell: &Cell, column: Option<&str>) -> FlaggedCell {
    let names = output.key_names();
    FlaggedCell {
        keys: names
            .into_iter()
            .zip(cell.key.iter().cloned())
            .collect::<BTreeMap<_, _>>(),
        column: column.map(str::to_string),
        row: cell.row,
    }
}
