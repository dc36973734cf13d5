//! The models the anomalies name, found by id in the models folder (`<dir>/<id>.bin`, as
//! `trainer fit` keeps them), each read once, and a record re-scored with one of them the
//! way the detector scores it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use features::Features;
use iforest::IsolationForest;
use schema::{DecodeLimits, RecordId, Transaction};

/// A model as the detector uses it: the forest, and how it reads a record.
#[derive(Debug)]
pub struct Rescorer {
    /// The forest.
    pub forest: IsolationForest,
    /// What it reads: `data` or named features.
    pub features: Features,
    /// Its features' names, as anomalies name them in `features`: named features', else
    /// the file's names, else `x0`, `x1`, ….
    pub names: Vec<String>,
    limits: DecodeLimits,
}

/// A record the model refuses: the reason a dead letter would carry, and the detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The machine-readable reason (`not_json`, `missing_feature`, …).
    pub reason: String,
    /// The detail.
    pub detail: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

/// A record re-scored: the features read and the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    /// The record's id as the model reads it, when it has one.
    pub id: Option<RecordId>,
    /// The row the model scored.
    pub row: Vec<f64>,
    /// Its anomaly score.
    pub score: f64,
}

impl Rescorer {
    /// Reads `bytes` as the detector reads a record for this model and scores it.
    pub fn rescore(&self, bytes: &[u8]) -> Result<Rescored, Refusal> {
        if bytes.len() > self.limits.max_bytes {
            return Err(Refusal {
                reason: "oversized".into(),
                detail: format!(
                    "the record has {} bytes, more than --max-record-bytes {}",
                    bytes.len(),
                    self.limits.max_bytes
                ),
            });
        }
        let width = self.forest.n_features();
        let (id, row) = match &self.features {
            Features::Named(named) => {
                let mut row = Vec::with_capacity(named.len());
                let id = named.read(bytes, &mut row).map_err(|error| Refusal {
                    reason: error.reason().into(),
                    detail: error.to_string(),
                })?;
                (id, row)
            }
            Features::Data => {
                let transaction =
                    Transaction::decode(bytes, &self.limits).map_err(|error| Refusal {
                        reason: error.reason().into(),
                        detail: error.to_string(),
                    })?;
                if transaction.features.len() != width {
                    return Err(Refusal {
                        reason: "feature_count".into(),
                        detail: format!(
                            "the record has {} features, the model expects {width}",
                            transaction.features.len()
                        ),
                    });
                }
                (Some(transaction.id), transaction.features)
            }
        };
        let score = self.forest.score(&row).map_err(|error| Refusal {
            reason: "not_scored".into(),
            detail: error.to_string(),
        })?;
        Ok(Rescored { id, row, score })
    }
}

/// The models folder, and every model looked up in it (each read once).
#[derive(Debug)]
pub struct Models {
    dir: PathBuf,
    limits: DecodeLimits,
    found: HashMap<String, Result<Rescorer, String>>,
}

impl Models {
    /// Models kept by id in `dir`; records larger than `limits` are refused.
    pub fn new(dir: &Path, limits: DecodeLimits) -> Self {
        Self {
            dir: dir.to_path_buf(),
            limits,
            found: HashMap::new(),
        }
    }

    /// The file where model `id` is looked for (`None`: `id` is not a model id, so it names
    /// no file).
    pub fn path_of(&self, id: &str) -> Option<PathBuf> {
        is_model_id(id).then(|| self.dir.join(format!("{id}.bin")))
    }

    /// Model `id` once [`load`](Self::load)ed (`None`: not loaded, or not usable).
    pub fn get(&self, id: &str) -> Option<&Rescorer> {
        self.found.get(id)?.as_ref().ok()
    }

    /// Loads model `id` (once), or says why it cannot be used.
    pub fn load(&mut self, id: &str) -> Result<&Rescorer, &str> {
        if !self.found.contains_key(id) {
            let loaded = self.read_model(id);
            if let Err(why) = &loaded {
                log::warn!("model {id}: {why}");
            }
            self.found.insert(id.to_string(), loaded);
        }
        match &self.found[id] {
            Ok(rescorer) => Ok(rescorer),
            Err(why) => Err(why),
        }
    }

