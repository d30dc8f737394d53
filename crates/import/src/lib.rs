//! # shuyu-import
//!
//! Takes in the files a bureau really has: CSV in UTF-8, GBK or
//! GB18030 (detected, with an override), XLSX, Parquet and JSON Lines. The first
//! rows infer each column's type with `shuyu-classify` (check digits, not
//! patterns); then every row is validated — a value that breaks its column's
//! rule, a missing required value, a malformed line — and never silently
//! dropped: it goes to a row-level error report (row number, field, a digest of
//! the value — never the value — and the rule) and the row to a quarantine. The
//! provider then keeps the version with the bad rows quarantined, or rejects it.
//! Good rows stream into an encrypted vault version; memory stays bounded by the
//! batch size, whatever the file size (XLSX sheets excepted: a sheet is read whole).
//!
//! Nothing here returns plaintext rows to a caller: the report carries digests,
//! counts, classifications and *masked* examples.

mod source;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shuyu_classify::{FieldClass, FieldType, Grade, classify_field, dataset_grade};
use shuyu_vault::{Sealed, Vault, VaultError};

pub use source::{Format, RowSource, detect_encoding, open};

/// Rows examined to infer the schema.
pub const SAMPLE_ROWS: usize = 10_000;
/// Rows per batch written to the vault.
const BATCH_ROWS: usize = 8192;
/// Error-report rows kept in detail (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100_000;

/// Every rule a row error can name; each has a message in both languages (`rule.*`),
/// so the error report is readable without knowing the codes.
pub const RULES: &[&str] = &[
    "required",
    "malformed_row",
    "ragged_row",
    "field_spans_lines",
    "bad_bytes",
    "encoding_mismatch",
    "id_number_format",
    "id_number_birth_date",
    "id_number_check",
    "uscc_format",
    "uscc_check",
    "party_id_format",
    "mobile_format",
    "bank_card_check",
    "not_a_number",
    "not_a_date",
    "email_format",
    "invalid_value",
];

/// What can stop an import altogether (row-level problems do not: they are reported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not in the declared format.
    #[error("the file is not valid (row {row}): {detail}")]
    Malformed {
        /// 1-based data row, 0 for the header or the file as a whole.
        row: u64,
        /// The reader's message.
        detail: String,
    },
    /// One row cannot be taken as it is (reported and quarantined; the import goes on).
    #[error("row cannot be read as it is: {}", .0.rule)]
    Row(RowFault),
    /// The file has no columns.
    #[error("the file has no header row")]
    NoColumns,
    /// The format cannot be told from the name and was not given.
    #[error("unknown file format of {0}: give one of csv, xlsx, parquet, jsonl")]
    UnknownFormat(String),
    /// The header names a column twice.
    #[error("the header names column {0} twice")]
    DuplicateColumn(String),
    /// An override names a column the file does not have.
    #[error("no column {0} in the file")]
    UnknownColumn(String),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Arrow failed to build a batch.
    #[error("cannot build a batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A row a reader could not take as it is: the rule it broke, the column (or `*`), and
/// what was read of it (kept in quarantine, never in the report).
#[derive(Debug, Clone)]
pub struct RowFault {
    /// The rule (one of [`RULES`]).
    pub rule: &'static str,
    /// The column, or `*` for the row as a whole.
    pub field: String,
    /// The values as read (may be more or fewer than the columns).
    pub values: Vec<Option<String>>,
}

/// What to do with a file that has bad rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Keep the good rows; the bad ones go to quarantine.
    #[default]
    Quarantine,
    /// Keep nothing if any row is bad.
    Reject,
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The format; by default from the file name.
    pub format: Option<Format>,
    /// The text encoding (CSV); by default detected.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Column types the provider sets instead of the inferred ones.
    pub overrides: HashMap<String, FieldType>,
    /// What to do with bad rows.
    pub on_error: OnError,
    /// Rows read so far, for a progress bar or a status page (updated as rows stream).
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// One bad value (or a malformed row): never the value itself, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    /// The column, or `*` for a malformed row.
    pub field: String,
    /// The rule broken (`required`, `id_number_check`, `not_a_number`, `not_a_date`, …).
    pub rule: String,
    /// First 16 hex digits of the value's SHA-256 (empty when the value is missing).
    pub value_digest: String,
}

