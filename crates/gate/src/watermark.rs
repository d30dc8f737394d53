//! Recipient-specific, keyed watermarks on released tables.
//!
//! Every table that leaves the domain is marked for one release and one recipient, so that a
//! leaked copy can be traced back: `shuyu watermark detect FILE` reads the copy
//! ([`read_leaked`]) and tests it against the keys of every release ([`detect`]).
//!
//! # Scheme
//!
//! * The key of a (release, recipient) pair is HMAC-SHA256 of the platform secret over the
//!   pair ([`WatermarkKey::derive`]); without the secret no one can tell which cells carry
//!   which bit, nor forge another recipient's mark.
//! * Each non-null, non-zero cell of a *mark column* carries one bit: the low bit of
//!   HMAC(key, SHA-256(row identity ‖ column name)). The row identity is the canonical text
//!   ([`canonical_text`]) of the row's *key column* values, so the bit of a cell does not depend
//!   on row order, column order or which other rows survived; and the canonical text is the same
//!   whether the value was read from Arrow, a CSV file or an Excel number.
//! * Integers carry the bit in their parity and are only ever raised, by at most 1, so a count
//!   never drops below a disclosure threshold it passed. Floats carry it in the parity of their
//!   7th significant digit (or of their units from 10⁶ up); the marked value is the one nearest
//!   the original whose read-back bit is right, so the relative change is at most
//!   [`FLOAT_MAX_RELATIVE_CHANGE`] (2.5 × 10⁻⁶; typically ≤ 10⁻⁶).
//! * Detection reads each (row identity, column) cell once, compares its bit with each
//!   candidate's, and scores the candidate with the exact binomial tail P(X ≥ matched | bits, ½).
//!   For a key that did not mark the copy the expected bits are independent fair coins whatever
//!   the data, so the tail is an honest p-value; a candidate is named only when it reads at least
//!   [`MIN_BITS`] bits, matches at least [`MIN_MATCH_RATE`] of them and its tail is below
//!   [`FAMILY_ERROR`] divided by the number of candidates (Bonferroni over all candidates).
//!
//! # Limits
//!
//! The mark survives row shuffling, column reordering, row subsetting and CSV/Excel round trips
//! that keep the values (any writer printing Rust's or Excel's shortest round-trip text does).
//! It does not survive rounding the marked columns (to 2 decimals, say), renaming the key or
//! marked columns, or recipients comparing their copies cell by cell. A table without key columns
//! gives one bit per marked column (every row has the same identity), too few to name anyone:
//! [`Embedded::independent_bits`] tells the release report how many bits the table can carry.
//! Decimal columns are refused ([`WatermarkError::UnsupportedType`]): a CSV or Excel copy drops
//! their scale and trailing zeros, so no digit of theirs reliably survives; cast them to Float64.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use calamine::{Data, Reader, Xls, Xlsx, open_workbook_from_rs};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

/// The fewest bits a candidate must read before it can be named: with fewer, a lucky wrong key
/// matches too often for any threshold to mean much.
pub const MIN_BITS: usize = 24;

/// The share of read bits that must match before a candidate can be named. A marked copy matches
/// (nearly) all of them; the slack absorbs cells that were left unmarked or edited after release.
pub const MIN_MATCH_RATE: f64 = 0.9;

/// The chance, over all candidates together, of naming a release or recipient that did not
/// produce the copy: each candidate's binomial tail must be below this divided by their number.
pub const FAMILY_ERROR: f64 = 1e-6;

/// The largest relative change marking makes to a float cell (|v′ − v| ≤ this × |v|), stated in
/// the release report. Float32 cells may differ by a further f32 rounding (≤ 6 × 10⁻⁸).
pub const FLOAT_MAX_RELATIVE_CHANGE: f64 = 2.5e-6;

/// The largest change marking makes to an integer cell: it is raised by 0 or 1, never lowered.
pub const INT_MAX_CHANGE: i64 = 1;

/// Domain separation of key derivation, so a watermark key can never equal a key derived from the
/// same secret for another purpose.
const KEY_DOMAIN: &[u8] = b"shuyu-watermark-v1";

/// Domain separation of cell names (see [`cell_message`]).
const CELL_DOMAIN: &[u8] = b"shuyu-watermark-cell-v1";

