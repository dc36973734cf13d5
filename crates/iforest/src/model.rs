//! The fitted model, [`IsolationForest`]: what it knows, and scoring.
//!
//! Axis-parallel forests are scored through the [`crate::kernel`] layout derived from the
//! arena; extended and very deep forests walk the arena itself (rows in lanes, side by side).
//! Every path adds the trees' path values in the same order, so a row's score has the same
//! bits however it is scored.

use std::collections::BTreeMap;

use crate::arena::{average_path_length, Arena};
use crate::error::{ModelError, ScoreError};
use crate::kernel::{reduce, Complete, BLOCK_ROWS, LANES};
use crate::params::{resolve_threads, RangeCheck, SplitRule, ValidParams};
use crate::summary::FeatureSummary;

/// Rows walked through a tree side by side by the arena walk (extended or deep forests).
const ARENA_LANES: usize = 8;
/// Rows per block of the arena walk: every tree is applied to a block before the next block.
const ARENA_BLOCK_ROWS: usize = 512;

/// A fitted Isolation Forest. Scores are the paper's s(x, n) = 2^(−E[h(x)]/c(n)) in (0, 1],
/// higher = more anomalous; [`predict`](Self::predict) compares them with the threshold.
///
/// It is `Serialize` and `Deserialize` (the model file's body is its bincode encoding);
/// deserializing validates the forest, so a model from any source is safe to score.
#[derive(Clone, PartialEq)]
pub struct IsolationForest {
    pub(crate) params: ValidParams,
    pub(crate) threshold: f64,
    pub(crate) summary: Vec<FeatureSummary>,
    pub(crate) training_rows: usize,
    pub(crate) sample_size: usize,
    pub(crate) arena: Arena,
    /// Free-form entries stored with the model (see [`IsolationForest::metadata`]).
    pub(crate) metadata: BTreeMap<String, String>,
    /// The scoring layout, derived from the arena (never stored).
    pub(crate) kernel: Option<Complete>,
}

/// The header fields and the forest's size (not its thousands of nodes).
impl std::fmt::Debug for IsolationForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationForest")
            .field("n_features", &self.arena.n_features)
            .field("n_trees", &self.arena.trees.len())
            .field("nodes", &self.arena.nodes.len())
            .field("sample_size", &self.sample_size)
            .field("training_rows", &self.training_rows)
            .field("threshold", &self.threshold)
            .field("params", &self.params)
            .field("metadata", &self.metadata.keys().collect::<Vec<_>>())
            .field("kernel", &self.kernel)
            .finish_non_exhaustive()
    }
}

impl IsolationForest {
    /// A model of these parts, fitted here, its scoring layout derived; the threshold is 0.5
    /// until [`set_threshold_from`](Self::set_threshold_from) sets it.
    pub(crate) fn assemble(
        params: ValidParams,
        summary: Vec<FeatureSummary>,
        training_rows: usize,
        sample_size: usize,
        arena: Arena,
    ) -> Self {
        let kernel = Complete::build(&arena);
        IsolationForest {
            params,
            threshold: 0.5,
            summary,
            training_rows,
            sample_size,
            arena,
            metadata: BTreeMap::new(),
            kernel,
        }
    }

    /// A model of parts read from outside (a file): validated (see `validate`) before its
    /// scoring layout is derived, since the layout relies on a sound arena.
    pub(crate) fn checked(
        params: ValidParams,
        threshold: f64,
        summary: Vec<FeatureSummary>,
        training_rows: usize,
        sample_size: usize,
        arena: Arena,
        metadata: BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut model = IsolationForest {
            params,
            threshold,
            summary,
            training_rows,
            sample_size,
            arena,
            metadata,
            kernel: None,
        };
        model.validate()?;
        model.kernel = Complete::build(&model.arena);
        Ok(model)
    }

    /// Sets the threshold to the `q` quantile of the scores of `data` (checked rows).
    pub(crate) fn set_threshold_from(&mut self, data: &[f64], q: f64) {
        let mut scores = vec![0.0; data.len() / self.arena.n_features];
        self.score_unchecked(data, &mut scores);
        self.threshold = quantile(&mut scores, q);
    }

    /// Number of features the model was trained on.
    pub fn n_features(&self) -> usize {
        self.arena.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.arena.trees.len()
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

    /// Per-feature summary of the training data (min, max, mean, standard deviation), as
    /// [`summarise`](crate::summarise) computes it.
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

    /// Free-form entries stored with the model, in key order: what the caller wants to keep
    /// beside the forest (the specification of named features as JSON under `"features"`,
    /// a data source, a version). Empty for a fitted model until set; saved and loaded with
    /// it; part of the file, so of [`model_id`](crate::model_id).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Sets a metadata entry, returning the value it replaces.
    pub fn set_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Option<String> {
        self.metadata.insert(key.into(), value.into())
    }

    /// [`set_metadata`](Self::set_metadata), by value: `model.with_metadata("features", spec)`.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_metadata(key, value);
        self
    }

    /// Removes a metadata entry, returning its value.
    pub fn remove_metadata(&mut self, key: &str) -> Option<String> {
        self.metadata.remove(key)
    }

    /// Returns an error unless the model takes `n` features.
    pub fn check_feature_count(&self, n: usize) -> Result<(), ModelError> {
        if n == self.arena.n_features {
            Ok(())
        } else {
            Err(ModelError::FeatureCount {
                expected: self.arena.n_features,
                found: n,
            })
        }
    }

