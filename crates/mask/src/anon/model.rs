//! Privacy models, checked one equivalence class at a time as ARX checks them
//! (`org.deidentifier.arx.criteria`): a class that fails is suppressed, and a generalization
//! is acceptable when the suppressed rows stay within the limit.
//!
//! **Which models may prune.** Under full-domain generalization with a hierarchy that is a
//! tree, every class of a coarser node is a union of classes of any finer node. Call a model
//! *union-closed* when a union of classes satisfies it as soon as one of its parts does.
//! For such a model the rows suppressed at a coarser node are a subset of those suppressed at
//! a finer node (a coarser class is suppressed only if all its parts were), so "too many
//! suppressed rows" at a node holds at every node below it, and "within the limit" at every
//! node above. k-anonymity (size ≥ k) and distinct ℓ-diversity (≥ ℓ distinct sensitive
//! values) are union-closed: the union is at least as large, and has at least as many
//! distinct values, as any part. Entropy ℓ-diversity and t-closeness are **not**: a diverse
//! (or close) class merged with a large uniform one can fail (see the tests), so the search
//! never prunes with them — only with their union-closed necessary conditions (size and
//! distinct values ≥ ⌈ℓ⌉, which ARX checks first as well).

/// A class as the models see it: its size and its sensitive values' counts.
#[derive(Debug, Clone, Copy)]
pub struct Class<'a> {
    /// Rows in the class.
    pub size: u32,
    /// `(sensitive code, rows)` for each sensitive value present (any order, no zeros).
    pub sensitive: &'a [(u32, u32)],
    /// The whole table's relative frequency of each sensitive code (t-closeness's reference).
    pub global: &'a [f64],
}

/// One privacy model, checked class by class.
pub trait ClassModel {
    /// Whether the class satisfies the model (a class that does not is suppressed).
    fn holds(&self, class: &Class<'_>) -> bool;
    /// Whether a union of classes satisfies the model as soon as one part does — the property
    /// that makes the model monotone under generalization with a suppression limit, and so
    /// safe for pruning (module docs).
    fn union_closed(&self) -> bool;
}

/// k-anonymity: every published class has at least `k` rows, so a record hides among k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KAnonymity {
    /// The least class size (≥ 1).
    pub k: usize,
}

impl ClassModel for KAnonymity {
    fn holds(&self, class: &Class<'_>) -> bool {
        class.size as usize >= self.k
    }
    /// A union is at least as large as each part.
    fn union_closed(&self) -> bool {
        true
    }
}

/// Distinct ℓ-diversity: every class has at least `l` distinct sensitive values, so knowing
/// someone's class does not reveal their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistinctLDiversity {
    /// The least number of distinct sensitive values (≥ 1).
    pub l: usize,
}

impl ClassModel for DistinctLDiversity {
    fn holds(&self, class: &Class<'_>) -> bool {
        class.sensitive.len() >= self.l
    }
    /// A union has every value of each part.
    fn union_closed(&self) -> bool {
        true
    }
}

/// Entropy ℓ-diversity with ARX's default (Shannon, natural-log) estimator: a class of `n`
/// rows whose sensitive values have counts `f` passes when it has at least ⌈ℓ⌉ distinct
/// values and `Σ f·ln f ≤ n·(ln n − ln ℓ)`, i.e. its entropy is at least `ln ℓ` — stronger than
/// distinct ℓ-diversity because a dominant value counts against it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntropyLDiversity {
    /// ℓ (≥ 1, need not be an integer).
    pub l: f64,
}

impl ClassModel for EntropyLDiversity {
    fn holds(&self, class: &Class<'_>) -> bool {
        if (class.sensitive.len() as f64) < self.l.ceil() {
            return false;
        }
        let n = f64::from(class.size);
        let bound = n * (n.ln() - self.l.ln());
        let sum: f64 = class
            .sensitive
            .iter()
            .map(|(_, f)| {
                let f = f64::from(*f);
                f * f.ln()
            })
            .sum();
        sum <= bound
    }
    /// Not union-closed: {x, y} passes ℓ = 2, merged with {x ×10} it does not.
    fn union_closed(&self) -> bool {
        false
    }
}

