//! The scoring kernel of the axis-parallel forest: the trees re-laid as complete binary trees,
//! eight trees interleaved, walked eight at a time.
//!
//! The stored forest ([`crate::arena`]) is compact: only the nodes that exist, children
//! adjacent. For scoring, each tree is expanded into a complete tree of the forest's depth `D`
//! (`2^D − 1` split slots, `2^D` leaf slots), so a step is `i = 2i + 1 + (x[f] >= t)` with no
//! child index to load and no leaf test: a leaf above depth `D` becomes splits at +∞ (always
//! left) down to a leaf slot holding its path value. Trees are taken in groups of [`LANES`];
//! slot `i` of the eight trees of a group is stored side by side, so the eight walks of a
//! group share cache lines near the root and a SIMD gather fetches all eight splits at once.
//! The forest is padded to whole groups with empty trees (every split +∞, leaf value 0).
//!
//! Sums are canonical: lane `l` adds the leaf values of trees `l`, `l + 8`, `l + 16`, … in
//! order, and the eight lane sums are added by [`reduce`]. The portable and the AVX-512 walks
//! reach the same leaves (the same `>=` on the same `f64`s) and add in the same order, so
//! scores are bit-identical on every machine, single row or batch.
//!
//! The same layout serves explanations ([`attribution`]): each slot also keeps `log2` of its
//! training samples, and the walk adds each step's bits per feature.
//!
//! The kernel is derived from the stored forest when a model is fitted or loaded (after the
//! forest is validated), never read from a file, so its invariants hold by construction: every
//! walk stays inside its group's slots and every feature index is below the feature count.
//! The entry points check, with `assert!` once per row or block of rows, that each row has
//! exactly that many values. These two facts are what every `unsafe` read here relies on;
//! this module holds all of the crate's `unsafe`.

use crate::arena::{ended_path_length, Arena, LEAF_SPLIT};

/// Trees walked side by side: one AVX-512 vector of `f64`.
pub(crate) const LANES: usize = 8;
/// Deeper forests (a depth limit set far above the default) keep the compact walk: a complete
/// tree of depth `D` has `2^D` leaves, most of them empty.
const MAX_DEPTH: u32 = 12;
/// Rows scored per block: every group of trees walks a whole block before the next group, so
/// a group's slots stay in the L1 cache.
pub(crate) const BLOCK_ROWS: usize = 32;

/// A range-aware split slot: `feature` and `reach` in one word.
fn pack(feature: u32, reach: f32) -> u64 {
    u64::from(feature) | (u64::from(reach.to_bits()) << 32)
}

/// The feature and reach of a range-aware split slot.
fn unpack(word: u64) -> (usize, f64) {
    (
        (word as u32) as usize,
        f64::from(f32::from_bits((word >> 32) as u32)),
    )
}

/// The complete, interleaved layout of an axis-parallel forest.
#[derive(Clone, PartialEq)]
pub(crate) struct Complete {
    /// `D`: every walk takes exactly this many steps.
    depth: u32,
    /// Number of groups of [`LANES`] trees.
    groups: usize,
    /// Split slot `i` of lane `l` in group `g`: `(g · (2^D − 1) + i) · LANES + l`.
    thresholds: Vec<f64>,
    /// Feature of each split slot, same indexing (`i32` for the SIMD gathers); empty in a
    /// range-aware forest, whose `checked` holds the features.
    features: Vec<i32>,
    /// Range-aware forests only, same indexing: the split slot's feature in the low 32 bits
    /// and the bits of its reach (`SplitRange::reach`, an `f32`) in the high 32 bits, so one
    /// 64-bit gather fetches both; padding slots have reach +∞ (never out of range).
    checked: Vec<u64>,
    /// Leaf slot `j` of lane `l` in group `g`: `(g · 2^D + j) · LANES + l`; the path value
    /// (depth + c(samples)) of the leaf, 0 for padding.
    leaves: Vec<f64>,
    /// For explanations, split slots' indexing: `log2(n + 1)` of the `n` training samples
    /// that reached the slot (a padding slot below a leaf: the leaf's, so a step through it
    /// isolates nothing; an empty tree's: 0). A step's isolation is the difference between
    /// its slot's and its child's; see [`attribution`].
    information: Vec<f64>,
    /// The same for leaf slots, leaves' indexing.
    leaf_information: Vec<f64>,
    /// Features per row; every entry of `features` is below it.
    n_features: usize,
}

