//! Dictionary encoding: every quasi-identifier becomes u32 codes, one code space per
//! hierarchy level, with the maps between levels precomputed — so that the search never
//! touches a string, and rolling a class table up a level is one array lookup per column.

use std::collections::HashMap;

use crate::MaskError;
use crate::generalize::Hierarchy;

/// The most levels a hierarchy may have: node levels are stored as bytes.
const MAX_LEVELS: usize = 255;

fn config(detail: String) -> MaskError {
    MaskError::Config {
        technique: "anonymize",
        detail,
    }
}

/// Bits needed to store codes `0..n`.
pub(crate) fn bits_for(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// One quasi-identifier, dictionary-encoded. Codes are numbered in order of first
/// appearance (level 0 in row order, higher levels in level-0 code order), so everything
/// derived from them — including float sums — is deterministic.
#[derive(Debug, Clone)]
pub(crate) struct Qi {
    /// The column's name.
    pub name: String,
    /// Levels of the hierarchy (level 0 is the original value).
    pub height: usize,
    /// The level-0 code of every row.
    pub rows: Vec<u32>,
    /// `values[level][code]`: the text of a code.
    pub values: Vec<Vec<String>>,
    /// `up[level][code0]`: the code at `level` of a level-0 code.
    pub up: Vec<Vec<u32>>,
    /// `step[a][b][code_a]`: the code at level `b` of a level-`a` code (`a < b`; empty
    /// otherwise). Well defined because the hierarchy is a tree (checked).
    pub step: Vec<Vec<Vec<u32>>>,
    /// `freq[level][code]`: rows whose value at `level` is this code.
    pub freq: Vec<Vec<u32>>,
    /// `share[level][code]`: ARX's domain share — the hierarchy's rows (leaves) whose value at
    /// `level` is this one, over all of the hierarchy's rows.
    pub share: Vec<Vec<f64>>,
    /// The hierarchy's rows (ARX's domain size, for Loss).
    pub domain: usize,
    /// Where the column's code sits in a packed class key.
    pub shift: u32,
    /// How many bits it takes there.
    pub width: u32,
}

impl Qi {
    /// The mask of this column's field (unshifted).
    pub fn mask(&self) -> u64 {
        if self.width == 0 { 0 } else { (1u64 << self.width) - 1 }
    }
}

/// The sensitive attribute, dictionary-encoded.
#[derive(Debug, Clone)]
pub(crate) struct Sensitive {
    /// The code of every row.
    pub rows: Vec<u32>,
    /// Relative frequency of every code in the whole table (t-closeness's reference).
    pub global: Vec<f64>,
}

/// The table as the search sees it.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    /// Rows.
    pub rows: usize,
    /// The quasi-identifiers, in the caller's order.
    pub qis: Vec<Qi>,
    /// The sensitive attribute, if any.
    pub sensitive: Option<Sensitive>,
    /// Bits of a packed key taken by the sensitive code (the lowest ones).
    pub sens_bits: u32,
}

/// Checks that the hierarchy is a tree — a value at one level has one parent — and returns its
/// rows sorted (so that errors and counts do not depend on hash order).
fn tree_rows<'h>(name: &str, h: &'h Hierarchy) -> Result<Vec<&'h str>, MaskError> {
    let mut leaves: Vec<&str> = h.values().collect();
    leaves.sort_unstable();
    let mut parent: HashMap<(usize, &str), &str> = HashMap::new();
    for leaf in &leaves {
        for level in 0..h.levels().saturating_sub(1) {
            let (Some(child), Some(up)) = (h.generalize(leaf, level), h.generalize(leaf, level + 1)) else {
                continue;
            };
            if let Some(seen) = parent.insert((level, child), up)
                && seen != up
            {
                return Err(config(format!(
                    "the hierarchy of column {name} is not a tree: {child:?} at level {level} generalizes to both \
                     {seen:?} and {up:?}; full-domain generalization needs one parent per value"
                )));
            }
        }
    }
    Ok(leaves)
}

