//! The explanations' walk ([`Complete::isolation_bits`](super::super::Complete)) eight trees
//! per vector. For rows of up to eight features the row sits in one register and each
//! feature's lane sums in two (bits and lean), so a step adds its bits with masked adds and
//! touches no memory but the gathers of the slots. Wider rows are looked up as in scoring
//! (registers up to 64 features, gathers beyond) and their sums stay in memory: a step
//! gathers the eight lanes' sums of their features, adds, and scatters them back (the eight
//! addresses differ, one per lane).
//!
//! Each lane adds what the portable walk adds, in the same order, with the same operations;
//! besides, it adds zeros (steps through padding below a leaf, and after its path ended),
//! which leave a sum unchanged (one that starts at +0 never becomes −0), and its `− gain` is
//! the portable walk's `+ (−gain)`: the sums are bit for bit the portable ones.

use std::arch::x86_64::*;

use super::{Avx512, Complete, Group, Walk, LANES};

/// Rows of up to this many features keep their sums in registers.
const IN_REGISTERS: usize = 8;

impl Avx512 {
    /// Adds `row`'s bits of isolation per feature and lane to `bits` and `lean`, as
    /// `Complete::isolation_bits` does.
    ///
    /// # Panics
    /// When `row`, `bits` or `lean` is not one entry per feature.
    pub(in crate::kernel) fn isolation_bits(
        self,
        kernel: &Complete,
        row: &[f64],
        bits: &mut [[f64; LANES]],
        lean: &mut [[f64; LANES]],
    ) {
        let width = kernel.n_features;
        assert!(
            row.len() == width && bits.len() == width && lean.len() == width,
            "one value and one sum per feature"
        );
        // SAFETY: `self` proves the CPU has the features `walk` is compiled for.
        unsafe { dispatch(kernel, row, bits, lean) }
    }
}

/// `row`, `bits` and `lean` have the kernel's width.
#[target_feature(enable = "avx512f,avx512vl")]
fn dispatch(kernel: &Complete, row: &[f64], bits: &mut [[f64; LANES]], lean: &mut [[f64; LANES]]) {
    match (kernel.n_features, kernel.is_range_aware()) {
        (0..=8, false) => walk::<1, false, false>(kernel, row, bits, lean),
        (9..=16, false) => walk::<2, false, true>(kernel, row, bits, lean),
        (17..=32, false) => walk::<4, false, true>(kernel, row, bits, lean),
        (33..=64, false) => walk::<8, false, true>(kernel, row, bits, lean),
        (_, false) => walk::<0, false, true>(kernel, row, bits, lean),
        (0..=8, true) => walk::<1, true, false>(kernel, row, bits, lean),
        (9..=16, true) => walk::<2, true, true>(kernel, row, bits, lean),
        (17..=32, true) => walk::<4, true, true>(kernel, row, bits, lean),
        (33..=64, true) => walk::<8, true, true>(kernel, row, bits, lean),
        (_, true) => walk::<0, true, true>(kernel, row, bits, lean),
    }
}

