//! Jobs end to end, as a developer calls them: `POST /api/v1/workspaces/{id}/jobs` on a running
//! `shuyu demo`, then polling `GET /api/v1/jobs/{id}` until it is done — submit → done, with
//! every part of the governed path in it (the queue, the vault's decryption, the scenario's
//! view, the output algebra, per-entity evidence, the gate's checks, staging the encrypted
//! output and its members, the audit log). The baselines of the same run are the same
//! analysis in raw DataFusion and in DuckDB (`pip install duckdb`) over the same rows as plain
//! Parquet: the demo city regenerated from its seed and imported by the same importer, then
//! written unencrypted, each query reading its files anew.
//!
//! ```sh
//! cargo bench -p shuyu --bench jobs                   # SF 1, five runs of each analysis
//! SHUYU_BENCH_SCALE=0.1 SHUYU_BENCH_RUNS=3 cargo bench -p shuyu --bench jobs
//! SHUYU_BENCH_DIR=/var/tmp/jobs cargo bench -p shuyu --bench jobs    # keep the city between runs
//! ```
//!
//! It prints one Markdown table (BENCHMARKS.md, "Jobs end to end").

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_shuyu");
const SEED: u64 = 42;

/// One analysis: who runs it in which workspace, the SQL a developer submits (over the
/// scenario's view: a birth date a reviewer generalized to its year is a year), the same
/// analysis over the raw rows, and the raw columns it reads.
struct Analysis {
    name: &'static str,
    developer: &'static str,
    scenario: &'static str,
    governed: &'static str,
    raw: &'static str,
    reads: &'static [(&'static str, &'static [&'static str])],
}

