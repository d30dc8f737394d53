//! The generalization lattice: one node per combination of hierarchy levels (the product of
//! the hierarchies' heights), ordered component-wise. A node is numbered in mixed radix with
//! the first column most significant, so numeric order is lexicographic order of levels —
//! the last step of the search's tie-break.

use crate::MaskError;

/// The most nodes a lattice may have (a byte per column per node is kept in memory).
pub const MAX_NODES: usize = 1 << 24;

/// A generalization lattice.
#[derive(Debug, Clone)]
pub struct Lattice {
    heights: Vec<usize>,
    strides: Vec<usize>,
    size: usize,
    /// Levels of every node, `columns` bytes per node: decoded once, read on every step.
    levels: Vec<u8>,
    sums: Vec<u16>,
}

impl Lattice {
    /// The lattice of columns with these heights (levels per hierarchy, each ≥ 1).
    pub fn new(heights: &[usize]) -> Result<Lattice, MaskError> {
        let bad = |detail: String| MaskError::Config {
            technique: "anonymize",
            detail,
        };
        if heights.is_empty() || heights.iter().any(|h| *h == 0 || *h > 255) {
            return Err(bad(format!("hierarchy heights {heights:?}: each must be 1..=255")));
        }
        let mut size = 1usize;
        for h in heights {
            size = size.checked_mul(*h).filter(|s| *s <= MAX_NODES).ok_or_else(|| {
                bad(format!(
                    "the lattice of heights {heights:?} has more than {MAX_NODES} nodes"
                ))
            })?;
        }
        let mut strides = vec![1; heights.len()];
        for i in (0..heights.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * heights[i + 1];
        }
        let cols = heights.len();
        let mut levels = vec![0u8; size * cols];
        let mut sums = vec![0u16; size];
        for node in 0..size {
            let mut rest = node;
            let mut sum = 0u16;
            for q in 0..cols {
                let l = rest / strides[q];
                rest %= strides[q];
                levels[node * cols + q] = l as u8;
                sum += l as u16;
            }
            sums[node] = sum;
        }
        Ok(Lattice {
            heights: heights.to_vec(),
            strides,
            size,
            levels,
            sums,
        })
    }

    /// Nodes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Columns.
    pub fn columns(&self) -> usize {
        self.heights.len()
    }

    /// Levels per column.
    pub fn heights(&self) -> &[usize] {
        &self.heights
    }

    /// The levels of a node.
    #[inline]
    pub fn levels(&self, node: usize) -> &[u8] {
        let c = self.heights.len();
        &self.levels[node * c..node * c + c]
    }

    /// The levels of a node, as numbers.
    pub fn levels_vec(&self, node: usize) -> Vec<usize> {
        self.levels(node).iter().map(|l| usize::from(*l)).collect()
    }

    /// The node of these levels (None when a level is out of range or the count is wrong).
    pub fn node(&self, levels: &[usize]) -> Option<usize> {
        if levels.len() != self.heights.len() {
            return None;
        }
        let mut n = 0;
        for ((l, h), s) in levels.iter().zip(&self.heights).zip(&self.strides) {
            if l >= h {
                return None;
            }
            n += l * s;
        }
        Some(n)
    }

    /// The sum of a node's levels (its height in the lattice): the first tie-break.
    #[inline]
    pub fn sum(&self, node: usize) -> usize {
        usize::from(self.sums[node])
    }

    /// The top node (every column fully generalized).
    pub fn top(&self) -> usize {
        self.size - 1
    }

    /// Nodes one level higher in one column.
    pub fn successors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let lv = self.levels(node);
        (0..self.heights.len())
            .filter(move |q| usize::from(lv[*q]) + 1 < self.heights[*q])
            .map(move |q| node + self.strides[q])
    }

    /// Nodes one level lower in one column.
    pub fn predecessors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let lv = self.levels(node);
        (0..self.heights.len())
            .filter(move |q| lv[*q] > 0)
            .map(move |q| node - self.strides[q])
    }

    /// Whether `a` is at or below `b` in every column (`b` is a generalization of `a`).
    #[inline]
    pub fn le(&self, a: usize, b: usize) -> bool {
        self.levels(a).iter().zip(self.levels(b)).all(|(x, y)| x <= y)
    }

    /// The tie-break order: lower level sum first, then lexicographically lower levels.
    #[inline]
    pub fn tie_key(&self, node: usize) -> (usize, usize) {
        (self.sum(node), node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbering_is_lexicographic_and_neighbours_differ_by_one_level() {
        let l = Lattice::new(&[2, 3, 2]).expect("lattice");
        assert_eq!(l.size(), 12);
        assert_eq!(l.levels(0), &[0, 0, 0]);
        assert_eq!(l.levels(1), &[0, 0, 1]);
        assert_eq!(l.levels(2), &[0, 1, 0]);
        assert_eq!(l.levels(11), &[1, 2, 1]);
        assert_eq!(l.node(&[1, 2, 1]), Some(11));
        assert_eq!(l.node(&[1, 3, 1]), None);
        let mut s: Vec<usize> = l.successors(0).collect();
        s.sort_unstable();
        assert_eq!(s, vec![1, 2, 6]);
        assert_eq!(l.predecessors(0).count(), 0);
        assert_eq!(l.successors(l.top()).count(), 0);
        assert!(l.le(2, 11) && !l.le(11, 2) && !l.le(1, 2));
        assert!(Lattice::new(&[0]).is_err());
        assert!(Lattice::new(&[255; 4]).is_err());
    }

    proptest! {
        /// Levels and numbers round-trip; successors are exactly the nodes one level up.
        #[test]
        fn levels_round_trip(heights in proptest::collection::vec(1usize..5, 1..5)) {
            let l = Lattice::new(&heights).expect("lattice");
            for n in 0..l.size() {
                prop_assert_eq!(l.node(&l.levels_vec(n)), Some(n));
                for s in l.successors(n) {
                    prop_assert!(l.le(n, s));
                    prop_assert_eq!(l.sum(s), l.sum(n) + 1);
                    prop_assert!(l.predecessors(s).any(|p| p == n));
                }
            }
        }
    }
}
