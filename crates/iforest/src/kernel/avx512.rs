//! The walk of [`Complete::accumulate_portable`], eight trees per vector. The top three
//! levels of a group are plain loads and blends (every walk starts at slot 0, then is in
//! slot 1 or 2, then in 3..=6); deeper splits and features are gathered. A row of up to
//! 64 features sits in registers and its values are looked up with permutes; a wider row
//! is gathered from memory. One compare gives the eight directions. Several independent
//! walks are interleaved, since one walk alone would wait on each gather's latency.
//!
//! A range-aware forest's walk (`walk_chains_checked!`) gathers, instead of the features,
//! 64-bit words holding feature and reach (so no more gathers than the plain walk), and per
//! step also compares `|x − threshold|` with the reach; a lane out of range keeps walking,
//! and adds the smaller of the ended path length and its leaf's value (the ended length,
//! see `Complete::accumulate_portable_ranged`). Keeping that length with one masked `min` per
//! step, rather than a mask of ended lanes, is what keeps the check cheap.
//!
//! The functions are compiled for AVX-512F and AVX-512VL (`#[target_feature]`), so only
//! code that holds an [`Avx512`], the proof that the CPU has them, may call the entry
//! points. Inside, only the loads and gathers are `unsafe`: each says why its addresses
//! lie inside the slices it reads.

use std::arch::x86_64::*;

use super::{ended_path_length, Complete, LANES};

mod attribution;

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
/// and evaluates to each walk's eight path values, `[__m512d; K]`: the range-aware walk when
/// `$checked` (a constant) is true, else the plain one.
macro_rules! walk_chains {
    ($checked:expr, $kernel:expr, $walks:expr) => {
        if $checked {
            walk_chains_checked!($kernel, $walks)
        } else {
            walk_chains_plain!($kernel, $walks)
        }
    };
}