/// The walk with the row in `R` registers (see `Walk`), range-aware when `CHECKED`, the
/// sums in memory when `IN_MEMORY` (else in registers: at most eight features). `row`,
/// `bits` and `lean` have the kernel's width.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn walk<const R: usize, const CHECKED: bool, const IN_MEMORY: bool>(
    kernel: &Complete,
    row: &[f64],
    bits_out: &mut [[f64; LANES]],
    lean_out: &mut [[f64; LANES]],
) {
    let width = kernel.n_features;
    let internal = kernel.internal();
    if internal == 0 {
        return; // every tree is one leaf: nothing isolates anything
    }
    assert!(
        IN_MEMORY || width <= IN_REGISTERS,
        "sums in registers for up to eight features"
    );
    let mut bits = [_mm512_setzero_pd(); IN_REGISTERS];
    let mut lean = [_mm512_setzero_pd(); IN_REGISTERS];
    for feature in 0..if IN_MEMORY { 0 } else { width } {
        // SAFETY: each sum holds exactly the eight values loaded.
        unsafe {
            bits[feature] = _mm512_loadu_pd(bits_out[feature].as_ptr());
            lean[feature] = _mm512_loadu_pd(lean_out[feature].as_ptr());
        }
    }
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let one = _mm256_set1_epi32(1);
    let leaf_split = _mm512_set1_pd(super::super::LEAF_SPLIT);
    let low_half = _mm512_set1_epi64(0xffff_ffff);
    let first_leaf = _mm256_set1_epi32(internal as i32);
    let lanes64 = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    // The row's registers are loaded once; each group takes a copy with its own slots.
    let first = Walk::<R>::new(kernel, Group::new::<CHECKED>(kernel, 0), row);
    for group in 0..kernel.groups {
        let walk = Walk {
            group: Group::new::<CHECKED>(kernel, group),
            ..first
        };
        let information = &kernel.information[group * internal * LANES..][..internal * LANES];
        let leaf_information =
            &kernel.leaf_information[group * (internal + 1) * LANES..][..(internal + 1) * LANES];
        let mut at = _mm256_setzero_si256();
        // SAFETY: `internal > 0`, so the group's first eight split slots exist.
        let mut here = unsafe { _mm512_loadu_pd(information.as_ptr()) };
        let mut going: __mmask8 = 0xff;
        for step in 0..kernel.depth {
            let slot = _mm256_add_epi32(_mm256_slli_epi32::<3>(at), lane);
            // SAFETY: before step k (k < D) every lane's `at` is in 2^k − 1 ..= 2^(k+1) − 2,
            // below `internal`, so `8·at + lane` is inside the group's split slots.
            let threshold =
                unsafe { _mm512_i32gather_pd::<8>(slot, walk.group.thresholds.as_ptr()) };
            // Every path ended or at a leaf (padding splits at +∞ below it): the rest of the
            // group's steps add nothing.
            if going & _mm512_cmp_pd_mask::<_CMP_NEQ_OQ>(threshold, leaf_split) == 0 {
                break;
            }
            let (right, out, feature) = if CHECKED {
                // SAFETY: as for the thresholds; `checked` has the same slots.
                let checked = unsafe {
                    _mm512_i32gather_epi64::<8>(slot, walk.group.checked.as_ptr().cast())
                };
                let (right, out) = walk.goes_right_checked(threshold, checked);
                (right, out, _mm512_and_si512(checked, low_half))
            } else {
                // SAFETY: as for the thresholds; `features` has the same slots.
                let feature =
                    unsafe { _mm256_i32gather_epi32::<4>(walk.group.features.as_ptr(), slot) };
                (
                    walk.goes_right(threshold, feature),
                    0,
                    _mm512_cvtepi32_epi64(feature),
                )
            };
            let next = _mm256_add_epi32(_mm256_add_epi32(at, at), one);
            let next = _mm256_mask_add_epi32(next, right, next, one);
            let there = if step + 1 == kernel.depth {
                let leaf = _mm256_add_epi32(
                    _mm256_slli_epi32::<3>(_mm256_sub_epi32(next, first_leaf)),
                    lane,
                );
                // SAFETY: after D steps `next` is in 2^D − 1 ..= 2^(D+1) − 2, so
                // `next − internal` is a leaf slot below 2^D, inside the group's leaf slots.
                unsafe { _mm512_i32gather_pd::<8>(leaf, leaf_information.as_ptr()) }
            } else {
                let child = _mm256_add_epi32(_mm256_slli_epi32::<3>(next), lane);
                // SAFETY: before step k + 1 < D, `next` is a split slot of depth k + 1,
                // below `internal`: inside the group's split slots.
                unsafe { _mm512_i32gather_pd::<8>(child, information.as_ptr()) }
            };
            // Ended here: isolated from all of the slot's samples; ended before: nothing.
            let gain = _mm512_mask_blend_pd(out, _mm512_sub_pd(here, there), here);
            let gain = _mm512_maskz_mov_pd(going, gain);
            if IN_MEMORY {
                // Lane l's sum of feature f is value 8·f + l of the flat sums.
                let index = _mm512_add_epi64(_mm512_slli_epi64::<3>(feature), lanes64);
                let signed = _mm512_mask_sub_pd(gain, !right, _mm512_setzero_pd(), gain);
                let bits_at = bits_out.as_mut_ptr().cast::<f64>();
                let lean_at = lean_out.as_mut_ptr().cast::<f64>();
                // SAFETY: every feature is below the kernel's width (module doc of
                // `kernel`), the number of sums in `bits_out` and `lean_out`, so `8·f + l`
                // is inside each (eight values a sum); the eight lanes' indices differ, so
                // the scatters write each value once.
                unsafe {
                    let sum = _mm512_add_pd(_mm512_i64gather_pd::<8>(index, bits_at), gain);
                    _mm512_i64scatter_pd::<8>(bits_at, index, sum);
                    let sum = _mm512_add_pd(_mm512_i64gather_pd::<8>(index, lean_at), signed);
                    _mm512_i64scatter_pd::<8>(lean_at, index, sum);
                }
            } else {
                for f in 0..width {
                    let on = _mm512_cmpeq_epi64_mask(feature, _mm512_set1_epi64(f as i64));
                    bits[f] = _mm512_mask_add_pd(bits[f], on, bits[f], gain);
                    lean[f] = _mm512_mask_add_pd(lean[f], on & right, lean[f], gain);
                    lean[f] = _mm512_mask_sub_pd(lean[f], on & !right, lean[f], gain);
                }
            }
            going &= !out;
            here = there;
            at = next;
        }
    }
    for feature in 0..if IN_MEMORY { 0 } else { width } {
        // SAFETY: each sum holds exactly the eight values stored.
        unsafe {
            _mm512_storeu_pd(bits_out[feature].as_mut_ptr(), bits[feature]);
            _mm512_storeu_pd(lean_out[feature].as_mut_ptr(), lean[feature]);
        }
    }
}
