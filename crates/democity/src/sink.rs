//! Streaming writers, one per output format. Each takes rows of [`Cell`]s one
//! at a time and keeps at most a bounded buffer (a CSV line, an Arrow batch, a
//! Parquet row group, an xlsx row) in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Float64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::cell::Cell;
use crate::error::GenError;
use crate::spec::DatasetSpec;

/// A destination for rows.
pub(crate) trait RowSink {
    /// Writes one data row (1-based `row` for error messages).
    fn write(&mut self, row: u64, cells: &[Cell]) -> Result<(), GenError>;
    /// Flushes and closes the file.
    fn finish(self: Box<Self>) -> Result<(), GenError>;
}

fn create(path: &Path) -> Result<BufWriter<File>, GenError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 16, f))
        .map_err(|e| GenError::io(path, e))
}

fn csv_builder() -> csv::WriterBuilder {
    let mut b = csv::WriterBuilder::new();
    b.terminator(csv::Terminator::Any(b'\n'));
    b
}

/// UTF-8 CSV with a header row.
pub(crate) struct CsvSink {
    out: csv::Writer<BufWriter<File>>,
    path: PathBuf,
}

impl CsvSink {
    pub(crate) fn create(path: &Path, spec: &DatasetSpec) -> Result<Self, GenError> {
        let mut out = csv_builder().from_writer(create(path)?);
        out.write_record(spec.columns)?;
        Ok(CsvSink {
            out,
            path: path.to_path_buf(),
        })
    }
}

impl RowSink for CsvSink {
    fn write(&mut self, _row: u64, cells: &[Cell]) -> Result<(), GenError> {
        self.out.write_record(cells.iter().map(Cell::text))?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), GenError> {
        let path = self.path;
        let mut inner = self
            .out
            .into_inner()
            .map_err(|e| GenError::io(&path, std::io::Error::other(e.to_string())))?;
        inner.flush().map_err(|e| GenError::io(&path, e))
    }
}

/// A byte buffer the CSV writer fills and the GBK sink drains after each line.
#[derive(Clone, Default)]
struct LineBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for LineBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// CSV whose every line is encoded in GBK, as many government systems still export.
pub(crate) struct GbkCsvSink {
    line: csv::Writer<LineBuf>,
    buf: LineBuf,
    out: BufWriter<File>,
    path: PathBuf,
    dataset: &'static str,
}

impl GbkCsvSink {
    pub(crate) fn create(path: &Path, spec: &DatasetSpec) -> Result<Self, GenError> {
        let buf = LineBuf::default();
        let mut sink = GbkCsvSink {
            line: csv_builder().from_writer(buf.clone()),
            buf,
            out: create(path)?,
            path: path.to_path_buf(),
            dataset: spec.name,
        };
        sink.emit(0, spec.columns.iter().map(|c| c.to_string()))?;
        Ok(sink)
    }

    fn emit(&mut self, row: u64, fields: impl Iterator<Item = String>) -> Result<(), GenError> {
        self.line.write_record(fields)?;
        self.line.flush().map_err(|e| GenError::io(&self.path, e))?;
        let bytes = std::mem::take(&mut *self.buf.0.borrow_mut());
        let text = String::from_utf8(bytes).map_err(|_| GenError::Internal("csv line is not UTF-8"))?;
        let (encoded, _, had_errors) = encoding_rs::GBK.encode(&text);
        if had_errors {
            return Err(GenError::NotGbk {
                dataset: self.dataset,
                row,
            });
        }
        self.out.write_all(&encoded).map_err(|e| GenError::io(&self.path, e))
    }
}

impl RowSink for GbkCsvSink {
    fn write(&mut self, row: u64, cells: &[Cell]) -> Result<(), GenError> {
        self.emit(row, cells.iter().map(Cell::text))
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        self.out.flush().map_err(|e| GenError::io(&self.path, e))
    }
}

/// JSON Lines: one object per row, keys in column order.
pub(crate) struct JsonlSink {
    out: BufWriter<File>,
    path: PathBuf,
    keys: Vec<String>,
    line: String,
}

