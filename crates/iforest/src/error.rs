//! Typed errors: one enum per stage, one variant per rule, so callers can match on the cause.

use std::path::PathBuf;

/// A hyper-parameter breaks a rule; found by [`crate::IsolationForestParams::check`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The forest needs at least one tree.
    #[error("the number of trees must be at least 1")]
    NTrees,
    /// Each tree needs at least one sample.
    #[error("the sample size must be at least 1")]
    SampleSize,
    /// A depth limit of zero would leave every tree a single leaf.
    #[error("the depth limit must be at least 1")]
    MaxDepth,
    /// Contamination must be `auto` or a fraction in (0, 0.5].
    #[error("contamination must be `auto` or a fraction in (0, 0.5], not {0}")]
    Contamination(f64),
    /// The extended forest's extension level must be below the number of features (checked
    /// by `check()` when feature names give that number, else at fit time).
    #[error("extension level {level} needs more than {n_features} features")]
    ExtensionLevel {
        /// Requested level.
        level: usize,
        /// Number of features.
        n_features: usize,
    },
    /// Feature names must be non-empty and distinct.
    #[error("feature name {index} ({name:?}) is empty or repeats an earlier one")]
    FeatureNames {
        /// Position of the offending name.
        index: usize,
        /// The name.
        name: String,
    },
}

/// Fitting failed: bad parameters or bad training data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// A hyper-parameter is invalid.
    #[error("invalid parameters")]
    InvalidParams(#[from] ParamsError),
    /// No rows to learn from.
    #[error("the training data is empty")]
    EmptyData,
    /// Rows with zero features.
    #[error("the training data has no features")]
    NoFeatures,
    /// A row's length differs from the first row's.
    #[error("row {row} has {found} values, the first row has {expected}")]
    RaggedRow {
        /// Index of the offending row.
        row: usize,
        /// Length of the first row.
        expected: usize,
        /// Length of this row.
        found: usize,
    },
    /// A flat buffer whose length is not a multiple of the feature count.
    #[error("{len} values cannot be split into rows of {n_features} features")]
    DataLength {
        /// Length of the buffer.
        len: usize,
        /// Declared feature count.
        n_features: usize,
    },
    /// NaN or an infinity in the data.
    #[error("row {row}, feature {feature} is not a finite number")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Feature index.
        feature: usize,
    },
    /// Feature names given, but not one per feature.
    #[error("{names} feature names for {n_features} features")]
    FeatureNamesLength {
        /// Number of names.
        names: usize,
        /// Number of features.
        n_features: usize,
    },
    /// The forest would have more nodes than its `u32` indices can address.
    #[error("{n_trees} trees of {sample_size} samples need more than 2^32 nodes")]
    TooLarge {
        /// Number of trees.
        n_trees: usize,
        /// Samples per tree.
        sample_size: usize,
    },
}

/// Scoring failed: the input does not fit the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// A row's length differs from the model's feature count.
    #[error("the row has {found} features, the model expects {expected}")]
    WrongFeatureCount {
        /// Model's feature count.
        expected: usize,
        /// Row's length.
        found: usize,
    },
    /// NaN or an infinity in the row.
    #[error("row {row}, feature {feature} is not a finite number")]
    NonFinite {
        /// Row index within the batch (0 for a single row).
        row: usize,
        /// Feature index.
        feature: usize,
    },
    /// A flat buffer whose length is not a multiple of the feature count.
    #[error("{len} values cannot be split into rows of {n_features} features")]
    DataLength {
        /// Length of the buffer.
        len: usize,
        /// Model's feature count.
        n_features: usize,
    },
    /// The output slice does not have one slot per row.
    #[error("output has room for {found} scores, the batch has {expected} rows")]
    OutputLength {
        /// Rows in the batch.
        expected: usize,
        /// Length of the output slice.
        found: usize,
    },
}

/// A model file (or buffer) cannot be used; each variant names the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The bytes do not start with the model file's magic bytes.
    #[error("not a model file (no iforest header)")]
    NotAModelFile,
    /// The file ends before the length its header announces.
    #[error("the model file is truncated")]
    Truncated,
    /// Written by a newer (or unknown) format version.
    #[error(
        "model format version {found} is not supported (this build reads versions 1 to {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// The newest version this build reads (it reads every version from 1 up to it).
        supported: u32,
    },
    /// The checksum does not match the contents: the file was damaged.
    #[error("the model file is damaged (checksum mismatch)")]
    ChecksumMismatch,
    /// The contents decode but are not a consistent forest.
    #[error("the model file is corrupt: {0}")]
    Corrupt(String),
    /// The model was trained on another number of features than the caller has.
    #[error("the model expects {expected} features, the data has {found}")]
    FeatureCount {
        /// Model's feature count.
        expected: usize,
        /// Caller's feature count.
        found: usize,
    },
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
