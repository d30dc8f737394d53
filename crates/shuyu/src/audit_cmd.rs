//! `shuyu audit …` and `shuyu lineage …`: the operator's and the supervisor's
//! tools for the audit log.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use shuyu_core::clock::SystemClock;
use shuyu_ledger::Ledger;
use shuyu_store::lineage::NodeRef;

use crate::config::Config;
use crate::{Exit, open_existing_store};

/// The ledger of an initialised data directory (needs its master key, to sign).
async fn open_ledger(cfg: &Config) -> Result<(shuyu_store::Store, Ledger)> {
    let store = open_existing_store(cfg).await?;
    let master = crate::key_cmd::open_master_key(cfg, &store).await?;
    let ledger = Ledger::open(store.clone(), &master, Arc::new(SystemClock)).await?;
    Ok((store, ledger))
}

/// Prints a successful verification, or turns a failure into exit code 1.
fn report<E: std::fmt::Display>(result: Result<shuyu_audit::bundle::Verified, E>, what: &str) -> Result<()> {
    match result {
        Ok(v) => {
            println!(
                "verified: {} entries{what}, root {}, signed by key {} ({})",
                v.size,
                hex::encode(v.root),
                v.key_id,
                v.origin
            );
            Ok(())
        }
        Err(e) => Err(Exit::new(1, format!("NOT VERIFIED: {e}")).into()),
    }
}

/// `shuyu audit export --out DIR`: signs a checkpoint of the log as it is and writes the bundle.
pub async fn export(cfg: &Config, out: &Path) -> Result<()> {
    let (store, ledger) = open_ledger(cfg).await?;
    if out.join(shuyu_audit::bundle::ENTRIES_FILE).exists() {
        bail!("{} already holds a bundle; choose an empty directory", out.display());
    }
    let cp = ledger
        .export(out)
        .await
        .with_context(|| format!("cannot write the bundle to {}", out.display()))?;
    store.close().await;
    println!("exported {} entries to {}", cp.size, out.display());
    println!(
        "checkpoint: size {} root {} key {}",
        cp.size,
        hex_root(&cp.root),
        cp.key_id
    );
    Ok(())
}

fn hex_root(b64: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(hex::encode)
        .unwrap_or_else(|_| b64.to_string())
}

/// `shuyu audit verify DIR`: verifies a bundle with nothing but its own files.
pub fn verify_bundle(dir: &Path) -> Result<()> {
    report(shuyu_audit::bundle::verify_dir(dir), "")
}

/// `shuyu audit verify --data-dir D`: verifies the live store the same way.
pub async fn verify_live(cfg: &Config) -> Result<()> {
    let store = open_existing_store(cfg).await?;
    let result = shuyu_ledger::verify_store(&store).await;
    store.close().await;
    report(result, " up to the latest checkpoint")
}

/// `shuyu audit checkpoint`: signs a checkpoint now.
pub async fn checkpoint(cfg: &Config) -> Result<()> {
    let (store, ledger) = open_ledger(cfg).await?;
    let cp = ledger.sign_checkpoint().await?;
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&cp)?);
    Ok(())
}

/// `shuyu lineage derived|sources NODE`.
pub async fn lineage(cfg: &Config, forward: bool, node: &str, depth: u32) -> Result<()> {
    let Some(start) = NodeRef::parse(node) else {
        bail!("{node:?} is not a lineage node; write it as kind:id, e.g. dataset_version:population@v1");
    };
    let store = open_existing_store(cfg).await?;
    let mut c = store.read().await?;
    let edges = if forward {
        shuyu_store::lineage::derived(&mut c, &start, depth).await?
    } else {
        shuyu_store::lineage::sources(&mut c, &start, depth).await?
    };
    drop(c);
    store.close().await;
    if edges.is_empty() {
        println!(
            "{}: {}",
            start.key(),
            if forward {
                "nothing derives from it"
            } else {
                "it comes from nothing recorded"
            }
        );
    }
    for e in edges {
        let indent = "  ".repeat(e.depth as usize);
        if forward {
            println!(
                "{indent}{} --{}--> {}  (audit entry {})",
                e.from.key(),
                e.relation,
                e.to.key(),
                e.seq
            );
        } else {
            println!(
                "{indent}{} <--{}-- {}  (audit entry {})",
                e.to.key(),
                e.relation,
                e.from.key(),
                e.seq
            );
        }
    }
    Ok(())
}
