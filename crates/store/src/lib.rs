//! # shuyu-store
//!
//! The metadata store. One set of migrations and one set of queries run on
//! **SQLite** (the embedded default: a file in the data dir) and
//! **PostgreSQL** (production, `--database-url postgres://…`), through sqlx's
//! `Any` driver. Queries use only portable SQL: `$n` placeholders, TEXT and
//! BIGINT columns, application-generated ids, times in epoch milliseconds.
//!
//! Every change that touches more than one row goes through [`Store::write`],
//! which runs a closure inside one transaction and commits only if the closure
//! succeeds — so a failed operation leaves nothing behind.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shuyu_store::StoreError> {
//! let store = shuyu_store::Store::connect("sqlite://./shuyu-data/shuyu.db").await?;
//! store.migrate().await?;
//! let orgs = shuyu_store::orgs::list(&mut *store.read().await?, 100, 0).await?;
//! # Ok(()) }
//! ```

use std::sync::Once;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

pub mod agreements;
pub mod api_keys;
pub mod catalogs;
pub mod custom_requests;
pub mod data_requests;
pub mod datasets;
pub mod jobs;
pub mod lifecycle;
pub mod lineage;
pub mod log;
pub mod orgs;
pub mod products;
pub mod regions;
pub mod releases;
pub mod sessions;
pub mod settings;
pub mod test_support;
pub mod throttle;
pub mod users;
pub mod workspaces;

mod row;
mod writer;

pub use writer::Tx;

/// A database connection: the handle every query function takes.
pub type Conn = sqlx::AnyConnection;

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Errors of the store. Unique-constraint violations are told apart so callers
/// can turn them into a precise conflict ("username taken").
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A unique constraint was violated (the index or constraint name, as the database reports it).
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value does not parse: the table, column and why.
    #[error("corrupt value in {table}.{column}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What is wrong with it (never the value itself: it may be personal data).
        detail: String,
    },
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A change recorded no audit entry (every change must, DESIGN.md §1).
    #[error("a change was made without an audit entry")]
    Unaudited,
    /// The batch this change was committed with failed.
    #[error("the write batch failed: {0}")]
    Batch(String),
    /// The write was abandoned before it finished (the writer stopped or the job panicked).
    #[error("the write was aborted")]
    Aborted,
    /// An audit entry could not be built.
    #[error("audit entry: {0}")]
    Audit(String),
    /// The row changed since it was read (optimistic concurrency): the table. The caller
    /// reloads and decides again rather than overwrite someone else's change.
    #[error("{0}: changed by another request meanwhile")]
    Stale(&'static str),
    /// The database URL is not one the store supports.
    #[error("unsupported database URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Unique(db.constraint().unwrap_or("").to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

impl shuyu_core::error::UserFacing for StoreError {
    fn kind(&self) -> shuyu_core::error::ErrorKind {
        use shuyu_core::error::ErrorKind;
        match self {
            StoreError::Unique(_) | StoreError::Stale(_) => ErrorKind::Conflict,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            StoreError::Unique(_) | StoreError::Stale(_) => "conflict",
            StoreError::Unavailable(_) => "unavailable",
            _ => "internal",
        }
    }
}

/// The outcome of an optimistic `UPDATE … WHERE id = $1 AND updated_at = $read_at`: no row
/// changed means someone else changed it since it was read ([`StoreError::Stale`]).
pub(crate) fn one_row(done: sqlx::any::AnyQueryResult, table: &'static str) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::Stale(table));
    }
    Ok(())
}

/// A `Result` with a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The migrations, compiled into the binary so a fresh machine needs no files.
fn migrator() -> Migrator {
    let m = |version: i64, name: &'static str, sql: &'static str| {
        Migration::new(version, name.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![
        m(1, "kernel", include_str!("../migrations/0001_kernel.sql")),
        m(2, "audit", include_str!("../migrations/0002_audit.sql")),
        m(3, "datasets", include_str!("../migrations/0003_datasets.sql")),
        m(4, "catalogs", include_str!("../migrations/0004_catalogs.sql")),
        m(5, "lifecycle", include_str!("../migrations/0005_lifecycle.sql")),
        m(6, "review", include_str!("../migrations/0006_review.sql")),
        m(7, "agreements", include_str!("../migrations/0007_agreements.sql")),
        m(8, "data_requests", include_str!("../migrations/0008_data_requests.sql")),
        m(9, "workspaces", include_str!("../migrations/0009_workspaces.sql")),
        m(10, "jobs", include_str!("../migrations/0010_jobs.sql")),
        m(11, "releases", include_str!("../migrations/0011_releases.sql")),
        m(12, "products", include_str!("../migrations/0012_products.sql")),
        m(13, "boundary", include_str!("../migrations/0013_boundary.sql")),
        m(14, "recipients", include_str!("../migrations/0014_recipients.sql")),
    ])
}

/// The metadata store: a connection pool for reads and one writer task that
/// commits changes in groups, each with its audit entries (see [`Store::write`]).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: tokio::sync::mpsc::Sender<writer::Job>,
    nodes: std::sync::Arc<log::NodeCache>,
}