/// 2⁵³: the largest range in which every integer is exactly a double.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// What went wrong marking a table or reading a leaked copy; each names the column or file.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    /// The spec names a column the table does not have.
    #[error("column `{0}` is not in the table")]
    NoColumn(String),
    /// A mark column whose type cannot carry a bit (only integers and floats can).
    #[error("column `{column}` has type {data_type}; only integer and float columns can carry a watermark")]
    UnsupportedType {
        /// The column's name.
        column: String,
        /// Its Arrow type, as text.
        data_type: String,
    },
    /// A column is both a key column and a mark column: marking it would change the row
    /// identities that the bits are keyed on.
    #[error("column `{0}` is both a key column and a mark column")]
    KeyColumnMarked(String),
    /// A key value could not be turned into text.
    #[error("column `{column}`, row {row}: cannot render the value as text: {detail}")]
    Format {
        /// The column's name.
        column: String,
        /// The row (0-based).
        row: usize,
        /// Why.
        detail: String,
    },
    /// Arrow refused the marked columns (it should not: they keep the original types).
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// The leaked file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The leaked file is text but not UTF-8.
    #[error(
        "{}: not UTF-8 text ({encoding}; first bad byte on line {line}); save it as \"CSV UTF-8\" or XLSX and retry",
        .path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the first byte that is not UTF-8.
        line: usize,
        /// What it probably is instead.
        encoding: &'static str,
    },
    /// The leaked file is not well-formed CSV.
    #[error("{}: bad CSV: {detail}", .path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV reader's message, with the line.
        detail: String,
    },
    /// The leaked file is a spreadsheet that could not be read.
    #[error("{}: cannot read the spreadsheet: {detail}", .path.display())]
    Spreadsheet {
        /// The file.
        path: PathBuf,
        /// The spreadsheet reader's message.
        detail: String,
    },
    /// The leaked file has no header row.
    #[error("{}: the file is empty (no header row)", .0.display())]
    Empty(PathBuf),
}

/// The release and recipient a watermark names: what detection reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mark {
    /// The release's identifier.
    pub release: String,
    /// The recipient's identifier.
    pub recipient: String,
}

/// Which columns identify a row and which carry bits; stored with each release so detection
/// knows what to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkSpec {
    /// Columns whose values identify a row (group-by values such as `district`, `year`), in a
    /// fixed order; an empty list gives every row the same identity.
    pub key_columns: Vec<String>,
    /// Numeric columns that carry the bits (counts, sums, means).
    pub mark_columns: Vec<String>,
}

/// The secret key of one (release, recipient) pair. Its bytes are never printed.
#[derive(Clone)]
pub struct WatermarkKey([u8; 32]);

impl fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatermarkKey(…)")
    }
}

impl WatermarkKey {
    /// The key of `mark` under the platform `secret`: HMAC-SHA256 over the domain tag and the
    /// length-prefixed release and recipient, so keys of distinct pairs are independent and the
    /// pair cannot be shifted between the two fields.
    pub fn derive(secret: &[u8], mark: &Mark) -> WatermarkKey {
        let mut mac = hmac_sha256(secret);
        mac.update(KEY_DOMAIN);
        mac.update(&[0]);
        for field in [&mark.release, &mark.recipient] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        WatermarkKey(key)
    }

    /// A key kept elsewhere (a key store), taken as is.
    pub fn from_bytes(bytes: [u8; 32]) -> WatermarkKey {
        WatermarkKey(bytes)
    }
}

/// HMAC-SHA256 keyed by `key` of any length, built infallibly: RFC 2104 hashes a key longer than
/// the 64-byte block and zero-pads a shorter one, which is exactly what this does.
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// A table marked for one recipient.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The marked table: same schema and rows, mark columns changed within the stated bounds.
    pub batch: RecordBatch,
    /// How many cells carry a bit (null, zero, non-finite and overflowing cells do not).
    pub bits: usize,
    /// How many distinct (row identity, column) pairs carry a bit: the most a detector can count.
    /// Below [`MIN_BITS`] a leak of this table can never be attributed.
    pub independent_bits: usize,
}

/// Marks `batch` with `key`: every non-null, non-zero cell of `spec.mark_columns` is moved to the
/// nearest value that carries its bit (integers +0 or +1; floats within
/// [`FLOAT_MAX_RELATIVE_CHANGE`]). Key columns and every other column are left as they are.
pub fn embed(batch: &RecordBatch, key: &WatermarkKey, spec: &MarkSpec) -> Result<Embedded, WatermarkError> {
    let schema = batch.schema();
    let mut key_idx = Vec::with_capacity(spec.key_columns.len());
    for name in &spec.key_columns {
        key_idx.push(
            schema
                .index_of(name)
                .map_err(|_| WatermarkError::NoColumn(name.clone()))?,
        );
    }
    let mut mark_idx = Vec::with_capacity(spec.mark_columns.len());
    for name in &spec.mark_columns {
        if spec.key_columns.contains(name) {
            return Err(WatermarkError::KeyColumnMarked(name.clone()));
        }
        let i = schema
            .index_of(name)
            .map_err(|_| WatermarkError::NoColumn(name.clone()))?;
        if !mark_idx.iter().any(|&(j, _)| j == i) {
            mark_idx.push((i, name.as_str()));
        }
    }
    let identities = batch_identities(batch, &key_idx, &spec.key_columns)?;
    let mac = CellMac::new(key);
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut bits = 0;
    let mut distinct: HashSet<(&[u8], usize)> = HashSet::new();
    for &(i, name) in &mark_idx {
        let array = batch.column(i);
        let target = |row: usize| mac.bit(&cell_message(&identities[row], name));
        let (marked, rows) = mark_column(array.as_ref(), name, target)?;
        bits += rows.len();
        distinct.extend(rows.into_iter().map(|row| (identities[row].as_slice(), i)));
        columns[i] = marked;
    }
    let batch = RecordBatch::try_new(schema, columns)?;
    Ok(Embedded {
        batch,
        bits,
        independent_bits: distinct.len(),
    })
}

