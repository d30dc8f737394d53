//! Signed tree heads ("checkpoints") and witness cosignatures.
//!
//! The signed text follows the C2SP checkpoint layout — origin line, tree
//! size, base64 root hash — with one extension line carrying the signing time.
//! A witness's cosignature signs `cosignature/v1\ntime <unix>\n` followed by
//! the checkpoint text, as C2SP tlog-cosignature does. Keys are Ed25519; a key
//! id is the first 8 bytes (hex) of SHA-256 of the raw public key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Why a checkpoint or cosignature does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// A field does not decode.
    #[error("malformed {field}: {detail}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// Why.
        detail: String,
    },
    /// It was signed by another key.
    #[error("signed by key {found}, expected key {expected}")]
    WrongKey {
        /// The key id the signature claims.
        found: String,
        /// The key id of the key given.
        expected: String,
    },
    /// The signature does not match the text.
    #[error("bad signature")]
    BadSignature,
    /// The public key is not an Ed25519 SPKI PEM.
    #[error("not an Ed25519 public key: {0}")]
    BadKey(String),
}

/// The id of a public key: hex of the first 8 bytes of SHA-256 of its raw bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A public key in SPKI PEM form, as exported for supervisors.
pub fn public_key_pem(key: &VerifyingKey) -> Result<String, CheckpointError> {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CheckpointError::BadKey(e.to_string()))
}

/// Parses an SPKI PEM Ed25519 public key.
pub fn parse_public_key_pem(pem: &str) -> Result<VerifyingKey, CheckpointError> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| CheckpointError::BadKey(e.to_string()))
}

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The log's name: `shuyu/<installation id>`.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// Signing time, Unix seconds.
    pub time: i64,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature over [`Checkpoint::text`], base64.
    pub signature: String,
}

/// Builds the signed text of a checkpoint.
fn text(origin: &str, size: u64, root_b64: &str, time: i64) -> String {
    format!("{origin}\n{size}\n{root_b64}\ntime {time}\n")
}

impl Checkpoint {
    /// Signs a tree head.
    pub fn sign(origin: &str, size: u64, root: &Hash, time: i64, key: &SigningKey) -> Checkpoint {
        let root_b64 = STANDARD.encode(root);
        let sig = key.sign(text(origin, size, &root_b64, time).as_bytes());
        Checkpoint {
            origin: origin.to_string(),
            size,
            root: root_b64,
            time,
            key_id: key_id(&key.verifying_key()),
            signature: STANDARD.encode(sig.to_bytes()),
        }
    }

    /// The text the signature covers.
    pub fn text(&self) -> String {
        text(&self.origin, self.size, &self.root, self.time)
    }

    /// The root hash.
    pub fn root_hash(&self) -> Result<Hash, CheckpointError> {
        decode_32(&self.root, "root")
    }

    /// Checks the signature with `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::WrongKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        self.root_hash()?;
        let sig = decode_sig(&self.signature)?;
        key.verify_strict(self.text().as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

/// A witness's countersignature of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosignature {
    /// The witness's name (e.g. `市委网信办`).
    pub witness: String,
    /// The witness's public key, SPKI PEM.
    pub public_key: String,
    /// Id of that key.
    pub key_id: String,
    /// The size of the cosigned checkpoint.
    pub size: u64,
    /// Cosigning time, Unix seconds.
    pub time: i64,
    /// Ed25519 signature over [`Cosignature::text`], base64.
    pub signature: String,
}

impl Cosignature {
    /// The text a witness signs for `checkpoint` at `time`.
    pub fn text(checkpoint: &Checkpoint, time: i64) -> String {
        format!("cosignature/v1\ntime {time}\n{}", checkpoint.text())
    }

    /// Countersigns `checkpoint`.
    pub fn sign(
        witness: &str,
        checkpoint: &Checkpoint,
        time: i64,
        key: &SigningKey,
    ) -> Result<Cosignature, CheckpointError> {
        let sig = key.sign(Self::text(checkpoint, time).as_bytes());
        Ok(Cosignature {
            witness: witness.to_string(),
            public_key: public_key_pem(&key.verifying_key())?,
            key_id: key_id(&key.verifying_key()),
            size: checkpoint.size,
            time,
            signature: STANDARD.encode(sig.to_bytes()),
        })
    }

    /// Checks this cosignature against `checkpoint`, with the key it names.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let key = parse_public_key_pem(&self.public_key)?;
        if key_id(&key) != self.key_id {
            return Err(CheckpointError::WrongKey {
                found: self.key_id.clone(),
                expected: key_id(&key),
            });
        }
        if self.size != checkpoint.size {
            return Err(CheckpointError::Malformed {
                field: "size",
                detail: format!("{} ≠ {}", self.size, checkpoint.size),
            });
        }
        let sig = decode_sig(&self.signature)?;
        key.verify_strict(Self::text(checkpoint, self.time).as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

fn decode_32(b64: &str, field: &'static str) -> Result<Hash, CheckpointError> {
    let bytes = STANDARD.decode(b64).map_err(|e| CheckpointError::Malformed {
        field,
        detail: e.to_string(),
    })?;
    bytes.try_into().map_err(|_| CheckpointError::Malformed {
        field,
        detail: "not 32 bytes".into(),
    })
}

fn decode_sig(b64: &str) -> Result<Signature, CheckpointError> {
    let bytes = STANDARD.decode(b64).map_err(|e| CheckpointError::Malformed {
        field: "signature",
        detail: e.to_string(),
    })?;
    let arr: [u8; 64] = bytes.try_into().map_err(|_| CheckpointError::Malformed {
        field: "signature",
        detail: "not 64 bytes".into(),
    })?;
    Ok(Signature::from_bytes(&arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn checkpoints_verify_and_any_change_breaks_them() {
        let k = key(7);
        let cp = Checkpoint::sign("shuyu/test", 42, &[9u8; 32], 1_767_225_600, &k);
        assert_eq!(cp.verify(&k.verifying_key()), Ok(()));
        let pem = public_key_pem(&k.verifying_key()).expect("pem");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(parse_public_key_pem(&pem).expect("parse"), k.verifying_key());
        let mut bad = cp.clone();
        bad.size = 43;
        assert_eq!(bad.verify(&k.verifying_key()), Err(CheckpointError::BadSignature));
        let mut bad = cp.clone();
        bad.time += 1;
        assert_eq!(bad.verify(&k.verifying_key()), Err(CheckpointError::BadSignature));
        assert!(matches!(
            cp.verify(&key(8).verifying_key()),
            Err(CheckpointError::WrongKey { .. })
        ));
    }

    #[test]
    fn cosignatures_bind_the_witness_to_one_checkpoint() {
        let log = key(1);
        let witness = key(2);
        let cp = Checkpoint::sign("shuyu/test", 10, &[3u8; 32], 100, &log);
        let co = Cosignature::sign("网信办", &cp, 200, &witness).expect("cosign");
        assert_eq!(co.verify(&cp), Ok(()));
        let other = Checkpoint::sign("shuyu/test", 10, &[4u8; 32], 100, &log);
        assert_eq!(co.verify(&other), Err(CheckpointError::BadSignature));
    }
}
