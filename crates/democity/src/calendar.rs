//! Civil-calendar arithmetic on day numbers (days since 1970-01-01), done by
//! hand so that dates are plain integers in the hot loops and Parquet's
//! `Date32` needs no conversion.

/// The demo city's "today" as (year, month, day): every "last N months" and every age is relative to it,
/// so output does not depend on the wall clock.
pub const AS_OF: (i32, u32, u32) = (2025, 12, 31);

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub(crate) fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// The day number of [`AS_OF`].
pub(crate) fn as_of_day() -> i64 {
    days_from_civil(AS_OF.0, AS_OF.1, AS_OF.2)
}

/// `YYYY-MM-DD`.
pub(crate) fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYYMMDD`, as embedded in an identity number.
pub(crate) fn compact_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}{m:02}{d:02}")
}

/// A month as (year, month) counted back from the month of [`AS_OF`]: `back = 0` is that month.
pub(crate) fn month_back(back: u32) -> (i32, u32) {
    let idx = AS_OF.0 * 12 + AS_OF.1 as i32 - 1 - back as i32;
    (idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32)
}

/// Whole years of age on `on` of someone born on `birth` (both day numbers).
pub(crate) fn age_on(birth: i64, on: i64) -> i32 {
    let (by, bm, bd) = civil_from_days(birth);
    let (y, m, d) = civil_from_days(on);
    y - by - i32::from((m, d) < (bm, bd))
}

/// 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(day: i64) -> u32 {
    (day + 3).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in -40_000..40_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(iso_date(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(weekday(days_from_civil(2025, 12, 31)), 2); // a Wednesday
        assert_eq!(month_back(0), (2025, 12));
        assert_eq!(month_back(12), (2024, 12));
        assert_eq!(month_back(23), (2024, 1));
        assert_eq!(age_on(days_from_civil(1990, 3, 7), days_from_civil(2026, 3, 6)), 35);
        assert_eq!(age_on(days_from_civil(1990, 3, 7), days_from_civil(2026, 3, 7)), 36);
    }
}
