//! `shuyu demo-data` (write the demo city's files), `shuyu import` (a provider's
//! file into the vault, from the host), and the demo's own import of the city.
//! Output is counts, classifications and masked examples — never a record.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shuyu_catalog::chain::{EntryEvent, EntryKind};
use shuyu_catalog::entries::EntryDraft;
use shuyu_catalog::{Catalog, ImportRequest, VersionView};
use shuyu_core::actor::Principal;
use shuyu_core::error::{Message, UserFacing};
use shuyu_core::i18n::{Lang, render};
use shuyu_democity::{Manifest, Options as CityOptions};
use shuyu_store::datasets::ImportErrorRecord;
use shuyu_store::{Store, orgs, users};

use crate::city;

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>18} {bar:32} {pos:>10}/{len:10} {per_sec:>12} {eta:>4}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Writes the demo city (DEMO_CITY.md) into `out`, with a progress bar per dataset on a terminal.
pub fn demo_data(out: &Path, scale: f64, seed: u64, only: &[String], lang: Lang) -> Result<Manifest> {
    let known: Vec<&str> = shuyu_democity::DATASETS.iter().map(|d| d.name).collect();
    if let Some(bad) = only.iter().find(|n| !known.contains(&n.as_str())) {
        bail!(
            "{}",
            render(
                lang,
                &Message::new("cli.data.unknown_dataset")
                    .arg("name", bad.clone())
                    .arg("known", known.join(", "))
            )
        );
    }
    let multi = MultiProgress::new();
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let started = std::time::Instant::now();
    let opts = CityOptions { scale, seed };
    let mut progress = |name: &str, done: u64, total: u64| {
        let bar = bars.entry(name.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(total));
            b.set_style(bar_style());
            b.set_prefix(name.to_string());
            b
        });
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    };
    let manifest = if only.is_empty() {
        shuyu_democity::generate(out, &opts, &mut progress).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        // The chosen datasets only, in the city's order, with a manifest of just them.
        let mut datasets = Vec::new();
        for name in known.iter().filter(|n| only.iter().any(|o| o == *n)) {
            if let Some(info) =
                shuyu_democity::generate_dataset(out, &opts, name, &mut progress).map_err(|e| anyhow::anyhow!("{e}"))?
            {
                datasets.push(info);
            }
        }
        let m = Manifest { seed, scale, datasets };
        std::fs::write(
            out.join(shuyu_democity::MANIFEST_FILE),
            serde_json::to_string_pretty(&m)? + "\n",
        )?;
        Ok(m)
    }
    .with_context(|| format!("cannot write the demo city into {}", out.display()))?;
    drop(bars);
    eprintln!(
        "{}",
        render(
            lang,
            &Message::new("cli.data.written")
                .arg("dir", out.display().to_string())
                .arg("secs", format!("{:.1}", started.elapsed().as_secs_f64()))
        )
    );
    Ok(manifest)
}

/// The principal of an active user of an active organisation, for an action taken on the host.
pub async fn principal_of(store: &Store, username: &str, lang: Lang) -> Result<Principal> {
    let mut c = store.read().await?;
    let user = users::find_by_username(&mut c, username)
        .await?
        .filter(|u| u.status == shuyu_core::party::Status::Active)
        .ok_or_else(|| anyhow::anyhow!(render(lang, &Message::new("cli.data.no_user").arg("user", username))))?;
    let org = orgs::get(&mut c, user.org_id)
        .await?
        .filter(|o| o.status == shuyu_core::party::Status::Active)
        .ok_or_else(|| anyhow::anyhow!(render(lang, &Message::new("cli.data.no_user").arg("user", username))))?;
    let mut p = Catalog::system_principal(&org, &user);
    p.request_id = Some("cli".into());
    Ok(p)
}

/// A catalog error in the user's language, with each failing field on its own line.
pub fn explain(lang: Lang, e: &shuyu_catalog::CatalogError) -> anyhow::Error {
    let mut text = render(lang, &e.message());
    for f in e.field_errors() {
        text.push_str(&format!("\n  - {}: {}", f.field, render(lang, &f.message())));
    }
    anyhow::anyhow!(text)
}

/// Prints what `demo-data` wrote: one line per file.
pub fn print_manifest(manifest: &Manifest) {
    let mut table = String::new();
    for d in &manifest.datasets {
        table.push_str(&format!(
            "  {:<18} {:<24} {:>10} rows  {:>6} dirty  {}\n",
            d.name,
            d.file,
            d.rows,
            d.dirty.len(),
            d.encoding
        ));
    }
    println!("{table}");
}

