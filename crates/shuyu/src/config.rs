//! Configuration: built-in defaults, then a TOML file, then `SHUYU_*`
//! environment variables, then command-line flags — each overriding the one
//! before. README.md lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The file-level configuration (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub workspaces: WorkspacesSection,
    /// `[gate]`: the output checks' thresholds, `[gate.default]` and per grade
    /// (`[gate.levels.L4]`); a grade without its own table takes the default.
    pub gate: Option<shuyu_gate::GateConfig>,
}

/// `[workspaces]`: how samples are drawn and how safe they must be, and query limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspacesSection {
    pub sample_fraction: Option<f64>,
    pub sample_max_rows: Option<usize>,
    pub sample_k: Option<usize>,
    pub sample_suppression: Option<f64>,
    pub query_timeout_secs: Option<u64>,
    pub query_memory_mib: Option<usize>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub checkpoint_interval_secs: Option<u64>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub cookie_secure: Option<bool>,
    pub trust_proxy: Option<bool>,
    pub max_upload_mib: Option<u64>,
    pub upload_timeout_secs: Option<u64>,
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub session_ttl_minutes: Option<i64>,
    pub session_idle_minutes: Option<i64>,
    pub max_failures_per_user: Option<i64>,
    pub max_failures_per_ip: Option<i64>,
    pub lockout_minutes: Option<i64>,
}

/// The flags that can override configuration (from clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    pub log_format: String,
    pub log_level: String,
    pub server: shuyu_server::ServerConfig,
    pub identity: shuyu_identity::IdentityConfig,
    /// How often the audit log signs a checkpoint when it has grown.
    pub checkpoint_interval: std::time::Duration,
    /// Days the server's clock runs ahead of (or behind) the wall clock: for drills and
    /// tests that walk a multi-year lifecycle through the real server. 0 in production.
    pub clock_offset_days: i64,
    /// How workspaces draw samples (validated).
    pub sample: shuyu_engine::SampleSpec,
    /// The limits of every query on samples.
    pub query: shuyu_engine::QueryLimits,
    /// The gate's rules per data grade (validated).
    pub gate: shuyu_gate::GateConfig,
    /// Where the configuration file was read from, if any.
    pub source: Option<PathBuf>,
}

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./shuyu-data";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        Some(v) => v
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        None => Ok(None),
    }
}

