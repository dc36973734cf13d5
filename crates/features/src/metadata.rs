//! Named features in a model file: their JSON under the model's metadata key
//! [`METADATA_KEY`], written by [`NamedFeatures::to_metadata`] and read back, checked, by
//! [`NamedFeatures::from_metadata`].
//!
//! Layout (version 1), keys in this order:
//!
//! ```json
//! {"version": 1, "missing": "dead-letter", "id_field": "id",
//!  "features": [
//!    {"field": "amount", "transform": "log", "median": 3.912},
//!    {"field": "/merchant/mcc", "transform": "category", "counts": {"5411": 1204, "5812": 733}}
//!  ]}
//! ```
//!
//! `missing` is `dead-letter` or `impute`; `field` a top-level name or a JSON Pointer as
//! written; `transform` one of `number`, `log`, `category`, `rarity`, `hour`, `weekday`; a
//! category feature (`category`, `rarity`) has `counts` (category → training occurrences, each ≥ 1, sorted by key), every
//! other feature a finite `median` (after its transform). Names, frequencies and the most
//! frequent category are derived, never stored, so they cannot disagree with the counts.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::categories::CategoryCounts;
use crate::extract::{Learned, NamedFeatures};
use crate::path::{FieldPath, PathError};
use crate::spec::{Feature, FeatureSpec, Missing, Transform};

/// The model metadata key holding named features.
pub const METADATA_KEY: &str = "features";

/// The version of the layout written.
pub const METADATA_VERSION: u64 = 1;

/// Why a model's features entry cannot be used. Each says what is wrong and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not JSON, or not the layout (a field missing, unknown or of the wrong type).
    #[error("the model's `features` entry is not valid: {0}")]
    Layout(String),
    /// A version this build does not read.
    #[error("the model's `features` entry has version {found}; this build reads version {METADATA_VERSION}")]
    Version {
        /// The version found (as written).
        found: String,
    },
    /// An unknown missing-field policy.
    #[error("the model's `features` entry: missing {0:?} is not `dead-letter` or `impute`")]
    Missing(String),
    /// The id field cannot be read.
    #[error("the model's `features` entry: id field: {0}")]
    IdField(PathError),
    /// No features.
    #[error("the model's `features` entry lists no features")]
    NoFeatures,
    /// A feature's field cannot be read.
    #[error("the model's `features` entry, feature {index}: {source}")]
    Field {
        /// 0-based position.
        index: usize,
        /// Why.
        source: PathError,
    },
    /// A transform this build does not know.
    #[error("the model's `features` entry, feature {index}: unknown transform {name:?}")]
    Transform {
        /// 0-based position.
        index: usize,
        /// The transform as written.
        name: String,
    },
    /// The same feature twice.
    #[error("the model's `features` entry lists {name} twice")]
    Duplicate {
        /// The feature.
        name: String,
    },
    /// A feature's learned state is absent, misplaced or impossible.
    #[error("the model's `features` entry, feature {feature}: {problem}")]
    Learned {
        /// The feature.
        feature: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The entry names another number of features than the model has.
    #[error("the model's `features` entry names {features} features, the model has {model}")]
    Width {
        /// Features named.
        features: usize,
        /// The model's.
        model: usize,
    },
}

#[derive(Serialize)]
struct Wire {
    version: u64,
    missing: String,
    id_field: String,
    features: Vec<WireFeature>,
}

#[derive(Serialize)]
struct WireFeature {
    field: String,
    transform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<BTreeMap<String, u64>>,
}

/// `what` must be `kind`.
fn layout(what: &str, kind: &str) -> MetadataError {
    MetadataError::Layout(format!("{what} must be {kind}"))
}

/// Refuses keys not in `known`.
fn only(object: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), MetadataError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(MetadataError::Layout(format!(
            "{what} has an unknown key {key:?}"
        ))),
        None => Ok(()),
    }
}

/// A string member.
fn string(object: &Map<String, Value>, key: &str, what: &str) -> Result<String, MetadataError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| layout(&format!("{what}`{key}`"), "a string"))
}

