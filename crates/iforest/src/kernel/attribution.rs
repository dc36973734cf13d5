//! The explanations' walk of the [`Complete`] layout: the scoring walk's steps, adding up per
//! feature how much each split isolated the row.
//!
//! A split isolates a row by `log2((n + 1) / (m + 1))` bits, `n` the training samples that
//! reached it and `m` those of the child the row went to (see [`crate::explain`]). The layout
//! keeps `log2(n + 1)` per slot, so a step's bits are its slot's value minus its child's; a
//! split whose range check ends the path isolates the row from all `n` (`m = 0`), and the
//! steps after it count nothing. Padding slots below a leaf hold the leaf's value: stepping
//! through them adds 0.
//!
//! The portable walk goes tree by tree and stops each path where it ends or reaches a leaf;
//! the AVX-512 walk (in `avx512`) takes a group's eight trees side by side and stops once all
//! eight have. Outlying rows, the ones a detector explains, are isolated near the roots, so
//! either walk is short for them.
//!
//! Each lane keeps its own sums per feature (lane `l` sums trees `l`, `l + 8`, …), so the
//! eight walks of a group never wait on one another's additions, and
//! [`reduce`](super::reduce) folds the lanes in the canonical order. Both walks add the same
//! values to each lane's sums in the same order (the vector walk adds zeros besides, which
//! change nothing): the result does not depend on the CPU.

use super::{unpack, Backend, Complete, LANES, LEAF_SPLIT};

/// `log2(n + 1)`: what a node of `n` training samples holds for explanations.
pub(super) fn information(samples: u32) -> f64 {
    (f64::from(samples) + 1.0).log2()
}

impl Complete {
    /// Adds, per feature and lane, the bits of isolation each split on `row`'s paths gives
    /// (`bits[feature][lane]`) and the same bits signed by the side the row took (`lean`:
    /// positive above the split).
    ///
    /// # Panics
    /// When `row`, `bits` or `lean` is not one entry per feature.
    pub(crate) fn isolation_bits(
        &self,
        row: &[f64],
        bits: &mut [[f64; LANES]],
        lean: &mut [[f64; LANES]],
    ) {
        self.isolation_bits_with(Backend::chosen(), row, bits, lean);
    }

    /// [`isolation_bits`](Self::isolation_bits) with a given backend.
    pub(crate) fn isolation_bits_with(
        &self,
        backend: Backend,
        row: &[f64],
        bits: &mut [[f64; LANES]],
        lean: &mut [[f64; LANES]],
    ) {
        match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(cpu) => cpu.isolation_bits(self, row, bits, lean),
            Backend::Portable => self.isolation_bits_portable(row, bits, lean),
        }
    }

    /// The reference walk, any CPU: tree by tree, each path to its end.
    fn isolation_bits_portable(
        &self,
        row: &[f64],
        bits: &mut [[f64; LANES]],
        lean: &mut [[f64; LANES]],
    ) {
        let width = self.n_features;
        assert!(
            row.len() == width && bits.len() == width && lean.len() == width,
            "one value and one sum per feature"
        );
        let internal = self.internal();
        let ranged = self.is_range_aware();
        for group in 0..self.groups {
            let splits = group * internal * LANES..(group + 1) * internal * LANES;
            let thresholds = &self.thresholds[splits.clone()];
            let information = &self.information[splits.clone()];
            let features = &self.features[if ranged { 0..0 } else { splits.clone() }];
            let checked = &self.checked[if ranged { splits } else { 0..0 }];
            let leaves = group * (internal + 1) * LANES..(group + 1) * (internal + 1) * LANES;
            let leaf_information = &self.leaf_information[leaves];
            // Tree by tree: a path stops where it ends or reaches a leaf, so short paths
            // (outlying rows) cost little. Each lane's sums get the same additions in the same
            // order as in the vector walk, which only adds zeros besides.
            for lane in 0..LANES {
                let mut at = 0;
                let Some(&root) = information.get(lane) else {
                    break; // no split slots: every tree is one leaf
                };
                let mut here = root;
                for step in 0..self.depth {
                    let slot = at * LANES + lane;
                    let threshold = thresholds[slot];
                    if threshold == LEAF_SPLIT {
                        break; // a leaf: padding splits below it isolate nothing
                    }
                    let (feature, reach) = if ranged {
                        unpack(checked[slot])
                    } else {
                        (features[slot] as usize, f64::INFINITY)
                    };
                    let value = row[feature];
                    let right = value >= threshold;
                    // Ended here: isolated from all of the slot's samples (a child of 0).
                    let ends = (value - threshold).abs() > reach;
                    let next = 2 * at + 1 + usize::from(right);
                    let there = if ends {
                        0.0
                    } else if step + 1 == self.depth {
                        leaf_information[(next - internal) * LANES + lane]
                    } else {
                        information[next * LANES + lane]
                    };
                    let gain = here - there;
                    bits[feature][lane] += gain;
                    lean[feature][lane] += if right { gain } else { -gain };
                    if ends {
                        break;
                    }
                    here = there;
                    at = next;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IsolationForestParams, RangeCheck};

    /// Rows spread over [−3, 3] per feature, and beyond.
    fn rows(count: usize, features: usize, spread: f64) -> Vec<f64> {
        (0..count * features)
            .map(|i| ((i as f64 * 0.618_033_988_7 + (i % 7) as f64 * 0.1).fract() - 0.5) * spread)
            .collect()
    }

    #[test]
    fn every_backend_adds_the_portable_walk_s_bits() {
        let backends = Backend::supported();
        for features in [1, 2, 3, 5, 8, 9, 17, 33, 70] {
            for (n_trees, max_depth) in [(1, None), (13, Some(2)), (9, Some(3)), (30, None)] {
                for check in [RangeCheck::Off, RangeCheck::On] {
                    let forest = IsolationForestParams::new()
                        .n_trees(n_trees)
                        .max_depth(max_depth)
                        .range_check(check)
                        .seed(11)
                        .fit(&rows(300, features, 2.0), features)
                        .unwrap();
                    let kernel = forest.kernel.as_ref().expect("a complete layout");
                    let mut points = rows(40, features, 12.0);
                    points.extend(std::iter::repeat_n(0.0, features));
                    points.extend(std::iter::repeat_n(1e300, features));
                    for row in points.chunks_exact(features) {
                        let mut expected =
                            (vec![[0.0; LANES]; features], vec![[0.0; LANES]; features]);
                        kernel.isolation_bits_portable(row, &mut expected.0, &mut expected.1);
                        assert!(expected.0.iter().flatten().any(|&b| b > 0.0) || n_trees == 1);
                        for &backend in &backends {
                            let mut got =
                                (vec![[0.0; LANES]; features], vec![[0.0; LANES]; features]);
                            kernel.isolation_bits_with(backend, row, &mut got.0, &mut got.1);
                            let bits = |sums: &[[f64; LANES]]| -> Vec<u64> {
                                sums.iter().flatten().map(|v| v.to_bits()).collect()
                            };
                            let case = format!(
                                "{backend:?}, {features} features, {n_trees} trees, {check}"
                            );
                            assert_eq!(bits(&got.0), bits(&expected.0), "{case}");
                            assert_eq!(bits(&got.1), bits(&expected.1), "{case}");
                        }
                    }
                }
            }
        }
        super::super::tests::report_backends("attribution", &backends);
    }
}
