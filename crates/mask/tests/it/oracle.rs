//! The oracle: a deliberately simple, separate implementation of the same definitions. For
//! every node of the lattice it scans the rows, groups them in a `HashMap` keyed by the
//! generalized values, and checks every configuration on that one class table — no roll-up,
//! no pruning, no bounds, no shared code with the library beyond parsing the hierarchies.
//! (Also compiled into the `anon` benchmark as its baseline.)

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use shuyu_mask::generalize::Hierarchy;

/// The Adult benchmark's quasi-identifiers, in the usual order.
pub const QIS: [&str; 8] = [
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "salary-class",
];
/// Adult's sensitive attribute in the usual configuration.
pub const SENSITIVE: &str = "occupation";

/// A loaded table: quasi-identifier columns, their hierarchies, the sensitive column.
pub struct Data {
    pub columns: Vec<(String, Vec<String>)>,
    pub hierarchies: Vec<Hierarchy>,
    pub sensitive: Vec<String>,
}

/// The vendored Adult data (`testdata/arx-adult`).
pub fn adult() -> Data {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/arx-adult");
    let text = std::fs::read_to_string(dir.join("adult.csv")).expect("adult.csv");
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(';').collect())
        .collect();
    let column = |name: &str| -> Vec<String> {
        let i = header.iter().position(|h| *h == name).expect("column");
        rows.iter().map(|r| r[i].to_string()).collect()
    };
    let hierarchy = |name: &str| {
        let t = std::fs::read_to_string(dir.join(format!("adult_hierarchy_{name}.csv"))).expect("hierarchy");
        Hierarchy::from_csv(&t).expect("parse")
    };
    Data {
        columns: QIS.iter().map(|q| (q.to_string(), column(q))).collect(),
        hierarchies: QIS.iter().map(|q| hierarchy(q)).collect(),
        sensitive: column(SENSITIVE),
    }
}

/// The privacy models of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Models {
    pub k: usize,
    /// Distinct ℓ.
    pub distinct_l: Option<usize>,
    /// Entropy ℓ.
    pub entropy_l: Option<f64>,
    pub t: Option<f64>,
}

/// The three metrics, in this order in results.
pub const METRICS: [&str; 3] = ["entropy", "loss", "discernibility"];

/// One anonymous node with its score under a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub levels: Vec<usize>,
    pub suppressed: usize,
    pub classes: usize,
}

/// ARX's truncation to 10 decimals.
fn round10(x: f64) -> f64 {
    (x * 1e10).floor() / 1e10
}

pub struct Oracle {
    rows: usize,
    heights: Vec<usize>,
    /// `generalized[q][level][row]`: an id of the row's value at that level.
    generalized: Vec<Vec<Vec<u32>>>,
    /// `entropy_level[q][level]`: Σ over rows of −log2(freq(original)/freq(generalized)).
    entropy_level: Vec<Vec<f64>>,
    /// `share[q][level][id]`: leaves of the hierarchy under the value / all leaves.
    share: Vec<Vec<Vec<f64>>>,
    leaves: Vec<usize>,
    sensitive: Vec<u32>,
    global: Vec<f64>,
}

