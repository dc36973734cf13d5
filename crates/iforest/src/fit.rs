//! Fitting: checks the training data, grows the trees into an arena (each from its own random
//! stream, on any number of threads), and assembles the model.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::arena::{average_path_length, dot, Arena, Node, SplitRange, Tree};
use crate::error::{FitError, ParamsError};
use crate::model::IsolationForest;
use crate::params::{
    resolve_threads, Contamination, IsolationForestParams, RangeCheck, SplitRule, ValidParams,
};
use crate::summary::summarise;

impl IsolationForestParams {
    /// Validates, then fits on flat row-major `data` of `n_features` columns.
    pub fn fit(self, data: &[f64], n_features: usize) -> Result<IsolationForest, FitError> {
        self.check()?.fit(data, n_features)
    }

    /// Validates, then fits on rows of equal length.
    pub fn fit_rows<R: AsRef<[f64]>>(self, rows: &[R]) -> Result<IsolationForest, FitError> {
        self.check()?.fit_rows(rows)
    }
}

impl ValidParams {
    /// Fits on flat row-major `data` of `n_features` columns.
    pub fn fit(&self, data: &[f64], n_features: usize) -> Result<IsolationForest, FitError> {
        fit(self, data, n_features)
    }

    /// Fits on rows of equal length.
    pub fn fit_rows<R: AsRef<[f64]>>(&self, rows: &[R]) -> Result<IsolationForest, FitError> {
        let n_features = rows.first().ok_or(FitError::EmptyData)?.as_ref().len();
        let mut data = Vec::with_capacity(rows.len() * n_features);
        for (row, values) in rows.iter().enumerate() {
            let values = values.as_ref();
            if values.len() != n_features {
                return Err(FitError::RaggedRow {
                    row,
                    expected: n_features,
                    found: values.len(),
                });
            }
            data.extend_from_slice(values);
        }
        self.fit(&data, n_features)
    }
}

/// Checks the data against the parameters, and returns the extended forest's extension
/// level (`None` for the axis-parallel forest).
fn check_data(
    params: &ValidParams,
    data: &[f64],
    n_features: usize,
) -> Result<Option<usize>, FitError> {
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
    if let Some(names) = params.feature_names() {
        if names.len() != n_features {
            return Err(FitError::FeatureNamesLength {
                names: names.len(),
                n_features,
            });
        }
    }
    match params.split_rule() {
        SplitRule::Axis => Ok(None),
        SplitRule::Extended { extension_level } => {
            let level = extension_level.unwrap_or(n_features - 1);
            if level >= n_features {
                return Err(ParamsError::ExtensionLevel { level, n_features }.into());
            }
            Ok(Some(level))
        }
    }
}

