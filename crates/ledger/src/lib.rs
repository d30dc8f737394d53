//! # shuyu-ledger
//!
//! The platform's audit ledger (全程审计, 监管溯源) on top of the
//! log the store keeps: the Ed25519 log key (created once, stored wrapped
//! under the master key), signed checkpoints (periodically and on demand),
//! inclusion and consistency proofs, entry search, portable export bundles,
//! verification of a live store, witness cosignatures, payload retention and
//! lineage queries. The offline verifier lives in `shuyu-audit` and needs none
//! of this.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use shuyu_audit::Hash;
use shuyu_audit::bundle::{BundleError, LineVerifier, Verified};
use shuyu_audit::checkpoint::{Checkpoint, CheckpointError, Cosignature, key_id, parse_public_key_pem, public_key_pem};
use shuyu_audit::entry::Actor;
use shuyu_core::clock::{SharedClock, SignedDuration, Timestamp};
use shuyu_keyring::{KeyringError, MasterKey};
use shuyu_store::lineage::{self, NodeRef, Reached};
use shuyu_store::log::{self, Event, Filter, StoredEntry};
use shuyu_store::{Store, StoreError, settings};

/// Settings key of the wrapped log signing key.
pub const LOG_KEY_SETTING: &str = "audit.log_key.wrapped";
/// Settings key of the log's public key (PEM).
pub const LOG_PUBLIC_KEY_SETTING: &str = "audit.log_key.public";
/// Settings key of the installation id (the log's origin).
pub const INSTALLATION_SETTING: &str = "installation_id";
/// The shortest payload retention after an agreement ends (R-16: at least 6 months).
pub const MIN_RETENTION_DAYS: i64 = 183;
/// Most entries one range request returns.
pub const MAX_RANGE: u64 = 1000;

/// What can go wrong in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key could not be opened (wrong master key?).
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A checkpoint or cosignature does not verify.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// A request names sizes or positions the log does not have.
    #[error("out of range: {0}")]
    Range(String),
    /// The log was never given a key (not initialised).
    #[error("the audit log has no key yet: run shuyu init")]
    NoKey,
    /// A cosignature for a checkpoint that was never signed.
    #[error("no checkpoint of size {0} was signed")]
    UnknownCheckpoint(u64),
    /// Writing an export failed.
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    /// The retention asked for is shorter than the rules allow.
    #[error("retention must be at least {MIN_RETENTION_DAYS} days")]
    RetentionTooShort,
}

impl shuyu_core::error::UserFacing for LedgerError {
    fn kind(&self) -> shuyu_core::error::ErrorKind {
        use shuyu_core::error::ErrorKind;
        match self {
            LedgerError::Store(e) => e.kind(),
            LedgerError::Range(_) | LedgerError::Checkpoint(_) | LedgerError::RetentionTooShort => ErrorKind::Invalid,
            LedgerError::UnknownCheckpoint(_) => ErrorKind::NotFound,
            LedgerError::Keyring(_) | LedgerError::NoKey | LedgerError::Io(_) => ErrorKind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            LedgerError::Store(e) => e.code(),
            LedgerError::Range(_) => "out_of_range",
            LedgerError::Checkpoint(_) => "bad_cosignature",
            LedgerError::RetentionTooShort => "retention_too_short",
            LedgerError::UnknownCheckpoint(_) => "not_found",
            LedgerError::Keyring(_) | LedgerError::NoKey | LedgerError::Io(_) => "internal",
        }
    }
    fn message(&self) -> shuyu_core::error::Message {
        let m = shuyu_core::error::Message::new(format!("error.{}", self.code()));
        match self {
            LedgerError::Range(d) => m.arg("detail", d.clone()),
            LedgerError::Checkpoint(e) => m.arg("detail", e.to_string()),
            LedgerError::RetentionTooShort => m.arg("days", MIN_RETENTION_DAYS.to_string()),
            LedgerError::UnknownCheckpoint(_) => m.arg_key("object", "object.checkpoint"),
            _ => m,
        }
    }
}

/// An inclusion proof, as served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's leaf hash (hex).
    pub leaf_hash: String,
    /// The audit path (hex), RFC 6962 order.
    pub proof: Vec<String>,
    /// The root at `tree_size` (hex).
    pub root: String,
}

