//! Shared by the examples: reading the ODDS tables and the synthetic two-cluster data.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// A table of features (flat, row-major) and 0/1 labels (1 = anomaly).
pub struct Table {
    /// Name, from the file stem.
    pub name: String,
    /// Flat, row-major features.
    pub data: Vec<f64>,
    /// Columns per row.
    pub n_features: usize,
    /// One label per row, when the table has a `label` column.
    pub labels: Vec<bool>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.n_features
    }
}

/// Reads `f0,…,fN,label` CSV (header line first).
pub fn read_table(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("{}: empty", path.display()))?
        .split(',')
        .collect();
    let label_column = header.iter().position(|h| h.trim() == "label");
    let n_features = header.len() - usize::from(label_column.is_some());
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for (number, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        for (column, field) in line.split(',').enumerate() {
            let value: f64 = field
                .trim()
                .parse()
                .map_err(|_| format!("{}:{}: bad number {field:?}", path.display(), number + 2))?;
            if Some(column) == label_column {
                labels.push(value != 0.0);
            } else {
                data.push(value);
            }
        }
    }
    Ok(Table {
        name: path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        data,
        n_features,
        labels,
    })
}

/// The original pipeline's training data: two clusters of 500 points, 0.3·N(0, 1) around
/// (2, 2) and (−2, −2).
pub fn two_clusters() -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut data = Vec::with_capacity(2000);
    for centre in [2.0, -2.0] {
        for _ in 0..1000 {
            let noise: f64 = rng.sample(StandardNormal);
            data.push(centre + 0.3 * noise);
        }
    }
    Table {
        name: "synthetic-2d".into(),
        data,
        n_features: 2,
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

/// ROC AUC by the rank-sum (Mann–Whitney) formula, ties given their average rank.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_positive = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..end (1-based start+1..=end) share their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            if labels[index] {
                rank_sum_positive += mean_rank;
            }
        }
        start = end;
    }
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    (rank_sum_positive - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}