impl Oracle {
    pub fn new(data: &Data) -> Oracle {
        let rows = data.sensitive.len();
        let mut heights = Vec::new();
        let mut generalized = Vec::new();
        let mut entropy_level = Vec::new();
        let mut share = Vec::new();
        let mut leaves = Vec::new();
        for ((_, values), h) in data.columns.iter().zip(&data.hierarchies) {
            heights.push(h.levels());
            let all: Vec<&str> = h.values().collect();
            leaves.push(all.len());
            let (mut gq, mut eq, mut sq) = (Vec::new(), Vec::new(), Vec::new());
            let original_freq = {
                let mut f: HashMap<&str, usize> = HashMap::new();
                for v in values {
                    *f.entry(v.as_str()).or_default() += 1;
                }
                f
            };
            for level in 0..h.levels() {
                let mut ids: HashMap<&str, u32> = HashMap::new();
                let mut texts = Vec::new();
                let mut col = Vec::with_capacity(rows);
                let mut freq: HashMap<&str, usize> = HashMap::new();
                for v in values {
                    let g = h.generalize(v, level).expect("value in hierarchy");
                    let id = *ids.entry(g).or_insert_with(|| {
                        texts.push(g.to_string());
                        texts.len() as u32 - 1
                    });
                    *freq.entry(g).or_default() += 1;
                    col.push(id);
                }
                let mut e = 0.0;
                for v in values {
                    let g = h.generalize(v, level).expect("value in hierarchy");
                    e -= (original_freq[v.as_str()] as f64 / freq[g] as f64).log2();
                }
                let under = |t: &str| all.iter().filter(|leaf| h.generalize(leaf, level) == Some(t)).count();
                sq.push(texts.iter().map(|t| under(t) as f64 / all.len() as f64).collect());
                eq.push(e);
                gq.push(col);
            }
            generalized.push(gq);
            entropy_level.push(eq);
            share.push(sq);
        }
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut counts: Vec<usize> = Vec::new();
        let sensitive = data
            .sensitive
            .iter()
            .map(|v| {
                let id = *ids.entry(v.as_str()).or_insert_with(|| {
                    counts.push(0);
                    counts.len() as u32 - 1
                });
                counts[id as usize] += 1;
                id
            })
            .collect();
        Oracle {
            rows,
            heights,
            generalized,
            entropy_level,
            share,
            leaves,
            sensitive,
            global: counts.iter().map(|c| *c as f64 / rows as f64).collect(),
        }
    }

    /// Every node of the lattice, each as its levels.
    pub fn nodes(&self) -> Vec<Vec<usize>> {
        let mut all = vec![vec![]];
        for h in &self.heights {
            all = all
                .into_iter()
                .flat_map(|prefix: Vec<usize>| {
                    (0..*h).map(move |l| {
                        let mut p = prefix.clone();
                        p.push(l);
                        p
                    })
                })
                .collect();
        }
        all
    }

    /// Whether a class (`size` rows, sensitive counts `hist`) passes the models.
    fn passes(&self, m: &Models, size: usize, hist: &[u32]) -> bool {
        let distinct = hist.iter().filter(|c| **c > 0).count();
        // ARX: a class needs max(k, ⌈ℓ⌉) rows whatever the ℓ-diversity variant.
        let l = m.distinct_l.map(|l| l as f64).or(m.entropy_l).unwrap_or(1.0);
        if (size as f64) < (m.k as f64).max(l.ceil()) {
            return false;
        }
        if let Some(l) = m.distinct_l
            && distinct < l
        {
            return false;
        }
        if let Some(l) = m.entropy_l {
            let entropy: f64 = hist
                .iter()
                .filter(|c| **c > 0)
                .map(|c| {
                    let p = f64::from(*c) / size as f64;
                    -p * p.ln()
                })
                .sum();
            if (distinct as f64) < l.ceil() || entropy < l.ln() {
                return false;
            }
        }
        if let Some(t) = m.t {
            let emd: f64 = self
                .global
                .iter()
                .zip(hist)
                .map(|(q, c)| (f64::from(*c) / size as f64 - q).abs())
                .sum::<f64>()
                / 2.0;
            if emd > t {
                return false;
            }
        }
        true
    }

