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
/// Fields are declared in RFC 8785 key order, so plain serialisation is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The API key, when the action came through one.
    pub key: Option<String>,
    /// The organisation acted for.
    pub org: Option<String>,
    /// The roles acted in.
    pub roles: Vec<String>,
    /// A system component, when no person acted (e.g. `cli:init`).
    pub system: Option<String>,
    /// The person (for a key: its creator).
    pub user: Option<String>,
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

/// The object acted on (fields in RFC 8785 key order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// Its id (or a digest, when the id itself would be personal data).
    pub id: String,
    /// Its type (`org`, `user`, `api_key`, `session`, `dataset`, …).
    #[serde(rename = "type")]
    pub kind: String,
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

/// One audit entry, exactly as hashed and exported. Fields are declared in
/// RFC 8785 key order, so `serde_json`'s compact output of an entry *is* its
/// canonical form (a property test checks this against an RFC 8785 implementation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What was done (`org.create`, `auth.login`, …).
    pub action: String,
    /// Who acted.
    pub actor: Actor,
    /// SHA-256 (hex) of the object's canonical state after, if it exists.
    pub after: Option<String>,
    /// SHA-256 (hex) of the object's canonical state before, if it existed.
    pub before: Option<String>,
    /// SHA-256 (hex) of this entry's canonical JSON without this field (absent while computing it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// To what.
    pub object: ObjectRef,
    /// How it ended.
    pub outcome: Outcome,
    /// SHA-256 (hex) of the purgeable payload, if one was kept.
    pub payload: Option<String>,
    /// Merkle leaf hash (hex) of the previous entry; empty for the first.
    pub prev: String,
    /// The request that caused it.
    pub request: Option<String>,
    /// Position in the log (0-based; the Merkle leaf index).
    pub seq: u64,
    /// When the action happened, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Format version.
    pub v: u32,
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
    /// The self-digest this entry should carry: SHA-256 of its canonical JSON without `hash`.
    pub fn compute_hash(&self) -> Result<String, CanonicalError> {
        let mut body = self.clone();
        body.hash = String::new();
        let text = serde_json::to_string(&body).map_err(|e| CanonicalError(e.to_string()))?;
        Ok(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// Fills in `hash` and returns the canonical line and its Merkle leaf hash.
    pub fn seal(mut self) -> Result<(Entry, String, Hash), CanonicalError> {
        self.hash = String::new();
        let body = serde_json::to_string(&self).map_err(|e| CanonicalError(e.to_string()))?;
        self.hash = hex::encode(Sha256::digest(body.as_bytes()));
        let line = serde_json::to_string(&self).map_err(|e| CanonicalError(e.to_string()))?;
        let leaf = leaf_hash(line.as_bytes());
        Ok((self, line, leaf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn opt(s: Option<String>) -> Option<String> {
        s
    }

    proptest! {
        #[test]
        fn plain_serialisation_is_rfc_8785_canonical(
            action in "\\PC{0,12}",
            id in "[\\x00-\\x7f\\u{80}-\\u{10ffff}]{0,16}",
            user in proptest::option::of("[a-z0-9\"\\\\\n\t\u{1}\u{7f}中文😀-]{0,12}"),
            roles in proptest::collection::vec("[a-z]{1,8}", 0..3),
            seq in 0u64..(1u64 << 53),
            outcome in 0u8..3,
        ) {
            let e = Entry {
                action,
                actor: Actor { key: None, org: opt(Some("o".into())), roles, system: None, user },
                after: Some("ab".repeat(32)),
                before: None,
                hash: String::new(),
                object: ObjectRef { id, kind: "thing".into() },
                outcome: [Outcome::Success, Outcome::Denied, Outcome::Failure][outcome as usize],
                payload: None,
                prev: String::new(),
                request: None,
                seq,
                time: "2026-01-01T00:00:00.000Z".into(),
                v: VERSION,
            };
            let (sealed, line, _) = e.seal().expect("seal");
            prop_assert_eq!(&canonical(&sealed).expect("canonical"), &line);
            let mut body = sealed.clone();
            body.hash = String::new();
            prop_assert_eq!(digest_of(&body).expect("digest"), sealed.hash);
        }
    }
}