    /// Anomaly score of one row; allocates nothing.
    pub fn score(&self, row: &[f64]) -> Result<f64, ScoreError> {
        let width = self.arena.n_features;
        if row.len() != width {
            return Err(ScoreError::WrongFeatureCount {
                expected: width,
                found: row.len(),
            });
        }
        check_finite(row, width)?;
        if let Some(kernel) = &self.kernel {
            let mut sum = [0.0; LANES];
            kernel.accumulate_row(row, &mut sum);
            return Ok(self.score_from_total(reduce(&sum)));
        }
        let mut total = [0.0];
        for tree in &self.arena.trees {
            self.arena.walk::<1>(tree, row, &mut total);
        }
        Ok(self.score_from_total(total[0]))
    }

    /// True when the row's score is above the threshold (strictly, as scikit-learn).
    pub fn predict(&self, row: &[f64]) -> Result<bool, ScoreError> {
        Ok(self.score(row)? > self.threshold)
    }

    /// Scores of many rows given flat, row-major (`len` a multiple of the feature count).
    pub fn score_batch(&self, data: &[f64]) -> Result<Vec<f64>, ScoreError> {
        let mut scores = vec![0.0; data.len() / self.arena.n_features.max(1)];
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
                .chunks(share * self.arena.n_features)
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
        let width = self.arena.n_features;
        if !data.len().is_multiple_of(width) {
            return Err(ScoreError::DataLength {
                len: data.len(),
                n_features: width,
            });
        }
        let rows = data.len() / width;
        if out.len() != rows {
            return Err(ScoreError::OutputLength {
                expected: rows,
                found: out.len(),
            });
        }
        check_finite(data, width)
    }

    /// Scores checked rows: blocks of rows, every tree over a block, lanes of rows through
    /// each tree side by side.
    fn score_unchecked(&self, data: &[f64], out: &mut [f64]) {
        let width = self.arena.n_features;
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
            .chunks(ARENA_BLOCK_ROWS * width)
            .zip(out.chunks_mut(ARENA_BLOCK_ROWS))
        {
            totals.fill(0.0);
            for tree in &self.arena.trees {
                let mut lanes = block.chunks_exact(ARENA_LANES * width);
                let mut lane_totals = totals.chunks_exact_mut(ARENA_LANES);
                for (rows, sums) in (&mut lanes).zip(&mut lane_totals) {
                    self.arena.walk::<ARENA_LANES>(tree, rows, sums);
                }
                let rest = lanes.remainder();
                for (row, sum) in rest.chunks_exact(width).zip(lane_totals.into_remainder()) {
                    self.arena.walk::<1>(tree, row, std::slice::from_mut(sum));
                }
            }
            for total in totals.iter_mut() {
                *total = self.score_from_total(*total);
            }
        }
    }

    /// The score of a row whose path values over all trees add up to `total`:
    /// `2^(−mean path / c(ψ))`.
    fn score_from_total(&self, total: f64) -> f64 {
        let mean_path = total / self.arena.trees.len() as f64;
        let normaliser = average_path_length(self.sample_size);
        // c(1) = 0: a forest of one-sample trees cannot rank; every row scores 1.
        let normaliser = if normaliser > 0.0 { normaliser } else { 1.0 };
        (-mean_path / normaliser).exp2()
    }

    /// The checks of a model from outside (a file): the parameters follow their rules and
    /// agree with the trees, the counts are consistent, then the arena's structure.
    fn validate(&self) -> Result<(), String> {
        let width = self.arena.n_features;
        if self.summary.len() != width {
            return Err(format!(
                "{} feature summaries for {width} features",
                self.summary.len()
            ));
        }
        self.params
            .recheck()
            .map_err(|error| format!("invalid parameters: {error}"))?;
        if self.params.n_trees() != self.arena.trees.len() {
            return Err(format!(
                "{} trees, the parameters say {}",
                self.arena.trees.len(),
                self.params.n_trees()
            ));
        }
        if self.sample_size > self.params.sample_size() || self.sample_size > self.training_rows {
            return Err(format!(
                "sample size {} is above the one asked ({}) or the training rows ({})",
                self.sample_size,
                self.params.sample_size(),
                self.training_rows
            ));
        }
        if let Some(names) = self.params.feature_names() {
            if names.len() != width {
                return Err(format!(
                    "{} feature names for {width} features",
                    names.len()
                ));
            }
        }
        if !self.threshold.is_finite() {
            return Err("the threshold is not finite".into());
        }
        if self.sample_size == 0 {
            return Err("an empty forest".into());
        }
        let extended = matches!(self.params.split_rule(), SplitRule::Extended { .. });
        if extended != self.arena.is_extended() {
            return Err("the split rule does not match the nodes".into());
        }
        if (self.params.range_check() == RangeCheck::On) != self.arena.is_range_aware() {
            return Err("the range check does not match the nodes".into());
        }
        self.arena.validate()
    }
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

fn check_finite(data: &[f64], n_features: usize) -> Result<(), ScoreError> {
    match data.iter().position(|value| !value.is_finite()) {
        Some(position) => Err(ScoreError::NonFinite {
            row: position / n_features,
            feature: position % n_features,
        }),
        None => Ok(()),
    }
}
