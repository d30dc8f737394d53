//! `shuyu gate check`: the disclosure gate offline, for output checkers and tests. Runs one
//! query over local files with the same planner, evidence and checks the gate uses inside the
//! domain, and prints one JSON report (`verdict`, and per check `id`, `result`, `cells`, the
//! explanation and the suggested remedy) in the chosen language.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use shuyu_core::error::UserFacing;
use shuyu_core::i18n::{Lang, render};
use shuyu_gate::{Rules, checks, remedy};

/// `shuyu gate …`
#[derive(Subcommand, Debug)]
pub(crate) enum GateCommand {
    /// Run a query over CSV/XLSX/Parquet/JSONL files and check its output; prints one JSON report.
    Check(CheckArgs),
}

/// The arguments of `shuyu gate check`.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// A table for the query, NAME=FILE (repeatable).
    #[arg(long = "table", value_name = "NAME=FILE", required = true)]
    tables: Vec<String>,
    /// The query (DataFusion's SQL dialect).
    #[arg(long)]
    sql: String,
    /// The report's language: zh-CN (default) or en.
    #[arg(long, default_value = "zh-CN")]
    lang: String,
    /// Also apply a remedy and check the result: suppress (primary and secondary) or round.
    #[arg(long, value_parser = ["suppress", "round"])]
    remedy: Option<String>,
    /// Minimum records per cell.
    #[arg(long)]
    threshold: Option<u64>,
}

/// Runs a `gate` subcommand.
pub(crate) async fn run(cmd: GateCommand) -> Result<()> {
    match cmd {
        GateCommand::Check(args) => check(args).await,
    }
}

async fn check(args: CheckArgs) -> Result<()> {
    let Some(lang) = Lang::from_tag(&args.lang) else {
        bail!("--lang {}: give zh-CN or en", args.lang);
    };
    let mut tables = Vec::with_capacity(args.tables.len());
    for t in &args.tables {
        let Some((name, file)) = t.split_once('=') else {
            bail!("--table {t}: give NAME=FILE");
        };
        if name.trim().is_empty() {
            bail!("--table {t}: the table needs a name before '='");
        }
        tables.push(shuyu_engine::offline::load(name.trim(), &PathBuf::from(file)).map_err(|e| localized(lang, &e))?);
    }
    let mut rules = Rules::default();
    if let Some(t) = args.threshold {
        rules.threshold = t;
    }
    let (output, report) = shuyu_engine::offline::check_tables(tables, &args.sql, &rules)
        .await
        .map_err(|e| localized(lang, &e))?;
    // The output checker's own files: the full report, every flagged cell.
    let mut json = serde_json::to_value(report.render(lang, usize::MAX))?;
    if let Some(kind) = args.remedy.as_deref() {
        let remedied = match kind {
            "round" => remedy::round(&output, rules.round_base),
            _ => remedy::suppress(&output, &report, &rules),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let after = checks::run(&remedied.output, &shuyu_gate::Context::alone(&rules));
        if let Some(obj) = json.as_object_mut() {
            obj.insert(
                "remedy".into(),
                serde_json::json!({
                    "kind": kind,
                    "primary": remedied.primary,
                    "secondary": remedied.secondary,
                    "report": after.render(lang, usize::MAX),
                }),
            );
        }
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn localized(lang: Lang, e: &shuyu_engine::EngineError) -> anyhow::Error {
    anyhow::anyhow!("{}", render(lang, &e.message()))
}
