//! Record-level outputs: raw rows and identifier columns leaving, and k-anonymity of what
//! record-level detail a reviewer may still let through.

use std::collections::{BTreeMap, HashMap, HashSet};

use shuyu_classify::FieldType;
use shuyu_core::error::Message;

use super::{Check, Context, flag};
use crate::output::{MeasureKind, Output, Role, Shape, cell_text};
use crate::report::{Finding, FlaggedCell, Outcome, Remedy};

/// Whether a field of this type identifies a person or an enterprise directly.
pub(crate) fn identifying(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::IdNumber
            | FieldType::Mobile
            | FieldType::BankCard
            | FieldType::Uscc
            | FieldType::PartyId
            | FieldType::PersonName
            | FieldType::Address
            | FieldType::LicensePlate
            | FieldType::Email
    )
}

/// Whether a field of this type is a quasi-identifier of record-level outputs.
fn quasi(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::Date | FieldType::Month | FieldType::Category | FieldType::Integer
    )
}

fn column_flag(name: &str) -> FlaggedCell {
    FlaggedCell {
        keys: BTreeMap::new(),
        column: Some(name.to_string()),
        row: None,
    }
}

/// Raw-row export: record-level rows, identifier columns, per-person or per-enterprise detail
/// (grouped by an identifier, aggregates that list values, or one record per cell).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRows;

impl Check for RawRows {
    fn id(&self) -> &'static str {
        "raw-rows"
    }

    fn run(&self, output: &Output, _ctx: &Context<'_>) -> Finding {
        let identifier_columns: Vec<FlaggedCell> = output
            .columns
            .iter()
            .filter(|c| !matches!(c.role, Role::Measure { kind, .. } if kind != MeasureKind::Listing && kind != MeasureKind::Order))
            .filter(|c| c.sources.iter().any(|t| identifying(*t)))
            .map(|c| column_flag(&c.name))
            .collect();
        let columns: Vec<String> = identifier_columns.iter().filter_map(|c| c.column.clone()).collect();
        if !identifier_columns.is_empty() {
            return Finding::from_cells(
                self.id(),
                Outcome::Fail,
                identifier_columns,
                Message::new("gate.msg.identifier_columns").arg("columns", columns.join(", ")),
                crate::report::Remedy::DropColumns { columns },
            );
        }
        match &output.shape {
            Shape::Microdata(_) => {
                // Record-level rows always go to a person, even when there are none: whether a
                // selection matched anybody is itself something the rows tell.
                Finding::whole(
                    self.id(),
                    Outcome::Review,
                    Message::new("gate.msg.record_level"),
                    Some(Remedy::Coarsen),
                )
            }
            Shape::Table(table) => {
                let listing: Vec<FlaggedCell> = output
                    .columns
                    .iter()
                    .filter(|c| {
                        matches!(
                            c.role,
                            Role::Measure {
                                kind: MeasureKind::Listing,
                                ..
                            }
                        )
                    })
                    .map(|c| column_flag(&c.name))
                    .collect();
                if !listing.is_empty() {
                    return Finding::from_cells(
                        self.id(),
                        Outcome::Fail,
                        listing,
                        Message::new("gate.msg.listing"),
                        Remedy::Rewrite,
                    );
                }
                let shown: Vec<_> = table.cells.iter().filter(|c| c.row.is_some()).collect();
                if shown.len() > 1 && shown.iter().all(|c| c.entities <= 1) {
                    let cells = shown.iter().map(|c| flag(output, c, None)).collect();
                    return Finding::from_cells(
                        self.id(),
                        Outcome::Fail,
                        cells,
                        Message::new("gate.msg.one_record_per_row"),
                        Remedy::Coarsen,
                    );
                }
                Finding::pass(self.id(), Message::new("gate.msg.aggregated"))
            }
        }
    }
}

/// k-anonymity of record-level outputs over their quasi-identifiers (dates, months,
/// categories, whole numbers): each combination must be shared by at least k **entities** —
/// five rows of one person are one person.
#[derive(Debug, Clone, Copy, Default)]
pub struct KAnonymity;

impl Check for KAnonymity {
    fn id(&self) -> &'static str {
        "k-anonymity"
    }

    fn run(&self, output: &Output, ctx: &Context<'_>) -> Finding {
        let Shape::Microdata(evidence) = &output.shape else {
            return Finding::pass(self.id(), Message::new("gate.msg.not_record_level"));
        };
        let qis: Vec<usize> = output
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.sources.is_empty() && c.sources.iter().all(|t| quasi(*t)))
            .map(|(i, _)| i)
            .filter(|i| *i < output.batch.num_columns())
            .collect();
        if qis.is_empty() {
            return Finding::pass(self.id(), Message::new("gate.msg.no_quasi_identifiers"));
        }
        let rows = output.batch.num_rows();
        let keys: Vec<Vec<String>> = (0..rows)
            .map(|r| {
                qis.iter()
                    .map(|c| cell_text(output.batch.column(*c), r).unwrap_or_default())
                    .collect()
            })
            .collect();
        // Distinct entities per class; a row without its entity counts as an entity of its own.
        let mut members: HashMap<&Vec<String>, HashSet<(bool, u64)>> = HashMap::new();
        for (row, k) in keys.iter().enumerate() {
            let who = match evidence.entities.get(row) {
                Some(e) => (true, *e),
                None => (false, row as u64),
            };
            members.entry(k).or_default().insert(who);
        }
        let sizes: HashMap<&Vec<String>, u64> = members.iter().map(|(k, m)| (*k, m.len() as u64)).collect();
        let names: Vec<String> = qis.iter().map(|c| output.columns[*c].name.clone()).collect();
        let cells = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| sizes.get(k).copied().unwrap_or(0) < ctx.rules.k)
            .map(|(row, k)| FlaggedCell {
                keys: names.iter().cloned().zip(k.iter().cloned()).collect(),
                column: None,
                row: Some(row),
            })
            .collect();
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            cells,
            Message::new("gate.msg.k_anonymity")
                .arg("k", ctx.rules.k.to_string())
                .arg("columns", names.join(", ")),
            Remedy::Coarsen,
        )
    }
}
