//! The master key's life after `init`: opening it (finishing an interrupted rotation)
//! and rotating it. Rotation re-wraps every key the master key protects — each dataset
//! version's data key and quarantine key, and the audit log's signing key — under a
//! fresh master key, checks that every vault object opens with its re-wrapped key, and
//! commits all of it in one audited transaction; the data itself is not rewritten.
//!
//! Crash safety: the next key is written to `master.key.next` (fsync'd) before anything
//! changes; the database switches in one transaction; only then does `master.key.next`
//! replace `master.key`. Whoever opens the data directory next finds out which key the
//! database is on (the audit log's wrapped signing key tells) and finishes or discards.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use shuyu_audit::entry::Actor;
use shuyu_core::clock::{Clock, SystemClock};
use shuyu_keyring::{LOG_KEY_PURPOSE, MasterKey};
use shuyu_ledger::LOG_KEY_SETTING;
use shuyu_store::log::Event;
use shuyu_store::{Store, StoreError, datasets, settings, workspaces};
use shuyu_vault::Vault;

use crate::config::Config;

/// Where a rotation keeps the next key until the database has switched to it.
pub fn next_key_path(master: &Path) -> PathBuf {
    let mut p = master.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

fn opens(key: &MasterKey, wrapped: &str) -> bool {
    key.unwrap(LOG_KEY_PURPOSE, wrapped).is_ok()
}

/// The data directory's master key. If a rotation was interrupted, the database decides:
/// when it already uses the next key, that key replaces `master.key`; otherwise the next
/// key is discarded. A key that opens nothing stored is a clear error.
pub async fn open_master_key(cfg: &Config, store: &Store) -> Result<MasterKey> {
    let path = cfg.master_key_path();
    let next = next_key_path(&path);
    let current = crate::load_master_key(&path)?;
    let wrapped = settings::get(&mut *store.read().await?, LOG_KEY_SETTING).await?;
    if next.exists() {
        let candidate = crate::load_master_key(&next)?;
        match &wrapped {
            Some(w) if !opens(&current, w) && opens(&candidate, w) => {
                std::fs::rename(&next, &path)
                    .with_context(|| format!("cannot finish the rotation: {}", path.display()))?;
                sync_dir(&path);
                tracing::warn!("an interrupted master-key rotation was finished");
                return Ok(candidate);
            }
            _ => {
                std::fs::remove_file(&next).with_context(|| format!("cannot remove {}", next.display()))?;
                tracing::warn!("an interrupted master-key rotation was rolled back");
            }
        }
    }
    if let Some(w) = &wrapped
        && !opens(&current, w)
    {
        bail!(
            "{} is not this data directory's master key: it does not open the audit log's signing key",
            path.display()
        );
    }
    Ok(current)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The lock file every serving process holds shared, and a rotation exclusively.
fn lock_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("serve.lock")
}

static SERVE_LOCK: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Marks this process as serving the data directory until it exits (a shared lock:
/// several servers may share one data directory; a rotation may not run beside them).
pub fn hold_serve_lock(cfg: &Config) -> Result<()> {
    let path = lock_path(cfg);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if f.try_lock_shared().is_err() {
        bail!(
            "a master-key rotation is running on {}; start the server when it is done",
            cfg.data_dir.display()
        );
    }
    let _ = SERVE_LOCK.set(f);
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Default)]
pub struct Rotated {
    /// Dataset version data keys re-wrapped (quarantine keys included).
    pub keys: usize,
    /// Rows in the objects whose footers were opened with the re-wrapped keys.
    pub rows: u64,
}

/// Rotates the master key of `cfg`'s data directory. The server must not be running
/// (it holds the old key in memory): this refuses while any serving process holds the lock.
pub async fn rotate(cfg: &Config) -> Result<Rotated> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(cfg))
        .with_context(|| format!("cannot open {}", lock_path(cfg).display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "a server is running on {} — stop it before rotating the master key (it holds the old key)",
            cfg.data_dir.display()
        );
    }
    let store = crate::open_store(cfg).await?;
    let old = open_master_key(cfg, &store).await?;
    let path = cfg.master_key_path();
    let next_path = next_key_path(&path);
    let next = MasterKey::generate()?;
    next.save_new(&next_path)?;
    let result = async {
        let old_vault = Vault::local(&cfg.data_dir, old.clone()).context("cannot open the vault")?;
        let new_vault = Vault::local(&cfg.data_dir, next.clone()).context("cannot open the vault")?;
        let mut versions = Vec::new();
        {
            let mut c = store.read().await?;
            for d in datasets::list(&mut c, None).await? {
                versions.extend(datasets::versions(&mut c, &d.id).await?);
            }
        }
        let mut out = Rotated::default();
        let mut changed = Vec::new();
        for mut v in versions {
            let mut touched = false;
            for (id, object, key) in [
                (v.id.clone(), v.object_path.clone(), &mut v.wrapped_key),
                (
                    format!("{}.quarantine", v.id),
                    v.quarantine_path.clone(),
                    &mut v.quarantine_key,
                ),
            ] {
                let (Some(object), Some(wrapped)) = (object, key.as_ref()) else {
                    continue;
                };
                let rewrapped = old_vault
                    .rewrap(&id, wrapped, &next)
                    .with_context(|| format!("cannot re-wrap the key of {id}"))?;
                // The object must open with what will be stored, before anything is stored.
                out.rows += new_vault
                    .verify_object(&id, &object, &rewrapped)
                    .await
                    .with_context(|| format!("{object} does not open with its re-wrapped key"))?;
                *key = Some(rewrapped);
                out.keys += 1;
                touched = true;
            }
            if touched {
                changed.push(v);
            }
        }
        // Workspaces: each sample's data key and each workspace's own keys.
        let mut samples = Vec::new();
        let mut spaces = Vec::new();
        let mut outputs = Vec::new();
        let mut members = Vec::new();
        let mut diagnostics = Vec::new();
        let mut released = Vec::new();
        {
            let mut c = store.read().await?;
            for s in workspaces::all_samples(&mut c).await? {
                let (Some(object), Some(wrapped)) = (&s.object_path, &s.wrapped_key) else {
                    continue;
                };
                let id = shuyu_vault::sample_key_id(&s.id);
                let rewrapped = old_vault
                    .rewrap(&id, wrapped, &next)
                    .with_context(|| format!("cannot re-wrap the key of sample {}", s.id))?;
                out.rows += new_vault
                    .verify_object(&id, object, &rewrapped)
                    .await
                    .with_context(|| format!("{object} does not open with its re-wrapped key"))?;
                out.keys += 1;
                samples.push((s.id.clone(), rewrapped));
            }
            for o in shuyu_store::jobs::all_outputs(&mut c).await? {
                let (Some(object), Some(wrapped)) = (&o.object_path, &o.wrapped_key) else {
                    continue;
                };
                let id = shuyu_engine::job_output_key_id(&o.job_id, &o.name);
                let rewrapped = old_vault
                    .rewrap(&id, wrapped, &next)
                    .with_context(|| format!("cannot re-wrap the key of job output {}/{}", o.job_id, o.name))?;
                out.rows += new_vault
                    .verify_object(&id, object, &rewrapped)
                    .await
                    .with_context(|| format!("{object} does not open with its re-wrapped key"))?;
                out.keys += 1;
                outputs.push((o.job_id.clone(), o.name.clone(), rewrapped));
                if let (Some(object), Some(wrapped)) = (&o.members_path, &o.members_wrapped_key) {
                    let id = shuyu_engine::job_members_key_id(&o.job_id, &o.name);
                    let rewrapped = old_vault.rewrap(&id, wrapped, &next).with_context(|| {
                        format!("cannot re-wrap the key of job output {}/{}'s members", o.job_id, o.name)
                    })?;
                    new_vault
                        .verify_object(&id, object, &rewrapped)
                        .await
                        .with_context(|| format!("{object} does not open with its re-wrapped key"))?;
                    out.keys += 1;
                    members.push((o.job_id.clone(), o.name.clone(), rewrapped));
                }
            }
            for j in shuyu_store::jobs::all(&mut c).await? {
                if let Some(wrapped) = &j.diagnostics_wrapped {
                    let rewrapped = old
                        .rewrap(&shuyu_engine::diagnostics_purpose(&j.id), wrapped, &next)
                        .with_context(|| format!("cannot re-wrap the diagnostics of job {}", j.id))?;
                    out.keys += 1;
                    diagnostics.push((j.id.clone(), rewrapped));
                }
            }
            for r in shuyu_store::releases::all_released(&mut c).await? {
                let (Some(object), Some(wrapped)) = (&r.object_path, &r.wrapped_key) else {
                    continue;
                };
                let id = shuyu_engine::release_key_id(&r.id);
                let rewrapped = old_vault
                    .rewrap(&id, wrapped, &next)
                    .with_context(|| format!("cannot re-wrap the key of release {}", r.id))?;
                out.rows += new_vault
                    .verify_object(&id, object, &rewrapped)
                    .await
                    .with_context(|| format!("{object} does not open with its re-wrapped key"))?;
                out.keys += 1;
                released.push((r.id.clone(), rewrapped));
            }
            for w in workspaces::all(&mut c).await? {
                let purpose = shuyu_engine::keys_purpose(&w.id);
                let rewrapped = old
                    .rewrap(&purpose, &w.keys_wrapped, &next)
                    .with_context(|| format!("cannot re-wrap the keys of workspace {}", w.id))?;
                out.keys += 1;
                spaces.push((w.id.clone(), rewrapped));
            }
        }
        let log_key = settings::get(&mut *store.read().await?, LOG_KEY_SETTING).await?;
        let log_key = match log_key {
            Some(w) => Some(old.rewrap(LOG_KEY_PURPOSE, &w, &next)?),
            None => None,
        };
        let mark_secret = settings::get(&mut *store.read().await?, shuyu_engine::WATERMARK_SECRET_SETTING).await?;
        let mark_secret = match mark_secret {
            Some(w) => Some(old.rewrap(shuyu_engine::WATERMARK_SECRET_PURPOSE, &w, &next)?),
            None => None,
        };
        let mut event = Event::new(
            SystemClock.now(),
            Actor::system("cli:master-key-rotate"),
            "master_key.rotate",
            "installation",
            "master_key".to_string(),
        );
        event.payload = Some(serde_json::json!({ "dataset_keys": out.keys, "log_key": log_key.is_some() }));
        store
            .write(move |tx| {
                Box::pin(async move {
                    for v in &changed {
                        datasets::update_version(tx.conn(), v).await?;
                    }
                    for (id, k) in &samples {
                        workspaces::set_sample_key(tx.conn(), id, k).await?;
                    }
                    for (id, k) in &spaces {
                        workspaces::set_keys(tx.conn(), id, k).await?;
                    }
                    for (job, name, k) in &outputs {
                        shuyu_store::jobs::set_output_key(tx.conn(), job, name, k).await?;
                    }
                    for (job, name, k) in &members {
                        shuyu_store::jobs::set_members_key(tx.conn(), job, name, k).await?;
                    }
                    for (job, k) in &diagnostics {
                        shuyu_store::jobs::set_diagnostics(tx.conn(), job, k).await?;
                    }
                    for (id, k) in &released {
                        shuyu_store::releases::set_key(tx.conn(), id, k).await?;
                    }
                    if let Some(w) = &mark_secret {
                        settings::set(tx.conn(), shuyu_engine::WATERMARK_SECRET_SETTING, w).await?;
                    }
                    if let Some(w) = &log_key {
                        settings::set(tx.conn(), LOG_KEY_SETTING, w).await?;
                    }
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok::<_, anyhow::Error>(out)
    }
    .await;
    match result {
        Ok(out) => {
            std::fs::rename(&next_path, &path).with_context(|| format!("cannot replace {}", path.display()))?;
            sync_dir(&path);
            Ok(out)
        }
        Err(e) => {
            // Nothing was committed: the next key goes, the old one stays.
            let _ = std::fs::remove_file(&next_path);
            Err(e)
        }
    }
}
