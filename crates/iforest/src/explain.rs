//! Why a point scored as it did: a per-feature share of the isolation, with a direction.
//!
//! In the spirit of DIFFI (Carletti et al.) and of random cut forest's `WITH_EXPLANATION`: each
//! split on the point's path in each tree isolates it by `log2((n + 1) / (m + 1))` bits, where
//! `n` training samples reached the node and `m` reached the child the point went to (0 at a
//! split whose range check ends the path: the point left all `n` behind). A split
//! that sends the point into a near-empty side early counts most; one that leaves it with the
//! crowd counts nothing. The bits are credited to the split's feature (extended forest: to
//! each feature in proportion to its coefficient's size) and normalised to shares summing to
//! one. The direction is the side the point took, weighted the same way: above the split
//! (with a positive coefficient) means the value was unusually high.
//!
//! [`IsolationForest::attribute`] is the attribution alone, for callers that explain many
//! points (a detector explains every anomaly): no score, and no allocation for up to 32
//! features once the output has room. An axis-parallel forest is walked through the scoring
//! kernel's layout, where each split's bits are a difference of two stored values (with
//! AVX-512 eight trees side by side: `kernel::attribution`); an extended or very deep one
//! over the stored nodes, `log2` read from a table for the node sizes of ordinary
//! sub-samples.
//! [`IsolationForest::explain`] adds the score, the names and the order.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::ScoreError;
use crate::kernel::{reduce, Complete, LANES};
use crate::model::IsolationForest;

/// Whether a feature's value was unusually high or low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Above the splits that isolated it.
    High,
    /// Below the splits that isolated it.
    Low,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::High => "high",
            Direction::Low => "low",
        })
    }
}

/// One feature's part in isolating a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    /// Feature index.
    pub feature: usize,
    /// Feature name, when the model has names.
    pub name: Option<String>,
    /// Share of the isolation, in [0, 1]; the shares of a point sum to 1.
    pub share: f64,
    /// Whether the value was unusually high or low.
    pub direction: Direction,
}

/// A point's score and its per-feature attribution, largest share first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The anomaly score, as [`IsolationForest::score`] gives it.
    pub score: f64,
    /// One entry per feature, sorted by share, largest first.
    pub contributions: Vec<FeatureContribution>,
}

/// Up to this many features, [`IsolationForest::attribute`] keeps its per-feature lean on
/// the stack.
const STACK_FEATURES: usize = 32;

/// `log2(k)` for `k < LOG2_TABLE`: node sizes are sample counts, at most the sub-sample size
/// (256 by default), so one table serves every node of an ordinary forest.
const LOG2_TABLE: usize = 4097;

/// Each feature's lane sums, folded in the canonical order, into its `share` and lean.
fn fold_lanes(
    lane_bits: &[[f64; LANES]],
    lane_lean: &[[f64; LANES]],
    bits: &mut [FeatureContribution],
    lean: &mut [f64],
) {
    for (feature, (bits, lean)) in bits.iter_mut().zip(lean.iter_mut()).enumerate() {
        bits.share = reduce(&lane_bits[feature]);
        *lean = reduce(&lane_lean[feature]);
    }
}

/// `log2(k)` for the `k` of the table, else computed.
#[inline(always)]
fn log2_count(table: &[f64], k: u32) -> f64 {
    match table.get(k as usize) {
        Some(&value) => value,
        None => f64::from(k).log2(),
    }
}

fn log2_table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| (0..LOG2_TABLE).map(|k| (k as f64).log2()).collect())
}