/// t-closeness with the equal ground distance (ARX's `EqualDistanceTCloseness`), for a
/// categorical sensitive attribute: the earth mover's distance between a class's distribution
/// `p` and the whole table's `q` is then half the total variation, `½ Σ |p_v − q_v|`, and a
/// class passes when it is at most `t` — its values are spread about as in the whole table,
/// so membership in it says little about a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TCloseness {
    /// The largest distance allowed (0..=1).
    pub t: f64,
}

impl TCloseness {
    /// The equal-distance EMD of a class from the whole table, summed as ARX does: over the
    /// values present only, `½ (1 + Σ_present (|p_v − q_v| − q_v))`, which equals
    /// `½ Σ_all |p_v − q_v|` because the absent values contribute `q_v` each.
    pub fn distance(class: &Class<'_>) -> f64 {
        let n = f64::from(class.size);
        let mut d = 1.0;
        for (v, f) in class.sensitive {
            let q = class.global.get(*v as usize).copied().unwrap_or(0.0);
            d += (q - f64::from(*f) / n).abs() - q;
        }
        d / 2.0
    }
}

impl ClassModel for TCloseness {
    fn holds(&self, class: &Class<'_>) -> bool {
        TCloseness::distance(class) <= self.t
    }
    /// Not union-closed: a class close to the table merged with a large one far from it is far.
    fn union_closed(&self) -> bool {
        false
    }
}

/// The models of one search, combined as ARX combines them: k-anonymity always (k = 1 is no
/// constraint), optionally one ℓ-diversity and t-closeness on the sensitive attribute. A
/// class must be at least `max(k, ⌈ℓ⌉)` rows (ARX's minimal class size) and satisfy each.
#[derive(Debug, Clone)]
pub(crate) struct Models {
    pub k: KAnonymity,
    pub distinct: Option<DistinctLDiversity>,
    pub entropy: Option<EntropyLDiversity>,
    pub t: Option<TCloseness>,
    /// `max(k, ⌈ℓ⌉)`.
    pub min_size: u32,
    /// `⌈ℓ⌉` distinct sensitive values, or 0.
    pub min_distinct: u32,
}

impl Models {
    pub fn new(k: usize, l: Option<super::Diversity>, t: Option<f64>) -> Models {
        let (distinct, entropy) = match l {
            Some(super::Diversity::Distinct(l)) => (Some(DistinctLDiversity { l }), None),
            Some(super::Diversity::Entropy(l)) => (None, Some(EntropyLDiversity { l })),
            None => (None, None),
        };
        let min_distinct = match l {
            Some(super::Diversity::Distinct(l)) => l as f64,
            Some(super::Diversity::Entropy(l)) => l.ceil(),
            None => 0.0,
        };
        let min_distinct = min_distinct.min(f64::from(u32::MAX)) as u32;
        let min_size = (k.min(u32::MAX as usize) as u32).max(min_distinct);
        Models {
            k: KAnonymity { k },
            distinct,
            entropy,
            t: t.map(|t| TCloseness { t }),
            min_size,
            min_distinct,
        }
    }

    /// Whether classes need their sensitive values.
    pub fn needs_sensitive(&self) -> bool {
        self.distinct.is_some() || self.entropy.is_some() || self.t.is_some()
    }

    /// Whether some model is not union-closed (so the full check can fail where the
    /// union-closed part passes).
    pub fn has_non_monotone(&self) -> bool {
        self.entropy.is_some() || self.t.is_some()
    }

    /// The union-closed part of the check: the class size and distinct values. A class that
    /// fails it fails the full check.
    #[inline]
    pub fn holds_monotone(&self, size: u32, distinct: usize) -> bool {
        size >= self.min_size && distinct >= self.min_distinct as usize
    }

