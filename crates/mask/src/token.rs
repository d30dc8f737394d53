//! Format-preserving tokens (格式保留加密) with FF1 (NIST SP 800-38G, AES-256): a token has
//! the format of the value — an ID-number token is a valid ID number (region kept, a valid
//! birth date, the right check character), a mobile token a mobile, a card token passes
//! Luhn with its issuer prefix kept — so developers' validation code works on samples.
//! With the key a token decrypts to its value; without it, it reveals nothing but the kept
//! parts. Values that do not have the format (dirty rows) become null, never pass through.

use aes08::Aes256;
use arrow::array::ArrayRef;
use fpe::ff1::{FF1, FlexibleNumeralString};
use jiff::civil::{Date, date};
use shuyu_core::ident::{IdNumber, luhn_valid};

use crate::{MaskError, Technique, map_strings};

/// What a token keeps the format of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// GB 11643 ID numbers: region and sex (the sequence's parity) kept; birth date and
    /// sequence encrypted together (the date stays a valid date in 1900–2099); the check
    /// character recomputed.
    IdNumber,
    /// Mobiles: the first three digits kept, the last eight encrypted.
    Mobile,
    /// Bank cards: the six-digit issuer prefix kept, the middle encrypted, Luhn recomputed.
    BankCard,
    /// Any string of at least six digits, all encrypted.
    Digits,
}

/// FF1 tokens under a scenario key.
pub struct Ff1Token {
    ff: FF1<Aes256>,
    kind: TokenKind,
}

impl std::fmt::Debug for Ff1Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ff1Token({:?})", self.kind)
    }
}

const EPOCH: Date = date(1900, 1, 1);
/// Days from 1900-01-01 to 2099-12-31 inclusive.
const DAYS: u64 = 73_049;
/// Birth date × sequence-without-its-parity combinations (the parity, the sex, is kept).
const ID_DOMAIN: u64 = DAYS * 500;

fn digits_of(s: &str) -> Option<Vec<u16>> {
    s.bytes()
        .map(|b| b.is_ascii_digit().then(|| u16::from(b - b'0')))
        .collect()
}

fn text_of(d: &[u16]) -> String {
    d.iter().map(|x| char::from(b'0' + *x as u8)).collect()
}

fn number(d: &[u16]) -> u64 {
    d.iter().fold(0, |n, x| n * 10 + u64::from(*x))
}

fn digits(mut n: u64, len: usize) -> Vec<u16> {
    let mut v = vec![0u16; len];
    for slot in v.iter_mut().rev() {
        *slot = (n % 10) as u16;
        n /= 10;
    }
    v
}

impl Ff1Token {
    /// Tokens of `kind` under the 256-bit `key`.
    pub fn new(key: [u8; 32], kind: TokenKind) -> Result<Self, MaskError> {
        let ff = FF1::<Aes256>::new(&key, 10).map_err(|e| MaskError::Config {
            technique: "ff1_token",
            detail: e.to_string(),
        })?;
        Ok(Ff1Token { ff, kind })
    }

    fn tweak(&self) -> &'static [u8] {
        match self.kind {
            TokenKind::IdNumber => b"shuyu/id_number",
            TokenKind::Mobile => b"shuyu/mobile",
            TokenKind::BankCard => b"shuyu/bank_card",
            TokenKind::Digits => b"shuyu/digits",
        }
    }

    fn run(&self, d: Vec<u16>, forward: bool) -> Option<Vec<u16>> {
        let ns = FlexibleNumeralString::from(d);
        let out = if forward {
            self.ff.encrypt(self.tweak(), &ns)
        } else {
            self.ff.decrypt(self.tweak(), &ns)
        };
        out.ok().map(Into::into)
    }

    /// FF1 on the 8-digit numbers below `domain`, cycle-walking so the result stays below it
    /// too: a permutation of `0..domain`.
    fn walk(&self, n: u64, domain: u64, forward: bool) -> Option<u64> {
        let mut x = n;
        for _ in 0..1000 {
            x = number(&self.run(digits(x, 8), forward)?);
            if x < domain {
                return Some(x);
            }
        }
        None
    }

    fn id_number(&self, v: &str, forward: bool) -> Option<String> {
        let id = IdNumber::parse(v).ok()?;
        let s = id.as_str();
        let day = u64::try_from(EPOCH.until(id.birth_date()).ok()?.get_days()).ok()?;
        let seq: u64 = s[14..17].parse().ok()?;
        if day >= DAYS {
            return None;
        }
        let n = self.walk(day * 500 + seq / 2, ID_DOMAIN, forward)?;
        let date = EPOCH.checked_add(jiff::Span::new().days((n / 500) as i64)).ok()?;
        let body = format!("{}{}{:03}", &s[..6], date.strftime("%Y%m%d"), (n % 500) * 2 + seq % 2);
        IdNumber::complete(&body).map(|i| i.as_str().to_string())
    }

    fn bank_card(&self, v: &str, forward: bool) -> Option<String> {
        let d = digits_of(v)?;
        if !(16..=19).contains(&d.len()) || !luhn_valid(v) {
            return None;
        }
        let middle = self.run(d[6..d.len() - 1].to_vec(), forward)?;
        let body = format!("{}{}", text_of(&d[..6]), text_of(&middle));
        (0..10)
            .map(|c| format!("{body}{c}"))
            .find(|candidate| luhn_valid(candidate))
    }

    /// The token of one value (or the value of one token, when `forward` is false).
    fn convert(&self, v: &str, forward: bool) -> Option<String> {
        match self.kind {
            TokenKind::IdNumber => self.id_number(v, forward),
            TokenKind::Mobile => {
                let d = digits_of(v)?;
                if d.len() != 11 || d[0] != 1 {
                    return None;
                }
                Some(format!(
                    "{}{}",
                    text_of(&d[..3]),
                    text_of(&self.run(d[3..].to_vec(), forward)?)
                ))
            }
            TokenKind::BankCard => self.bank_card(v, forward),
            TokenKind::Digits => {
                let d = digits_of(v)?;
                if d.len() < 6 {
                    return None;
                }
                Some(text_of(&self.run(d, forward)?))
            }
        }
    }

    /// The token of a value (None when it does not have the format).
    pub fn encrypt(&self, v: &str) -> Option<String> {
        self.convert(v.trim(), true)
    }

    /// The value of a token.
    pub fn decrypt(&self, token: &str) -> Option<String> {
        self.convert(token.trim(), false)
    }
}

