//! Import tests: encodings, formats, row-level errors, quarantine, rejection, bounded memory.

#![allow(missing_docs)]

use std::io::Write;

use shuyu_classify::{FieldType, Level};
use shuyu_core_shim::*;
use shuyu_import::{Format, OnError, Options, import_file};
use shuyu_keyring::MasterKey;
use shuyu_vault::Vault;

mod shuyu_core_shim {
    /// Valid ID numbers under the fictional prefecture.
    pub fn id(i: u32) -> String {
        let body = format!("37990119850101{:03}", i % 1000);
        (0..10u8)
            .map(|c| format!("{body}{c}"))
            .chain(std::iter::once(format!("{body}X")))
            .find(|s| shuyu_classify::FieldType::IdNumber.accepts(s))
            .unwrap_or_default()
    }
}

fn vault(dir: &std::path::Path) -> Vault {
    Vault::local(dir, MasterKey::from_bytes([1u8; 32])).expect("vault")
}

fn population_csv(rows: u32, dirty: &[(u32, &str)]) -> String {
    let mut s = String::from("person_id,name,gender,birth_date,region,phone,income\n");
    let names = ["王伟", "李娜", "张敏", "刘洋", "陈静"];
    for i in 1..=rows {
        let mut id = id(i);
        let mut date = "1985-01-01".to_string();
        let mut income = format!("{}", 3000 + i * 7);
        for (r, kind) in dirty {
            if *r == i {
                match *kind {
                    "check" => {
                        let last = id.pop().unwrap_or('0');
                        id.push(if last == '1' { '2' } else { '1' });
                    }
                    "date" => date = "1985/1/1".into(),
                    "nan" => income = "一万".into(),
                    "missing" => id.clear(),
                    _ => {}
                }
            }
        }
        s.push_str(&format!(
            "{id},{},男,{date},379901,1380013{:04},{income}\n",
            names[i as usize % 5],
            i
        ));
    }
    s
}

