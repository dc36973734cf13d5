//! Named features in a model file: their JSON under the model's metadata key
//! [`METADATA_KEY`], written by [`NamedFeatures::to_metadata`] and read back, checked, by
//! [`NamedFeatures::from_metadata`].
//!
//! Version 1 (features without per-key items; every build reads it), keys in this order:
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
//! category feature (`category`, `rarity`) has `counts` (category → training occurrences,
//! each ≥ 1, sorted by key), every other feature a finite `median` (after its transform).
//! Names, frequencies, rarities and the most frequent category are derived, never stored, so
//! they cannot disagree with the counts.
//!
//! Version 2 (written when some item is per-key) adds the `per_key` settings and per-key
//! items:
//!
//! ```json
//! {"version": 2, "missing": "dead-letter", "id_field": "id",
//!  "per_key": {"key_field": "card", "time_field": "ts", "half_life": 20.0, "min_history": 5,
//!              "max_window_records": 1000, "state_ttl": "7d"},
//!  "features": [
//!    {"field": "amount", "transform": "log", "median": 3.912},
//!    {"field": "amount", "transform": "log", "per_key": "zscore", "mean": 3.8, "std": 0.9, "median": 0.02},
//!    {"field": "value", "transform": "number", "per_key": "delta", "median": 0.0},
//!    {"field": "value", "transform": "number", "per_key": "lag", "k": 4, "median": 41.5},
//!    {"per_key": "count", "window": "60s"},
//!    {"per_key": "since_last", "median": 86400.0}
//!  ]}
//! ```
//!
//! `key_field` and `time_field` are a field or `null` (the Kafka key, the Kafka timestamp);
//! `state_ttl` a span (`7d`) or `never`. A per-key item on a field has `field`, `transform`
//! (`number` or `log`) and `per_key` (`zscore`, `delta`, `lag` with its `k` from 1 to 64);
//! `count` (with its `window`) and `since_last` have neither field nor transform. What they
//! learned: `zscore` the training `mean`, `std` (≥ 0) and the `median` z-score; `delta`,
//! `lag` and `since_last` a `median`; `count` nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::categories::CategoryCounts;
use crate::extract::{Learned, NamedFeatures};
use crate::item::{Feature, PerKey, Transform, MAX_LAG};
use crate::path::{FieldPath, PathError};
use crate::span::Span;
use crate::spec::{check_per_key, FeatureSpec, Missing, PerKeySettings};

/// The model metadata key holding named features.
pub const METADATA_KEY: &str = "features";

/// The newest version of the layout: written when some item is per-key; features without
/// per-key items are written as version 1, which earlier builds read.
pub const METADATA_VERSION: u64 = 2;

/// Why a model's features entry cannot be used. Each says what is wrong and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not JSON, or not the layout (a field missing, unknown or of the wrong type).
    #[error("the model's `features` entry is not valid: {0}")]
    Layout(String),
    /// A version this build does not read.
    #[error("the model's `features` entry has version {found}; this build reads versions 1 to {METADATA_VERSION}")]
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
    /// The per-key settings cannot be used.
    #[error("the model's `features` entry: per_key: {0}")]
    PerKey(String),
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
    /// A per-key item this build does not know, or whose parts do not fit together.
    #[error("the model's `features` entry, feature {index}: {problem}")]
    Item {
        /// 0-based position.
        index: usize,
        /// What is wrong.
        problem: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    per_key: Option<WirePerKey>,
    features: Vec<WireFeature>,
}

#[derive(Serialize)]
struct WirePerKey {
    key_field: Option<String>,
    time_field: Option<String>,
    half_life: f64,
    min_history: u32,
    max_window_records: u32,
    state_ttl: String,
}

#[derive(Serialize, Default)]
struct WireFeature {
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<BTreeMap<String, u64>>,
}

/// The keys a feature may have in each version.
const FEATURE_KEYS_V1: [&str; 4] = ["field", "transform", "median", "counts"];
const FEATURE_KEYS_V2: [&str; 9] = [
    "field",
    "transform",
    "per_key",
    "k",
    "window",
    "mean",
    "std",
    "median",
    "counts",
];

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