/// Imports `file` as `user` into dataset `name`, with a spinner counting rows on a terminal.
#[allow(clippy::too_many_arguments)]
pub async fn import_one(
    catalog: &Catalog,
    p: &Principal,
    name: &str,
    title: Option<&str>,
    file: &Path,
    req: &ImportRequest,
    lang: Lang,
    bar: Option<&ProgressBar>,
) -> Result<(VersionView, Vec<ImportErrorRecord>)> {
    let mut opts = req.options().map_err(|v| {
        let mut text = String::new();
        for f in &v.0 {
            text.push_str(&format!("{}: {}\n", f.field, render(lang, &f.message())));
        }
        anyhow::anyhow!(text)
    })?;
    let counter = Arc::new(AtomicU64::new(0));
    opts.progress = Some(counter.clone());
    let ticker = bar.cloned().map(|b| {
        let c = counter.clone();
        tokio::spawn(async move {
            loop {
                b.set_position(c.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let source = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let result = catalog.import(p, name, title, file, &source, &opts).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(b) = bar {
        b.set_position(counter.load(Ordering::Relaxed));
        b.finish();
    }
    result.map_err(|e| explain(lang, &e))
}

/// Prints what an import found: counts, the classification, and the first errors.
pub fn print_report(v: &VersionView, errors: &[ImportErrorRecord], lang: Lang) {
    let mut out = String::new();
    out.push_str(&format!(
        "version {} (#{}, {}): {} rows read, {} accepted, {} quarantined, {} errors; encoding {}; grade {}\n",
        v.id,
        v.version_no,
        v.state.code(),
        v.rows_read,
        v.rows_accepted,
        v.rows_quarantined,
        v.error_count,
        v.encoding,
        v.grade
    ));
    for c in &v.columns {
        out.push_str(&format!(
            "  {:<20} {:<12} {:<18} {:<4} {}\n",
            c.name,
            c.class.field_type.code(),
            serde_json::to_value(c.class.sensitivity)
                .ok()
                .and_then(|s| s.as_str().map(str::to_string))
                .unwrap_or_default(),
            c.class.grade.code(),
            c.examples.join("  ")
        ));
    }
    // What the version changes against the current one; a breaking change is accepted
    // only with `--confirm KEY`.
    for c in &v.changes {
        out.push_str(&format!(
            "  {} {}{}\n",
            if c.breaking { "!" } else { "+" },
            c.key(),
            match (&c.from, &c.to) {
                (Some(a), Some(b)) => format!(" ({a} → {b})"),
                _ => String::new(),
            }
        ));
    }
    for e in errors.iter().take(20) {
        let msg = Message::new(format!("rule.{}", e.rule))
            .arg("field", e.field.clone())
            .arg("path", e.field.clone());
        out.push_str(&format!(
            "  row {:>8}  {:<16} {:<18} {}  [{}]\n",
            e.row_no,
            e.field,
            e.rule,
            render(lang, &msg),
            e.value_digest
        ));
    }
    if errors.len() > 20 {
        out.push_str(&format!("  … {} more\n", v.error_count - 20));
    }
    println!("{out}");
}

/// Generates the demo city at `scale` into `DATA_DIR/demo-city` and imports each
/// dataset as its provider, accepting every version and registering it in the resource
/// catalog (confirmed by the authority); the generated plaintext files are deleted afterwards (only the manifest stays). Does nothing if already done.
pub async fn import_demo_city(
    catalog: &Catalog,
    store: &Store,
    data_dir: &Path,
    scale: f64,
    seed: u64,
    lang: Lang,
) -> Result<()> {
    let dir: PathBuf = data_dir.join("demo-city");
    let marker = dir.join("imported");
    if marker.exists() {
        return Ok(());
    }
    let manifest = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || demo_data(&dir, scale, seed, &[], lang)
    })
    .await
    .context("the generator stopped")??;
    let multi = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The city's data authority confirms each registration (the demo's resource catalog).
    let authority = principal_of(store, "admin", lang).await?;
    for d in &manifest.datasets {
        let Some((_, username, title)) = city::DATASET_PROVIDERS.iter().find(|(n, _, _)| *n == d.name) else {
            bail!("no provider for demo dataset {}", d.name);
        };
        let p = principal_of(store, username, lang).await?;
        let bar = multi.add(ProgressBar::new(d.rows));
        bar.set_style(bar_style());
        bar.set_prefix(format!("import {}", d.name));
        let (v, _) = import_one(
            catalog,
            &p,
            &d.name,
            Some(title),
            &dir.join(&d.file),
            &ImportRequest::default(),
            lang,
            Some(&bar),
        )
        .await?;
        catalog.accept(&p, &v.id, &[]).await.map_err(|e| explain(lang, &e))?;
        let draft = EntryDraft {
            title: title.to_string(),
            description: format!("{title}（示范市演示数据，{}）", d.name),
            dataset: Some(d.name.clone()),
            update_frequency: Some("monthly".into()),
            keywords: vec![title.to_string()],
            ..EntryDraft::default()
        };
        let entry = catalog
            .create_entry(&p, EntryKind::Resource, &draft)
            .await
            .map_err(|e| explain(lang, &e))?;
        catalog
            .act_on_entry(&p, &entry.id, EntryEvent::Submit, None)
            .await
            .map_err(|e| explain(lang, &e))?;
        catalog
            .act_on_entry(&authority, &entry.id, EntryEvent::Approve, None)
            .await
            .map_err(|e| explain(lang, &e))?;
        std::fs::remove_file(dir.join(&d.file)).with_context(|| format!("cannot remove {}", d.file))?;
        println!(
            "  {:<18} {:>10} rows accepted, {:>6} quarantined (grade {})",
            d.name, v.rows_accepted, v.rows_quarantined, v.grade
        );
    }
    std::fs::write(&marker, b"").with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}