impl Technique for Ff1Token {
    fn id(&self) -> &'static str {
        "ff1_token"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings(self.id(), column, |v| self.encrypt(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id_from(region: u32, day: u32, seq: u32) -> String {
        let birth = EPOCH.checked_add(jiff::Span::new().days(i64::from(day))).expect("date");
        let body = format!("3799{:02}{}{:03}", region % 4, birth.strftime("%Y%m%d"), seq % 1000);
        IdNumber::complete(&body).expect("id").as_str().to_string()
    }

    proptest! {
        /// An ID-number token is a valid ID number with the same region; it decrypts to the
        /// value with the key and not with another.
        #[test]
        fn id_tokens_keep_the_format_and_round_trip(region in 0u32..4, day in 0u32..73_049, seq in 0u32..1000, k in any::<[u8; 32]>(), other in any::<[u8; 32]>()) {
            prop_assume!(k != other);
            let id = id_from(region, day, seq);
            let t = Ff1Token::new(k, TokenKind::IdNumber).expect("ff1");
            let token = t.encrypt(&id).expect("token");
            prop_assert!(IdNumber::parse(&token).is_ok(), "{token}");
            prop_assert_eq!(&token[..6], &id[..6]);
            prop_assert_eq!(IdNumber::parse(&token).map(|t| t.sex()).ok(), IdNumber::parse(&id).map(|t| t.sex()).ok());
            prop_assert_eq!(t.decrypt(&token), Some(id.clone()));
            let wrong = Ff1Token::new(other, TokenKind::IdNumber).expect("ff1");
            prop_assert_ne!(wrong.decrypt(&token), Some(id));
        }

        /// Card tokens keep the issuer prefix and pass Luhn; mobiles keep their prefix.
        #[test]
        fn card_and_mobile_tokens_keep_the_format(body in "[0-9]{15}", mobile in "1[3-9][0-9]{9}", k in any::<[u8; 32]>()) {
            let card = (0..10).map(|c| format!("{body}{c}")).find(|c| luhn_valid(c)).expect("luhn");
            let t = Ff1Token::new(k, TokenKind::BankCard).expect("ff1");
            let token = t.encrypt(&card).expect("token");
            prop_assert!(luhn_valid(&token) && token.len() == 16 && token[..6] == card[..6]);
            prop_assert_eq!(t.decrypt(&token), Some(card));
            let m = Ff1Token::new(k, TokenKind::Mobile).expect("ff1");
            let token = m.encrypt(&mobile).expect("token");
            prop_assert!(token.len() == 11 && token[..3] == mobile[..3]);
            prop_assert_eq!(m.decrypt(&token), Some(mobile));
        }
    }

    #[test]
    fn dirty_values_become_null_rather_than_pass_through() {
        let t = Ff1Token::new([1; 32], TokenKind::IdNumber).expect("ff1");
        assert_eq!(t.encrypt("379901198503011235x"), None);
        assert_eq!(t.encrypt("not an id"), None);
        let m = Ff1Token::new([1; 32], TokenKind::Mobile).expect("ff1");
        assert_eq!(m.encrypt("2381234567"), None);
    }
}
