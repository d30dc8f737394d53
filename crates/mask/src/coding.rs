//! Top and bottom coding (顶层/底层编码): numbers beyond a threshold are replaced by the
//! threshold, so outliers — the richest, the oldest — do not stand out.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array};

use crate::{MaskError, Technique};

/// The column as floats (integers converted), or [`MaskError::WrongType`].
pub(crate) fn floats(technique: &'static str, column: &ArrayRef) -> Result<Float64Array, MaskError> {
    if let Some(f) = column.as_any().downcast_ref::<Float64Array>() {
        return Ok(f.clone());
    }
    if let Some(i) = column.as_any().downcast_ref::<Int64Array>() {
        return Ok(crate::generalize::ints_as_floats(i));
    }
    Err(MaskError::WrongType {
        technique,
        expected: "Int64 or Float64",
        found: column.data_type().to_string(),
    })
}

/// Values below `bottom` become `bottom`, above `top` become `top`; the column keeps its type.
#[derive(Debug, Clone, Copy)]
pub struct TopBottom {
    /// The lowest value shown.
    pub bottom: f64,
    /// The highest value shown.
    pub top: f64,
}

impl Technique for TopBottom {
    fn id(&self) -> &'static str {
        "top_bottom_coding"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        if self.bottom.is_nan() || self.top.is_nan() || self.bottom > self.top {
            return Err(MaskError::Config {
                technique: "top_bottom_coding",
                detail: format!("bottom {} above top {}", self.bottom, self.top),
            });
        }
        if let Some(i) = column.as_any().downcast_ref::<Int64Array>() {
            let (lo, hi) = (self.bottom.ceil() as i64, self.top.floor() as i64);
            return Ok(Arc::new(
                i.iter().map(|v| v.map(|x| x.clamp(lo, hi))).collect::<Int64Array>(),
            ));
        }
        let f = floats(self.id(), column)?;
        Ok(Arc::new(
            f.iter()
                .map(|v| v.map(|x| x.clamp(self.bottom, self.top)))
                .collect::<Float64Array>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn coded_values_stay_inside_and_the_middle_is_untouched(xs in proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..50), lo in -1e3f64..0.0, hi in 0.0f64..1e3) {
            let col: ArrayRef = Arc::new(Float64Array::from(xs.clone()));
            let out = TopBottom { bottom: lo, top: hi }.apply(&col).expect("apply");
            let out = out.as_any().downcast_ref::<Float64Array>().expect("floats");
            for (i, x) in xs.iter().enumerate() {
                match x {
                    None => prop_assert!(out.is_null(i)),
                    Some(x) => {
                        let y = out.value(i);
                        prop_assert!(y >= lo && y <= hi);
                        if *x >= lo && *x <= hi { prop_assert_eq!(y, *x); }
                    }
                }
            }
        }
    }
}
