//! # shuyu-classify
//!
//! Classification and grading of fields (分类分级, R-20, R-28). Given a field's
//! name and a sample of its values, [`classify_field`] suggests a type — by
//! validating values with their check digits (GB 11643 ID numbers, GB 32100
//! credit codes, Luhn bank cards), not by bare patterns — whether it is personal,
//! sensitive personal or a trade secret, and a grade: a GB/T 43697-2024 tier (core,
//! important, general) and, for general data, a level L1–L4 (L4 never leaves the
//! domain in any form; L1 is open). A dataset's grade is the highest of its
//! fields' (就高从严, [`dataset_grade`]). The provider confirms or corrects every
//! suggestion; this crate only suggests.
//!
//! ```
//! use shuyu_classify::{classify_field, FieldType, Level};
//! let c = classify_field("phone", ["13800138000", "13912345678", "15000000000"].iter().copied());
//! assert_eq!(c.field_type, FieldType::Mobile);
//! assert_eq!(c.grade.level, Some(Level::L3));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use shuyu_core::ident::{BankCard, IdNumber, Mobile};
use shuyu_core::party::Uscc;

mod names;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Resident identity card number (GB 11643).
    IdNumber,
    /// Mainland mobile number.
    Mobile,
    /// Bank card number (Luhn).
    BankCard,
    /// Unified social credit code (GB 32100).
    Uscc,
    /// A party: a person's ID number or an organisation's credit code in one column
    /// (an owner, a payer). Sensitive, because some of its values identify people.
    PartyId,
    /// A Chinese personal name.
    PersonName,
    /// A postal address.
    Address,
    /// A vehicle licence plate.
    LicensePlate,
    /// An e-mail address.
    Email,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
    /// A year and month (`YYYY-MM`).
    Month,
    /// Whole numbers.
    Integer,
    /// Decimal numbers.
    Decimal,
    /// Few distinct values (a category).
    Category,
    /// Anything else.
    Text,
}

impl FieldType {
    /// Every type.
    pub const ALL: [FieldType; 15] = [
        FieldType::IdNumber,
        FieldType::Mobile,
        FieldType::BankCard,
        FieldType::Uscc,
        FieldType::PartyId,
        FieldType::PersonName,
        FieldType::Address,
        FieldType::LicensePlate,
        FieldType::Email,
        FieldType::Date,
        FieldType::Month,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Category,
        FieldType::Text,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            FieldType::IdNumber => "id_number",
            FieldType::Mobile => "mobile",
            FieldType::BankCard => "bank_card",
            FieldType::Uscc => "uscc",
            FieldType::PartyId => "party_id",
            FieldType::PersonName => "person_name",
            FieldType::Address => "address",
            FieldType::LicensePlate => "license_plate",
            FieldType::Email => "email",
            FieldType::Date => "date",
            FieldType::Month => "month",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Category => "category",
            FieldType::Text => "text",
        }
    }

    /// Whether `value` is a valid value of this type (check digits included).
    pub fn accepts(self, value: &str) -> bool {
        let v = value.trim();
        match self {
            FieldType::IdNumber => IdNumber::parse(v).is_ok(),
            FieldType::Mobile => Mobile::parse(v).is_ok(),
            FieldType::BankCard => BankCard::parse(v).is_ok(),
            FieldType::Uscc => Uscc::parse(v).is_ok(),
            FieldType::PartyId => IdNumber::parse(v).is_ok() || Uscc::parse(v).is_ok(),
            FieldType::PersonName => names::is_person_name(v),
            FieldType::Address => names::is_address(v),
            FieldType::LicensePlate => names::is_license_plate(v),
            FieldType::Email => is_email(v),
            FieldType::Date => is_date(v),
            FieldType::Month => is_month(v),
            FieldType::Integer => !v.is_empty() && v.parse::<i64>().is_ok(),
            FieldType::Decimal => !v.is_empty() && v.parse::<f64>().is_ok_and(f64::is_finite),
            FieldType::Category | FieldType::Text => true,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for FieldType {
    type Err = shuyu_core::error::FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::ALL
            .into_iter()
            .find(|t| t.code() == s)
            .ok_or_else(|| shuyu_core::error::FieldError::new("field_type", "unknown_value").arg("value", s))
    }
}

/// Whether a field identifies or describes people, or is an enterprise's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Neither personal nor secret.
    None,
    /// An enterprise's commercial secret (finances).
    TradeSecret,
    /// Personal information (PIPL art. 4).
    Personal,
    /// Sensitive personal information (PIPL art. 28: identity numbers, finances, health …).
    SensitivePersonal,
}

