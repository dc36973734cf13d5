//! The trees as stored: one flat node arena for the whole forest, its structural checks, and
//! the reference walk every faster walk must agree with.
//!
//! All trees' nodes live in one `Vec<Node>`; an internal node's children are adjacent
//! (`left`, `left + 1`), so a node is 16 bytes and a step is `left + (x >= split)`. A leaf
//! points to itself with `split = +∞`, so a row can walk a tree for exactly the tree's depth
//! with no branch on "is this a leaf". A leaf's path value is its depth + c(samples in it),
//! so scoring only adds.

use serde::{Deserialize, Serialize};

/// Euler–Mascheroni constant, for the harmonic-number approximation.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `split` of a leaf: no finite value reaches the right child, so the walk stays put.
pub(crate) const LEAF_SPLIT: f64 = f64::INFINITY;

/// `c(n)`: the average path length of an unsuccessful search in a binary search tree of `n`
/// nodes, `2H(n−1) − 2(n−1)/n` with `H(i) ≈ ln(i) + γ`; `c(1) = 0`, `c(2) = 1`. It normalises
/// path lengths, and is added at a leaf that still holds `n` samples.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// One node. Internal: go to `left + 1` when the row's value (axis) or projection (extended)
/// is `>= split`, else to `left`. Leaf: `left` is the node itself and `split` is +∞.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub(crate) feature: u32,
    pub(crate) left: u32,
    pub(crate) split: f64,
}

impl Node {
    /// A leaf at `index` (it points to itself).
    pub(crate) fn leaf(index: u32) -> Self {
        Node {
            feature: 0,
            left: index,
            split: LEAF_SPLIT,
        }
    }

    pub(crate) fn is_leaf(&self) -> bool {
        self.split == LEAF_SPLIT
    }
}

/// The smallest and largest split value (the feature's value, or the projection on the
/// node's hyperplane) among an internal node's training samples; (0, 0) at a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct SplitRange {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl SplitRange {
    /// How far from `split` a value may lie and still walk on past this node: half the
    /// width of the smallest interval centred on the split that holds the range widened by
    /// half its width on each side, `max(split − min, max − split) + (max − min) / 2`,
    /// rounded up to an `f32`.
    ///
    /// The margin, half the range's width, is there because the range is that of a sample:
    /// a normal value falls just outside a node's few training values often, far outside
    /// rarely. Centring on the split lets the check be one comparison, `|x − split| >
    /// reach`, with the split value already at hand; the `f32` lets the kernel keep the
    /// reach beside the feature index in one 64-bit slot. Both walks use this value, so
    /// they agree bit for bit.
    pub(crate) fn reach(&self, split: f64) -> f32 {
        let reach = (split - self.min).max(self.max - split) + 0.5 * (self.max - self.min);
        let rounded = reach as f32;
        if f64::from(rounded) < reach {
            rounded.next_up()
        } else {
            rounded
        }
    }
}

/// The path length of a row whose path the range check ends at a split of depth `depth`:
/// the split counts as the one that isolates it, as a split between the row and the node's
/// training values would.
pub(crate) fn ended_path_length(depth: u32) -> f64 {
    f64::from(depth) + 1.0
}

/// Where a tree starts in the node array and how many steps reach any of its leaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) root: u32,
    pub(crate) depth: u32,
}

/// The forest's trees: per-node arrays indexed alike, trees one after another.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arena {
    /// Features per row; every split's feature (or hyperplane width) is this.
    pub(crate) n_features: usize,
    pub(crate) trees: Vec<Tree>,
    pub(crate) nodes: Vec<Node>,
    /// Per node: at a leaf, depth + c(samples in the leaf); 0 at internal nodes.
    pub(crate) path_value: Vec<f64>,
    /// Per node: training samples that reached it (for explanations).
    pub(crate) node_size: Vec<u32>,
    /// Extended forest only: `n_features` coefficients per node (zeros at leaves).
    pub(crate) normals: Vec<f64>,
    /// Range-aware forest only: per node, the range of its split value in training.
    pub(crate) ranges: Vec<SplitRange>,
}

impl Arena {
    /// Whether nodes split on hyperplanes (the extended forest) rather than one feature.
    pub(crate) fn is_extended(&self) -> bool {
        !self.normals.is_empty()
    }

    /// A node's hyperplane coefficients (extended forest only).
    fn normal(&self, node: usize) -> &[f64] {
        &self.normals[node * self.n_features..(node + 1) * self.n_features]
    }

    /// The value a node compares with its split: the row's feature, or its projection on the
    /// node's hyperplane.
    #[inline(always)]
    fn split_value(&self, node: usize, row: &[f64]) -> f64 {
        if self.is_extended() {
            dot(row, self.normal(node))
        } else {
            row[self.nodes[node].feature as usize]
        }
    }

    /// Walks `L` rows (flat, `L · n_features` values) through `tree` for the tree's depth and
    /// adds their path values to `totals`. This is the reference walk: the kernel's walks
    /// must reach the same leaves.
    #[inline(always)]
    pub(crate) fn walk<const L: usize>(&self, tree: &Tree, rows: &[f64], totals: &mut [f64]) {
        if self.is_range_aware() {
            return self.walk_ranged::<L>(tree, rows, totals);
        }
        let width = self.n_features;
        let mut at = [tree.root as usize; L];
        if self.is_extended() {
            for _ in 0..tree.depth {
                for lane in 0..L {
                    let node = self.nodes[at[lane]];
                    let projection = dot(
                        &rows[lane * width..(lane + 1) * width],
                        self.normal(at[lane]),
                    );
                    at[lane] = node.left as usize + usize::from(projection >= node.split);
                }
            }
        } else {
            for _ in 0..tree.depth {
                for lane in 0..L {
                    let node = self.nodes[at[lane]];
                    let value = rows[lane * width + node.feature as usize];
                    at[lane] = node.left as usize + usize::from(value >= node.split);
                }
            }
        }
        for lane in 0..L {
            totals[lane] += self.path_value[at[lane]];
        }
    }