/// A consistency proof, as served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    /// The older size.
    pub first: u64,
    /// The newer size.
    pub second: u64,
    /// The proof (hex), RFC 6962 order.
    pub proof: Vec<String>,
    /// Root at `first` (hex).
    pub first_root: String,
    /// Root at `second` (hex).
    pub second_root: String,
}

/// Decodes hex hashes from a served proof.
pub fn decode_hashes(hexes: &[String]) -> Option<Vec<Hash>> {
    hexes
        .iter()
        .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect()
}

/// The audit ledger of one installation.
pub struct Ledger {
    store: Store,
    clock: SharedClock,
    key: SigningKey,
    public_pem: String,
    origin: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("origin", &self.origin)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

fn hexs(hs: &[Hash]) -> Vec<String> {
    hs.iter().map(hex::encode).collect()
}

/// The domain signs the documents it issues (scenario manifests …) with the log's key, so
/// supervisors verify them with the same `log-public-key.pem` they verify checkpoints with.
/// Messages start with their own label (`shuyu-manifest-v1` …), never with the log's origin,
/// so no document signature can pass for a checkpoint.
impl shuyu_core::sign::DocumentSigner for Ledger {
    fn sign(&self, message: &[u8]) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer;
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(message).to_bytes())
    }
    fn public_key_pem(&self) -> String {
        self.public_pem.clone()
    }
}