impl Config {
    /// Resolves the configuration for `flags`, with `default_data_dir` when nothing names one.
    pub fn load(flags: &Overrides, default_data_dir: &str) -> Result<Config> {
        let data_dir_hint = flags
            .data_dir
            .clone()
            .or_else(|| env("SHUYU_DATA_DIR").map(PathBuf::from));
        let explicit = flags.config.clone().or_else(|| env("SHUYU_CONFIG").map(PathBuf::from));
        let path = match &explicit {
            Some(p) => Some(p.clone()),
            None => {
                let dir = data_dir_hint.clone().unwrap_or_else(|| PathBuf::from(default_data_dir));
                Some(dir.join("shuyu.toml")).filter(|p| p.exists())
            }
        };
        let file = match &path {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };

        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| env("SHUYU_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(default_data_dir));
        let listen_raw = flags
            .listen
            .clone()
            .or_else(|| env("SHUYU_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_raw
            .parse()
            .with_context(|| format!("listen address {listen_raw:?} is not HOST:PORT (e.g. 127.0.0.1:8080)"))?;
        let database_url = flags
            .database_url
            .clone()
            .or_else(|| env("SHUYU_DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("shuyu.db").display()));
        let log_format = env("SHUYU_LOG_FORMAT")
            .or(file.log_format)
            .unwrap_or_else(|| "json".into());
        if log_format != "json" && log_format != "text" {
            bail!("log_format must be \"json\" or \"text\", not {log_format:?}");
        }
        let log_level = env("SHUYU_LOG").or(file.log_level).unwrap_or_else(|| "info".into());

        let mut server = shuyu_server::ServerConfig::default();
        if let Some(v) = env_parse("SHUYU_MAX_BODY_BYTES")?.or(file.server.max_body_bytes) {
            server.max_body_bytes = v;
        }
        if let Some(v) = env_parse::<u64>("SHUYU_REQUEST_TIMEOUT_SECS")?.or(file.server.request_timeout_secs) {
            server.request_timeout = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = env_parse("SHUYU_COOKIE_SECURE")?.or(file.server.cookie_secure) {
            server.cookie_secure = v;
        }
        if let Some(v) = env_parse("SHUYU_TRUST_PROXY")?.or(file.server.trust_proxy) {
            server.trust_proxy = v;
        }
        if let Some(v) = env_parse::<u64>("SHUYU_MAX_UPLOAD_MIB")?.or(file.server.max_upload_mib) {
            server.max_upload_bytes = v.max(1).saturating_mul(1024 * 1024);
        }
        if let Some(v) = env_parse::<u64>("SHUYU_UPLOAD_TIMEOUT_SECS")?.or(file.server.upload_timeout_secs) {
            server.upload_timeout = std::time::Duration::from_secs(v.max(1));
        }
        // Uploads hold raw data until imported: inside the (0700) data directory, never /tmp.
        server.upload_dir = data_dir.join("uploads");

        let mut identity = shuyu_identity::IdentityConfig::default();
        let minutes = |m: i64| shuyu_core::clock::SignedDuration::from_mins(m.max(1));
        if let Some(v) = env_parse("SHUYU_SESSION_TTL_MINUTES")?.or(file.auth.session_ttl_minutes) {
            identity.session_ttl = minutes(v);
        }
        if let Some(v) = env_parse("SHUYU_SESSION_IDLE_MINUTES")?.or(file.auth.session_idle_minutes) {
            identity.session_idle = minutes(v);
        }
        if let Some(v) = env_parse::<i64>("SHUYU_MAX_FAILURES_PER_USER")?.or(file.auth.max_failures_per_user) {
            identity.max_failures_per_user = v.max(1);
        }
        if let Some(v) = env_parse::<i64>("SHUYU_MAX_FAILURES_PER_IP")?.or(file.auth.max_failures_per_ip) {
            identity.max_failures_per_ip = v.max(1);
        }
        if let Some(v) = env_parse("SHUYU_LOCKOUT_MINUTES")?.or(file.auth.lockout_minutes) {
            identity.lockout = minutes(v);
        }
        let checkpoint_interval = std::time::Duration::from_secs(
            env_parse::<u64>("SHUYU_CHECKPOINT_INTERVAL_SECS")?
                .or(file.audit.checkpoint_interval_secs)
                .unwrap_or(60)
                .max(1),
        );
        let w = &file.workspaces;
        let mut sample = shuyu_engine::SampleSpec::default();
        if let Some(v) = env_parse("SHUYU_SAMPLE_FRACTION")?.or(w.sample_fraction) {
            sample.fraction = v;
        }
        if let Some(v) = env_parse("SHUYU_SAMPLE_MAX_ROWS")?.or(w.sample_max_rows) {
            sample.max_rows = v;
        }
        if let Some(v) = env_parse("SHUYU_SAMPLE_K")?.or(w.sample_k) {
            sample.k = v;
        }
        if let Some(v) = env_parse("SHUYU_SAMPLE_SUPPRESSION")?.or(w.sample_suppression) {
            sample.suppression = v;
        }
        if let Err(e) = sample.validate() {
            let detail: Vec<String> = shuyu_core::error::UserFacing::field_errors(&e)
                .iter()
                .map(|f| format!("sample_{} ({})", f.field, f.rule))
                .collect();
            bail!("[workspaces] settings out of range: {}", detail.join(", "));
        }
        let mut query = shuyu_engine::QueryLimits::default();
        if let Some(v) = env_parse::<u64>("SHUYU_QUERY_TIMEOUT_SECS")?.or(w.query_timeout_secs) {
            query.time = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = env_parse::<usize>("SHUYU_QUERY_MEMORY_MIB")?.or(w.query_memory_mib) {
            query.memory = v.max(1).saturating_mul(1024 * 1024);
        }
        // A file's grades are added to the built-in ones (L1, open data), not put in their place.
        let mut gate = shuyu_gate::GateConfig::default();
        if let Some(g) = file.gate {
            gate.default = g.default;
            gate.levels.extend(g.levels);
        }
        let problems = gate.problems();
        if !problems.is_empty() {
            bail!("[gate] settings out of range: {}", problems.join("; "));
        }
        let clock_offset_days = env_parse::<i64>("SHUYU_CLOCK_OFFSET_DAYS")?.unwrap_or(0);
        if !(-3660..=3660).contains(&clock_offset_days) {
            bail!("SHUYU_CLOCK_OFFSET_DAYS must be within ±3660 days, not {clock_offset_days}");
        }
        Ok(Config {
            clock_offset_days,
            data_dir,
            listen,
            database_url,
            log_format,
            log_level,
            server,
            identity,
            checkpoint_interval,
            sample,
            query,
            gate,
            source: path,
        })
    }

    /// The master key file.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("configuration file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_file_are_rejected_by_name() {
        let err = toml::from_str::<FileConfig>("listn = \"x\"").expect_err("unknown key");
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn the_gate_rules_come_per_grade_from_the_file_and_nonsense_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("shuyu.toml");
        std::fs::write(&file, "[gate.levels.L4]\nthreshold = 20\nk = 10\n").expect("write");
        let flags = Overrides {
            config: Some(file.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let c = Config::load(&flags, DEFAULT_DATA_DIR).expect("load");
        assert_eq!(c.gate.for_level("L4").threshold, 20);
        assert_eq!(c.gate.for_level("L4").k, 10);
        // Fields a level does not name keep their defaults; other grades keep the default rules.
        assert_eq!(c.gate.for_level("L4").nk_share, shuyu_gate::Rules::default().nk_share);
        assert_eq!(c.gate.for_level("L3").threshold, shuyu_gate::Rules::default().threshold);
        assert_eq!(c.gate.for_level("L1"), &shuyu_gate::Rules::open());
        // Without a [gate] table, the built-in rules (L1 is open data).
        std::fs::write(&file, "").expect("write");
        assert_eq!(
            Config::load(&flags, DEFAULT_DATA_DIR).expect("load").gate,
            shuyu_gate::GateConfig::default()
        );
        for (bad, named) in [
            ("[gate.levels.L4]\nthreshold = 0\n", "L4.threshold"),
            ("[gate.levels.L9]\nthreshold = 10\n", "levels.L9"),
            ("[gate.default]\nnk_share = 2.0\n", "default.nk_share"),
            ("[gate.levels.L2]\nthresold = 10\n", "thresold"),
        ] {
            std::fs::write(&file, bad).expect("write");
            let err = Config::load(&flags, DEFAULT_DATA_DIR).expect_err(bad);
            assert!(format!("{err:#}").contains(named), "{bad}: {err:#}");
        }
    }

    #[test]
    fn flags_beat_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("shuyu.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9001\"\nlog_format = \"text\"\n[server]\nmax_body_bytes = 2048\n",
        )
        .expect("write");
        let flags = Overrides {
            config: Some(file.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let c = Config::load(&flags, DEFAULT_DATA_DIR).expect("load");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.log_format, "text");
        assert_eq!(c.server.max_body_bytes, 2048);
        assert_eq!(c.data_dir, dir.path());
        assert!(c.database_url.ends_with("shuyu.db"));
        let flags = Overrides {
            listen: Some("127.0.0.1:9002".into()),
            ..flags
        };
        assert_eq!(
            Config::load(&flags, DEFAULT_DATA_DIR).expect("load").listen.port(),
            9002
        );
    }
}