/// Marks one column; returns it and the rows that carry a bit.
fn mark_column(
    array: &dyn Array,
    column: &str,
    target: impl Fn(usize) -> bool,
) -> Result<(ArrayRef, Vec<usize>), WatermarkError> {
    match array.data_type() {
        DataType::Int8 => mark_ints::<Int8Type>(array, column, target),
        DataType::Int16 => mark_ints::<Int16Type>(array, column, target),
        DataType::Int32 => mark_ints::<Int32Type>(array, column, target),
        DataType::Int64 => mark_ints::<Int64Type>(array, column, target),
        DataType::UInt8 => mark_ints::<UInt8Type>(array, column, target),
        DataType::UInt16 => mark_ints::<UInt16Type>(array, column, target),
        DataType::UInt32 => mark_ints::<UInt32Type>(array, column, target),
        DataType::UInt64 => mark_ints::<UInt64Type>(array, column, target),
        DataType::Float32 => {
            let a = primitive::<Float32Type>(array, column)?;
            let mut rows = Vec::new();
            let out: PrimitiveArray<Float32Type> = a
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.map(|x| match mark_float(f64::from(x), target(row), true) {
                        Some(y) => {
                            rows.push(row);
                            y as f32
                        }
                        None => x,
                    })
                })
                .collect();
            Ok((Arc::new(out.with_data_type(array.data_type().clone())), rows))
        }
        DataType::Float64 => {
            let a = primitive::<Float64Type>(array, column)?;
            let mut rows = Vec::new();
            let out: PrimitiveArray<Float64Type> = a
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.map(|x| match mark_float(x, target(row), false) {
                        Some(y) => {
                            rows.push(row);
                            y
                        }
                        None => x,
                    })
                })
                .collect();
            Ok((Arc::new(out.with_data_type(array.data_type().clone())), rows))
        }
        other => Err(unsupported(column, other)),
    }
}

/// Marks an integer column: each value is kept or raised by one, whichever carries its bit; a
/// value that would overflow its type is left unmarked.
fn mark_ints<T>(
    array: &dyn Array,
    column: &str,
    target: impl Fn(usize) -> bool,
) -> Result<(ArrayRef, Vec<usize>), WatermarkError>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128> + TryFrom<i128>,
{
    let a = primitive::<T>(array, column)?;
    let mut rows = Vec::new();
    let out: PrimitiveArray<T> = a
        .iter()
        .enumerate()
        .map(|(row, v)| {
            v.map(
                |x| match mark_int(x.into(), target(row)).and_then(|y| T::Native::try_from(y).ok()) {
                    Some(y) => {
                        rows.push(row);
                        y
                    }
                    None => x,
                },
            )
        })
        .collect();
    Ok((Arc::new(out.with_data_type(array.data_type().clone())), rows))
}

fn primitive<'a, T: ArrowPrimitiveType>(
    array: &'a dyn Array,
    column: &str,
) -> Result<&'a PrimitiveArray<T>, WatermarkError> {
    array
        .as_primitive_opt::<T>()
        .ok_or_else(|| unsupported(column, array.data_type()))
}

fn unsupported(column: &str, data_type: &DataType) -> WatermarkError {
    WatermarkError::UnsupportedType {
        column: column.to_owned(),
        data_type: data_type.to_string(),
    }
}

/// The value `v` or `v + 1`, whichever reads back as `bit`; `None` when neither does (zero, or a
/// value whose successor is zero: zeros carry no bit, and a count is never raised from 0 to 1).
fn mark_int(v: i128, bit: bool) -> Option<i128> {
    if v == 0 {
        return None;
    }
    [Some(v), v.checked_add(1)]
        .into_iter()
        .flatten()
        .find(|&c| read_bit(&c.to_string()) == Some(bit))
}

