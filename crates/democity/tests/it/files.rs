//! The files: row counts, formats, encodings, read-back with the format's own readers.

use arrow::datatypes::Schema;
use calamine::{Data, Reader, Xlsx, open_workbook};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shuyu_democity::{DATASETS, GenError, MANIFEST_FILE, Manifest, Options, generate, medical_visit_schema, rows_at};

use crate::common::{SCALE, city, info, read, scratch};

#[test]
fn row_counts_match_the_manifest_and_the_scale() {
    let (dir, manifest) = city();
    assert_eq!(manifest.datasets.len(), DATASETS.len());
    for (spec, info) in DATASETS.iter().zip(&manifest.datasets) {
        assert_eq!(info.name, spec.name);
        assert_eq!(info.file, spec.file);
        assert_eq!(info.format, spec.format);
        assert_eq!(info.encoding, spec.encoding);
        let cols: Vec<&str> = info.columns.iter().map(String::as_str).collect();
        assert_eq!(cols, spec.columns);
        let expected = ((spec.base_rows as f64) * SCALE).ceil() as u64;
        assert_eq!(info.rows, expected, "{}", spec.name);
        assert_eq!(rows_at(spec.base_rows, SCALE), expected);
        let table = read(dir, info);
        assert_eq!(table.rows.len() as u64, info.rows, "{}: rows in file", spec.name);
    }
    // The manifest on disk is the one returned.
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).expect("manifest");
    let on_disk: Manifest = serde_json::from_str(&text).expect("manifest json");
    assert_eq!(&on_disk, manifest);
    assert_eq!(rows_at(50_000, 1e-9), 1, "at least one row");
}

#[test]
fn enterprise_csv_is_gbk_not_utf8() {
    let (dir, _) = city();
    let bytes = std::fs::read(dir.join("enterprise.csv")).expect("read");
    assert!(std::str::from_utf8(&bytes).is_err(), "must not be valid UTF-8");
    let text = encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .expect("decodes as GBK without errors");
    assert!(text.contains("有限公司"));
    assert!(text.starts_with("uscc,name,legal_rep_id,industry,registered_capital,established,region,status\n"));
}

#[test]
fn xlsx_reads_back_with_calamine() {
    let (dir, manifest) = city();
    let info = info(manifest, "tax_payment");
    let mut book: Xlsx<_> = open_workbook(dir.join(&info.file)).expect("open");
    assert_eq!(book.sheet_names(), vec!["tax_payment".to_string()]);
    let range = book.worksheet_range("tax_payment").expect("sheet");
    let header: Vec<String> = range
        .rows()
        .next()
        .expect("header")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(header, info.columns);
    assert_eq!(range.height() as u64, info.rows + 1);
    let dirty: std::collections::HashSet<u64> = info.dirty.iter().map(|d| d.row).collect();
    for (i, row) in range.rows().skip(1).enumerate() {
        if dirty.contains(&(i as u64 + 1)) {
            continue;
        }
        assert!(matches!(row[0], Data::String(_)), "uscc is text");
        assert!(
            matches!(row[1], Data::Float(y) if (2023.0..=2025.0).contains(&y)),
            "year: {:?}",
            row[1]
        );
        assert!(
            matches!(row[2], Data::Float(q) if (1.0..=4.0).contains(&q)),
            "quarter: {:?}",
            row[2]
        );
        assert!(matches!(row[4], Data::Float(t) if t >= 0.0), "tax_paid: {:?}", row[4]);
    }
}

#[test]
fn parquet_reads_back_with_the_declared_schema() {
    let (dir, manifest) = city();
    let info = info(manifest, "medical_visit");
    let file = std::fs::File::open(dir.join(&info.file)).expect("open");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let declared = medical_visit_schema();
    let got = Schema::new(builder.schema().fields().clone());
    assert_eq!(got, declared);
    let meta = builder.metadata();
    assert!(meta.row_groups().iter().all(|g| g.num_rows() <= 65_536));
    let total: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
    assert_eq!(total as u64, info.rows);
    let rows: usize = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum();
    assert_eq!(rows as u64, info.rows);
}

#[test]
fn jsonl_households_have_null_uscc() {
    let (dir, manifest) = city();
    let info = info(manifest, "electricity");
    let table = read(dir, info);
    let firms = table.rows.iter().filter(|r| r[1].is_some()).count() as f64;
    let share = firms / table.rows.len() as f64;
    assert!((0.25..0.36).contains(&share), "enterprise share {share}");
    let text = std::fs::read_to_string(dir.join(&info.file)).expect("read");
    let first = text.lines().next().expect("a line");
    assert!(first.starts_with("{\"account_id\":"), "{first}");
}

#[test]
fn progress_reports_every_dataset_to_completion() {
    let dir = scratch("progress");
    let mut last = std::collections::BTreeMap::new();
    let m = generate(&dir, &Options { scale: 0.0002, seed: 1 }, &mut |name, done, total| {
        assert!(done <= total);
        last.insert(name.to_string(), (done, total));
    })
    .expect("generate");
    for info in &m.datasets {
        assert_eq!(last.get(&info.name), Some(&(info.rows, info.rows)), "{}", info.name);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_scales_are_refused_before_writing() {
    let dir = scratch("bad-scale");
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = generate(&dir, &Options { scale, seed: 1 }, &mut |_, _, _| {}).expect_err("refused");
        assert!(matches!(err, GenError::InvalidScale(_)), "{err}");
    }
    let err = generate(&dir, &Options { scale: 1000.0, seed: 1 }, &mut |_, _, _| {}).expect_err("too large");
    assert!(matches!(err, GenError::ScaleTooLarge { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0, "nothing written");
}

#[test]
fn a_tiny_city_has_one_row_per_dataset() {
    let dir = scratch("tiny");
    let m = generate(&dir, &Options { scale: 1e-9, seed: 3 }, &mut |_, _, _| {}).expect("generate");
    for info in &m.datasets {
        assert_eq!(info.rows, 1, "{}", info.name);
        assert!(info.dirty.is_empty(), "{}: no dirty rows below 100 rows", info.name);
        assert_eq!(read(&dir, info).rows.len(), 1, "{}", info.name);
    }
    let _ = std::fs::remove_dir_all(dir);
}
