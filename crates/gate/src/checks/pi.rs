//! The personal-information scan: every value of an output is read by the classification
//! detectors (check digits, not bare patterns) — as written, with separators removed, as digit
//! runs inside longer text, reversed, hex- or base64-decoded, as numbers, and two adjacent
//! columns joined — so an ID number cannot leave split, concatenated or encoded.

use std::collections::BTreeSet;

use base64::Engine as _;
use shuyu_classify::FieldType;
use shuyu_core::error::Message;

use super::{Check, Context, flag};
use crate::output::{MeasureKind, Output, Role, cell_text};
use crate::report::{Finding, FlaggedCell, Outcome, Remedy};

/// The identifiers the scan looks for, most specific first.
const STRICT: [FieldType; 5] = [
    FieldType::IdNumber,
    FieldType::Uscc,
    FieldType::Mobile,
    FieldType::BankCard,
    FieldType::Email,
];

/// Rows × column pairs beyond which the joined-columns scan stops (it is quadratic in columns).
const MAX_PAIR_CELLS: usize = 4_000_000;

/// The personal-information scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonalInfo;

/// The identifier types found in one value, in any of the encodings the scan knows.
pub fn find_identifiers(value: &str) -> BTreeSet<FieldType> {
    let mut found = BTreeSet::new();
    for candidate in readings(value) {
        scan_text(&candidate, &mut found);
    }
    found
}

/// The ways a value may carry an identifier.
fn readings(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    let mut out = vec![trimmed.to_string()];
    let compact: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '.' | '/' | ',' | ':' | '|'))
        .collect();
    if compact != trimmed {
        out.push(compact.clone());
    }
    out.push(compact.chars().rev().collect());
    if compact.len() >= 22
        && compact.len().is_multiple_of(2)
        && compact.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(bytes) = hex::decode(&compact)
        && let Ok(text) = String::from_utf8(bytes)
    {
        out.push(text);
    }
    if compact.len() >= 16 {
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
        ] {
            if let Ok(bytes) = engine.decode(compact.trim_end_matches('=').to_string() + pad(&compact))
                && let Ok(text) = String::from_utf8(bytes)
            {
                out.push(text);
            }
        }
    }
    out
}

fn pad(s: &str) -> &'static str {
    match s.trim_end_matches('=').len() % 4 {
        2 => "==",
        3 => "=",
        _ => "",
    }
}

/// Looks for identifiers in one reading: the whole text, each run of digits (with `X` for ID
/// check characters), and every 18-character window of longer runs (IDs concatenated).
fn scan_text(text: &str, found: &mut BTreeSet<FieldType>) {
    for t in STRICT {
        if t.accepts(text) {
            found.insert(t);
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < chars.len() && (chars[end].is_ascii_digit() || matches!(chars[end], 'X' | 'x')) {
            end += 1;
        }
        let run: String = chars[start..end].iter().collect();
        if run.len() < text.len() {
            for t in [FieldType::IdNumber, FieldType::Mobile, FieldType::BankCard] {
                if t.accepts(&run) {
                    found.insert(t);
                }
            }
        }
        if run.len() > 18 {
            let bytes = run.as_bytes();
            for w in bytes.windows(18) {
                if let Ok(s) = std::str::from_utf8(w)
                    && FieldType::IdNumber.accepts(s)
                {
                    found.insert(FieldType::IdNumber);
                }
            }
        }
        start = end;
    }
}

impl Check for PersonalInfo {
    fn id(&self) -> &'static str {
        "personal-info"
    }

    fn run(&self, output: &Output, _ctx: &Context<'_>) -> Finding {
        let batch = &output.batch;
        let rows = batch.num_rows();
        let table_rows = output.table().map(|t| {
            let mut by_row = vec![None; rows];
            for cell in &t.cells {
                if let Some(r) = cell.row.filter(|r| *r < rows) {
                    by_row[r] = Some(cell);
                }
            }
            by_row
        });
        let flag_at = |row: usize, column: &str| -> FlaggedCell {
            match table_rows.as_ref().and_then(|t| t[row]) {
                Some(cell) => flag(output, cell, Some(column)),
                None => FlaggedCell {
                    keys: Default::default(),
                    column: Some(column.to_string()),
                    row: Some(row),
                },
            }
        };
        // Counts, sums and means are computed numbers; a coincidence with a mobile's or a bank
        // card's shape is no disclosure (and small cells are the threshold's business).
        let scanned: Vec<usize> = output
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !matches!(
                    c.role,
                    Role::Measure {
                        kind: MeasureKind::Count | MeasureKind::Linear | MeasureKind::Spread | MeasureKind::Regression,
                        ..
                    }
                )
            })
            .map(|(i, _)| i)
            .filter(|i| *i < batch.num_columns())
            .collect();
        let mut strict = Vec::new();
        let mut kinds = BTreeSet::new();
        let mut texts: Vec<Vec<Option<String>>> = Vec::with_capacity(scanned.len());
        for &col in &scanned {
            let array = batch.column(col);
            let name = output.columns[col].name.as_str();
            let mut column_texts = Vec::with_capacity(rows);
            for row in 0..rows {
                let text = cell_text(array, row);
                if let Some(t) = &text {
                    let found = find_identifiers(t);
                    if !found.is_empty() {
                        strict.push(flag_at(row, name));
                    }
                    kinds.extend(found);
                }
                column_texts.push(text);
            }
            texts.push(column_texts);
        }
        // Two columns joined: an ID split into its region and the rest, a mobile into 3 + 8.
        let pairs = scanned.len() * scanned.len().saturating_sub(1);
        if pairs * rows <= MAX_PAIR_CELLS {
            for (a, ta) in texts.iter().enumerate() {
                for (b, tb) in texts.iter().enumerate() {
                    if a == b {
                        continue;
                    }
                    for row in 0..rows {
                        let (Some(x), Some(y)) = (&ta[row], &tb[row]) else {
                            continue;
                        };
                        let joined = format!("{}{}", x.trim(), y.trim());
                        for t in [FieldType::IdNumber, FieldType::Mobile] {
                            if t.accepts(&joined) && !t.accepts(x) && !t.accepts(y) {
                                kinds.insert(t);
                                strict.push(flag_at(row, &output.columns[scanned[a]].name));
                                strict.push(flag_at(row, &output.columns[scanned[b]].name));
                            }
                        }
                    }
                }
            }
        }
        let found: Vec<&str> = kinds.iter().map(|k| k.code()).collect();
        let message = if found.is_empty() {
            Message::new("gate.msg.personal_info_none")
        } else {
            Message::new("gate.msg.personal_info").arg("found", found.join(", "))
        };
        let mut columns: Vec<String> = strict.iter().filter_map(|c| c.column.clone()).collect();
        columns.sort();
        columns.dedup();
        Finding::from_cells(
            self.id(),
            Outcome::Fail,
            strict,
            message,
            Remedy::DropColumns { columns },
        )
    }
}
