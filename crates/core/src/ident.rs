//! Personal identifiers of mainland China, parsed with their check digits —
//! not bare regexes — so a detector, an importer or a generator that holds one
//! knows it is well-formed (CONVENTIONS.md, "parse, don't validate").

use std::fmt;

use jiff::civil::Date;

use crate::error::FieldError;

/// Resident identity card number (居民身份证号码), GB 11643-1999: a 6-digit region
/// code, an 8-digit birth date, a 3-digit sequence (odd for men, even for women) and
/// an ISO 7064 MOD 11-2 check character (`0`–`9` or `X`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// A person's sex as encoded in an identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Odd sequence number.
    Male,
    /// Even sequence number.
    Female,
}

impl IdNumber {
    /// The check character for the first 17 digits.
    pub fn check_char(first17: &[u8]) -> Option<char> {
        if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sum: u32 = first17
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        Some(ID_CHECK[(sum % 11) as usize] as char)
    }

    /// Parses a number: 18 characters, valid birth date, correct check character.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(FieldError::new("id_number", "id_number_format"));
        }
        if Self::birth_date_of(&s).is_none() {
            return Err(FieldError::new("id_number", "id_number_birth_date"));
        }
        if Self::check_char(&b[..17]) != Some(b[17] as char) {
            return Err(FieldError::new("id_number", "id_number_check"));
        }
        Ok(Self(s))
    }

    /// Completes 17 digits with their check character (for generators and tests).
    pub fn complete(first17: &str) -> Option<IdNumber> {
        let c = Self::check_char(first17.as_bytes())?;
        let s = format!("{first17}{c}");
        Self::birth_date_of(&s).map(|_| IdNumber(s))
    }

    fn birth_date_of(s: &str) -> Option<Date> {
        let y: i16 = s.get(6..10)?.parse().ok()?;
        let m: i8 = s.get(10..12)?.parse().ok()?;
        let d: i8 = s.get(12..14)?.parse().ok()?;
        if !(1900..=2100).contains(&y) {
            return None;
        }
        Date::new(y, m, d).ok()
    }

    /// The 6-digit region code of issue.
    pub fn region(&self) -> &str {
        &self.0[..6]
    }

    /// The date of birth.
    pub fn birth_date(&self) -> Date {
        Self::birth_date_of(&self.0).unwrap_or(Date::constant(1900, 1, 1))
    }

    /// The sex.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Age in whole years on `on`.
    pub fn age_on(&self, on: Date) -> i32 {
        let b = self.birth_date();
        let mut age = i32::from(on.year()) - i32::from(b.year());
        if (on.month(), on.day()) < (b.month(), b.day()) {
            age -= 1;
        }
        age
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mainland mobile number: 11 digits, `1` then `3`–`9`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    /// Parses a number, tolerating a `+86`/`86` prefix, spaces and dashes.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let digits: String = s.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = digits
            .strip_prefix("+86")
            .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
            .unwrap_or(&digits);
        let b = digits.as_bytes();
        if b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
            Ok(Self(digits.to_string()))
        } else {
            Err(FieldError::new("mobile", "mobile_format"))
        }
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bank card number (PAN): 16–19 digits with a valid Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankCard(String);

/// The Luhn (mod 10) checksum of a digit string is valid.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

impl BankCard {
    /// Parses a card number (spaces allowed).
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if !(16..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new("bank_card", "bank_card_format"));
        }
        if !luhn_valid(&digits) {
            return Err(FieldError::new("bank_card", "bank_card_check"));
        }
        Ok(Self(digits))
    }

    /// Completes all digits but the last with the Luhn check digit.
    pub fn complete(body: &str) -> Option<BankCard> {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|c| luhn_valid(c))
            .and_then(|c| BankCard::parse(&c).ok())
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identity_numbers_carry_birth_date_sex_and_check() {
        // 17 digits under the fictional prefecture 3799, born 1990-03-07, sequence 123 (odd: male).
        let id = IdNumber::complete("37990119900307123").expect("valid");
        assert!(IdNumber::parse(id.as_str()).is_ok());
        assert_eq!(id.birth_date(), Date::constant(1990, 3, 7));
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.region(), "379901");
        assert_eq!(id.age_on(Date::constant(2026, 3, 6)), 35);
        assert_eq!(id.age_on(Date::constant(2026, 3, 7)), 36);
        let mut bad = id.as_str().to_string();
        let last = bad.pop().expect("char");
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(IdNumber::parse(&bad).map_err(|e| e.rule), Err("id_number_check"));
        assert_eq!(
            IdNumber::parse("379901199002301230").map_err(|e| e.rule),
            Err("id_number_birth_date")
        );
        assert_eq!(
            IdNumber::parse("37990119900307").map_err(|e| e.rule),
            Err("id_number_format")
        );
        // The published example of GB 11643: 11010519491231002X.
        assert!(IdNumber::parse("11010519491231002X").is_ok());
    }

    #[test]
    fn mobiles_and_cards() {
        assert_eq!(
            Mobile::parse("+86 138-0013-8000").map(|m| m.0),
            Ok("13800138000".into())
        );
        assert!(Mobile::parse("12800138000").is_err());
        assert!(Mobile::parse("1380013800").is_err());
        assert!(luhn_valid("4539578763621486"));
        assert!(!luhn_valid("4539578763621487"));
        let card = BankCard::complete("622202100112345678").expect("valid");
        assert_eq!(card.as_str().len(), 19);
        let spaced: String = card
            .as_str()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i > 0 && i % 4 == 0 { vec![' ', c] } else { vec![c] })
            .collect();
        assert_eq!(BankCard::parse(&spaced), Ok(card.clone()));
        let mut wrong = card.as_str().to_string();
        let last = wrong.pop().expect("digit");
        wrong.push(if last == '9' { '0' } else { (last as u8 + 1) as char });
        assert_eq!(BankCard::parse(&wrong).map_err(|e| e.rule), Err("bank_card_check"));
        assert_eq!(BankCard::parse("12345").map_err(|e| e.rule), Err("bank_card_format"));
    }

    proptest! {
        #[test]
        fn every_single_digit_change_of_an_id_number_is_caught(day in 1u32..28, month in 1u32..13, year in 1930u32..2020, seq in 0u32..1000, pos in 0usize..17, delta in 1u8..10) {
            let body = format!("379902{year:04}{month:02}{day:02}{seq:03}");
            let id = IdNumber::complete(&body).expect("valid");
            prop_assert!(IdNumber::parse(id.as_str()).is_ok());
            let mut b = id.as_str().as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).expect("ascii");
            prop_assert!(IdNumber::parse(&changed).is_err());
        }

        #[test]
        fn luhn_catches_single_digit_errors(body in "[0-9]{15,18}", pos in 0usize..19, delta in 1u8..10) {
            let card = BankCard::complete(&body).expect("some check digit fits");
            let mut b = card.as_str().as_bytes().to_vec();
            let p = pos % b.len();
            b[p] = b'0' + (b[p] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&String::from_utf8(b).expect("ascii")));
        }
    }
}