impl IsolationForest {
    /// Scores `row` and attributes its isolation to the features.
    pub fn explain(&self, row: &[f64]) -> Result<Explanation, ScoreError> {
        let score = self.score(row)?;
        let mut contributions = Vec::with_capacity(row.len());
        self.attribute(row, &mut contributions)?;
        if let Some(names) = self.feature_names() {
            for contribution in &mut contributions {
                contribution.name = names.get(contribution.feature).cloned();
            }
        }
        contributions.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.feature.cmp(&b.feature)));
        Ok(Explanation {
            score,
            contributions,
        })
    }

    /// Attributes `row`'s isolation to the features, without scoring it: `out` is cleared
    /// and gets one entry per feature, in feature order, without names (the shares and
    /// directions of [`explain`](Self::explain), bit for bit). Allocates nothing once `out`
    /// has room for the features, up to 32 of them.
    pub fn attribute(
        &self,
        row: &[f64],
        out: &mut Vec<FeatureContribution>,
    ) -> Result<(), ScoreError> {
        let width = self.arena.n_features;
        if row.len() != width {
            return Err(ScoreError::WrongFeatureCount {
                expected: width,
                found: row.len(),
            });
        }
        if let Some(feature) = row.iter().position(|value| !value.is_finite()) {
            return Err(ScoreError::NonFinite { row: 0, feature });
        }
        // Bits are summed in the output's `share`, the lean (> 0: high) beside them.
        out.clear();
        out.extend((0..width).map(|feature| FeatureContribution {
            feature,
            name: None,
            share: 0.0,
            direction: Direction::High,
        }));
        let mut on_stack = [0.0; STACK_FEATURES];
        let mut on_heap = Vec::new();
        let lean: &mut [f64] = if width <= STACK_FEATURES {
            &mut on_stack[..width]
        } else {
            on_heap.resize(width, 0.0);
            &mut on_heap
        };
        match &self.kernel {
            Some(kernel) => Self::lane_bits(kernel, row, out, lean),
            None => self.isolation_bits(row, out, lean),
        }
        let total: f64 = out.iter().map(|c| c.share).sum();
        for (contribution, &lean) in out.iter_mut().zip(lean.iter()) {
            contribution.share = if total > 0.0 {
                contribution.share / total
            } else {
                1.0 / width as f64
            };
            contribution.direction = if lean >= 0.0 {
                Direction::High
            } else {
                Direction::Low
            };
        }
        Ok(())
    }

    /// [`isolation_bits`](Self::isolation_bits) through the scoring layout: each lane of
    /// trees summing apart, the lanes folded canonically.
    fn lane_bits(
        kernel: &Complete,
        row: &[f64],
        bits: &mut [FeatureContribution],
        lean: &mut [f64],
    ) {
        // Lane sums on the stack, sized to the row: zeroing them is part of every call.
        match row.len() {
            0..=8 => Self::lane_bits_on_stack::<8>(kernel, row, bits, lean),
            9..=STACK_FEATURES => {
                Self::lane_bits_on_stack::<STACK_FEATURES>(kernel, row, bits, lean);
            }
            width => {
                let mut sums = vec![[0.0; LANES]; 2 * width];
                let (lane_bits, lane_lean) = sums.split_at_mut(width);
                kernel.isolation_bits(row, lane_bits, lane_lean);
                fold_lanes(lane_bits, lane_lean, bits, lean);
            }
        }
    }

    /// [`lane_bits`](Self::lane_bits) for rows of up to `N` features.
    fn lane_bits_on_stack<const N: usize>(
        kernel: &Complete,
        row: &[f64],
        bits: &mut [FeatureContribution],
        lean: &mut [f64],
    ) {
        let width = row.len();
        let mut lane_bits = [[0.0; LANES]; N];
        let mut lane_lean = [[0.0; LANES]; N];
        let (lane_bits, lane_lean) = (&mut lane_bits[..width], &mut lane_lean[..width]);
        kernel.isolation_bits(row, lane_bits, lane_lean);
        fold_lanes(lane_bits, lane_lean, bits, lean);
    }

    /// Walks `row` (checked) through every tree once, adding each split's bits to its
    /// feature's `share` in `bits` and the signed bits to `lean`.
    fn isolation_bits(&self, row: &[f64], bits: &mut [FeatureContribution], lean: &mut [f64]) {
        let arena = &self.arena;
        let table = log2_table();
        let range_aware = arena.is_range_aware();
        for tree in &arena.trees {
            let mut at = tree.root as usize;
            loop {
                let node = arena.nodes[at];
                if node.is_leaf() {
                    break;
                }
                let coefficients = arena.coefficients(at);
                let value = match coefficients {
                    Some(normal) => crate::arena::dot(row, normal),
                    None => row[node.feature as usize],
                };
                let went_right = value >= node.split;
                let child = node.left as usize + usize::from(went_right);
                // The range check ends the path here: the split isolates the point from all
                // of the node's samples.
                let ended = range_aware && arena.out_of_range(at, value);
                let kept = if ended { 0 } else { arena.node_size[child] };
                let reached = arena.node_size[at];
                let gain =
                    log2_count(table, reached.saturating_add(1)) - log2_count(table, kept + 1);
                let side = if went_right { 1.0 } else { -1.0 };
                match coefficients {
                    None => {
                        let feature = node.feature as usize;
                        bits[feature].share += gain;
                        lean[feature] += gain * side;
                    }
                    Some(normal) => {
                        let weight: f64 = normal.iter().map(|c| c.abs()).sum();
                        if weight > 0.0 {
                            for (feature, coefficient) in normal.iter().enumerate() {
                                let part = gain * coefficient.abs() / weight;
                                bits[feature].share += part;
                                lean[feature] += part * side * coefficient.signum();
                            }
                        }
                    }
                }
                if ended {
                    break;
                }
                at = child;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IsolationForestParams, RangeCheck, SplitRule};

    /// Rows from a fixed, cheap generator: a cloud around the origin.
    fn cloud(rows: usize, features: usize) -> Vec<f64> {
        (0..rows * features)
            .map(|i| ((i as f64 * 0.618_033_988_7).fract() - 0.5) * 2.0)
            .collect()
    }

    /// The attribution as it was first written, through the arena's path iterator and
    /// `log2` of each ratio: shares and directions must agree with it.
    fn reference(model: &IsolationForest, row: &[f64]) -> Vec<(f64, Direction)> {
        let arena = &model.arena;
        let width = arena.n_features;
        let (mut bits, mut lean) = (vec![0.0; width], vec![0.0; width]);
        for tree in &arena.trees {
            let mut path = arena.path(tree, row).peekable();
            while let Some(node_index) = path.next() {
                let node = arena.nodes[node_index];
                if node.is_leaf() {
                    break;
                }
                let reached = f64::from(arena.node_size[node_index]);
                let (went_right, kept) = match path.peek() {
                    Some(&child) => (
                        child == node.left as usize + 1,
                        f64::from(arena.node_size[child]),
                    ),
                    None => (arena.goes_right(node_index, row), 0.0),
                };
                let side = if went_right { 1.0 } else { -1.0 };
                let gain = ((reached + 1.0) / (kept + 1.0)).log2();
                match arena.coefficients(node_index) {
                    None => {
                        bits[node.feature as usize] += gain;
                        lean[node.feature as usize] += gain * side;
                    }
                    Some(normal) => {
                        let weight: f64 = normal.iter().map(|c| c.abs()).sum();
                        for (feature, coefficient) in normal.iter().enumerate() {
                            let part = gain * coefficient.abs() / weight;
                            bits[feature] += part;
                            lean[feature] += part * side * coefficient.signum();
                        }
                    }
                }
            }
        }
        let total: f64 = bits.iter().sum();
        bits.iter()
            .zip(&lean)
            .map(|(bits, lean)| {
                let direction = if *lean >= 0.0 {
                    Direction::High
                } else {
                    Direction::Low
                };
                (bits / total, direction)
            })
            .collect()
    }

    #[test]
    fn attribution_agrees_with_the_path_walk_for_every_kind_of_forest() {
        let features = 4;
        let data = cloud(1500, features);
        for (rule, range) in [
            (SplitRule::Axis, RangeCheck::On),
            (SplitRule::Axis, RangeCheck::Off),
            (
                SplitRule::Extended {
                    extension_level: Some(1),
                },
                RangeCheck::On,
            ),
            (
                SplitRule::Extended {
                    extension_level: None,
                },
                RangeCheck::Off,
            ),
        ] {
            let model = IsolationForestParams::new()
                .split_rule(rule)
                .range_check(range)
                .seed(3)
                .fit(&data, features)
                .unwrap();
            let mut out = Vec::new();
            for point in [
                [0.1, 0.2, -0.3, 0.0],
                [0.1, 9.0, -0.3, 0.0],
                [-7.0, 0.2, -0.3, 3.0],
                [0.9, -0.9, 0.9, -0.9],
            ] {
                model.attribute(&point, &mut out).unwrap();
                let expected = reference(&model, &point);
                assert_eq!(out.len(), features);
                for (got, (share, direction)) in out.iter().zip(&expected) {
                    assert!(
                        (got.share - share).abs() < 1e-12,
                        "{rule} {range:?} {point:?}: {got:?} vs {share}"
                    );
                    assert_eq!(got.direction, *direction, "{rule} {range:?} {point:?}");
                    assert_eq!(got.name, None);
                }
                let total: f64 = out.iter().map(|c| c.share).sum();
                assert!((total - 1.0).abs() < 1e-12);
                // explain is the same attribution, named and sorted.
                let explained = model.explain(&point).unwrap();
                for contribution in &explained.contributions {
                    assert_eq!(
                        contribution.share.to_bits(),
                        out[contribution.feature].share.to_bits()
                    );
                    assert_eq!(contribution.direction, out[contribution.feature].direction);
                }
                assert!(explained
                    .contributions
                    .windows(2)
                    .all(|pair| pair[0].share >= pair[1].share));
            }
        }
    }

    #[test]
    fn the_scoring_layout_s_walk_attributes_as_the_path_walk() {
        // Through the kernel: narrow and wide rows (beyond the stack's 32), forests with
        // leaves above the full depth, a forest of fewer trees than a group, both range modes.
        for features in [1, 2, 5, STACK_FEATURES, STACK_FEATURES + 5] {
            for (n_trees, max_depth) in [(3, Some(2)), (20, Some(5)), (17, None)] {
                for range in [RangeCheck::On, RangeCheck::Off] {
                    let model = IsolationForestParams::new()
                        .n_trees(n_trees)
                        .max_depth(max_depth)
                        .range_check(range)
                        .seed(7)
                        .fit(&cloud(400, features), features)
                        .unwrap();
                    assert!(model.kernel.is_some());
                    let mut points = cloud(7, features);
                    points.extend((0..features).map(|f| if f % 2 == 0 { 30.0 } else { -0.2 }));
                    let mut out = Vec::new();
                    for point in points.chunks_exact(features) {
                        let case = format!("{features} features, {n_trees} trees, {range:?}");
                        model.attribute(point, &mut out).unwrap();
                        for (got, (share, direction)) in out.iter().zip(reference(&model, point)) {
                            assert!(
                                (got.share - share).abs() < 1e-12,
                                "{case}: {got:?} vs {share}"
                            );
                            assert_eq!(got.direction, direction, "{case}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_wide_row_and_node_sizes_beyond_the_table_are_attributed_too() {
        // More features than the stack holds, and sub-samples larger than the log2 table.
        let features = STACK_FEATURES + 3;
        let rows = LOG2_TABLE + 500;
        let model = IsolationForestParams::new()
            .n_trees(8)
            .sample_size(rows)
            .seed(5)
            .fit(&cloud(rows, features), features)
            .unwrap();
        let mut point = vec![0.0; features];
        point[features - 1] = -40.0;
        let mut out = Vec::new();
        model.attribute(&point, &mut out).unwrap();
        let expected = reference(&model, &point);
        for (got, (share, direction)) in out.iter().zip(&expected) {
            assert!((got.share - share).abs() < 1e-12, "{got:?} vs {share}");
            assert_eq!(got.direction, *direction);
        }
        let top = model.explain(&point).unwrap().contributions[0].clone();
        assert_eq!((top.feature, top.direction), (features - 1, Direction::Low));
    }

    #[test]
    fn attribute_refuses_what_score_refuses() {
        let model = IsolationForestParams::new()
            .seed(1)
            .fit(&cloud(300, 2), 2)
            .unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            model.attribute(&[1.0], &mut out),
            Err(ScoreError::WrongFeatureCount {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            model.attribute(&[1.0, f64::NAN], &mut out),
            Err(ScoreError::NonFinite { row: 0, feature: 1 })
        ));
    }
}
