//! Re-identification risk of a de-identified table (重识别风险) over its quasi-identifiers:
//! the equivalence classes (rows alike in every quasi-identifier), the smallest one (the
//! table is k-anonymous for every k up to it) and the share of records unique in the table
//! — the figures a sample shows before anyone may see it.

use std::collections::HashMap;

use arrow::array::ArrayRef;
use arrow::row::{RowConverter, SortField};

use crate::MaskError;

/// The risk figures of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    /// Rows.
    pub records: usize,
    /// Equivalence classes over the quasi-identifiers.
    pub classes: usize,
    /// The smallest class (0 for an empty table): the table is k-anonymous for k ≤ this.
    pub smallest_class: usize,
    /// Records alone in their class.
    pub unique_records: usize,
    /// `unique_records / records` (0 for an empty table).
    pub unique_share: f64,
}

/// The risk of the rows formed by `quasi_identifiers` (columns of equal length; nulls are
/// a value like any other).
pub fn risk(quasi_identifiers: &[ArrayRef]) -> Result<Risk, MaskError> {
    let bad = |detail: String| MaskError::Config {
        technique: "risk",
        detail,
    };
    let records = quasi_identifiers.first().map(|c| c.len()).unwrap_or(0);
    if quasi_identifiers.iter().any(|c| c.len() != records) {
        return Err(bad("quasi-identifier columns of different lengths".into()));
    }
    if quasi_identifiers.is_empty() {
        // No quasi-identifier: every record is alike.
        return Ok(Risk {
            records,
            classes: usize::from(records > 0),
            smallest_class: records,
            unique_records: usize::from(records == 1),
            unique_share: if records == 1 { 1.0 } else { 0.0 },
        });
    }
    let converter = RowConverter::new(
        quasi_identifiers
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )
    .map_err(|e| bad(e.to_string()))?;
    let rows = converter
        .convert_columns(quasi_identifiers)
        .map_err(|e| bad(e.to_string()))?;
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for r in rows.iter() {
        *counts.entry(r.data()).or_default() += 1;
    }
    let unique_records = counts.values().filter(|c| **c == 1).count();
    Ok(Risk {
        records,
        classes: counts.len(),
        smallest_class: counts.values().copied().min().unwrap_or(0),
        unique_records,
        unique_share: if records == 0 {
            0.0
        } else {
            unique_records as f64 / records as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn classes_and_uniques() {
        let sex: ArrayRef = Arc::new(StringArray::from(vec![Some("M"), Some("M"), Some("F"), None, None]));
        let age: ArrayRef = Arc::new(Int64Array::from(vec![30, 30, 30, 40, 40]));
        let r = risk(&[sex, age]).expect("risk");
        assert_eq!((r.records, r.classes, r.smallest_class, r.unique_records), (5, 3, 1, 1));
        assert!((r.unique_share - 0.2).abs() < 1e-12);
    }

    proptest! {
        /// The classes partition the records; generalizing a column (here: dropping it) never
        /// makes the smallest class smaller.
        #[test]
        fn classes_partition_and_coarsening_never_raises_risk(a in proptest::collection::vec(0i64..4, 1..60), b in proptest::collection::vec(0i64..4, 60)) {
            let n = a.len();
            let ca: ArrayRef = Arc::new(Int64Array::from(a));
            let cb: ArrayRef = Arc::new(Int64Array::from(b[..n].to_vec()));
            let fine = risk(&[ca.clone(), cb]).expect("risk");
            let coarse = risk(&[ca]).expect("risk");
            prop_assert!(fine.classes >= coarse.classes);
            prop_assert!(coarse.smallest_class >= fine.smallest_class);
            prop_assert!(coarse.unique_records <= fine.unique_records);
            prop_assert!(fine.smallest_class * fine.classes <= n);
        }
    }
}
