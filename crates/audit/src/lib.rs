//! # shuyu-audit
//!
//! The tamper-evident audit log's format, independent of any database, so a
//! supervisor can verify it offline with nothing but the platform's public key
//! (R-34, DESIGN.md §4):
//!
//! - [`entry`]: one entry per recorded action — ids and digests only, never
//!   personal data — serialised as RFC 8785 canonical JSON, with a self-digest
//!   and a link to its predecessor so a damaged line can be named.
//! - [`merkle`]: the RFC 6962 / RFC 9162 Merkle tree (SHA-256, `0x00` leaf and
//!   `0x01` node prefixes), incremental appends, inclusion and consistency
//!   proofs and their verification.
//! - [`checkpoint`]: signed tree heads (Ed25519) and witness cosignatures, in
//!   the text layout of the C2SP checkpoint and cosignature specifications.
//! - [`bundle`]: the portable export (`entries.jsonl`, `checkpoint.json`,
//!   `log-public-key.pem`) and its verification, naming the first entry that
//!   does not match.
//!
//! ```
//! use shuyu_audit::merkle::{Frontier, leaf_hash, verify_inclusion, inclusion_ranges};
//! let mut tree = Frontier::default();
//! let leaves: Vec<_> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
//! for l in &leaves { tree.append(*l); }
//! let root = tree.root();
//! let proof = shuyu_audit::merkle::prove_in_memory(&leaves, &inclusion_ranges(3, 5));
//! assert!(verify_inclusion(3, 5, &leaves[3], &proof, &root));
//! ```

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod merkle;

/// A SHA-256 digest.
pub type Hash = [u8; 32];
