//! # shuyu-democity
//!
//! The synthetic public data of 示范市 (Demo City, `/work/shared/design/DEMO_CITY.md`):
//! eight datasets of eight providers, generated from a seed and a scale factor so that
//! demos, tests and benchmarks run on data that behaves like the real thing — valid
//! check digits, joins that work, heavy-tailed money, rare categories, a GBK-encoded
//! CSV and about 0.5 % documented dirty rows — while no real person's data is ever used
//! (identifiers are only issued under the fictional counties `379901`–`379903`).
//!
//! Generation is **deterministic** (same seed and scale, byte-identical files) and
//! **streaming** (one row at a time; memory does not grow with the scale except for
//! the manifest's list of dirty rows). Person `i` and enterprise `j` are pure
//! functions of the seed ([`person`], [`enterprise`]), which is how the other
//! datasets refer to them without holding the registers in memory.
//!
//! ## Files
//!
//! | file | format | columns |
//! |---|---|---|
//! | `population.csv` | CSV, UTF-8 | person_id, name, gender, birth_date, ethnicity, region, address, phone |
//! | `enterprise.csv` | CSV, GBK | uscc, name, legal_rep_id, industry, registered_capital, established, region, status |
//! | `social_insurance.csv` | CSV, UTF-8 | person_id, employer_uscc, month, base_wage, pension, medical, unemployment |
//! | `medical_visit.parquet` | Parquet ([`medical_visit_schema`]) | visit_id, person_id, hospital_code, visit_date, icd10, cost_total, insurance_paid |
//! | `tax_payment.xlsx` | XLSX, sheet `tax_payment` | uscc, year, quarter, revenue_band, tax_paid |
//! | `electricity.jsonl` | JSON Lines | account_id, uscc, month, kwh, arrears |
//! | `property.csv` | CSV, UTF-8 | property_id, owner_id, region, area_m2, assessed_value, registered |
//! | `bus_ridership.csv` | CSV, UTF-8 | line_id, date, hour, boardings |
//! | `manifest.json` | JSON ([`Manifest`]) | |
//!
//! Dates are `YYYY-MM-DD`, months `YYYY-MM`, money in yuan with two decimals,
//! all relative to the fixed "today" [`AS_OF`].
//!
//! ## Dirty rows
//!
//! Every dataset (bus_ridership included) of at least 100 rows has
//! `round(rows / 200)` dirty rows — 0.5 %, always between 0.33 % and 1 %. The rows
//! are cut into that many equal slices and one row per slice is chosen by hashing
//! (seed, dataset, slice); the same hash picks the defect kind (uniformly among
//! the kinds the dataset allows) and then the column. Each dirty row carries
//! exactly one defect ([`DirtyKind`]) and is listed in the manifest. Because the
//! choice is a hash, "is population row k dirty?" is answered without the file,
//! and references (a legal representative, an employer, an owner) never point
//! at a dirty register row: every clean reference resolves.
//!
//! ```no_run
//! let out = std::path::Path::new("/tmp/democity");
//! let opts = shuyu_democity::Options { scale: 0.01, seed: 42 };
//! let manifest = shuyu_democity::generate(out, &opts, &mut |name, done, total| {
//!     eprintln!("{name}: {done}/{total}");
//! })?;
//! assert_eq!(manifest.datasets.len(), shuyu_democity::DATASETS.len());
//! # Ok::<(), shuyu_democity::GenError>(())
//! ```

mod calendar;
mod cell;
mod city;
mod datasets;
mod dirty;
mod error;
mod firms;
mod people;
mod rng;
mod sink;
mod spec;

use std::io::Write;
use std::path::Path;

pub use calendar::AS_OF;
pub use error::GenError;
pub use firms::{Enterprise, STATUSES, enterprise};
pub use people::{Person, capacity, person};
pub use sink::{ROW_GROUP_ROWS, XLSX_ROWS_PER_SHEET, medical_visit_schema};
pub use spec::{
    BUS_RIDERSHIP, CITY_CODE, COUNTIES, DATASETS, DIRTY_ONE_IN, DatasetSpec, DirtyKind, ELECTRICITY, ENTERPRISE,
    MANIFEST_FILE, MEDICAL_VISIT, POPULATION, PROPERTY, SOCIAL_INSURANCE, TAX_PAYMENT, rows_at,
};

