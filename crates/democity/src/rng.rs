//! Deterministic randomness: every row draws from its own ChaCha8 stream keyed
//! by (seed, purpose tag, row index), so any row of any dataset is a pure
//! function of the seed and can be recomputed without generating the rows
//! before it. Distributions are implemented here (not taken from `rand`) so the
//! bytes produced do not change when `rand` changes its sampling algorithms.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a fast, well-mixing bijection on `u64`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a short tuple of words into one word.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243F_6A88_85A3_08D3u64, |h, p| mix(h ^ mix(*p)))
}

/// Purpose tags that separate the random streams of different uses.
pub(crate) mod tag {
    pub const PERSON_SLOT: u64 = 1;
    pub const PERSON: u64 = 2;
    pub const ENTERPRISE: u64 = 3;
    pub const ENTERPRISE_CODE: u64 = 4;
    pub const EMPLOYER_RANK: u64 = 5;
    pub const LEGAL_REP: u64 = 6;
    pub const WORKER: u64 = 7;
    pub const VISIT: u64 = 8;
    pub const TAX_FIRM: u64 = 9;
    pub const TAX_ROW: u64 = 10;
    pub const ELECTRICITY: u64 = 11;
    pub const PROPERTY: u64 = 12;
    pub const BUS_LINE: u64 = 13;
    pub const BUS_ROW: u64 = 14;
    pub const DIRTY: u64 = 15;
    pub const DIRTY_VALUE: u64 = 16;
}

/// A row's random stream with the few distributions the generator needs.
pub(crate) struct Draw(ChaCha8Rng);

impl Draw {
    /// The stream for `(seed, tag, index)`.
    pub(crate) fn new(seed: u64, tag: u64, index: u64) -> Self {
        let mut key = [0u8; 32];
        for (k, chunk) in key.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&hash(&[seed, tag, index, k as u64]).to_le_bytes());
        }
        Draw(ChaCha8Rng::from_seed(key))
    }

    /// A uniform word.
    pub(crate) fn word(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.word() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`0` when `n == 0`); the bias of the multiply-shift is below 2⁻⁴⁰ for our `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.word()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-scale spread.
    pub(crate) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Pareto with minimum `xmin` and tail index `alpha` (smaller = heavier).
    pub(crate) fn pareto(&mut self, xmin: f64, alpha: f64) -> f64 {
        xmin / (1.0 - self.unit()).powf(1.0 / alpha)
    }

    /// Exponential with the given mean.
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// A uniformly chosen element of a non-empty static table.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An element of a non-empty weighted table, with probability proportional to its weight.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }
}

/// A keyed pseudo-random permutation of `0..n` (4-round Feistel network with
/// cycle walking): spreads indices over a space without collisions, which is
/// how identity numbers stay unique while looking random.
pub(crate) fn permute(key: u64, x: u64, n: u64) -> u64 {
    if n <= 1 || x >= n {
        return x;
    }
    let bits = (64 - (n - 1).leading_zeros()).max(2);
    let bits = bits + (bits & 1);
    let half = bits / 2;
    let mask = (1u64 << half) - 1;
    let mut y = x;
    loop {
        let (mut l, mut r) = (y >> half, y & mask);
        for round in 0..4u64 {
            let f = hash(&[key, round, r]) & mask;
            (l, r) = (r, l ^ f);
        }
        y = (l << half) | r;
        if y < n {
            return y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_is_a_bijection() {
        for n in [1u64, 2, 3, 7, 100, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = permute(42, x, n);
                assert!(y < n);
                assert!(!seen[y as usize], "collision at n={n}");
                seen[y as usize] = true;
            }
        }
    }

    #[test]
    fn draws_are_reproducible_and_in_range() {
        let mut a = Draw::new(1, 2, 3);
        let mut b = Draw::new(1, 2, 3);
        for _ in 0..100 {
            assert_eq!(a.word(), b.word());
        }
        let mut c = Draw::new(1, 2, 4);
        for _ in 0..1000 {
            let u = c.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(c.below(7) < 7);
            let v = c.between(-3, 3);
            assert!((-3..=3).contains(&v));
        }
    }
}