impl JsonlSink {
    pub(crate) fn create(path: &Path, spec: &DatasetSpec) -> Result<Self, GenError> {
        let keys = spec
            .columns
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JsonlSink {
            out: create(path)?,
            path: path.to_path_buf(),
            keys,
            line: String::with_capacity(256),
        })
    }
}

impl RowSink for JsonlSink {
    fn write(&mut self, _row: u64, cells: &[Cell]) -> Result<(), GenError> {
        self.line.clear();
        self.line.push('{');
        for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push_str(key);
            self.line.push(':');
            cell.write_json(&mut self.line)?;
        }
        self.line.push_str("}\n");
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| GenError::io(&self.path, e))
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        self.out.flush().map_err(|e| GenError::io(&self.path, e))
    }
}

/// Data rows per worksheet: Excel's 1 048 576 rows less the header.
pub const XLSX_ROWS_PER_SHEET: u64 = 1_048_575;

/// XLSX in constant-memory mode (rows stream to a temporary file), with a
/// fixed creation date so the bytes are reproducible. Rows beyond one sheet's
/// capacity continue on `name_2`, `name_3`, … each with the header row.
pub(crate) struct XlsxSink {
    book: rust_xlsxwriter::Workbook,
    name: &'static str,
    columns: &'static [&'static str],
    path: PathBuf,
    sheets: usize,
    row_in_sheet: u32,
    rows_per_sheet: u64,
}

impl XlsxSink {
    pub(crate) fn create(path: &Path, spec: &DatasetSpec) -> Result<Self, GenError> {
        Self::with_sheet_limit(path, spec, XLSX_ROWS_PER_SHEET)
    }

    /// As [`XlsxSink::create`], with a smaller sheet capacity (to test the spill-over cheaply).
    fn with_sheet_limit(path: &Path, spec: &DatasetSpec, rows_per_sheet: u64) -> Result<Self, GenError> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2025, 12, 31)?;
        let props = rust_xlsxwriter::DocProperties::new()
            .set_creation_datetime(&created)
            .set_title(spec.name)
            .set_author("shuyu-democity")
            .set_company("示范市");
        book.set_properties(&props);
        let mut sink = XlsxSink {
            book,
            name: spec.name,
            columns: spec.columns,
            path: path.to_path_buf(),
            sheets: 0,
            row_in_sheet: 0,
            rows_per_sheet: rows_per_sheet.clamp(1, XLSX_ROWS_PER_SHEET),
        };
        sink.new_sheet()?;
        Ok(sink)
    }

    fn new_sheet(&mut self) -> Result<(), GenError> {
        self.sheets += 1;
        let name = if self.sheets == 1 {
            self.name.to_string()
        } else {
            format!("{}_{}", self.name, self.sheets)
        };
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        for (c, h) in self.columns.iter().enumerate() {
            sheet.write_string(0, c as u16, *h)?;
        }
        self.row_in_sheet = 0;
        Ok(())
    }
}

impl RowSink for XlsxSink {
    fn write(&mut self, _row: u64, cells: &[Cell]) -> Result<(), GenError> {
        if u64::from(self.row_in_sheet) >= self.rows_per_sheet {
            self.new_sheet()?;
        }
        self.row_in_sheet += 1;
        let r = self.row_in_sheet;
        let sheet = self.book.worksheet_from_index(self.sheets - 1)?;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Null => {}
                Cell::Int(_) | Cell::Dec(..) => {
                    sheet.write_number(r, c, cell.as_f64().unwrap_or_default())?;
                }
                other => {
                    sheet.write_string(r, c, other.text())?;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        self.book.save(&self.path)?;
        Ok(())
    }
}

/// Parquet via Arrow: cells are appended to typed builders, a batch of
/// [`BATCH_ROWS`] is handed to the writer, which cuts row groups of at most
/// [`ROW_GROUP_ROWS`] rows.
pub(crate) struct ParquetSink {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    columns: Vec<Builder>,
    pending: usize,
    path: PathBuf,
}

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 8_192;

enum Builder {
    Utf8(StringBuilder),
    Date(Date32Builder),
    Float(Float64Builder),
}

impl ParquetSink {
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self, GenError> {
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_compression(Compression::SNAPPY)
            .set_created_by("shuyu-democity".to_string())
            .build();
        let writer = ArrowWriter::try_new(create(path)?, schema.clone(), Some(props))?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Date32 => Ok(Builder::Date(Date32Builder::with_capacity(BATCH_ROWS))),
                DataType::Float64 => Ok(Builder::Float(Float64Builder::with_capacity(BATCH_ROWS))),
                DataType::Utf8 => Ok(Builder::Utf8(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))),
                _ => Err(GenError::Internal("unsupported parquet column type")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParquetSink {
            writer,
            schema,
            columns,
            pending: 0,
            path: path.to_path_buf(),
        })
    }