/// The value nearest `v` whose text reads back as `bit`, among those within 2.5 units of `v`'s
/// 7th significant digit (of its units from 10⁶ up); `None` for 0, NaN, ±∞ or when none reads
/// back right (a Float32 cell near a power of two may not). A Float32 value must read back right
/// both as f32 text and as its exact f64 text, whichever a writer prints.
fn mark_float(v: f64, bit: bool, is_f32: bool) -> Option<f64> {
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    let a = v.abs();
    // (distance from the original in quanta, candidate magnitude)
    let mut candidates: Vec<(f64, f64)> = Vec::with_capacity(5);
    if a >= 1e6 {
        let r = a.round();
        for d in [-1.0, 0.0, 1.0] {
            candidates.push(((r + d - a).abs(), r + d));
        }
    } else {
        let (x, e) = scaled_digits(a)?;
        let n = x.round();
        for d in [-2.0, -1.0, 0.0, 1.0, 2.0] {
            let c = n + d;
            if c > 0.0
                && let Ok(value) = format!("{c}e{}", e - 6).parse::<f64>()
            {
                candidates.push(((c - x).abs(), value));
            }
        }
    }
    candidates.sort_by(|p, q| p.0.total_cmp(&q.0));
    candidates.into_iter().find_map(|(_, c)| {
        let out = c.copysign(v);
        if is_f32 {
            let narrow = out as f32;
            let ok = narrow.is_finite()
                && read_bit(&narrow.to_string()) == Some(bit)
                && read_bit(&f64::from(narrow).to_string()) == Some(bit);
            ok.then_some(f64::from(narrow))
        } else {
            (read_bit(&out.to_string()) == Some(bit)).then_some(out)
        }
    })
}

/// `a` (> 0, finite) as `x × 10^(e − 6)` with `x` in [10⁶, 10⁷): its first seven significant
/// digits as a number, and its decimal exponent. Taken from the shortest round-trip text, so the
/// exponent is exact at powers of ten where `log10` would wobble.
fn scaled_digits(a: f64) -> Option<(f64, i32)> {
    let text = format!("{a:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let m: f64 = mantissa.parse().ok()?;
    let e: i32 = exponent.parse().ok()?;
    Some((m * 1e6, e))
}

/// The bit a cell's text carries, or `None` when it carries none (empty, not a number, zero,
/// NaN, ±∞). Integers (also integral floats up to 2⁵³, as Excel stores counts): their parity.
/// Other numbers: the parity of their first seven significant digits read as an integer.
fn read_bit(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i128>() {
        return (i != 0).then_some(i.rem_euclid(2) == 1);
    }
    let v: f64 = t.parse().ok()?;
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER {
        return Some((v as i64).rem_euclid(2) == 1);
    }
    let (x, _) = scaled_digits(v.abs())?;
    Some(x.round().rem_euclid(2.0) == 1.0)
}

/// The canonical text of a key value, the same whichever way the value travelled: trimmed; a
/// number that is an integer within ±2⁵³ becomes its decimal integer text ("2010.0", "2010" and
/// Excel's 2010 all give "2010"); any other number Rust's shortest round-trip text; anything else
/// stays as it is.
pub fn canonical_text(text: &str) -> String {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(v) => canonical_number(v),
        Err(_) => t.to_owned(),
    }
}

fn canonical_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

/// The identity of a row: its canonical key values, each length-prefixed so that no two
/// different rows can run together into the same bytes.
fn identity(values: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as u64).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The identities of all rows of an Arrow table.
fn batch_identities(batch: &RecordBatch, key_idx: &[usize], names: &[String]) -> Result<Vec<Vec<u8>>, WatermarkError> {
    let options = FormatOptions::new().with_null("");
    let mut formatters = Vec::with_capacity(key_idx.len());
    for (&i, name) in key_idx.iter().zip(names) {
        let f = ArrayFormatter::try_new(batch.column(i).as_ref(), &options).map_err(|e| WatermarkError::Format {
            column: name.clone(),
            row: 0,
            detail: e.to_string(),
        })?;
        formatters.push((f, name));
    }
    (0..batch.num_rows())
        .map(|row| {
            let mut values = Vec::with_capacity(formatters.len());
            for (f, name) in &formatters {
                let text = f.value(row).try_to_string().map_err(|e| WatermarkError::Format {
                    column: (*name).clone(),
                    row,
                    detail: e.to_string(),
                })?;
                values.push(canonical_text(&text));
            }
            Ok(identity(values.into_iter()))
        })
        .collect()
}

/// The name of one cell, as HMAC input: SHA-256 of a domain tag, the row identity and the
/// length-prefixed column name. Hashing first makes every HMAC input 32 bytes, which
/// [`CellMac`] turns into two block compressions per candidate.
fn cell_message(identity: &[u8], column: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CELL_DOMAIN);
    h.update([0]);
    h.update((identity.len() as u64).to_be_bytes());
    h.update(identity);
    h.update((column.len() as u64).to_be_bytes());
    h.update(column.as_bytes());
    h.finalize().into()
}