/// One column as imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The classification (suggested, or the provider's override).
    pub class: FieldClass,
    /// Whether empty values are errors (inferred: ≥ 99 % of sampled rows have one).
    pub required: bool,
    /// Masked examples for reviewers (never raw values).
    pub examples: Vec<String>,
    /// Whether the provider set the type.
    pub overridden: bool,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The format read.
    pub format: Format,
    /// The text encoding used (CSV) or `binary`.
    pub encoding: String,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows kept in the version.
    pub rows_accepted: u64,
    /// Rows set aside.
    pub rows_quarantined: u64,
    /// The columns and their classification.
    pub columns: Vec<Column>,
    /// The dataset's grade: the strictest column's.
    pub grade: Grade,
    /// Every bad value up to [`MAX_REPORTED_ERRORS`], in row order.
    pub errors: Vec<RowError>,
    /// Bad values in all (may exceed `errors.len()`).
    pub error_count: u64,
    /// Whether the version was rejected (the provider chose to keep nothing on errors).
    pub rejected: bool,
}

/// A finished import: the report, and what was sealed into the vault.
#[derive(Debug)]
pub struct Imported {
    /// The report.
    pub report: Report,
    /// The version's good rows (absent if rejected).
    pub data: Option<Sealed>,
    /// The quarantined rows, all as text (absent if none or rejected).
    pub quarantine: Option<Sealed>,
}

fn digest(v: &str) -> String {
    hex::encode(&Sha256::digest(v.as_bytes())[..8])
}

/// The Arrow type a field of type `t` is stored as in the vault (the engine plans jobs over
/// these types without reading data).
pub fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::Integer => DataType::Int64,
        FieldType::Decimal => DataType::Float64,
        FieldType::Date => DataType::Date32,
        _ => DataType::Utf8,
    }
}

/// The rule a value breaks for a column of type `t`, if any.
fn violation(t: FieldType, v: &str) -> Option<&'static str> {
    if t.accepts(v) {
        return None;
    }
    Some(match t {
        FieldType::IdNumber => shuyu_classify::id_number_rule(v).unwrap_or("id_number_format"),
        FieldType::Uscc => {
            if v.trim().len() == 18 {
                "uscc_check"
            } else {
                "uscc_format"
            }
        }
        FieldType::PartyId => match shuyu_classify::id_number_rule(v) {
            Some("id_number_check") => "id_number_check",
            _ if v.trim().len() == 18 => "uscc_check",
            _ => "party_id_format",
        },
        FieldType::Mobile => "mobile_format",
        FieldType::BankCard => "bank_card_check",
        FieldType::Integer | FieldType::Decimal => "not_a_number",
        FieldType::Date | FieldType::Month => "not_a_date",
        FieldType::Email => "email_format",
        _ => "invalid_value",
    })
}

/// Masks a value for display to reviewers, by type (the real masking engine comes later; these hide enough).
pub fn mask_example(t: FieldType, v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let keep = |head: usize, tail: usize| {
        let n = chars.len();
        if n <= head + tail {
            return "*".repeat(n);
        }
        let mut s: String = chars[..head].iter().collect();
        s.push_str(&"*".repeat(n - head - tail));
        s.extend(chars[n - tail..].iter());
        s
    };
    match t {
        FieldType::IdNumber | FieldType::PartyId => keep(6, 1),
        FieldType::Mobile => keep(3, 4),
        FieldType::BankCard => keep(6, 4),
        FieldType::Uscc => keep(8, 0),
        FieldType::PersonName => keep(1, 0),
        FieldType::Address => keep(6.min(chars.len()), 0),
        FieldType::Email => v
            .split_once('@')
            .map(|(_, d)| format!("***@{d}"))
            .unwrap_or_else(|| "***".into()),
        FieldType::LicensePlate => keep(2, 0),
        FieldType::Date => v.get(..4).map(|y| format!("{y}-**-**")).unwrap_or_default(),
        FieldType::Month => v.get(..4).map(|y| format!("{y}-**")).unwrap_or_default(),
        FieldType::Integer | FieldType::Decimal => match v.parse::<f64>() {
            Ok(x) if x != 0.0 => {
                let mag = x.abs().log10().floor() as i32;
                format!("~10^{mag}")
            }
            _ => "~0".into(),
        },
        FieldType::Category => keep(1, 0),
        FieldType::Text => keep(1, 0),
    }
}

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
}

