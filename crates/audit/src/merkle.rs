//! RFC 6962 Merkle trees. Subtrees are named by leaf ranges `[start, end)`;
//! every subtree a proof needs is either a *perfect* aligned subtree (stored
//! once, as node `(level, start >> level)`) or a right-edge subtree that is the
//! fold of a few perfect ones. Proof generation is therefore two steps: list
//! the ranges ([`inclusion_ranges`], [`consistency_ranges`]), then fetch their
//! perfect pieces ([`pieces`]) from wherever nodes live (memory or a database).

use sha2::{Digest, Sha256};

use crate::Hash;

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A stored node: a perfect subtree of `2^level` leaves starting at leaf `idx << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = a leaf).
    pub level: u32,
    /// Position among the nodes of that level.
    pub idx: u64,
}

/// The right edge of a tree: the perfect subtrees its leaves decompose into,
/// largest (leftmost) first. Appending and computing the root need nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The perfect subtrees a tree of `size` leaves decomposes into, as node ids (largest first).
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                out.push(NodeId {
                    level,
                    idx: start >> level,
                });
                start += 1u64 << level;
            }
        }
        out
    }

    /// Rebuilds a frontier from its nodes (as listed by [`Frontier::node_ids`]).
    pub fn from_nodes(size: u64, hashes: &[Hash]) -> Option<Frontier> {
        let ids = Self::node_ids(size);
        if ids.len() != hashes.len() {
            return None;
        }
        Some(Frontier {
            size,
            subtrees: ids.iter().zip(hashes).map(|(id, h)| (id.level, *h)).collect(),
        })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns every node this completes (the leaf itself first).
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut created = vec![(NodeId { level: 0, idx: index }, leaf)];
        self.subtrees.push((0, leaf));
        while self.subtrees.len() >= 2 {
            let n = self.subtrees.len();
            let (l_level, l_hash) = self.subtrees[n - 2];
            let (r_level, r_hash) = self.subtrees[n - 1];
            if l_level != r_level {
                break;
            }
            let level = l_level + 1;
            let merged = node_hash(&l_hash, &r_hash);
            self.subtrees.truncate(n - 2);
            self.subtrees.push((level, merged));
            created.push((
                NodeId {
                    level,
                    idx: ((index + 1) >> level) - 1,
                },
                merged,
            ));
        }
        self.size += 1;
        created
    }

    /// The tree's root hash (MTH).
    pub fn root(&self) -> Hash {
        fold(self.subtrees.iter().map(|(_, h)| *h)).unwrap_or_else(empty_root)
    }
}

/// Folds perfect subtree hashes (largest first) into the hash of their union, as RFC 6962 does.
fn fold(hashes: impl DoubleEndedIterator<Item = Hash>) -> Option<Hash> {
    let mut it = hashes.rev();
    let mut acc = it.next()?;
    for h in it {
        acc = node_hash(&h, &acc);
    }
    Some(acc)
}

/// The perfect aligned subtrees covering `[start, end)`, left to right. For the ranges
/// proofs use (from [`inclusion_ranges`] and [`consistency_ranges`]), folding their
/// hashes with [`range_hash`] gives the range's Merkle tree hash.
pub fn pieces(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let mut level = if pos == 0 { 63 } else { pos.trailing_zeros() };
        while level > 0 && pos.checked_add(1u64 << level).is_none_or(|e| e > end) {
            level -= 1;
        }
        out.push(NodeId {
            level,
            idx: pos >> level,
        });
        pos += 1u64 << level;
    }
    out
}

/// The hash of subtree `[start, end)` from its pieces' hashes (as listed by [`pieces`]).
pub fn range_hash(piece_hashes: &[Hash]) -> Option<Hash> {
    fold(piece_hashes.iter().copied())
}

fn split(n: u64) -> u64 {
    // Largest power of two strictly less than n (n >= 2).
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The subtrees whose hashes form the inclusion proof of leaf `index` in a tree of `size`
/// leaves, in proof order (RFC 6962 §2.1.1 PATH).
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if index >= size {
        return out;
    }
    path(index, 0, size, &mut out);
    out
}

fn path(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        path(m - k, start + k, end, out);
        out.push((start, start + k));
    }
}

/// The subtrees whose hashes form the consistency proof from tree size `first` to `second`,
/// in proof order (RFC 6962 §2.1.2 PROOF). Empty when `first` is 0 or equals `second`.
pub fn consistency_ranges(first: u64, second: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if first == 0 || first >= second {
        return out;
    }
    subproof(first, 0, second, true, &mut out);
    out
}

fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !whole {
            out.push((start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Computes a proof from ranges over leaf hashes held in memory (tests, small trees, the offline verifier).
pub fn prove_in_memory(leaves: &[Hash], ranges: &[(u64, u64)]) -> Vec<Hash> {
    ranges
        .iter()
        .filter_map(|(s, e)| mth(leaves.get(*s as usize..*e as usize)?))
        .collect()
}

/// The Merkle tree hash of a list of leaf hashes, by the RFC's recursive definition.
pub fn mth(leaves: &[Hash]) -> Option<Hash> {
    match leaves.len() {
        0 => None,
        1 => Some(leaves[0]),
        n => {
            let k = split(n as u64) as usize;
            Some(node_hash(&mth(&leaves[..k])?, &mth(&leaves[k..])?))
        }
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    &fr == first_root && &sr == second_root && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).expect("hex");
        let mut out = [0u8; 32];
        out.copy_from_slice(&v);
        out
    }

    /// The reference inputs of the Certificate Transparency test suite.
    fn ct_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|x| leaf_hash(&hex::decode(x).expect("hex")))
        .collect()
    }

    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_rfc_6962_reference_values() {
        let leaves = ct_leaves();
        let mut f = Frontier::default();
        assert_eq!(f.root(), h(CT_ROOTS[0]));
        for (n, leaf) in leaves.iter().enumerate() {
            f.append(*leaf);
            assert_eq!(f.root(), h(CT_ROOTS[n + 1]), "size {}", n + 1);
            assert_eq!(mth(&leaves[..=n]), Some(h(CT_ROOTS[n + 1])));
        }
    }

    #[test]
    fn proofs_match_the_reference_vectors() {
        let leaves = ct_leaves();
        let inclusion: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in inclusion {
            let proof = prove_in_memory(&leaves[..size as usize], &inclusion_ranges(index, size));
            assert_eq!(
                proof,
                want.iter().map(|x| h(x)).collect::<Vec<_>>(),
                "inclusion {index}/{size}"
            );
            assert!(verify_inclusion(
                index,
                size,
                &leaves[index as usize],
                &proof,
                &h(CT_ROOTS[size as usize])
            ));
        }
        let consistency: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first, second, want) in consistency {
            let proof = prove_in_memory(&leaves[..second as usize], &consistency_ranges(first, second));
            assert_eq!(
                proof,
                want.iter().map(|x| h(x)).collect::<Vec<_>>(),
                "consistency {first}->{second}"
            );
            assert!(verify_consistency(
                first,
                second,
                &h(CT_ROOTS[first as usize]),
                &h(CT_ROOTS[second as usize]),
                &proof
            ));
        }
    }

    #[test]
    fn appended_nodes_are_the_perfect_subtrees_and_pieces_rebuild_any_range() {
        let leaves: Vec<Hash> = (0u32..37).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        let mut nodes = std::collections::HashMap::new();
        for l in &leaves {
            for (id, hash) in f.append(*l) {
                let start = (id.idx << id.level) as usize;
                let end = start + (1usize << id.level);
                assert_eq!(Some(hash), mth(&leaves[start..end]), "{id:?}");
                nodes.insert(id, hash);
            }
        }
        for size in 1..=37u64 {
            let ids = Frontier::node_ids(size);
            let hashes: Vec<Hash> = ids.iter().map(|id| nodes[id]).collect();
            let rebuilt = Frontier::from_nodes(size, &hashes).expect("frontier");
            assert_eq!(rebuilt.root(), mth(&leaves[..size as usize]).expect("root"));
            // Every range a proof can need is rebuilt exactly from stored perfect nodes.
            let mut ranges: Vec<(u64, u64)> = (0..size).flat_map(|i| inclusion_ranges(i, size)).collect();
            ranges.extend((1..size).flat_map(|m| consistency_ranges(m, size)));
            for (start, end) in ranges {
                let ps: Vec<Hash> = pieces(start, end).iter().map(|id| nodes[id]).collect();
                assert_eq!(
                    range_hash(&ps),
                    mth(&leaves[start as usize..end as usize]),
                    "[{start},{end})"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_and_any_change_fails(size in 1u64..300, pick in 0u64..300, flip in 0usize..32) {
            let index = pick % size;
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let root = mth(&leaves).expect("root");
            let proof = prove_in_memory(&leaves, &inclusion_ranges(index, size));
            prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root));
            let mut bad_leaf = leaves[index as usize];
            bad_leaf[flip] ^= 1;
            prop_assert!(!verify_inclusion(index, size, &bad_leaf, &proof, &root));
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[flip % proof.len()][flip] ^= 0x80;
                prop_assert!(!verify_inclusion(index, size, &leaves[index as usize], &bad, &root));
            }
            if size > 1 {
                prop_assert!(!verify_inclusion((index + 1) % size, size, &leaves[index as usize], &proof, &root));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_a_rewritten_history_fails(second in 1u64..300, pick in 0u64..300, victim in 0u64..300) {
            let first = 1 + pick % second;
            let leaves: Vec<Hash> = (0..second).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let r1 = mth(&leaves[..first as usize]).expect("r1");
            let r2 = mth(&leaves).expect("r2");
            let proof = prove_in_memory(&leaves, &consistency_ranges(first, second));
            prop_assert!(verify_consistency(first, second, &r1, &r2, &proof));
            // A log that changed any entry of the first tree cannot prove consistency with it.
            let mut forged = leaves.clone();
            let v = (victim % first) as usize;
            forged[v] = leaf_hash(b"forged");
            let f2 = mth(&forged).expect("f2");
            let fproof = prove_in_memory(&forged, &consistency_ranges(first, second));
            prop_assert!(!verify_consistency(first, second, &r1, &f2, &fproof));
        }
    }
}
