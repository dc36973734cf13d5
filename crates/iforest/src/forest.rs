//! The fitted forest as stored: flat node arrays, fitting, the training summary, and the
//! compact walk.
//!
//! All trees' nodes live in one `Vec<Node>`; an internal node's children are adjacent
//! (`left`, `left + 1`), so a node is 16 bytes and a step is `left + (x >= split)`. A leaf
//! points to itself with `split = +∞`, so a row can walk a tree for exactly the tree's depth
//! with no branch on "is this a leaf". Axis-parallel forests are scored through the
//! [`crate::kernel`] layout derived from these arrays; the compact walk here scores extended
//! and very deep forests (rows in lanes, side by side) and drives explanations.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::average_path_length;
use crate::error::{FitError, ModelError, ParamsError, ScoreError};
use crate::kernel::{reduce, Complete, BLOCK_ROWS, LANES};
use crate::params::{Contamination, SplitRule, ValidParams};

/// `split` of a leaf: no finite value reaches the right child, so the walk stays put.
pub(crate) const LEAF_SPLIT: f64 = f64::INFINITY;

/// Rows walked through a tree side by side by the compact walk (extended or deep forests).
const COMPACT_LANES: usize = 8;
/// Rows per block of the compact walk: every tree is applied to a block before the next block.
const COMPACT_BLOCK_ROWS: usize = 512;

/// One node. Internal: go to `left + 1` when the row's value (axis) or projection (extended)
/// is `>= split`, else to `left`. Leaf: `left` is the node itself and `split` is +∞.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub(crate) feature: u32,
    pub(crate) left: u32,
    pub(crate) split: f64,
}

/// Where a tree starts in the node array and how many steps reach any of its leaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) root: u32,
    pub(crate) depth: u32,
}

/// Summary of one training feature, kept in the model for drift checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std_dev: f64,
}

/// A fitted Isolation Forest. Scores are the paper's s(x, n) = 2^(−E[h(x)]/c(n)) in (0, 1],
/// higher = more anomalous; [`predict`](Self::predict) compares them with the threshold.
///
/// It is `Serialize` and `Deserialize` (the model file's body is its bincode encoding);
/// deserializing validates the forest, so a model from any source is safe to score.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredForest")]
pub struct IsolationForest {
    pub(crate) params: ValidParams,
    pub(crate) n_features: usize,
    pub(crate) threshold: f64,
    pub(crate) summary: Vec<FeatureSummary>,
    pub(crate) training_rows: usize,
    pub(crate) sample_size: usize,
    pub(crate) trees: Vec<Tree>,
    pub(crate) nodes: Vec<Node>,
    /// Per node: at a leaf, depth + c(samples in the leaf); 0 at internal nodes.
    pub(crate) path_value: Vec<f64>,
    /// Per node: training samples that reached it (for explanations).
    pub(crate) node_size: Vec<u32>,
    /// Extended forest only: `n_features` coefficients per node (zeros at leaves).
    pub(crate) normals: Vec<f64>,
    /// The scoring layout, derived from the fields above (never stored).
    #[serde(skip)]
    pub(crate) kernel: Option<Complete>,
}

/// The header fields and the forest's size (not its thousands of nodes).
impl std::fmt::Debug for IsolationForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationForest")
            .field("n_features", &self.n_features)
            .field("n_trees", &self.trees.len())
            .field("nodes", &self.nodes.len())
            .field("sample_size", &self.sample_size)
            .field("training_rows", &self.training_rows)
            .field("threshold", &self.threshold)
            .field("params", &self.params)
            .field("kernel", &self.kernel)
            .finish_non_exhaustive()
    }
}

/// The serialized fields of [`IsolationForest`], in the same order, before validation.
#[derive(Deserialize)]
pub(crate) struct StoredForest {
    params: ValidParams,
    n_features: usize,
    threshold: f64,
    summary: Vec<FeatureSummary>,
    training_rows: usize,
    sample_size: usize,
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    path_value: Vec<f64>,
    node_size: Vec<u32>,
    normals: Vec<f64>,
}

impl TryFrom<StoredForest> for IsolationForest {
    type Error = String;

