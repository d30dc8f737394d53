//! The portable export a supervisor verifies offline: `entries.jsonl` (one
//! canonical entry per line, in sequence order), `checkpoint.json` (the signed
//! tree head covering exactly those entries) and `log-public-key.pem`.
//!
//! Verification recomputes everything from the bundle alone and stops at the
//! first problem, naming the line and entry: a changed line (not canonical, or
//! its self-digest or its successor's link disagrees), a missing line, an
//! inserted line, lines out of order, a missing tail, a root that differs from
//! the signed one, or a signature that does not verify.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::Hash;
use crate::checkpoint::{Checkpoint, CheckpointError, parse_public_key_pem};
use crate::entry::{Entry, canonical};
use crate::merkle::{Frontier, leaf_hash};

/// The entries file.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// The signed tree head.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// The log's public key.
pub const PUBLIC_KEY_FILE: &str = "log-public-key.pem";

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The log's name.
    pub origin: String,
    /// Number of entries verified.
    pub size: u64,
    /// Their Merkle root, equal to the signed one.
    pub root: Hash,
    /// The signing key's id.
    pub key_id: String,
}

/// What is wrong with one line of the entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The line is not an audit entry.
    #[error("changed: not a valid entry ({0})")]
    NotAnEntry(String),
    /// The line is an entry but not in canonical form (its bytes were altered).
    #[error("changed: entry {seq} is not in its canonical form")]
    NotCanonical {
        /// The entry's seq.
        seq: u64,
    },
    /// The entry's content does not match its own digest.
    #[error("changed: entry {seq} does not match its own digest")]
    Changed {
        /// The entry's seq.
        seq: u64,
    },
    /// The entry's link to its predecessor does not match the predecessor.
    #[error("changed: entry {seq} does not link to entry {prev} as recorded (entry {prev} or this link was altered)")]
    BrokenLink {
        /// The entry's seq.
        seq: u64,
        /// The predecessor's seq.
        prev: u64,
    },
    /// An entry is missing: the next line holds a later one.
    #[error("missing: entry {expected} is not in the bundle (the line holds entry {found})")]
    Missing {
        /// The seq that should be here.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The line holds an entry that belongs elsewhere (lines were reordered).
    #[error("reordered: entry {found} is here, but entry {expected} belongs here (it is at line {elsewhere})")]
    Reordered {
        /// The seq that should be here.
        expected: u64,
        /// The seq found.
        found: u64,
        /// The line where the expected entry is.
        elsewhere: u64,
    },
    /// The line was inserted: its entry repeats or precedes one already seen.
    #[error("inserted: entry {found} appears where entry {expected} should be")]
    Inserted {
        /// The seq that should be here.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// More lines than the checkpoint covers.
    #[error("inserted: entry {seq} is beyond the signed checkpoint")]
    BeyondCheckpoint {
        /// The seq found.
        seq: u64,
    },
}

/// Why a bundle does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file is missing or unreadable.
    #[error("{file}: {detail}")]
    File {
        /// Which file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The public key does not parse.
    #[error("{PUBLIC_KEY_FILE}: {0}")]
    Key(CheckpointError),
    /// The checkpoint does not parse.
    #[error("{CHECKPOINT_FILE}: not a checkpoint ({0})")]
    Checkpoint(String),
    /// The checkpoint is not signed by the key.
    #[error("{CHECKPOINT_FILE}: bad signature ({0})")]
    Signature(CheckpointError),
    /// A line of the entries is wrong.
    #[error("{ENTRIES_FILE} line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        problem: LineProblem,
    },
    /// Entries the checkpoint covers are absent at the end.
    #[error(
        "{ENTRIES_FILE}: missing: the checkpoint covers {expected} entries, the bundle has {found} (entries {found}… are missing)"
    )]
    Truncated {
        /// Entries covered by the checkpoint.
        expected: u64,
        /// Entries present.
        found: u64,
    },
    /// The entries are intact one by one but their root is not the signed one.
    #[error("{ENTRIES_FILE}: the entries' Merkle root {computed} differs from the signed root {signed}")]
    RootMismatch {
        /// Hex root recomputed from the entries.
        computed: String,
        /// Hex root in the checkpoint.
        signed: String,
    },
}

/// Streaming verification of entries against a signed checkpoint.
pub struct LineVerifier {
    checkpoint: Checkpoint,
    signed_root: Hash,
    frontier: Frontier,
    prev_leaf: Option<Hash>,
    line: u64,
}

impl LineVerifier {
    /// Starts a verification: the checkpoint must be signed by `key`.
    pub fn new(checkpoint: Checkpoint, key: &VerifyingKey) -> Result<Self, BundleError> {
        checkpoint.verify(key).map_err(BundleError::Signature)?;
        let signed_root = checkpoint
            .root_hash()
            .map_err(|e| BundleError::Checkpoint(e.to_string()))?;
        Ok(Self {
            checkpoint,
            signed_root,
            frontier: Frontier::default(),
            prev_leaf: None,
            line: 0,
        })
    }

    fn fail(&self, problem: LineProblem) -> BundleError {
        BundleError::Line {
            line: self.line,
            problem,
        }
    }