const ANALYSES: &[Analysis] = &[
    Analysis {
        name: "population by county × birth decade",
        developer: "health.lin",
        scenario: "医疗",
        governed: "SELECT region, floor(CAST(birth_date AS INT) / 10) * 10 AS decade, COUNT(*) AS people FROM population GROUP BY region, floor(CAST(birth_date AS INT) / 10) * 10",
        raw: "SELECT region, floor(date_part('year', birth_date) / 10) * 10 AS decade, COUNT(*) AS people FROM population GROUP BY region, floor(date_part('year', birth_date) / 10) * 10",
        reads: &[("population", &["region", "birth_date"])],
    },
    Analysis {
        name: "medical visits ⋈ population by county × ICD-10 chapter",
        developer: "health.lin",
        scenario: "医疗",
        governed: "SELECT p.region, substr(v.icd10, 1, 1) AS chapter, COUNT(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region, substr(v.icd10, 1, 1)",
        raw: "SELECT p.region, substr(v.icd10, 1, 1) AS chapter, COUNT(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region, substr(v.icd10, 1, 1)",
        reads: &[
            ("medical_visit", &["person_id", "icd10"]),
            ("population", &["person_id", "region"]),
        ],
    },
    Analysis {
        name: "patients by county (distinct people)",
        developer: "health.lin",
        scenario: "医疗",
        governed: "SELECT p.region, COUNT(DISTINCT v.person_id) AS patients FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region",
        raw: "SELECT p.region, COUNT(DISTINCT v.person_id) AS patients FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region",
        reads: &[
            ("medical_visit", &["person_id"]),
            ("population", &["person_id", "region"]),
        ],
    },
    Analysis {
        name: "enterprise capital by industry section",
        developer: "fintech.huang",
        scenario: "金融",
        governed: "SELECT substr(industry, 1, 1) AS section, SUM(registered_capital) AS capital FROM enterprise GROUP BY substr(industry, 1, 1)",
        raw: "SELECT substr(industry, 1, 1) AS section, SUM(registered_capital) AS capital FROM enterprise GROUP BY substr(industry, 1, 1)",
        reads: &[("enterprise", &["industry", "registered_capital"])],
    },
    Analysis {
        name: "social-insurance wage by county × year",
        developer: "fintech.huang",
        scenario: "金融",
        governed: "SELECT e.region, substr(s.month, 1, 4) AS year, AVG(s.base_wage) AS mean_wage FROM social_insurance s JOIN enterprise e ON s.employer_uscc = e.uscc GROUP BY e.region, substr(s.month, 1, 4)",
        raw: "SELECT e.region, substr(s.month, 1, 4) AS year, AVG(s.base_wage) AS mean_wage FROM social_insurance s JOIN enterprise e ON s.employer_uscc = e.uscc GROUP BY e.region, substr(s.month, 1, 4)",
        reads: &[
            ("social_insurance", &["employer_uscc", "month", "base_wage"]),
            ("enterprise", &["uscc", "region"]),
        ],
    },
    Analysis {
        name: "electricity by month",
        developer: "fintech.huang",
        scenario: "金融",
        governed: "SELECT month, SUM(kwh) AS kwh FROM electricity GROUP BY month",
        raw: "SELECT month, SUM(kwh) AS kwh FROM electricity GROUP BY month",
        reads: &[("electricity", &["month", "kwh"])],
    },
    Analysis {
        name: "tax filings by year × revenue band",
        developer: "fintech.huang",
        scenario: "金融",
        // `tax_paid` is not among the finance scenario's approved fields: filings only.
        governed: "SELECT year, revenue_band, COUNT(*) AS filings FROM tax_payment GROUP BY year, revenue_band",
        raw: "SELECT year, revenue_band, COUNT(*) AS filings FROM tax_payment GROUP BY year, revenue_band",
        reads: &[("tax_payment", &["year", "revenue_band"])],
    },
    Analysis {
        name: "contributors by month (distinct people, 12 M records)",
        developer: "fintech.huang",
        scenario: "核验",
        governed: "SELECT month, COUNT(DISTINCT person_id) AS contributors FROM social_insurance GROUP BY month",
        raw: "SELECT month, COUNT(DISTINCT person_id) AS contributors FROM social_insurance GROUP BY month",
        reads: &[("social_insurance", &["month", "person_id"])],
    },
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The tables the analyses read, as plain Parquet: generated from the seed, imported by the
/// same importer as the demo's (so the same rows are accepted), read back and written
/// unencrypted. Kept in `dir/plain` between runs.
fn plain_parquet(rt: &tokio::runtime::Runtime, dir: &Path, scale: f64) -> BTreeMap<String, PathBuf> {
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).expect("plain dir");
    let mut tables: Vec<&str> = ANALYSES.iter().flat_map(|a| a.reads.iter().map(|(t, _)| *t)).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut out = BTreeMap::new();
    let key = shuyu_keyring::MasterKey::from_bytes([7u8; 32]);
    let vault = shuyu_vault::Vault::local(&dir.join("bench-vault"), key).expect("vault");
    for t in tables {
        let file = plain.join(format!("{t}.parquet"));
        if !file.exists() {
            let started = Instant::now();
            let csv_dir = dir.join("city");
            let info = shuyu_democity::generate_dataset(
                &csv_dir,
                &shuyu_democity::Options { scale, seed: SEED },
                t,
                &mut |_, _, _| {},
            )
            .expect("generate")
            .expect("a dataset of the city");
            let imported = rt
                .block_on(shuyu_import::import_file(
                    &csv_dir.join(&info.file),
                    &shuyu_import::Options::default(),
                    &vault,
                    t,
                    &format!("{t}.parquet"),
                ))
                .expect("import");
            let sealed = imported.data.expect("rows");
            let batches = rt
                .block_on(vault.read(t, &sealed.path, &sealed.wrapped_key, None))
                .expect("read back");
            let tmp = file.with_extension("tmp");
            let f = std::fs::File::create(&tmp).expect("create");
            let mut w = ArrowWriter::try_new(f, batches[0].schema(), None).expect("writer");
            for b in &batches {
                w.write(b).expect("write");
            }
            w.close().expect("close");
            std::fs::rename(&tmp, &file).expect("rename");
            let _ = std::fs::remove_file(csv_dir.join(&info.file));
            let _ = rt.block_on(vault.delete(&sealed.path));
            eprintln!(
                "plain {t}: {} rows in {:.1} s",
                sealed.rows,
                started.elapsed().as_secs_f64()
            );
        }
        out.insert(t.to_string(), file);
    }
    out
}