    /// [`walk`](Self::walk) with the range check: a row's path ends at the first split it is
    /// out of range of ([`Arena::out_of_range`]), and counts as that split's depth + 1.
    fn walk_ranged<const L: usize>(&self, tree: &Tree, rows: &[f64], totals: &mut [f64]) {
        let width = self.n_features;
        for lane in 0..L {
            let row = &rows[lane * width..(lane + 1) * width];
            let mut at = tree.root as usize;
            let mut ended = None;
            for depth in 0..tree.depth {
                let node = self.nodes[at];
                if node.is_leaf() {
                    break;
                }
                let value = self.split_value(at, row);
                if self.out_of_range(at, value) {
                    ended = Some(ended_path_length(depth));
                    break;
                }
                at = node.left as usize + usize::from(value >= node.split);
            }
            totals[lane] += ended.unwrap_or(self.path_value[at]);
        }
    }

    /// Whether the forest checks split ranges.
    pub(crate) fn is_range_aware(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Whether `value`, the split value of a row at internal node `node` of a range-aware
    /// forest, lies out of the node's range: farther from the split than the node's reach.
    pub(crate) fn out_of_range(&self, node: usize, value: f64) -> bool {
        let split = self.nodes[node].split;
        (value - split).abs() > f64::from(self.ranges[node].reach(split))
    }

    /// The nodes a row visits in `tree`, root first, ending at its leaf, or at the split the
    /// range check ends its path at (the explanations' reference walk, in their tests).
    #[cfg(test)]
    pub(crate) fn path<'a>(
        &'a self,
        tree: &Tree,
        row: &'a [f64],
    ) -> impl Iterator<Item = usize> + 'a {
        let mut at = Some(tree.root as usize);
        std::iter::from_fn(move || {
            let current = at?;
            let node = self.nodes[current];
            at = if node.is_leaf() {
                None
            } else {
                let value = self.split_value(current, row);
                let ends = self.is_range_aware() && self.out_of_range(current, value);
                (!ends).then(|| node.left as usize + usize::from(value >= node.split))
            };
            Some(current)
        })
    }

    /// Whether a row goes to the right child of internal node `node`.
    #[cfg(test)]
    pub(crate) fn goes_right(&self, node: usize, row: &[f64]) -> bool {
        self.split_value(node, row) >= self.nodes[node].split
    }

    /// A node's hyperplane coefficients, for explanations (extended forest only).
    pub(crate) fn coefficients(&self, node: usize) -> Option<&[f64]> {
        self.is_extended().then(|| self.normal(node))
    }

    /// Structural checks that make every walk safe: every index in bounds and pointing
    /// forward inside its own tree, every walk reaching a leaf within the tree's depth, every
    /// feature below the feature count, finite values.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let width = self.n_features;
        let count = self.nodes.len();
        if width == 0 {
            return Err("no features".into());
        }
        if self.trees.is_empty() {
            return Err("an empty forest".into());
        }
        if self.path_value.len() != count || self.node_size.len() != count {
            return Err("per-node arrays of different lengths".into());
        }
        if self.is_extended() && self.normals.len() != count * width {
            return Err("hyperplane coefficients do not match the nodes".into());
        }
        if self.is_range_aware() && self.ranges.len() != count {
            return Err("split ranges do not match the nodes".into());
        }
        // `!(min <= max)` also refuses NaN.
        if let Some(at) = self
            .ranges
            .iter()
            .position(|r| !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max))
        {
            return Err(format!(
                "node {at} has a split range that is not finite min ≤ max"
            ));
        }
        for (index, tree) in self.trees.iter().enumerate() {
            let start = tree.root as usize;
            let end = self
                .trees
                .get(index + 1)
                .map_or(count, |next| next.root as usize);
            let expected_start = if index == 0 {
                0
            } else {
                self.trees[index - 1].root as usize
            };
            if start >= end || start < expected_start || (index == 0 && start != 0) {
                return Err(format!("tree {index} has no nodes of its own"));
            }
            let mut deepest = 0;
            let mut visits = 0;
            let mut stack = vec![(start, 0u32)];
            while let Some((at, depth)) = stack.pop() {
                // A tree visits each of its nodes once; more means shared children (a graph
                // that could take exponential time to walk).
                visits += 1;
                if visits > end - start {
                    return Err(format!("tree {index} shares nodes"));
                }
                let node = self.nodes[at];
                if node.feature as usize >= width {
                    return Err(format!(
                        "node {at} splits on feature {} of {width}",
                        node.feature
                    ));
                }
                if node.is_leaf() {
                    if node.left as usize != at || !self.path_value[at].is_finite() {
                        return Err(format!("leaf {at} is malformed"));
                    }
                    deepest = deepest.max(depth);
                } else {
                    let left = node.left as usize;
                    if !node.split.is_finite() || left <= at || left + 1 >= end {
                        return Err(format!("node {at} has children out of place"));
                    }
                    if depth >= tree.depth {
                        return Err(format!("tree {index} is deeper than it says"));
                    }
                    stack.push((left, depth + 1));
                    stack.push((left + 1, depth + 1));
                }
            }
            if deepest != tree.depth {
                return Err(format!(
                    "tree {index} says depth {}, is {deepest}",
                    tree.depth
                ));
            }
        }
        if self.normals.iter().any(|c| !c.is_finite()) {
            return Err("a hyperplane coefficient is not finite".into());
        }
        Ok(())
    }
}

/// The dot product, added left to right (the order is part of the scores' bits).
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