/// SHA-256's initial state (FIPS 180-4 § 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// HMAC-SHA256 under one watermark key for 32-byte messages, with the key's inner and outer pad
/// blocks compressed once: each cell then costs two block compressions, so testing a copy
/// against hundreds of candidate keys stays fast. Its tags equal `Hmac<Sha256>`'s (tested).
#[derive(Clone)]
struct CellMac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl CellMac {
    fn new(key: &WatermarkKey) -> CellMac {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in key.0.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
        compress256(&mut inner, &[ipad]);
        compress256(&mut outer, &[opad]);
        CellMac { inner, outer }
    }

    /// The outer hash state after HMAC(key, message): the tag's eight big-endian words.
    fn tag_words(&self, message: &[u8; 32]) -> [u32; 8] {
        // Both hashes see one 64-byte pad block and then 32 bytes (96 bytes, 768 bits): the
        // second block is the 32 bytes, the 0x80 end mark and the bit length.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(message);
        block[32] = 0x80;
        block[56..].copy_from_slice(&768u64.to_be_bytes());
        let mut state = self.inner;
        compress256(&mut state, std::slice::from_ref(&block));
        for (i, w) in state.into_iter().enumerate() {
            let [b0, b1, b2, b3] = w.to_be_bytes();
            block[4 * i] = b0;
            block[4 * i + 1] = b1;
            block[4 * i + 2] = b2;
            block[4 * i + 3] = b3;
        }
        let mut state = self.outer;
        compress256(&mut state, std::slice::from_ref(&block));
        state
    }

    /// The bit a cell carries: the low bit of its tag's first byte.
    fn bit(&self, message: &[u8; 32]) -> bool {
        (self.tag_words(message)[0] >> 24) & 1 == 1
    }
}

/// A leaked copy as text: headers and rows of cells, whatever file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakedTable {
    /// The column names (first row of the file).
    pub headers: Vec<String>,
    /// The data rows, one text cell per header (missing cells read as empty).
    pub rows: Vec<Vec<String>>,
}

impl LeakedTable {
    /// The text a file written from `batch` would hold (nulls as empty cells; floats in their
    /// shortest round-trip form): for tests and for copies held in memory.
    pub fn from_batch(batch: &RecordBatch) -> Result<LeakedTable, WatermarkError> {
        let options = FormatOptions::new().with_null("");
        let schema = batch.schema();
        let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut formatters = Vec::with_capacity(headers.len());
        for (array, name) in batch.columns().iter().zip(&headers) {
            let f = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| WatermarkError::Format {
                column: name.clone(),
                row: 0,
                detail: e.to_string(),
            })?;
            formatters.push(f);
        }
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut cells = Vec::with_capacity(formatters.len());
            for (f, name) in formatters.iter().zip(&headers) {
                cells.push(f.value(row).try_to_string().map_err(|e| WatermarkError::Format {
                    column: name.clone(),
                    row,
                    detail: e.to_string(),
                })?);
            }
            rows.push(cells);
        }
        Ok(LeakedTable { headers, rows })
    }
}

/// Reads a leaked copy: an Excel workbook (XLSX, or legacy XLS; recognised by its bytes or its
/// extension; the first sheet, first row as headers, numbers as canonical text) or a UTF-8 CSV
/// (optional BOM; tab-separated if the header line has tabs and no commas). A file in another
/// encoding (GBK, UTF-16) is refused with an error saying so rather than misread.
pub fn read_leaked(path: &Path) -> Result<LeakedTable, WatermarkError> {
    let bytes = std::fs::read(path).map_err(|source| WatermarkError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if bytes.starts_with(b"PK\x03\x04") || extension == "xlsx" {
        read_sheet::<Xlsx<_>>(path, bytes)
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) || extension == "xls" {
        read_sheet::<Xls<_>>(path, bytes)
    } else {
        read_csv(path, &bytes)
    }
}

fn read_sheet<R>(path: &Path, bytes: Vec<u8>) -> Result<LeakedTable, WatermarkError>
where
    R: Reader<Cursor<Vec<u8>>>,
    R::Error: fmt::Display,
{
    let bad = |detail: String| WatermarkError::Spreadsheet {
        path: path.to_path_buf(),
        detail,
    };
    let mut book: R = open_workbook_from_rs(Cursor::new(bytes)).map_err(|e: R::Error| bad(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| bad("the workbook has no sheet".to_owned()))?
        .map_err(|e| bad(e.to_string()))?;
    let mut rows = range
        .rows()
        .map(|r| r.iter().map(cell_text).collect::<Vec<_>>())
        .filter(|r| r.iter().any(|c| !c.is_empty()));
    let headers: Vec<String> = rows
        .next()
        .ok_or_else(|| WatermarkError::Empty(path.to_path_buf()))?
        .into_iter()
        .map(|h| h.trim().to_owned())
        .collect();
    Ok(LeakedTable {
        headers,
        rows: rows.collect(),
    })
}

/// A spreadsheet cell as text: numbers canonical (Excel stores 2010 as 2010.0), dates as
/// YYYY-MM-DD (with the time when there is one), errors and blanks empty.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Int(i) => i.to_string(),
        Data::Float(f) => canonical_number(*f),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, mo, day, h, mi, s, ms) = d.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{day:02}")
            } else {
                format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        Data::DateTime(d) => canonical_number(d.as_f64()),
        Data::Error(_) | Data::Empty => String::new(),
    }
}

