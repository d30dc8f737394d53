//! Row sources: every supported file format read as a stream of rows of
//! optional strings (empty cell = `None`), with bounded memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use encoding_rs::Encoding;

use crate::{ImportError, RowFault};

/// A file format the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values, any encoding (UTF-8, GBK, GB18030 detected).
    Csv,
    /// Excel workbook (first row = header; further sheets with the same header continue the table).
    Xlsx,
    /// Apache Parquet (unencrypted).
    Parquet,
    /// JSON Lines: one object per line.
    Jsonl,
}

impl Format {
    /// The format of a file name's extension.
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit('.').next()?;
        match ext {
            "csv" | "txt" => Some(Format::Csv),
            "xlsx" | "xlsm" | "xls" => Some(Format::Xlsx),
            "parquet" => Some(Format::Parquet),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// A stream of rows.
pub trait RowSource {
    /// Column names.
    fn headers(&self) -> &[String];
    /// The next row, `None` at the end.
    fn next_row(&mut self) -> Option<Result<Vec<Option<String>>, ImportError>>;
    /// The text encoding that was used (CSV), for the report.
    fn encoding(&self) -> &'static str {
        "binary"
    }
    /// The encoding the file looks like when another one was chosen for it (CSV): the text
    /// read that way is likely garbled, and the report says so.
    fn encoding_mismatch(&self) -> Option<&'static str> {
        None
    }
}

fn cell(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() { None } else { Some(t.to_string()) }
}