fn fit(params: &ValidParams, data: &[f64], n_features: usize) -> Result<IsolationForest, FitError> {
    let extension_level = check_data(params, data, n_features)?;
    let n_trees = params.n_trees();
    let rows = data.len() / n_features;
    let sample_size = params.sample_size().min(rows);
    // A tree of ψ samples has at most 2ψ − 1 nodes; all must be addressable by `u32`.
    let most_nodes = sample_size
        .checked_mul(2)
        .and_then(|nodes| nodes.checked_mul(n_trees));
    if most_nodes.is_none_or(|nodes| nodes > u32::MAX as usize) {
        return Err(FitError::TooLarge {
            n_trees,
            sample_size,
        });
    }
    let max_depth = params
        .max_depth()
        .unwrap_or_else(|| (sample_size as f64).log2().ceil() as usize);

    let build = |tree_index: usize| {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed());
        // A stream per tree: trees don't depend on each other, so any thread split gives
        // the same forest.
        rng.set_stream(tree_index as u64);
        let sample = index::sample(&mut rng, rows, sample_size).into_vec();
        let builder = TreeBuilder {
            data,
            n_features,
            max_depth,
            extension_level,
            range_aware: params.range_check() == RangeCheck::On,
        };
        builder.build(sample, &mut rng)
    };
    let threads = resolve_threads(params.threads()).min(n_trees);
    let local_trees: Vec<LocalTree> = if threads == 1 {
        (0..n_trees).map(build).collect()
    } else {
        let per_thread = n_trees.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n_trees)
                .step_by(per_thread)
                .map(|start| {
                    let end = (start + per_thread).min(n_trees);
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
    let mut forest = IsolationForest::assemble(
        stored_params,
        summarise(data, n_features),
        rows,
        sample_size,
        join(local_trees, n_features),
    );
    if let Contamination::Fraction(q) = params.contamination() {
        forest.set_threshold_from(data, 1.0 - q);
    }
    Ok(forest)
}

/// One tree as built, with indices local to it.
struct LocalTree {
    nodes: Vec<Node>,
    path_value: Vec<f64>,
    node_size: Vec<u32>,
    normals: Vec<f64>,
    ranges: Vec<SplitRange>,
    depth: u32,
}

/// The trees, one after another in one arena, their child indices moved to match.
fn join(local_trees: Vec<LocalTree>, n_features: usize) -> Arena {
    let mut arena = Arena {
        n_features,
        trees: Vec::with_capacity(local_trees.len()),
        nodes: Vec::new(),
        path_value: Vec::new(),
        node_size: Vec::new(),
        normals: Vec::new(),
        ranges: Vec::new(),
    };
    for tree in local_trees {
        let base = arena.nodes.len() as u32;
        arena.trees.push(Tree {
            root: base,
            depth: tree.depth,
        });
        arena.nodes.extend(tree.nodes.iter().map(|node| Node {
            left: node.left + base,
            ..*node
        }));
        arena.path_value.extend_from_slice(&tree.path_value);
        arena.node_size.extend_from_slice(&tree.node_size);
        arena.normals.extend_from_slice(&tree.normals);
        arena.ranges.extend_from_slice(&tree.ranges);
    }
    arena
}

struct TreeBuilder<'a> {
    data: &'a [f64],
    n_features: usize,
    max_depth: usize,
    extension_level: Option<usize>,
    /// Whether to keep each split's range (for the range check).
    range_aware: bool,
}

/// A leaf's range: no split, nothing to check.
const NO_RANGE: SplitRange = SplitRange { min: 0.0, max: 0.0 };

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
            nodes: vec![Node::leaf(0)],
            path_value: vec![0.0],
            node_size: vec![0],
            normals: vec![0.0; width],
            ranges: if self.range_aware {
                vec![NO_RANGE]
            } else {
                Vec::new()
            },
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
            let Some((feature, threshold, range)) = split else {
                tree.nodes[node] = Node::leaf(node as u32);
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
            if self.range_aware {
                tree.ranges[node] = range;
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
                tree.nodes.push(Node::leaf(0));
                tree.path_value.push(0.0);
                tree.node_size.push(0);
                tree.normals.extend(std::iter::repeat_n(0.0, width));
                if self.range_aware {
                    tree.ranges.push(NO_RANGE);
                }
            }
            stack.push((left + 1, start + middle, end, depth + 1));
            stack.push((left, start, start + middle, depth + 1));
        }
        tree
    }

    /// A random feature that varies in the node, a threshold uniform in its range, and the
    /// range; `None` when every feature is constant (as scikit-learn, features are drawn
    /// without replacement until one varies).
    fn axis_split(
        &self,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
        features: &mut [usize],
    ) -> Option<(usize, f64, SplitRange)> {
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
                return Some((feature, rng.random_range(min..max), SplitRange { min, max }));
            }
        }
        None
    }

    /// A random hyperplane: a normal of N(0, 1) coefficients on `level + 1` random features
    /// (the others zero), through a point uniform in the node's bounding box. Returns the
    /// intercept (point · normal) and, when the forest is range-aware, the range of the
    /// rows' projections (else `NO_RANGE`); `normal` holds the coefficients. `None` when
    /// the node's rows are all equal.
    fn hyperplane(
        &self,
        rows: &[usize],
        level: usize,
        rng: &mut ChaCha8Rng,
        features: &mut [usize],
        normal: &mut [f64],
    ) -> Option<(usize, f64, SplitRange)> {
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
        if !varies {
            return None;
        }
        let mut range = NO_RANGE;
        if self.range_aware {
            range = SplitRange {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            };
            for &row in rows {
                let projection = self.project(row, normal);
                range.min = range.min.min(projection);
                range.max = range.max.max(projection);
            }
        }
        Some((0, intercept, range))
    }

    fn project(&self, row: usize, normal: &[f64]) -> f64 {
        let values = &self.data[row * self.n_features..(row + 1) * self.n_features];
        dot(values, normal)
    }
}