#[tokio::test]
async fn a_gbk_csv_is_detected_validated_and_sealed_with_its_dirty_rows_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = population_csv(300, &[(7, "check"), (50, "date"), (120, "nan"), (200, "missing")]);
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    let path = dir.path().join("population.csv");
    std::fs::write(&path, &gbk).expect("write");
    assert!(std::str::from_utf8(&gbk).is_err(), "really GBK");
    let v = vault(dir.path());
    let out = import_file(&path, &Options::default(), &v, "ver-1", "datasets/pop/ver-1.parquet")
        .await
        .expect("import");
    let r = &out.report;
    assert_eq!(r.encoding, "GBK");
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (300, 296, 4));
    let errs: Vec<(u64, &str, &str)> = r
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str(), e.rule.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (7, "person_id", "id_number_check"),
            (50, "birth_date", "not_a_date"),
            (120, "income", "not_a_number"),
            (200, "person_id", "required")
        ]
    );
    assert!(
        r.errors
            .iter()
            .all(|e| e.value_digest.len() == 16 || e.rule == "required")
    );
    let col = |n: &str| r.columns.iter().find(|c| c.name == n).expect("column");
    assert_eq!(col("person_id").class.field_type, FieldType::IdNumber);
    assert_eq!(col("person_id").class.grade.level, Some(Level::L4));
    assert_eq!(col("name").class.field_type, FieldType::PersonName);
    assert_eq!(col("phone").class.field_type, FieldType::Mobile);
    assert_eq!(col("birth_date").class.field_type, FieldType::Date);
    assert_eq!(r.grade.level, Some(Level::L4));
    // Reviewers see masked examples only.
    assert!(
        col("person_id")
            .examples
            .iter()
            .all(|e| e.contains("***") && e.len() == 18)
    );
    assert!(col("name").examples.iter().all(|e| e.ends_with('*')));
    let data = out.data.expect("sealed");
    assert_eq!(data.rows, 296);
    assert_eq!(out.quarantine.expect("quarantine").rows, 4);
    // The vault holds ciphertext only.
    let canary = id(3);
    for entry in walk(dir.path()) {
        if entry.ends_with("population.csv") {
            continue;
        }
        let bytes = std::fs::read(&entry).expect("read");
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{entry:?} holds plaintext"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn reject_keeps_nothing_and_overrides_win() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("p.csv");
    std::fs::write(&path, population_csv(50, &[(9, "check")])).expect("write");
    let v = vault(dir.path());
    let opts = Options {
        on_error: OnError::Reject,
        ..Default::default()
    };
    let out = import_file(&path, &opts, &v, "ver-r", "datasets/p/ver-r.parquet")
        .await
        .expect("import");
    assert!(out.report.rejected);
    assert!(out.data.is_none() && out.quarantine.is_none());
    assert_eq!(out.report.error_count, 1);
    assert!(walk(&dir.path().join("vault")).is_empty(), "nothing stored");
    assert!(walk(&dir.path().join("vault-staging")).is_empty(), "nothing staged");
    // The provider says `region` is text, not a number.
    let mut overrides = std::collections::HashMap::new();
    overrides.insert("region".to_string(), FieldType::Category);
    let out = import_file(
        &path,
        &Options {
            overrides,
            ..Default::default()
        },
        &v,
        "ver-o",
        "datasets/p/ver-o.parquet",
    )
    .await
    .expect("import");
    let region = out.report.columns.iter().find(|c| c.name == "region").expect("region");
    assert!(region.overridden);
    assert_eq!(region.class.field_type, FieldType::Category);
    let bad = Options {
        overrides: [("nope".to_string(), FieldType::Text)].into(),
        ..Default::default()
    };
    assert!(
        import_file(&path, &bad, &v, "ver-x", "datasets/p/ver-x.parquet")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn jsonl_imports_and_a_malformed_line_is_a_row_of_the_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("e.jsonl");
    let mut f = std::fs::File::create(&path).expect("create");
    for i in 0..40 {
        if i == 13 {
            writeln!(f, "{{not json").expect("write");
            continue;
        }
        let uscc = if i % 3 == 0 {
            "null".to_string()
        } else {
            "\"91379900MA3C00001X\"".to_string()
        };
        writeln!(
            f,
            "{{\"account_id\":\"A{i:04}\",\"uscc\":{uscc},\"month\":\"2026-0{}\",\"kwh\":{}}}",
            1 + i % 9,
            100 + i
        )
        .expect("write");
    }
    drop(f);
    let v = vault(dir.path());
    let out = import_file(&path, &Options::default(), &v, "ver-j", "datasets/e/ver-j.parquet")
        .await
        .expect("import");
    let r = &out.report;
    assert_eq!(r.format, Format::Jsonl);
    assert_eq!(r.rows_read, 40);
    assert!(
        r.errors.iter().any(|e| e.row == 14 && e.rule == "malformed_row"),
        "{:?}",
        r.errors
    );
    let month = r.columns.iter().find(|c| c.name == "month").expect("month");
    assert_eq!(month.class.field_type, FieldType::Month);
    let uscc = r.columns.iter().find(|c| c.name == "uscc").expect("uscc");
    assert!(!uscc.required, "households have no credit code");
}

fn workbook(path: &std::path::Path, sheets: &[(&str, &[&str], std::ops::Range<u32>)]) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    for (name, header, rows) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).expect("name");
        for (c, h) in header.iter().enumerate() {
            ws.write_string(0, c as u16, *h).expect("header");
        }
        for (r, i) in rows.clone().enumerate() {
            ws.write_string(r as u32 + 1, 0, id(i)).expect("id");
            ws.write_number(r as u32 + 1, 1, f64::from(i)).expect("n");
        }
    }
    wb.save(path).expect("save");
}

#[tokio::test]
async fn a_table_continued_over_sheets_is_read_whole_and_a_foreign_sheet_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(dir.path());
    // Excel caps a sheet's rows, so large exports continue on a second sheet with the same header.
    let path = dir.path().join("tax.xlsx");
    workbook(
        &path,
        &[
            ("tax_payment", &["person_id", "amount"], 1..301),
            ("tax_payment_2", &["person_id", "amount"], 301..451),
        ],
    );
    let out = import_file(&path, &Options::default(), &v, "ver-x", "datasets/x/ver-x.parquet")
        .await
        .expect("import");
    assert_eq!(out.report.format, Format::Xlsx);
    assert_eq!(out.report.rows_read, 450, "rows on the second sheet count too");
    assert_eq!(out.report.rows_accepted, 450);
    assert_eq!(out.report.columns[0].class.field_type, FieldType::IdNumber);

    // A sheet with another header is not skipped silently.
    let path = dir.path().join("mixed.xlsx");
    workbook(
        &path,
        &[
            ("data", &["person_id", "amount"], 1..301),
            ("说明", &["备注", "amount"], 1..3),
        ],
    );
    let err = import_file(&path, &Options::default(), &v, "ver-y", "datasets/y/ver-y.parquet")
        .await
        .expect_err("foreign sheet");
    assert!(err.to_string().contains("说明"), "{err}");
}

/// Imports `bytes` as a CSV with `opts`; returns the report and the quarantined row count.
async fn import_csv(bytes: &[u8], opts: &Options) -> (shuyu_import::Report, u64) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("upload.csv");
    std::fs::write(&path, bytes).expect("write");
    let v = vault(dir.path());
    let out = import_file(&path, opts, &v, "ver-m", "datasets/m/ver-m.parquet")
        .await
        .expect("import");
    let q = out.quarantine.map(|q| q.rows).unwrap_or(0);
    (out.report, q)
}

