//! Masking throughput (issue "De-identification engine", BENCHMARKS.md): cells per second
//! on one core for display masks, keyed pseudonyms, FF1 tokens and synthetic values on a
//! column of one million ID numbers (and mobiles, names), against the baseline measured in
//! the same run: the same column copied through the same Arrow string builder unchanged.
//! Goal: ≥ 10 M cells/s/core for display masks and pseudonyms.
//!
//! Run: `cargo bench -p shuyu-mask --bench mask` (`SHUYU_BENCH_CELLS` to change the size).

#![allow(missing_docs)]

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shuyu_mask::Technique;
use shuyu_mask::display::{DisplayMask, NameMask};
use shuyu_mask::pseudonym::Pseudonymize;
use shuyu_mask::synthetic::{Synthetic, SyntheticKind};
use shuyu_mask::token::{Ff1Token, TokenKind};

fn cells() -> usize {
    std::env::var("SHUYU_BENCH_CELLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// A column of `n` values of `kind`, made up (valid check digits).
fn column(kind: SyntheticKind, n: usize) -> ArrayRef {
    let s = Synthetic::new([7; 32], "bench", kind);
    Arc::new((0..n as u64).map(|i| Some(s.value(i))).collect::<StringArray>())
}

/// The baseline: the same column through the same string builder, unchanged.
struct Copy;

impl Technique for Copy {
    fn id(&self) -> &'static str {
        "copy"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, shuyu_mask::MaskError> {
        let s = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or(shuyu_mask::MaskError::Config {
                technique: "copy",
                detail: "not strings".into(),
            })?;
        Ok(Arc::new(
            s.iter().map(|v| v.map(str::to_string)).collect::<StringArray>(),
        ))
    }
}

fn masking(c: &mut Criterion) {
    let n = cells();
    let ids = column(SyntheticKind::IdNumber, n);
    let mobiles = column(SyntheticKind::Mobile, n);
    let names = column(SyntheticKind::Name, n);
    let ff1 = Ff1Token::new([5; 32], TokenKind::IdNumber).expect("ff1");
    let cases: Vec<(&str, Box<dyn Technique>, &ArrayRef)> = vec![
        ("baseline_copy_id_number", Box::new(Copy), &ids),
        ("display_mask_id_number", Box::new(DisplayMask::ID_NUMBER), &ids),
        ("display_mask_mobile", Box::new(DisplayMask::MOBILE), &mobiles),
        ("display_mask_name", Box::new(NameMask), &names),
        ("pseudonymize_id_number", Box::new(Pseudonymize::new([9; 32])), &ids),
        ("ff1_token_id_number", Box::new(ff1), &ids),
        (
            "synthetic_id_number",
            Box::new(Synthetic::new([3; 32], "person_id", SyntheticKind::IdNumber)),
            &ids,
        ),
    ];
    let mut g = c.benchmark_group("mask");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for (name, t, col) in &cases {
        g.bench_function(*name, |b| b.iter(|| t.apply(col).expect("apply")));
    }
    g.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);