fn read_csv(path: &Path, bytes: &[u8]) -> Result<LeakedTable, WatermarkError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(WatermarkError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1,
            encoding: "UTF-16 by its byte-order mark",
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        WatermarkError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + good.iter().filter(|&&b| b == b'\n').count(),
            encoding: "perhaps GBK/GB18030, the default of Chinese Windows",
        }
    })?;
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if first_line.contains('\t') && !first_line.contains(',') {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| WatermarkError::Csv {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let cells: Vec<String> = record.iter().map(str::to_owned).collect();
        if cells.iter().any(|c| !c.trim().is_empty()) {
            records.push(cells);
        }
    }
    let mut records = records.into_iter();
    let headers = records
        .next()
        .ok_or_else(|| WatermarkError::Empty(path.to_path_buf()))?
        .into_iter()
        .map(|h| h.trim().to_owned())
        .collect();
    Ok(LeakedTable {
        headers,
        rows: records.collect(),
    })
}

/// One (release, recipient) pair a leaked copy may come from, with what is needed to test it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The pair.
    pub mark: Mark,
    /// Its key ([`WatermarkKey::derive`] of the platform secret and `mark`).
    pub key: WatermarkKey,
    /// The columns the release was marked on.
    pub spec: MarkSpec,
}

/// How well one candidate's bits match a leaked copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The candidate.
    pub mark: Mark,
    /// Bits that match the candidate's.
    pub matched: usize,
    /// Bits read: distinct (row identity, column) cells holding a number. Zero when a key column
    /// is missing from the copy.
    pub bits: usize,
    /// P(X ≥ matched) for X ~ Binomial(bits, ½): the chance that a copy not marked by this
    /// candidate matches this well. Not corrected for the number of candidates.
    pub p_value: f64,
}

/// The one candidate a leaked copy is attributed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The release and recipient the copy was marked for.
    pub mark: Mark,
    /// Bits that match.
    pub matched: usize,
    /// Bits read.
    pub bits: usize,
    /// The binomial tail of the match (see [`Score::p_value`]).
    pub p_value: f64,
}

/// The verdict on a leaked copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Exactly one candidate passes every test: the copy came from its release and recipient.
    Found(Found),
    /// More than one candidate passes (the same key given twice, or a copy merging releases):
    /// no one is named.
    Ambiguous {
        /// The candidates that passed.
        marks: Vec<Mark>,
    },
    /// Too little evidence to decide: the best candidate read fewer than [`MIN_BITS`] bits, or
    /// matched well but not significantly. No one is named.
    Inconclusive {
        /// Bits read by the best candidate.
        bits: usize,
    },
    /// Enough bits were read and no candidate matches: the copy carries none of these marks.
    NotFound,
}

/// What [`detect`] concludes, with every candidate's score for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The verdict.
    pub outcome: Outcome,
    /// Every candidate's score, best (smallest p-value) first.
    pub scores: Vec<Score>,
}

impl Detection {
    /// The attribution, when there is exactly one.
    pub fn found(&self) -> Option<&Found> {
        match &self.outcome {
            Outcome::Found(found) => Some(found),
            _ => None,
        }
    }
}

/// The cells of a leaked copy as one candidate spec reads them: per distinct (row identity,
/// column), the HMAC message and the bit observed (the majority over duplicate rows).
struct Cells {
    cells: Vec<([u8; 32], bool)>,
}

