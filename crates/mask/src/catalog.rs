//! The rule catalog (脱敏规则库): the default technique for a field by its detected type and
//! its grade — L1 as is, L2 a display mask, L3 a pseudonym or a generalization, L4 synthetic
//! (an ID number, the key people are joined on, an FF1 token) — and the technique a rule builds under a scenario's keys. Anything the catalog does not
//! know (core data, an unknown grade) is suppressed: fail closed. An operator may override a
//! field's rule for a scenario with a recorded reason; the override goes into the manifest.

use crate::display::{AddressMask, DisplayMask, NameMask};
use crate::generalize::{DateGeneralize, DateTo, Intervals};
use crate::noise::LaplaceNoise;
use crate::pseudonym::Pseudonymize;
use crate::synthetic::{Synthetic, SyntheticKind};
use crate::token::{Ff1Token, TokenKind};
use crate::{MaskError, Suppress, Technique};

/// A field's de-identification rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Shown as is.
    AsIs,
    /// A partial display mask fitting the type.
    DisplayMask,
    /// A keyed pseudonym.
    Pseudonymize,
    /// A format-preserving FF1 token.
    Tokenize,
    /// Dates to their month.
    DateToMonth,
    /// Dates (or months) to their year.
    DateToYear,
    /// Numbers to intervals of this width.
    Intervals(f64),
    /// Keyed Laplace noise of this scale.
    Noise(f64),
    /// A made-up value of the same kind.
    Synthetic,
    /// Removed.
    Suppress,
}

/// The stable code of a rule (for manifests and the console).
pub fn rule_code(r: &Rule) -> &'static str {
    match r {
        Rule::AsIs => "as_is",
        Rule::DisplayMask => "display_mask",
        Rule::Pseudonymize => "pseudonymize",
        Rule::Tokenize => "ff1_token",
        Rule::DateToMonth => "date_to_month",
        Rule::DateToYear => "date_to_year",
        Rule::Intervals(_) => "intervals",
        Rule::Noise(_) => "noise",
        Rule::Synthetic => "synthetic",
        Rule::Suppress => "suppress",
    }
}

/// The rule codes that take no parameter — those an operator may name in a scenario's
/// override ([`Rule::from_code`] parses them).
pub const RULE_CODES: [&str; 8] = [
    "as_is",
    "display_mask",
    "pseudonymize",
    "ff1_token",
    "date_to_month",
    "date_to_year",
    "synthetic",
    "suppress",
];

impl Rule {
    /// The rule of a code of [`RULE_CODES`] (None for anything else).
    pub fn from_code(code: &str) -> Option<Rule> {
        Some(match code {
            "as_is" => Rule::AsIs,
            "display_mask" => Rule::DisplayMask,
            "pseudonymize" => Rule::Pseudonymize,
            "ff1_token" => Rule::Tokenize,
            "date_to_month" => Rule::DateToMonth,
            "date_to_year" => Rule::DateToYear,
            "synthetic" => Rule::Synthetic,
            "suppress" => Rule::Suppress,
            _ => return None,
        })
    }
}

/// Field types that identify a person or an account directly.
const IDENTIFIERS: [&str; 7] = [
    "id_number",
    "mobile",
    "bank_card",
    "person_name",
    "email",
    "license_plate",
    "party_id",
];

/// The default rule for a field of `field_type` (the classifier's code) at `grade`
/// (`L1`…`L4`; anything else — core data, unknown — is suppressed).
pub fn default_rule(field_type: &str, grade: &str) -> Rule {
    let identifier = IDENTIFIERS.contains(&field_type);
    match grade {
        "L1" => Rule::AsIs,
        "L2" => match field_type {
            _ if identifier => Rule::DisplayMask,
            "address" => Rule::DisplayMask,
            _ => Rule::AsIs,
        },
        "L3" => match field_type {
            _ if identifier => Rule::Pseudonymize,
            "uscc" => Rule::Pseudonymize,
            "address" => Rule::DisplayMask,
            "date" => Rule::DateToMonth,
            "month" => Rule::DateToYear,
            "text" => Rule::Suppress,
            _ => Rule::AsIs,
        },
        "L4" => match field_type {
            // The person key: a format-preserving token, so samples still join on it (same
            // scenario key) and validation code still accepts it; nothing of the birth date
            // or sequence survives, and it cannot be reversed without the key.
            "id_number" => Rule::Tokenize,
            "mobile" | "bank_card" | "person_name" | "address" => Rule::Synthetic,
            "uscc" | "email" | "license_plate" | "party_id" => Rule::Pseudonymize,
            "date" => Rule::DateToYear,
            _ => Rule::Suppress,
        },
        _ => Rule::Suppress,
    }
}

