//! The `--model` file as the page uses it: loaded, its id, reread when it changes, and for
//! a 2-feature model the score contour the page draws under the latest points (bands of
//! score and the threshold line, computed once per model with `plot`'s grid code).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use iforest::IsolationForest;
use serde::Serialize;

use super::page::ModelFileView;
use crate::plot::grid::{band_runs, contour_segments, plane, score_grid};
use crate::plot::Points;

/// Grid nodes per axis of the contour (enough for a smooth picture at page size).
const GRID: usize = 64;
/// Colour bands of the contour.
const BANDS: usize = 10;

/// A model file as read.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model.
    pub forest: IsolationForest,
    /// Its id, as detectors name it.
    pub id: String,
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    loaded_ms: i64,
    /// `/api/model`'s JSON: the model and, for 2 features, its contour.
    pub drawing: Bytes,
}

/// The contour of a 2-feature model, in the plane's coordinates.
#[derive(Debug, Serialize)]
struct Contour {
    /// The plane drawn: `[x0, x1]` and `[y0, y1]`.
    x: [f64; 2],
    y: [f64; 2],
    /// Grid nodes per axis; node `(i, j)` at `x0 + i·dx`, `y0 + j·dy`.
    grid: usize,
    /// Score range over the grid.
    low: f64,
    high: f64,
    bands: usize,
    /// Runs of equal band along grid rows: `[row, first column, last column, band]`.
    runs: Vec<[usize; 4]>,
    /// The threshold line as segments `[x0, y0, x1, y1]`.
    threshold: Vec<[f64; 4]>,
}

#[derive(Debug, Serialize)]
struct Drawing<'a> {
    id: &'a str,
    threshold: f64,
    features: Vec<String>,
    contour: Option<Contour>,
}

impl LoadedModel {
    /// Reads and checks the model at `path`, and draws its contour (2 features).
    pub fn load(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read the model {}", path.display()))?;
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the model {}", path.display()))?;
        let forest = IsolationForest::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable model", path.display()))?;
        let id = iforest::model_id(&bytes);
        let drawing = Drawing {
            id: &id,
            threshold: forest.threshold(),
            features: feature_names(&forest),
            contour: (forest.n_features() == 2)
                .then(|| contour(&forest))
                .transpose()?,
        };
        let drawing = Bytes::from(serde_json::to_vec(&drawing)?);
        Ok(Self {
            forest,
            id,
            path: path.to_path_buf(),
            modified: metadata.modified().ok(),
            len: metadata.len(),
            loaded_ms: crate::stats::now_ms(),
            drawing,
        })
    }

    /// Whether the file on disk is no longer the one read (time or size changed).
    pub fn changed_on_disk(&self) -> bool {
        std::fs::metadata(&self.path)
            .is_ok_and(|m| m.modified().ok() != self.modified || m.len() != self.len)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page's view of it; `error`: why the last reread failed.
    pub fn view(&self, error: Option<String>) -> ModelFileView {
        ModelFileView {
            path: self.path.display().to_string(),
            id: self.id.clone(),
            n_trees: self.forest.n_trees(),
            threshold: self.forest.threshold(),
            named_features: self.forest.feature_names().is_some(),
            modified_ms: self
                .modified
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64),
            loaded_ms: self.loaded_ms,
            error,
        }
    }
}

/// The model's feature names, or `feature i`.
pub fn feature_names(forest: &IsolationForest) -> Vec<String> {
    match forest.feature_names() {
        Some(names) => names.to_vec(),
        None => (0..forest.n_features())
            .map(|i| format!("feature {i}"))
            .collect(),
    }
}

fn contour(forest: &IsolationForest) -> Result<Contour> {
    let empty = Points {
        n_features: 2,
        ..Points::default()
    };
    let plane = plane(forest, &empty);
    let scores = score_grid(forest, &plane, GRID)?;
    let (low, high) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    let [(x0, x1), (y0, y1)] = plane;
    let (dx, dy) = ((x1 - x0) / (GRID - 1) as f64, (y1 - y0) / (GRID - 1) as f64);
    Ok(Contour {
        x: [x0, x1],
        y: [y0, y1],
        grid: GRID,
        low,
        high,
        bands: BANDS,
        runs: band_runs(&scores, GRID, BANDS, low, high)
            .into_iter()
            .map(|run| [run.row, run.from, run.to, run.band])
            .collect(),
        threshold: contour_segments(&scores, GRID, forest.threshold())
            .into_iter()
            .map(|[a, b]| [x0 + a.0 * dx, y0 + a.1 * dy, x0 + b.0 * dx, y0 + b.1 * dy])
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::IsolationForestParams;

    #[test]
    fn a_two_feature_model_comes_with_its_contour_and_a_change_on_disk_is_seen() {
        let table = dataset::synthetic_training_data(5);
        let model = IsolationForestParams::new()
            .n_trees(30)
            .seed(5)
            .feature_names(vec!["amount".into(), "delay".into()])
            .fit(&table.data, 2)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        model.save(&path).unwrap();
        let loaded = LoadedModel::load(&path).unwrap();
        let drawing: serde_json::Value = serde_json::from_slice(&loaded.drawing).unwrap();
        assert_eq!(drawing["features"], serde_json::json!(["amount", "delay"]));
        assert_eq!(drawing["id"], loaded.id.as_str());
        let contour = &drawing["contour"];
        assert_eq!(contour["grid"], GRID);
        assert!(contour["runs"].as_array().unwrap().len() >= GRID);
        assert!(!contour["threshold"].as_array().unwrap().is_empty());
        assert!(!loaded.changed_on_disk());
        std::fs::write(&path, b"not a model, and longer than none").unwrap();
        assert!(loaded.changed_on_disk());
        let error = LoadedModel::load(&path).unwrap_err();
        assert!(
            format!("{error:#}").contains("is not a usable model"),
            "{error:#}"
        );
    }
}
