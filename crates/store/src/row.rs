//! Decoding helpers: every stored value is parsed back into its domain type,
//! and a value that does not parse is reported as [`StoreError::Corrupt`]
//! naming the table and column — never silently defaulted.

use std::str::FromStr;

use shuyu_core::clock::{Timestamp, from_millis};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError};

pub(crate) fn text(row: &AnyRow, table: &'static str, column: &'static str) -> Result<String> {
    row.try_get::<String, _>(column).map_err(|e| StoreError::Corrupt {
        table,
        column,
        detail: e.to_string(),
    })
}

pub(crate) fn opt_text(row: &AnyRow, table: &'static str, column: &'static str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(column)
        .map_err(|e| StoreError::Corrupt {
            table,
            column,
            detail: e.to_string(),
        })
}

pub(crate) fn int(row: &AnyRow, table: &'static str, column: &'static str) -> Result<i64> {
    row.try_get::<i64, _>(column).map_err(|e| StoreError::Corrupt {
        table,
        column,
        detail: e.to_string(),
    })
}

pub(crate) fn opt_int(row: &AnyRow, table: &'static str, column: &'static str) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(column).map_err(|e| StoreError::Corrupt {
        table,
        column,
        detail: e.to_string(),
    })
}

pub(crate) fn time(row: &AnyRow, table: &'static str, column: &'static str) -> Result<Timestamp> {
    int(row, table, column).map(from_millis)
}

pub(crate) fn opt_time(row: &AnyRow, table: &'static str, column: &'static str) -> Result<Option<Timestamp>> {
    Ok(opt_int(row, table, column)?.map(from_millis))
}

pub(crate) fn parsed<T>(row: &AnyRow, table: &'static str, column: &'static str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = text(row, table, column)?;
    s.parse::<T>().map_err(|e| StoreError::Corrupt {
        table,
        column,
        detail: e.to_string(),
    })
}