/// The plain walk: each walk's eight leaf values.
///
/// A macro rather than a function so that the walk is compiled into its caller, a
/// `#[target_feature]` function, with the row's registers kept in registers: a function
/// would need `#[inline(always)]` for that, which `#[target_feature]` functions cannot
/// have, and the compiler kept it out of line.
macro_rules! walk_chains_plain {
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

/// The range-aware walk: as [`walk_chains_plain`], but a lane that is out of a split's range
/// (`Walk::goes_right_checked`) takes that split's ended path length instead of its leaf
/// value. Lanes keep walking after that (the vector moves together); the smallest ended
/// length is the first split's, as in the stored trees' walk, which stops there.
macro_rules! walk_chains_checked {
    ($kernel:expr, $walks:expr) => {{
        let kernel: &Complete = $kernel;
        let walks = $walks;
        let internal = kernel.internal();
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let one = _mm256_set1_epi32(1);
        let start = _mm256_setzero_si256();
        let mut at = walks.each_ref().map(|_| start);
        // Per walk and lane, the length of the path the check ended, +∞ while none has.
        let unended = _mm512_set1_pd(f64::INFINITY);
        let mut length = walks.each_ref().map(|_| unended);
        let mut taken = 0;
        if kernel.depth >= 3 {
            let mut root = walks.each_ref().map(|_| 0);
            for (k, walk) in walks.iter().enumerate() {
                let (threshold, checked) = split_checked(walk.group, 0);
                let (right, out) = walk.goes_right_checked(threshold, checked);
                root[k] = right;
                end(&mut length[k], out, 0);
            }
            let mut second = walks.each_ref().map(|_| 0);
            for (k, walk) in walks.iter().enumerate() {
                let group = walk.group;
                let (threshold, checked) =
                    pick_checked(root[k], split_checked(group, 1), split_checked(group, 2));
                let (right, out) = walk.goes_right_checked(threshold, checked);
                second[k] = right;
                end(&mut length[k], out, 1);
            }
            for (k, walk) in walks.iter().enumerate() {
                let group = walk.group;
                let left =
                    pick_checked(second[k], split_checked(group, 3), split_checked(group, 4));
                let right =
                    pick_checked(second[k], split_checked(group, 5), split_checked(group, 6));
                let (threshold, checked) = pick_checked(root[k], left, right);
                let (third, out) = walk.goes_right_checked(threshold, checked);
                end(&mut length[k], out, 2);
                // Slot 7 + 4·root + 2·second + third.
                let slot = _mm256_set1_epi32(7);
                let slot = _mm256_mask_add_epi32(slot, root[k], slot, _mm256_set1_epi32(4));
                let slot = _mm256_mask_add_epi32(slot, second[k], slot, _mm256_set1_epi32(2));
                at[k] = _mm256_mask_add_epi32(slot, third, slot, one);
            }
            taken = 3;
        }
        for depth in taken..kernel.depth {
            for (k, (at, walk)) in at.iter_mut().zip(walks).enumerate() {
                let slot = _mm256_add_epi32(_mm256_slli_epi32::<3>(*at), lane);
                // SAFETY: before step k (k < D) every lane's `at` is in
                // 2^k − 1 ..= 2^(k+1) − 2, below `internal`, so `8·at + lane` is inside the
                // group's split slots, which both slices hold (`Group::new`).
                let (threshold, checked) = unsafe {
                    (
                        _mm512_i32gather_pd::<8>(slot, walk.group.thresholds.as_ptr()),
                        _mm512_i32gather_epi64::<8>(slot, walk.group.checked.as_ptr().cast()),
                    )
                };
                let (right, out) = walk.goes_right_checked(threshold, checked);
                end(&mut length[k], out, depth);
                let next = _mm256_add_epi32(_mm256_add_epi32(*at, *at), one);
                *at = _mm256_mask_add_epi32(next, right, next, one);
            }
        }
        let first_leaf = _mm256_set1_epi32(internal as i32);
        let mut leaves = walks.each_ref().map(|_| unended);
        for (k, (leaves, at)) in leaves.iter_mut().zip(at).enumerate() {
            let leaf = _mm256_sub_epi32(at, first_leaf);
            let slot = _mm256_add_epi32(_mm256_slli_epi32::<3>(leaf), lane);
            // SAFETY: after D steps `at` is in 2^D − 1 ..= 2^(D+1) − 2, so `at − internal`
            // is a leaf slot below 2^D and `8·leaf + lane` is inside the group's leaf
            // slots.
            let value = unsafe { _mm512_i32gather_pd::<8>(slot, walks[k].group.leaves.as_ptr()) };
            // A leaf lies below every split on its path, so its path value is at least the
            // length of a path ended on the way: the smaller of the two is the right one.
            *leaves = _mm512_min_pd(value, length[k]);
        }
        leaves
    }};
}

#[target_feature(enable = "avx512f,avx512vl")]
fn accumulate(kernel: &Complete, rows: &[f64], sums: &mut [[f64; LANES]]) {
    // Group after group (a group's slots stay in L1), several rows side by side. Rows
    // of up to 32 features are looked up in registers; wider ones are gathered (eight
    // registers a row, for several rows, measured slower than the gathers).
    match (kernel.n_features, kernel.is_range_aware()) {
        (0..=8, false) => by_groups::<1, false>(kernel, rows, sums),
        (9..=16, false) => by_groups::<2, false>(kernel, rows, sums),
        (17..=32, false) => by_groups::<4, false>(kernel, rows, sums),
        (_, false) => by_groups::<0, false>(kernel, rows, sums),
        (0..=8, true) => by_groups::<1, true>(kernel, rows, sums),
        (9..=16, true) => by_groups::<2, true>(kernel, rows, sums),
        (17..=32, true) => by_groups::<4, true>(kernel, rows, sums),
        (_, true) => by_groups::<0, true>(kernel, rows, sums),
    }
}

/// `row` has the kernel's width.
#[target_feature(enable = "avx512f,avx512vl")]
fn accumulate_row(kernel: &Complete, row: &[f64], sum: &mut [f64; LANES]) {
    match (kernel.n_features, kernel.is_range_aware()) {
        (0..=8, false) => one_row::<1, false>(kernel, row, sum),
        (9..=16, false) => one_row::<2, false>(kernel, row, sum),
        (17..=32, false) => one_row::<4, false>(kernel, row, sum),
        (33..=64, false) => one_row::<8, false>(kernel, row, sum),
        (_, false) => one_row::<0, false>(kernel, row, sum),
        (0..=8, true) => one_row::<1, true>(kernel, row, sum),
        (9..=16, true) => one_row::<2, true>(kernel, row, sum),
        (17..=32, true) => one_row::<4, true>(kernel, row, sum),
        (33..=64, true) => one_row::<8, true>(kernel, row, sum),
        (_, true) => one_row::<0, true>(kernel, row, sum),
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn by_groups<const R: usize, const CHECKED: bool>(
    kernel: &Complete,
    rows: &[f64],
    sums: &mut [[f64; LANES]],
) {
    let width = kernel.n_features;
    for group in 0..kernel.groups {
        let group = Group::new::<CHECKED>(kernel, group);
        let mut row_chunks = rows.chunks_exact(width * CHAINS);
        let mut sum_chunks = sums.chunks_exact_mut(CHAINS);
        for (block, sums) in (&mut row_chunks).zip(&mut sum_chunks) {
            let walks: [Walk<R>; CHAINS] = std::array::from_fn(|k| {
                Walk::new(kernel, group, &block[k * width..(k + 1) * width])
            });
            let leaves = walk_chains!(CHECKED, kernel, &walks);
            for (sum, leaf) in sums.iter_mut().zip(leaves) {
                add(sum, leaf);
            }
        }
        let rest = row_chunks.remainder().chunks_exact(width);
        for (row, sum) in rest.zip(sum_chunks.into_remainder()) {
            let [leaf] = walk_chains!(CHECKED, kernel, &[Walk::<R>::new(kernel, group, row)]);
            add(sum, leaf);
        }
    }
}

/// One row (of the kernel's width) through every group, several groups side by side; the
/// lane sums are added group after group, as in [`by_groups`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn one_row<const R: usize, const CHECKED: bool>(
    kernel: &Complete,
    row: &[f64],
    sum: &mut [f64; LANES],
) {
    let first = Walk::<R>::new(kernel, Group::new::<CHECKED>(kernel, 0), row);
    let mut next = 0;
    while next + CHAINS <= kernel.groups {
        let walks: [Walk<R>; CHAINS] = std::array::from_fn(|k| Walk {
            group: Group::new::<CHECKED>(kernel, next + k),
            ..first
        });
        for leaf in walk_chains!(CHECKED, kernel, &walks) {
            add(sum, leaf);
        }
        next += CHAINS;
    }
    for group in next..kernel.groups {
        let walk = Walk {
            group: Group::new::<CHECKED>(kernel, group),
            ..first
        };
        let [leaf] = walk_chains!(CHECKED, kernel, &[walk]);
        add(sum, leaf);
    }
}

/// One group's slots: its split slots (thresholds, and features or, range-aware, checked
/// words) and leaf slots.
#[derive(Clone, Copy)]
struct Group<'a> {
    thresholds: &'a [f64],
    /// Empty in a range-aware walk.
    features: &'a [i32],
    /// Empty unless range-aware.
    checked: &'a [u64],
    leaves: &'a [f64],
}

impl<'a> Group<'a> {
    /// Group `group`'s slots, for the plain walk or (`CHECKED`) the range-aware one; the
    /// slicing panics if the kernel has no slots of that kind, so a walk never reads an
    /// empty slice.
    #[inline]
    fn new<const CHECKED: bool>(kernel: &'a Complete, group: usize) -> Self {
        let internal = kernel.internal();
        let splits = group * internal * LANES..(group + 1) * internal * LANES;
        let leaves = group * (internal + 1) * LANES..(group + 1) * (internal + 1) * LANES;
        Group {
            thresholds: &kernel.thresholds[splits.clone()],
            features: if CHECKED {
                &[]
            } else {
                &kernel.features[splits.clone()]
            },
            checked: if CHECKED {
                &kernel.checked[splits]
            } else {
                &[]
            },
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
        _mm512_cmp_pd_mask::<_CMP_GE_OQ>(self.value(feature), threshold)
    }

    /// Per lane, whether the row goes right, and whether it is out of the split's range:
    /// `|x − threshold| > reach`, the feature and reach taken from the checked words.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn goes_right_checked(&self, threshold: __m512d, checked: __m512i) -> (__mmask8, __mmask8) {
        // Each word: the feature in the low half, which the lookups read as they are; the
        // reach's f32 bits in the high half, the odd f32 lanes, moved to the low eight.
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
        let reach = _mm512_permutexvar_ps(odd, _mm512_castsi512_ps(checked));
        let reach = _mm512_cvtps_pd(_mm512_castps512_ps256(reach));
        let value = self.value_at(checked);
        let distance = _mm512_abs_pd(_mm512_sub_pd(value, threshold));
        (
            _mm512_cmp_pd_mask::<_CMP_GE_OQ>(value, threshold),
            _mm512_cmp_pd_mask::<_CMP_GT_OQ>(distance, reach),
        )
    }

    /// Per lane, the row's value of `feature`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn value(&self, feature: __m256i) -> __m512d {
        match R {
            // SAFETY: `feature` holds split features, each below the kernel's width
            // (module doc), which is the length of `row` (`new`): every lane reads
            // inside it.
            0 => unsafe { _mm512_i32gather_pd::<8>(feature, self.row.as_ptr()) },
            _ => self.value_at(_mm512_cvtepi32_epi64(feature)),
        }
    }

    /// Per lane, the row's value of the feature in the low 32 bits of the lane's 64 bits
    /// of `index` (the high 32 are ignored).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn value_at(&self, index: __m512i) -> __m512d {
        let r = &self.registers;
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
        match R {
            0 => {
                let feature = _mm512_and_si512(index, _mm512_set1_epi64(0xffff_ffff));
                // SAFETY: the low halves of `index` are split features, each below the
                // kernel's width (module doc), which is the length of `row` (`new`): every
                // lane reads inside it.
                unsafe { _mm512_i64gather_pd::<8>(feature, self.row.as_ptr()) }
            }
            // The permutes read only an index's low bits: 3 (one register), 4 (a pair), and
            // the tests bits 4 and 5, all of the feature.
            1 => _mm512_permutexvar_pd(index, r[0]),
            2 => pair!(r[0], r[1]),
            4 => _mm512_mask_blend_pd(bit!(16), pair!(r[0], r[1]), pair!(r[2], r[3])),
            _ => {
                let low = _mm512_mask_blend_pd(bit!(16), pair!(r[0], r[1]), pair!(r[2], r[3]));
                let high = _mm512_mask_blend_pd(bit!(16), pair!(r[4], r[5]), pair!(r[6], r[7]));
                _mm512_mask_blend_pd(bit!(32), low, high)
            }
        }
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

/// Split slot `slot` (below 7) of a range-aware group's eight trees: thresholds and checked
/// words.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn split_checked(group: Group, slot: usize) -> (__m512d, __m512i) {
    let thresholds = &group.thresholds[slot * LANES..][..LANES];
    let checked = &group.checked[slot * LANES..][..LANES];
    // SAFETY: each slice holds exactly the eight values loaded (sliced just above).
    unsafe {
        (
            _mm512_loadu_pd(thresholds.as_ptr()),
            _mm512_loadu_si512(checked.as_ptr().cast()),
        )
    }
}

/// Ends the paths of the lanes in `out` at a split of depth `depth`: `length` keeps each
/// lane's smallest ended length, which is its first, since lengths grow with depth.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn end(length: &mut __m512d, out: __mmask8, depth: u32) {
    *length = _mm512_mask_min_pd(
        *length,
        out,
        *length,
        _mm512_set1_pd(ended_path_length(depth)),
    );
}

/// [`pick`] for range-aware splits.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn pick_checked(
    right: __mmask8,
    (t0, c0): (__m512d, __m512i),
    (t1, c1): (__m512d, __m512i),
) -> (__m512d, __m512i) {
    (
        _mm512_mask_blend_pd(right, t0, t1),
        _mm512_mask_blend_epi64(right, c0, c1),
    )
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
