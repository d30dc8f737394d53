//! A shared generated city (scale 0.002), readers for every format, and the
//! column-by-column checker used by the validity tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Float64Type};
use calamine::{Data, Reader, Xlsx, open_workbook};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shuyu_core::ident::IdNumber;
use shuyu_core::party::Uscc;
use shuyu_democity::{DatasetInfo, Manifest, Options, generate};

pub const SEED: u64 = 20_260_101;
pub const SCALE: f64 = 0.002;

/// A fresh, empty directory under cargo's per-target temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("democity-it").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The city every read-only test shares, generated once per test run.
pub fn city() -> &'static (PathBuf, Manifest) {
    static CITY: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    CITY.get_or_init(|| {
        let dir = scratch("shared");
        let opts = Options {
            scale: SCALE,
            seed: SEED,
        };
        let manifest = generate(&dir, &opts, &mut |_, _, _| {}).expect("generate");
        (dir, manifest)
    })
}

pub fn info<'a>(manifest: &'a Manifest, name: &str) -> &'a DatasetInfo {
    manifest.dataset(name).expect("dataset in manifest")
}

/// A table read back from its file: header and rows, `None` for an empty value.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    pub fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).expect("column")
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn read_csv_text(text: &str) -> Table {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header = rdr.headers().expect("header").iter().map(str::to_string).collect();
    let rows = rdr
        .records()
        .map(|r| r.expect("record").iter().map(opt).collect())
        .collect();
    Table { header, rows }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (for Parquet `Date32`).
pub fn iso_from_days(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn read(dir: &Path, info: &DatasetInfo) -> Table {
    let path = dir.join(&info.file);
    match info.format.as_str() {
        "csv" => read_csv_text(&std::fs::read_to_string(path).expect("utf-8 csv")),
        "csv-gbk" => {
            let bytes = std::fs::read(path).expect("read");
            let text = encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(&bytes)
                .expect("valid GBK");
            read_csv_text(&text)
        }
        "jsonl" => {
            let text = std::fs::read_to_string(path).expect("utf-8 jsonl");
            let rows = text
                .lines()
                .map(|line| {
                    let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                    let obj = v.as_object().expect("object");
                    assert_eq!(obj.len(), info.columns.len(), "exactly the declared keys: {line}");
                    info.columns
                        .iter()
                        .map(|c| match obj.get(c).expect("key present") {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => opt(s),
                            serde_json::Value::Number(n) => Some(n.to_string()),
                            other => panic!("unexpected JSON value {other}"),
                        })
                        .collect()
                })
                .collect();
            Table {
                header: info.columns.clone(),
                rows,
            }
        }
        "xlsx" => {
            let mut book: Xlsx<_> = open_workbook(&path).expect("open xlsx");
            let range = book.worksheet_range(&info.name).expect("sheet named after the dataset");
            let mut rows = range.rows().map(|r| {
                r.iter()
                    .map(|c| match c {
                        Data::Empty => None,
                        Data::String(s) => opt(s),
                        Data::Float(f) => Some(f.to_string()),
                        Data::Int(i) => Some(i.to_string()),
                        other => panic!("unexpected cell {other:?}"),
                    })
                    .collect::<Vec<_>>()
            });
            let header = rows
                .next()
                .expect("header row")
                .into_iter()
                .map(|h| h.expect("header cell"))
                .collect();
            Table {
                header,
                rows: rows.collect(),
            }
        }
        "parquet" => {
            let file = std::fs::File::open(path).expect("open parquet");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet")
                .build()
                .expect("reader");
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.expect("batch");
                for r in 0..batch.num_rows() {
                    let row = batch
                        .columns()
                        .iter()
                        .map(|col| {
                            if col.is_null(r) {
                                return None;
                            }
                            Some(match col.data_type() {
                                DataType::Utf8 => col.as_string::<i32>().value(r).to_string(),
                                DataType::Date32 => iso_from_days(i64::from(col.as_primitive::<Date32Type>().value(r))),
                                DataType::Float64 => col.as_primitive::<Float64Type>().value(r).to_string(),
                                other => panic!("unexpected type {other}"),
                            })
                        })
                        .collect();
                    rows.push(row);
                }
            }
            Table {
                header: info.columns.clone(),
                rows,
            }
        }
        other => panic!("unknown format {other}"),
    }
}

/// What a column holds, for the checker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Person,
    Uscc,
    PersonOrUscc,
    OptionalUscc,
    Date,
    Month,
    Number,
    Text,
}