/// The keys of one scenario (each 256 bits, from the key ring), so pseudonyms, tokens,
/// noise and synthetic values of one scenario never match another's.
#[derive(Clone)]
pub struct ScenarioKeys {
    /// Pseudonyms.
    pub pseudonym: [u8; 32],
    /// FF1 tokens.
    pub token: [u8; 32],
    /// Noise and synthetic values.
    pub random: [u8; 32],
}

impl std::fmt::Debug for ScenarioKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScenarioKeys(…)")
    }
}

/// A technique that passes the column through (the `as_is` rule).
#[derive(Debug, Clone, Copy)]
struct AsIs;

impl Technique for AsIs {
    fn id(&self) -> &'static str {
        "as_is"
    }
    fn apply(&self, column: &arrow::array::ArrayRef) -> Result<arrow::array::ArrayRef, MaskError> {
        Ok(column.clone())
    }
}

/// The technique `rule` builds for column `name` of `field_type` under `keys`.
pub fn technique(
    rule: Rule,
    field_type: &str,
    name: &str,
    keys: &ScenarioKeys,
) -> Result<Box<dyn Technique>, MaskError> {
    let unsupported = || MaskError::Config {
        technique: rule_code(&rule),
        detail: format!("no {} for {field_type} fields", rule_code(&rule)),
    };
    Ok(match rule {
        Rule::AsIs => Box::new(AsIs),
        Rule::Suppress => Box::new(Suppress),
        Rule::DisplayMask => match field_type {
            "id_number" | "party_id" => Box::new(DisplayMask::ID_NUMBER),
            "mobile" => Box::new(DisplayMask::MOBILE),
            "bank_card" => Box::new(DisplayMask::BANK_CARD),
            "person_name" => Box::new(NameMask),
            "address" => Box::new(AddressMask),
            _ => Box::new(DisplayMask {
                head: 1,
                tail: 1,
                mask: '*',
            }),
        },
        Rule::Pseudonymize => Box::new(Pseudonymize::new(keys.pseudonym)),
        Rule::Tokenize => Box::new(Ff1Token::new(
            keys.token,
            match field_type {
                "id_number" => TokenKind::IdNumber,
                "mobile" => TokenKind::Mobile,
                "bank_card" => TokenKind::BankCard,
                _ => TokenKind::Digits,
            },
        )?),
        Rule::DateToMonth => Box::new(DateGeneralize(DateTo::Month)),
        Rule::DateToYear => Box::new(DateGeneralize(DateTo::Year)),
        Rule::Intervals(width) => Box::new(Intervals { width }),
        Rule::Noise(scale) => Box::new(LaplaceNoise::new(keys.random, name, scale)),
        Rule::Synthetic => Box::new(Synthetic::new(
            keys.random,
            name,
            match field_type {
                "id_number" => SyntheticKind::IdNumber,
                "mobile" => SyntheticKind::Mobile,
                "bank_card" => SyntheticKind::BankCard,
                "person_name" => SyntheticKind::Name,
                "address" => SyntheticKind::Address,
                _ => return Err(unsupported()),
            },
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, StringArray};
    use std::sync::Arc;

    fn keys() -> ScenarioKeys {
        ScenarioKeys {
            pseudonym: [1; 32],
            token: [2; 32],
            random: [3; 32],
        }
    }

    #[test]
    fn every_rule_code_parses_back_to_its_rule() {
        for c in RULE_CODES {
            let r = Rule::from_code(c).expect(c);
            assert_eq!(rule_code(&r), c);
        }
        assert_eq!(Rule::from_code("intervals"), None);
        assert_eq!(Rule::from_code("nothing"), None);
    }

    #[test]
    fn defaults_follow_the_grade_and_fail_closed() {
        assert_eq!(default_rule("id_number", "L1"), Rule::AsIs);
        assert_eq!(default_rule("mobile", "L2"), Rule::DisplayMask);
        assert_eq!(default_rule("id_number", "L3"), Rule::Pseudonymize);
        assert_eq!(default_rule("date", "L3"), Rule::DateToMonth);
        assert_eq!(default_rule("person_name", "L4"), Rule::Synthetic);
        assert_eq!(default_rule("id_number", "L4"), Rule::Tokenize);
        assert_eq!(default_rule("text", "L4"), Rule::Suppress);
        assert_eq!(default_rule("id_number", "core"), Rule::Suppress);
        assert_eq!(default_rule("integer", ""), Rule::Suppress);
    }

    #[test]
    fn no_default_rule_above_l1_shows_an_identifier_as_it_is() {
        let id = "379901198503011234";
        let col: ArrayRef = Arc::new(StringArray::from(vec![id]));
        for t in IDENTIFIERS {
            for g in ["L2", "L3", "L4"] {
                let tech = technique(default_rule(t, g), t, "c", &keys()).expect("technique");
                let out = tech.apply(&col).expect("apply");
                let out = out.as_any().downcast_ref::<StringArray>().expect("strings");
                assert!(out.is_null(0) || out.value(0) != id, "{t} at {g}");
            }
        }
    }
}
