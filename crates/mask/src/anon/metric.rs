//! Utility metrics, as ARX 3 defines its defaults (`org.deidentifier.arx.metric.v2`), so that
//! a score here is the number ARX reports for the same transformation. Lower is better.
//!
//! All three use ARX's default generalization/suppression factor `gs = 0.5`, which gives a
//! generalization factor `g = 1` and a suppression factor `s = 1` (ARX: `s = gs < 0.5 ? 2gs : 1`,
//! `g = gs ≤ 0.5 ? 1 : 1 − 2(gs − 0.5)`), and attribute weights 1 (ARX's default weight 0.5,
//! normalized by the largest). Per-column values are truncated to 10 decimals as ARX does
//! (`floor(x·10¹⁰)/10¹⁰`) before they are aggregated.

use super::data::Encoded;

/// ARX's default weighting of generalization against suppression.
const GS_FACTOR: f64 = 0.5;
/// Generalization factor derived from [`GS_FACTOR`].
const G_FACTOR: f64 = if GS_FACTOR <= 0.5 {
    1.0
} else {
    1.0 - 2.0 * (GS_FACTOR - 0.5)
};
/// Suppression factor derived from [`GS_FACTOR`].
const S_FACTOR: f64 = if GS_FACTOR < 0.5 { 2.0 * GS_FACTOR } else { 1.0 };

/// The utility metric to minimize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Non-uniform entropy, ARX's default non-monotonic variant (`MetricMDNUNMEntropy`), summed
    /// over the columns. For one column at level L:
    /// `Σ_rows −log2(freq(original) / freq(generalized))` with frequencies in the input —
    /// over *all* rows, suppressed ones included — plus, when rows are suppressed, the
    /// entropy of their generalized values within the suppressed set, `Σ_v −c_v·log2(c_v/S)`
    /// (S suppressed rows, c_v of them showing value v). It measures how much information
    /// about the original values a reader loses.
    NonUniformEntropy,
    /// Loss (`MetricMDNMLoss`), the geometric mean over the columns (ARX's default aggregate,
    /// computed as `Π (v+1)^(1/n) − 1`) of each column's normalized loss: each published row
    /// costs its value's domain share — the fraction of the hierarchy's leaves under it (an
    /// original value 1/leaves, `*` 1) — and each suppressed row costs 1; the sum is
    /// normalized to `(sum − rows/leaves) / (rows − rows/leaves)`, 0 for no generalization and
    /// 1 for everything suppressed or fully generalized.
    Loss,
    /// Discernibility, ARX's default non-monotonic variant (`MetricSDNMDiscernability`): each
    /// row costs the size of the class it hides in, and a suppressed row the size of the
    /// whole table — `Σ_published classes c² + suppressed · rows`.
    Discernibility,
}

impl Metric {
    /// The metric's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::NonUniformEntropy => "entropy",
            Metric::Loss => "loss",
            Metric::Discernibility => "discernibility",
        }
    }

    /// Parses `entropy`, `loss` or `discernibility`.
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "entropy" | "non-uniform-entropy" => Some(Metric::NonUniformEntropy),
            "loss" => Some(Metric::Loss),
            "discernibility" | "dm" => Some(Metric::Discernibility),
            _ => None,
        }
    }
}

/// ARX's truncation of per-column values to 10 decimals.
#[inline]
pub(crate) fn round10(x: f64) -> f64 {
    const FACTOR: f64 = 1e10;
    (x * FACTOR).floor() / FACTOR
}

/// `log2` as ARX computes it.
#[inline]
fn log2(x: f64) -> f64 {
    x.ln() / std::f64::consts::LN_2
}

/// What the suppressed rows of a node look like to a metric.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suppression<'a> {
    /// Suppressed rows.
    pub rows: u64,
    /// `Σ c²` over the published classes.
    pub kept_square_sum: u128,
    /// Per column: suppressed rows per code at the node's level (read only when `rows > 0`).
    pub codes: &'a [Vec<u32>],
}

/// A metric, with what it precomputes from the data.
#[derive(Debug, Clone)]
pub(crate) struct Scorer {
    metric: Metric,
    /// Per column, per level: `g · Σ_rows log2(freq(original)/freq(generalized))` (≤ 0).
    entropy_raw: Vec<Vec<f64>>,
}