impl std::fmt::Debug for Complete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Complete")
            .field("depth", &self.depth)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl Complete {
    /// Lays out a validated axis-parallel forest; `None` if its trees are too deep.
    pub(crate) fn build(forest: &Arena) -> Option<Self> {
        if forest.is_extended() || forest.n_features > i32::MAX as usize {
            return None;
        }
        let depth = forest.trees.iter().map(|tree| tree.depth).max()?;
        if depth > MAX_DEPTH {
            return None;
        }
        let internal = (1usize << depth) - 1;
        let groups = forest.trees.len().div_ceil(LANES);
        let slots = groups * internal * LANES;
        let ranged = forest.is_range_aware();
        let mut kernel = Complete {
            depth,
            groups,
            thresholds: vec![LEAF_SPLIT; slots],
            features: if ranged { Vec::new() } else { vec![0; slots] },
            checked: if ranged {
                vec![pack(0, f32::INFINITY); slots]
            } else {
                Vec::new()
            },
            leaves: vec![0.0; groups * (internal + 1) * LANES],
            information: vec![0.0; slots],
            leaf_information: vec![0.0; groups * (internal + 1) * LANES],
            n_features: forest.n_features,
        };
        let information = |node: usize| attribution::information(forest.node_size[node]);
        for (index, tree) in forest.trees.iter().enumerate() {
            let (group, lane) = (index / LANES, index % LANES);
            let split_slot = |i: usize| (group * internal + i) * LANES + lane;
            let leaf_slot = |j: usize| (group * (internal + 1) + j) * LANES + lane;
            // (stored node, complete-tree slot, depth)
            let mut stack = vec![(tree.root as usize, 0usize, 0u32)];
            while let Some((node, mut slot, at_depth)) = stack.pop() {
                let stored = forest.nodes[node];
                if stored.is_leaf() {
                    // Splits at +∞ (already there) send the walk left down to depth D.
                    for _ in at_depth..depth {
                        kernel.information[split_slot(slot)] = information(node);
                        slot = 2 * slot + 1;
                    }
                    kernel.leaves[leaf_slot(slot - internal)] = forest.path_value[node];
                    kernel.leaf_information[leaf_slot(slot - internal)] = information(node);
                } else {
                    kernel.thresholds[split_slot(slot)] = stored.split;
                    kernel.information[split_slot(slot)] = information(node);
                    if ranged {
                        let reach = forest.ranges[node].reach(stored.split);
                        kernel.checked[split_slot(slot)] = pack(stored.feature, reach);
                    } else {
                        kernel.features[split_slot(slot)] = stored.feature as i32;
                    }
                    let left = stored.left as usize;
                    stack.push((left, 2 * slot + 1, at_depth + 1));
                    stack.push((left + 1, 2 * slot + 2, at_depth + 1));
                }
            }
        }
        Some(kernel)
    }

    /// Complete-tree slots per group: `2^D − 1` splits (and `2^D` leaves).
    fn internal(&self) -> usize {
        (1usize << self.depth) - 1
    }

    /// Whether the walks check split ranges.
    fn is_range_aware(&self) -> bool {
        !self.checked.is_empty()
    }

    /// Adds every tree's leaf value to the lane sums of one row of `n_features` values.
    ///
    /// # Panics
    /// When the row's length is not the feature count (callers check rows first).
    pub(crate) fn accumulate_row(&self, row: &[f64], sum: &mut [f64; LANES]) {
        self.accumulate_row_with(Backend::chosen(), row, sum);
    }

    /// [`accumulate_row`](Self::accumulate_row) with a given backend.
    pub(crate) fn accumulate_row_with(
        &self,
        backend: Backend,
        row: &[f64],
        sum: &mut [f64; LANES],
    ) {
        assert_eq!(row.len(), self.n_features, "a row of the kernel's width");
        match backend {
            Backend::Portable => self.accumulate_portable(row, std::slice::from_mut(sum)),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(cpu) => cpu.accumulate_row(self, row, sum),
        }
    }

    /// Adds every tree's leaf value to the lane sums of each row of `rows` (flat, row-major,
    /// one `sums` entry per row).
    ///
    /// # Panics
    /// When `rows` is not `sums.len()` whole rows (checked once per block of rows).
    pub(crate) fn accumulate(&self, rows: &[f64], sums: &mut [[f64; LANES]]) {
        self.accumulate_with(Backend::chosen(), rows, sums);
    }

    /// [`accumulate`](Self::accumulate) with a given backend.
    pub(crate) fn accumulate_with(
        &self,
        backend: Backend,
        rows: &[f64],
        sums: &mut [[f64; LANES]],
    ) {
        assert_eq!(
            rows.len(),
            sums.len() * self.n_features,
            "one sum per whole row"
        );
        match backend {
            Backend::Portable => self.accumulate_portable(rows, sums),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(cpu) => cpu.accumulate(self, rows, sums),
        }
    }

    /// The reference walk of the layout, one tree per lane, any CPU.
    fn accumulate_portable(&self, rows: &[f64], sums: &mut [[f64; LANES]]) {
        if self.is_range_aware() {
            return self.accumulate_portable_ranged(rows, sums);
        }
        let width = self.n_features;
        let internal = self.internal();
        for group in 0..self.groups {
            let splits = group * internal * LANES..(group + 1) * internal * LANES;
            let thresholds = &self.thresholds[splits.clone()];
            let features = &self.features[splits];
            let leaves = &self.leaves[group * (internal + 1) * LANES..][..(internal + 1) * LANES];
            for (row, sum) in rows.chunks_exact(width).zip(sums.iter_mut()) {
                let mut at = [0usize; LANES];
                for _ in 0..self.depth {
                    for (lane, at) in at.iter_mut().enumerate() {
                        let slot = *at * LANES + lane;
                        // SAFETY: before step k (k < D) a walk is in slot 2^k − 1 ..= 2^(k+1) − 2,
                        // below `internal`, so `slot` is inside this group's split slots; split
                        // features are below `width` (module doc), the length of `row`
                        // (`chunks_exact`): every index is in bounds.
                        let (value, threshold) = unsafe {
                            let feature = *features.get_unchecked(slot) as usize;
                            (*row.get_unchecked(feature), *thresholds.get_unchecked(slot))
                        };
                        *at = 2 * *at + 1 + usize::from(value >= threshold);
                    }
                }
                for (lane, (sum, at)) in sum.iter_mut().zip(at).enumerate() {
                    *sum += leaves[(at - internal) * LANES + lane];
                }
            }
        }
    }

    /// [`accumulate_portable`](Self::accumulate_portable) with the range check. A lane whose
    /// row is out of a split's range keeps walking to a leaf (as the vector walk must) and
    /// keeps the smallest ended path length it met, which is its first; it adds the smaller
    /// of that and its leaf's value. A leaf lies below every split on its path, so its path
    /// value is at least any length ended on the way: the smaller one is the ended length
    /// when there is one, the leaf's value otherwise.
    fn accumulate_portable_ranged(&self, rows: &[f64], sums: &mut [[f64; LANES]]) {
        let width = self.n_features;
        let internal = self.internal();
        for group in 0..self.groups {
            let splits = group * internal * LANES..(group + 1) * internal * LANES;
            let thresholds = &self.thresholds[splits.clone()];
            let checked = &self.checked[splits];
            let leaves = &self.leaves[group * (internal + 1) * LANES..][..(internal + 1) * LANES];
            for (row, sum) in rows.chunks_exact(width).zip(sums.iter_mut()) {
                let mut at = [0usize; LANES];
                let mut ended = [f64::INFINITY; LANES];
                for depth in 0..self.depth {
                    let length = ended_path_length(depth);
                    for (lane, (at, ended)) in at.iter_mut().zip(&mut ended).enumerate() {
                        let slot = *at * LANES + lane;
                        // SAFETY: as in `accumulate_portable`: `slot` is inside this group's
                        // split slots, and every feature is below `width`, `row`'s length.
                        let (value, threshold, reach) = unsafe {
                            let (feature, reach) = unpack(*checked.get_unchecked(slot));
                            (
                                *row.get_unchecked(feature),
                                *thresholds.get_unchecked(slot),
                                reach,
                            )
                        };
                        // Branch-free: the first length met is the smallest.
                        let out = (value - threshold).abs() > reach;
                        *ended = if out && length < *ended {
                            length
                        } else {
                            *ended
                        };
                        *at = 2 * *at + 1 + usize::from(value >= threshold);
                    }
                }
                for (lane, ((sum, at), ended)) in sum.iter_mut().zip(at).zip(ended).enumerate() {
                    *sum += leaves[(at - internal) * LANES + lane].min(ended);
                }
            }
        }
    }
}