/// Detects a byte stream's encoding from its beginning: a BOM, valid UTF-8, else chardetng's guess (GBK/GB18030 …).
pub fn detect_encoding(head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    // Cut at a character boundary: a UTF-8 sequence split by the sample's end is still UTF-8.
    let valid_up_to = match std::str::from_utf8(head) {
        Ok(_) => head.len(),
        Err(e) => e.valid_up_to(),
    };
    if head.len() - valid_up_to < 4 {
        return encoding_rs::UTF_8;
    }
    // UTF-8 text with a few stray bytes (a NUL, a 0xFF) is still UTF-8: guessing another
    // encoding would garble every line to spare one; the stray bytes are reported per value.
    let (mut multibyte, mut invalid) = (0usize, 0usize);
    for chunk in head.utf8_chunks() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    if multibyte >= 8 && invalid * 10 <= multibyte {
        return encoding_rs::UTF_8;
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(head, false);
    // The platform serves mainland bureaus: tell the detector so (the `.cn` top-level domain hint).
    det.guess(Some(b"cn"), chardetng::Utf8Detection::Allow)
}

/// Reads bytes in `enc` and yields UTF-8, streaming (encoding_rs's incremental decoder).
struct Decoded<R: Read> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    output: String,
    pos: usize,
    done: bool,
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.output.len() {
            if self.done {
                return Ok(0);
            }
            self.output.clear();
            self.pos = 0;
            let n = self.inner.read(&mut self.input)?;
            let last = n == 0;
            let cap = self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 4 + 16);
            self.output.reserve(cap);
            let (_, _, _) = self.decoder.decode_to_string(&self.input[..n], &mut self.output, last);
            self.done = last;
        }
        let bytes = self.output.as_bytes();
        let k = (bytes.len() - self.pos).min(buf.len());
        buf[..k].copy_from_slice(&bytes[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

/// CSV, decoded from its (detected or given) encoding.
pub struct CsvSource {
    headers: Vec<String>,
    reader: csv::StringRecordsIntoIter<Box<dyn Read>>,
    encoding: &'static Encoding,
    mismatch: Option<&'static Encoding>,
}

impl CsvSource {
    /// Opens `path`; `encoding` overrides detection.
    pub fn open(path: &Path, encoding: Option<&'static Encoding>) -> Result<Self, ImportError> {
        let mut f = File::open(path)?;
        let mut head = vec![0u8; 64 * 1024];
        let n = read_full(&mut f, &mut head)?;
        head.truncate(n);
        let detected = detect_encoding(&head);
        let enc = encoding.unwrap_or(detected);
        // A chosen encoding that is not what the bytes look like: only a strong signal counts
        // (a BOM, or non-ASCII text that is valid UTF-8), so a GBK file read as GBK is quiet.
        let strong = Encoding::for_bom(&head).is_some() || (detected == encoding_rs::UTF_8 && !head.is_ascii());
        let mismatch = (strong && detected != enc).then_some(detected);
        let rest: Box<dyn Read> = Box::new(std::io::Cursor::new(head).chain(BufReader::new(f)));
        let decoded: Box<dyn Read> = Box::new(Decoded {
            inner: rest,
            decoder: enc.new_decoder_with_bom_removal(),
            input: vec![0u8; 64 * 1024],
            output: String::new(),
            pos: 0,
            done: false,
        });
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(decoded);
        let headers = reader
            .headers()
            .map_err(|e| ImportError::Malformed {
                row: 0,
                detail: e.to_string(),
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Self {
            headers,
            reader: reader.into_records(),
            encoding: enc,
            mismatch,
        })
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

impl RowSource for CsvSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self) -> Option<Result<Vec<Option<String>>, ImportError>> {
        let rec = self.reader.next()?;
        Some(match rec {
            // A field running over a line break is almost always a quote left open: it
            // swallows the lines after it. Reported (its lines are in the quarantined row).
            Ok(r) if r.iter().any(|f| f.contains(['\n', '\r'])) => {
                let at = r.iter().position(|f| f.contains(['\n', '\r'])).unwrap_or(0);
                Err(ImportError::Row(RowFault {
                    rule: "field_spans_lines",
                    field: self.headers.get(at).cloned().unwrap_or_else(|| "*".into()),
                    values: r.iter().map(cell).collect(),
                }))
            }
            // A row with more or fewer fields than the header: which value belongs to which
            // column is a guess, so the row is reported, never padded or cut.
            Ok(r) if r.len() != self.headers.len() => Err(ImportError::Row(RowFault {
                rule: "ragged_row",
                field: "*".into(),
                values: r.iter().map(cell).collect(),
            })),
            Ok(r) => Ok(r.iter().map(cell).collect()),
            Err(e) => {
                let row = e.position().map(|p| p.record().saturating_sub(1)).unwrap_or(0);
                Err(ImportError::Malformed {
                    row,
                    detail: e.to_string(),
                })
            }
        })
    }
    fn encoding(&self) -> &'static str {
        self.encoding.name()
    }
    fn encoding_mismatch(&self) -> Option<&'static str> {
        self.mismatch.map(Encoding::name)
    }
}

/// A workbook, sheet after sheet. Excel caps a sheet at 1 048 576 rows, so exports of
/// larger tables continue on further sheets with the same header row: those are read
/// as one table (row numbers run on across sheets). A sheet with another header is
/// an error naming it — skipping it would lose rows silently. Empty sheets are skipped.
pub struct XlsxSource {
    book: calamine::Sheets<BufReader<File>>,
    sheets: Vec<String>,
    next_sheet: usize,
    headers: Vec<String>,
    range: calamine::Range<calamine::Data>,
    row: usize,
}

fn sheet_error(detail: String) -> ImportError {
    ImportError::Malformed { row: 0, detail }
}

fn xlsx_value(c: &calamine::Data) -> Option<String> {
    match c {
        calamine::Data::Empty => None,
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        other => cell(&other.to_string()),
    }
}

impl XlsxSource {
    /// Opens `path` and reads the header of its first sheet. Only one sheet is held in memory at a time.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        use calamine::Reader;
        let book = calamine::open_workbook_auto(path).map_err(|e| sheet_error(e.to_string()))?;
        let sheets = book.sheet_names();
        if sheets.is_empty() {
            return Err(sheet_error("the workbook has no sheet".into()));
        }
        let mut src = Self {
            book,
            sheets,
            next_sheet: 0,
            headers: Vec::new(),
            range: calamine::Range::empty(),
            row: 0,
        };
        src.load_next_sheet()?;
        Ok(src)
    }

    /// Loads the next non-empty sheet; returns whether there was one.
    fn load_next_sheet(&mut self) -> Result<bool, ImportError> {
        use calamine::Reader;
        while self.next_sheet < self.sheets.len() {
            let name = self.sheets[self.next_sheet].clone();
            self.next_sheet += 1;
            let range = self
                .book
                .worksheet_range(&name)
                .map_err(|e| sheet_error(format!("sheet {name}: {e}")))?;
            if range.is_empty() {
                continue;
            }
            let width = range.width();
            let header: Vec<String> = (0..width)
                .map(|c| {
                    range
                        .get((0, c))
                        .map(|v| v.to_string().trim().to_string())
                        .unwrap_or_default()
                })
                .collect();
            if self.headers.is_empty() {
                self.headers = header;
            } else if header != self.headers {
                return Err(sheet_error(format!(
                    "sheet {name} has a different header row than the first sheet; \
                     sheets are read as one table, so import it as a workbook of its own"
                )));
            }
            self.range = range;
            self.row = 1;
            return Ok(true);
        }
        Ok(false)
    }
}