    fn read_model(&self, id: &str) -> Result<Rescorer, String> {
        let Some(path) = self.path_of(id) else {
            return Err("not a model id (16 hexadecimal digits)".into());
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(if self.dir.is_dir() {
                    format!("no such file in {}", self.dir.display())
                } else {
                    format!("no folder {}", self.dir.display())
                });
            }
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        let actual = iforest::model_id(&bytes);
        if actual != id {
            return Err(format!(
                "{} holds model {actual}, not {id} (the file was changed)",
                path.display()
            ));
        }
        let forest = IsolationForest::from_bytes(&bytes)
            .map_err(|error| format!("{} is not a usable model: {error}", path.display()))?;
        let features = Features::from_model(&forest)
            .map_err(|error| format!("{} is not a usable model: {error}", path.display()))?;
        let names = match &features {
            Features::Named(named) => {
                if let Some(feature) = named
                    .features()
                    .iter()
                    .find(|f| !f.transform().is_stateless())
                {
                    return Err(format!(
                        "feature {} depends on the key's earlier records, which one record \
                         cannot give again",
                        feature.name()
                    ));
                }
                named.names()
            }
            Features::Data => match forest.feature_names() {
                Some(names) => names.to_vec(),
                None => (0..forest.n_features()).map(|i| format!("x{i}")).collect(),
            },
        };
        log::info!(
            "model {id}: {} ({} features, threshold {})",
            path.display(),
            forest.n_features(),
            forest.threshold()
        );
        Ok(Rescorer {
            forest,
            features,
            names,
            limits: self.limits,
        })
    }
}

/// `iforest::model_id`'s form: 16 lowercase hexadecimal digits (also what keeps an id from
/// naming a file outside the folder).
pub fn is_model_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::{Contamination, IsolationForestParams};

    fn forest() -> IsolationForest {
        let rows: Vec<[f64; 2]> = (0..300)
            .map(|i| {
                let jitter = |step: f64| ((i as f64 * step).fract() - 0.5) * 0.6;
                [2.0 + jitter(0.618), 2.0 + jitter(0.414)]
            })
            .collect();
        IsolationForestParams::new()
            .n_trees(20)
            .contamination(Contamination::Fraction(0.05))
            .seed(3)
            .fit_rows(&rows)
            .unwrap()
    }

    fn rescored_id(rescorer: &Rescorer) -> Option<RecordId> {
        rescorer
            .rescore(br#"{"id": 1, "data": [[3.5, -1.0]]}"#)
            .unwrap()
            .id
    }

    #[test]
    fn a_model_is_found_by_id_and_scores_as_the_forest_does() {
        let dir = tempfile::tempdir().unwrap();
        let forest = forest();
        let bytes = forest.to_bytes();
        let id = iforest::model_id(&bytes);
        std::fs::write(dir.path().join(format!("{id}.bin")), &bytes).unwrap();
        let mut models = Models::new(dir.path(), DecodeLimits::default());
        let rescorer = models.load(&id).unwrap();
        assert_eq!(rescorer.names, ["x0", "x1"]);
        assert_eq!(rescored_id(rescorer), Some(RecordId::Int(1)));
        let rescored = rescorer
            .rescore(br#"{"id": 1, "data": [[3.5, -1.0]]}"#)
            .unwrap();
        assert_eq!(rescored.row, [3.5, -1.0]);
        assert_eq!(
            rescored.score.to_bits(),
            forest.score(&[3.5, -1.0]).unwrap().to_bits()
        );
        let refused = rescorer
            .rescore(br#"{"id": 1, "data": [1, 2, 3]}"#)
            .unwrap_err();
        assert_eq!(refused.reason, "feature_count");
        assert_eq!(rescorer.rescore(b"nope").unwrap_err().reason, "not_json");
    }

    #[test]
    fn records_over_the_limit_are_refused_as_the_detector_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = forest().to_bytes();
        let id = iforest::model_id(&bytes);
        std::fs::write(dir.path().join(format!("{id}.bin")), &bytes).unwrap();
        let limits = DecodeLimits {
            max_bytes: 20,
            ..DecodeLimits::default()
        };
        let mut models = Models::new(dir.path(), limits);
        let refused = models
            .load(&id)
            .unwrap()
            .rescore(br#"{"id": 1, "data": [[3.5, -1.0]]}"#)
            .unwrap_err();
        assert_eq!(refused.reason, "oversized");
    }

    #[test]
    fn missing_changed_and_foreign_models_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = forest().to_bytes();
        let id = iforest::model_id(&bytes);
        let mut models = Models::new(dir.path(), DecodeLimits::default());
        let why = models.load(&id).unwrap_err().to_string();
        assert!(why.starts_with("no such file in "), "{why}");

        // A file under another model's name.
        let other = "0123456789abcdef";
        std::fs::write(dir.path().join(format!("{other}.bin")), &bytes).unwrap();
        let why = models.load(other).unwrap_err().to_string();
        assert!(
            why.contains(&format!("holds model {id}, not {other}")),
            "{why}"
        );

        // An id that is not one cannot name a file anywhere.
        for bad in ["../../etc/passwd", "0123456789ABCDEF", "abc"] {
            assert_eq!(models.path_of(bad), None);
            assert!(models.load(bad).unwrap_err().contains("not a model id"));
        }

        let mut nowhere = Models::new(&dir.path().join("absent"), DecodeLimits::default());
        let why = nowhere.load(&id).unwrap_err().to_string();
        assert!(why.starts_with("no folder "), "{why}");
    }
}
