//! # shuyu-mask
//!
//! The de-identification techniques of GB/T 37964-2019 (个人信息去标识化指南) as
//! implementations of one trait, [`Technique`], on Arrow arrays — usable without the
//! server, by the workspace sampler, the offline `anonymize` command and tests alike:
//!
//! - [`Suppress`]: the value is removed (null).
//! - [`display::DisplayMask`]: partial display in the common Chinese convention (name keeps
//!   the surname, ID number first 1 + last 2, mobile first 3 + last 4, bank card first 6 +
//!   last 4, address down to its district), configurable.
//! - [`pseudonym::Pseudonymize`]: keyed HMAC-SHA256 pseudonyms, one key per scenario, so joins
//!   work inside a scenario and never across.
//! - [`token`]: FF1 format-preserving tokens (NIST SP 800-38G) that keep a value's format —
//!   an ID-number token is a valid ID number, a card token passes Luhn — and decrypt with
//!   the key only.
//! - [`generalize`]: dates to month or year, ages to bands, numbers to intervals, any value
//!   up an ARX-style hierarchy.
//! - [`coding::TopBottom`]: top and bottom coding of numbers.
//! - [`noise::LaplaceNoise`]: keyed, reproducible Laplace noise on numbers.
//! - [`synthetic::Synthetic`]: plausible synthetic values for fields no one may see in any
//!   form (L4), valid check digits included, under the demo city's fictional region codes.
//!
//! - [`catalog`]: the rule catalog — the default technique by field type × grade, fail
//!   closed — and the technique a rule builds under a scenario's keys.
//!
//! - [`risk`]: re-identification risk over quasi-identifiers (classes, the smallest one,
//!   unique records).
//! - [`anon`]: privacy models (k-anonymity, distinct and entropy ℓ-diversity, t-closeness)
//!   with the optimal full-domain generalization under ARX's utility metrics (non-uniform
//!   entropy, loss, discernibility), found by a pruned search over the generalization lattice.
//!
//! Every technique keeps nulls null and never panics on user data; a column of the wrong
//! type is a [`MaskError`], not a guess.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, new_null_array};
use arrow::datatypes::DataType;

pub mod anon;
pub mod catalog;
pub mod coding;
pub mod display;
pub mod generalize;
pub mod noise;
pub mod pseudonym;
pub mod risk;
pub mod synthetic;
pub mod token;

/// What can go wrong applying a technique.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// The column's type is not one the technique works on.
    #[error("technique {technique} does not apply to {found} columns (expected {expected})")]
    WrongType {
        /// The technique's id.
        technique: &'static str,
        /// What it expects.
        expected: &'static str,
        /// What the column is.
        found: String,
    },
    /// A key of the wrong size or a parameter out of range.
    #[error("technique {technique}: {detail}")]
    Config {
        /// The technique's id.
        technique: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A data value that the column's generalization hierarchy does not list: the search
    /// cannot generalize it, and guessing would publish it unchanged.
    #[error("column {column}, row {row}: value {value:?} is not in the column's hierarchy")]
    NotInHierarchy {
        /// The column.
        column: String,
        /// The row (1-based, header not counted).
        row: usize,
        /// The value.
        value: String,
    },
    /// No generalization satisfies the privacy models within the suppression limit, so there is
    /// nothing safe to publish.
    #[error("no generalization satisfies the privacy models within the suppression limit")]
    NoSolution,
}

/// One de-identification technique: a pure function of a column (and its key, if any).
pub trait Technique: Send + Sync {
    /// The stable id (`suppress`, `display_mask`, `pseudonymize`, `ff1_token`, …), recorded
    /// in scenario manifests and sample lineage.
    fn id(&self) -> &'static str;
    /// The de-identified column, the same length, nulls kept null.
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError>;
}

/// Suppression (抑制): every value removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Suppress;

impl Technique for Suppress {
    fn id(&self) -> &'static str {
        "suppress"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        Ok(new_null_array(column.data_type(), column.len()))
    }
}

/// The column as strings, or [`MaskError::WrongType`].
pub(crate) fn strings<'a>(technique: &'static str, column: &'a ArrayRef) -> Result<&'a StringArray, MaskError> {
    column
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| MaskError::WrongType {
            technique,
            expected: "Utf8",
            found: column.data_type().to_string(),
        })
}

/// Maps every non-null string through `f` (which may itself return null).
pub(crate) fn map_strings(
    technique: &'static str,
    column: &ArrayRef,
    f: impl Fn(&str) -> Option<String>,
) -> Result<ArrayRef, MaskError> {
    let s = strings(technique, column)?;
    Ok(Arc::new(s.iter().map(|v| v.and_then(&f)).collect::<StringArray>()))
}

/// Maps every non-null string by writing its replacement into a reused buffer (`f` returns
/// false for null): the hot path of display masks and pseudonyms, with no allocation per
/// value and the output sized up front.
pub(crate) fn map_strings_into(
    technique: &'static str,
    column: &ArrayRef,
    mut f: impl FnMut(&str, &mut String) -> bool,
) -> Result<ArrayRef, MaskError> {
    let s = strings(technique, column)?;
    let mut out = arrow::array::StringBuilder::with_capacity(s.len(), s.value_data().len() + s.len() * 4);
    let mut buf = String::with_capacity(64);
    for v in s.iter() {
        match v {
            Some(v) => {
                buf.clear();
                if f(v, &mut buf) {
                    out.append_value(&buf);
                } else {
                    out.append_null();
                }
            }
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Whether the technique works on this type (for rule catalogs that pick by type).
pub fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_keeps_the_length_and_type_and_removes_every_value() {
        let col: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("c")]));
        let out = Suppress.apply(&col).expect("apply");
        assert_eq!((out.len(), out.null_count(), out.data_type()), (3, 3, &DataType::Utf8));
    }
}