fn rows_of(r: &shuyu_import::Report) -> Vec<(u64, String, String)> {
    r.errors
        .iter()
        .map(|e| (e.row, e.field.clone(), e.rule.clone()))
        .collect()
}

fn row(n: u64, field: &str, rule: &str) -> (u64, String, String) {
    (n, field.into(), rule.into())
}

/// The data steward's stumbles (issue "for the people who use it every day"): files that
/// imported with "0 problems" while losing or garbling rows. Each defect is now a row of the
/// report, every data line is accounted for (accepted + quarantined = read), and a clean
/// file with a BOM, CRLF/LF mixed and an empty line imports whole.
#[tokio::test]
async fn a_stewards_malformed_csvs_report_every_defect_and_lose_no_row() {
    let base = population_csv(20, &[]);
    let lines: Vec<&str> = base.lines().collect();
    let join = |ls: &[String]| ls.join("\n") + "\n";
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // Ragged: an extra field on data row 5, one missing on row 9 — neither padded nor cut.
    edited[5].push_str(",多出的字段");
    let cut = edited[9].rfind(',').expect("comma");
    edited[9].truncate(cut);
    let (r, q) = import_csv(join(&edited).as_bytes(), &Options::default()).await;
    assert_eq!(rows_of(&r), vec![row(5, "*", "ragged_row"), row(9, "*", "ragged_row")]);
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined, q), (20, 18, 2, 2));

    // An unclosed quote on row 2 of four: it swallows the lines after it. Before, two rows
    // and no problem; now the swallowing row is reported by its field and quarantined whole.
    let four = join(&lines[..5].iter().map(|l| l.to_string()).collect::<Vec<_>>());
    let broken = four.replacen("张敏", "\"张敏", 1);
    assert_ne!(broken, four, "the name is in the second row");
    let (r, q) = import_csv(broken.as_bytes(), &Options::default()).await;
    assert_eq!(rows_of(&r), vec![row(2, "name", "field_spans_lines")], "{r:?}");
    assert_eq!((r.rows_accepted, r.rows_quarantined, q), (1, 1, 1));

    // A NUL in a name and a 0xFF byte in a region of a UTF-8 file: each value is reported,
    // and the rest of the file is still read as UTF-8 (not guessed into another encoding).
    let mut bytes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut b = l.as_bytes().to_vec();
        if i == 3 {
            let at = l.find(",男").expect("gender");
            b.insert(at, 0);
        }
        if i == 6 {
            let at = l.find(",379901,").expect("region") + 1;
            b[at] = 0xFF;
        }
        bytes.extend(b);
        bytes.push(b'\n');
    }
    let (r, _) = import_csv(&bytes, &Options::default()).await;
    assert_eq!(r.encoding, "UTF-8");
    assert_eq!(
        rows_of(&r),
        vec![row(3, "name", "bad_bytes"), row(6, "region", "bad_bytes")]
    );
    assert_eq!((r.rows_read, r.rows_accepted), (20, 18));

    // A UTF-8 file read as GBK because the steward chose GBK: the file as a whole is reported.
    let gbk = Options {
        encoding: Some(encoding_rs::GBK),
        ..Options::default()
    };
    let (r, _) = import_csv(base.as_bytes(), &gbk).await;
    assert_eq!(
        r.errors.first().map(|e| (e.row, e.rule.as_str())),
        Some((0, "encoding_mismatch"))
    );
    // … while a GBK file read as GBK, or a UTF-8 file read as UTF-8, is quiet.
    let (really_gbk, _, _) = encoding_rs::GBK.encode(&base);
    let (r, _) = import_csv(&really_gbk, &gbk).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let utf8 = Options {
        encoding: Some(encoding_rs::UTF_8),
        ..Options::default()
    };
    let (r, _) = import_csv(base.as_bytes(), &utf8).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // A BOM, CRLF and LF mixed, an empty line: nothing to report, nothing lost.
    let mut clean = String::from("\u{feff}");
    for (i, l) in lines.iter().enumerate() {
        clean.push_str(l);
        clean.push_str(if i % 2 == 0 { "\r\n" } else { "\n" });
        if i == 10 {
            clean.push('\n');
        }
    }
    let (r, _) = import_csv(clean.as_bytes(), &Options::default()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.rows_read, r.rows_accepted), (20, 20));
    assert_eq!(r.columns[0].name, "person_id", "the BOM is not part of the first name");

    // A header naming a column twice stops the import, naming it.
    let twice = base.replacen("phone", "name", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("twice.csv");
    std::fs::write(&path, twice).expect("write");
    let err = import_file(
        &path,
        &Options::default(),
        &vault(dir.path()),
        "v",
        "datasets/t/v.parquet",
    )
    .await
    .expect_err("duplicate column");
    assert_eq!(err.to_string(), "the header names column name twice");
}