/// The layout, read by hand so that every complaint names the key at fault.
fn read_wire(value: &Value) -> Result<Wire, MetadataError> {
    let object = value
        .as_object()
        .ok_or_else(|| layout("the entry", "an object"))?;
    match object.get("version") {
        Some(version) if version.as_u64() == Some(METADATA_VERSION) => {}
        Some(version) => {
            return Err(MetadataError::Version {
                found: version.to_string(),
            })
        }
        None => return Err(MetadataError::Layout("no `version`".into())),
    }
    only(
        object,
        &["version", "missing", "id_field", "features"],
        "the entry",
    )?;
    let items = object
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| layout("`features`", "a list"))?;
    let mut features = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let what = format!("feature {index}: ");
        let item = item
            .as_object()
            .ok_or_else(|| layout(&format!("feature {index}"), "an object"))?;
        only(
            item,
            &["field", "transform", "median", "counts"],
            &format!("feature {index}"),
        )?;
        let median = match item.get("median") {
            None => None,
            Some(median) => Some(
                median
                    .as_f64()
                    .ok_or_else(|| layout(&format!("{what}`median`"), "a number"))?,
            ),
        };
        let counts = match item.get("counts") {
            None => None,
            Some(counts) => {
                let counts = counts
                    .as_object()
                    .ok_or_else(|| layout(&format!("{what}`counts`"), "an object"))?;
                let counts = counts
                    .iter()
                    .map(|(key, count)| Some((key.clone(), count.as_u64()?)))
                    .collect::<Option<BTreeMap<_, _>>>()
                    .ok_or_else(|| {
                        layout(&format!("{what}every count"), "a non-negative integer")
                    })?;
                Some(counts)
            }
        };
        features.push(WireFeature {
            field: string(item, "field", &what)?,
            transform: string(item, "transform", &what)?,
            median,
            counts,
        });
    }
    Ok(Wire {
        version: METADATA_VERSION,
        missing: string(object, "missing", "")?,
        id_field: string(object, "id_field", "")?,
        features,
    })
}

