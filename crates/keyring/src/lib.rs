//! # shuyu-keyring
//!
//! The domain master key (256 random bits in `DATA_DIR/master.key`, mode
//! 0600, or supplied by a KMS-provisioned file) and what it protects. Keys
//! that must live in the database — the audit log's signing key now, dataset
//! keys later (envelope encryption) — are stored *wrapped*: AES-256-GCM under
//! the master key, with a purpose label as associated data so a wrapped key
//! cannot be swapped for another purpose's. A wrong master key fails loudly.
//!
//! ```
//! let master = shuyu_keyring::MasterKey::from_bytes([7u8; 32]);
//! let wrapped = master.wrap("example", b"secret").expect("wrap");
//! assert_eq!(master.unwrap("example", &wrapped).expect("unwrap"), b"secret");
//! assert!(master.unwrap("other purpose", &wrapped).is_err());
//! ```

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

/// Purpose label of the wrapped audit-log signing key.
pub const LOG_KEY_PURPOSE: &str = "shuyu/audit-log-signing-key/v1";

/// What can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The key file cannot be read or written.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The key file does not hold a 256-bit key.
    #[error("{path}: not a master key (expected 64 hexadecimal characters, 256 bits)")]
    Malformed {
        /// The file.
        path: String,
    },
    /// A wrapped key does not open with this master key (wrong key, or altered ciphertext).
    #[error(
        "the wrapped {purpose} does not open with this master key: wrong master key, or the stored key was altered"
    )]
    WrongKey {
        /// What was being unwrapped.
        purpose: String,
    },
    /// The system random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// The domain master key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyringError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyringError::Random(e.to_string()))?;
    Ok(b)
}

impl MasterKey {
    /// A key from raw bytes (tests, KMS integrations).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyringError> {
        Ok(Self(random()?))
    }

    /// Reads the key file. Warns (through the returned flag) when others may read it.
    pub fn load(path: &Path) -> Result<(Self, bool), KeyringError> {
        let file_err = |e: std::io::Error| KeyringError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(file_err)?;
        let bytes = hex::decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        let Some(bytes) = bytes else {
            return Err(KeyringError::Malformed {
                path: path.display().to_string(),
            });
        };
        #[cfg(unix)]
        let exposed = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).map_err(file_err)?.permissions().mode() & 0o077 != 0
        };
        #[cfg(not(unix))]
        let exposed = false;
        Ok((Self(bytes), exposed))
    }

    /// Writes a new key file readable only by its owner; never overwrites an existing one.
    pub fn create(path: &Path) -> Result<Self, KeyringError> {
        let key = Self::generate()?;
        key.save_new(path)?;
        Ok(key)
    }

    /// Writes this key to a new file readable only by its owner (fsync'd); never overwrites
    /// an existing file. Rotation writes the next key this way before anything is re-wrapped.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyringError> {
        let key = self;
        let file_err = |e: std::io::Error| KeyringError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(file_err)?;
        f.write_all(format!("{}\n", hex::encode(key.0)).as_bytes())
            .map_err(file_err)?;
        f.sync_all().map_err(file_err)?;
        Ok(())
    }

    /// Re-wraps what this key wrapped for `purpose` under `next` (master-key rotation: the
    /// wrapped secret changes hands, the data it protects is not touched).
    pub fn rewrap(&self, purpose: &str, wrapped: &str, next: &MasterKey) -> Result<String, KeyringError> {
        let secret = zeroize::Zeroizing::new(self.unwrap(purpose, wrapped)?);
        next.wrap(purpose, &secret)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    /// Encrypts `plaintext` for `purpose`: base64 of a random 96-bit nonce followed by the ciphertext and tag.
    pub fn wrap(&self, purpose: &str, plaintext: &[u8]) -> Result<String, KeyringError> {
        let nonce_bytes: [u8; 12] = random()?;
        let nonce: Nonce<_> = nonce_bytes.into();
        let ct = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| KeyringError::WrongKey {
                purpose: purpose.into(),
            })?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`MasterKey::wrap`] produced for the same `purpose`.
    pub fn unwrap(&self, purpose: &str, wrapped: &str) -> Result<Vec<u8>, KeyringError> {
        let wrong = || KeyringError::WrongKey {
            purpose: purpose.into(),
        };
        let raw = STANDARD.decode(wrapped.trim()).map_err(|_| wrong())?;
        if raw.len() < 12 + 16 {
            return Err(wrong());
        }
        let (n, ct) = raw.split_at(12);
        let nonce_bytes: [u8; 12] = n.try_into().map_err(|_| wrong())?;
        let nonce: Nonce<_> = nonce_bytes.into();
        self.cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| wrong())
    }

    /// A new Ed25519 signing key, and its wrapped form for storage.
    pub fn new_log_key(&self) -> Result<(SigningKey, String), KeyringError> {
        let key = SigningKey::from_bytes(&random::<32>()?);
        let wrapped = self.wrap(LOG_KEY_PURPOSE, key.as_bytes())?;
        Ok((key, wrapped))
    }

    /// Opens a wrapped log signing key.
    pub fn open_log_key(&self, wrapped: &str) -> Result<SigningKey, KeyringError> {
        let bytes = self.unwrap(LOG_KEY_PURPOSE, wrapped)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyringError::WrongKey {
            purpose: LOG_KEY_PURPOSE.into(),
        })?;
        Ok(SigningKey::from_bytes(&arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_hex_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("master.key");
        let k = MasterKey::create(&path).expect("create");
        assert!(MasterKey::create(&path).is_err(), "never overwrites");
        let (back, exposed) = MasterKey::load(&path).expect("load");
        assert!(!exposed);
        assert_eq!(back.0, k.0);
        std::fs::write(dir.path().join("bad.key"), "not hex").expect("write");
        assert!(matches!(
            MasterKey::load(&dir.path().join("bad.key")),
            Err(KeyringError::Malformed { .. })
        ));
        assert_eq!(format!("{k:?}"), "MasterKey(***)");
    }

    #[test]
    fn a_wrapped_log_key_opens_only_with_its_master_key() {
        let m = MasterKey::from_bytes([1u8; 32]);
        let (key, wrapped) = m.new_log_key().expect("new");
        assert!(
            !wrapped.contains(&STANDARD.encode(key.as_bytes())),
            "the key is not stored in clear"
        );
        assert_eq!(m.open_log_key(&wrapped).expect("open").as_bytes(), key.as_bytes());
        let other = MasterKey::from_bytes([2u8; 32]);
        let err = other.open_log_key(&wrapped).expect_err("wrong key");
        assert!(err.to_string().contains("wrong master key"), "{err}");
        let mut tampered = STANDARD.decode(&wrapped).expect("b64");
        tampered[20] ^= 1;
        assert!(m.open_log_key(&STANDARD.encode(tampered)).is_err());
    }
}