    /// Validates the structure (see `validate`), then derives the scoring layout.
    fn try_from(stored: StoredForest) -> Result<Self, String> {
        let mut forest = IsolationForest {
            params: stored.params,
            n_features: stored.n_features,
            threshold: stored.threshold,
            summary: stored.summary,
            training_rows: stored.training_rows,
            sample_size: stored.sample_size,
            trees: stored.trees,
            nodes: stored.nodes,
            path_value: stored.path_value,
            node_size: stored.node_size,
            normals: stored.normals,
            kernel: None,
        };
        forest.validate()?;
        forest.kernel = Complete::build(&forest);
        Ok(forest)
    }
}

/// One tree as built, with indices local to it.
struct LocalTree {
    nodes: Vec<Node>,
    path_value: Vec<f64>,
    node_size: Vec<u32>,
    normals: Vec<f64>,
    depth: u32,
}

pub(crate) fn fit(
    params: &ValidParams,
    data: &[f64],
    n_features: usize,
) -> Result<IsolationForest, FitError> {
    if n_features == 0 {
        return Err(FitError::NoFeatures);
    }
    if data.is_empty() {
        return Err(FitError::EmptyData);
    }
    if !data.len().is_multiple_of(n_features) {
        return Err(FitError::DataLength {
            len: data.len(),
            n_features,
        });
    }
    if let Some(position) = data.iter().position(|value| !value.is_finite()) {
        return Err(FitError::NonFinite {
            row: position / n_features,
            feature: position % n_features,
        });
    }
    if let Some(names) = &params.feature_names {
        if names.len() != n_features {
            return Err(FitError::FeatureNamesLength {
                names: names.len(),
                n_features,
            });
        }
    }
    let extension_level = match params.split_rule {
        SplitRule::Axis => None,
        SplitRule::Extended { extension_level } => {
            let level = extension_level.unwrap_or(n_features - 1);
            if level >= n_features {
                return Err(ParamsError::ExtensionLevel { level, n_features }.into());
            }
            Some(level)
        }
    };
    let rows = data.len() / n_features;
    let sample_size = params.sample_size.min(rows);
    // A tree of ψ samples has at most 2ψ − 1 nodes; all must be addressable by `u32`.
    let most_nodes = sample_size
        .checked_mul(2)
        .and_then(|nodes| nodes.checked_mul(params.n_trees));
    if most_nodes.is_none_or(|nodes| nodes > u32::MAX as usize) {
        return Err(FitError::TooLarge {
            n_trees: params.n_trees,
            sample_size,
        });
    }
    let max_depth = params
        .max_depth
        .unwrap_or_else(|| (sample_size as f64).log2().ceil() as usize);

    let build = |tree_index: usize| {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        // A stream per tree: trees don't depend on each other, so any thread split gives
        // the same forest.
        rng.set_stream(tree_index as u64);
        let sample = index::sample(&mut rng, rows, sample_size).into_vec();
        let builder = TreeBuilder {
            data,
            n_features,
            max_depth,
            extension_level,
        };
        builder.build(sample, &mut rng)
    };
    let threads = resolve_threads(params.threads).min(params.n_trees);
    let local_trees: Vec<LocalTree> = if threads == 1 {
        (0..params.n_trees).map(build).collect()
    } else {
        let per_thread = params.n_trees.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..params.n_trees)
                .step_by(per_thread)
                .map(|start| {
                    let end = (start + per_thread).min(params.n_trees);
                    scope.spawn(move || (start..end).map(build).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };

    // Threads change how the work is spread, not the model: the stored parameters don't
    // record them, so the file is identical for any thread count.
    let mut stored_params = params.clone();
    stored_params.threads = 1;
    let mut forest = IsolationForest {
        params: stored_params,
        n_features,
        threshold: 0.5,
        summary: summarise(data, n_features),
        training_rows: rows,
        sample_size,
        trees: Vec::with_capacity(params.n_trees),
        nodes: Vec::new(),
        path_value: Vec::new(),
        node_size: Vec::new(),
        normals: Vec::new(),
        kernel: None,
    };
    for tree in local_trees {
        let base = forest.nodes.len() as u32;
        forest.trees.push(Tree {
            root: base,
            depth: tree.depth,
        });
        forest.nodes.extend(tree.nodes.iter().map(|node| Node {
            left: node.left + base,
            ..*node
        }));
        forest.path_value.extend_from_slice(&tree.path_value);
        forest.node_size.extend_from_slice(&tree.node_size);
        forest.normals.extend_from_slice(&tree.normals);
    }
    forest.kernel = Complete::build(&forest);
    if let Contamination::Fraction(q) = params.contamination {
        let mut scores = vec![0.0; rows];
        forest.score_unchecked(data, &mut scores);
        forest.threshold = quantile(&mut scores, 1.0 - q);
    }
    Ok(forest)
}

/// The `q` quantile with linear interpolation between order statistics (numpy's default).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let position = q * (values.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    values[below] + (values[above] - values[below]) * weight
}

/// Min, max, mean and (population) standard deviation of each feature, in two passes over
/// the data: sums, minima and maxima, then squared deviations from the mean.
///
/// Each pass walks the flat data in stripes of `n_features · k ≥ 64` values with one
/// accumulator per position, which the compiler vectorises, and folds the stripes' positions
/// into features at the end (a strided walk per feature was most of a large table's fit time).
fn summarise(data: &[f64], n_features: usize) -> Vec<FeatureSummary> {
    let rows = (data.len() / n_features) as f64;
    let stripe = n_features * 64usize.div_ceil(n_features);
    let mut sum = vec![0.0; stripe];
    let mut min = vec![f64::INFINITY; stripe];
    let mut max = vec![f64::NEG_INFINITY; stripe];
    let mut stripes = data.chunks_exact(stripe);
    for values in &mut stripes {
        for (((sum, min), max), &value) in sum.iter_mut().zip(&mut min).zip(&mut max).zip(values) {
            *sum += value;
            *min = min.min(value);
            *max = max.max(value);
        }
    }
    for (((sum, min), max), &value) in sum
        .iter_mut()
        .zip(&mut min)
        .zip(&mut max)
        .zip(stripes.remainder())
    {
        *sum += value;
        *min = min.min(value);
        *max = max.max(value);
    }
    let by_feature = |values: &[f64], fold: fn(f64, f64) -> f64, start: f64| -> Vec<f64> {
        let mut out = vec![start; n_features];
        for (position, &value) in values.iter().enumerate() {
            out[position % n_features] = fold(out[position % n_features], value);
        }
        out
    };
    let mean: Vec<f64> = by_feature(&sum, |a, b| a + b, 0.0)
        .into_iter()
        .map(|total| total / rows)
        .collect();
    let min = by_feature(&min, f64::min, f64::INFINITY);
    let max = by_feature(&max, f64::max, f64::NEG_INFINITY);
    let centre: Vec<f64> = (0..stripe)
        .map(|position| mean[position % n_features])
        .collect();
    let mut squares = vec![0.0; stripe];
    let mut stripes = data.chunks_exact(stripe);
    for values in &mut stripes {
        for ((square, centre), &value) in squares.iter_mut().zip(&centre).zip(values) {
            *square += (value - centre) * (value - centre);
        }
    }
    for ((square, centre), &value) in squares.iter_mut().zip(&centre).zip(stripes.remainder()) {
        *square += (value - centre) * (value - centre);
    }
    let squares = by_feature(&squares, |a, b| a + b, 0.0);
    (0..n_features)
        .map(|feature| FeatureSummary {
            min: min[feature],
            max: max[feature],
            mean: mean[feature],
            std_dev: (squares[feature] / rows).sqrt(),
        })
        .collect()
}

struct TreeBuilder<'a> {
    data: &'a [f64],
    n_features: usize,
    max_depth: usize,
    extension_level: Option<usize>,
}