/// A way to walk the layout. Every backend reaches the same leaves and adds in the same order,
/// so the scores' bits do not depend on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Scalar code, one tree per lane; any CPU.
    Portable,
    /// Eight trees per AVX-512 vector; holds the proof that this CPU has AVX-512.
    #[cfg(target_arch = "x86_64")]
    Avx512(avx512::Avx512),
}

impl Backend {
    /// Every backend this CPU runs, portable first.
    pub(crate) fn supported() -> Vec<Backend> {
        #[allow(unused_mut)] // no other backend outside x86-64
        let mut backends = vec![Backend::Portable];
        #[cfg(target_arch = "x86_64")]
        backends.extend(avx512::Avx512::detect().map(Backend::Avx512));
        backends
    }

    /// The backend scoring uses: the fastest this CPU runs, or the portable one when the
    /// environment variable `IFOREST_PORTABLE` is set (to measure it; scores are the same).
    /// Decided once per process.
    pub(crate) fn chosen() -> Backend {
        static CHOSEN: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            if std::env::var_os("IFOREST_PORTABLE").is_some() {
                Backend::Portable
            } else {
                *Backend::supported().last().unwrap_or(&Backend::Portable)
            }
        })
    }

    /// A short name, for reports.
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(_) => "avx512",
        }
    }
}