impl NamedFeatures {
    /// The JSON to store under [`METADATA_KEY`] (the same features give the same text).
    pub fn to_metadata(&self) -> String {
        let wire = Wire {
            version: METADATA_VERSION,
            missing: self.spec().missing().name().to_string(),
            id_field: self.spec().id_field().to_string(),
            features: self
                .features()
                .iter()
                .zip(self.learned())
                .map(|(feature, learned)| WireFeature {
                    field: feature.field().to_string(),
                    transform: feature.transform().name().to_string(),
                    median: match learned {
                        Learned::Median(median) => Some(*median),
                        Learned::Categories(_) => None,
                    },
                    counts: match learned {
                        Learned::Median(_) => None,
                        Learned::Categories(counts) => Some(counts.counts().clone()),
                    },
                })
                .collect(),
        };
        // Strings, finite numbers and string-keyed maps always serialise.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// `model` with these features in its metadata (under [`METADATA_KEY`]), so that whoever
    /// loads it reads records as they were read in training.
    pub fn attach(&self, model: iforest::IsolationForest) -> iforest::IsolationForest {
        model.with_metadata(METADATA_KEY, self.to_metadata())
    }

    /// Reads and checks what [`to_metadata`](Self::to_metadata) wrote.
    pub fn from_metadata(text: &str) -> Result<NamedFeatures, MetadataError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| MetadataError::Layout(e.to_string()))?;
        let wire = read_wire(&value)?;
        let missing = wire
            .missing
            .parse::<Missing>()
            .map_err(|_| MetadataError::Missing(wire.missing.clone()))?;
        let id_field = FieldPath::parse(&wire.id_field).map_err(MetadataError::IdField)?;
        if wire.features.is_empty() {
            return Err(MetadataError::NoFeatures);
        }
        let mut features: Vec<Feature> = Vec::with_capacity(wire.features.len());
        let mut learned = Vec::with_capacity(wire.features.len());
        for (index, item) in wire.features.into_iter().enumerate() {
            let field = FieldPath::parse(&item.field)
                .map_err(|source| MetadataError::Field { index, source })?;
            let transform = Transform::ALL
                .into_iter()
                .find(|t| t.name() == item.transform)
                .ok_or_else(|| MetadataError::Transform {
                    index,
                    name: item.transform.clone(),
                })?;
            let feature = Feature::new(field, transform);
            if features.contains(&feature) {
                return Err(MetadataError::Duplicate {
                    name: feature.name().to_string(),
                });
            }
            let problem = |problem| MetadataError::Learned {
                feature: feature.name().to_string(),
                problem,
            };
            let state = match (transform.is_category(), item.median, item.counts) {
                (true, None, Some(counts)) => {
                    Learned::Categories(CategoryCounts::new(counts).ok_or_else(|| {
                        problem(
                            "`counts` must hold at least one category, each counted at least once",
                        )
                    })?)
                }
                (true, _, _) => {
                    return Err(problem("a category feature has `counts` and no `median`"))
                }
                (false, Some(median), None) if median.is_finite() => Learned::Median(median),
                (false, Some(_), None) => return Err(problem("the median must be finite")),
                (false, _, _) => {
                    return Err(problem(
                        "a non-category feature has a `median` and no `counts`",
                    ))
                }
            };
            features.push(feature);
            learned.push(state);
        }
        let spec = FeatureSpec {
            features,
            missing,
            id_field,
        };
        Ok(NamedFeatures::new(spec, learned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureParams;
    use crate::Features;
    use serde_json::{json, Value};

    fn named() -> NamedFeatures {
        let records = [
            json!({"amount": 12.5, "m": {"mcc": "5411"}, "t~s": "2026-12-01T03:00:00Z"}),
            json!({"amount": 30.0, "m": {"mcc": 5812}, "t~s": "2026-12-02T05:00:00Z"}),
        ];
        FeatureParams::new("amount:log,/m/mcc:category,/t~0s:hour,/t~0s:weekday,amount")
            .missing(Missing::Impute)
            .id_field("/m/ref")
            .check()
            .unwrap()
            .fit(&records)
            .unwrap()
            .features
    }

    #[test]
    fn features_round_trip_through_their_json() {
        let features = named();
        let text = features.to_metadata();
        let read = NamedFeatures::from_metadata(&text).unwrap();
        assert_eq!(read, features);
        assert_eq!(read.to_metadata(), text);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["missing"], "impute");
        assert_eq!(value["id_field"], "/m/ref");
        assert_eq!(value["features"][1]["field"], "/m/mcc");
        assert_eq!(
            value["features"][1]["counts"],
            json!({"5411": 1, "5812": 1})
        );
        assert_eq!(value["features"][2]["transform"], "hour");
        assert_eq!(value["features"][2]["median"], 4.0);
        assert!(value["features"][0].get("counts").is_none());
    }

    #[test]
    fn rarity_keeps_its_counts_and_reads_back() {
        let records = [json!({"c": "a"}), json!({"c": "a"}), json!({"c": 7})];
        let features = FeatureParams::new("c:rarity")
            .check()
            .unwrap()
            .fit(&records)
            .unwrap()
            .features;
        let text = features.to_metadata();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["features"][0]["transform"], "rarity");
        assert_eq!(value["features"][0]["counts"], json!({"7": 1, "a": 2}));
        let read = NamedFeatures::from_metadata(&text).unwrap();
        assert_eq!(read, features);
        assert_eq!(read.extract(&json!({"c": "z"})).unwrap(), [6f64.log2()]);
        let error = NamedFeatures::from_metadata(
            &text.replace("\"counts\":{\"7\":1,\"a\":2}", "\"median\":1.0"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("c:rarity"), "{error}");
    }

    #[test]
    fn no_entry_is_the_data_array_and_an_entry_is_named_features() {
        let mut metadata = BTreeMap::new();
        assert_eq!(Features::from_metadata(&metadata), Ok(Features::Data));
        assert_eq!(Features::Data.named(), None);
        metadata.insert(METADATA_KEY.to_string(), named().to_metadata());
        let features = Features::from_metadata(&metadata).unwrap();
        assert_eq!(features.named(), Some(&named()));
        assert!(features.check_width(5).is_ok());
        assert_eq!(
            features.check_width(2),
            Err(MetadataError::Width {
                features: 5,
                model: 2
            })
        );
        assert!(Features::Data.check_width(2).is_ok());
    }

    #[test]
    fn a_model_carries_its_features_through_its_file() {
        let records: Vec<Value> = (0..60)
            .map(|i| json!({"amount": i, "mcc": (["a", "b", "c"][i % 3])}))
            .collect();
        let fitted = FeatureParams::new("amount:log,mcc:category")
            .check()
            .unwrap()
            .fit(&records)
            .unwrap();
        let forest = iforest::IsolationForestParams::new()
            .n_trees(10)
            .fit(&fitted.rows, 2)
            .unwrap();
        assert_eq!(
            Features::from_model(&forest),
            Ok(Features::Data),
            "no entry: `data`"
        );
        let model = fitted.features.attach(forest.clone());
        let read = iforest::IsolationForest::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(
            Features::from_model(&read),
            Ok(Features::Named(fitted.features.clone()))
        );
        let corrupt = forest
            .clone()
            .with_metadata(METADATA_KEY, "{\"version\": 1}");
        assert!(matches!(
            Features::from_model(&corrupt),
            Err(MetadataError::Layout(_))
        ));
        let narrow = iforest::IsolationForestParams::new()
            .n_trees(10)
            .fit(&fitted.rows, 1)
            .unwrap();
        assert_eq!(
            Features::from_model(&fitted.features.attach(narrow)),
            Err(MetadataError::Width {
                features: 2,
                model: 1
            })
        );
    }

    /// The entry with `change` applied to its JSON.
    fn corrupt(change: impl FnOnce(&mut Value)) -> Result<NamedFeatures, MetadataError> {
        let mut value: Value = serde_json::from_str(&named().to_metadata()).unwrap();
        change(&mut value);
        NamedFeatures::from_metadata(&value.to_string())
    }

    #[test]
    fn a_corrupt_entry_is_refused_with_the_problem_named() {
        let message =
            |result: Result<NamedFeatures, MetadataError>| result.unwrap_err().to_string();
        assert!(NamedFeatures::from_metadata("{\"version\": 1,").is_err());
        assert!(matches!(
            NamedFeatures::from_metadata("[]"),
            Err(MetadataError::Layout(_))
        ));
        assert_eq!(
            corrupt(|v| v["version"] = json!(2)),
            Err(MetadataError::Version { found: "2".into() })
        );
        assert!(message(corrupt(|v| v["features"][0]["colour"] = json!("red"))).contains("colour"));
        assert!(message(corrupt(|v| {
            v.as_object_mut().unwrap().remove("id_field");
        }))
        .contains("id_field"));
        assert_eq!(
            corrupt(|v| v["missing"] = json!("skip")),
            Err(MetadataError::Missing("skip".into()))
        );
        assert!(matches!(
            corrupt(|v| v["id_field"] = json!("")),
            Err(MetadataError::IdField(PathError::Empty))
        ));
        assert_eq!(
            corrupt(|v| v["features"] = json!([])),
            Err(MetadataError::NoFeatures)
        );
        assert!(matches!(
            corrupt(|v| v["features"][2]["field"] = json!("/t~2s")),
            Err(MetadataError::Field { index: 2, .. })
        ));
        assert_eq!(
            corrupt(|v| v["features"][0]["transform"] = json!("sqrt")),
            Err(MetadataError::Transform {
                index: 0,
                name: "sqrt".into()
            })
        );
        assert_eq!(
            corrupt(|v| v["features"][4]["transform"] = json!("log")),
            Err(MetadataError::Duplicate {
                name: "amount:log".into()
            })
        );
        for (change, problem) in [
            (json!({"counts": {"5411": 0}}), "at least once"),
            (json!({"counts": {}}), "at least one category"),
            (json!({"median": 1.0}), "`counts` and no `median`"),
        ] {
            let error = message(corrupt(|v| {
                for (key, value) in change.as_object().unwrap() {
                    v["features"][1][key] = value.clone();
                }
            }));
            assert!(
                error.contains(problem) && error.contains("/m/mcc:category"),
                "{error}"
            );
        }
        let error = message(corrupt(|v| v["features"][0]["counts"] = json!({"a": 1})));
        assert!(
            error.contains("amount:log") && error.contains("no `counts`"),
            "{error}"
        );
        let error = message(corrupt(|v| {
            v["features"][0].as_object_mut().unwrap().remove("median");
        }));
        assert!(error.contains("has a `median`"), "{error}");
        assert!(message(corrupt(|v| v["features"][0]["median"] = json!("1"))).contains("median"));
    }
}
