//! The fixed shape of the demo city's datasets — names, files, formats,
//! columns, sizes — as constants, so an importer, a test or a benchmark can
//! name a dataset or a column without parsing the manifest first.

/// The static description of one dataset the generator writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatasetSpec {
    /// Dataset name, also the stem of its file (`population`).
    pub name: &'static str,
    /// File name inside the output directory.
    pub file: &'static str,
    /// `csv`, `csv-gbk`, `parquet`, `xlsx` or `jsonl`.
    pub format: &'static str,
    /// `utf-8`, `gbk` or `binary`.
    pub encoding: &'static str,
    /// Rows at scale factor 1 (DEMO_CITY.md).
    pub base_rows: u64,
    /// Column names, in file order (the header row).
    pub columns: &'static [&'static str],
}

impl DatasetSpec {
    /// Rows at scale `scale`: `ceil(base_rows × scale)`, at least 1.
    pub fn rows_at(&self, scale: f64) -> u64 {
        rows_at(self.base_rows, scale)
    }
}

/// `ceil(base × scale)`, at least 1 — the row count rule of every dataset.
pub fn rows_at(base: u64, scale: f64) -> u64 {
    let rows = (base as f64 * scale).ceil();
    if rows.is_finite() && rows >= 1.0 {
        rows as u64
    } else {
        1
    }
}

/// 人口基础信息 (市公安局), L4.
pub const POPULATION: DatasetSpec = DatasetSpec {
    name: "population",
    file: "population.csv",
    format: "csv",
    encoding: "utf-8",
    base_rows: 1_000_000,
    columns: &[
        "person_id",
        "name",
        "gender",
        "birth_date",
        "ethnicity",
        "region",
        "address",
        "phone",
    ],
};

/// 企业登记 (市市场监管局), L2; written in GBK like many real registry exports.
pub const ENTERPRISE: DatasetSpec = DatasetSpec {
    name: "enterprise",
    file: "enterprise.csv",
    format: "csv-gbk",
    encoding: "gbk",
    base_rows: 100_000,
    columns: &[
        "uscc",
        "name",
        "legal_rep_id",
        "industry",
        "registered_capital",
        "established",
        "region",
        "status",
    ],
};

/// 社保缴纳 (市人社局), L3.
pub const SOCIAL_INSURANCE: DatasetSpec = DatasetSpec {
    name: "social_insurance",
    file: "social_insurance.csv",
    format: "csv",
    encoding: "utf-8",
    base_rows: 12_000_000,
    columns: &[
        "person_id",
        "employer_uscc",
        "month",
        "base_wage",
        "pension",
        "medical",
        "unemployment",
    ],
};

/// 就诊记录 (市医保局), L4; Parquet with typed dates.
pub const MEDICAL_VISIT: DatasetSpec = DatasetSpec {
    name: "medical_visit",
    file: "medical_visit.parquet",
    format: "parquet",
    encoding: "binary",
    base_rows: 5_000_000,
    columns: &[
        "visit_id",
        "person_id",
        "hospital_code",
        "visit_date",
        "icd10",
        "cost_total",
        "insurance_paid",
    ],
};

/// 纳税信息 (市税务局), L3; a spreadsheet, as tax offices often hand over.
pub const TAX_PAYMENT: DatasetSpec = DatasetSpec {
    name: "tax_payment",
    file: "tax_payment.xlsx",
    format: "xlsx",
    encoding: "binary",
    base_rows: 1_200_000,
    columns: &["uscc", "year", "quarter", "revenue_band", "tax_paid"],
};

/// 用电信息 (市供电公司), L2; JSON Lines.
pub const ELECTRICITY: DatasetSpec = DatasetSpec {
    name: "electricity",
    file: "electricity.jsonl",
    format: "jsonl",
    encoding: "utf-8",
    base_rows: 2_400_000,
    columns: &["account_id", "uscc", "month", "kwh", "arrears"],
};

/// 不动产登记 (市不动产登记中心), L3.
pub const PROPERTY: DatasetSpec = DatasetSpec {
    name: "property",
    file: "property.csv",
    format: "csv",
    encoding: "utf-8",
    base_rows: 600_000,
    columns: &[
        "property_id",
        "owner_id",
        "region",
        "area_m2",
        "assessed_value",
        "registered",
    ],
};

/// 公交客流 (市交通运输局), L1, open.
pub const BUS_RIDERSHIP: DatasetSpec = DatasetSpec {
    name: "bus_ridership",
    file: "bus_ridership.csv",
    format: "csv",
    encoding: "utf-8",
    base_rows: 50_000,
    columns: &["line_id", "date", "hour", "boardings"],
};

/// Every dataset, in the order they are generated and listed in the manifest.
pub const DATASETS: [DatasetSpec; 8] = [
    POPULATION,
    ENTERPRISE,
    SOCIAL_INSURANCE,
    MEDICAL_VISIT,
    TAX_PAYMENT,
    ELECTRICITY,
    PROPERTY,
    BUS_RIDERSHIP,
];

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The city's region code (no identifier is ever issued under it, only under a county).
pub const CITY_CODE: &str = "379900";

/// The counties as (code, name); identifiers are only ever generated under these codes.
pub const COUNTIES: [(&str, &str); 3] = [("379901", "东区"), ("379902", "西区"), ("379903", "南县")];

/// The rate of dirty rows: one in [`DIRTY_ONE_IN`] rows of every dataset (0.5 %),
/// rounded half up, none in a dataset of fewer than 100 rows.
pub const DIRTY_ONE_IN: u64 = 200;

/// The kind of defect a dirty row carries; each dirty row has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirtyKind {
    /// An identifier whose last (check) character was changed so its check fails.
    BadCheckDigit,
    /// A required value left empty (CSV empty field, JSON null, empty xlsx cell, Parquet null).
    MissingField,
    /// A date or month written in another format (`2021/3/7`, `07.03.2021`, `2021年3月7日`).
    BadDate,
    /// A numeric column holding text (`N/A`, `一万`, `--`, `未知`).
    NotANumber,
}

impl DirtyKind {
    /// All kinds.
    pub const ALL: [DirtyKind; 4] = [
        DirtyKind::BadCheckDigit,
        DirtyKind::MissingField,
        DirtyKind::BadDate,
        DirtyKind::NotANumber,
    ];

    /// The code written in the manifest.
    pub fn code(self) -> &'static str {
        match self {
            DirtyKind::BadCheckDigit => "bad_check_digit",
            DirtyKind::MissingField => "missing_field",
            DirtyKind::BadDate => "bad_date",
            DirtyKind::NotANumber => "not_a_number",
        }
    }

    /// The kind for a manifest code.
    pub fn from_code(code: &str) -> Option<DirtyKind> {
        DirtyKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl std::fmt::Display for DirtyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