    /// Checks the next line. A seq that is not the expected one is reported as
    /// [`LineProblem::Missing`] or [`LineProblem::Inserted`]; the bundle reader refines it to
    /// [`LineProblem::Reordered`] when the expected entry is found further on.
    pub fn push(&mut self, line: &str) -> Result<(), BundleError> {
        self.line += 1;
        let expected = self.frontier.size();
        let entry: Entry = serde_json::from_str(line).map_err(|e| self.fail(LineProblem::NotAnEntry(e.to_string())))?;
        if entry.seq != expected {
            return Err(self.fail(if entry.seq > expected {
                LineProblem::Missing {
                    expected,
                    found: entry.seq,
                }
            } else {
                LineProblem::Inserted {
                    expected,
                    found: entry.seq,
                }
            }));
        }
        if expected >= self.checkpoint.size {
            return Err(self.fail(LineProblem::BeyondCheckpoint { seq: entry.seq }));
        }
        let canon = canonical(&entry).map_err(|e| self.fail(LineProblem::NotAnEntry(e.to_string())))?;
        if canon != line {
            return Err(self.fail(LineProblem::NotCanonical { seq: entry.seq }));
        }
        let own = entry
            .compute_hash()
            .map_err(|e| self.fail(LineProblem::NotAnEntry(e.to_string())))?;
        if own != entry.hash {
            return Err(self.fail(LineProblem::Changed { seq: entry.seq }));
        }
        let expected_prev = self.prev_leaf.map(hex::encode).unwrap_or_default();
        if entry.prev != expected_prev {
            return Err(self.fail(LineProblem::BrokenLink {
                seq: entry.seq,
                prev: entry.seq.saturating_sub(1),
            }));
        }
        let leaf = leaf_hash(line.as_bytes());
        self.frontier.append(leaf);
        self.prev_leaf = Some(leaf);
        Ok(())
    }

    /// Entries verified so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The Merkle root of the entries verified so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Ends the verification: every covered entry was seen and the root is the signed one.
    pub fn finish(self) -> Result<Verified, BundleError> {
        if self.frontier.size() < self.checkpoint.size {
            return Err(BundleError::Truncated {
                expected: self.checkpoint.size,
                found: self.frontier.size(),
            });
        }
        let root = self.frontier.root();
        if root != self.signed_root {
            return Err(BundleError::RootMismatch {
                computed: hex::encode(root),
                signed: hex::encode(self.signed_root),
            });
        }
        Ok(Verified {
            origin: self.checkpoint.origin,
            size: self.frontier.size(),
            root,
            key_id: self.checkpoint.key_id,
        })
    }
}

fn read_text(dir: &Path, file: &str) -> Result<String, BundleError> {
    std::fs::read_to_string(dir.join(file)).map_err(|e| BundleError::File {
        file: file.into(),
        detail: e.to_string(),
    })
}

/// Reads a bundle's checkpoint and key.
pub fn read_head(dir: &Path) -> Result<(Checkpoint, VerifyingKey), BundleError> {
    let key = parse_public_key_pem(&read_text(dir, PUBLIC_KEY_FILE)?).map_err(BundleError::Key)?;
    let checkpoint: Checkpoint =
        serde_json::from_str(&read_text(dir, CHECKPOINT_FILE)?).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
    Ok((checkpoint, key))
}

/// Verifies the bundle in `dir` using nothing but its own files.
pub fn verify_dir(dir: &Path) -> Result<Verified, BundleError> {
    let (checkpoint, key) = read_head(dir)?;
    let path = dir.join(ENTRIES_FILE);
    let open = || {
        File::open(&path).map_err(|e| BundleError::File {
            file: ENTRIES_FILE.into(),
            detail: e.to_string(),
        })
    };
    let mut v = LineVerifier::new(checkpoint, &key)?;
    for line in BufReader::new(open()?).lines() {
        let line = line.map_err(|e| BundleError::File {
            file: ENTRIES_FILE.into(),
            detail: e.to_string(),
        })?;
        if let Err(err) = v.push(&line) {
            return Err(refine(err, open));
        }
    }
    v.finish()
}

/// A seq found where another was expected: if the expected entry is further on, the lines were reordered.
fn refine(err: BundleError, open: impl Fn() -> Result<File, BundleError>) -> BundleError {
    let BundleError::Line {
        line,
        problem: LineProblem::Missing { expected, found } | LineProblem::Inserted { expected, found },
    } = &err
    else {
        return err;
    };
    let (line, expected, found) = (*line, *expected, *found);
    let Ok(f) = open() else { return err };
    for (i, l) in BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .enumerate()
        .skip(line as usize)
    {
        if serde_json::from_str::<Entry>(&l).is_ok_and(|e| e.seq == expected) {
            return BundleError::Line {
                line,
                problem: LineProblem::Reordered {
                    expected,
                    found,
                    elsewhere: i as u64 + 1,
                },
            };
        }
    }
    err
}

/// Writes a bundle: the lines (already canonical, in order), the checkpoint and the public key PEM.
pub fn write_dir<'a>(
    dir: &Path,
    lines: impl IntoIterator<Item = &'a str>,
    checkpoint: &Checkpoint,
    public_key_pem: &str,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::new(File::create(dir.join(ENTRIES_FILE))?);
    let mut n = 0u64;
    for line in lines {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let cp = serde_json::to_string_pretty(checkpoint).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(CHECKPOINT_FILE), cp + "\n")?;
    std::fs::write(dir.join(PUBLIC_KEY_FILE), public_key_pem)?;
    Ok(n)
}
