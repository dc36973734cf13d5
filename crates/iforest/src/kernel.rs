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
//! The kernel is derived from the stored forest when a model is fitted or loaded (after the
//! forest is validated), never read from a file, so its invariants hold by construction: every
//! walk stays inside its group's slots and every feature index is below the feature count.
//! The entry points check, with `assert!` once per row or block of rows, that each row has
//! exactly that many values. These two facts are what every `unsafe` read here relies on;
//! this module holds all of the crate's `unsafe`.

use crate::arena::{Arena, LEAF_SPLIT};

/// Trees walked side by side: one AVX-512 vector of `f64`.
pub(crate) const LANES: usize = 8;
/// Deeper forests (a depth limit set far above the default) keep the compact walk: a complete
/// tree of depth `D` has `2^D` leaves, most of them empty.
const MAX_DEPTH: u32 = 12;
/// Rows scored per block: every group of trees walks a whole block before the next group, so
/// a group's slots stay in the L1 cache.
pub(crate) const BLOCK_ROWS: usize = 32;

/// The complete, interleaved layout of an axis-parallel forest.
#[derive(Clone, PartialEq)]
pub(crate) struct Complete {
    /// `D`: every walk takes exactly this many steps.
    depth: u32,
    /// Number of groups of [`LANES`] trees.
    groups: usize,
    /// Split slot `i` of lane `l` in group `g`: `(g · (2^D − 1) + i) · LANES + l`.
    thresholds: Vec<f64>,
    /// Feature of each split slot, same indexing (`i32` for the SIMD gathers).
    features: Vec<i32>,
    /// Leaf slot `j` of lane `l` in group `g`: `(g · 2^D + j) · LANES + l`; the path value
    /// (depth + c(samples)) of the leaf, 0 for padding.
    leaves: Vec<f64>,
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
        let mut kernel = Complete {
            depth,
            groups,
            thresholds: vec![LEAF_SPLIT; groups * internal * LANES],
            features: vec![0; groups * internal * LANES],
            leaves: vec![0.0; groups * (internal + 1) * LANES],
            n_features: forest.n_features,
        };
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
                        slot = 2 * slot + 1;
                    }
                    kernel.leaves[leaf_slot(slot - internal)] = forest.path_value[node];
                } else {
                    kernel.thresholds[split_slot(slot)] = stored.split;
                    kernel.features[split_slot(slot)] = stored.feature as i32;
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The walk of [`Complete::accumulate_portable`], eight trees per vector. The top three
    //! levels of a group are plain loads and blends (every walk starts at slot 0, then is in
    //! slot 1 or 2, then in 3..=6); deeper splits and features are gathered. A row of up to
    //! 64 features sits in registers and its values are looked up with permutes; a wider row
    //! is gathered from memory. One compare gives the eight directions. Several independent
    //! walks are interleaved, since one walk alone would wait on each gather's latency.
    //!
    //! The functions are compiled for AVX-512F and AVX-512VL (`#[target_feature]`), so only
    //! code that holds an [`Avx512`], the proof that the CPU has them, may call the entry
    //! points. Inside, only the loads and gathers are `unsafe`: each says why its addresses
    //! lie inside the slices it reads.

    use std::arch::x86_64::*;

    use super::{Complete, LANES};

    /// Independent walks interleaved in one loop.
    const CHAINS: usize = 4;

    /// Proof that this CPU runs AVX-512F and AVX-512VL instructions: only
    /// [`detect`](Avx512::detect) makes one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Avx512 {
        _detected: (),
    }

    impl Avx512 {
        /// The proof, when the CPU has the features.
        pub(super) fn detect() -> Option<Self> {
            let has = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
            has.then_some(Avx512 { _detected: () })
        }

        /// Adds every tree's leaf value to the lane sums of each whole row of `rows`.
        pub(super) fn accumulate(self, kernel: &Complete, rows: &[f64], sums: &mut [[f64; LANES]]) {
            // SAFETY: `self` proves the CPU has the features `accumulate` is compiled for.
            unsafe { accumulate(kernel, rows, sums) }
        }

        /// Adds every tree's leaf value to the lane sums of one row of the kernel's width.
        pub(super) fn accumulate_row(self, kernel: &Complete, row: &[f64], sum: &mut [f64; LANES]) {
            assert_eq!(row.len(), kernel.n_features, "a row of the kernel's width");
            // SAFETY: as in `accumulate`.
            unsafe { accumulate_row(kernel, row, sum) }
        }
    }

    /// Walks the `K` walks of `$walks` (a `&[Walk<R>; K]`) side by side through their groups
    /// and evaluates to each walk's eight leaf values, `[__m512d; K]`.
    ///
    /// A macro rather than a function so that the walk is compiled into its caller, a
    /// `#[target_feature]` function, with the row's registers kept in registers: a function
    /// would need `#[inline(always)]` for that, which `#[target_feature]` functions cannot
    /// have, and the compiler kept it out of line.
    macro_rules! walk_chains {
        ($kernel:expr, $walks:expr) => {{
            let kernel: &Complete = $kernel;
            let walks = $walks;
            let internal = kernel.internal();
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let one = _mm256_set1_epi32(1);
            let start = _mm256_setzero_si256();
            let mut at = walks.each_ref().map(|_| start);
            let mut taken = 0;
            if kernel.depth >= 3 {
                let mut root = walks.each_ref().map(|_| 0);
                for (k, walk) in walks.iter().enumerate() {
                    let (threshold, feature) = split(walk.group, 0);
                    root[k] = walk.goes_right(threshold, feature);
                }
                let mut second = walks.each_ref().map(|_| 0);
                for (k, walk) in walks.iter().enumerate() {
                    let group = walk.group;
                    let (threshold, feature) = pick(root[k], split(group, 1), split(group, 2));
                    second[k] = walk.goes_right(threshold, feature);
                }
                for (k, walk) in walks.iter().enumerate() {
                    let group = walk.group;
                    let left = pick(second[k], split(group, 3), split(group, 4));
                    let right = pick(second[k], split(group, 5), split(group, 6));
                    let (threshold, feature) = pick(root[k], left, right);
                    let third = walk.goes_right(threshold, feature);
                    // Slot 7 + 4·root + 2·second + third.
                    let slot = _mm256_set1_epi32(7);
                    let slot = _mm256_mask_add_epi32(slot, root[k], slot, _mm256_set1_epi32(4));
                    let slot = _mm256_mask_add_epi32(slot, second[k], slot, _mm256_set1_epi32(2));
                    at[k] = _mm256_mask_add_epi32(slot, third, slot, one);
                }
                taken = 3;
            }
            for _ in taken..kernel.depth {
                for (at, walk) in at.iter_mut().zip(walks) {
                    let slot = _mm256_add_epi32(_mm256_slli_epi32::<3>(*at), lane);
                    // SAFETY: before step k (k < D) every lane's `at` is in
                    // 2^k − 1 ..= 2^(k+1) − 2, below `internal`, so `8·at + lane` is inside the
                    // group's split slots, which both slices hold (`Group::new`).
                    let (threshold, feature) = unsafe {
                        (
                            _mm512_i32gather_pd::<8>(slot, walk.group.thresholds.as_ptr()),
                            _mm256_i32gather_epi32::<4>(walk.group.features.as_ptr(), slot),
                        )
                    };
                    let right = walk.goes_right(threshold, feature);
                    let next = _mm256_add_epi32(_mm256_add_epi32(*at, *at), one);
                    *at = _mm256_mask_add_epi32(next, right, next, one);
                }
            }
            let first_leaf = _mm256_set1_epi32(internal as i32);
            let zero = _mm512_setzero_pd();
            let mut leaves = walks.each_ref().map(|_| zero);
            for ((leaves, at), walk) in leaves.iter_mut().zip(at).zip(walks) {
                let leaf = _mm256_sub_epi32(at, first_leaf);
                let slot = _mm256_add_epi32(_mm256_slli_epi32::<3>(leaf), lane);
                // SAFETY: after D steps `at` is in 2^D − 1 ..= 2^(D+1) − 2, so `at − internal`
                // is a leaf slot below 2^D and `8·leaf + lane` is inside the group's leaf
                // slots.
                *leaves = unsafe { _mm512_i32gather_pd::<8>(slot, walk.group.leaves.as_ptr()) };
            }
            leaves
        }};
    }

    #[target_feature(enable = "avx512f,avx512vl")]
    fn accumulate(kernel: &Complete, rows: &[f64], sums: &mut [[f64; LANES]]) {
        // Group after group (a group's slots stay in L1), several rows side by side. Rows
        // of up to 32 features are looked up in registers; wider ones are gathered (eight
        // registers a row, for several rows, measured slower than the gathers).
        match kernel.n_features {
            0..=8 => by_groups::<1>(kernel, rows, sums),
            9..=16 => by_groups::<2>(kernel, rows, sums),
            17..=32 => by_groups::<4>(kernel, rows, sums),
            _ => by_groups::<0>(kernel, rows, sums),
        }
    }

    /// `row` has the kernel's width.
    #[target_feature(enable = "avx512f,avx512vl")]
    fn accumulate_row(kernel: &Complete, row: &[f64], sum: &mut [f64; LANES]) {
        match kernel.n_features {
            0..=8 => one_row::<1>(kernel, row, sum),
            9..=16 => one_row::<2>(kernel, row, sum),
            17..=32 => one_row::<4>(kernel, row, sum),
            33..=64 => one_row::<8>(kernel, row, sum),
            _ => one_row::<0>(kernel, row, sum),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn by_groups<const R: usize>(kernel: &Complete, rows: &[f64], sums: &mut [[f64; LANES]]) {
        let width = kernel.n_features;
        for group in 0..kernel.groups {
            let group = Group::new(kernel, group);
            let mut row_chunks = rows.chunks_exact(width * CHAINS);
            let mut sum_chunks = sums.chunks_exact_mut(CHAINS);
            for (block, sums) in (&mut row_chunks).zip(&mut sum_chunks) {
                let walks: [Walk<R>; CHAINS] = std::array::from_fn(|k| {
                    Walk::new(kernel, group, &block[k * width..(k + 1) * width])
                });
                let leaves = walk_chains!(kernel, &walks);
                for (sum, leaf) in sums.iter_mut().zip(leaves) {
                    add(sum, leaf);
                }
            }
            let rest = row_chunks.remainder().chunks_exact(width);
            for (row, sum) in rest.zip(sum_chunks.into_remainder()) {
                let [leaf] = walk_chains!(kernel, &[Walk::<R>::new(kernel, group, row)]);
                add(sum, leaf);
            }
        }
    }

    /// One row (of the kernel's width) through every group, several groups side by side; the
    /// lane sums are added group after group, as in [`by_groups`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn one_row<const R: usize>(kernel: &Complete, row: &[f64], sum: &mut [f64; LANES]) {
        let first = Walk::<R>::new(kernel, Group::new(kernel, 0), row);
        let mut next = 0;
        while next + CHAINS <= kernel.groups {
            let walks: [Walk<R>; CHAINS] = std::array::from_fn(|k| Walk {
                group: Group::new(kernel, next + k),
                ..first
            });
            for leaf in walk_chains!(kernel, &walks) {
                add(sum, leaf);
            }
            next += CHAINS;
        }
        for group in next..kernel.groups {
            let walk = Walk {
                group: Group::new(kernel, group),
                ..first
            };
            let [leaf] = walk_chains!(kernel, &[walk]);
            add(sum, leaf);
        }
    }

    /// One group's slots: its split slots (thresholds and features) and leaf slots.
    #[derive(Clone, Copy)]
    struct Group<'a> {
        thresholds: &'a [f64],
        features: &'a [i32],
        leaves: &'a [f64],
    }

    impl<'a> Group<'a> {
        #[inline]
        fn new(kernel: &'a Complete, group: usize) -> Self {
            let internal = kernel.internal();
            let splits = group * internal * LANES..(group + 1) * internal * LANES;
            let leaves = group * (internal + 1) * LANES..(group + 1) * (internal + 1) * LANES;
            Group {
                thresholds: &kernel.thresholds[splits.clone()],
                features: &kernel.features[splits],
                leaves: &kernel.leaves[leaves],
            }
        }
    }

    /// A row walking a group: the row in `R` registers of eight values (zeros past its
    /// width; no split asks for them), or with `R = 0` only in memory. `row` has the
    /// kernel's width (checked by `new`), so every split's feature indexes into it.
    #[derive(Clone, Copy)]
    struct Walk<'a, const R: usize> {
        group: Group<'a>,
        row: &'a [f64],
        registers: [__m512d; R],
    }

    impl<'a, const R: usize> Walk<'a, R> {
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl")]
        fn new(kernel: &Complete, group: Group<'a>, row: &'a [f64]) -> Self {
            assert_eq!(row.len(), kernel.n_features, "a row of the kernel's width");
            let mut registers = [_mm512_setzero_pd(); R];
            // Register i holds values 8i .. 8i + 8; past the row's end it stays zero, and no
            // pointer is formed there.
            for (register, values) in registers.iter_mut().zip(row.chunks(8)) {
                let mask = ((1u16 << values.len()) - 1) as u8;
                // SAFETY: the mask selects the first `values.len()` lanes, all inside
                // `values`; masked-off lanes are neither read nor faulted on.
                *register = unsafe { _mm512_maskz_loadu_pd(mask, values.as_ptr()) };
            }
            Walk {
                group,
                row,
                registers,
            }
        }

        /// Per lane, whether the row goes right: its value of `feature` is `>= threshold`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl")]
        fn goes_right(&self, threshold: __m512d, feature: __m256i) -> __mmask8 {
            let r = &self.registers;
            let index = _mm512_cvtepi32_epi64(feature);
            // `permutex2var` picks by the index's low four bits; bits 4 and 5 pick the pair.
            macro_rules! pair {
                ($low:expr, $high:expr) => {
                    _mm512_permutex2var_pd($low, index, $high)
                };
            }
            macro_rules! bit {
                ($b:expr) => {
                    _mm512_test_epi64_mask(index, _mm512_set1_epi64($b))
                };
            }
            let value = match R {
                // SAFETY: `feature` holds split features, each below the kernel's width
                // (module doc), which is the length of `row` (`new`): every lane reads
                // inside it.
                0 => unsafe { _mm512_i32gather_pd::<8>(feature, self.row.as_ptr()) },
                1 => _mm512_permutexvar_pd(index, r[0]),
                2 => pair!(r[0], r[1]),
                4 => _mm512_mask_blend_pd(bit!(16), pair!(r[0], r[1]), pair!(r[2], r[3])),
                _ => {
                    let low = _mm512_mask_blend_pd(bit!(16), pair!(r[0], r[1]), pair!(r[2], r[3]));
                    let high = _mm512_mask_blend_pd(bit!(16), pair!(r[4], r[5]), pair!(r[6], r[7]));
                    _mm512_mask_blend_pd(bit!(32), low, high)
                }
            };
            _mm512_cmp_pd_mask::<_CMP_GE_OQ>(value, threshold)
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn add(sum: &mut [f64; LANES], leaf: __m512d) {
        // SAFETY: `sum` holds exactly the eight values loaded and stored.
        unsafe {
            let total = _mm512_add_pd(_mm512_loadu_pd(sum.as_ptr()), leaf);
            _mm512_storeu_pd(sum.as_mut_ptr(), total);
        }
    }

    /// Split slot `slot` (below 7: the top three levels) of a group's eight trees:
    /// thresholds and features.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn split(group: Group, slot: usize) -> (__m512d, __m256i) {
        let thresholds = &group.thresholds[slot * LANES..][..LANES];
        let features = &group.features[slot * LANES..][..LANES];
        // SAFETY: each slice holds exactly the eight values loaded (sliced just above).
        unsafe {
            (
                _mm512_loadu_pd(thresholds.as_ptr()),
                _mm256_loadu_si256(features.as_ptr().cast()),
            )
        }
    }

    /// Per lane, the second split where `right` is set, else the first.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn pick(
        right: __mmask8,
        (t0, f0): (__m512d, __m256i),
        (t1, f1): (__m512d, __m256i),
    ) -> (__m512d, __m256i) {
        (
            _mm512_mask_blend_pd(right, t0, t1),
            _mm256_mask_blend_epi32(right, f0, f1),
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    use super::*;
    use crate::IsolationForestParams;

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
    fn report_backends(test: &str, checked: &[Backend]) {
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
        for features in [1, 2, 3, 8, 9, 16, 17, 32, 33, 36, 64, 65] {
            for (n_trees, max_depth) in [(1, None), (13, Some(2)), (9, Some(3)), (20, Some(12))] {
                let forest = IsolationForestParams::new()
                    .n_trees(n_trees)
                    .max_depth(max_depth)
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
                    let case = format!("{backend:?}, {features} features, {n_trees} trees");
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