    fn flush_batch(&mut self) -> Result<(), GenError> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Utf8(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                    Builder::Float(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.pending = 0;
        Ok(())
    }
}

impl RowSink for ParquetSink {
    fn write(&mut self, _row: u64, cells: &[Cell]) -> Result<(), GenError> {
        for (b, cell) in self.columns.iter_mut().zip(cells) {
            match (b, cell) {
                (Builder::Utf8(b), Cell::Null) => b.append_null(),
                (Builder::Date(b), Cell::Null) => b.append_null(),
                (Builder::Float(b), Cell::Null) => b.append_null(),
                (Builder::Utf8(b), Cell::Text(s)) => b.append_value(s),
                (Builder::Date(b), Cell::Date(d)) => {
                    b.append_value(i32::try_from(*d).map_err(|_| GenError::Internal("date out of range"))?)
                }
                (Builder::Float(b), c @ (Cell::Dec(..) | Cell::Int(_))) => b.append_option(c.as_f64()),
                _ => return Err(GenError::Internal("cell does not fit its parquet column")),
            }
        }
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        self.flush_batch()?;
        let path = self.path;
        let mut inner = self.writer.into_inner()?;
        inner.flush().map_err(|e| GenError::io(&path, e))
    }
}

/// The Arrow schema of `medical_visit.parquet`. `visit_id` is never null; the
/// other columns are nullable because a dirty row may leave one of them empty.
pub fn medical_visit_schema() -> Schema {
    Schema::new(vec![
        Field::new("visit_id", DataType::Utf8, false),
        Field::new("person_id", DataType::Utf8, true),
        Field::new("hospital_code", DataType::Utf8, true),
        Field::new("visit_date", DataType::Date32, true),
        Field::new("icd10", DataType::Utf8, true),
        Field::new("cost_total", DataType::Float64, true),
        Field::new("insurance_paid", DataType::Float64, true),
    ])
}

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, Xlsx, open_workbook};

    use super::*;
    use crate::spec::TAX_PAYMENT;

    #[test]
    fn xlsx_rows_beyond_a_sheet_continue_on_numbered_sheets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.xlsx");
        let mut sink = Box::new(XlsxSink::with_sheet_limit(&path, &TAX_PAYMENT, 2).expect("sink"));
        for r in 1..=5 {
            let row = [
                Cell::Text(format!("u{r}")),
                Cell::Int(2024),
                Cell::Null,
                Cell::Text("<1M".into()),
                Cell::Dec(r * 100 + 5, 2),
            ];
            sink.write(r as u64, &row).expect("write");
        }
        sink.finish().expect("save");
        let mut book: Xlsx<_> = open_workbook(&path).expect("open");
        assert_eq!(book.sheet_names(), ["tax_payment", "tax_payment_2", "tax_payment_3"]);
        let third = book.worksheet_range("tax_payment_3").expect("sheet");
        let rows: Vec<&[Data]> = third.rows().collect();
        assert_eq!(rows.len(), 2, "header + 1 row");
        assert_eq!(rows[0][0], Data::String("uscc".into()));
        assert_eq!(rows[1][0], Data::String("u5".into()));
        assert_eq!(rows[1][2], Data::Empty);
        assert_eq!(rows[1][4], Data::Float(5.05));
    }
}