pub fn kinds(dataset: &str) -> Vec<Kind> {
    use Kind::*;
    match dataset {
        "population" => vec![Person, Text, Text, Date, Text, Text, Text, Text],
        "enterprise" => vec![Uscc, Text, Person, Text, Number, Date, Text, Text],
        "social_insurance" => vec![Person, Uscc, Month, Number, Number, Number, Number],
        "medical_visit" => vec![Text, Person, Text, Date, Text, Number, Number],
        "tax_payment" => vec![Uscc, Number, Number, Text, Number],
        "electricity" => vec![Text, OptionalUscc, Month, Number, Number],
        "property" => vec![Text, PersonOrUscc, Text, Number, Number, Date],
        "bus_ridership" => vec![Text, Date, Number, Number],
        other => panic!("unknown dataset {other}"),
    }
}

pub fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (s[..4].parse::<u32>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>()) else {
        return false;
    };
    (1900..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

pub fn is_iso_month(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && s[..4].parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y))
        && s[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
}

fn id_ok(kind: Kind, v: &str) -> bool {
    let person = IdNumber::parse(v).is_ok_and(|id| ["379901", "379902", "379903"].contains(&id.region()));
    let uscc = Uscc::parse(v).is_ok() && v.starts_with("91379");
    match kind {
        Kind::Person => person,
        Kind::Uscc | Kind::OptionalUscc => uscc,
        _ => person || uscc,
    }
}

fn clean_ok(kind: Kind, v: Option<&str>) -> bool {
    match (kind, v) {
        (Kind::OptionalUscc, None) => true,
        (_, None) => false,
        (Kind::Person | Kind::Uscc | Kind::PersonOrUscc | Kind::OptionalUscc, Some(v)) => id_ok(kind, v),
        (Kind::Date, Some(v)) => is_iso_date(v),
        (Kind::Month, Some(v)) => is_iso_month(v),
        (Kind::Number, Some(v)) => v.parse::<f64>().is_ok_and(|x| x.is_finite() && x >= 0.0),
        (Kind::Text, Some(v)) => !v.trim().is_empty(),
    }
}

fn dirty_ok(kind: Kind, defect: &str, v: Option<&str>) -> bool {
    match (defect, v) {
        ("missing_field", v) => v.is_none(),
        ("bad_check_digit", Some(v)) => {
            let as_uscc = match kind {
                Kind::Uscc | Kind::OptionalUscc => true,
                Kind::Person => false,
                Kind::PersonOrUscc => v.starts_with("91"),
                _ => return false,
            };
            let well_formed = v.len() == 18 && v.starts_with(if as_uscc { "91379" } else { "3799" });
            well_formed
                && if as_uscc {
                    Uscc::parse(v).map_err(|e| e.rule) == Err("uscc_check")
                } else {
                    IdNumber::parse(v).map_err(|e| e.rule) == Err("id_number_check")
                }
        }
        ("bad_date", Some(v)) => match kind {
            Kind::Date => !is_iso_date(v),
            Kind::Month => !is_iso_month(v) && !is_iso_date(v),
            _ => false,
        },
        ("not_a_number", Some(v)) => kind == Kind::Number && v.parse::<f64>().is_err(),
        _ => false,
    }
}

/// Checks every cell of a dataset: a listed dirty cell carries its defect,
/// every other cell is clean. Returns the number of rows checked.
pub fn check_cells(dir: &Path, info: &DatasetInfo) -> usize {
    let table = read(dir, info);
    assert_eq!(table.header, info.columns, "{}: header", info.name);
    let kinds = kinds(&info.name);
    let dirty: HashMap<u64, (&str, &str)> = info
        .dirty
        .iter()
        .map(|d| (d.row, (d.field.as_str(), d.kind.as_str())))
        .collect();
    assert_eq!(dirty.len(), info.dirty.len(), "{}: one defect per dirty row", info.name);
    for (i, row) in table.rows.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(row.len(), kinds.len(), "{} row {n}: width", info.name);
        for (c, (value, kind)) in row.iter().zip(&kinds).enumerate() {
            let field = &info.columns[c];
            match dirty.get(&n) {
                Some((f, defect)) if *f == field => assert!(
                    dirty_ok(*kind, defect, value.as_deref()),
                    "{} row {n} {field}: listed as {defect} but holds {value:?}",
                    info.name
                ),
                _ => assert!(
                    clean_ok(*kind, value.as_deref()),
                    "{} row {n} {field}: not listed dirty but holds {value:?}",
                    info.name
                ),
            }
        }
    }
    table.rows.len()
}

/// Rows of a dataset that the manifest does not list as dirty (1-based numbers).
pub fn clean_rows<'t>(table: &'t Table, info: &DatasetInfo) -> impl Iterator<Item = &'t Vec<Option<String>>> {
    let dirty: std::collections::HashSet<u64> = info.dirty.iter().map(|d| d.row).collect();
    table
        .rows
        .iter()
        .enumerate()
        .filter(move |(i, _)| !dirty.contains(&(*i as u64 + 1)))
        .map(|(_, r)| r)
}
