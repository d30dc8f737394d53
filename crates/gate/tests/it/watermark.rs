//! a released table carries a recipient-specific watermark that survives shuffling,
//! column reordering, halving and CSV/Excel round trips, and detection names the release and
//! recipient of a leaked copy — never a wrong one — out of 200 candidate keys.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Float32Type, Float64Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use shuyu_gate::watermark::{
    Candidate, FLOAT_MAX_RELATIVE_CHANGE, LeakedTable, MIN_BITS, Mark, MarkSpec, Outcome, WatermarkError, WatermarkKey,
    detect, embed, read_leaked,
};

const SECRET: &[u8] = b"demo city: platform watermark secret (test only)";

const DISTRICTS: [&str; 16] = [
    "东城区",
    "西城区",
    "朝阳区",
    "丰台区",
    "石景山区",
    "海淀区",
    "门头沟区",
    "房山区",
    "通州区",
    "顺义区",
    "昌平区",
    "大兴区",
    "怀柔区",
    "平谷区",
    "密云区",
    "延庆区",
];

const RECIPIENTS: [&str; 4] = [
    "北京数智科技有限公司",
    "华北信用评估中心",
    "城市交通研究院",
    "健康大数据实验室",
];

const RELEASES: usize = 50;

/// SplitMix64: a small deterministic generator, so every run tests the same copies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn mark(release: usize, recipient: usize) -> Mark {
    Mark {
        release: format!("REL-2025-{release:03}"),
        recipient: RECIPIENTS[recipient].to_owned(),
    }
}

fn spec() -> MarkSpec {
    MarkSpec {
        key_columns: vec!["district".into(), "month".into()],
        mark_columns: vec!["visits".into(), "mean_cost".into()],
    }
}

/// 50 releases × 4 recipients, all from one secret: every key the platform has handed out.
fn candidates(spec: &MarkSpec) -> Vec<Candidate> {
    let mut out = Vec::new();
    for release in 0..RELEASES {
        for recipient in 0..RECIPIENTS.len() {
            let mark = mark(release, recipient);
            let key = WatermarkKey::derive(SECRET, &mark);
            out.push(Candidate {
                mark,
                key,
                spec: spec.clone(),
            });
        }
    }
    out
}

/// District × month visits and mean cost: 192 rows, every count at least 10.
fn release_table(seed: u64) -> RecordBatch {
    let mut rng = Rng(seed);
    let (mut district, mut month, mut visits, mut cost) = (vec![], vec![], vec![], vec![]);
    for d in DISTRICTS {
        for m in 1..=12 {
            district.push(d.to_owned());
            month.push(format!("2025-{m:02}"));
            visits.push(10 + rng.below(5_000) as i64);
            cost.push(20.0 + rng.unit() * 900.0);
        }
    }
    batch(vec![
        ("district", Arc::new(StringArray::from(district)) as ArrayRef),
        ("month", Arc::new(StringArray::from(month))),
        ("visits", Arc::new(Int64Array::from(visits))),
        ("mean_cost", Arc::new(Float64Array::from(cost))),
    ])
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch")
}

fn marked_copy(table: &RecordBatch, spec: &MarkSpec, release: usize, recipient: usize) -> RecordBatch {
    let key = WatermarkKey::derive(SECRET, &mark(release, recipient));
    embed(table, &key, spec).expect("embed").batch
}

fn text(batch: &RecordBatch) -> LeakedTable {
    LeakedTable::from_batch(batch).expect("as text")
}

fn shuffled(table: &LeakedTable, rng: &mut Rng) -> LeakedTable {
    let mut out = table.clone();
    rng.shuffle(&mut out.rows);
    out
}

fn columns_reordered(table: &LeakedTable, rng: &mut Rng) -> LeakedTable {
    let mut order: Vec<usize> = (0..table.headers.len()).collect();
    while order.iter().enumerate().all(|(i, &j)| i == j) {
        rng.shuffle(&mut order);
    }
    LeakedTable {
        headers: order.iter().map(|&i| table.headers[i].clone()).collect(),
        rows: table
            .rows
            .iter()
            .map(|r| order.iter().map(|&i| r[i].clone()).collect())
            .collect(),
    }
}

