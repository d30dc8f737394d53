//! An agreement's term (协议期限): at most three years (B§15, Y§16), so a longer one
//! cannot be built; renewal is possible only inside its last six months.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The longest term the rules allow, in years.
pub const MAX_YEARS: i16 = 3;
/// How long before the end renewal opens, in months.
pub const RENEWAL_WINDOW_MONTHS: i16 = 6;

/// A term that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    /// It ends on or before it starts.
    #[error("a term must end after it starts")]
    Empty,
    /// It is longer than three years.
    #[error("a term is at most three years")]
    TooLong,
}

impl TermError {
    /// The rule's stable code.
    pub fn rule(self) -> &'static str {
        match self {
            TermError::Empty => "term_empty",
            TermError::TooLong => "term_too_long",
        }
    }
}

/// From `start` (first day in force) to `end` (last day in force), both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Term {
    start: Date,
    end: Date,
}

fn add_years(d: Date, years: i16) -> Date {
    d.checked_add(years.years()).unwrap_or(Date::MAX)
}

impl Term {
    /// A term, if it is one the rules allow: it ends after it starts and lasts at most
    /// three years (the last day is at most the day before the third anniversary).
    pub fn new(start: Date, end: Date) -> Result<Term, TermError> {
        if end <= start {
            return Err(TermError::Empty);
        }
        let limit = add_years(start, MAX_YEARS).yesterday().unwrap_or(Date::MIN);
        if end > limit {
            return Err(TermError::TooLong);
        }
        Ok(Term { start, end })
    }

    /// The longest term starting on `start`.
    pub fn longest(start: Date) -> Term {
        let end = add_years(start, MAX_YEARS).yesterday().unwrap_or(start);
        Term { start, end }
    }

    /// The first day in force.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The last day in force.
    pub fn end(&self) -> Date {
        self.end
    }

    /// Whether `day` is inside the term.
    pub fn contains(&self, day: Date) -> bool {
        self.start <= day && day <= self.end
    }

    /// The first day a renewal may be requested: six months before the end.
    pub fn renewal_opens(&self) -> Date {
        self.end
            .checked_sub(RENEWAL_WINDOW_MONTHS.months())
            .unwrap_or(self.start)
            .max(self.start)
    }

    /// Whether `day` is inside the renewal window (the last six months of the term).
    pub fn in_renewal_window(&self, day: Date) -> bool {
        self.renewal_opens() <= day && day <= self.end
    }

    /// The term that follows this one, ending on `end` (again at most three years).
    pub fn next(&self, end: Date) -> Result<Term, TermError> {
        Term::new(self.end.tomorrow().unwrap_or(self.end), end)
    }
}

impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            start: Date,
            end: Date,
        }
        let r = Raw::deserialize(d)?;
        // A stored or sent term is checked like a new one: the type never holds a longer one.
        Term::new(r.start, r.end).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn three_years_is_the_limit() {
        let s = date(2026, 1, 1);
        assert!(Term::new(s, date(2028, 12, 31)).is_ok());
        assert_eq!(Term::new(s, date(2029, 1, 1)), Err(TermError::TooLong));
        assert_eq!(Term::new(s, s), Err(TermError::Empty));
        assert_eq!(Term::longest(s).end(), date(2028, 12, 31));
        // Leap days: from 29 Feb the third anniversary is 28 Feb.
        assert_eq!(Term::longest(date(2028, 2, 29)).end(), date(2031, 2, 27));
        // A stored or sent term goes through the same check.
        let long: Result<Term, _> = serde_json::from_str(r#"{"start":"2026-01-01","end":"2030-01-01"}"#);
        assert!(long.is_err(), "a term longer than 3 years does not load");
        let ok: Term = serde_json::from_str(r#"{"start":"2026-01-01","end":"2028-12-31"}"#).expect("term");
        assert_eq!(ok.end(), date(2028, 12, 31));
    }

    #[test]
    fn renewal_opens_six_months_before_the_end() {
        let t = Term::new(date(2026, 1, 1), date(2028, 12, 31)).expect("term");
        assert_eq!(t.renewal_opens(), date(2028, 6, 30));
        assert!(!t.in_renewal_window(date(2028, 6, 29)));
        assert!(t.in_renewal_window(date(2028, 6, 30)));
        assert!(t.in_renewal_window(date(2028, 12, 31)));
        assert!(!t.in_renewal_window(date(2029, 1, 1)));
        assert_eq!(t.next(date(2031, 12, 31)).map(|n| n.start()), Ok(date(2029, 1, 1)));
    }

    proptest! {
        #[test]
        fn no_term_is_longer_than_three_years(y in 2020i16..2040, doy in 0i32..366, days in 1i32..1500) {
            let start = date(y, 1, 1).checked_add(doy.days()).expect("date");
            let end = start.checked_add(days.days()).expect("date");
            if let Ok(t) = Term::new(start, end) {
                prop_assert!(t.end() < add_years(t.start(), 3));
                prop_assert!(t.renewal_opens() <= t.end());
            } else {
                prop_assert!(end >= add_years(start, 3).yesterday().expect("day").tomorrow().expect("day"));
            }
        }
    }
}