    /// The full check, in ARX's order (cheapest first).
    pub fn holds(&self, class: &Class<'_>) -> bool {
        self.holds_monotone(class.size, class.sensitive.len())
            && self.k.holds(class)
            && self.distinct.is_none_or(|m| m.holds(class))
            && self.entropy.is_none_or(|m| m.holds(class))
            && self.t.is_none_or(|m| m.holds(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn class<'a>(sensitive: &'a [(u32, u32)], global: &'a [f64]) -> Class<'a> {
        Class {
            size: sensitive.iter().map(|(_, c)| c).sum(),
            sensitive,
            global,
        }
    }

    #[test]
    fn k_and_distinct_l_count_rows_and_values() {
        let g = [0.5, 0.5];
        let c = class(&[(0, 3), (1, 1)], &g);
        assert!(KAnonymity { k: 4 }.holds(&c) && !KAnonymity { k: 5 }.holds(&c));
        assert!(DistinctLDiversity { l: 2 }.holds(&c) && !DistinctLDiversity { l: 3 }.holds(&c));
    }

    #[test]
    fn entropy_l_diversity_by_hand() {
        let g = [0.25; 4];
        // Two equal values: entropy ln 2, so ℓ just under 2 passes, ℓ = 2.01 does not.
        let even = class(&[(0, 5), (1, 5)], &g);
        assert!(EntropyLDiversity { l: 1.999 }.holds(&even));
        assert!(!EntropyLDiversity { l: 2.01 }.holds(&even));
        // 9 + 1: entropy = ln 10 − 0.9 ln 9 ≈ 0.325 < ln 2 although distinct-2-diverse.
        let skewed = class(&[(0, 9), (1, 1)], &g);
        assert!(DistinctLDiversity { l: 2 }.holds(&skewed));
        assert!(!EntropyLDiversity { l: 2.0 }.holds(&skewed));
        assert!(EntropyLDiversity { l: 1.38 }.holds(&skewed)); // e^0.325 ≈ 1.384
        assert!(!EntropyLDiversity { l: 1.39 }.holds(&skewed));
        // ⌈ℓ⌉ distinct values are needed first.
        assert!(!EntropyLDiversity { l: 2.5 }.holds(&class(&[(0, 50), (1, 50)], &g)));
    }

    #[test]
    fn t_closeness_is_half_the_total_variation() {
        let g = [0.5, 0.3, 0.2];
        // p = (1, 0, 0): ½ (0.5 + 0.3 + 0.2) = 0.5.
        let c = class(&[(0, 4)], &g);
        assert!((TCloseness::distance(&c) - 0.5).abs() < 1e-12);
        assert!(TCloseness { t: 0.5 }.holds(&c) && !TCloseness { t: 0.49 }.holds(&c));
        // p = (0.5, 0.25, 0.25): ½ (0 + 0.05 + 0.05) = 0.05.
        let c = class(&[(2, 1), (0, 2), (1, 1)], &g);
        assert!((TCloseness::distance(&c) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn entropy_l_and_t_closeness_are_not_union_closed() {
        // The counterexamples behind `union_closed() == false`.
        let g = [0.5, 0.5];
        let diverse = class(&[(0, 1), (1, 1)], &g);
        let merged = class(&[(0, 11), (1, 1)], &g);
        let e = EntropyLDiversity { l: 2.0 };
        assert!(e.holds(&diverse) && !e.holds(&merged) && !e.union_closed());
        let t = TCloseness { t: 0.1 };
        assert!(t.holds(&diverse) && !t.holds(&merged) && !t.union_closed());
    }

    proptest! {
        /// k-anonymity and distinct ℓ-diversity are union-closed: whenever a part passes, the
        /// union passes (the property the search's pruning rests on).
        #[test]
        fn k_and_distinct_l_are_union_closed(
            a in proptest::collection::vec(0u32..4, 1..20),
            b in proptest::collection::vec(0u32..4, 1..20),
            k in 1usize..30, l in 1usize..5,
        ) {
            let hist = |rows: &[u32]| {
                let mut h = [0u32; 4];
                for r in rows { h[*r as usize] += 1; }
                h.iter().enumerate().filter(|(_, c)| **c > 0).map(|(v, c)| (v as u32, *c)).collect::<Vec<_>>()
            };
            let g = [0.25; 4];
            let both: Vec<u32> = a.iter().chain(&b).copied().collect();
            let (ha, hb, hu) = (hist(&a), hist(&b), hist(&both));
            let (ca, cb, cu) = (class(&ha, &g), class(&hb, &g), class(&hu, &g));
            let models: [&dyn ClassModel; 2] = [&KAnonymity { k }, &DistinctLDiversity { l }];
            for m in models {
                prop_assert!(m.union_closed());
                if m.holds(&ca) || m.holds(&cb) {
                    prop_assert!(m.holds(&cu));
                }
            }
        }
    }
}