/// A random half of the rows, in their original order.
fn half(table: &LeakedTable, rng: &mut Rng) -> LeakedTable {
    let mut keep: Vec<usize> = (0..table.rows.len()).collect();
    rng.shuffle(&mut keep);
    keep.truncate(table.rows.len() / 2);
    keep.sort_unstable();
    LeakedTable {
        headers: table.headers.clone(),
        rows: keep.iter().map(|&i| table.rows[i].clone()).collect(),
    }
}

fn via_csv(table: &LeakedTable, dir: &Path) -> LeakedTable {
    let path = dir.join("leak.csv");
    let mut w = csv::Writer::from_path(&path).expect("csv file");
    w.write_record(&table.headers).expect("csv header");
    for row in &table.rows {
        w.write_record(row).expect("csv row");
    }
    w.flush().expect("csv flush");
    read_leaked(&path).expect("read csv")
}

/// Written as a person exporting to Excel would: the `numeric` columns as numbers, the rest as
/// text.
fn via_xlsx(table: &LeakedTable, numeric: &[&str], dir: &Path) -> LeakedTable {
    let path = dir.join("leak.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in table.headers.iter().enumerate() {
        sheet.write_string(0, c as u16, h).expect("xlsx header");
    }
    for (r, row) in table.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c16) = (r as u32 + 1, c as u16);
            if numeric.contains(&table.headers[c].as_str()) {
                sheet
                    .write_number(r, c16, cell.parse::<f64>().expect("number"))
                    .expect("xlsx number");
            } else {
                sheet.write_string(r, c16, cell).expect("xlsx string");
            }
        }
    }
    book.save(&path).expect("xlsx save");
    read_leaked(&path).expect("read xlsx")
}

fn assert_names(table: &LeakedTable, candidates: &[Candidate], want: &Mark, what: &str) {
    let detection = detect(table, candidates);
    match &detection.outcome {
        Outcome::Found(found) => {
            assert_eq!(&found.mark, want, "{what}: named the wrong release/recipient");
            assert!(found.bits >= MIN_BITS, "{what}: {found:?}");
        }
        other => panic!("{what}: {other:?}; best scores {:?}", &detection.scores[..3]),
    }
}

#[test]
fn each_transformation_of_a_leaked_copy_names_its_release_and_recipient() {
    let spec = spec();
    let candidates = candidates(&spec);
    let table = release_table(1);
    let want = mark(17, 2);
    let leak = text(&marked_copy(&table, &spec, 17, 2));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(7);
    let numeric = ["visits", "mean_cost"];

    assert_names(&leak, &candidates, &want, "as released");
    assert_names(&shuffled(&leak, &mut rng), &candidates, &want, "rows shuffled");
    assert_names(
        &columns_reordered(&leak, &mut rng),
        &candidates,
        &want,
        "columns reordered",
    );
    assert_names(&half(&leak, &mut rng), &candidates, &want, "half the rows");
    assert_names(&via_csv(&leak, dir.path()), &candidates, &want, "CSV round trip");
    assert_names(
        &via_xlsx(&leak, &numeric, dir.path()),
        &candidates,
        &want,
        "XLSX round trip",
    );
    let combined = half(&columns_reordered(&shuffled(&leak, &mut rng), &mut rng), &mut rng);
    assert_names(&via_csv(&combined, dir.path()), &candidates, &want, "all, then CSV");
    assert_names(
        &via_xlsx(&combined, &numeric, dir.path()),
        &candidates,
        &want,
        "all, then XLSX",
    );
}