impl Builder {
    fn new(t: &DataType) -> Builder {
        match t {
            DataType::Int64 => Builder::Int(Int64Builder::new()),
            DataType::Float64 => Builder::Float(Float64Builder::new()),
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            _ => Builder::Str(StringBuilder::new()),
        }
    }

    fn push(&mut self, v: Option<&str>) {
        match self {
            Builder::Str(b) => b.append_option(v),
            Builder::Int(b) => b.append_option(v.and_then(|x| x.parse::<i64>().ok())),
            Builder::Float(b) => b.append_option(v.and_then(|x| x.parse::<f64>().ok())),
            Builder::Date(b) => b.append_option(v.and_then(|x| x.parse::<jiff::civil::Date>().ok()).map(|d| {
                let epoch = jiff::civil::Date::constant(1970, 1, 1);
                (d - epoch).get_days()
            })),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

struct Batcher {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
}

impl Batcher {
    fn new(schema: SchemaRef) -> Self {
        let builders = schema.fields().iter().map(|f| Builder::new(f.data_type())).collect();
        Batcher {
            schema,
            builders,
            rows: 0,
        }
    }

    fn push(&mut self, row: &[Option<String>]) {
        for (i, b) in self.builders.iter_mut().enumerate() {
            b.push(row.get(i).and_then(|v| v.as_deref()));
        }
        self.rows += 1;
    }

    fn take(&mut self) -> Result<Option<RecordBatch>, ImportError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let cols: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), cols)?))
    }
}

