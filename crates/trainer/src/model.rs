//! Model files as the trainer writes them: the features a model reads kept in its metadata,
//! the file written atomically to its path and, under its id, to the models folder, so a
//! model named in an anomaly can be found later.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use features::{Features, NamedFeatures};
use iforest::IsolationForest;

/// Where models are kept by id, given `--models-dir` and `--out`: the folder given, else
/// `by-id` beside `--out` (`models/by-id` for the default `models/model.bin`).
pub fn models_dir(models_dir: Option<&Path>, out: &Path) -> PathBuf {
    match models_dir {
        Some(dir) => dir.to_path_buf(),
        None => out.parent().unwrap_or_else(|| Path::new("")).join("by-id"),
    }
}

/// The model with its named features in its metadata.
pub fn with_features(model: IsolationForest, features: &NamedFeatures) -> IsolationForest {
    features.attach(model)
}

/// The features `model` reads, checked against its width.
pub fn features_of(model: &IsolationForest) -> Result<Features> {
    Ok(Features::from_model(model)?)
}

/// Writes `model` to `out` (atomically) and to `<models_dir>/<id>.bin`; returns the id.
pub fn save(model: &IsolationForest, out: &Path, models_dir: &Path) -> Result<String> {
    for dir in [out.parent(), Some(models_dir)]
        .into_iter()
        .flatten()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    model
        .save(out)
        .with_context(|| format!("cannot save the model to {}", out.display()))?;
    let id = iforest::model_id(&model.to_bytes());
    let kept = models_dir.join(format!("{id}.bin"));
    model
        .save(&kept)
        .with_context(|| format!("cannot keep the model as {}", kept.display()))?;
    Ok(id)
}