/// GB/T 43697-2024 tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// General data (graded further L1–L4).
    General,
    /// Important data.
    Important,
    /// Core data: never enters the domain.
    Core,
}

/// Level of general data: L1 open … L4 never leaves the domain in any form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Open.
    L1,
    /// Internal.
    L2,
    /// Sensitive.
    L3,
    /// Highly sensitive: never leaves in any form.
    L4,
}

/// A grade: the tier and, for general data, the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grade {
    /// The tier.
    pub tier: Tier,
    /// The level (general data only).
    pub level: Option<Level>,
}

impl Grade {
    /// General data at `level`.
    pub fn general(level: Level) -> Self {
        Grade {
            tier: Tier::General,
            level: Some(level),
        }
    }

    /// The stricter of two grades (就高从严).
    pub fn max(self, other: Grade) -> Grade {
        if self.tier != other.tier {
            return if self.tier > other.tier { self } else { other };
        }
        Grade {
            tier: self.tier,
            level: self.level.max(other.level),
        }
    }

    /// A short code: `L1`…`L4`, `important`, `core`.
    pub fn code(&self) -> String {
        match (self.tier, self.level) {
            (Tier::General, Some(l)) => format!("{l:?}"),
            (Tier::General, None) => "general".into(),
            (Tier::Important, _) => "important".into(),
            (Tier::Core, _) => "core".into(),
        }
    }

    /// Parses a code from [`Grade::code`].
    pub fn parse(code: &str) -> Option<Grade> {
        match code {
            "L1" => Some(Grade::general(Level::L1)),
            "L2" => Some(Grade::general(Level::L2)),
            "L3" => Some(Grade::general(Level::L3)),
            "L4" => Some(Grade::general(Level::L4)),
            "important" => Some(Grade {
                tier: Tier::Important,
                level: None,
            }),
            "core" => Some(Grade {
                tier: Tier::Core,
                level: None,
            }),
            _ => None,
        }
    }
}

/// The suggestion for one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldClass {
    /// The field's name.
    pub field: String,
    /// The suggested type.
    pub field_type: FieldType,
    /// Personal / sensitive / trade secret.
    pub sensitivity: Sensitivity,
    /// The suggested grade.
    pub grade: Grade,
    /// Share of non-empty sample values the type accepts (0–1).
    pub confidence: f64,
    /// Why, in one line (e.g. "998 of 1000 values are valid GB 11643 numbers").
    pub evidence: String,
    /// Non-empty values in the sample.
    pub sampled: usize,
}

fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-@".contains(c))
}

fn is_date(v: &str) -> bool {
    v.len() == 10 && v.as_bytes()[4] == b'-' && v.parse::<jiff::civil::Date>().is_ok()
}

fn is_month(v: &str) -> bool {
    v.len() == 7 && is_date(&format!("{v}-01"))
}

/// Value detectors, strongest evidence first: a type wins when it accepts at least this share.
const THRESHOLD: f64 = 0.9;

const VALUE_TYPES: [FieldType; 12] = [
    FieldType::IdNumber,
    FieldType::Uscc,
    FieldType::PartyId,
    FieldType::BankCard,
    FieldType::Mobile,
    FieldType::Email,
    FieldType::LicensePlate,
    FieldType::Date,
    FieldType::Month,
    FieldType::Integer,
    FieldType::Decimal,
    FieldType::PersonName,
];

