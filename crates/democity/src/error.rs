//! The one error type of the generator.

use std::path::PathBuf;

/// Why a generation run failed. Generation is pure computation plus file
/// output, so almost every failure is an I/O or encoder error that names the file.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The scale factor is not a finite positive number.
    #[error("scale must be a finite number greater than 0, got {0}")]
    InvalidScale(f64),
    /// The scale needs more distinct identity numbers than the demo city's
    /// birth-date × sequence space holds (the population must stay unique).
    #[error("scale {scale} needs {needed} people but the demo city has room for {capacity}")]
    ScaleTooLarge {
        /// The requested scale.
        scale: f64,
        /// People the scale asks for.
        needed: u64,
        /// Distinct identity numbers available.
        capacity: u64,
    },
    /// Creating, writing or flushing an output file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV encoder failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The Parquet writer failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building an Arrow batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The XLSX writer failed.
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// Writing JSON failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A generated line holds a character GBK cannot encode.
    #[error("{dataset} row {row}: text not encodable in GBK")]
    NotGbk {
        /// The dataset.
        dataset: &'static str,
        /// The 1-based data row.
        row: u64,
    },
    /// A generator invariant broke (a bug, never bad input).
    #[error("internal generator error: {0}")]
    Internal(&'static str),
}

impl GenError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        GenError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
