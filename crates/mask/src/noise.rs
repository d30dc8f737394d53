//! Noise (加噪): Laplace noise of scale `b` on numbers. The noise of a cell is a keyed
//! function of (column, row): rebuilding a sample gives the same noisy values, so repeated
//! builds cannot be averaged to remove it, and without the key it cannot be predicted.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{MaskError, Technique};

/// A uniform draw in (0, 1) keyed by `(key, label, index)`.
pub(crate) fn keyed_unit(key: &[u8; 32], label: &str, index: u64) -> f64 {
    let word = keyed_word(key, label, index);
    // 53 bits, shifted off zero.
    ((word >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A uniform 64-bit word keyed by `(key, label, index)`.
pub(crate) fn keyed_word(key: &[u8; 32], label: &str, index: u64) -> u64 {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return 0;
    };
    mac.update(label.as_bytes());
    mac.update(&[0]);
    mac.update(&index.to_le_bytes());
    let tag = mac.finalize().into_bytes();
    let mut w = [0u8; 8];
    w.copy_from_slice(&tag[..8]);
    u64::from_le_bytes(w)
}

/// Laplace noise of scale `scale` added to every value; the column becomes Float64.
#[derive(Clone)]
pub struct LaplaceNoise {
    /// The scale `b` (> 0): the noise's standard deviation is `b·√2`.
    pub scale: f64,
    /// Separates this column's noise from other columns'.
    pub label: String,
    key: [u8; 32],
}

impl std::fmt::Debug for LaplaceNoise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LaplaceNoise(scale {}, {})", self.scale, self.label)
    }
}

impl LaplaceNoise {
    /// Noise of `scale` for column `label` under `key`.
    pub fn new(key: [u8; 32], label: impl Into<String>, scale: f64) -> Self {
        LaplaceNoise {
            scale,
            label: label.into(),
            key,
        }
    }

    /// The noise of row `index`.
    pub fn noise(&self, index: u64) -> f64 {
        let u = keyed_unit(&self.key, &self.label, index) - 0.5;
        -self.scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
    }
}

impl Technique for LaplaceNoise {
    fn id(&self) -> &'static str {
        "noise"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(MaskError::Config {
                technique: "noise",
                detail: format!("scale {}", self.scale),
            });
        }
        let f = crate::coding::floats(self.id(), column)?;
        Ok(Arc::new(
            f.iter()
                .enumerate()
                .map(|(i, v)| v.map(|x| x + self.noise(i as u64)))
                .collect::<Float64Array>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_reproducible_centred_and_of_the_right_spread() {
        let n = LaplaceNoise::new([3; 32], "wage", 2.0);
        assert_eq!(n.noise(7), n.noise(7));
        assert_ne!(n.noise(7), LaplaceNoise::new([4; 32], "wage", 2.0).noise(7));
        let draws: Vec<f64> = (0..20_000).map(|i| n.noise(i)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let mean_abs = draws.iter().map(|x| x.abs()).sum::<f64>() / draws.len() as f64;
        // E[X] = 0 and E|X| = b for the Laplace distribution.
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!((mean_abs - 2.0).abs() < 0.1, "mean |x| {mean_abs}");
    }
}