impl RowSource for XlsxSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self) -> Option<Result<Vec<Option<String>>, ImportError>> {
        while self.row >= self.range.height() {
            match self.load_next_sheet() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
        let r = self.row;
        self.row += 1;
        Some(Ok((0..self.range.width())
            .map(|c| self.range.get((r, c)).and_then(xlsx_value))
            .collect()))
    }
}

/// A Parquet file, batch by batch.
pub struct ParquetSource {
    headers: Vec<String>,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pending: std::vec::IntoIter<Vec<Option<String>>>,
}

impl ParquetSource {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let f = File::open(path)?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| {
            ImportError::Malformed {
                row: 0,
                detail: e.to_string(),
            }
        })?;
        let headers = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| ImportError::Malformed {
                row: 0,
                detail: e.to_string(),
            })?;
        Ok(Self {
            headers,
            reader,
            pending: Vec::new().into_iter(),
        })
    }
}

impl RowSource for ParquetSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self) -> Option<Result<Vec<Option<String>>, ImportError>> {
        loop {
            if let Some(r) = self.pending.next() {
                return Some(Ok(r));
            }
            let batch = match self.reader.next()? {
                Ok(b) => b,
                Err(e) => {
                    return Some(Err(ImportError::Malformed {
                        row: 0,
                        detail: e.to_string(),
                    }));
                }
            };
            let opts = FormatOptions::default();
            let formatters: Result<Vec<_>, _> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect();
            let formatters = match formatters {
                Ok(f) => f,
                Err(e) => {
                    return Some(Err(ImportError::Malformed {
                        row: 0,
                        detail: e.to_string(),
                    }));
                }
            };
            let rows: Vec<Vec<Option<String>>> = (0..batch.num_rows())
                .map(|i| {
                    batch
                        .columns()
                        .iter()
                        .zip(&formatters)
                        .map(|(col, f)| {
                            if col.is_null(i) {
                                None
                            } else {
                                cell(&f.value(i).to_string())
                            }
                        })
                        .collect()
                })
                .collect();
            self.pending = rows.into_iter();
        }
    }
}

/// JSON Lines: the keys of the first object are the columns.
pub struct JsonlSource {
    headers: Vec<String>,
    lines: std::io::Lines<BufReader<File>>,
    first: Option<serde_json::Map<String, serde_json::Value>>,
    line: u64,
}

fn json_cell(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => cell(s),
        other => Some(other.to_string()),
    }
}

impl JsonlSource {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        use std::io::BufRead;
        let mut lines = BufReader::new(File::open(path)?).lines();
        let mut line = 0;
        let first = loop {
            match lines.next() {
                None => break None,
                Some(l) => {
                    line += 1;
                    let l = l?;
                    if l.trim().is_empty() {
                        continue;
                    }
                    let obj: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&l).map_err(|e| ImportError::Malformed {
                            row: line,
                            detail: e.to_string(),
                        })?;
                    break Some(obj);
                }
            }
        };
        let headers = first.as_ref().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        Ok(Self {
            headers,
            lines,
            first,
            line,
        })
    }
}

impl RowSource for JsonlSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self) -> Option<Result<Vec<Option<String>>, ImportError>> {
        if let Some(obj) = self.first.take() {
            return Some(Ok(self.headers.iter().map(|h| json_cell(obj.get(h))).collect()));
        }
        loop {
            let l = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e.into())),
            };
            self.line += 1;
            if l.trim().is_empty() {
                continue;
            }
            return Some(
                match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&l) {
                    Ok(obj) => Ok(self.headers.iter().map(|h| json_cell(obj.get(h))).collect()),
                    Err(e) => Err(ImportError::Malformed {
                        row: self.line,
                        detail: e.to_string(),
                    }),
                },
            );
        }
    }
}

/// Opens a file in `format`.
pub fn open(
    path: &Path,
    format: Format,
    encoding: Option<&'static Encoding>,
) -> Result<Box<dyn RowSource>, ImportError> {
    Ok(match format {
        Format::Csv => Box::new(CsvSource::open(path, encoding)?),
        Format::Xlsx => Box::new(XlsxSource::open(path)?),
        Format::Parquet => Box::new(ParquetSource::open(path)?),
        Format::Jsonl => Box::new(JsonlSource::open(path)?),
    })
}