/// An optional string member (absent: `None`).
fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<String>, MetadataError> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(layout(&format!("{what}`{key}`"), "a string")),
    }
}

/// An optional number member (absent: `None`).
fn optional_number(
    object: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<f64>, MetadataError> {
    match object.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| layout(&format!("{what}`{key}`"), "a number")),
    }
}

/// A non-negative integer member.
fn integer(object: &Map<String, Value>, key: &str, what: &str) -> Result<u64, MetadataError> {
    object
        .get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| layout(&format!("{what}`{key}`"), "a non-negative integer"))
}

/// The per-key settings of a version-2 entry.
fn read_per_key(value: Option<&Value>) -> Result<PerKeySettings, MetadataError> {
    let object = value
        .and_then(Value::as_object)
        .ok_or_else(|| layout("`per_key`", "an object"))?;
    only(
        object,
        &[
            "key_field",
            "time_field",
            "half_life",
            "min_history",
            "max_window_records",
            "state_ttl",
        ],
        "`per_key`",
    )?;
    let field = |key: &str| match object.get(key) {
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        _ => Err(layout(&format!("per_key `{key}`"), "a string or null")),
    };
    let key_field = field("key_field")?;
    let time_field = field("time_field")?;
    let half_life = object
        .get("half_life")
        .and_then(Value::as_f64)
        .ok_or_else(|| layout("per_key `half_life`", "a number"))?;
    let small = |key: &str| {
        u32::try_from(integer(object, key, "per_key ")?)
            .map_err(|_| MetadataError::PerKey(format!("`{key}` is too large")))
    };
    let min_history = small("min_history")?;
    let max_window_records = small("max_window_records")?;
    let state_ttl = match string(object, "state_ttl", "per_key ")?.as_str() {
        "never" => None,
        text => Some(Span::parse(text).map_err(|e| MetadataError::PerKey(e.to_string()))?),
    };
    check_per_key(
        key_field.as_deref(),
        time_field.as_deref(),
        half_life,
        min_history,
        max_window_records,
        state_ttl,
    )
    .map_err(|e| MetadataError::PerKey(e.to_string()))
}

/// One feature of the entry, checked, with what it learned.
fn read_feature(
    index: usize,
    item: &Value,
    version: u64,
) -> Result<(Feature, Learned), MetadataError> {
    let what = format!("feature {index}: ");
    let item = item
        .as_object()
        .ok_or_else(|| layout(&format!("feature {index}"), "an object"))?;
    let keys: &[&str] = if version == 1 {
        &FEATURE_KEYS_V1
    } else {
        &FEATURE_KEYS_V2
    };
    only(item, keys, &format!("feature {index}"))?;
    let per_key_kind = optional_string(item, "per_key", &what)?;
    let field = match optional_string(item, "field", &what)? {
        Some(field) => Some(
            FieldPath::parse(&field).map_err(|source| MetadataError::Field { index, source })?,
        ),
        None if per_key_kind.is_none() => {
            return Err(layout(&format!("{what}`field`"), "a string"))
        }
        None => None,
    };
    let transform = match optional_string(item, "transform", &what)? {
        Some(name) => Transform::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or(MetadataError::Transform { index, name })?,
        None if field.is_some() => return Err(layout(&format!("{what}`transform`"), "a string")),
        None => Transform::Number,
    };
    let item_problem = |problem: String| MetadataError::Item { index, problem };
    let per_key = match per_key_kind.as_deref() {
        None => None,
        Some("zscore") => Some(PerKey::ZScore),
        Some("delta") => Some(PerKey::Delta),
        Some("since_last") => Some(PerKey::SinceLast),
        Some("lag") => {
            let k = integer(item, "k", &what)?;
            match u16::try_from(k) {
                Ok(k) if (1..=MAX_LAG).contains(&k) => Some(PerKey::Lag(k)),
                _ => return Err(item_problem(format!("`k` must be 1 to {MAX_LAG}, not {k}"))),
            }
        }
        Some("count") => {
            let window = string(item, "window", &what)?;
            Some(PerKey::Count(
                Span::parse(&window).map_err(|e| item_problem(e.to_string()))?,
            ))
        }
        Some(other) => return Err(item_problem(format!("unknown per-key item {other:?}"))),
    };
    if !matches!(per_key, Some(PerKey::Lag(_))) && item.contains_key("k") {
        return Err(item_problem("only `lag` has a `k`".into()));
    }
    if !matches!(per_key, Some(PerKey::Count(_))) && item.contains_key("window") {
        return Err(item_problem("only `count` has a `window`".into()));
    }
    let has_field = field.is_some();
    let feature = Feature::from_parts(field, transform, per_key).ok_or_else(|| {
        item_problem(match per_key {
            Some(p) if p.reads_field() && !has_field => format!("`{}` needs a `field`", p.kind()),
            Some(p) if p.reads_field() => {
                format!(
                    "`{}` follows `number` or `log`, not `{}`",
                    p.kind(),
                    transform.name()
                )
            }
            Some(p) => format!("`{}` has no `field` and no `transform`", p.kind()),
            None => "a feature needs a `field`".into(),
        })
    })?;
    let learned = read_learned(&feature, item, &what)?;
    Ok((feature, learned))
}