#[test]
fn forty_random_leaks_name_exactly_their_release_and_recipient() {
    let spec = spec();
    let candidates = candidates(&spec);
    // One table released to many recipients: the copies differ only by their marks.
    let table = release_table(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(2025);
    for i in 0..40 {
        let (release, recipient) = (rng.below(RELEASES), rng.below(RECIPIENTS.len()));
        let leak = text(&marked_copy(&table, &spec, release, recipient));
        let leak = half(&columns_reordered(&shuffled(&leak, &mut rng), &mut rng), &mut rng);
        let leak = if i % 2 == 0 {
            via_csv(&leak, dir.path())
        } else {
            via_xlsx(&leak, &["visits", "mean_cost"], dir.path())
        };
        assert_names(&leak, &candidates, &mark(release, recipient), &format!("leak {i}"));
    }
}

#[test]
fn numeric_year_keys_written_as_excel_numbers_still_identify_rows() {
    let mut rng = Rng(3);
    let (mut year, mut district, mut count, mut income) = (vec![], vec![], vec![], vec![]);
    for y in 2015..2025 {
        for d in DISTRICTS {
            year.push(y as i64);
            district.push(d);
            count.push(10 + rng.below(900) as i64);
            income.push(50_000.0 + rng.unit() * 1e5);
        }
    }
    let table = batch(vec![
        ("year", Arc::new(Int64Array::from(year)) as ArrayRef),
        ("district", Arc::new(StringArray::from(district))),
        ("households", Arc::new(Int64Array::from(count))),
        ("mean_income", Arc::new(Float64Array::from(income))),
    ]);
    let spec = MarkSpec {
        key_columns: vec!["year".into(), "district".into()],
        mark_columns: vec!["households".into(), "mean_income".into()],
    };
    let candidates = candidates(&spec);
    let leak = text(&marked_copy(&table, &spec, 33, 1));
    let dir = tempfile::tempdir().expect("tempdir");
    // Excel gives the year back as 2015.0; the canonical text makes it "2015" again.
    let xlsx = via_xlsx(&leak, &["year", "households", "mean_income"], dir.path());
    assert!(xlsx.rows.iter().all(|r| r[0].len() == 4), "{:?}", &xlsx.rows[0]);
    assert_names(
        &shuffled(&xlsx, &mut rng),
        &candidates,
        &mark(33, 1),
        "numeric years via XLSX",
    );
    assert_names(
        &half(&via_csv(&leak, dir.path()), &mut rng),
        &candidates,
        &mark(33, 1),
        "years via CSV",
    );
}

#[test]
fn an_unmarked_copy_is_never_attributed() {
    let spec = spec();
    let candidates = candidates(&spec);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(4);
    for seed in [5, 6, 7] {
        let plain = text(&release_table(seed));
        for (what, copy) in [
            ("as is", plain.clone()),
            ("half", half(&plain, &mut rng)),
            ("via XLSX", via_xlsx(&plain, &["visits", "mean_cost"], dir.path())),
        ] {
            let detection = detect(&copy, &candidates);
            assert!(
                matches!(detection.outcome, Outcome::NotFound | Outcome::Inconclusive { .. }),
                "unmarked table {seed} {what}: {:?}",
                detection.outcome
            );
            assert!(detection.found().is_none());
            let best = &detection.scores[0];
            assert!(
                best.bits >= MIN_BITS && (best.matched as f64) < 0.75 * best.bits as f64,
                "{best:?}"
            );
        }
    }
}

#[test]
fn a_three_row_table_is_inconclusive() {
    let table = batch(vec![
        (
            "district",
            Arc::new(StringArray::from(vec!["东城区", "西城区", "朝阳区"])) as ArrayRef,
        ),
        (
            "month",
            Arc::new(StringArray::from(vec!["2025-01", "2025-01", "2025-01"])),
        ),
        ("visits", Arc::new(Int64Array::from(vec![120, 340, 560]))),
        ("mean_cost", Arc::new(Float64Array::from(vec![101.25, 202.5, 303.75]))),
    ]);
    let spec = spec();
    let embedded = embed(&table, &WatermarkKey::derive(SECRET, &mark(0, 0)), &spec).expect("embed");
    assert_eq!(embedded.bits, 6);
    let detection = detect(&text(&embedded.batch), &candidates(&spec));
    assert_eq!(detection.outcome, Outcome::Inconclusive { bits: 6 });
    assert!(detection.found().is_none());
}

#[test]
fn marking_raises_counts_by_at_most_one_and_moves_floats_within_the_bound() {
    let table = release_table(8);
    let spec = spec();
    let embedded = embed(&table, &WatermarkKey::derive(SECRET, &mark(3, 3)), &spec).expect("embed");
    assert_eq!(embedded.bits, 2 * 192, "every cell carries a bit");
    assert_eq!(embedded.independent_bits, 2 * 192);
    let marked = &embedded.batch;
    assert_eq!(marked.schema(), table.schema());
    assert_eq!(marked.num_rows(), table.num_rows());
    for key in ["district", "month"] {
        assert_eq!(
            marked.column_by_name(key),
            table.column_by_name(key),
            "key column {key} changed"
        );
    }
    let ints = |b: &RecordBatch| b.column(2).as_primitive::<Int64Type>().values().to_vec();
    let (before, after) = (ints(&table), ints(marked));
    let raised = before.iter().zip(&after).filter(|(b, a)| a != b).count();
    for (b, a) in before.iter().zip(&after) {
        assert!(*a == *b || *a == *b + 1, "count {b} became {a}");
    }
    let floats = |b: &RecordBatch| b.column(3).as_primitive::<Float64Type>().values().to_vec();
    let (before, after) = (floats(&table), floats(marked));
    let moved = before.iter().zip(&after).filter(|(b, a)| a != b).count();
    for (b, a) in before.iter().zip(&after) {
        assert!(
            (a - b).abs() <= FLOAT_MAX_RELATIVE_CHANGE * b.abs(),
            "mean {b} became {a}"
        );
    }
    // About half the counts already had the right parity; random floats nearly all move.
    assert!((60..=132).contains(&raised), "{raised} counts raised");
    assert!(moved > 150, "{moved} means moved");
}

#[test]
fn another_recipients_copy_does_not_match_this_key() {
    let spec = spec();
    let table = release_table(9);
    let leak = text(&marked_copy(&table, &spec, 40, 1));
    let all = candidates(&spec);
    let a = all.iter().find(|c| c.mark == mark(40, 0)).expect("A").clone();
    let detection = detect(&leak, std::slice::from_ref(&a));
    let score = &detection.scores[0];
    assert_eq!(score.bits, 384);
    let rate = score.matched as f64 / score.bits as f64;
    assert!((0.4..=0.6).contains(&rate), "B's copy matches A's key at {rate}");
    assert!(
        matches!(detection.outcome, Outcome::NotFound),
        "{:?}",
        detection.outcome
    );
    // And B's own key matches every bit.
    let b = all.iter().find(|c| c.mark == mark(40, 1)).expect("B").clone();
    let detection = detect(&leak, &[a, b]);
    let found = detection.found().expect("B found");
    assert_eq!((found.mark.clone(), found.matched, found.bits), (mark(40, 1), 384, 384));
}

#[test]
fn two_candidates_with_the_same_key_are_ambiguous_not_a_guess() {
    let spec = spec();
    let leak = text(&marked_copy(&release_table(10), &spec, 5, 2));
    let mut candidates = candidates(&spec);
    let twin = Candidate {
        mark: Mark {
            release: "REL-2025-005-reissue".into(),
            recipient: RECIPIENTS[2].into(),
        },
        key: WatermarkKey::derive(SECRET, &mark(5, 2)),
        spec: spec.clone(),
    };
    candidates.push(twin.clone());
    match detect(&leak, &candidates).outcome {
        Outcome::Ambiguous { marks } => {
            assert_eq!(marks.len(), 2);
            assert!(marks.contains(&mark(5, 2)) && marks.contains(&twin.mark));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_copy_without_one_marked_column_is_still_attributed() {
    let spec = spec();
    let leak = text(&marked_copy(&release_table(11), &spec, 21, 3));
    let dropped = LeakedTable {
        headers: leak.headers[..3].to_vec(),
        rows: leak.rows.iter().map(|r| r[..3].to_vec()).collect(),
    };
    assert_names(&dropped, &candidates(&spec), &mark(21, 3), "mean_cost dropped");
}

#[test]
fn float32_measures_carry_the_mark_through_csv() {
    let table = release_table(12);
    let narrow: Float32Array = table.column(3).as_primitive::<Float64Type>().unary(|v| v as f32);
    let table = batch(vec![
        ("district", table.column(0).clone()),
        ("month", table.column(1).clone()),
        ("mean_cost", Arc::new(narrow) as ArrayRef),
    ]);
    let spec = MarkSpec {
        key_columns: vec!["district".into(), "month".into()],
        mark_columns: vec!["mean_cost".into()],
    };
    let embedded = embed(&table, &WatermarkKey::derive(SECRET, &mark(9, 0)), &spec).expect("embed");
    assert!(
        embedded.bits >= 180,
        "only {} of 192 float32 cells marked",
        embedded.bits
    );
    let before = table.column(2).as_primitive::<Float32Type>();
    let after = embedded.batch.column(2).as_primitive::<Float32Type>();
    for (b, a) in before.values().iter().zip(after.values()) {
        let (b, a) = (f64::from(*b), f64::from(*a));
        assert!(
            (a - b).abs() <= (FLOAT_MAX_RELATIVE_CHANGE + 6e-8) * b.abs(),
            "{b} became {a}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let leak = via_csv(&text(&embedded.batch), dir.path());
    assert_names(&leak, &candidates(&spec), &mark(9, 0), "float32 via CSV");
}

#[test]
fn nulls_and_zeros_carry_no_bit_and_stay_as_they_are() {
    let table = batch(vec![
        ("k", Arc::new(StringArray::from(vec!["a", "b", "c", "d"])) as ArrayRef),
        ("n", Arc::new(Int64Array::from(vec![Some(0), None, Some(12), Some(13)]))),
        (
            "x",
            Arc::new(Float64Array::from(vec![Some(0.0), Some(f64::NAN), None, Some(2.5)])),
        ),
    ]);
    let spec = MarkSpec {
        key_columns: vec!["k".into()],
        mark_columns: vec!["n".into(), "x".into()],
    };
    let embedded = embed(&table, &WatermarkKey::derive(SECRET, &mark(1, 1)), &spec).expect("embed");
    assert_eq!(embedded.bits, 3);
    let n = embedded.batch.column(1).as_primitive::<Int64Type>();
    assert_eq!((n.value(0), n.is_null(1)), (0, true));
    let x = embedded.batch.column(2).as_primitive::<Float64Type>();
    assert_eq!(x.value(0), 0.0);
    assert!(x.value(1).is_nan() && x.is_null(2));
}

#[test]
fn bad_specs_name_the_column() {
    let table = batch(vec![
        ("district", Arc::new(StringArray::from(vec!["东城区"])) as ArrayRef),
        ("note", Arc::new(StringArray::from(vec!["x"]))),
        ("visits", Arc::new(Int64Array::from(vec![12]))),
    ]);
    let key = WatermarkKey::derive(SECRET, &mark(0, 0));
    let spec = |keys: &[&str], marks: &[&str]| MarkSpec {
        key_columns: keys.iter().map(|s| s.to_string()).collect(),
        mark_columns: marks.iter().map(|s| s.to_string()).collect(),
    };
    match embed(&table, &key, &spec(&["district"], &["note"])) {
        Err(WatermarkError::UnsupportedType { column, data_type }) => {
            assert_eq!((column.as_str(), data_type.as_str()), ("note", "Utf8"));
        }
        other => panic!("{other:?}"),
    }
    match embed(&table, &key, &spec(&["district"], &["cost"])) {
        Err(WatermarkError::NoColumn(c)) => assert_eq!(c, "cost"),
        other => panic!("{other:?}"),
    }
    match embed(&table, &key, &spec(&["month"], &["visits"])) {
        Err(WatermarkError::NoColumn(c)) => assert_eq!(c, "month"),
        other => panic!("{other:?}"),
    }
    match embed(&table, &key, &spec(&["district"], &["district"])) {
        Err(e @ WatermarkError::KeyColumnMarked(_)) => assert!(e.to_string().contains("`district`")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gbk_csv_is_refused_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("泄露副本.csv");
    // "district,visits\n东城区,12" in GBK: 东 = B6AB, 城 = B3C7, 区 = C7F8.
    let mut bytes = b"district,visits\n".to_vec();
    bytes.extend_from_slice(&[0xB6, 0xAB, 0xB3, 0xC7, 0xC7, 0xF8]);
    bytes.extend_from_slice(b",12\n");
    std::fs::write(&path, bytes).expect("write");
    let err = read_leaked(&path).expect_err("GBK must be refused");
    let message = err.to_string();
    assert!(matches!(err, WatermarkError::NotUtf8 { line: 2, .. }), "{message}");
    assert!(message.contains("泄露副本.csv") && message.contains("UTF-8") && message.contains("GBK"));

    let bom = dir.path().join("bom.csv");
    std::fs::write(&bom, "\u{feff}district,visits\n东城区,12\n").expect("write");
    let table = read_leaked(&bom).expect("UTF-8 with BOM");
    assert_eq!(table.headers, ["district", "visits"]);
    assert_eq!(table.rows, [["东城区", "12"]]);

    let missing = dir.path().join("missing.xlsx");
    let err = read_leaked(&missing).expect_err("missing file");
    assert!(err.to_string().contains("missing.xlsx"), "{err}");
}

#[test]
fn key_debug_does_not_print_the_key() {
    let key = WatermarkKey::from_bytes([0xAB; 32]);
    let shown = format!("{key:?}");
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("ab"),
        "{shown}"
    );
}

#[test]
fn the_detection_serializes_for_the_cli() {
    let spec = spec();
    let leak = text(&marked_copy(&release_table(13), &spec, 0, 0));
    let detection = detect(&leak, &candidates(&spec)[..4]);
    let json = serde_json::to_value(&detection).expect("json");
    assert_eq!(json["outcome"]["outcome"], "found");
    assert_eq!(json["outcome"]["mark"]["recipient"], RECIPIENTS[0]);
    assert_eq!(json["scores"].as_array().map(Vec::len), Some(4));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the measures, every marked cell reads back its own bit through CSV text and the
    /// change stays within the bound.
    #[test]
    fn any_measures_read_back_their_marks(
        counts in proptest::collection::vec(1i64..2_000_000, 32),
        means in proptest::collection::vec(1e-4f64..1e9, 32),
    ) {
        let keys: Vec<String> = (0..32).map(|i| format!("g{i}")).collect();
        let table = batch(vec![
            ("g", Arc::new(StringArray::from(keys)) as ArrayRef),
            ("n", Arc::new(Int64Array::from(counts.clone()))),
            ("x", Arc::new(Float64Array::from(means.clone()))),
        ]);
        let spec = MarkSpec { key_columns: vec!["g".into()], mark_columns: vec!["n".into(), "x".into()] };
        let m = mark(1, 2);
        let key = WatermarkKey::derive(SECRET, &m);
        let embedded = embed(&table, &key, &spec).expect("embed");
        prop_assert_eq!(embedded.bits, 64);
        let detection = detect(&text(&embedded.batch), &[Candidate { mark: m.clone(), key, spec }]);
        prop_assert_eq!(detection.scores[0].matched, 64);
        prop_assert_eq!(detection.found().map(|f| f.mark.clone()), Some(m));
        let n = embedded.batch.column(1).as_primitive::<Int64Type>();
        let x = embedded.batch.column(2).as_primitive::<Float64Type>();
        for i in 0..32 {
            prop_assert!(n.value(i) - counts[i] == 0 || n.value(i) - counts[i] == 1);
            prop_assert!((x.value(i) - means[i]).abs() <= FLOAT_MAX_RELATIVE_CHANGE * means[i]);
        }
    }
}