/// Imports `path` as version `version_id`, sealing good rows at `object_path` and
/// quarantined rows at `object_path` + `.quarantine` in `vault`.
pub async fn import_file(
    path: &Path,
    opts: &Options,
    vault: &Vault,
    version_id: &str,
    object_path: &str,
) -> Result<Imported, ImportError> {
    let format = match opts.format {
        Some(f) => f,
        None => Format::from_name(&path.to_string_lossy())
            .ok_or_else(|| ImportError::UnknownFormat(path.display().to_string()))?,
    };
    let mut src = open(path, format, opts.encoding)?;
    let headers: Vec<String> = src.headers().to_vec();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(ImportError::NoColumns);
    }
    // Two columns of one name: which is which downstream would be a guess.
    if let Some(twice) = headers
        .iter()
        .enumerate()
        .find(|(i, h)| headers[..*i].contains(h))
        .map(|(_, h)| h.clone())
    {
        return Err(ImportError::DuplicateColumn(twice));
    }
    if let Some(unknown) = opts.overrides.keys().find(|k| !headers.contains(k)) {
        return Err(ImportError::UnknownColumn(unknown.clone()));
    }

    // 1. Sample, infer, classify.
    let mut sample: Vec<Result<Vec<Option<String>>, RowFault>> = Vec::new();
    while sample.len() < SAMPLE_ROWS {
        match src.next_row() {
            None => break,
            Some(r) => sample.push(row_or_fault(r)?),
        }
    }
    let columns: Vec<Column> = headers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<&str> = sample
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter_map(|r| r.get(i)?.as_deref())
                .collect();
            let ok_rows = sample.iter().filter(|r| r.is_ok()).count().max(1);
            let mut class = classify_field(name, values.iter().copied());
            let overridden = match opts.overrides.get(name) {
                Some(t) => {
                    class = shuyu_classify::reclassify(class, *t, values.iter().copied());
                    true
                }
                None => false,
            };
            let required = values.len() * 100 >= ok_rows * 99;
            let examples = values
                .iter()
                .take(3)
                .map(|v| mask_example(class.field_type, v))
                .collect();
            Column {
                name: name.clone(),
                class,
                required,
                examples,
                overridden,
            }
        })
        .collect();
    let grade = dataset_grade(columns.iter().map(|c| &c.class.grade));
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.class.field_type), true))
            .collect::<Vec<_>>(),
    ));
    let q_schema: SchemaRef = Arc::new(Schema::new(
        std::iter::once(Field::new("_row", DataType::Int64, false))
            .chain(columns.iter().map(|c| Field::new(&c.name, DataType::Utf8, true)))
            .collect::<Vec<_>>(),
    ));

    // 2. Validate every row; stream good rows into the vault, bad ones into quarantine.
    let mut data = vault.writer(version_id, object_path, schema.clone())?;
    let quarantine_path = format!("{object_path}.quarantine");
    let mut quarantine = vault.writer(&format!("{version_id}.quarantine"), &quarantine_path, q_schema.clone())?;
    let mut p = Pipeline {
        columns,
        good: Batcher::new(schema),
        bad: Batcher::new(q_schema),
        errors: Vec::new(),
        error_count: 0,
        accepted: 0,
        quarantined: 0,
    };
    let mut row_no = 0u64;
    // Read in another encoding than the bytes look like: the file as a whole (row 0) is
    // reported, so nobody accepts garbled text without being told.
    if src.encoding_mismatch().is_some() {
        p.record(RowError {
            row: 0,
            field: "*".into(),
            rule: "encoding_mismatch".into(),
            value_digest: String::new(),
        });
    }
    let outcome: Result<(), ImportError> = async {
        for r in sample.drain(..) {
            row_no += 1;
            p.process(r, row_no);
            p.flush(&mut data, &mut quarantine, false)?;
        }
        loop {
            let next = match src.next_row() {
                None => break,
                Some(r) => row_or_fault(r)?,
            };
            row_no += 1;
            if row_no.is_multiple_of(4096)
                && let Some(c) = &opts.progress
            {
                c.store(row_no, std::sync::atomic::Ordering::Relaxed);
            }
            p.process(next, row_no);
            p.flush(&mut data, &mut quarantine, false)?;
        }
        p.flush(&mut data, &mut quarantine, true)
    }
    .await;
    if let Err(e) = outcome {
        vault.abandon(data);
        vault.abandon(quarantine);
        return Err(e);
    }

    if let Some(c) = &opts.progress {
        c.store(row_no, std::sync::atomic::Ordering::Relaxed);
    }
    let rejected = opts.on_error == OnError::Reject && p.error_count > 0;
    let report = Report {
        format,
        encoding: src.encoding().to_string(),
        rows_read: row_no,
        rows_accepted: if rejected { 0 } else { p.accepted },
        rows_quarantined: if rejected { 0 } else { p.quarantined },
        columns: p.columns,
        grade,
        errors: p.errors,
        error_count: p.error_count,
        rejected,
    };
    if rejected {
        vault.abandon(data);
        vault.abandon(quarantine);
        return Ok(Imported {
            report,
            data: None,
            quarantine: None,
        });
    }
    let sealed = vault.seal(data).await?;
    let q = if p.quarantined > 0 {
        Some(vault.seal(quarantine).await?)
    } else {
        vault.abandon(quarantine);
        None
    };
    Ok(Imported {
        report,
        data: Some(sealed),
        quarantine: q,
    })
}

/// A row as read, or the fault that keeps it out; an error that is not about one row
/// (the file, the header) stops the import.
fn row_or_fault(
    r: Result<Vec<Option<String>>, ImportError>,
) -> Result<Result<Vec<Option<String>>, RowFault>, ImportError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(ImportError::Row(f)) => Ok(Err(f)),
        Err(ImportError::Malformed { row, .. }) if row > 0 => Ok(Err(RowFault {
            rule: "malformed_row",
            field: "*".into(),
            values: Vec::new(),
        })),
        Err(e) => Err(e),
    }
}