/// The canonical sum of the eight lane sums.
#[inline]
pub(crate) fn reduce(sums: &[f64; LANES]) -> f64 {
    ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
}

mod attribution;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    use super::*;
    use crate::{IsolationForestParams, RangeCheck};

    fn gaussian(rows: usize, features: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * features)
            .map(|_| rng.sample(StandardNormal))
            .collect()
    }

    /// The canonical lane sums, from the stored trees' own walk.
    fn lane_sums(forest: &Arena, row: &[f64]) -> [f64; LANES] {
        let mut sums = [0.0; LANES];
        for (index, tree) in forest.trees.iter().enumerate() {
            let mut total = [0.0];
            forest.walk::<1>(tree, row, &mut total);
            sums[index % LANES] += total[0];
        }
        sums
    }

    /// Says which backends a test checked, on the test's output even when the harness
    /// captures it (a write to the process's stderr, not `eprintln!`), so a run on a CPU
    /// without AVX-512 says so.
    pub(super) fn report_backends(test: &str, checked: &[Backend]) {
        use std::io::Write;
        let names: Vec<_> = checked.iter().map(|backend| backend.name()).collect();
        let missing = if cfg!(target_arch = "x86_64") && checked.len() < 2 {
            "; avx512 not checked: this CPU lacks AVX-512F/VL"
        } else if !cfg!(target_arch = "x86_64") {
            "; avx512 not checked: not an x86-64 build"
        } else {
            ""
        };
        let line = format!(
            "{test}: kernel backends checked: {}{missing}\n",
            names.join(", ")
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    #[test]
    fn every_backend_reaches_the_stored_trees_leaves_and_adds_in_the_same_order() {
        let backends = Backend::supported();
        let shapes = [(1, None), (13, Some(2)), (9, Some(3)), (20, Some(12))];
        for features in [1, 2, 3, 8, 9, 16, 17, 32, 33, 36, 64, 65] {
            for ((n_trees, max_depth), check) in shapes
                .into_iter()
                .flat_map(|shape| [(shape, RangeCheck::Off), (shape, RangeCheck::On)])
            {
                let forest = IsolationForestParams::new()
                    .n_trees(n_trees)
                    .max_depth(max_depth)
                    .range_check(check)
                    .fit(&gaussian(300, features, 1), features)
                    .unwrap();
                let kernel = forest.kernel.as_ref().expect("a complete layout");
                let mut rows = gaussian(40, features, 2);
                rows.extend_from_slice(&forest_rows(features));
                let expected: Vec<_> = rows
                    .chunks_exact(features)
                    .map(|row| lane_sums(&forest.arena, row))
                    .collect();
                for &backend in &backends {
                    let case = format!(
                        "{backend:?}, {features} features, {n_trees} trees, range check {check}"
                    );
                    let mut batch = vec![[0.0; LANES]; expected.len()];
                    kernel.accumulate_with(backend, &rows, &mut batch);
                    assert_eq!(batch, expected, "{case}");
                    for (row, expected) in rows.chunks_exact(features).zip(&expected) {
                        let mut single = [0.0; LANES];
                        kernel.accumulate_row_with(backend, row, &mut single);
                        assert_eq!(&single, expected, "{case}");
                    }
                }
            }
        }
        report_backends("stored-tree walk", &backends);
    }

    /// Rows on and far outside the training range, and exactly on split values.
    fn forest_rows(features: usize) -> Vec<f64> {
        let mut rows = vec![0.0; features];
        rows.extend(std::iter::repeat_n(1e300, features));
        rows.extend(std::iter::repeat_n(-1e300, features));
        rows
    }

    #[test]
    fn rows_exactly_on_a_threshold_go_right_in_every_walk() {
        let forest = IsolationForestParams::new()
            .n_trees(16)
            .range_check(RangeCheck::Off)
            .fit(&gaussian(200, 3, 3), 3)
            .unwrap();
        let kernel = forest.kernel.as_ref().unwrap();
        // Rows whose values are the roots' thresholds.
        let mut rows = Vec::new();
        for tree in &forest.arena.trees {
            let root = forest.arena.nodes[tree.root as usize];
            let mut row = vec![0.5; 3];
            row[root.feature as usize] = root.split;
            rows.extend(row);
        }
        let backends = Backend::supported();
        for &backend in &backends {
            let mut batch = vec![[0.0; LANES]; forest.arena.trees.len()];
            kernel.accumulate_with(backend, &rows, &mut batch);
            for (row, sums) in rows.chunks_exact(3).zip(&batch) {
                assert_eq!(*sums, lane_sums(&forest.arena, row), "{backend:?}");
            }
        }
        report_backends("rows on thresholds", &backends);
    }

    #[test]
    fn a_value_at_the_reach_walks_on_and_one_beyond_ends_the_path_in_every_walk() {
        let forest = IsolationForestParams::new()
            .n_trees(16)
            .range_check(RangeCheck::On)
            .fit(&gaussian(200, 3, 5), 3)
            .unwrap();
        let arena = &forest.arena;
        let kernel = forest.kernel.as_ref().unwrap();
        let mut rows = Vec::new();
        for tree in &arena.trees {
            let root = tree.root as usize;
            let node = arena.nodes[root];
            let reach = f64::from(arena.ranges[root].reach(node.split));
            for value in [
                node.split + reach,
                node.split - reach,
                (node.split + reach).next_up(),
                (node.split - reach).next_down(),
            ] {
                let mut row = vec![0.0; 3];
                row[node.feature as usize] = value;
                // The stored trees' path ends at the root exactly when |x − t| > reach.
                let ends = (value - node.split).abs() > reach;
                assert_eq!(
                    arena.path(tree, &row).count() == 1,
                    ends,
                    "{value} vs {reach}"
                );
                rows.extend(row);
            }
        }
        let backends = Backend::supported();
        let expected: Vec<_> = rows
            .chunks_exact(3)
            .map(|row| lane_sums(arena, row))
            .collect();
        for &backend in &backends {
            let mut batch = vec![[0.0; LANES]; expected.len()];
            kernel.accumulate_with(backend, &rows, &mut batch);
            assert_eq!(batch, expected, "{backend:?}");
        }
        report_backends("rows at the reach", &backends);
    }

    #[test]
    fn rows_of_the_wrong_length_are_refused_by_every_backend() {
        let forest = IsolationForestParams::new()
            .n_trees(8)
            .fit(&gaussian(100, 3, 4), 3)
            .unwrap();
        let kernel = forest.kernel.as_ref().unwrap();
        for backend in Backend::supported() {
            let short_row = std::panic::catch_unwind(|| {
                kernel.accumulate_row_with(backend, &[0.0; 2], &mut [0.0; LANES]);
            });
            assert!(short_row.is_err(), "{backend:?}");
            let short_batch = std::panic::catch_unwind(|| {
                kernel.accumulate_with(backend, &[0.0; 5], &mut [[0.0; LANES]; 2]);
            });
            assert!(short_batch.is_err(), "{backend:?}");
        }
    }
}