/// What `feature` learned, from its entry: exactly the keys its kind has.
fn read_learned(
    feature: &Feature,
    item: &Map<String, Value>,
    what: &str,
) -> Result<Learned, MetadataError> {
    let problem = |problem| MetadataError::Learned {
        feature: feature.name().to_string(),
        problem,
    };
    let mean = optional_number(item, "mean", what)?;
    let std = optional_number(item, "std", what)?;
    let median = optional_number(item, "median", what)?;
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
                .ok_or_else(|| layout(&format!("{what}every count"), "a non-negative integer"))?;
            Some(counts)
        }
    };
    let finite = |value: f64| value.is_finite();
    match (feature.per_key(), feature.transform().is_category()) {
        (None, true) => match (mean, std, median, counts) {
            (None, None, None, Some(counts)) => CategoryCounts::new(counts)
                .map(Learned::Categories)
                .ok_or_else(|| {
                    problem("`counts` must hold at least one category, each counted at least once")
                }),
            _ => Err(problem("a category feature has `counts` and no `median`")),
        },
        (Some(PerKey::ZScore), _) => match (mean, std, median, counts) {
            (Some(mean), Some(std), Some(median), None)
                if finite(mean) && finite(std) && std >= 0.0 && finite(median) =>
            {
                Ok(Learned::Moments { mean, std, median })
            }
            _ => Err(problem(
                "a zscore has a finite `mean`, a finite `std` ≥ 0 and a finite `median`, and no \
                 `counts`",
            )),
        },
        (Some(PerKey::Count(_)), _) => match (mean, std, median, counts) {
            (None, None, None, None) => Ok(Learned::Nothing),
            _ => Err(problem("a count learns nothing")),
        },
        (_, _) => match (mean, std, median, counts) {
            (None, None, Some(median), None) if finite(median) => Ok(Learned::Median(median)),
            (None, None, Some(_), None) => Err(problem("the median must be finite")),
            _ => Err(problem(
                "a non-category feature has a `median` and no `counts`",
            )),
        },
    }
}

