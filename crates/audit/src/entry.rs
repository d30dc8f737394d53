//! Audit entries. An entry records who did what to which object, when, with
//! what outcome — as ids and digests only, so the personal data of a change
//! (kept apart as a purgeable *payload*) can be removed after its retention
//! period without touching the entry or its Merkle leaf.
//!
//! The stored and exported form of an entry is one line of RFC 8785 canonical
//! JSON. `hash` is the SHA-256 of the entry's canonical JSON without `hash`;
//! `prev` is the Merkle leaf hash of the preceding entry. Together with `seq`
//! they let a verifier name the first damaged, missing, inserted or moved line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hash;
use crate::merkle::leaf_hash;

/// The entry format version.
pub const VERSION: u32 = 1;

/// Who acted. People and keys by id only; the system (CLI set-up, schedulers) by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The person (for a key: its creator).
    pub user: Option<String>,
    /// The organisation acted for.
    pub org: Option<String>,
    /// The API key, when the action came through one.
    pub key: Option<String>,
    /// The roles acted in.
    pub roles: Vec<String>,
    /// A system component, when no person acted (e.g. `cli:init`).
    pub system: Option<String>,
}

impl Actor {
    /// The system itself, as component `name`.
    pub fn system(name: &str) -> Self {
        Actor {
            system: Some(name.to_string()),
            ..Default::default()
        }
    }
}

/// The object acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// Its type (`org`, `user`, `api_key`, `session`, `dataset`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id (or a digest, when the id itself would be personal data).
    pub id: String,
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was carried out.
    Success,
    /// The policies refused it.
    Denied,
    /// It was attempted and failed (e.g. a wrong password).
    Failure,
}

impl Outcome {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit entry, exactly as hashed and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version.
    pub v: u32,
    /// Position in the log (0-based; the Merkle leaf index).
    pub seq: u64,
    /// When the action happened, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Who acted.
    pub actor: Actor,
    /// What was done (`org.create`, `auth.login`, …).
    pub action: String,
    /// To what.
    pub object: ObjectRef,
    /// SHA-256 (hex) of the object's canonical state before, if it existed.
    pub before: Option<String>,
    /// SHA-256 (hex) of the object's canonical state after, if it exists.
    pub after: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request that caused it.
    pub request: Option<String>,
    /// SHA-256 (hex) of the purgeable payload, if one was kept.
    pub payload: Option<String>,
    /// Merkle leaf hash (hex) of the previous entry; empty for the first.
    pub prev: String,
    /// SHA-256 (hex) of this entry's canonical JSON without this field.
    pub hash: String,
}

/// Serialisation failed (cannot happen for these types; reported rather than unwrapped).
#[derive(Debug, thiserror::Error)]
#[error("canonical JSON failed: {0}")]
pub struct CanonicalError(String);

/// RFC 8785 canonical JSON of any serialisable value.
pub fn canonical<T: Serialize>(value: &T) -> Result<String, CanonicalError> {
    serde_json_canonicalizer::to_string(value).map_err(|e| CanonicalError(e.to_string()))
}

/// Hex SHA-256 of a value's canonical JSON: how states and payloads are referenced.
pub fn digest_of<T: Serialize>(value: &T) -> Result<String, CanonicalError> {
    Ok(hex::encode(Sha256::digest(canonical(value)?.as_bytes())))
}

impl Entry {
    /// The self-digest this entry should carry.
    pub fn compute_hash(&self) -> Result<String, CanonicalError> {
        let mut v = serde_json::to_value(self).map_err(|e| CanonicalError(e.to_string()))?;
        if let Some(obj) = v.as_object_mut() {
            obj.remove("hash");
        }
        digest_of(&v)
    }

    /// Fills in `hash` and returns the canonical line and its Merkle leaf hash.
    pub fn seal(mut self) -> Result<(Entry, String, Hash), CanonicalError> {
        self.hash = self.compute_hash()?;
        let line = canonical(&self)?;
        let leaf = leaf_hash(line.as_bytes());
        Ok((self, line, leaf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            v: VERSION,
            seq: 0,
            time: "2026-01-01T00:00:00.000Z".into(),
            actor: Actor {
                user: Some("u1".into()),
                org: Some("o1".into()),
                key: None,
                roles: vec!["admin".into()],
                system: None,
            },
            action: "org.create".into(),
            object: ObjectRef {
                kind: "org".into(),
                id: "o2".into(),
            },
            before: None,
            after: Some("ab".repeat(32)),
            outcome: Outcome::Success,
            request: Some("r1".into()),
            payload: None,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn sealed_lines_are_canonical_and_self_checking() {
        let (e, line, leaf) = sample().seal().expect("seal");
        assert_eq!(e.compute_hash().expect("hash"), e.hash);
        // Canonical: keys sorted, no whitespace, and re-serialising gives the same bytes.
        assert!(
            line.starts_with(r#"{"action":"org.create","actor":{"key":null,"org":"o1""#),
            "{line}"
        );
        let back: Entry = serde_json::from_str(&line).expect("parse");
        assert_eq!(canonical(&back).expect("canonical"), line);
        assert_eq!(leaf, leaf_hash(line.as_bytes()));
        let mut changed = back.clone();
        changed.action = "org.update".into();
        assert_ne!(changed.compute_hash().expect("hash"), e.hash);
    }
}
