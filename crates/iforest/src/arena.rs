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

    /// The nodes a row visits in `tree`, root first, ending at its leaf.
    pub(crate) fn path<'a>(
        &'a self,
        tree: &Tree,
        row: &'a [f64],
    ) -> impl Iterator<Item = usize> + 'a {
        let mut at = Some(tree.root as usize);
        std::iter::from_fn(move || {
            let current = at?;
            let node = self.nodes[current];
            at = (!node.is_leaf()).then(|| {
                node.left as usize + usize::from(self.split_value(current, row) >= node.split)
            });
            Some(current)
        })
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
