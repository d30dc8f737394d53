//! Keyed pseudonymization (假名化): HMAC-SHA256 of the value under the scenario's key. The
//! same value gets the same pseudonym everywhere inside one scenario — joins across its
//! datasets still work — and an unrelated one in any other scenario; without the key a
//! pseudonym cannot be recomputed from a guessed value.

use arrow::array::ArrayRef;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{MaskError, Technique, map_strings};

/// A scenario's pseudonym key (32 bytes, from the key ring).
#[derive(Clone)]
pub struct Pseudonymize {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymize(…)")
    }
}

impl Pseudonymize {
    /// Pseudonyms under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Pseudonymize { key }
    }

    /// The pseudonym of one value: `P` and 64 bits of the MAC in hex (16 characters).
    pub fn pseudonym(&self, v: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) else {
            // HMAC takes keys of any length; this branch cannot be reached with 32 bytes.
            return String::from("P");
        };
        mac.update(v.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("P{}", hex::encode(&tag[..8]))
    }
}

impl Technique for Pseudonymize {
    fn id(&self) -> &'static str {
        "pseudonymize"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings(self.id(), column, |v| Some(self.pseudonym(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Stable within a scenario, different across scenarios, distinct for distinct values.
        #[test]
        fn stable_within_a_scenario_and_different_across(v in "\\PC{1,20}", w in "\\PC{1,20}", k1 in any::<[u8; 32]>(), k2 in any::<[u8; 32]>()) {
            prop_assume!(k1 != k2);
            let (a, b) = (Pseudonymize::new(k1), Pseudonymize::new(k2));
            prop_assert_eq!(a.pseudonym(&v), a.pseudonym(&v));
            prop_assert_ne!(a.pseudonym(&v), b.pseudonym(&v));
            if v != w {
                prop_assert_ne!(a.pseudonym(&v), a.pseudonym(&w));
            }
        }
    }
}
