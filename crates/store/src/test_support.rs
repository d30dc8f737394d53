//! Databases for tests. Every store test runs on SQLite, and also on
//! PostgreSQL when `SHUYU_TEST_DATABASE_URL` is set (CI sets it). Each test
//! gets a database of its own, so tests run in parallel without sharing rows.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor};

use crate::{Backend, Store};

/// The environment variable naming the PostgreSQL server for tests.
pub const PG_ENV: &str = "SHUYU_TEST_DATABASE_URL";

/// A migrated, empty database for one test.
pub struct TestDb {
    /// The store over it.
    pub store: Store,
    /// Its connection URL (for code under test that connects by itself).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, if `SHUYU_TEST_DATABASE_URL` is set.
    /// Panics when it is set but the server cannot be used: CI must not pass by skipping.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var(PG_ENV).ok().filter(|s| !s.is_empty())?;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "shuyu_t_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7().simple().to_string().get(20..).unwrap_or("x")
        );
        crate::Store::connect(&admin_url)
            .await
            .expect("PostgreSQL reachable (SHUYU_TEST_DATABASE_URL)");
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .expect("connect to SHUYU_TEST_DATABASE_URL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        let store = Store::connect(&url).await.expect("connect to test database");
        store.migrate().await.expect("migrate PostgreSQL");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// SQLite, then PostgreSQL if configured: run the same test body on each.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    /// Which backend this is (for assertion messages).
    pub fn label(&self) -> &'static str {
        match self.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Closes the store and drops the database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin_url, name } = self.cleanup
            && let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// `postgres://u@h:5432/db?x=y` with the database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..].find('/').map(|i| i + authority_start);
    let root = match path_start {
        Some(p) => &base[..p],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Runs raw SQL on a connection: tests that play an attacker with database access use it.
pub async fn execute_raw(c: &mut crate::Conn, sql: &'static str) -> Result<u64, crate::StoreError> {
    use sqlx::Executor;
    Ok(c.execute(sql).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://p@127.0.0.1:5432/test", "x"),
            "postgres://p@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://p@h/test?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://p@h", "x"), "postgres://p@h/x");
    }
}