/// Reads one table's columns from plain Parquet, its row groups decoded in parallel (as
/// DataFusion's own Parquet scan would), for a `MemTable`.
fn read_plain(file: &Path, columns: &[&str]) -> Vec<RecordBatch> {
    let open = || {
        let f = std::fs::File::open(file).expect("open");
        ParquetRecordBatchReaderBuilder::try_new(f).expect("parquet")
    };
    let b = open();
    let groups = b.metadata().num_row_groups();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mine: Vec<usize> = (0..groups).filter(|g| g % threads == t).collect();
                    if mine.is_empty() {
                        return Vec::new();
                    }
                    let b = open();
                    let schema = b.schema().clone();
                    let roots: Vec<usize> = columns.iter().map(|c| schema.index_of(c).expect("column")).collect();
                    let mask = ProjectionMask::roots(b.parquet_schema(), roots);
                    b.with_row_groups(mine)
                        .with_projection(mask)
                        .with_batch_size(64 * 1024)
                        .build()
                        .expect("reader")
                        .collect::<Result<Vec<_>, _>>()
                        .expect("decode")
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("decoder")).collect()
    })
}

/// Raw DataFusion: read the files, run the SQL, collect — what a job would do without shuyu.
async fn datafusion_once(a: &Analysis, files: &BTreeMap<String, PathBuf>) -> (f64, usize) {
    let started = Instant::now();
    let ctx = SessionContext::new();
    for (table, columns) in a.reads {
        let file = files[*table].clone();
        let cols: Vec<&str> = columns.to_vec();
        let batches = tokio::task::spawn_blocking(move || read_plain(&file, &cols))
            .await
            .expect("decode");
        let schema = batches[0].schema();
        let partitions: Vec<Vec<RecordBatch>> = batches.chunks(4).map(<[RecordBatch]>::to_vec).collect();
        ctx.register_table(*table, Arc::new(MemTable::try_new(schema, partitions).expect("table")))
            .expect("register");
    }
    let rows: usize = ctx
        .sql(a.raw)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    (started.elapsed().as_secs_f64(), rows)
}

/// DuckDB over the same files: the Python wheel, timed inside the interpreter.
fn duckdb(files: &BTreeMap<String, PathBuf>, runs: usize) -> Option<Vec<(Vec<f64>, usize)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb_baseline.py");
    let input = json!({
        "tables": files.iter().map(|(k, v)| (k.clone(), v.display().to_string())).collect::<BTreeMap<_, _>>(),
        "queries": ANALYSES.iter().map(|a| a.raw).collect::<Vec<_>>(),
        "runs": runs,
    });
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.to_string().as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        eprintln!("DuckDB baseline did not run (pip install duckdb)");
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array().map(|l| {
        l.iter()
            .map(|q| {
                let times = q["times"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                (times, q["rows"].as_u64().unwrap_or(0) as usize)
            })
            .collect()
    })
}

/// The demo on `dir/demo`: started (building the city on a first run), its logins read.
fn start_demo(dir: &Path, scale: f64) -> (Child, String, BTreeMap<String, String>) {
    let data = dir.join("demo");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["demo", "--scale", &scale.to_string(), "--seed", &SEED.to_string()])
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("SHUYU_LANG", "en")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("shuyu demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(c) = line.trim().strip_prefix("console:") {
            base = Some(c.trim().trim_end_matches("/console/").to_string());
        }
        if line.contains("demo-credentials.txt") {
            break;
        }
    }
    // Keep draining so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let base = base.expect("the demo's console URL");
    let creds = std::fs::read_to_string(data.join("demo-credentials.txt")).expect("credentials");
    let logins = creds
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 4).then(|| (f[2].to_string(), f[3].to_string()))
        })
        .collect();
    eprintln!("demo up in {:.1} s at {base}", started.elapsed().as_secs_f64());
    (child, base, logins)
}

struct Api {
    http: reqwest::Client,
    base: String,
    tokens: BTreeMap<String, String>,
}

