//! Generalization (泛化): a value replaced by a coarser one — up a hierarchy (ARX's CSV
//! format: `;`-separated, one level per column, level 0 the original value), dates to month
//! or year, ages to bands, numbers to intervals.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};

use crate::{MaskError, Technique, map_strings};

/// A generalization hierarchy: for each original value, its value at every level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    levels: usize,
    rows: HashMap<String, Vec<String>>,
}

impl Hierarchy {
    /// Parses ARX's format: one line per original value, `;`-separated levels. Every line must
    /// have the same number of levels; an original value may appear once.
    pub fn from_csv(text: &str) -> Result<Hierarchy, MaskError> {
        let bad = |detail: String| MaskError::Config {
            technique: "generalize",
            detail,
        };
        let mut rows = HashMap::new();
        let mut levels = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let cells: Vec<String> = line.split(';').map(str::to_string).collect();
            if levels == 0 {
                levels = cells.len();
            } else if cells.len() != levels {
                return Err(bad(format!(
                    "line {}: {} levels, the first line has {levels}",
                    i + 1,
                    cells.len()
                )));
            }
            if rows.insert(cells[0].clone(), cells).is_some() {
                return Err(bad(format!("line {}: a value appears twice", i + 1)));
            }
        }
        if rows.is_empty() {
            return Err(bad("the hierarchy is empty".into()));
        }
        Ok(Hierarchy { levels, rows })
    }

    /// How many levels (level 0 is the original value).
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The original values.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.rows.keys().map(String::as_str)
    }

    /// A value at `level` (None when the value is not in the hierarchy or the level is too high).
    pub fn generalize(&self, value: &str, level: usize) -> Option<&str> {
        self.rows.get(value)?.get(level).map(String::as_str)
    }
}

/// Replaces each value by its ancestor at `level`; a value outside the hierarchy becomes null.
#[derive(Debug, Clone)]
pub struct HierarchyGeneralize {
    /// The hierarchy.
    pub hierarchy: Arc<Hierarchy>,
    /// The level to generalize to.
    pub level: usize,
}

impl Technique for HierarchyGeneralize {
    fn id(&self) -> &'static str {
        "generalize"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        if self.level >= self.hierarchy.levels() {
            return Err(MaskError::Config {
                technique: "generalize",
                detail: format!("level {} of a hierarchy with {}", self.level, self.hierarchy.levels()),
            });
        }
        map_strings(self.id(), column, |v| {
            self.hierarchy.generalize(v, self.level).map(str::to_string)
        })
    }
}

/// How coarse a date becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTo {
    /// `YYYY-MM`.
    Month,
    /// `YYYY`.
    Year,
}

/// Dates (`YYYY-MM-DD` text or Arrow dates) to their month or year, as text.
#[derive(Debug, Clone, Copy)]
pub struct DateGeneralize(pub DateTo);

impl DateGeneralize {
    fn cut(&self, d: jiff::civil::Date) -> String {
        match self.0 {
            DateTo::Month => d.strftime("%Y-%m").to_string(),
            DateTo::Year => d.strftime("%Y").to_string(),
        }
    }
}

impl Technique for DateGeneralize {
    fn id(&self) -> &'static str {
        "generalize"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        if let Some(d) = column.as_any().downcast_ref::<Date32Array>() {
            let epoch = jiff::civil::date(1970, 1, 1);
            return Ok(Arc::new(
                d.iter()
                    .map(|v| {
                        v.and_then(|days| epoch.checked_add(jiff::Span::new().days(i64::from(days))).ok())
                            .map(|x| self.cut(x))
                    })
                    .collect::<StringArray>(),
            ));
        }
        map_strings(self.id(), column, |v| {
            if let Some(d) = v.get(..10).and_then(|s| s.parse::<jiff::civil::Date>().ok()) {
                return Some(self.cut(d));
            }
            // A month (`YYYY-MM`) generalizes to its year.
            let month = v.len() == 7 && format!("{v}-01").parse::<jiff::civil::Date>().is_ok();
            (month && self.0 == DateTo::Year).then(|| v[..4].to_string())
        })
    }
}

/// Numbers to half-open intervals of `width` (`[30, 40)`), as text: ages to bands, money to
/// ranges.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// The interval width (> 0).
    pub width: f64,
}

impl Intervals {
    /// The interval of one number.
    pub fn interval(&self, x: f64) -> String {
        let lo = (x / self.width).floor() * self.width;
        format!("[{}, {})", lo, lo + self.width)
    }
}

impl Technique for Intervals {
    fn id(&self) -> &'static str {
        "generalize"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(MaskError::Config {
                technique: "generalize",
                detail: format!("interval width {}", self.width),
            });
        }
        let values = crate::coding::floats("generalize", column)?;
        Ok(Arc::new(
            values
                .iter()
                .map(|v| v.map(|x| self.interval(x)))
                .collect::<StringArray>(),
        ))
    }
}

/// The values of an integer column as floats (for techniques on numbers).
pub(crate) fn ints_as_floats(a: &Int64Array) -> Float64Array {
    a.iter().map(|v| v.map(|x| x as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AGE: &str = "17;15-19;10-19;*\n18;15-19;10-19;*\n23;20-24;20-29;*\n29;25-29;20-29;*\n";

    #[test]
    fn arx_hierarchies_load_and_bad_ones_are_named() {
        let h = Hierarchy::from_csv(AGE).expect("hierarchy");
        assert_eq!(h.levels(), 4);
        assert_eq!(h.generalize("23", 2), Some("20-29"));
        let e = Hierarchy::from_csv("a;b\nc\n").expect_err("ragged");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Hierarchy::from_csv("a;b\na;c\n").expect_err("twice");
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn dates_and_numbers() {
        let col: ArrayRef = Arc::new(StringArray::from(vec![Some("1985-03-01"), None, Some("bad")]));
        let out = DateGeneralize(DateTo::Month).apply(&col).expect("apply");
        let out = out.as_any().downcast_ref::<StringArray>().expect("strings");
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![Some("1985-03"), None, None]);
        assert_eq!(Intervals { width: 10.0 }.interval(37.0), "[30, 40)");
        let months: ArrayRef = Arc::new(StringArray::from(vec!["2025-03", "2025-13"]));
        let out = DateGeneralize(DateTo::Year).apply(&months).expect("apply");
        let out = out.as_any().downcast_ref::<StringArray>().expect("strings");
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![Some("2025"), None]);
    }

    proptest! {
        /// Generalizing follows the hierarchy: every value maps to its row's entry, and two
        /// values equal at a level stay equal at every higher level.
        #[test]
        fn generalizations_follow_the_hierarchy(level in 0usize..4, pick in proptest::collection::vec(0usize..4, 1..20)) {
            let h = Arc::new(Hierarchy::from_csv(AGE).expect("h"));
            let originals = ["17", "18", "23", "29"];
            let col: ArrayRef = Arc::new(StringArray::from(pick.iter().map(|i| originals[*i]).collect::<Vec<_>>()));
            let out = HierarchyGeneralize { hierarchy: h.clone(), level }.apply(&col).expect("apply");
            let out = out.as_any().downcast_ref::<StringArray>().expect("strings");
            for (i, p) in pick.iter().enumerate() {
                prop_assert_eq!(Some(out.value(i)), h.generalize(originals[*p], level));
            }
            for a in originals {
                for b in originals {
                    if h.generalize(a, level) == h.generalize(b, level) {
                        for up in level..4 {
                            prop_assert_eq!(h.generalize(a, up), h.generalize(b, up));
                        }
                    }
                }
            }
        }
    }
}