impl Ledger {
    /// Opens the ledger, creating the log key and installation id the first time
    /// (both written through the writer, audited as `audit.key_create`).
    pub async fn open(store: Store, master: &MasterKey, clock: SharedClock) -> Result<Ledger, LedgerError> {
        let mut c = store.read().await?;
        let wrapped = settings::get(&mut c, LOG_KEY_SETTING).await?;
        let installation = settings::get(&mut c, INSTALLATION_SETTING).await?;
        drop(c);
        let (key, installation) = match (wrapped, installation) {
            (Some(w), Some(i)) => (master.open_log_key(&w)?, i),
            (w, i) => {
                let installation = i.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                let (key, wrapped) = match w {
                    Some(w) => (master.open_log_key(&w)?, w),
                    None => master.new_log_key()?,
                };
                let pem = public_key_pem(&key.verifying_key())?;
                let mut event = Event::new(
                    clock.now(),
                    Actor::system("ledger"),
                    "audit.key_create",
                    "log_key",
                    key_id(&key.verifying_key()),
                );
                event.payload = Some(serde_json::json!({ "public_key": pem, "installation": installation }));
                let inst = installation.clone();
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            settings::put_if_absent(tx.conn(), INSTALLATION_SETTING, &inst).await?;
                            settings::put_if_absent(tx.conn(), LOG_KEY_SETTING, &wrapped).await?;
                            settings::put_if_absent(tx.conn(), LOG_PUBLIC_KEY_SETTING, &pem).await?;
                            tx.record(event);
                            Ok::<_, StoreError>(())
                        })
                    })
                    .await?;
                // Another process may have won the race: use whatever is stored now.
                let mut c = store.read().await?;
                let stored = settings::get(&mut c, LOG_KEY_SETTING)
                    .await?
                    .ok_or(LedgerError::NoKey)?;
                let inst = settings::get(&mut c, INSTALLATION_SETTING)
                    .await?
                    .ok_or(LedgerError::NoKey)?;
                (master.open_log_key(&stored)?, inst)
            }
        };
        let public_pem = public_key_pem(&key.verifying_key())?;
        Ok(Ledger {
            store,
            clock,
            key,
            public_pem,
            origin: format!("shuyu/{installation}"),
        })
    }

    /// The log's public key, SPKI PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The log's name in checkpoints.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signing key's id.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of entries.
    pub async fn size(&self) -> Result<u64, LedgerError> {
        Ok(log::size(&mut *self.store.read().await?).await?)
    }

    /// Signs a checkpoint of the log as it is now and stores it. If the latest
    /// checkpoint already covers every entry, that one is returned.
    pub async fn sign_checkpoint(&self) -> Result<Checkpoint, LedgerError> {
        if let Some(latest) = self.latest().await?
            && latest.size == self.size().await?
        {
            return Ok(latest);
        }
        let key = self.key.clone();
        let origin = self.origin.clone();
        let now = self.clock.now();
        let cp = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    // Inside the writer: the size cannot move while we sign it.
                    let size = log::size(tx.conn()).await?;
                    let root = log::root_at(tx.conn(), size).await?;
                    let cp = Checkpoint::sign(&origin, size, &root, now.as_second(), &key);
                    let json = serde_json::to_string(&cp).map_err(|e| StoreError::Audit(e.to_string()))?;
                    log::put_checkpoint(tx.conn(), size, &json, now).await?;
                    tx.housekeeping("a checkpoint is a signature over the log, not a change to it");
                    Ok::<_, StoreError>(cp)
                })
            })
            .await?;
        tracing::info!(size = cp.size, root = %cp.root, "checkpoint signed");
        Ok(cp)
    }

    /// The latest signed checkpoint.
    pub async fn latest(&self) -> Result<Option<Checkpoint>, LedgerError> {
        let json = log::latest_checkpoint(&mut *self.store.read().await?).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// The checkpoint signed for `size`.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<Checkpoint>, LedgerError> {
        let json = log::checkpoint(&mut *self.store.read().await?, size).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Proof that entry `seq` is in the tree of `tree_size` entries (default: the latest checkpoint's size).
    pub async fn inclusion(&self, seq: u64, tree_size: Option<u64>) -> Result<InclusionProof, LedgerError> {
        let mut c = self.store.read().await?;
        let size = match tree_size {
            Some(s) => s,
            None => self
                .latest()
                .await?
                .map(|cp| cp.size)
                .unwrap_or(log::size(&mut c).await?),
        };
        let current = log::size(&mut c).await?;
        if size > current || seq >= size {
            return Err(LedgerError::Range(format!(
                "entry {seq} in a tree of {size} (the log has {current})"
            )));
        }
        let leaf = log::leaf(&mut c, seq).await?;
        drop(c);
        let proof = self.store.inclusion_proof(seq, size).await?;
        let root = self.store.root_at(size).await?;
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: hex::encode(leaf),
            proof: hexs(&proof),
            root: hex::encode(root),
        })
    }

    /// Proof that the tree of `first` entries is a prefix of the tree of `second`.
    pub async fn consistency(&self, first: u64, second: u64) -> Result<ConsistencyProof, LedgerError> {
        let mut c = self.store.read().await?;
        let current = log::size(&mut c).await?;
        if first > second || second > current {
            return Err(LedgerError::Range(format!(
                "sizes {first} → {second} (the log has {current})"
            )));
        }
        drop(c);
        let proof = self.store.consistency_proof(first, second).await?;
        Ok(ConsistencyProof {
            first,
            second,
            proof: hexs(&proof),
            first_root: hex::encode(self.store.root_at(first).await?),
            second_root: hex::encode(self.store.root_at(second).await?),
        })
    }

    /// Entries with `start <= seq < end` (at most [`MAX_RANGE`]).
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<StoredEntry>, LedgerError> {
        let end = end.min(start.saturating_add(MAX_RANGE));
        Ok(log::range(&mut *self.store.read().await?, start, end).await?)
    }

    /// The newest entries matching `filter`.
    pub async fn search(&self, filter: &Filter, limit: i64) -> Result<Vec<StoredEntry>, LedgerError> {
        Ok(log::search(&mut *self.store.read().await?, filter, limit).await?)
    }

    /// Accepts a witness's cosignature: it must verify against the checkpoint
    /// this ledger signed for that size. Recorded in the log as `audit.cosign`.
    pub async fn add_cosignature(
        &self,
        cos: Cosignature,
        actor: Actor,
        request: Option<String>,
    ) -> Result<(), LedgerError> {
        let cp = self
            .checkpoint(cos.size)
            .await?
            .ok_or(LedgerError::UnknownCheckpoint(cos.size))?;
        cos.verify(&cp)?;
        let json = serde_json::to_string(&cos).map_err(|e| StoreError::Audit(e.to_string()))?;
        let now = self.clock.now();
        let mut event = Event::new(now, actor, "audit.cosign", "checkpoint", cos.size.to_string());
        event.request = request;
        event.payload = Some(serde_json::json!({ "witness": cos.witness, "key_id": cos.key_id }));
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    log::put_cosignature(tx.conn(), cos.size, &cos.key_id, &cos.witness, &json, now).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok(())
    }

    /// The cosignatures of checkpoint `size`.
    pub async fn cosignatures(&self, size: u64) -> Result<Vec<Cosignature>, LedgerError> {
        let list = log::cosignatures(&mut *self.store.read().await?, size).await?;
        Ok(list.iter().filter_map(|j| serde_json::from_str(j).ok()).collect())
    }

    /// Signs a checkpoint of the current log and writes the bundle into `dir`.
    pub async fn export(&self, dir: &Path) -> Result<Checkpoint, LedgerError> {
        let cp = self.sign_checkpoint().await?;
        let lines = self.lines_up_to(cp.size).await?;
        shuyu_audit::bundle::write_dir(dir, lines.iter().map(String::as_str), &cp, &self.public_pem)?;
        Ok(cp)
    }

    /// The same bundle as [`Ledger::export`], as a tar archive (for downloads).
    pub async fn export_tar(&self) -> Result<(Checkpoint, Vec<u8>), LedgerError> {
        let cp = self.sign_checkpoint().await?;
        let lines = self.lines_up_to(cp.size).await?;
        let mut entries = Vec::new();
        for l in &lines {
            entries.extend_from_slice(l.as_bytes());
            entries.push(b'\n');
        }
        let cp_json = serde_json::to_string_pretty(&cp).map_err(std::io::Error::other)? + "\n";
        let mut builder = tar::Builder::new(Vec::new());
        let mtime = cp.time.max(0) as u64;
        for (name, data) in [
            (shuyu_audit::bundle::ENTRIES_FILE, entries.as_slice()),
            (shuyu_audit::bundle::CHECKPOINT_FILE, cp_json.as_bytes()),
            (shuyu_audit::bundle::PUBLIC_KEY_FILE, self.public_pem.as_bytes()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_cksum();
            builder.append_data(&mut header, format!("shuyu-audit-{}/{name}", cp.size), data)?;
        }
        Ok((cp, builder.into_inner()?))
    }

    async fn lines_up_to(&self, size: u64) -> Result<Vec<String>, LedgerError> {
        let mut c = self.store.read().await?;
        let mut lines = Vec::with_capacity(size as usize);
        let mut start = 0;
        while start < size {
            let end = (start + 10_000).min(size);
            lines.extend(log::range(&mut c, start, end).await?.into_iter().map(|e| e.line));
            start = end;
        }
        Ok(lines)
    }

    /// Records that what `tag` names (an agreement) ended at `ended_at`: its
    /// entries' payloads are kept `days` (at least [`MIN_RETENTION_DAYS`]) and then purged.
    pub async fn end_retention(
        &self,
        tag: &str,
        ended_at: Timestamp,
        days: i64,
        actor: Actor,
    ) -> Result<(), LedgerError> {
        if days < MIN_RETENTION_DAYS {
            return Err(LedgerError::RetentionTooShort);
        }
        let until = ended_at + SignedDuration::from_hours(24 * days);
        let tag_owned = tag.to_string();
        let mut event = Event::new(self.clock.now(), actor, "audit.retention", "retention", tag);
        event.payload =
            Some(serde_json::json!({ "ended_at": ended_at.to_string(), "retain_until": until.to_string() }));
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    log::set_retention(tx.conn(), &tag_owned, ended_at, until).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok(())
    }

    /// Purges the payloads whose retention has run out; the purge itself is an entry.
    pub async fn purge_expired(&self) -> Result<u64, LedgerError> {
        let now = self.clock.now();
        let n = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let n = log::purge_expired(tx.conn(), now).await?;
                    if n > 0 {
                        let mut e =
                            Event::new(now, Actor::system("ledger"), "audit.purge", "payloads", now.to_string());
                        e.payload = Some(serde_json::json!({ "purged": n }));
                        tx.record(e);
                    } else {
                        tx.housekeeping("nothing to purge");
                    }
                    Ok::<_, StoreError>(n)
                })
            })
            .await?;
        Ok(n)
    }

    /// What derives from `node`.
    pub async fn derived(&self, node: &NodeRef, depth: u32) -> Result<Vec<Reached>, LedgerError> {
        Ok(lineage::derived(&mut *self.store.read().await?, node, depth.min(64)).await?)
    }

    /// Where `node` came from.
    pub async fn sources(&self, node: &NodeRef, depth: u32) -> Result<Vec<Reached>, LedgerError> {
        Ok(lineage::sources(&mut *self.store.read().await?, node, depth.min(64)).await?)
    }

    /// Signs a checkpoint every `interval` when the log has grown, and purges
    /// expired payloads once a day, until the returned handle is aborted.
    pub fn spawn_periodic(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_purge: Option<Timestamp> = None;
            loop {
                tick.tick().await;
                if let Err(e) = self.sign_checkpoint().await {
                    tracing::error!(error = %e, "periodic checkpoint failed");
                }
                let now = self.clock.now();
                if last_purge.is_none_or(|t| now.duration_since(t) >= SignedDuration::from_hours(24)) {
                    match self.purge_expired().await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired audit payloads purged"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "payload purge failed"),
                    }
                    last_purge = Some(now);
                }
            }
        })
    }
}