impl Cells {
    fn read(table: &LeakedTable, spec: &MarkSpec) -> Cells {
        let column = |name: &String| table.headers.iter().position(|h| h.trim() == name.trim());
        let Some(key_idx) = spec.key_columns.iter().map(column).collect::<Option<Vec<usize>>>() else {
            return Cells { cells: Vec::new() };
        };
        let mut marks: Vec<(usize, &str)> = Vec::new();
        for name in &spec.mark_columns {
            if let Some(i) = column(name)
                && !spec.key_columns.contains(name)
                && !marks.iter().any(|&(j, _)| j == i)
            {
                marks.push((i, name.as_str()));
            }
        }
        // message → (ones, zeros, first bit seen, order of first appearance)
        let mut votes: HashMap<[u8; 32], (usize, usize, bool, usize)> = HashMap::new();
        for row in &table.rows {
            let cell = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
            let id = identity(key_idx.iter().map(|&i| canonical_text(cell(i))));
            for &(i, name) in &marks {
                let Some(bit) = read_bit(cell(i)) else { continue };
                let order = votes.len();
                let entry = votes.entry(cell_message(&id, name)).or_insert((0, 0, bit, order));
                if bit {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
        let mut cells: Vec<(usize, [u8; 32], bool)> = votes
            .into_iter()
            .map(|(message, (ones, zeros, first, order))| {
                let bit = if ones == zeros { first } else { ones > zeros };
                (order, message, bit)
            })
            .collect();
        cells.sort_by_key(|c| c.0);
        Cells {
            cells: cells.into_iter().map(|(_, m, b)| (m, b)).collect(),
        }
    }
}

/// Tests a leaked copy against every candidate and names the one that marked it, if the evidence
/// is overwhelming: at least [`MIN_BITS`] bits read, at least [`MIN_MATCH_RATE`] of them
/// matching, and a binomial tail below [`FAMILY_ERROR`] / `candidates.len()`. Columns are found by
/// header name, in any order; rows in any order and any subset.
pub fn detect(table: &LeakedTable, candidates: &[Candidate]) -> Detection {
    let mut read: Vec<(&MarkSpec, Arc<Cells>)> = Vec::new();
    let mut raw: Vec<(Mark, usize, usize)> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let cells = match read.iter().find(|(spec, _)| *spec == &candidate.spec) {
            Some((_, cells)) => Arc::clone(cells),
            None => {
                let cells = Arc::new(Cells::read(table, &candidate.spec));
                read.push((&candidate.spec, Arc::clone(&cells)));
                cells
            }
        };
        let mac = CellMac::new(&candidate.key);
        let matched = cells
            .cells
            .iter()
            .filter(|(message, bit)| mac.bit(message) == *bit)
            .count();
        raw.push((candidate.mark.clone(), matched, cells.cells.len()));
    }
    let max_bits = raw.iter().map(|r| r.2).max().unwrap_or(0);
    let tails = BinomialTails::new(max_bits);
    let threshold = (FAMILY_ERROR / candidates.len().max(1) as f64).ln();
    let mut scored: Vec<(f64, Score)> = raw
        .into_iter()
        .map(|(mark, matched, bits)| {
            let ln_p = tails.ln_upper_tail(bits, matched);
            let score = Score {
                mark,
                matched,
                bits,
                p_value: ln_p.exp(),
            };
            (ln_p, score)
        })
        .collect();
    scored.sort_by(|(pa, a), (pb, b)| {
        pa.total_cmp(pb)
            .then(b.matched.cmp(&a.matched))
            .then_with(|| (&a.mark.release, &a.mark.recipient).cmp(&(&b.mark.release, &b.mark.recipient)))
    });
    let rate_ok = |s: &Score| s.bits > 0 && s.matched as f64 >= MIN_MATCH_RATE * s.bits as f64;
    let passed: Vec<&Score> = scored
        .iter()
        .filter(|(ln_p, s)| s.bits >= MIN_BITS && rate_ok(s) && *ln_p < threshold)
        .map(|(_, s)| s)
        .collect();
    let outcome = match passed.as_slice() {
        [one] => Outcome::Found(Found {
            mark: one.mark.clone(),
            matched: one.matched,
            bits: one.bits,
            p_value: one.p_value,
        }),
        [] => match scored.first() {
            None => Outcome::NotFound,
            Some(_) if max_bits < MIN_BITS => Outcome::Inconclusive { bits: max_bits },
            Some((_, best)) if rate_ok(best) => Outcome::Inconclusive { bits: best.bits },
            Some(_) => Outcome::NotFound,
        },
        many => Outcome::Ambiguous {
            marks: many.iter().map(|s| s.mark.clone()).collect(),
        },
    };
    Detection {
        outcome,
        scores: scored.into_iter().map(|(_, s)| s).collect(),
    }
}

/// Exact upper tails of Binomial(n, ½) in log space, from a table of ln k!.
struct BinomialTails {
    ln_factorial: Vec<f64>,
}

impl BinomialTails {
    fn new(max_n: usize) -> BinomialTails {
        let mut ln_factorial = Vec::with_capacity(max_n + 1);
        let mut acc = 0.0;
        ln_factorial.push(0.0);
        for k in 1..=max_n {
            acc += (k as f64).ln();
            ln_factorial.push(acc);
        }
        BinomialTails { ln_factorial }
    }

    /// ln P(X ≥ m) for X ~ Binomial(n, ½); n must not exceed the table's size.
    fn ln_upper_tail(&self, n: usize, m: usize) -> f64 {
        if m == 0 || n >= self.ln_factorial.len() {
            return 0.0;
        }
        if m > n {
            return f64::NEG_INFINITY;
        }
        let lf = &self.ln_factorial;
        let ln_half_n = n as f64 * std::f64::consts::LN_2;
        let term = |k: usize| lf[n] - lf[k] - lf[n - k] - ln_half_n;
        // The largest term is at the mode n/2 when it is in range, else at m.
        let peak = term(m.max(n / 2));
        let mut sum = 0.0;
        for k in m..=n {
            let rel = term(k) - peak;
            if k > n / 2 && rel < -50.0 {
                break;
            }
            sum += rel.exp();
        }
        (peak + sum.ln()).min(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_makes_excel_and_csv_spellings_equal() {
        assert_eq!(canonical_text("2010"), "2010");
        assert_eq!(canonical_text(" 2010.0 "), "2010");
        assert_eq!(canonical_text(&canonical_number(2010.0)), "2010");
        assert_eq!(canonical_text("1e3"), "1000");
        assert_eq!(canonical_text("0.1"), "0.1");
        assert_eq!(canonical_text("-0"), "0");
        assert_eq!(canonical_text("东城区"), "东城区");
        assert_eq!(canonical_text("2025-01"), "2025-01");
        assert_eq!(canonical_text("9007199254740993"), "9007199254740992");
    }

    #[test]
    fn integers_read_their_parity_and_zero_reads_nothing() {
        assert_eq!(read_bit("15"), Some(true));
        assert_eq!(read_bit("16.0"), Some(false));
        assert_eq!(read_bit("-3"), Some(true));
        assert_eq!(read_bit("0"), None);
        assert_eq!(read_bit("0.0"), None);
        assert_eq!(read_bit(""), None);
        assert_eq!(read_bit("<10"), None);
        assert_eq!(read_bit("NaN"), None);
        assert_eq!(read_bit("inf"), None);
    }

    #[test]
    fn integers_are_raised_by_at_most_one() {
        for v in [-5i128, -1, 0, 1, 2, 10, 11, 1_000_000] {
            for bit in [false, true] {
                match mark_int(v, bit) {
                    Some(y) => {
                        assert!(y == v || y == v + 1, "{v} → {y}");
                        assert_eq!(read_bit(&y.to_string()), Some(bit));
                    }
                    None => assert!(v == 0 || (v == -1 && !bit), "{v} unmarked for {bit}"),
                }
            }
        }
        assert_eq!(mark_int(0, true), None);
    }

    #[test]
    fn floats_read_back_their_bit_within_the_bound_even_at_powers_of_ten() {
        let values = [
            123.456_789_123,
            9.999_999_9,
            10.0,
            0.001,
            999_999.95,
            1_000_000.0,
            12_345_678.9,
            151.0,
            3.0,
            1e-300,
            1.7e300,
            -42.424_242,
            5e-324,
        ];
        for v in values {
            for bit in [false, true] {
                for is_f32 in [false, true] {
                    let Some(y) = mark_float(v, bit, is_f32) else {
                        continue;
                    };
                    let slack = if is_f32 { 6e-8 } else { 0.0 };
                    assert!(
                        (y - v).abs() <= (FLOAT_MAX_RELATIVE_CHANGE + slack) * v.abs(),
                        "{v} → {y}"
                    );
                    assert_eq!(read_bit(&y.to_string()), Some(bit), "{v} → {y} for {bit}");
                }
                if v.abs() > 1e-300 && v.abs() < 1e300 {
                    assert!(mark_float(v, bit, false).is_some(), "{v} unmarked for {bit}");
                }
            }
        }
        assert_eq!(mark_float(0.0, true, false), None);
        assert_eq!(mark_float(f64::NAN, true, false), None);
        assert_eq!(mark_float(f64::INFINITY, false, false), None);
    }

    #[test]
    fn cell_mac_equals_the_hmac_crate() {
        for seed in 0u8..8 {
            let key = WatermarkKey::from_bytes([seed.wrapping_mul(37); 32]);
            let message = cell_message(&[seed; 20], "visits");
            let mut reference = hmac_sha256(&key.0);
            reference.update(&message);
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            let words = CellMac::new(&key).tag_words(&message);
            let tag: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            assert_eq!(tag, expected);
            assert_eq!(CellMac::new(&key).bit(&message), expected[0] & 1 == 1);
        }
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        let t = BinomialTails::new(64);
        assert!((t.ln_upper_tail(10, 0)).abs() < 1e-12);
        assert!((t.ln_upper_tail(10, 10) - (0.5f64.powi(10)).ln()).abs() < 1e-9);
        // P(X ≥ 8 | 10) = (45 + 10 + 1) / 1024
        assert!((t.ln_upper_tail(10, 8) - (56.0f64 / 1024.0).ln()).abs() < 1e-9);
        // P(X ≥ 5 | 10) = 638 / 1024
        assert!((t.ln_upper_tail(10, 5) - (638.0f64 / 1024.0).ln()).abs() < 1e-9);
        assert!((t.ln_upper_tail(64, 64) - 64.0 * 0.5f64.ln()).abs() < 1e-9);
        let big = BinomialTails::new(100_000);
        assert!(big.ln_upper_tail(100_000, 100_000).is_finite());
    }
}