    /// For each models × limit × metric: every anonymous node with its score.
    pub fn evaluate(&self, models: &[Models], limits: &[f64], nodes: &[Vec<usize>]) -> Vec<Vec<Vec<Vec<Scored>>>> {
        let mut out = vec![vec![vec![Vec::new(); METRICS.len()]; limits.len()]; models.len()];
        let s = self.global.len();
        for levels in nodes {
            // The class table of this node, from the rows: a row's key is its generalized
            // values' ids in mixed radix.
            let radix: Vec<u64> = levels
                .iter()
                .enumerate()
                .map(|(q, l)| self.generalized[q][*l].iter().max().map_or(1, |m| u64::from(*m) + 1))
                .collect();
            let mut index: HashMap<u64, usize> = HashMap::new();
            let mut keys: Vec<Vec<u32>> = Vec::new();
            let mut sizes: Vec<usize> = Vec::new();
            let mut hists: Vec<Vec<u32>> = Vec::new();
            for row in 0..self.rows {
                let mut key = 0u64;
                for (q, l) in levels.iter().enumerate() {
                    key = key
                        .checked_mul(radix[q])
                        .and_then(|k| k.checked_add(u64::from(self.generalized[q][*l][row])))
                        .expect("the key fits 64 bits");
                }
                let c = *index.entry(key).or_insert_with(|| {
                    keys.push((0..levels.len()).map(|q| self.generalized[q][levels[q]][row]).collect());
                    sizes.push(0);
                    hists.push(vec![0; s]);
                    keys.len() - 1
                });
                sizes[c] += 1;
                hists[c][self.sensitive[row] as usize] += 1;
            }
            for (mi, m) in models.iter().enumerate() {
                let pass: Vec<bool> = (0..keys.len()).map(|c| self.passes(m, sizes[c], &hists[c])).collect();
                let suppressed: usize = (0..keys.len()).filter(|c| !pass[*c]).map(|c| sizes[c]).sum();
                let n = self.rows as f64;
                if !limits.iter().any(|limit| suppressed as f64 <= (limit * n).floor()) {
                    continue; // anonymous under no limit: nothing to score
                }
                let kept = pass.iter().filter(|p| **p).count();
                // Discernibility.
                let dm = (0..keys.len())
                    .filter(|c| pass[*c])
                    .map(|c| (sizes[c] * sizes[c]) as f64)
                    .sum::<f64>()
                    + (suppressed * self.rows) as f64;
                // Non-uniform entropy and loss, column by column.
                let mut entropy = 0.0;
                let mut loss_product = 1.0;
                for (q, l) in levels.iter().enumerate() {
                    let mut in_suppressed: BTreeMap<u32, usize> = BTreeMap::new();
                    let mut kept_share = 0.0;
                    for c in 0..keys.len() {
                        if pass[c] {
                            kept_share += sizes[c] as f64 * self.share[q][*l][keys[c][q] as usize];
                        } else {
                            *in_suppressed.entry(keys[c][q]).or_default() += sizes[c];
                        }
                    }
                    let penalty: f64 = in_suppressed
                        .values()
                        .map(|c| -(*c as f64) * (*c as f64 / suppressed as f64).log2())
                        .sum();
                    entropy += round10(self.entropy_level[q][*l] + penalty);
                    let min = n / self.leaves[q] as f64;
                    let v = ((kept_share + suppressed as f64 - min) / (n - min)).max(0.0);
                    loss_product *= (round10(v) + 1.0).powf(1.0 / levels.len() as f64);
                }
                let scores = [entropy, loss_product - 1.0, dm];
                for (li, limit) in limits.iter().enumerate() {
                    if suppressed as f64 <= (limit * n).floor() {
                        for (k, score) in scores.iter().enumerate() {
                            out[mi][li][k].push(Scored {
                                score: *score,
                                levels: levels.clone(),
                                suppressed,
                                classes: kept,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// The optimum of a list: the lowest score; scores within a relative 10⁻¹² of it tie, and
/// among those the lowest level sum, then the lexicographically lowest levels, wins.
pub fn optimum(scored: &[Scored]) -> Option<&Scored> {
    let min = scored.iter().map(|s| s.score).fold(f64::INFINITY, f64::min);
    scored
        .iter()
        .filter(|s| (s.score - min).abs() <= 1e-12 * s.score.abs().max(min.abs()))
        .min_by_key(|s| (s.levels.iter().sum::<usize>(), s.levels.clone()))
}