static DRIVERS: Once = Once::new();

impl Store {
    /// Connects to `url` (`sqlite://PATH` — created if missing — or `postgres://…`).
    pub async fn connect(url: &str) -> Result<Self> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL sync so a commit survives power loss;
                        // foreign keys on (SQLite's default is off); wait rather than fail on locks.
                        // A 64 MiB page cache keeps the log's index pages hot; checkpointing the WAL
                        // every ~40 MiB instead of 4 MiB amortises the database file's fsync (BENCHMARKS.md).
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await.map_err(|e| match e {
            sqlx::Error::Database(_) => StoreError::Database(e),
            other => StoreError::Unavailable(other),
        })?;
        let nodes = std::sync::Arc::new(log::NodeCache::default());
        let writer = writer::spawn(pool.clone(), backend, nodes.clone());
        Ok(Self {
            pool,
            backend,
            writer,
            nodes,
        })
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        Self::connect(&format!("sqlite://{}", path.display())).await
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::Unavailable)?;
        conn.execute("SELECT 1").await.map_err(StoreError::Unavailable)?;
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection for reads. Reads may run concurrently with writes.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.pool.acquire().await.map_err(StoreError::from)
    }

    /// Runs `f` in a transaction and commits it, with the audit events `f`
    /// records ([`Tx::record`]), through the group-commit writer: the change and
    /// its audit entries are durable together or not at all. If `f` returns an
    /// error (or panics) its changes are rolled back and nothing is logged.
    /// A change that records no event is refused unless it declares itself
    /// [`Tx::housekeeping`].
    pub async fn write<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: for<'t, 'c> FnOnce(&'t mut Tx<'c>) -> BoxFuture<'t, std::result::Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, done) = writer::job(f);
        self.writer.send(job).await.map_err(|_| E::from(StoreError::Aborted))?;
        done.await.map_err(|_| E::from(StoreError::Aborted))?
    }

    /// The common case of [`Store::write`]: one change `f` and the one audit `event` that
    /// records it, committed together.
    pub async fn write_audited<F>(&self, event: log::Event, f: F) -> Result<()>
    where
        F: for<'t, 'c> FnOnce(&'t mut Tx<'c>) -> BoxFuture<'t, Result<()>> + Send + 'static,
    {
        self.write(move |tx| {
            Box::pin(async move {
                f(tx).await?;
                tx.record(event);
                Ok(())
            })
        })
        .await
    }

    /// Appends audit events that accompany no other change (data access,
    /// failed logins); returns once they are durable.
    pub async fn append(&self, events: Vec<log::Event>) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(writer::Job::Append(events, tx))
            .await
            .map_err(|_| StoreError::Aborted)?;
        rx.await.map_err(|_| StoreError::Aborted)?
    }

    /// The root of the audit log's Merkle tree at `size` (upper levels from memory).
    pub async fn root_at(&self, size: u64) -> Result<shuyu_audit::Hash> {
        log::root_with(&mut *self.read().await?, Some(&self.nodes), size).await
    }

    /// The inclusion proof of entry `seq` in the tree of `size` entries (upper levels from memory).
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<shuyu_audit::Hash>> {
        let ranges = shuyu_audit::merkle::inclusion_ranges(seq, size);
        log::prove(&mut *self.read().await?, Some(&self.nodes), &ranges).await
    }

    /// The consistency proof between tree sizes `first` and `second` (upper levels from memory).
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<shuyu_audit::Hash>> {
        let ranges = shuyu_audit::merkle::consistency_ranges(first, second);
        log::prove(&mut *self.read().await?, Some(&self.nodes), &ranges).await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL with any password replaced, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/shuyu"),
            "postgres://app:***@db:5432/shuyu"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