impl NamedFeatures {
    /// The JSON to store under [`METADATA_KEY`] (the same features give the same text):
    /// version 1 without per-key items, else version 2.
    pub fn to_metadata(&self) -> String {
        let spec = self.spec();
        let per_key = spec.is_per_key().then(|| {
            let settings = spec.per_key();
            WirePerKey {
                key_field: settings.key_field().map(ToString::to_string),
                time_field: settings.time_field().map(ToString::to_string),
                half_life: settings.half_life(),
                min_history: settings.min_history(),
                max_window_records: settings.max_window_records(),
                state_ttl: settings
                    .state_ttl()
                    .map_or_else(|| "never".to_string(), |ttl| ttl.to_string()),
            }
        });
        let wire = Wire {
            version: if per_key.is_some() { 2 } else { 1 },
            missing: spec.missing().name().to_string(),
            id_field: spec.id_field().to_string(),
            per_key,
            features: self
                .features()
                .iter()
                .zip(self.learned())
                .map(|(feature, learned)| wire_feature(feature, learned))
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

    /// Reads and checks what [`to_metadata`](Self::to_metadata) wrote (either version).
    pub fn from_metadata(text: &str) -> Result<NamedFeatures, MetadataError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| MetadataError::Layout(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| layout("the entry", "an object"))?;
        let version = match object.get("version") {
            Some(version) => match version.as_u64() {
                Some(v @ 1..=METADATA_VERSION) => v,
                _ => {
                    return Err(MetadataError::Version {
                        found: version.to_string(),
                    })
                }
            },
            None => return Err(MetadataError::Layout("no `version`".into())),
        };
        let mut known = vec!["version", "missing", "id_field", "features"];
        if version >= 2 {
            known.push("per_key");
        }
        only(object, &known, "the entry")?;
        let items = object
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| layout("`features`", "a list"))?;
        let mut features: Vec<Feature> = Vec::with_capacity(items.len());
        let mut learned = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let (feature, state) = read_feature(index, item, version)?;
            if features.contains(&feature) {
                return Err(MetadataError::Duplicate {
                    name: feature.name().to_string(),
                });
            }
            features.push(feature);
            learned.push(state);
        }
        let missing_text = string(object, "missing", "")?;
        let missing = missing_text
            .parse::<Missing>()
            .map_err(|_| MetadataError::Missing(missing_text.clone()))?;
        let id_field =
            FieldPath::parse(&string(object, "id_field", "")?).map_err(MetadataError::IdField)?;
        let per_key = match version {
            1 => PerKeySettings::default(),
            _ => read_per_key(object.get("per_key"))?,
        };
        // As in a checked specification: settings without per-key items are not kept.
        let per_key = if features.iter().any(|f| f.per_key().is_some()) {
            per_key
        } else {
            PerKeySettings::default()
        };
        if features.is_empty() {
            return Err(MetadataError::NoFeatures);
        }
        let spec = FeatureSpec {
            features,
            missing,
            id_field,
            per_key,
        };
        Ok(NamedFeatures::new(spec, learned))
    }
}

