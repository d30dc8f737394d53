//! Synthetic values (合成数据) for fields no one may see in any form (L4): each value is
//! replaced by a plausible made-up one of the same kind — ID numbers with valid check
//! characters under the demo city's fictional region codes (`3799xx`, never a real
//! person's), names, mobiles, Luhn-valid bank cards, addresses — drawn from a keyed stream,
//! so a sample rebuilt is the same, and nothing of the original survives.

use arrow::array::{Array, ArrayRef, StringArray};
use shuyu_core::ident::{IdNumber, luhn_valid};
use std::sync::Arc;

use crate::noise::keyed_word;
use crate::{MaskError, Technique};

/// What kind of value to make up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticKind {
    /// GB 11643 ID numbers under `379900`–`379903`.
    IdNumber,
    /// Personal names.
    Name,
    /// Mobile numbers.
    Mobile,
    /// Bank card numbers (Luhn-valid, issuer prefix 622xxx).
    BankCard,
    /// Street addresses in the demo city.
    Address,
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "丽", "强", "军", "平", "刚",
    "桂英", "华", "建国", "晨", "欣",
];
const DISTRICTS: [&str; 3] = ["东区", "西区", "南县"];
const ROADS: [&str; 6] = ["幸福路", "人民路", "建设街", "和平路", "文化街", "光明路"];

/// Made-up values of `kind` from a keyed stream.
#[derive(Clone)]
pub struct Synthetic {
    kind: SyntheticKind,
    label: String,
    key: [u8; 32],
}

impl std::fmt::Debug for Synthetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Synthetic({:?}, {})", self.kind, self.label)
    }
}

impl Synthetic {
    /// Synthetic values of `kind` for column `label` under `key`.
    pub fn new(key: [u8; 32], label: impl Into<String>, kind: SyntheticKind) -> Self {
        Synthetic {
            kind,
            label: label.into(),
            key,
        }
    }

    fn draw(&self, row: u64, k: u64) -> u64 {
        keyed_word(&self.key, &self.label, row.wrapping_mul(16).wrapping_add(k))
    }

    /// The made-up value of row `row`.
    pub fn value(&self, row: u64) -> String {
        let d = |k: u64, n: u64| self.draw(row, k) % n;
        match self.kind {
            SyntheticKind::IdNumber => {
                let birth = jiff::civil::date(1940, 1, 1)
                    .checked_add(jiff::Span::new().days(d(1, 365 * 65) as i64))
                    .unwrap_or(jiff::civil::date(1980, 1, 1));
                let body = format!("3799{:02}{}{:03}", d(0, 4), birth.strftime("%Y%m%d"), d(2, 1000));
                IdNumber::complete(&body)
                    .map(|i| i.as_str().to_string())
                    .unwrap_or_default()
            }
            SyntheticKind::Name => format!(
                "{}{}",
                SURNAMES[d(0, SURNAMES.len() as u64) as usize],
                GIVEN[d(1, GIVEN.len() as u64) as usize]
            ),
            SyntheticKind::Mobile => format!("1{}{:09}", 3 + d(0, 7), d(1, 1_000_000_000)),
            SyntheticKind::BankCard => {
                let body = format!("622{:03}{:09}", d(0, 1000), d(1, 1_000_000_000));
                (0..10)
                    .map(|c| format!("{body}{c}"))
                    .find(|c| luhn_valid(c))
                    .unwrap_or_default()
            }
            SyntheticKind::Address => format!(
                "示范市{}{}{}号",
                DISTRICTS[d(0, 3) as usize],
                ROADS[d(1, ROADS.len() as u64) as usize],
                1 + d(2, 300)
            ),
        }
    }
}

impl Technique for Synthetic {
    fn id(&self) -> &'static str {
        "synthetic"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        let len = column.len();
        Ok(Arc::new(
            (0..len)
                .map(|i| (!column.is_null(i)).then(|| self.value(i as u64)))
                .collect::<StringArray>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Synthetic identifiers pass the validators developers use, and only ever fall under
        /// the fictional region codes.
        #[test]
        fn synthetic_identifiers_are_valid_and_fictional(row in any::<u64>(), key in any::<[u8; 32]>()) {
            let id = Synthetic::new(key, "person_id", SyntheticKind::IdNumber).value(row);
            let parsed = IdNumber::parse(&id);
            prop_assert!(parsed.is_ok(), "{id}");
            prop_assert!(id.starts_with("3799"));
            prop_assert!(luhn_valid(&Synthetic::new(key, "card", SyntheticKind::BankCard).value(row)));
            let m = Synthetic::new(key, "phone", SyntheticKind::Mobile).value(row);
            prop_assert!(m.len() == 11 && m.starts_with('1'));
        }
    }

    #[test]
    fn nothing_of_the_original_survives_and_nulls_stay_null() {
        let col: ArrayRef = Arc::new(StringArray::from(vec![Some("张三"), None, Some("李四")]));
        let out = Synthetic::new([9; 32], "name", SyntheticKind::Name)
            .apply(&col)
            .expect("apply");
        let out = out.as_any().downcast_ref::<StringArray>().expect("strings");
        assert!(out.is_null(1));
        assert_eq!(out.len(), 3);
        let again = Synthetic::new([9; 32], "name", SyntheticKind::Name)
            .apply(&col)
            .expect("apply");
        assert_eq!(&out.clone() as &dyn Array, again.as_ref());
    }
}