fn encode_qi(name: &str, column: &[String], h: &Hierarchy) -> Result<Qi, MaskError> {
    let height = h.levels();
    if height > MAX_LEVELS {
        return Err(config(format!(
            "the hierarchy of column {name} has {height} levels; at most {MAX_LEVELS} are supported"
        )));
    }
    let leaves = tree_rows(name, h)?;

    // Level 0, in row order.
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut values0: Vec<String> = Vec::new();
    let mut freq0: Vec<u32> = Vec::new();
    let mut rows = Vec::with_capacity(column.len());
    for (i, v) in column.iter().enumerate() {
        let code = match index.get(v.as_str()) {
            Some(c) => *c,
            None => {
                if h.generalize(v, 0).is_none() {
                    return Err(MaskError::NotInHierarchy {
                        column: name.to_string(),
                        row: i + 1,
                        value: v.clone(),
                    });
                }
                let c = values0.len() as u32;
                index.insert(v.as_str(), c);
                values0.push(v.clone());
                freq0.push(0);
                c
            }
        };
        freq0[code as usize] += 1;
        rows.push(code);
    }
    let d0 = values0.len();

    // Higher levels, in level-0 code order.
    let mut values = vec![values0];
    let mut up = vec![(0..d0 as u32).collect::<Vec<u32>>()];
    let mut freq = vec![freq0];
    for level in 1..height {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut vals: Vec<String> = Vec::new();
        let mut map = Vec::with_capacity(d0);
        let mut f: Vec<u32> = Vec::new();
        for c0 in 0..d0 {
            let text = h
                .generalize(&values[0][c0], level)
                .ok_or_else(|| config(format!("the hierarchy of column {name} has no level {level}")))?;
            let code = match index.get(text) {
                Some(c) => *c,
                None => {
                    let c = vals.len() as u32;
                    index.insert(text, c);
                    vals.push(text.to_string());
                    f.push(0);
                    c
                }
            };
            f[code as usize] += freq[0][c0];
            map.push(code);
        }
        values.push(vals);
        up.push(map);
        freq.push(f);
    }

    let mut step = vec![vec![Vec::new(); height]; height];
    for (a, row) in step.iter_mut().enumerate() {
        for (b, map) in row.iter_mut().enumerate().skip(a + 1) {
            let mut m = vec![0u32; values[a].len()];
            for c0 in 0..d0 {
                m[up[a][c0] as usize] = up[b][c0];
            }
            *map = m;
        }
    }

    // Domain shares: counted over the whole hierarchy, not only the values in the data.
    let domain = leaves.len();
    let mut at_level: HashMap<(usize, &str), usize> = HashMap::new();
    for leaf in &leaves {
        for level in 0..height {
            if let Some(g) = h.generalize(leaf, level) {
                *at_level.entry((level, g)).or_default() += 1;
            }
        }
    }
    let share = values
        .iter()
        .enumerate()
        .map(|(level, vals)| {
            vals.iter()
                .map(|v| at_level.get(&(level, v.as_str())).copied().unwrap_or(0) as f64 / domain as f64)
                .collect()
        })
        .collect();

    Ok(Qi {
        name: name.to_string(),
        height,
        rows,
        width: bits_for(d0),
        values,
        up,
        step,
        freq,
        share,
        domain,
        shift: 0,
    })
}

impl Encoded {
    /// Encodes the columns against their hierarchies (same order) and the sensitive column.
    pub fn new(
        columns: &[(String, Vec<String>)],
        hierarchies: &[Hierarchy],
        sensitive: Option<&[String]>,
    ) -> Result<Encoded, MaskError> {
        if columns.is_empty() {
            return Err(config("no quasi-identifier".into()));
        }
        if columns.len() != hierarchies.len() {
            return Err(config(format!(
                "{} quasi-identifiers but {} hierarchies",
                columns.len(),
                hierarchies.len()
            )));
        }
        let rows = columns[0].1.len();
        for (name, values) in columns {
            if values.len() != rows {
                return Err(config(format!(
                    "column {name} has {} rows, column {} has {rows}",
                    values.len(),
                    columns[0].0
                )));
            }
        }
        if rows == 0 {
            return Err(config("the table has no rows".into()));
        }
        if u32::try_from(rows).is_err() {
            return Err(config(format!("{rows} rows; at most {} are supported", u32::MAX)));
        }
        let mut qis = Vec::with_capacity(columns.len());
        for ((name, values), h) in columns.iter().zip(hierarchies) {
            if qis.iter().any(|q: &Qi| &q.name == name) {
                return Err(config(format!("column {name} is named twice")));
            }
            qis.push(encode_qi(name, values, h)?);
        }
        let sensitive = match sensitive {
            None => None,
            Some(s) if s.len() != rows => {
                return Err(config(format!(
                    "the sensitive column has {} rows, the quasi-identifiers {rows}",
                    s.len()
                )));
            }
            Some(s) => {
                let mut index: HashMap<&str, u32> = HashMap::new();
                let mut counts: Vec<u32> = Vec::new();
                let mut codes = Vec::with_capacity(rows);
                for v in s {
                    let next = counts.len() as u32;
                    let c = *index.entry(v.as_str()).or_insert(next);
                    if c == next {
                        counts.push(0);
                    }
                    counts[c as usize] += 1;
                    codes.push(c);
                }
                Some(Sensitive {
                    rows: codes,
                    global: counts.iter().map(|c| f64::from(*c) / rows as f64).collect(),
                })
            }
        };
        let sens_bits = sensitive.as_ref().map_or(0, |s| bits_for(s.global.len()));
        let mut shift = sens_bits;
        for q in &mut qis {
            q.shift = shift;
            shift += q.width;
        }
        if shift > 64 {
            return Err(config(format!(
                "the quasi-identifiers' distinct values need {shift} bits per class key; at most 64 are supported"
            )));
        }
        Ok(Encoded {
            rows,
            qis,
            sensitive,
            sens_bits,
        })
    }

