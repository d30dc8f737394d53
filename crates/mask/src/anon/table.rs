//! Class tables and the roll-up between them. A node's table lists its distinct packed keys
//! (the column codes at the node's levels, plus the sensitive code when a model needs it) with
//! their row counts. Because every hierarchy is a tree, the table of a coarser node is the
//! table of any finer node with each key mapped up and equal keys merged — so a node costs
//! as many steps as its source has entries, never a scan of the rows.

use super::data::Encoded;

/// Distinct keys and their row counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub keys: Vec<u64>,
    pub counts: Vec<u32>,
}

impl Table {
    /// Entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// An open-addressing hash aggregation (linear probing, Fibonacci hashing of packed keys),
/// reused from node to node so that no node allocates its own.
#[derive(Debug, Default)]
pub(crate) struct Grouper {
    slots: Vec<u32>,
    bits: u32,
    keys: Vec<u64>,
    counts: Vec<u32>,
}

impl Grouper {
    /// Empties the grouper for at most `expected` distinct keys.
    pub fn reset(&mut self, expected: usize) {
        let cap = (expected.max(8) * 2).next_power_of_two();
        self.bits = cap.trailing_zeros();
        self.slots.clear();
        self.slots.resize(cap, 0);
        self.keys.clear();
        self.counts.clear();
        self.keys.reserve(expected);
        self.counts.reserve(expected);
    }

    /// Adds `count` rows under `key`; returns the key's entry index.
    #[inline]
    pub fn add(&mut self, key: u64, count: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize;
        loop {
            let s = self.slots[i];
            if s == 0 {
                let e = self.keys.len();
                self.slots[i] = e as u32 + 1;
                self.keys.push(key);
                self.counts.push(count);
                return e;
            }
            let e = (s - 1) as usize;
            if self.keys[e] == key {
                self.counts[e] += count;
                return e;
            }
            i = (i + 1) & mask;
        }
    }

    /// The distinct keys so far.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The counts so far.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// The table, leaving the grouper empty.
    pub fn finish(&mut self) -> Table {
        Table {
            keys: std::mem::take(&mut self.keys),
            counts: std::mem::take(&mut self.counts),
        }
    }
}

/// The level-0 table, from the rows.
pub(crate) fn bottom(enc: &Encoded, with_sensitive: bool, g: &mut Grouper) -> Table {
    g.reset(enc.rows);
    for row in 0..enc.rows {
        g.add(enc.row_key(row, with_sensitive), 1);
    }
    g.finish()
}

/// The table at levels `to` from the table at levels `from` (`from ≤ to` in every column).
pub(crate) fn rollup(enc: &Encoded, src: &Table, from: &[u8], to: &[u8], g: &mut Grouper) -> Table {
    let changes: Vec<(u32, u64, &[u32])> = enc
        .qis
        .iter()
        .enumerate()
        .filter(|(q, _)| from[*q] != to[*q])
        .map(|(q, qi)| {
            (
                qi.shift,
                qi.mask(),
                qi.step[usize::from(from[q])][usize::from(to[q])].as_slice(),
            )
        })
        .collect();
    g.reset(src.len());
    match changes.as_slice() {
        // One column changes when a node rolls up from a neighbour: the common case.
        [(shift, mask, map)] => {
            let clear = !(mask << shift);
            for (k, c) in src.keys.iter().zip(&src.counts) {
                let code = ((k >> shift) & mask) as usize;
                g.add((k & clear) | (u64::from(map[code]) << shift), *c);
            }
        }
        _ => {
            for (k, c) in src.keys.iter().zip(&src.counts) {
                let mut key = *k;
                for (shift, mask, map) in &changes {
                    let code = ((k >> shift) & mask) as usize;
                    key = (key & !(mask << shift)) | (u64::from(map[code]) << shift);
                }
                g.add(key, *c);
            }
        }
    }
    g.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generalize::Hierarchy;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const AGE: &str = "1;1-2;*\n2;1-2;*\n3;3-4;*\n4;3-4;*\n5;5-6;*\n6;5-6;*\n";
    const SEX: &str = "m;*\nf;*\n";

    proptest! {
        /// Rolling up from any finer node gives the same classes as grouping the rows at the
        /// coarser node directly.
        #[test]
        fn rollup_equals_grouping_the_rows(
            rows in proptest::collection::vec((0usize..6, 0usize..2), 1..80),
            from in (0u8..3, 0u8..2), up in (0u8..3, 0u8..2),
        ) {
            let ages = ["1", "2", "3", "4", "5", "6"];
            let sexes = ["m", "f"];
            let cols = vec![
                ("age".to_string(), rows.iter().map(|(a, _)| ages[*a].to_string()).collect()),
                ("sex".to_string(), rows.iter().map(|(_, s)| sexes[*s].to_string()).collect()),
            ];
            let hs = [Hierarchy::from_csv(AGE).expect("h"), Hierarchy::from_csv(SEX).expect("h")];
            let e = Encoded::new(&cols, &hs, None).expect("encode");
            let from = [from.0, from.1];
            let to = [from[0].max(up.0), from[1].max(up.1)];
            let mut g = Grouper::default();
            let b = bottom(&e, false, &mut g);
            let mid = rollup(&e, &b, &[0, 0], &from, &mut g);
            let top = rollup(&e, &mid, &from, &to, &mut g);
            // Directly: group the rows by their generalized strings.
            let mut want: HashMap<(String, String), u32> = HashMap::new();
            for r in 0..rows.len() {
                let key = (0..2).map(|q| {
                    let qi = &e.qis[q];
                    qi.values[usize::from(to[q])][qi.up[usize::from(to[q])][qi.rows[r] as usize] as usize].clone()
                }).collect::<Vec<_>>();
                *want.entry((key[0].clone(), key[1].clone())).or_default() += 1;
            }
            let mut got: HashMap<(String, String), u32> = HashMap::new();
            for (k, c) in top.keys.iter().zip(&top.counts) {
                let v = |q: usize| e.qis[q].values[usize::from(to[q])][e.code(*k, q)].clone();
                prop_assert!(got.insert((v(0), v(1)), *c).is_none());
            }
            prop_assert_eq!(got, want);
        }
    }
}