impl Scorer {
    pub fn new(metric: Metric, enc: &Encoded) -> Scorer {
        let entropy_raw = if metric == Metric::NonUniformEntropy {
            enc.qis
                .iter()
                .map(|q| {
                    (0..q.height)
                        .map(|level| {
                            let mut value = 0.0;
                            for (c0, a) in q.freq[0].iter().enumerate() {
                                let a = f64::from(*a);
                                let b = f64::from(q.freq[level][q.up[level][c0] as usize]);
                                if a != 0.0 {
                                    value += a * log2(a / b);
                                }
                            }
                            value * G_FACTOR
                        })
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Scorer { metric, entropy_raw }
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The score of a node with these suppressed rows.
    pub fn score(&self, enc: &Encoded, levels: &[u8], s: &Suppression<'_>) -> f64 {
        let n = enc.rows as f64;
        match self.metric {
            Metric::Discernibility => (s.kept_square_sum + u128::from(s.rows) * enc.rows as u128) as f64,
            Metric::NonUniformEntropy => {
                let mut total = 0.0;
                for (q, qi) in enc.qis.iter().enumerate() {
                    let level = usize::from(levels[q]);
                    let mut r = self.entropy_raw[q][level];
                    if s.rows > 0 {
                        let supp = s.rows as f64;
                        for c in &s.codes[q][..qi.values[level].len()] {
                            if *c > 0 {
                                let c = f64::from(*c);
                                r += c * log2(c / supp) * S_FACTOR;
                            }
                        }
                    }
                    total += round10(if r == 0.0 { r } else { -r });
                }
                if total.is_finite() { total } else { f64::MAX }
            }
            Metric::Loss => {
                let columns = enc.qis.len() as f64;
                let mut product = 1.0;
                for (q, qi) in enc.qis.iter().enumerate() {
                    let level = usize::from(levels[q]);
                    let freq = &qi.freq[level];
                    let share = &qi.share[level];
                    let mut sum = 0.0;
                    if s.rows > 0 {
                        for ((f, c), sh) in freq.iter().zip(&s.codes[q]).zip(share) {
                            sum += f64::from(f - c) * sh * G_FACTOR;
                        }
                        // S_FACTOR is 1: a suppressed row costs 1 in every column.
                        sum += s.rows as f64 * S_FACTOR;
                    } else {
                        for (f, sh) in freq.iter().zip(share) {
                            sum += f64::from(*f) * sh * G_FACTOR;
                        }
                    }
                    let min = G_FACTOR * n / qi.domain as f64;
                    let v = (sum - min) / (n - min);
                    let v = round10(if v >= 0.0 { v } else { 0.0 });
                    product *= (v + 1.0).powf(1.0 / columns);
                }
                product - 1.0
            }
        }
    }

    /// A lower bound of the score of every anonymous transformation at `levels`, from the
    /// levels alone. For entropy and loss it is the score without suppression (suppression
    /// only adds: an entropy term ≥ 0, a cost of 1 ≥ any share). For discernibility: the
    /// published classes have ≥ `min_size` rows and a suppressed row costs `rows`, so the score
    /// is ≥ `min(min_size, rows)·rows`; and by Cauchy–Schwarz `Σ c² ≥ rows² / classes` with at
    /// most `Π distinct values` classes.
    pub fn level_bound(&self, enc: &Encoded, levels: &[u8], min_size: u32) -> f64 {
        match self.metric {
            Metric::Discernibility => {
                let n = enc.rows as u128;
                let mut classes = 1u128;
                for (q, qi) in enc.qis.iter().enumerate() {
                    classes = (classes * qi.values[usize::from(levels[q])].len() as u128).min(n);
                }
                let cauchy = (n * n).div_ceil(classes.max(1));
                let by_size = u128::from(min_size).min(n) * n;
                cauchy.max(by_size) as f64
            }
            _ => self.score(
                enc,
                levels,
                &Suppression {
                    rows: 0,
                    kept_square_sum: 0,
                    codes: &[],
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generalize::Hierarchy;

    const H: &str = "a;ab;*\nb;ab;*\nc;cd;*\nd;cd;*\n";

    fn enc(cols: &[(&str, &[&str])]) -> Encoded {
        let columns: Vec<(String, Vec<String>)> = cols
            .iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let hs = vec![Hierarchy::from_csv(H).expect("h"); cols.len()];
        Encoded::new(&columns, &hs, None).expect("encode")
    }

    fn none() -> Suppression<'static> {
        Suppression {
            rows: 0,
            kept_square_sum: 0,
            codes: &[],
        }
    }

    #[test]
    fn arx_factors_for_the_default_weighting() {
        assert_eq!((G_FACTOR, S_FACTOR), (1.0, 1.0));
        assert_eq!(round10(0.123_456_789_019), 0.123_456_789);
    }

    #[test]
    fn entropy_by_hand() {
        // Rows a a b c; level 1: ab ×3, cd ×1; level 2: * ×4.
        let e = enc(&[("x", &["a", "a", "b", "c"])]);
        let s = Scorer::new(Metric::NonUniformEntropy, &e);
        assert_eq!(s.score(&e, &[0], &none()), 0.0);
        // −(2·log2(2/3) + log2(1/3) + log2(1/1)) = 3·log2 3 − 2.
        let want = round10(3.0 * 3f64.log2() - 2.0);
        assert!((s.score(&e, &[1], &none()) - want).abs() < 1e-9);
        assert!((s.score(&e, &[2], &none()) - 6.0).abs() < 1e-9);
        // Level 0 with b and c suppressed (k = 2): + −(1·log2(1/2) + 1·log2(1/2)) = 2.
        let codes = vec![vec![0, 1, 1]];
        let supp = Suppression {
            rows: 2,
            kept_square_sum: 4,
            codes: &codes,
        };
        assert!((s.score(&e, &[0], &supp) - 2.0).abs() < 1e-9);
        // The bound is the score without suppression, and below the score with it.
        assert_eq!(s.level_bound(&e, &[1], 2), s.score(&e, &[1], &none()));
        assert!(s.level_bound(&e, &[0], 2) <= s.score(&e, &[0], &supp));
    }

    #[test]
    fn loss_by_hand() {
        // 4 leaves: an original value has share 1/4, "ab" 1/2, "*" 1. min = 4·1/4 = 1, max = 4.
        let e = enc(&[("x", &["a", "a", "b", "c"])]);
        let s = Scorer::new(Metric::Loss, &e);
        assert_eq!(s.score(&e, &[0], &none()), 0.0);
        // Level 1: 4 · 1/2 = 2 → (2 − 1)/(4 − 1) = 1/3.
        assert!((s.score(&e, &[1], &none()) - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.score(&e, &[2], &none()) - 1.0).abs() < 1e-12);
        // Level 0, b and c suppressed: 2 · 1/4 + 2 = 2.5 → 0.5.
        let codes = vec![vec![0, 1, 1]];
        let supp = Suppression {
            rows: 2,
            kept_square_sum: 4,
            codes: &codes,
        };
        assert!((s.score(&e, &[0], &supp) - 0.5).abs() < 1e-9);
        // Two columns: the geometric mean of (v + 1), minus 1: √(4/3 · 2) − 1.
        let e2 = enc(&[("x", &["a", "a", "b", "c"]), ("y", &["a", "b", "c", "d"])]);
        let s2 = Scorer::new(Metric::Loss, &e2);
        let want = (4.0f64 / 3.0 * 2.0).sqrt() - 1.0;
        assert!((s2.score(&e2, &[1, 2], &none()) - want).abs() < 1e-9);
    }

    #[test]
    fn discernibility_by_hand() {
        let e = enc(&[("x", &["a", "a", "b", "c"])]);
        let s = Scorer::new(Metric::Discernibility, &e);
        // Level 1, k = 2: class ab (3) kept, cd (1) suppressed: 9 + 1·4.
        let codes = vec![vec![0, 1]];
        let supp = Suppression {
            rows: 1,
            kept_square_sum: 9,
            codes: &codes,
        };
        assert_eq!(s.score(&e, &[1], &supp), 13.0);
        // Bounds: level 2 has one class: 16; level 1 at most 2 classes: ⌈16/2⌉ = 8 ≥ 2·4.
        assert_eq!(s.level_bound(&e, &[2], 2), 16.0);
        assert_eq!(s.level_bound(&e, &[1], 2), 8.0);
        assert_eq!(s.level_bound(&e, &[0], 3), 12.0);
        assert!(Metric::parse("entropy") == Some(Metric::NonUniformEntropy) && Metric::parse("x").is_none());
    }
}