/// What to generate: the size of the city and the seed that makes it reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Scale factor: each dataset has `ceil(base_rows × scale)` rows (at least 1).
    /// Tests use 0.001–0.01, benchmarks 1–10.
    pub scale: f64,
    /// The seed; the same seed and scale always give byte-identical files.
    pub seed: u64,
}

/// What was generated: written as `manifest.json` next to the data, so an
/// importer or a test knows every file, its shape, and every deliberately dirty row.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The seed used.
    pub seed: u64,
    /// The scale used.
    pub scale: f64,
    /// One entry per dataset, in the order of [`DATASETS`].
    pub datasets: Vec<DatasetInfo>,
}

/// One generated file.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Dataset name (`population`).
    pub name: String,
    /// File name inside the output directory.
    pub file: String,
    /// `csv`, `csv-gbk`, `parquet`, `xlsx` or `jsonl`.
    pub format: String,
    /// `utf-8`, `gbk` or `binary`.
    pub encoding: String,
    /// Data rows (header not counted).
    pub rows: u64,
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Every deliberately dirty row, by ascending row.
    pub dirty: Vec<DirtyRow>,
}

/// One deliberately dirty row: exactly one field of it carries exactly one defect.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct DirtyRow {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    /// The column carrying the defect.
    pub field: String,
    /// `bad_check_digit`, `missing_field`, `bad_date` or `not_a_number` (see [`DirtyKind`]).
    pub kind: String,
}

impl Manifest {
    /// The entry of dataset `name`.
    pub fn dataset(&self, name: &str) -> Option<&DatasetInfo> {
        self.datasets.iter().find(|d| d.name == name)
    }
}

/// Generates only dataset `name` of the demo city into `out` (no manifest): the same
/// bytes as in a full generation with these options, for benchmarks that need one file.
/// `None` when `name` is not one of [`DATASETS`].
pub fn generate_dataset(
    out: &Path,
    opts: &Options,
    name: &str,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Option<DatasetInfo>, GenError> {
    let city = city::City::new(opts.seed, opts.scale)?;
    std::fs::create_dir_all(out).map_err(|e| GenError::io(out, e))?;
    datasets::write_one(&city, out, name, progress)
}

/// For benchmarks: generates dataset `name` into `dir` at the scale `SHUYU_BENCH_SCALE`
/// names (SF 1 by default), seed 42 — the same file every benchmark of the same scale reads.
pub fn bench_dataset(dir: &Path, name: &str) -> Result<Option<DatasetInfo>, GenError> {
    let scale = std::env::var("SHUYU_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    generate_dataset(dir, &Options { scale, seed: 42 }, name, &mut |_, _, _| {})
}

/// Generates the demo city into `out` (created if missing): the eight files of
/// [`DATASETS`] and [`MANIFEST_FILE`]. `progress` is called with
/// (dataset, rows done, rows total) at the start and end of every dataset and every
/// 16 384 rows in between.
pub fn generate(out: &Path, opts: &Options, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<Manifest, GenError> {
    let city = city::City::new(opts.seed, opts.scale)?;
    std::fs::create_dir_all(out).map_err(|e| GenError::io(out, e))?;
    let datasets = datasets::write_all(&city, out, progress)?;
    let manifest = Manifest {
        seed: opts.seed,
        scale: opts.scale,
        datasets,
    };
    let path = out.join(MANIFEST_FILE);
    let file = std::fs::File::create(&path).map_err(|e| GenError::io(&path, e))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &manifest)?;
    w.write_all(b"\n")
        .and_then(|()| w.flush())
        .map_err(|e| GenError::io(&path, e))?;
    Ok(manifest)
}
