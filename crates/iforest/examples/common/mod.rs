//! Shared by the examples: the ODDS tables and the synthetic two-cluster data, read through
//! the `dataset` crate (the one CSV reader and the one ROC AUC of the workspace).

use std::path::{Path, PathBuf};

/// A table of features (flat, row-major) and 0/1 labels (1 = anomaly).
pub struct Table {
    /// Name, from the file stem.
    pub name: String,
    /// Flat, row-major features.
    pub data: Vec<f64>,
    /// Columns per row.
    pub n_features: usize,
    /// One label per row, when the table has a `label` column.
    pub labels: Vec<u8>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.n_features
    }
}

/// Reads `f0,…,fN,label` CSV (header line first); without a `label` column, no labels.
pub fn read_table(path: &Path) -> Result<Table, String> {
    let labelled = dataset::CsvSelection {
        label_column: Some("label"),
        columns: None,
    };
    let table = dataset::read_csv(path, &labelled)
        .or_else(|_| dataset::read_csv(path, &dataset::CsvSelection::default()))
        .map_err(|error| error.to_string())?;
    Ok(Table {
        name: path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        n_features: table.n_features(),
        labels: table.labels.unwrap_or_default(),
        data: table.data,
    })
}

/// The original pipeline's training data: two clusters of 500 points, 0.3·N(0, 1) around
/// (2, 2) and (−2, −2), rounded to 3 decimals.
pub fn two_clusters() -> Table {
    let table = dataset::synthetic_training_data(42);
    Table {
        name: "synthetic-2d".into(),
        n_features: table.n_features(),
        data: table.data,
        labels: Vec::new(),
    }
}

/// The ODDS folder: the first argument, else the environment variable `ODDS_DIR`, else
/// `bench/data/odds` in the repository (where `bench/fetch-data.sh` puts the tables).
pub fn odds_dir(argument: Option<String>) -> PathBuf {
    argument
        .or_else(|| std::env::var("ODDS_DIR").ok().filter(|dir| !dir.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/data/odds"))
}

/// ROC AUC (ties given their average rank); NaN with a single class.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> f64 {
    dataset::roc_auc(scores, labels).unwrap_or(f64::NAN)
}
