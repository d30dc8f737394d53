//! Generated secrets: session tokens, API keys, temporary passwords — and
//! the one-way digests under which tokens and keys are stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use shuyu_core::party::{NewPassword, Username};
use shuyu_core::secret::Secret;

/// Prefix of session tokens: makes a leaked token recognisable to secret scanners.
pub const SESSION_PREFIX: &str = "sy_s_";
/// Prefix of API keys.
pub const KEY_PREFIX: &str = "sy_k_";
/// How many characters of an API key are kept in clear to tell keys apart.
pub const KEY_DISPLAY_LEN: usize = 12;

/// The operating system's random source failed: nothing secret can be made.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(String);

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A new bearer secret with `prefix`: 256 random bits, URL-safe.
pub fn new_token(prefix: &str) -> Result<Secret<String>, RandomError> {
    Ok(Secret::new(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    )))
}

/// The stored form of a token or key: hex SHA-256. The tokens carry 256
/// random bits, so a fast hash is enough (no dictionary to attack).
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password that satisfies the policy: four groups of four
/// characters from an alphabet without look-alikes, e.g. `Tq7m-9KxR-…` (~90 bits).
pub fn temporary_password(for_user: &Username) -> Result<Secret<String>, RandomError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    loop {
        let bytes = random_bytes::<32>()?;
        // Rejection sampling keeps the choice uniform over the alphabet.
        let limit = 256 - (256 % ALPHABET.len());
        let chars: Vec<char> = bytes
            .iter()
            .filter(|b| (**b as usize) < limit)
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .take(16)
            .collect();
        if chars.len() < 16 {
            continue;
        }
        let pw = chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        if NewPassword::parse(&pw, for_user).is_ok() {
            return Ok(Secret::new(pw));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_digest_deterministically() {
        let a = new_token(SESSION_PREFIX).expect("token");
        let b = new_token(SESSION_PREFIX).expect("token");
        assert!(a.expose().starts_with(SESSION_PREFIX));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), SESSION_PREFIX.len() + 43);
        assert_eq!(digest(a.expose()), digest(a.expose()));
        assert_eq!(digest(a.expose()).len(), 64);
        assert_ne!(digest(a.expose()), digest(b.expose()));
    }

    #[test]
    fn temporary_passwords_meet_the_policy() {
        let u = Username::parse("admin").expect("valid");
        for _ in 0..50 {
            let pw = temporary_password(&u).expect("password");
            assert!(NewPassword::parse(pw.expose(), &u).is_ok(), "{}", pw.expose());
            assert_eq!(pw.expose().len(), 19);
        }
    }
}
