//! Password hashing with argon2id (RFC 9106), the OWASP-recommended
//! parameters of the `argon2` crate's defaults (19 MiB, 2 passes, 1 lane).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use shuyu_core::party::NewPassword;
use shuyu_core::secret::Secret;

/// Hashing failed (out of memory, or the random salt could not be drawn).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl HashError {
    /// The hashing task did not run to completion (the runtime is shutting down).
    pub fn cancelled() -> Self {
        HashError("cancelled".into())
    }
}

/// The PHC string of `password`, with a fresh random salt.
pub fn hash(password: &NewPassword) -> Result<Secret<String>, HashError> {
    hash_str(password.expose())
}

pub(crate) fn hash_str(password: &str) -> Result<Secret<String>, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| Secret::new(h.to_string()))
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Spends the same time as a real verification, for logins of unknown users,
/// so response times do not reveal which usernames exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash_str("dummy-password-for-timing")
            .map(|s| s.into_inner())
            .unwrap_or_default()
    });
    let _ = verify(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use shuyu_core::party::Username;

    #[test]
    fn hashes_verify_and_are_salted() {
        let u = Username::parse("liming").expect("valid");
        let pw = NewPassword::parse("Correct-Horse-42", &u).expect("valid");
        let h1 = hash(&pw).expect("hash");
        let h2 = hash(&pw).expect("hash");
        assert!(h1.expose().starts_with("$argon2id$"));
        assert_ne!(h1.expose(), h2.expose(), "salted");
        assert!(verify("Correct-Horse-42", h1.expose()));
        assert!(!verify("Correct-Horse-43", h1.expose()));
        assert!(!verify("Correct-Horse-42", "not a hash"));
    }
}