impl TreeBuilder<'_> {
    fn value(&self, row: usize, feature: usize) -> f64 {
        self.data[row * self.n_features + feature]
    }

    /// Builds depth-first with an explicit stack (a deep tree cannot overflow the call stack);
    /// children are allocated as adjacent pairs.
    fn build(&self, mut sample: Vec<usize>, rng: &mut ChaCha8Rng) -> LocalTree {
        let width = if self.extension_level.is_some() {
            self.n_features
        } else {
            0
        };
        let mut tree = LocalTree {
            nodes: vec![leaf(0)],
            path_value: vec![0.0],
            node_size: vec![0],
            normals: vec![0.0; width],
            depth: 0,
        };
        let mut features: Vec<usize> = (0..self.n_features).collect();
        let mut normal = vec![0.0; self.n_features];
        let mut stack = vec![(0usize, 0usize, sample.len(), 0usize)];
        while let Some((node, start, end, depth)) = stack.pop() {
            let rows = &mut sample[start..end];
            tree.node_size[node] = rows.len() as u32;
            tree.depth = tree.depth.max(depth as u32);
            let split = if depth >= self.max_depth || rows.len() <= 1 {
                None
            } else if let Some(level) = self.extension_level {
                self.hyperplane(rows, level, rng, &mut features, &mut normal)
            } else {
                self.axis_split(rows, rng, &mut features)
            };
            let Some((feature, threshold)) = split else {
                tree.nodes[node] = leaf(node as u32);
                tree.path_value[node] = depth as f64 + average_path_length(rows.len());
                continue;
            };
            // Partition: rows going left first.
            let mut middle = 0;
            for i in 0..rows.len() {
                let goes_right = match self.extension_level {
                    None => self.value(rows[i], feature) >= threshold,
                    Some(_) => self.project(rows[i], &normal) >= threshold,
                };
                if !goes_right {
                    rows.swap(i, middle);
                    middle += 1;
                }
            }
            let left = tree.nodes.len();
            tree.nodes[node] = Node {
                feature: feature as u32,
                left: left as u32,
                split: threshold,
            };
            if width > 0 {
                tree.normals[node * width..(node + 1) * width].copy_from_slice(&normal);
            }
            for _ in 0..2 {
                tree.nodes.push(leaf(0));
                tree.path_value.push(0.0);
                tree.node_size.push(0);
                tree.normals.extend(std::iter::repeat_n(0.0, width));
            }
            stack.push((left + 1, start + middle, end, depth + 1));
            stack.push((left, start, start + middle, depth + 1));
        }
        tree
    }

    /// A random feature that varies in the node, and a threshold uniform in its range; `None`
    /// when every feature is constant (as scikit-learn, features are drawn without
    /// replacement until one varies).
    fn axis_split(
        &self,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
        features: &mut [usize],
    ) -> Option<(usize, f64)> {
        for drawn in 0..features.len() {
            let pick = rng.random_range(drawn..features.len());
            features.swap(drawn, pick);
            let feature = features[drawn];
            let (min, max) =
                rows.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                        let value = self.value(r, feature);
                        (lo.min(value), hi.max(value))
                    });
            if max > min {
                return Some((feature, rng.random_range(min..max)));
            }
        }
        None
    }

    /// A random hyperplane: a normal of N(0, 1) coefficients on `level + 1` random features
    /// (the others zero), through a point uniform in the node's bounding box. Returns the
    /// intercept (point · normal); `normal` holds the coefficients. `None` when the node's
    /// rows are all equal.
    fn hyperplane(
        &self,
        rows: &[usize],
        level: usize,
        rng: &mut ChaCha8Rng,
        features: &mut [usize],
        normal: &mut [f64],
    ) -> Option<(usize, f64)> {
        let mut varies = false;
        let mut intercept = 0.0;
        normal.fill(0.0);
        for drawn in 0..=level {
            let pick = rng.random_range(drawn..features.len());
            features.swap(drawn, pick);
            normal[features[drawn]] = rng.sample(StandardNormal);
        }
        for (feature, coefficient) in normal.iter().enumerate() {
            let (min, max) =
                rows.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                        let value = self.value(r, feature);
                        (lo.min(value), hi.max(value))
                    });
            varies |= max > min;
            let point = if max > min {
                rng.random_range(min..max)
            } else {
                min
            };
            intercept += point * coefficient;
        }
        varies.then_some((0, intercept))
    }

    fn project(&self, row: usize, normal: &[f64]) -> f64 {
        let values = &self.data[row * self.n_features..(row + 1) * self.n_features];
        dot(values, normal)
    }
}