impl Api {
    async fn token(&mut self, user: &str, logins: &BTreeMap<String, String>) -> String {
        if let Some(t) = self.tokens.get(user) {
            return t.clone();
        }
        let r: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": user, "password": logins[user]}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login body");
        let t = r["token"].as_str().expect("token").to_string();
        self.tokens.insert(user.to_string(), t.clone());
        t
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("body")
    }

    /// Submit → done, as the developer sees it.
    async fn job_once(&self, token: &str, workspace: &str, a: &Analysis) -> (f64, Value) {
        let started = Instant::now();
        let r = self
            .http
            .post(format!("{}/api/v1/workspaces/{workspace}/jobs", self.base))
            .bearer_auth(token)
            .json(&json!({"outputs": [{"name": "out", "sql": a.governed}]}))
            .send()
            .await
            .expect("submit");
        assert_eq!(r.status(), 202, "{}: {}", a.name, r.text().await.unwrap_or_default());
        let job: Value = r.json().await.expect("job");
        let id = job["id"].as_str().expect("id").to_string();
        loop {
            let j = self.get(&format!("/api/v1/jobs/{id}"), token).await;
            if j["state"] != "queued" && j["state"] != "running" {
                assert_eq!(j["state"], "done", "{}: {j}", a.name);
                return (started.elapsed().as_secs_f64(), j);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn main() {
    let scale: f64 = env_or("SHUYU_BENCH_SCALE", 1.0);
    let runs: usize = env_or("SHUYU_BENCH_RUNS", 5).max(1);
    let kept = std::env::var("SHUYU_BENCH_DIR").ok().map(PathBuf::from);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = kept.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let files = plain_parquet(&rt, &dir, scale);
    let (mut demo, base, logins) = start_demo(&dir, scale);

    let mut api = Api {
        http: {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        },
        base,
        tokens: BTreeMap::new(),
    };
    let mut governed: Vec<(Vec<f64>, Value)> = Vec::new();
    let mut raw: Vec<(Vec<f64>, usize)> = Vec::new();
    rt.block_on(async {
        for a in ANALYSES {
            let token = api.token(a.developer, &logins).await;
            let list = api.get("/api/v1/workspaces", &token).await;
            let ws = list["items"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|w| w["scenario"].as_str().is_some_and(|s| s.contains(a.scenario)))
                })
                .and_then(|w| w["id"].as_str())
                .unwrap_or_else(|| panic!("the {} workspace of {}", a.scenario, a.developer))
                .to_string();
            // One run of each side to warm the page cache and the planners, then the runs,
            // the three sides interleaved so that a slow moment of the machine hits all.
            let (_, last) = api.job_once(&token, &ws, a).await;
            let _ = datafusion_once(a, &files).await;
            let (mut g, mut d) = (Vec::new(), Vec::new());
            let mut rows = 0;
            let mut view = last;
            for _ in 0..runs {
                let (t, j) = api.job_once(&token, &ws, a).await;
                g.push(t);
                view = j;
                let (t, r) = datafusion_once(a, &files).await;
                d.push(t);
                rows = r;
            }
            eprintln!(
                "{}: governed {:.3} s, DataFusion {:.3} s ({rows} cells), verdict {}",
                a.name,
                median(&mut g.clone()),
                median(&mut d.clone()),
                view["outputs"][0]["verdict"]
            );
            governed.push((g, view));
            raw.push((d, rows));
        }
    });
    let _ = demo.kill();
    let _ = demo.wait();
    let duck = duckdb(&files, runs);

    println!("\nSF {scale}, {runs} runs each (medians, seconds):\n");
    println!(
        "| analysis | cells | governed job, submit → done | raw DataFusion | DuckDB | vs DataFusion | vs DuckDB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, a) in ANALYSES.iter().enumerate() {
        let g = median(&mut governed[i].0);
        let d = median(&mut raw[i].0);
        let (k, kcells) = duck
            .as_ref()
            .map_or((f64::NAN, 0), |l| (median(&mut l[i].0.clone()), l[i].1));
        if duck.is_some() {
            assert_eq!(
                kcells, raw[i].1,
                "{}: DuckDB and DataFusion disagree on the cells",
                a.name
            );
        }
        println!(
            "| {} | {} | {g:.3} | {d:.3} | {k:.3} | {:.2}× | {:.2}× |",
            a.name,
            raw[i].1,
            g / d,
            g / k
        );
    }
}