/// Field-name hints for what values alone cannot tell (health, finances, addresses).
fn name_hint(name: &str) -> (Option<FieldType>, Option<Sensitivity>) {
    let n = name.to_lowercase();
    let has = |keys: &[&str]| keys.iter().any(|k| n.contains(k));
    let sensitivity = if has(&["icd", "diagnos", "disease", "诊断", "疾病", "病"]) {
        Some(Sensitivity::SensitivePersonal)
    } else if has(&[
        "wage",
        "salary",
        "pension",
        "工资",
        "薪",
        "养老",
        "医疗",
        "medical",
        "unemploy",
        "insurance_paid",
        "cost",
        "费用",
    ]) {
        Some(Sensitivity::Personal)
    } else if has(&["gender", "sex", "性别", "birth", "出生", "ethnic", "民族", "nation"]) {
        // Personal basic information (GB/T 35273 A.1): on its own not identifying, but about a person.
        Some(Sensitivity::Personal)
    } else if has(&[
        "tax", "revenue", "capital", "营收", "纳税", "税", "资本", "arrears", "欠费", "kwh", "assessed",
    ]) {
        Some(Sensitivity::TradeSecret)
    } else {
        None
    };
    let ty = if has(&["address", "地址", "住址"]) {
        Some(FieldType::Address)
    } else if has(&["name", "姓名", "名称"]) && !has(&["_id", "code"]) {
        Some(FieldType::PersonName)
    } else {
        None
    };
    (ty, sensitivity)
}

/// Suggests type, sensitivity and grade for a field from its name and sample values.
pub fn classify_field<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> FieldClass {
    let sample: Vec<&str> = values.map(str::trim).filter(|v| !v.is_empty()).take(10_000).collect();
    let n = sample.len();
    let share = |t: FieldType| {
        if n == 0 {
            0.0
        } else {
            sample.iter().filter(|v| t.accepts(v)).count() as f64 / n as f64
        }
    };
    let (hint_type, hint_sensitivity) = name_hint(name);

    let mut chosen = (FieldType::Text, 0.0);
    for t in VALUE_TYPES {
        // A person name is only taken from values when the field's name agrees (many words look like names).
        if t == FieldType::PersonName && hint_type != Some(FieldType::PersonName) {
            continue;
        }
        let s = share(t);
        if s >= THRESHOLD {
            chosen = (t, s);
            break;
        }
    }
    if chosen.0 == FieldType::Text
        && let Some(t) = hint_type
    {
        let s = share(t);
        if s >= 0.5 {
            chosen = (t, s);
        }
    }
    if chosen.0 == FieldType::Text && n > 0 {
        let mut distinct: Vec<&str> = sample.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() <= 50 && distinct.len() * 20 <= n.max(20) {
            chosen = (FieldType::Category, 1.0);
        }
    }
    let (field_type, confidence) = chosen;

    finish(name, field_type, confidence, n, hint_sensitivity)
}

/// Sensitivity and grade of a field of `field_type`, with the name's hints, and the evidence line.
fn finish(
    name: &str,
    field_type: FieldType,
    confidence: f64,
    n: usize,
    hint_sensitivity: Option<Sensitivity>,
) -> FieldClass {
    let type_sensitivity = match field_type {
        FieldType::IdNumber | FieldType::BankCard | FieldType::PartyId => Sensitivity::SensitivePersonal,
        FieldType::Mobile | FieldType::PersonName | FieldType::Address | FieldType::LicensePlate | FieldType::Email => {
            Sensitivity::Personal
        }
        _ => Sensitivity::None,
    };
    let sensitivity = type_sensitivity.max(hint_sensitivity.unwrap_or(Sensitivity::None));
    let level = match (sensitivity, field_type) {
        (Sensitivity::SensitivePersonal, _) => Level::L4,
        (Sensitivity::Personal, _) | (Sensitivity::TradeSecret, _) => Level::L3,
        // A credit code identifies an organisation in a public registry.
        (Sensitivity::None, FieldType::Uscc) => Level::L2,
        (Sensitivity::None, _) => Level::L1,
    };
    let evidence = if n == 0 {
        "no values to examine".to_string()
    } else {
        let valid = (confidence * n as f64).round() as usize;
        match field_type {
            FieldType::Text => format!("{n} values, no type fits {:.0}% of them", THRESHOLD * 100.0),
            FieldType::Category => format!("{n} values, few distinct"),
            t => format!("{valid} of {n} values are valid {}", t.code()),
        }
    };
    FieldClass {
        field: name.to_string(),
        field_type,
        sensitivity,
        grade: Grade::general(level),
        confidence,
        evidence,
        sampled: n,
    }
}

