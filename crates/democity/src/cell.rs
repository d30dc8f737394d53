//! One value of a generated row, typed just enough that every output format
//! can render it faithfully (a number stays a number in JSON and XLSX, a date
//! stays a date in Parquet) and a dirty-row defect can be applied to it.

use crate::calendar::civil_from_days;

/// A generated value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Text, written as is.
    Text(String),
    /// An integer.
    Int(i64),
    /// A fixed-point decimal: `value / 10^places` (money in cents is `Dec(cents, 2)`).
    Dec(i64, u32),
    /// A date as days since 1970-01-01, written `YYYY-MM-DD`.
    Date(i64),
    /// A month, written `YYYY-MM`.
    Month(i32, u32),
    /// No value: an empty CSV field, JSON `null`, an empty xlsx cell, a Parquet null.
    Null,
}

impl Cell {
    /// The text form used by CSV (and by JSON for text-like cells).
    pub(crate) fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(v) => v.to_string(),
            Cell::Dec(v, places) => decimal(*v, *places),
            Cell::Date(day) => {
                let (y, m, d) = civil_from_days(*day);
                format!("{y:04}-{m:02}-{d:02}")
            }
            Cell::Month(y, m) => format!("{y:04}-{m:02}"),
            Cell::Null => String::new(),
        }
    }

    /// Appends the JSON form: numbers as JSON numbers, text and dates as strings, `Null` as `null`.
    pub(crate) fn write_json(&self, out: &mut String) -> Result<(), serde_json::Error> {
        match self {
            Cell::Int(_) | Cell::Dec(..) => out.push_str(&self.text()),
            Cell::Null => out.push_str("null"),
            Cell::Text(s) => out.push_str(&serde_json::to_string(s)?),
            Cell::Date(_) | Cell::Month(..) => out.push_str(&serde_json::to_string(&self.text())?),
        }
        Ok(())
    }

    /// The value as a float, for numeric cells.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(v) => Some(*v as f64),
            Cell::Dec(v, places) => Some(*v as f64 / 10f64.powi(*places as i32)),
            _ => None,
        }
    }
}

/// `value / 10^places` with exactly `places` decimals.
fn decimal(value: i64, places: u32) -> String {
    if places == 0 {
        return value.to_string();
    }
    let scale = 10u64.pow(places);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = places as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        assert_eq!(Cell::Dec(123_405, 2).text(), "1234.05");
        assert_eq!(Cell::Dec(7, 2).text(), "0.07");
        assert_eq!(Cell::Dec(-15, 1).text(), "-1.5");
        assert_eq!(Cell::Date(0).text(), "1970-01-01");
        assert_eq!(Cell::Month(2024, 3).text(), "2024-03");
        let mut s = String::new();
        Cell::Text("a\"b".into()).write_json(&mut s).ok();
        Cell::Null.write_json(&mut s).ok();
        Cell::Dec(50, 2).write_json(&mut s).ok();
        assert_eq!(s, "\"a\\\"b\"null0.50");
    }
}