fn leaf(index: u32) -> Node {
    Node {
        feature: 0,
        left: index,
        split: LEAF_SPLIT,
    }
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl IsolationForest {
    /// Number of features the model was trained on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Feature names, when they were given at fit time.
    pub fn feature_names(&self) -> Option<&[String]> {
        self.params.feature_names()
    }

    /// Scores above this are anomalies.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The validated parameters the model was fitted with.
    pub fn params(&self) -> &ValidParams {
        &self.params
    }

    /// Per-feature summary of the training data (min, max, mean, standard deviation).
    pub fn summary(&self) -> &[FeatureSummary] {
        &self.summary
    }

    /// Rows in the training data.
    pub fn training_rows(&self) -> usize {
        self.training_rows
    }

    /// Samples per tree actually used (the asked size capped at the row count).
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// Returns an error unless the model takes `n` features.
    pub fn check_feature_count(&self, n: usize) -> Result<(), ModelError> {
        if n == self.n_features {
            Ok(())
        } else {
            Err(ModelError::FeatureCount {
                expected: self.n_features,
                found: n,
            })
        }
    }

    /// Anomaly score of one row; allocates nothing.
    pub fn score(&self, row: &[f64]) -> Result<f64, ScoreError> {
        if row.len() != self.n_features {
            return Err(ScoreError::WrongFeatureCount {
                expected: self.n_features,
                found: row.len(),
            });
        }
        check_finite(row, self.n_features)?;
        if let Some(kernel) = &self.kernel {
            let mut sum = [0.0; LANES];
            kernel.accumulate_row(row, &mut sum);
            return Ok(self.score_from_total(reduce(&sum)));
        }
        let mut total = [0.0];
        for tree in &self.trees {
            self.walk::<1>(tree, row, &mut total);
        }
        Ok(self.score_from_total(total[0]))
    }

    /// True when the row's score is above the threshold (strictly, as scikit-learn).
    pub fn predict(&self, row: &[f64]) -> Result<bool, ScoreError> {
        Ok(self.score(row)? > self.threshold)
    }

    /// Scores of many rows given flat, row-major (`len` a multiple of the feature count).
    pub fn score_batch(&self, data: &[f64]) -> Result<Vec<f64>, ScoreError> {
        let mut scores = vec![0.0; data.len() / self.n_features.max(1)];
        self.score_batch_into(data, &mut scores)?;
        Ok(scores)
    }

    /// [`score_batch_into`](Self::score_batch_into) on `threads` threads (0 = all cores),
    /// each scoring a contiguous share of the rows. The scores are identical to one thread's.
    pub fn score_batch_into_parallel(
        &self,
        data: &[f64],
        out: &mut [f64],
        threads: usize,
    ) -> Result<(), ScoreError> {
        let threads = resolve_threads(threads);
        let share = out.len().div_ceil(threads).max(BLOCK_ROWS);
        if threads == 1 || out.len() <= share {
            return self.score_batch_into(data, out);
        }
        self.check_batch(data, out)?;
        std::thread::scope(|scope| {
            for (rows, scores) in data
                .chunks(share * self.n_features)
                .zip(out.chunks_mut(share))
            {
                scope.spawn(move || self.score_unchecked(rows, scores));
            }
        });
        Ok(())
    }

    /// [`score_batch`](Self::score_batch) into a caller's buffer, one slot per row.
    pub fn score_batch_into(&self, data: &[f64], out: &mut [f64]) -> Result<(), ScoreError> {
        self.check_batch(data, out)?;
        self.score_unchecked(data, out);
        Ok(())
    }

    /// The batch checks: whole rows, one output slot per row, finite values.
    fn check_batch(&self, data: &[f64], out: &[f64]) -> Result<(), ScoreError> {
        if !data.len().is_multiple_of(self.n_features) {
            return Err(ScoreError::DataLength {
                len: data.len(),
                n_features: self.n_features,
            });
        }
        let rows = data.len() / self.n_features;
        if out.len() != rows {
            return Err(ScoreError::OutputLength {
                expected: rows,
                found: out.len(),
            });
        }
        check_finite(data, self.n_features)
    }

    /// Scores validated rows: blocks of rows, every tree over a block, lanes of rows through
    /// each tree side by side.
    pub(crate) fn score_unchecked(&self, data: &[f64], out: &mut [f64]) {
        let width = self.n_features;
        if let Some(kernel) = &self.kernel {
            let mut sums = [[0.0; LANES]; BLOCK_ROWS];
            for (block, scores) in data
                .chunks(BLOCK_ROWS * width)
                .zip(out.chunks_mut(BLOCK_ROWS))
            {
                let sums = &mut sums[..scores.len()];
                sums.fill([0.0; LANES]);
                kernel.accumulate(block, sums);
                for (score, sums) in scores.iter_mut().zip(sums.iter()) {
                    *score = self.score_from_total(reduce(sums));
                }
            }
            return;
        }
        for (block, totals) in data
            .chunks(COMPACT_BLOCK_ROWS * width)
            .zip(out.chunks_mut(COMPACT_BLOCK_ROWS))
        {
            totals.fill(0.0);
            for tree in &self.trees {
                let mut lanes = block.chunks_exact(COMPACT_LANES * width);
                let mut lane_totals = totals.chunks_exact_mut(COMPACT_LANES);
                for (rows, sums) in (&mut lanes).zip(&mut lane_totals) {
                    self.walk::<COMPACT_LANES>(tree, rows, sums);
                }
                let rest = lanes.remainder();
                for (row, sum) in rest.chunks_exact(width).zip(lane_totals.into_remainder()) {
                    self.walk::<1>(tree, row, std::slice::from_mut(sum));
                }
            }
            for total in totals.iter_mut() {
                *total = self.score_from_total(*total);
            }
        }
    }

    /// Walks `L` rows through `tree` for the tree's depth and adds their path values to
    /// `totals`.
    #[inline(always)]
    pub(crate) fn walk<const L: usize>(&self, tree: &Tree, rows: &[f64], totals: &mut [f64]) {
        let width = self.n_features;
        let mut at = [tree.root as usize; L];
        if self.normals.is_empty() {
            for _ in 0..tree.depth {
                for lane in 0..L {
                    let node = self.nodes[at[lane]];
                    let value = rows[lane * width + node.feature as usize];
                    at[lane] = node.left as usize + usize::from(value >= node.split);
                }
            }
        } else {
            for _ in 0..tree.depth {
                for lane in 0..L {
                    let node = self.nodes[at[lane]];
                    let normal = &self.normals[at[lane] * width..(at[lane] + 1) * width];
                    let projection = dot(&rows[lane * width..(lane + 1) * width], normal);
                    at[lane] = node.left as usize + usize::from(projection >= node.split);
                }
            }
        }
        for lane in 0..L {
            totals[lane] += self.path_value[at[lane]];
        }
    }

    fn score_from_total(&self, total: f64) -> f64 {
        let mean_path = total / self.trees.len() as f64;
        let normaliser = average_path_length(self.sample_size);
        // c(1) = 0: a forest of one-sample trees cannot rank; every row scores 1.
        let normaliser = if normaliser > 0.0 { normaliser } else { 1.0 };
        (-mean_path / normaliser).exp2()
    }

    /// The nodes a row visits in `tree`, root first, ending at its leaf.
    pub(crate) fn path<'a>(
        &'a self,
        tree: &Tree,
        row: &'a [f64],
    ) -> impl Iterator<Item = usize> + 'a {
        let width = self.n_features;
        let mut at = Some(tree.root as usize);
        std::iter::from_fn(move || {
            let current = at?;
            let node = self.nodes[current];
            at = if node.split == LEAF_SPLIT {
                None
            } else {
                let value = if self.normals.is_empty() {
                    row[node.feature as usize]
                } else {
                    dot(row, &self.normals[current * width..(current + 1) * width])
                };
                Some(node.left as usize + usize::from(value >= node.split))
            };
            Some(current)
        })
    }
}

/// A thread count where 0 means all cores.
fn resolve_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

fn check_finite(data: &[f64], n_features: usize) -> Result<(), ScoreError> {
    match data.iter().position(|value| !value.is_finite()) {
        Some(position) => Err(ScoreError::NonFinite {
            row: position / n_features,
            feature: position % n_features,
        }),
        None => Ok(()),
    }
}
