//! RFC 9162 §2.1 Merkle tree hashing (the RFC 6962 tree of Certificate Transparency): leaf and
//! node hashes, roots, inclusion and consistency proofs and their verification, computed from
//! the stored hashes of complete, aligned subtrees so that a log keeps O(n) hashes and answers
//! each question with O(log n) reads.

use super::digest::sha256;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Leaf hash: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    // A context rather than a copied buffer: entries can be large.
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&[0x00]);
    ctx.update(entry);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// The root of the empty tree (size 0): SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Hashes of complete, aligned subtrees: `(level, index)` covers leaves
/// [index·2^level, (index+1)·2^level).
pub trait Subtrees {
    /// Why a stored hash could not be read.
    type Error;
    /// The hash of the complete subtree `(level, index)`; level 0 is the leaf hash.
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) for a range the RFC recursion produces (lo < hi, lo a multiple of the
/// smallest power of two ≥ hi - lo): the complete subtrees named by the set bits of the size,
/// largest first, folded from the right. O(log n) reads.
fn range_hash<S: Subtrees>(s: &S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    let size = hi - lo;
    let mut parts: Vec<Hash> = Vec::with_capacity(size.count_ones() as usize);
    let mut start = lo;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            parts.push(s.subtree(level, start >> level)?);
            start += width;
        }
    }
    let mut parts = parts.into_iter().rev();
    let Some(mut acc) = parts.next() else {
        return Ok(empty_root());
    };
    for left in parts {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// Root of the tree of the first `size` leaves (uses O(log size) stored subtree hashes).
pub fn root<S: Subtrees>(s: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(s, 0, size)
}

/// RFC 9162 §2.1.3.1 PATH(index, D[size]); caller guarantees index < size (otherwise the
/// answer is an empty or meaningless path, never a panic).
pub fn inclusion_proof<S: Subtrees>(s: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Ok(Vec::new());
    }
    // Walk from the root down to the leaf, taking the sibling not on the path; the proof
    // lists them leaf first.
    let (mut lo, mut hi) = (0u64, size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            path.push(range_hash(s, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(range_hash(s, lo, lo + k)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 9162 §2.1.4.1 PROOF(from, D[size]) (SUBPROOF with b = true); caller guarantees
/// 1 <= from <= size (otherwise the answer is empty); from == size gives empty.
pub fn consistency_proof<S: Subtrees>(s: &S, from: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    if from == 0 || from > size {
        return Ok(Vec::new());
    }
    // SUBPROOF unrolled: descend while the old tree ends strictly inside [lo, hi), noting each
    // sibling; `whole` is the RFC's b (still on the old tree's left edge).
    let (mut lo, mut hi, mut whole) = (0u64, size, true);
    let mut proof = Vec::new();
    while from != hi {
        let k = split_point(hi - lo);
        if from <= lo + k {
            proof.push(range_hash(s, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(s, lo, lo + k)?);
            lo += k;
            whole = false;
        }
    }
    // Off the left edge, the verifier does not know this subtree's hash: send it.
    if !whole {
        proof.push(range_hash(s, lo, hi)?);
    }
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 §2.1.3.2 verification.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // Skip the levels where this node is the last one and has no right sibling.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 §2.1.4.2 verification. `from` must be at least 1 (a proof from the empty tree says
/// nothing) and at most `size`; equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    from: u64,
    size: u64,
    from_root: &Hash,
    root: &Hash,
    proof: &[Hash],
) -> bool {
    if from == 0 || from > size {
        return false;
    }
    if from == size {
        return proof.is_empty() && from_root == root;
    }
    if proof.is_empty() {
        return false;
    }
    // A power-of-two old tree is a complete subtree of the new one: the proof omits its hash.
    let seed = if from.is_power_of_two() {
        Some(from_root)
    } else {
        None
    };
    let mut path = seed.into_iter().chain(proof);
    let (mut f_n, mut s_n) = (from - 1, size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some(first) = path.next() else {
        return false;
    };
    let (mut f_r, mut s_r) = (*first, *first);
    for c in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *from_root && s_r == *root && s_n == 0
}

/// The complete subtrees that become complete when the leaf `index` (hash `leaf`) is appended:
/// always (0, index, leaf), then (1, index>>1, …) while the subtree closes. `s` gives the
/// earlier ones (left siblings). O(log n).
pub fn completed_by<S: Subtrees>(
    s: &S,
    index: u64,
    leaf: Hash,
) -> Result<Vec<(u8, u64, Hash)>, S::Error> {
    let mut out = vec![(0u8, index, leaf)];
    let (mut level, mut i, mut h) = (0u8, index, leaf);
    // A right child (odd index) closes its parent; its left sibling is already stored.
    while i & 1 == 1 && level < 63 {
        let left = s.subtree(level, i - 1)?;
        h = node_hash(&left, &h);
        level += 1;
        i >>= 1;
        out.push((level, i, h));
    }
    Ok(out)
}

/// Streaming root computation with O(log n) memory (for an offline check over all entries):
/// the roots of the complete subtrees so far, largest first.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    stack: Vec<(u8, Hash)>,
    size: u64,
}

impl Frontier {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0u8;
        let mut h = leaf;
        // Merge equal-sized neighbours, like carrying in binary addition.
        while let Some(&(top_level, top)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            h = node_hash(&top, &h);
            level += 1;
        }
        self.stack.push((level, h));
        self.size += 1;
    }

    /// The number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut parts = self.stack.iter().rev();
        let Some(&(_, mut acc)) = parts.next() else {
            return empty_root();
        };
        for (_, left) in parts {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// An in-memory [`Subtrees`] over a Vec of leaf hashes (tests, and small tools), computing on
/// demand. A subtree reaching past the last leaf is hashed over the leaves it has (the empty
/// root when none): callers ask only for complete ones.
#[derive(Clone, Debug, Default)]
pub struct Leaves(pub Vec<Hash>);

impl Leaves {
    fn hash(&self, lo: usize, hi: usize) -> Hash {
        match hi - lo {
            0 => empty_root(),
            1 => self.0[lo],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&self.hash(lo, lo + k), &self.hash(lo + k, hi))
            }
        }
    }
}

impl Subtrees for Leaves {
    type Error = std::convert::Infallible;

    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        let len = self.0.len();
        let span = 1u64.checked_shl(u32::from(level)).unwrap_or(u64::MAX);
        let start = index.saturating_mul(span);
        let end = start.saturating_add(span);
        let clamp = |x: u64| usize::try_from(x).map_or(len, |x| x.min(len));
        Ok(self.hash(clamp(start), clamp(end)))
    }
}

/// A store as a log keeps it, in memory (tests): only the complete subtrees, written as
/// leaves arrive.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MapStore(pub(crate) std::collections::HashMap<(u8, u64), Hash>);

#[cfg(test)]
impl Subtrees for MapStore {
    type Error = String;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, String> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or_else(|| format!("missing ({level}, {index})"))
    }
}

#[cfg(test)]
mod tests {

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn hx(s: &str) -> Hash {
        crate::crypto::digest::unhex32(s).unwrap()
    }

    fn b64(s: &str) -> Hash {
        STANDARD.decode(s).unwrap().try_into().unwrap()
    }

    /// The eight leaves of transparency-dev/merkle testonly/constants.go (the classic CT
    /// test tree).
    fn kat_leaves() -> Vec<Vec<u8>> {
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
        .map(|h| ::hex::decode(h).unwrap())
        .collect()
    }

    fn kat_tree() -> Leaves {
        Leaves(kat_leaves().iter().map(|e| leaf_hash(e)).collect())
    }

    /// transparency-dev/merkle testonly RootHashes(), by size 0..=8.
    const KAT_ROOTS: [&str; 9] = [
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

    /// A tree of `n` distinct synthetic entries.
    fn tree(n: u64) -> Leaves {
        Leaves(
            (0..n)
                .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn known_answer_leaves_nodes_and_roots() {
        let t = kat_tree();
        // testonly NodeHashes(): level 0 and the complete subtrees above.
        assert_eq!(
            t.0[0],
            hx("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            t.0[7],
            hx("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")
        );
        assert_eq!(
            t.subtree(1, 3).unwrap(),
            hx("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")
        );
        assert_eq!(
            t.subtree(2, 1).unwrap(),
            hx("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")
        );
        assert_eq!(empty_root(), hx(KAT_ROOTS[0]));
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), hx(KAT_ROOTS[0]));
        for (size, want) in KAT_ROOTS.iter().enumerate() {
            assert_eq!(root(&t, size as u64).unwrap(), hx(want), "size {size}");
            if size > 0 {
                frontier.push(t.0[size - 1]);
                assert_eq!(frontier.root(), hx(want), "frontier size {size}");
                assert_eq!(frontier.size(), size as u64);
            }
        }
    }

    /// Happy-path vectors of transparency-dev/merkle testdata/inclusion/*/happy-path.json.
    #[test]
    fn known_answer_inclusion_proofs() {
        let t = kat_tree();
        let cases: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
            ),
            (
                5,
                8,
                &[
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
            (2, 3, &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
            (
                1,
                5,
                &[
                    "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                ],
            ),
        ];
        for (index, size, want) in cases {
            let want: Vec<Hash> = want.iter().map(|s| b64(s)).collect();
            assert_eq!(
                inclusion_proof(&t, index, size).unwrap(),
                want,
                "{index}/{size}"
            );
            let r = hx(KAT_ROOTS[size as usize]);
            assert!(verify_inclusion(
                &t.0[index as usize],
                index,
                size,
                &want,
                &r
            ));
        }
    }

    /// Happy-path vectors of transparency-dev/merkle testdata/consistency/*/happy-path.json.
    #[test]
    fn known_answer_consistency_proofs() {
        let t = kat_tree();
        let cases: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
            ),
            (
                6,
                8,
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
            (
                2,
                5,
                &[
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                ],
            ),
            (
                6,
                7,
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
            ),
        ];
        for (from, size, want) in cases {
            let want: Vec<Hash> = want.iter().map(|s| b64(s)).collect();
            assert_eq!(
                consistency_proof(&t, from, size).unwrap(),
                want,
                "{from}->{size}"
            );
            assert!(verify_consistency(
                from,
                size,
                &hx(KAT_ROOTS[from as usize]),
                &hx(KAT_ROOTS[size as usize]),
                &want
            ));
        }
    }

    /// The RFC's recursive MTH over the leaf hashes, independent of `range_hash`.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn every_inclusion_proof_up_to_70_verifies_and_tampering_fails() {
        let big = tree(140);
        let roots: Vec<Hash> = (0..=140).map(|n| mth(&big.0[..n])).collect();
        for size in 1..=70u64 {
            let r = root(&big, size).unwrap();
            assert_eq!(r, roots[size as usize], "size {size}");
            for index in 0..size {
                let leaf = big.0[index as usize];
                let proof = inclusion_proof(&big, index, size).unwrap();
                assert!(
                    verify_inclusion(&leaf, index, size, &proof, &r),
                    "{index}/{size}"
                );
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][i % 32] ^= 0x01;
                    assert!(!verify_inclusion(&leaf, index, size, &bad, &r));
                }
                let mut bad_leaf = leaf;
                bad_leaf[31] ^= 0x80;
                assert!(!verify_inclusion(&bad_leaf, index, size, &proof, &r));
                for other in [index ^ 1, index + 1, index.wrapping_sub(1), index ^ 2] {
                    if other != index && other < size && big.0[other as usize] != leaf {
                        assert!(
                            !verify_inclusion(&leaf, other, size, &proof, &r),
                            "index {other} for {index}/{size}"
                        );
                    }
                }
                for other_size in [size - 1, size + 1, size * 2, size / 2] {
                    if other_size == size {
                        continue;
                    }
                    // Against that size's root: always refused.
                    let other_root = &roots[other_size as usize];
                    assert!(
                        !verify_inclusion(&leaf, index, other_size, &proof, other_root),
                        "size {other_size} for {index}/{size}"
                    );
                    // Only the size changed: refused unless the path has the same shape in
                    // both trees (index 0 of 3 and of 4: [h1, h2] vs [h1, MTH(h2, h3)]).
                    // Then it still proves inclusion in the tree whose root `r` is; the
                    // signed checkpoint, not the proof, binds root and size.
                    let shape = inclusion_proof(&big, index, other_size).unwrap().len();
                    if shape != proof.len() {
                        assert!(
                            !verify_inclusion(&leaf, index, other_size, &proof, &r),
                            "size {other_size} for {index}/{size}"
                        );
                    }
                }
                if !proof.is_empty() {
                    assert!(!verify_inclusion(
                        &leaf,
                        index,
                        size,
                        &proof[..proof.len() - 1],
                        &r
                    ));
                }
                let mut longer = proof.clone();
                longer.push(r);
                assert!(!verify_inclusion(&leaf, index, size, &longer, &r));
            }
        }
        assert!(inclusion_proof(&big, 5, 5).unwrap().is_empty());
        assert!(!verify_inclusion(&big.0[0], 0, 0, &[], &empty_root()));
    }

    #[test]
    fn every_consistency_proof_up_to_40_verifies_and_tampering_fails() {
        let big = tree(40);
        let roots: Vec<Hash> = (0..=40).map(|n| root(&big, n).unwrap()).collect();
        for size in 1..=40u64 {
            for from in 1..=size {
                let (r1, r2) = (&roots[from as usize], &roots[size as usize]);
                let proof = consistency_proof(&big, from, size).unwrap();
                assert!(
                    verify_consistency(from, size, r1, r2, &proof),
                    "{from}->{size}"
                );
                if from == size {
                    assert!(proof.is_empty());
                    continue;
                }
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][(i * 7) % 32] ^= 0x40;
                    assert!(
                        !verify_consistency(from, size, r1, r2, &bad),
                        "{from}->{size} @{i}"
                    );
                }
                let mut bad_r1 = *r1;
                bad_r1[0] ^= 1;
                assert!(!verify_consistency(from, size, &bad_r1, r2, &proof));
                let mut bad_r2 = *r2;
                bad_r2[31] ^= 1;
                assert!(!verify_consistency(from, size, r1, &bad_r2, &proof));
                assert!(!verify_consistency(size, from, r2, r1, &proof));
                assert!(!verify_consistency(
                    from,
                    size,
                    r1,
                    r2,
                    &proof[..proof.len() - 1]
                ));
                let mut longer = proof.clone();
                longer.push(*r2);
                assert!(!verify_consistency(from, size, r1, r2, &longer));
                if from > 1 {
                    let r0 = &roots[from as usize - 1];
                    assert!(!verify_consistency(from - 1, size, r0, r2, &proof));
                }
                if size < 40 {
                    let r3 = &roots[size as usize + 1];
                    assert!(!verify_consistency(from, size + 1, r1, r3, &proof));
                }
            }
        }
        assert!(!verify_consistency(0, 3, &empty_root(), &roots[3], &[]));
        assert!(!verify_consistency(3, 3, &roots[2], &roots[3], &[]));
        assert!(consistency_proof(&big, 0, 3).unwrap().is_empty());
        assert!(consistency_proof(&big, 4, 3).unwrap().is_empty());
    }

    use super::MapStore as Store;

    #[test]
    fn completed_by_store_matches_leaves_and_frontier() {
        let all = tree(100);
        let mut store = Store::default();
        let mut frontier = Frontier::default();
        for (i, leaf) in all.0.iter().enumerate() {
            let i = i as u64;
            let done = completed_by(&store, i, *leaf).unwrap();
            assert_eq!(done[0], (0, i, *leaf));
            // Index i closes as many levels as it has trailing one bits.
            assert_eq!(done.len() as u32, 1 + i.trailing_ones());
            for (level, index, h) in done {
                assert_eq!(all.subtree(level, index).unwrap(), h);
                store.0.insert((level, index), h);
            }
            frontier.push(*leaf);
            let size = i + 1;
            let r = root(&store, size).unwrap();
            assert_eq!(r, root(&all, size).unwrap());
            assert_eq!(frontier.root(), r);
            assert_eq!(frontier.size(), size);
            for from in [1, size / 2 + 1, size] {
                assert_eq!(
                    consistency_proof(&store, from, size).unwrap(),
                    consistency_proof(&all, from, size).unwrap()
                );
            }
            assert_eq!(
                inclusion_proof(&store, i / 3, size).unwrap(),
                inclusion_proof(&all, i / 3, size).unwrap()
            );
        }
        // Only complete subtrees were stored: 2n - popcount(n) of them.
        assert_eq!(store.0.len(), 2 * 100 - 100u64.count_ones() as usize);
    }

    #[test]
    fn store_errors_propagate() {
        let store = Store::default();
        assert_eq!(root(&store, 3), Err("missing (1, 0)".to_string()));
        assert!(inclusion_proof(&store, 0, 2).is_err());
        assert!(consistency_proof(&store, 1, 2).is_err());
        assert!(completed_by(&store, 1, [0; 32]).is_err());
        assert_eq!(root(&store, 0), Ok(empty_root()));
    }

    #[test]
    fn leaves_out_of_range_does_not_panic() {
        let t = tree(3);
        assert_eq!(t.subtree(5, 0).unwrap(), mth(&t.0));
        assert_eq!(t.subtree(0, 9).unwrap(), empty_root());
        assert_eq!(t.subtree(200, u64::MAX).unwrap(), empty_root());
    }
}