/// The classification of a field whose type the provider set: sensitivity and grade
/// follow the type (the provider may then raise the grade further).
pub fn reclassify<'a>(class: FieldClass, field_type: FieldType, values: impl Iterator<Item = &'a str>) -> FieldClass {
    let sample: Vec<&str> = values.map(str::trim).filter(|v| !v.is_empty()).take(10_000).collect();
    let n = sample.len();
    let confidence = if n == 0 {
        0.0
    } else {
        sample.iter().filter(|v| field_type.accepts(v)).count() as f64 / n as f64
    };
    let (_, hint) = name_hint(&class.field);
    finish(&class.field, field_type, confidence, n, hint)
}

/// The rule an invalid resident ID number breaks (`id_number_format`, `id_number_birth_date`, `id_number_check`).
pub fn id_number_rule(v: &str) -> Option<&'static str> {
    IdNumber::parse(v).err().map(|e| e.rule)
}

/// The grade of a dataset: the strictest of its fields' (就高从严).
pub fn dataset_grade<'a>(fields: impl IntoIterator<Item = &'a Grade>) -> Grade {
    fields.into_iter().fold(Grade::general(Level::L1), |acc, g| acc.max(*g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shuyu_core::ident::IdNumber;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .filter_map(|i| IdNumber::complete(&format!("3799011980010{:04}", 1000 + i)).map(|x| x.to_string()))
            .collect()
    }

    #[test]
    fn id_numbers_are_found_by_check_digit_not_by_shape() {
        let good = ids(100);
        let c = classify_field("person_id", good.iter().map(String::as_str));
        assert_eq!(
            (c.field_type, c.sensitivity, c.grade.level),
            (FieldType::IdNumber, Sensitivity::SensitivePersonal, Some(Level::L4))
        );
        // 18-digit strings of the same shape but with wrong check digits are not ID numbers.
        let fake: Vec<String> = good
            .iter()
            .map(|s| {
                let mut b = s.clone();
                let last = b.pop().unwrap_or('0');
                b.push(if last == '1' { '2' } else { '1' });
                b
            })
            .collect();
        let c = classify_field("person_id", fake.iter().map(String::as_str));
        assert_ne!(c.field_type, FieldType::IdNumber);
    }

    #[test]
    fn a_few_dirty_values_do_not_hide_the_type() {
        let mut v = ids(100);
        v[3] = "N/A".into();
        v[7] = "37990119800101000".into();
        let c = classify_field("legal_rep_id", v.iter().map(String::as_str));
        assert_eq!(c.field_type, FieldType::IdNumber);
        assert!(c.evidence.starts_with("98 of 100"), "{}", c.evidence);
    }

    #[test]
    fn names_addresses_health_and_money_follow_name_hints() {
        let names = ["王伟", "李娜", "张敏", "刘洋", "陈静", "欧阳修", "司马光", "黄磊"];
        assert_eq!(
            classify_field("name", names.iter().copied()).field_type,
            FieldType::PersonName
        );
        assert_eq!(
            classify_field("姓名", names.iter().copied()).grade.level,
            Some(Level::L3)
        );
        let addr = ["示范市东区建设路12号3栋2单元501室", "示范市南县人民大街8号"];
        assert_eq!(
            classify_field("address", addr.iter().copied()).field_type,
            FieldType::Address
        );
        let icd = ["J06.9", "I10", "E11.9"];
        assert_eq!(
            classify_field("icd10", icd.iter().copied()).grade.level,
            Some(Level::L4)
        );
        let money = ["6000.00", "8123.50", "120000.00"];
        let c = classify_field("base_wage", money.iter().copied());
        assert_eq!((c.field_type, c.grade.level), (FieldType::Decimal, Some(Level::L3)));
        let hours = ["7", "8", "17", "18"];
        assert_eq!(
            classify_field("boardings", hours.iter().copied()).grade.level,
            Some(Level::L1)
        );
    }

    #[test]
    fn dataset_grade_is_the_strictest_field() {
        let g = dataset_grade(&[
            Grade::general(Level::L1),
            Grade::general(Level::L3),
            Grade::general(Level::L2),
        ]);
        assert_eq!(g, Grade::general(Level::L3));
        let core = Grade {
            tier: Tier::Core,
            level: None,
        };
        assert_eq!(dataset_grade(&[Grade::general(Level::L4), core]), core);
        assert_eq!(Grade::parse(&g.code()), Some(g));
    }
}
