//! Keyed pseudonymization (假名化): HMAC-SHA256 of the value under the scenario's key. The
//! same value gets the same pseudonym everywhere inside one scenario — joins across its
//! datasets still work — and an unrelated one in any other scenario; without the key a
//! pseudonym cannot be recomputed from a guessed value.

use arrow::array::ArrayRef;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{MaskError, Technique, map_strings_into};

/// A scenario's pseudonym key (32 bytes, from the key ring), held as the keyed HMAC state
/// so each value costs only its own blocks.
#[derive(Clone)]
pub struct Pseudonymize {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymize(…)")
    }
}

impl Pseudonymize {
    /// Pseudonyms under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        // A key shorter than SHA-256's 64-byte block is zero-padded to it (RFC 2104).
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        Pseudonymize { mac }
    }

    /// The pseudonym of one value: `P` and 64 bits of the MAC in hex (16 characters).
    pub fn pseudonym(&self, v: &str) -> String {
        let mut out = String::with_capacity(17);
        self.pseudonym_into(v, &mut out);
        out
    }

    fn pseudonym_into(&self, v: &str, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(v.as_bytes());
        let tag = mac.finalize().into_bytes();
        out.push('P');
        for b in &tag[..8] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

impl Technique for Pseudonymize {
    fn id(&self) -> &'static str {
        "pseudonymize"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings_into(self.id(), column, |v, out| {
            self.pseudonym_into(v, out);
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn it_is_hmac_sha256_as_the_rfc_defines_it() {
        // Python: hmac.new(bytes([1]*32), b"379901198503011234", hashlib.sha256).hexdigest()[:16]
        assert_eq!(
            Pseudonymize::new([1; 32]).pseudonym("379901198503011234"),
            "P2a655c33d8bc89f1"
        );
    }

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
