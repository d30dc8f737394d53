//! The gate's thresholds. Defaults are ACRO's (the SACRO output-checking tool's `default.yaml`),
//! configurable per data grade: stricter rules for outputs drawn from more sensitive data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The thresholds the checks apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Minimum records in a cell (ACRO `safe_threshold`).
    pub threshold: u64,
    /// Whether empty cells disclose (ACRO `zeros_are_disclosive`).
    pub zeros_disclosive: bool,
    /// n-k dominance: a cell fails when its 2 largest contributions make at least this share of
    /// its total (ACRO `safe_nk_k`; n is 2, ACRO's `safe_nk_n`).
    pub nk_share: f64,
    /// p-percent: a cell fails when (total − two largest) / largest is below this (ACRO
    /// `safe_pratio_p`).
    pub p_ratio: f64,
    /// Minimum residual degrees of freedom of a regression (ACRO `safe_dof_threshold`).
    pub residual_dof: i64,
    /// k of k-anonymity for record-level outputs.
    pub k: u64,
    /// Rounding base offered as a remedy (ACRO `safe_round_base`).
    pub round_base: u64,
    /// The largest number of key combinations enumerated to find empty cells.
    pub max_enumerated_cells: usize,
    /// Which contributors of a sum or mean the threshold counts.
    pub contributors: Contributors,
}

/// Which of a measure's contributors count towards the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contributors {
    /// Entities whose contribution is neither null nor zero: a sum over an indicator or a
    /// conditional value discloses about those only (the platform's rule).
    #[default]
    NonZero,
    /// The cell's entities only, whatever its measures' contributors (ACRO's rule, for parity with
    /// its reports).
    Cell,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            threshold: 10,
            zeros_disclosive: true,
            nk_share: 0.9,
            p_ratio: 0.1,
            residual_dof: 10,
            k: 5,
            round_base: 5,
            max_enumerated_cells: 100_000,
            contributors: Contributors::NonZero,
        }
    }
}

/// Rules per data grade: the grade of the most sensitive source picks the rules. By default
/// ACRO's rules apply to every grade but L1 (open data: 公开), whose outputs carry no one's
/// confidential values — there the statistical rules stand down (a count of bus boardings is not
/// a disclosure about anyone) while raw rows, personal information, differencing and the
/// destination are still checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Rules for grades with no entry of their own.
    pub default: Rules,
    /// Rules by level code (`L1` … `L4`).
    pub levels: BTreeMap<String, Rules>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            default: Rules::default(),
            levels: BTreeMap::from([("L1".to_string(), Rules::open())]),
        }
    }
}

impl GateConfig {
    /// The rules for a level code (`L3`), or the default.
    pub fn for_level(&self, level: &str) -> &Rules {
        self.levels.get(level).unwrap_or(&self.default)
    }

    /// The settings that cannot be right, each as `where: rule` (a level other than `L1` …
    /// `L4`, a threshold or k of 0, a dominance share outside (0, 1.01], a p-ratio outside
    /// [0, 1], a rounding base of 0, no enumeration). Empty when all are.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (level, rules) in
            std::iter::once(("default", &self.default)).chain(self.levels.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if level != "default" && !matches!(level, "L1" | "L2" | "L3" | "L4") {
                out.push(format!("levels.{level}: not a grade (L1 … L4)"));
            }
            let mut bad = |field: &str, rule: &str| out.push(format!("{level}.{field}: {rule}"));
            if rules.threshold == 0 {
                bad("threshold", "at least 1");
            }
            if rules.k == 0 {
                bad("k", "at least 1");
            }
            if !(rules.nk_share > 0.0 && rules.nk_share <= 1.01) {
                bad("nk_share", "within (0, 1.01]");
            }
            if !(0.0..=1.0).contains(&rules.p_ratio) {
                bad("p_ratio", "within [0, 1]");
            }
            if rules.residual_dof < 0 {
                bad("residual_dof", "at least 0");
            }
            if rules.round_base == 0 {
                bad("round_base", "at least 1");
            }
            if rules.max_enumerated_cells == 0 {
                bad("max_enumerated_cells", "at least 1");
            }
        }
        out
    }
}

impl Rules {
    /// The rules for open (L1) data: no minimum count, zeros and dominance not disclosive.
    pub fn open() -> Rules {
        Rules {
            threshold: 1,
            zeros_disclosive: false,
            // The two largest never make more than all of a non-negative total.
            nk_share: 1.01,
            p_ratio: 0.0,
            ..Rules::default()
        }
    }

    /// ACRO's rules exactly (its `default.yaml`), including how it counts contributors — for
    /// parity with ACRO's own reports.
    pub fn acro() -> Rules {
        Rules {
            contributors: Contributors::Cell,
            ..Rules::default()
        }
    }
}
