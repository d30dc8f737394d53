//! `shuyu anonymize`: the optimal full-domain generalization of a CSV file's quasi-identifiers
//! under k-anonymity (plus optional ℓ-diversity and t-closeness), minimizing one of ARX's
//! utility metrics — offline, on the host, so a data provider can prepare a publishable table
//! and see what it costs before anything leaves the domain. Writes the anonymized CSV and
//! prints one JSON object describing the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use shuyu_mask::MaskError;
use shuyu_mask::anon::{Anonymizer, Config, Diversity, Metric};
use shuyu_mask::generalize::Hierarchy;

/// The command's arguments.
#[derive(Args, Debug)]
pub(crate) struct AnonymizeArgs {
    /// The CSV file (with a header row).
    #[arg(long)]
    input: PathBuf,
    /// Directory of ARX-style hierarchies named `<input stem>_hierarchy_<column>.csv`.
    #[arg(long)]
    hierarchies: Option<PathBuf>,
    /// The quasi-identifiers, comma-separated column names.
    #[arg(long, value_delimiter = ',', required = true)]
    qi: Vec<String>,
    /// k of k-anonymity (≥ 1).
    #[arg(long)]
    k: usize,
    /// ℓ of ℓ-diversity on --sensitive.
    #[arg(long)]
    l: Option<f64>,
    /// Which ℓ-diversity: distinct (ℓ distinct values per class) or entropy.
    #[arg(long, default_value = "distinct", value_parser = ["distinct", "entropy"])]
    diversity: String,
    /// The sensitive column, for --l and --t.
    #[arg(long)]
    sensitive: Option<String>,
    /// t of t-closeness (equal ground distance) on --sensitive.
    #[arg(long)]
    t: Option<f64>,
    /// The fraction of rows that may be suppressed, 0..=1.
    #[arg(long, default_value_t = 0.0)]
    suppression: f64,
    /// The utility metric to minimize: entropy, loss or discernibility.
    #[arg(long, default_value = "entropy")]
    metric: String,
    /// Where to write the anonymized CSV.
    #[arg(long)]
    out: PathBuf,
    /// A hierarchy file for one column, COLUMN=FILE (repeatable; overrides --hierarchies).
    #[arg(long = "hierarchy", value_name = "COLUMN=FILE")]
    hierarchy: Vec<String>,
    /// The CSV delimiter of the input and output (hierarchy files are always `;`).
    #[arg(long, default_value = ",")]
    delimiter: String,
}