/// What went wrong verifying a live store.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entries do not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No checkpoint or public key is stored.
    #[error("nothing to verify against: {0}")]
    Missing(&'static str),
    /// An older signed checkpoint's root is not the root of the entries at its size.
    #[error("the checkpoint of size {size} signed root {signed}, but the entries give {computed}")]
    HistoryRewritten {
        /// The checkpoint's size.
        size: u64,
        /// Its signed root (hex).
        signed: String,
        /// The root recomputed from the stored entries (hex).
        computed: String,
    },
    /// The stored Merkle nodes disagree with the entries.
    #[error("the stored Merkle tree disagrees with the entries (root {stored} vs {computed})")]
    NodesTampered {
        /// Root from stored nodes (hex).
        stored: String,
        /// Root from the entries (hex).
        computed: String,
    },
}

/// Verifies a live store with its public key only (no master key): every entry
/// up to the latest checkpoint is checked as in a bundle, every older stored
/// checkpoint must match the entries at its size, and the stored Merkle tree
/// must agree with the entries.
pub async fn verify_store(store: &Store) -> Result<Verified, LiveError> {
    let mut c = store.read().await?;
    let pem = settings::get(&mut c, LOG_PUBLIC_KEY_SETTING)
        .await?
        .ok_or(LiveError::Missing("no log public key"))?;
    let key = parse_public_key_pem(&pem).map_err(|e| LiveError::Bundle(BundleError::Key(e)))?;
    let all: Vec<Checkpoint> = log::checkpoints(&mut c)
        .await?
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    let latest = all.last().cloned().ok_or(LiveError::Missing("no signed checkpoint"))?;
    let mut roots_to_check: Vec<(u64, Hash)> = Vec::new();
    for cp in &all {
        cp.verify(&key)
            .map_err(|e| LiveError::Bundle(BundleError::Signature(e)))?;
        let root = cp
            .root_hash()
            .map_err(|e| LiveError::Bundle(BundleError::Checkpoint(e.to_string())))?;
        roots_to_check.push((cp.size, root));
    }
    let mut v = LineVerifier::new(latest.clone(), &key)?;
    let mut next = 0usize;
    while next < roots_to_check.len() && roots_to_check[next].0 == 0 {
        next += 1;
    }
    let mut start = 0;
    while start < latest.size {
        let end = (start + 10_000).min(latest.size);
        for e in log::range(&mut c, start, end).await? {
            v.push(&e.line)?;
            while next < roots_to_check.len() && roots_to_check[next].0 == v.size() {
                let (size, signed) = roots_to_check[next];
                let computed = v.root();
                if computed != signed {
                    return Err(LiveError::HistoryRewritten {
                        size,
                        signed: hex::encode(signed),
                        computed: hex::encode(computed),
                    });
                }
                next += 1;
            }
        }
        start = end;
    }
    let verified = v.finish()?;
    let stored = log::root_at(&mut c, verified.size).await?;
    if stored != verified.root {
        return Err(LiveError::NodesTampered {
            stored: hex::encode(stored),
            computed: hex::encode(verified.root),
        });
    }
    Ok(verified)
}