/// Bytes that are no text: a NUL or another control character (a tab is text), or the
/// replacement character a decoder puts where bytes did not decode.
fn bad_bytes(v: &str) -> bool {
    v.chars().any(|c| c == '\u{FFFD}' || (c.is_control() && c != '\t'))
}

/// The validation state of one import.
struct Pipeline {
    columns: Vec<Column>,
    good: Batcher,
    bad: Batcher,
    errors: Vec<RowError>,
    error_count: u64,
    accepted: u64,
    quarantined: u64,
}

impl Pipeline {
    fn record(&mut self, e: RowError) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e);
        }
    }

    fn process(&mut self, row: Result<Vec<Option<String>>, RowFault>, row_no: u64) {
        let n = self.columns.len();
        match row {
            Err(f) => {
                self.record(RowError {
                    row: row_no,
                    field: f.field,
                    rule: f.rule.into(),
                    value_digest: String::new(),
                });
                // What was read goes to quarantine; fields beyond the header's count are
                // joined onto its last column so nothing read is dropped.
                let mut values = f.values;
                if values.len() > n && n > 0 {
                    let rest: Vec<String> = values.drain(n - 1..).map(Option::unwrap_or_default).collect();
                    values.push(Some(rest.join(",")));
                }
                values.resize(n, None);
                let mut q: Vec<Option<String>> = vec![Some(row_no.to_string())];
                q.extend(values);
                self.bad.push(&q);
                self.quarantined += 1;
            }
            Ok(mut values) => {
                // Sources other than CSV give a value per column (missing keys are empty).
                values.resize(n, None);
                let mut found = Vec::new();
                for (c, v) in self.columns.iter().zip(&values) {
                    let rule = match v {
                        None if c.required => Some("required"),
                        None => None,
                        Some(v) if bad_bytes(v) => Some("bad_bytes"),
                        Some(v) => violation(c.class.field_type, v),
                    };
                    if let Some(rule) = rule {
                        found.push(RowError {
                            row: row_no,
                            field: c.name.clone(),
                            rule: rule.into(),
                            value_digest: v.as_deref().map(digest).unwrap_or_default(),
                        });
                    }
                }
                if found.is_empty() {
                    self.good.push(&values);
                    self.accepted += 1;
                } else {
                    for e in found {
                        self.record(e);
                    }
                    let mut q: Vec<Option<String>> = vec![Some(row_no.to_string())];
                    q.extend(values);
                    self.bad.push(&q);
                    self.quarantined += 1;
                }
            }
        }
    }

    fn flush(
        &mut self,
        data: &mut shuyu_vault::Writer,
        quarantine: &mut shuyu_vault::Writer,
        force: bool,
    ) -> Result<(), ImportError> {
        if (force || self.good.rows >= BATCH_ROWS)
            && let Some(b) = self.good.take()?
        {
            data.write(&b)?;
        }
        if (force || self.bad.rows >= BATCH_ROWS)
            && let Some(b) = self.bad.take()?
        {
            quarantine.write(&b)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_a_row_can_break_is_listed_and_has_a_message_in_both_languages() {
        let bad = [
            "",
            "x",
            "@@",
            "99999999999999999X",
            "3799021990010100",
            "2021/3/7",
            "1e999",
            "91379902MA00000000",
        ];
        for t in FieldType::ALL {
            for v in bad {
                if let Some(rule) = violation(t, v) {
                    assert!(RULES.contains(&rule), "{t}: {rule} not listed");
                }
            }
        }
        for rule in RULES {
            for lang in shuyu_core::i18n::Lang::ALL {
                assert!(
                    shuyu_core::i18n::catalog().has(lang, &format!("rule.{rule}")),
                    "rule.{rule} missing in {lang:?}"
                );
            }
        }
    }
}
