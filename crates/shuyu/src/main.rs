//! The `shuyu` binary: `init`, `serve`, `demo`, `demo-data`, `import`, `audit`, `lineage`, `version`.
//!
//! Human output goes to stdout; logs (JSON by default) go to stderr.

mod anonymize_cmd;
mod audit_cmd;
mod city;
mod config;
mod data_cmd;
mod gate_cmd;
mod key_cmd;
mod walk;
mod witness;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use shuyu_catalog::Catalog;
use shuyu_core::clock::{Clock, SharedClock, SignedDuration, SystemClock};
use shuyu_core::error::Message;
use shuyu_core::i18n::{Lang, render};
use shuyu_identity::{Identity, bootstrap, secrets};
use shuyu_keyring::MasterKey;
use shuyu_ledger::Ledger;
use shuyu_policy::Policies;
use shuyu_store::Store;
use shuyu_vault::Vault;

use crate::config::{Config, DEFAULT_DATA_DIR, Overrides};

/// shuyu (数域): the public data authorized-operation platform.
#[derive(Parser, Debug)]
#[command(name = "shuyu", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone, Default)]
struct Common {
    /// Configuration file (TOML). Default: DATA_DIR/shuyu.toml if it exists.
    #[arg(long, env = "SHUYU_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory: SQLite database, master key, vault.
    #[arg(long, env = "SHUYU_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Metadata database: sqlite://PATH (default: DATA_DIR/shuyu.db) or postgres://USER@HOST/DB.
    #[arg(long, env = "SHUYU_DATABASE_URL", global = true)]
    database_url: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
struct Listen {
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, env = "SHUYU_LISTEN")]
    listen: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the data directory, database, master key and the first authority administrator.
    Init {
        #[command(flatten)]
        common: Common,
        /// Username of the first administrator.
        #[arg(long, default_value = "admin")]
        admin_username: String,
    },
    /// Run the server.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
    },
    /// Run the demo city: a data dir seeded with its organisations, users and data (imported once), then serve.
    Demo {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
        /// Size of the city's data (1 = a million residents); imported on the first start only.
        #[arg(long, default_value_t = 0.01)]
        scale: f64,
        /// Seed of the synthetic data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write the demo city's synthetic datasets (DEMO_CITY.md) and their manifest into a directory.
    DemoData {
        /// Size: 1 = a million residents, 12 million social-insurance rows.
        #[arg(long, default_value_t = 0.01)]
        scale: f64,
        /// Seed; the same seed and scale give byte-identical files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Only this dataset (repeat for several; default: the whole city).
        #[arg(long = "dataset", value_name = "NAME")]
        only: Vec<String>,
    },
    /// Import a file as a new version of a provider's dataset (on the host, as that provider's user).
    Import {
        #[command(flatten)]
        common: Common,
        /// The provider's user the import is recorded as.
        #[arg(long)]
        user: String,
        /// The dataset's name (2–64 lowercase letters, digits, _).
        #[arg(long)]
        dataset: String,
        /// The dataset's title, on its first import.
        #[arg(long)]
        title: Option<String>,
        /// csv, xlsx, parquet or jsonl (default: from the file name).
        #[arg(long)]
        format: Option<String>,
        /// Text encoding of a CSV: utf-8, gbk, gb18030 … (default: detected).
        #[arg(long)]
        encoding: Option<String>,
        /// quarantine (keep good rows, set bad ones aside) or reject (keep nothing if a row is bad).
        #[arg(long, default_value = "quarantine")]
        on_error: String,
        /// A column's type instead of the inferred one, COLUMN=TYPE (repeatable).
        #[arg(long = "type", value_name = "COLUMN=TYPE")]
        types: Vec<String>,
        /// Accept the version at once (it becomes the dataset's version in use).
        #[arg(long)]
        accept: bool,
        /// With --accept: a breaking change against the current version, confirmed by its
        /// key as the report names it (e.g. column_removed:region, rows_jump; repeatable).
        #[arg(long = "confirm", value_name = "CHANGE")]
        confirm: Vec<String>,
        /// The file.
        file: PathBuf,
    },
    /// The tamper-evident audit log: export, verify, witness, checkpoint.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Lineage: what derives from a node, or where it came from.
    Lineage {
        #[command(flatten)]
        common: Common,
        /// Most steps to follow.
        #[arg(long, default_value_t = 16)]
        depth: u32,
        #[command(subcommand)]
        direction: LineageDirection,
    },
    /// The master key: rotate it (every wrapped key re-wrapped, no data rewritten).
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Generalize a CSV's quasi-identifiers optimally for k-anonymity (ℓ-diversity, t-closeness) as ARX would; prints JSON.
    Anonymize(anonymize_cmd::AnonymizeArgs),
    /// Watermarks: name the release and recipient a leaked copy (CSV or XLSX) came from.
    Watermark {
        #[command(subcommand)]
        command: WatermarkCommand,
    },
    /// The disclosure gate offline: check a query's output over local files; prints JSON.
    Gate {
        #[command(subcommand)]
        command: gate_cmd::GateCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum WatermarkCommand {
    /// Read a leaked table (CSV or XLSX) and name the release and recipient whose watermark it
    /// carries, among every release of this installation; prints one JSON object.
    Detect {
        #[command(flatten)]
        common: Common,
        /// The leaked file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum MasterKeyCommand {
    /// Replace the master key with a fresh one: re-wrap every dataset key and the audit log's
    /// signing key, check every vault object opens with its new wrapped key, commit, audit.
    /// Stop the server first.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Write a portable bundle (entries.jsonl, checkpoint.json, log-public-key.pem) after signing a checkpoint.
    Export {
        #[command(flatten)]
        common: Common,
        /// An empty directory to write the bundle into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle (DIR) with only its own files, or the live store of --data-dir.
    Verify {
        #[command(flatten)]
        common: Common,
        /// The bundle directory; without it, the store of --data-dir is verified.
        dir: Option<PathBuf>,
    },
    /// Sign a checkpoint of the log now.
    Checkpoint {
        #[command(flatten)]
        common: Common,
    },
    /// Witness the platform's log: check the latest checkpoint against the last one seen, countersign it.
    Witness {
        /// The platform's base URL, e.g. https://shuyu.example.gov.cn
        #[arg(long)]
        url: String,
        /// The witness's state file (created on first run; keep it: it pins the log key and what was seen).
        #[arg(long)]
        state: PathBuf,
        /// A supervisor's API key or session token.
        #[arg(long, env = "SHUYU_TOKEN", hide_env_values = true)]
        token: String,
        /// The witness's name on its cosignatures.
        #[arg(long)]
        name: Option<String>,
        /// The log's public key (PEM) to pin instead of trusting the first one served.
        #[arg(long)]
        log_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum LineageDirection {
    /// Everything that derives from NODE (kind:id).
    Derived {
        /// The node, kind:id.
        node: String,
    },
    /// Everything NODE (kind:id) comes from.
    Sources {
        /// The node, kind:id.
        node: String,
    },
}

/// An error with its own exit code (1: not verified; 3: fork or key change detected).
#[derive(Debug)]
pub(crate) struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    pub(crate) fn new(code: u8, message: String) -> Self {
        Self { code, message }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn overrides(common: &Common, listen: Option<&Listen>) -> Overrides {
    Overrides {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        listen: listen.and_then(|l| l.listen.clone()),
        database_url: common.database_url.clone(),
    }
}

/// The language of the terminal: `SHUYU_LANG`, then `LANG`; Chinese by default.
fn cli_lang() -> Lang {
    std::env::var("SHUYU_LANG")
        .ok()
        .and_then(|v| Lang::from_tag(&v))
        .or_else(|| {
            std::env::var("LANG")
                .ok()
                .and_then(|v| Lang::from_tag(v.split('.').next().unwrap_or("")))
        })
        .unwrap_or_default()
}

fn init_tracing(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log_format == "text" {
        let _ = builder.try_init();
    } else {
        let _ = builder.json().flatten_event(true).with_current_span(true).try_init();
    }
}

/// A reader that stops early (`shuyu gate check … | head`) closes the pipe: the rest of the
/// output has nowhere to go and the command ends quietly, as Unix tools do, instead of
/// panicking in the middle of a `println!`. Every other panic is reported as before.
fn end_quietly_on_a_closed_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to std") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}

fn main() -> std::process::ExitCode {
    end_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(exit) => {
                eprintln!("{}", exit.message);
                std::process::ExitCode::from(exit.code)
            }
            None => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Anonymize(args) => anonymize_cmd::run(&args),
        Command::Gate { command } => gate_cmd::run(command).await,
        Command::Watermark {
            command: WatermarkCommand::Detect { common, file },
        } => {
            let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
            let store = open_store(&cfg).await?;
            let master = key_cmd::open_master_key(&cfg, &store).await?;
            let found = shuyu_engine::attribute(&store, &master, &file)
                .await
                .map_err(|e| anyhow::anyhow!("{}", render(cli_lang(), &shuyu_core::error::UserFacing::message(&e))))?;
            store.close().await;
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(())
        }
        Command::Version => {
            println!("shuyu {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Init { common, admin_username } => {
            let cfg = Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?;
            init_tracing(&cfg);
            init(&cfg, &admin_username).await
        }
        Command::Serve { common, listen } => {
            let cfg = Config::load(&overrides(&common, Some(&listen)), DEFAULT_DATA_DIR)?;
            init_tracing(&cfg);
            serve(cfg).await
        }
        Command::Audit { command } => match command {
            AuditCommand::Export { common, out } => {
                let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
                audit_cmd::export(&cfg, &out).await
            }
            AuditCommand::Verify { common, dir } => match dir {
                Some(dir) => audit_cmd::verify_bundle(&dir),
                None => {
                    let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
                    audit_cmd::verify_live(&cfg).await
                }
            },
            AuditCommand::Checkpoint { common } => {
                let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
                audit_cmd::checkpoint(&cfg).await
            }
            AuditCommand::Witness {
                url,
                state,
                token,
                name,
                log_key,
            } => witness::run(&url, &state, &token, name.as_deref(), log_key.as_deref()).await,
        },
        Command::MasterKey {
            command: MasterKeyCommand::Rotate { common },
        } => {
            let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
            let done = key_cmd::rotate(&cfg).await?;
            println!(
                "{}",
                render(
                    cli_lang(),
                    &Message::new("cli.key.rotated")
                        .arg("keys", done.keys.to_string())
                        .arg("rows", done.rows.to_string())
                )
            );
            Ok(())
        }
        Command::Lineage {
            common,
            depth,
            direction,
        } => {
            let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
            match direction {
                LineageDirection::Derived { node } => audit_cmd::lineage(&cfg, true, &node, depth).await,
                LineageDirection::Sources { node } => audit_cmd::lineage(&cfg, false, &node, depth).await,
            }
        }
        Command::Demo {
            common,
            listen,
            scale,
            seed,
        } => {
            let mut cfg = Config::load(&overrides(&common, Some(&listen)), "./shuyu-demo")?;
            if std::env::var("SHUYU_LOG").is_err() {
                cfg.log_level = "warn".into();
            }
            init_tracing(&cfg);
            demo(cfg, scale, seed).await
        }
        Command::DemoData { scale, seed, out, only } => {
            data_cmd::demo_data(&out, scale, seed, &only, cli_lang()).map(|m| data_cmd::print_manifest(&m))
        }
        Command::Import {
            common,
            user,
            dataset,
            title,
            format,
            encoding,
            on_error,
            types,
            accept,
            confirm,
            file,
        } => {
            let cfg = quiet(Config::load(&overrides(&common, None), DEFAULT_DATA_DIR)?);
            let mut overrides = std::collections::BTreeMap::new();
            for t in &types {
                let Some((col, ty)) = t.split_once('=') else {
                    bail!("--type {t:?}: write COLUMN=TYPE, e.g. --type owner_id=party_id");
                };
                overrides.insert(col.trim().to_string(), ty.trim().to_string());
            }
            let req = shuyu_catalog::ImportRequest {
                format,
                encoding,
                on_error: Some(on_error),
                overrides,
            };
            let accept = accept.then_some(confirm.as_slice());
            import(&cfg, &user, &dataset, title.as_deref(), &req, accept, &file).await
        }
    }
}

/// A one-shot tool logs warnings only (its output is for people).
fn quiet(mut cfg: Config) -> Config {
    if std::env::var("SHUYU_LOG").is_err() {
        cfg.log_level = "warn".into();
    }
    init_tracing(&cfg);
    cfg
}

/// Opens the store of an initialised data directory (and says so clearly when it is not).
pub(crate) async fn open_existing_store(cfg: &Config) -> Result<Store> {
    if !cfg.data_dir.exists() {
        let dir = cfg.data_dir.display().to_string();
        bail!(
            "{}",
            render(cli_lang(), &Message::new("error.not_initialised").arg("dir", dir))
        );
    }
    let store = open_store(cfg).await?;
    if bootstrap::initialised_at(&store).await?.is_none() {
        let dir = cfg.data_dir.display().to_string();
        bail!(
            "{}",
            render(cli_lang(), &Message::new("error.not_initialised").arg("dir", dir))
        );
    }
    Ok(store)
}

/// Creates the data directory (mode 0700 on Unix).
fn create_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Writes a new file readable only by its owner; never overwrites.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Creates the master key (256 random bits, hex, mode 0600) unless it exists. Returns whether it was created.
fn ensure_master_key(path: &Path) -> Result<bool> {
    if path.exists() {
        load_master_key(path)?;
        return Ok(false);
    }
    MasterKey::create(path)?;
    Ok(true)
}

/// Reads the master key, warning when its file is readable by others.
pub(crate) fn load_master_key(path: &Path) -> Result<MasterKey> {
    let (key, exposed) = MasterKey::load(path)?;
    if exposed {
        tracing::warn!(path = %path.display(), "the master key is readable by other users; chmod 600 it");
    }
    Ok(key)
}

async fn open_store(cfg: &Config) -> Result<Store> {
    let store = Store::connect(&cfg.database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            shuyu_store::redact_url(&cfg.database_url)
        )
    })?;
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store)
}

async fn init(cfg: &Config, admin_username: &str) -> Result<()> {
    create_data_dir(&cfg.data_dir)?;
    let key_created = ensure_master_key(&cfg.master_key_path())?;
    let store = open_store(cfg).await?;
    let clock = SystemClock;
    let done = bootstrap::initialise(&store, &clock, &city::regions(), city::AUTHORITY, admin_username, true).await?;
    // The audit log's signing key is created now, wrapped under the master key.
    let master = load_master_key(&cfg.master_key_path())?;
    Ledger::open(store.clone(), &master, Arc::new(SystemClock))
        .await
        .context("cannot set up the audit log key")?;
    store.close().await;
    let lang = cli_lang();
    match done {
        Some(created) => {
            eprintln!(
                "{}",
                render(
                    lang,
                    &Message::new("cli.init.done").arg("dir", cfg.data_dir.display().to_string())
                )
            );
            println!("username: {}", created.username);
            println!("password: {}", created.password.expose());
            eprintln!(
                "{}",
                render(
                    lang,
                    &Message::new("cli.init.next").arg("dir", cfg.data_dir.display().to_string())
                )
            );
        }
        None => {
            let mut note = render(
                lang,
                &Message::new("cli.init.already").arg("dir", cfg.data_dir.display().to_string()),
            );
            if key_created {
                note.push_str(&render(lang, &Message::new("cli.init.key_created")));
            }
            eprintln!("{note}");
        }
    }
    Ok(())
}

async fn build_state(cfg: &Config, store: Store) -> Result<shuyu_server::AppState> {
    key_cmd::hold_serve_lock(cfg)?;
    let master = key_cmd::open_master_key(cfg, &store).await?;
    if bootstrap::initialised_at(&store).await?.is_none() {
        let dir = cfg.data_dir.display().to_string();
        bail!(
            "{}",
            render(cli_lang(), &Message::new("error.not_initialised").arg("dir", dir))
        );
    }
    let policies = Arc::new(Policies::load().context("authorization policies do not load")?);
    let clock: SharedClock = if cfg.clock_offset_days == 0 {
        Arc::new(SystemClock)
    } else {
        tracing::warn!(
            days = cfg.clock_offset_days,
            "SHUYU_CLOCK_OFFSET_DAYS is set: this server's clock is shifted (drills and tests only)"
        );
        Arc::new(shuyu_core::clock::OffsetClock::new(SignedDuration::from_hours(
            cfg.clock_offset_days * 24,
        )))
    };
    let ledger = Arc::new(
        Ledger::open(store.clone(), &master, clock.clone())
            .await
            .context("cannot open the audit log (is this the data directory's own master key?)")?,
    );
    ledger.clone().spawn_periodic(cfg.checkpoint_interval);
    let identity = Identity::new(store, policies, clock, cfg.identity.clone()).await?;
    let catalog = open_catalog(cfg, identity.clone(), master.clone())?;
    // What a crash left behind: half-received uploads and vault objects no version refers to.
    let _ = std::fs::remove_dir_all(&cfg.server.upload_dir);
    let swept = catalog.sweep().await.context("cannot sweep the vault")?;
    if swept > 0 {
        tracing::warn!(files = swept, "removed files an interrupted import left in the vault");
    }
    let lifecycle = shuyu_workflow::service::Lifecycle::new(identity.clone(), ledger.clone());
    let workspaces = open_workspaces(cfg, identity.clone(), lifecycle.clone(), master)?;
    let state = shuyu_server::state(identity, ledger, catalog, lifecycle, workspaces, cfg.server.clone())
        .context("cannot set up metrics")?;
    // Workspaces open when a data request is approved, and are sealed when it no longer is.
    state
        .workspaces
        .clone()
        .spawn_syncer(std::time::Duration::from_secs(60));
    // Jobs run on full data as they are submitted; a restart re-queues the interrupted ones.
    state.workspaces.clone().spawn_job_runner();
    // What time changed (agreements past their term, overdue rectifications, calls past their
    // deadline, notices whose period is over) is recorded before the first request, then every minute.
    let changed = state
        .lifecycle
        .sweep()
        .await
        .context("cannot record what time changed in the lifecycle")?;
    if changed > 0 {
        tracing::info!(changed, "the lifecycle sweep recorded what time changed");
    }
    state
        .lifecycle
        .clone()
        .spawn_sweeper(std::time::Duration::from_secs(60));
    Ok(state)
}

/// The workspace service over the data directory's vault (the engine reads full data there).
pub(crate) fn open_workspaces(
    cfg: &Config,
    identity: Identity,
    lifecycle: shuyu_workflow::service::Lifecycle,
    master: MasterKey,
) -> Result<shuyu_engine::Workspaces> {
    let vault = Vault::local(&cfg.data_dir, master.clone())
        .with_context(|| format!("cannot open the vault in {}", cfg.data_dir.display()))?;
    shuyu_engine::Workspaces::new(identity, lifecycle, vault, master)
        .with_settings(cfg.sample.clone(), cfg.query)
        .map(|w| w.with_gate(cfg.gate.clone()))
        .context("the [workspaces] settings are not valid")
}

/// The datasets service over the data directory's vault.
pub(crate) fn open_catalog(cfg: &Config, identity: Identity, master: MasterKey) -> Result<Catalog> {
    let vault = Vault::local(&cfg.data_dir, master)
        .with_context(|| format!("cannot open the vault in {}", cfg.data_dir.display()))?;
    Ok(Catalog::new(identity, vault))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn bind(cfg: &Config) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))
}

async fn serve(cfg: Config) -> Result<()> {
    if !cfg.data_dir.exists() {
        let dir = cfg.data_dir.display().to_string();
        bail!(
            "{}",
            render(cli_lang(), &Message::new("error.not_initialised").arg("dir", dir))
        );
    }
    let store = open_store(&cfg).await?;
    let state = build_state(&cfg, store.clone()).await?;
    let listener = bind(&cfg).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %shuyu_store::redact_url(&cfg.database_url), config = ?cfg.source, "listening");
    println!("shuyu listening on http://{addr}/");
    let _ = std::io::stdout().flush();
    shuyu_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

/// One printed demo login.
struct DemoLogin {
    org: String,
    kind: String,
    username: String,
    password: String,
}

/// Terminal columns taken by `s`: CJK characters are two wide.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum()
}

const CREDENTIALS_FILE: &str = "demo-credentials.txt";

fn read_credentials(path: &Path) -> Vec<DemoLogin> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some(DemoLogin {
                        org: f.next()?.into(),
                        kind: f.next()?.into(),
                        username: f.next()?.into(),
                        password: f.next()?.into(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `shuyu import`: one file into the vault as a provider's user, with the report printed.
async fn import(
    cfg: &Config,
    user: &str,
    dataset: &str,
    title: Option<&str>,
    req: &shuyu_catalog::ImportRequest,
    accept: Option<&[String]>,
    file: &Path,
) -> Result<()> {
    let lang = cli_lang();
    if !file.is_file() {
        bail!(
            "{}",
            render(
                lang,
                &Message::new("cli.data.no_file").arg("path", file.display().to_string())
            )
        );
    }
    let store = open_existing_store(cfg).await?;
    let master = key_cmd::open_master_key(cfg, &store).await?;
    let policies = Arc::new(Policies::load().context("authorization policies do not load")?);
    let identity = Identity::new(store.clone(), policies, Arc::new(SystemClock), cfg.identity.clone()).await?;
    let catalog = open_catalog(cfg, identity, master)?;
    let p = data_cmd::principal_of(&store, user, lang).await?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("{} ({:.1} MiB)", file.display(), size as f64 / 1048576.0));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let (v, errors) = data_cmd::import_one(&catalog, &p, dataset, title, file, req, lang, Some(&bar)).await?;
    data_cmd::print_report(&v, &errors, lang);
    if let Some(confirmed) = accept
        && v.state == shuyu_catalog::version::VersionState::PendingReview
    {
        let v = catalog
            .accept(&p, &v.id, confirmed)
            .await
            .map_err(|e| data_cmd::explain(lang, &e))?;
        println!(
            "{}",
            render(lang, &Message::new("cli.data.accepted").arg("version", v.id))
        );
    }
    store.close().await;
    Ok(())
}

async fn demo(cfg: Config, scale: f64, seed: u64) -> Result<()> {
    create_data_dir(&cfg.data_dir)?;
    ensure_master_key(&cfg.master_key_path())?;
    let store = open_store(&cfg).await?;
    // A fresh demo's history runs on a simulated clock over the three weeks before today, so
    // the lifecycle's deadlines and notice periods have passed when it opens (walk.rs).
    let fresh = !cfg.data_dir.join("demo-city").join("imported").exists();
    let sim = Arc::new(shuyu_core::clock::SimClock::new(
        SystemClock
            .now()
            .checked_sub(SignedDuration::from_hours(24 * 21))
            .unwrap_or(SystemClock.now()),
    ));
    let clock: &dyn Clock = if fresh { &*sim } else { &SystemClock };
    let creds_path = cfg.data_dir.join(CREDENTIALS_FILE);
    let mut logins = read_credentials(&creds_path);
    let mut changed = false;
    if let Some(created) =
        bootstrap::initialise(&store, clock, &city::regions(), city::AUTHORITY, "admin", false).await?
    {
        logins.push(DemoLogin {
            org: created.authority.name.clone(),
            kind: "authority".into(),
            username: created.username,
            password: created.password.expose().clone(),
        });
        changed = true;
    }
    let regions = city::regions();
    for (i, party) in city::PARTIES.iter().enumerate() {
        let region = regions
            .iter()
            .find(|r| r.code.as_str() == party.region)
            .unwrap_or(&regions[0]);
        let uscc = party.uscc(i);
        let (org, _) = bootstrap::ensure_org(&store, clock, party.org, party.kind, region, uscc.as_deref()).await?;
        for (username, name, roles) in party.users {
            if logins.iter().any(|l| l.username == *username) {
                continue;
            }
            let u = shuyu_core::party::Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let password = secrets::temporary_password(&u)?;
            let (_, created) =
                bootstrap::ensure_user(&store, clock, &org, username, name, roles, password.expose(), false).await?;
            if created {
                logins.push(DemoLogin {
                    org: party.org.into(),
                    kind: party.kind.code().into(),
                    username: (*username).into(),
                    password: password.expose().clone(),
                });
                changed = true;
            }
        }
    }
    if changed {
        let mut text = String::from("# shuyu demo: initial logins (organisation, kind, username, password)\n");
        for l in &logins {
            text.push_str(&format!("{}\t{}\t{}\t{}\n", l.org, l.kind, l.username, l.password));
        }
        let tmp = cfg.data_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &creds_path).with_context(|| format!("cannot write {}", creds_path.display()))?;
    }

    if fresh {
        key_cmd::hold_serve_lock(&cfg)?;
        let master = key_cmd::open_master_key(&cfg, &store).await?;
        let seed_clock: SharedClock = sim.clone();
        let ledger = Arc::new(
            Ledger::open(store.clone(), &master, seed_clock.clone())
                .await
                .context("cannot open the audit log")?,
        );
        let policies = Arc::new(Policies::load().context("authorization policies do not load")?);
        let identity = Identity::new(store.clone(), policies, seed_clock, cfg.identity.clone()).await?;
        let catalog = open_catalog(&cfg, identity.clone(), master.clone())?;
        data_cmd::import_demo_city(&catalog, &store, &cfg.data_dir, scale, seed, cli_lang()).await?;
        let life = shuyu_workflow::service::Lifecycle::new(identity.clone(), ledger);
        let approved = walk::run(&catalog, &life, &store, &sim, &cfg.data_dir, cli_lang()).await?;
        // The approved scenarios' workspaces open with their masked samples.
        let workspaces = open_workspaces(&cfg, identity, life.clone(), master)?;
        let opened = workspaces.sync().await.context("cannot open the demo workspaces")?;
        if !opened.failed.is_empty() {
            bail!(
                "the demo workspaces of {} could not be built (see the log)",
                opened.failed.join(", ")
            );
        }
        println!(
            "{}",
            render(
                cli_lang(),
                &Message::new("cli.demo.walked").arg("count", approved.len().to_string())
            )
        );
        for (scenario, developer, digest) in &approved {
            println!(
                "  {developer:<14} {scenario}  manifest {}",
                &digest[..16.min(digest.len())]
            );
        }
        println!(
            "{}",
            render(
                cli_lang(),
                &Message::new("cli.demo.workspaces").arg("count", opened.opened.len().to_string())
            )
        );
        // Two scenarios run to products: jobs on full data, reviewed releases, the public catalog.
        let made = walk::products(&workspaces, &store, cli_lang()).await?;
        println!(
            "{}",
            render(
                cli_lang(),
                &Message::new("cli.demo.products").arg("count", made.len().to_string())
            )
        );
        for p in &made {
            println!(
                "  {:<8} {}  ({} {})",
                p.kind.code(),
                p.title,
                p.rows,
                p.columns.join(", ")
            );
        }
    }
    let state = build_state(&cfg, store.clone()).await?;
    let listener = bind(&cfg).await?;
    let addr = listener.local_addr()?;
    let lang = cli_lang();
    let mut out = String::new();
    out.push_str(&render(lang, &Message::new("cli.demo.title")));
    out.push('\n');
    out.push_str(&format!(
        "  console:  http://{addr}/console/\n  API docs: http://{addr}/api/v1/docs\n\n"
    ));
    let width = logins.iter().map(|l| display_width(&l.org)).max().unwrap_or(10);
    for l in &logins {
        let pad = width - display_width(&l.org);
        out.push_str(&format!(
            "  {}{}  {:<10}  username: {:<16}  password: {}\n",
            l.org,
            " ".repeat(pad),
            l.kind,
            l.username,
            l.password
        ));
    }
    out.push('\n');
    out.push_str(&render(
        lang,
        &Message::new("cli.demo.saved").arg("path", creds_path.display().to_string()),
    ));
    println!("{out}");
    let _ = std::io::stdout().flush();
    shuyu_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}
