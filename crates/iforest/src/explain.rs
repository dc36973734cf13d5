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

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ScoreError;
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

impl IsolationForest {
    /// Scores `row` and attributes its isolation to the features.
    pub fn explain(&self, row: &[f64]) -> Result<Explanation, ScoreError> {
        let score = self.score(row)?;
        let arena = &self.arena;
        let width = arena.n_features;
        let mut bits = vec![0.0; width];
        let mut lean = vec![0.0; width]; // > 0: high, < 0: low
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
                    // The range check ended the path here: the split isolates the point
                    // from all of the node's samples.
                    None => (arena.goes_right(node_index, row), 0.0),
                };
                let side = if went_right { 1.0 } else { -1.0 };
                let gain = ((reached + 1.0) / (kept + 1.0)).log2();
                match arena.coefficients(node_index) {
                    None => {
                        let feature = node.feature as usize;
                        bits[feature] += gain;
                        lean[feature] += gain * side;
                    }
                    Some(normal) => {
                        let weight: f64 = normal.iter().map(|c| c.abs()).sum();
                        if weight > 0.0 {
                            for (feature, coefficient) in normal.iter().enumerate() {
                                let part = gain * coefficient.abs() / weight;
                                bits[feature] += part;
                                lean[feature] += part * side * coefficient.signum();
                            }
                        }
                    }
                }
            }
        }
        let total: f64 = bits.iter().sum();
        let names = self.feature_names();
        let mut contributions: Vec<FeatureContribution> = (0..width)
            .map(|feature| FeatureContribution {
                feature,
                name: names.and_then(|names| names.get(feature).cloned()),
                share: if total > 0.0 {
                    bits[feature] / total
                } else {
                    1.0 / width as f64
                },
                direction: if lean[feature] >= 0.0 {
                    Direction::High
                } else {
                    Direction::Low
                },
            })
            .collect();
        contributions.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.feature.cmp(&b.feature)));
        Ok(Explanation {
            score,
            contributions,
        })
    }
}