/// One feature as the entry keeps it.
fn wire_feature(feature: &Feature, learned: &Learned) -> WireFeature {
    let per_key = feature.per_key();
    let mut wire = WireFeature {
        field: feature.field().map(ToString::to_string),
        transform: feature
            .field()
            .map(|_| feature.transform().name().to_string()),
        per_key: per_key.map(|p| p.kind().to_string()),
        ..WireFeature::default()
    };
    match per_key {
        Some(PerKey::Lag(k)) => wire.k = Some(u64::from(k)),
        Some(PerKey::Count(window)) => wire.window = Some(window.to_string()),
        _ => {}
    }
    match learned {
        Learned::Median(median) => wire.median = Some(*median),
        Learned::Categories(counts) => wire.counts = Some(counts.counts().clone()),
        Learned::Moments { mean, std, median } => {
            wire.mean = Some(*mean);
            wire.std = Some(*std);
            wire.median = Some(*median);
        }
        Learned::Nothing => {}
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;
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
            corrupt(|v| v["version"] = json!(3)),
            Err(MetadataError::Version { found: "3".into() })
        );
        assert!(
            message(corrupt(|v| v["version"] = json!(2))).contains("per_key"),
            "version 2 has per-key settings"
        );
        assert!(
            message(corrupt(|v| v["per_key"] = json!({}))).contains("per_key"),
            "not in version 1"
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

    fn per_key_named() -> NamedFeatures {
        let records: Vec<Value> = (0..30)
            .map(|i| json!({"card": i % 3, "amount": 5 + i % 7, "ts": 60_000 * i}))
            .collect();
        FeatureParams::new(
            "amount:log,amount:log:zscore,amount:delta,amount:lag:2,count:10m,since_last",
        )
        .key_field(Some("card".into()))
        .time_field(Some("ts".into()))
        .half_life(12.5)
        .min_history(4)
        .max_window_records(50)
        .state_ttl(Some(Span::parse("36h").unwrap()))
        .check()
        .unwrap()
        .fit(&records)
        .unwrap()
        .features
    }

    #[test]
    fn per_key_features_round_trip_with_their_settings() {
        let features = per_key_named();
        let text = features.to_metadata();
        let read = NamedFeatures::from_metadata(&text).unwrap();
        assert_eq!(read, features);
        assert_eq!(read.to_metadata(), text);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["version"], 2);
        assert_eq!(
            value["per_key"],
            json!({"key_field": "card", "time_field": "ts", "half_life": 12.5,
                   "min_history": 4, "max_window_records": 50, "state_ttl": "36h"})
        );
        assert_eq!(value["features"][1]["per_key"], "zscore");
        assert!(
            value["features"][1]["mean"].is_number() && value["features"][1]["std"].is_number()
        );
        assert_eq!(value["features"][3]["k"], 2);
        assert_eq!(
            value["features"][4],
            json!({"per_key": "count", "window": "10m"})
        );
        assert!(value["features"][5].get("field").is_none());
        let never = NamedFeatures::from_metadata(&text.replace("\"36h\"", "\"never\"")).unwrap();
        assert_eq!(never.spec().per_key().state_ttl(), None);
    }

    #[test]
    fn a_corrupt_per_key_entry_is_refused_with_the_problem_named() {
        let text = per_key_named().to_metadata();
        let corrupt = |change: &dyn Fn(&mut Value)| {
            let mut value: Value = serde_json::from_str(&text).unwrap();
            change(&mut value);
            NamedFeatures::from_metadata(&value.to_string())
                .unwrap_err()
                .to_string()
        };
        for (change, expected) in [
            (
                &(|v: &mut Value| v["per_key"]["half_life"] = json!(0.5)) as &dyn Fn(&mut Value),
                "half-life",
            ),
            (
                &|v: &mut Value| v["per_key"]["state_ttl"] = json!("soon"),
                "\"soon\"",
            ),
            (
                &|v: &mut Value| v["per_key"]["key_field"] = json!(3),
                "key_field",
            ),
            (&|v: &mut Value| v["per_key"]["colour"] = json!(1), "colour"),
            (
                &|v: &mut Value| v["features"][1]["per_key"] = json!("median"),
                "unknown per-key item",
            ),
            (
                &|v: &mut Value| v["features"][3]["k"] = json!(65),
                "`k` must be 1 to 64",
            ),
            (
                &|v: &mut Value| v["features"][2]["k"] = json!(2),
                "only `lag` has a `k`",
            ),
            (
                &|v: &mut Value| {
                    v["features"][4]["field"] = json!("amount");
                    v["features"][4]["transform"] = json!("number");
                },
                "`count` has no `field` and no `transform`",
            ),
            (
                &|v: &mut Value| v["features"][4]["window"] = json!("60"),
                "not a span",
            ),
            (
                &|v: &mut Value| {
                    v["features"][1].as_object_mut().unwrap().remove("std");
                },
                "a zscore has",
            ),
            (
                &|v: &mut Value| v["features"][4]["median"] = json!(1.0),
                "a count learns nothing",
            ),
            (
                &|v: &mut Value| v["features"][1]["transform"] = json!("hour"),
                "follows `number` or `log`",
            ),
            (
                &|v: &mut Value| {
                    v["features"][2].as_object_mut().unwrap().remove("field");
                },
                "`delta` needs a `field`",
            ),
            (
                &|v: &mut Value| v["version"] = json!(1),
                "unknown key \"per_key\"",
            ),
        ] {
            let error = corrupt(change);
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
