//! Store integration tests: every test body runs on SQLite and, when
//! `SHUYU_TEST_DATABASE_URL` is set, on PostgreSQL.

#![allow(missing_docs)]

mod jobs;
mod kernel;
mod log;
mod products;
mod releases;