    /// The mask of the sensitive code's bits in a packed key.
    pub fn sens_mask(&self) -> u64 {
        if self.sens_bits == 0 {
            0
        } else {
            (1u64 << self.sens_bits) - 1
        }
    }

    /// The packed level-0 key of a row, with its sensitive code when `with_sensitive`.
    pub fn row_key(&self, row: usize, with_sensitive: bool) -> u64 {
        let mut key = 0u64;
        for q in &self.qis {
            key |= u64::from(q.rows[row]) << q.shift;
        }
        if with_sensitive && let Some(s) = &self.sensitive {
            key |= u64::from(s.rows[row]);
        }
        key
    }

    /// The code of column `q` in a packed key.
    #[inline]
    pub fn code(&self, key: u64, q: usize) -> usize {
        let qi = &self.qis[q];
        ((key >> qi.shift) & qi.mask()) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn codes_follow_first_appearance_and_levels_map_up() {
        let h = Hierarchy::from_csv("a;ab;*\nb;ab;*\nc;c;*\nd;c;*\n").expect("h");
        let e = Encoded::new(&[("x".into(), col(&["c", "a", "b", "c"]))], &[h], None).expect("encode");
        let q = &e.qis[0];
        assert_eq!(q.rows, vec![0, 1, 2, 0]);
        assert_eq!(q.values[1], col(&["c", "ab"]));
        assert_eq!(q.up[1], vec![0, 1, 1]);
        assert_eq!(q.freq[1], vec![2, 2]);
        assert_eq!(q.step[1][2], vec![0, 0]);
        assert_eq!(q.domain, 4);
        // "ab" covers 2 of the hierarchy's 4 rows; "*" all of them; an original value 1.
        assert_eq!(q.share[1], vec![0.5, 0.5]);
        assert_eq!(q.share[2], vec![1.0]);
        assert_eq!(q.share[0], vec![0.25; 3]);
        assert_eq!(q.width, 2);
    }

    #[test]
    fn a_value_outside_the_hierarchy_is_named_with_its_column_and_row() {
        let h = Hierarchy::from_csv("a;*\nb;*\n").expect("h");
        let e = Encoded::new(&[("sex".into(), col(&["a", "b", "z"]))], &[h], None).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "column sex, row 3: value \"z\" is not in the column's hierarchy"
        );
    }

    #[test]
    fn a_hierarchy_that_is_not_a_tree_is_refused() {
        let h = Hierarchy::from_csv("a;x;*\nb;x;**\n").expect("h");
        let e = Encoded::new(&[("c".into(), col(&["a"]))], &[h], None).expect_err("not a tree");
        assert!(e.to_string().contains("not a tree"), "{e}");
    }

    #[test]
    fn keys_that_do_not_fit_64_bits_are_refused() {
        // 9 columns of 256 distinct values: 72 bits.
        let values: Vec<String> = (0..256).map(|i| i.to_string()).collect();
        let h = Hierarchy::from_csv(&values.iter().map(|v| format!("{v};*\n")).collect::<String>()).expect("h");
        let cols: Vec<(String, Vec<String>)> = (0..9).map(|i| (format!("c{i}"), values.clone())).collect();
        let e = Encoded::new(&cols, &vec![h; 9], None).expect_err("too wide");
        assert!(e.to_string().contains("72 bits"), "{e}");
    }
}