/// Runs the command.
pub(crate) fn run(args: &AnonymizeArgs) -> Result<()> {
    let started = Instant::now();
    if args.k < 1 {
        bail!("--k {}: k must be at least 1", args.k);
    }
    if !(args.suppression.is_finite() && (0.0..=1.0).contains(&args.suppression)) {
        bail!(
            "--suppression {}: give a fraction of the rows between 0 and 1",
            args.suppression
        );
    }
    let metric = Metric::parse(&args.metric)
        .with_context(|| format!("--metric {:?}: use entropy, loss or discernibility", args.metric))?;
    let l = match args.l {
        None => None,
        Some(l) if !(l.is_finite() && l >= 1.0) => bail!("--l {l}: ℓ must be at least 1"),
        Some(l) if args.diversity == "distinct" => {
            if l.fract() != 0.0 {
                bail!("--l {l}: distinct ℓ-diversity needs a whole number (or --diversity entropy)");
            }
            Some(Diversity::Distinct(l as usize))
        }
        Some(l) => Some(Diversity::Entropy(l)),
    };
    if let Some(t) = args.t
        && !(t.is_finite() && t >= 0.0)
    {
        bail!("--t {t}: t must be at least 0");
    }
    if (l.is_some() || args.t.is_some()) && args.sensitive.is_none() {
        bail!("--l and --t need --sensitive COLUMN");
    }
    let delimiter = match args.delimiter.as_bytes() {
        [b] => *b,
        b"\\t" => b'\t',
        _ => bail!("--delimiter {:?}: give one character", args.delimiter),
    };
    let explicit = explicit_hierarchies(&args.hierarchy)?;

    // The table.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", args.input.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut records = Vec::new();
    for (i, r) in reader.records().enumerate() {
        records.push(r.with_context(|| format!("{}: line {}", args.input.display(), i + 2))?);
    }
    let index = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column {name:?} (columns: {})",
                args.input.display(),
                header.join(", ")
            )
        })
    };
    let qi_columns: Vec<usize> = args.qi.iter().map(|q| index(q)).collect::<Result<_>>()?;
    let sensitive_column = args.sensitive.as_deref().map(index).transpose()?;
    if let Some(s) = sensitive_column
        && qi_columns.contains(&s)
    {
        bail!("--sensitive {:?} is also a quasi-identifier", header[s]);
    }

    // The hierarchies.
    let stem = args
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut hierarchies = Vec::new();
    let mut paths = Vec::new();
    for q in &args.qi {
        let path = match (explicit.get(q.as_str()), &args.hierarchies) {
            (Some(p), _) => p.clone(),
            (None, Some(dir)) => dir.join(format!("{stem}_hierarchy_{q}.csv")),
            (None, None) => bail!("no hierarchy for column {q:?}: give --hierarchies DIR or --hierarchy {q}=FILE"),
        };
        if !path.is_file() {
            bail!("no hierarchy for column {q:?}: {} does not exist", path.display());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        hierarchies.push(Hierarchy::from_csv(&text).with_context(|| format!("hierarchy {}", path.display()))?);
        paths.push(path);
    }

    let column = |c: usize| -> Vec<String> { records.iter().map(|r| r.get(c).unwrap_or("").to_string()).collect() };
    let columns: Vec<(String, Vec<String>)> = args
        .qi
        .iter()
        .zip(&qi_columns)
        .map(|(q, c)| (q.clone(), column(*c)))
        .collect();
    let anonymizer = Anonymizer::new(columns, hierarchies, sensitive_column.map(column)).map_err(|e| match e {
        MaskError::NotInHierarchy { column, row, value } => {
            let path = args
                .qi
                .iter()
                .position(|q| *q == column)
                .map(|i| paths[i].display().to_string())
                .unwrap_or_default();
            anyhow::anyhow!(
                "{}: line {} (row {row}), column {column}: value {value:?} is not in the hierarchy {path}",
                args.input.display(),
                row + 1
            )
        }
        e => anyhow::Error::new(e).context("cannot anonymize"),
    })?;

    let config = Config {
        k: args.k,
        l,
        t: args.t,
        suppression_limit: args.suppression,
        metric,
    };
    let search_started = Instant::now();
    let solution = anonymizer.search(&config).context("cannot anonymize")?;
    let search_ms = search_started.elapsed().as_secs_f64() * 1e3;
    let generalized = anonymizer.apply(&config, &solution.levels)?;

    write(&args.out, delimiter, &header, &records, &qi_columns, &generalized)?;

    let levels: serde_json::Map<String, serde_json::Value> = args
        .qi
        .iter()
        .zip(&solution.levels)
        .map(|(q, l)| (q.clone(), serde_json::Value::from(*l)))
        .collect();
    let report = serde_json::json!({
        "levels": levels,
        "score": solution.score,
        "suppressed": solution.suppressed,
        "classes": solution.classes,
        "metric": metric.name(),
        "rows": anonymizer.rows(),
        "k": args.k,
        "l": args.l,
        "diversity": args.l.map(|_| args.diversity.as_str()),
        "t": args.t,
        "suppression": args.suppression,
        "nodes": solution.nodes,
        "tables": solution.tables,
        "out": args.out.display().to_string(),
        "elapsed_ms": search_ms,
        "total_ms": started.elapsed().as_secs_f64() * 1e3,
    });
    println!("{report}");
    Ok(())
}

/// `COLUMN=FILE` pairs.
fn explicit_hierarchies(pairs: &[String]) -> Result<HashMap<&str, PathBuf>> {
    let mut out = HashMap::new();
    for p in pairs {
        let Some((column, file)) = p.split_once('=') else {
            bail!("--hierarchy {p:?}: write COLUMN=FILE");
        };
        out.insert(column.trim(), PathBuf::from(file.trim()));
    }
    Ok(out)
}

/// The table with its quasi-identifiers replaced.
fn write(
    out: &Path,
    delimiter: u8,
    header: &[String],
    records: &[csv::StringRecord],
    qi_columns: &[usize],
    generalized: &[Vec<&str>],
) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    w.write_record(header)?;
    let mut row: Vec<&str> = Vec::with_capacity(header.len());
    for (r, g) in records.iter().zip(generalized) {
        row.clear();
        row.extend(r.iter());
        for (c, v) in qi_columns.iter().zip(g) {
            row[*c] = v;
        }
        w.write_record(&row)?;
    }
    w.flush().with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}
