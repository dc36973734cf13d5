//! The specification: which features a model reads, parsed from a `--features` list and
//! validated once ([`FeatureParams`] → [`FeatureSpec`], as linfa checks its parameters).

use std::fmt;
use std::str::FromStr;

use crate::path::{FieldPath, PathError};

/// What is computed from a field's value.
///
/// Every transform so far is stateless: it reads one record. Transforms computed from a key's
/// history (a z-score against the card's own amounts, the time since its last record) will be
/// further variants, marked by [`Transform::is_stateless`] returning false, and computed by a
/// separate stateful step after the stateless extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transform {
    /// The number as it is (`amount`, or explicitly `amount:number`).
    Number,
    /// `ln(1 + x)` of a number `x ≥ 0` (`amount:log`): heavy-tailed amounts.
    Log,
    /// A string or integer category, encoded as its relative frequency in the training data;
    /// a value never seen in training is 0 (`mcc:category`).
    Category,
    /// A string or integer category, encoded as its surprisal in bits, −log2 of its relative
    /// frequency in the training data; a value never seen in training counts as half an
    /// occurrence, −log2(0.5 / N) for N training values (`mcc:rarity`). Rare values lie far
    /// from common ones, and unseen values beyond every training value.
    Rarity,
    /// The hour of day in UTC, 0 ≤ h < 24 and fractional, of an RFC 3339 time, a naive time
    /// (taken as UTC) or epoch milliseconds (`ts:hour`).
    Hour,
    /// The day of week in UTC, 0 = Monday … 6 = Sunday, of the same kinds of time
    /// (`ts:weekday`).
    Weekday,
}

impl Transform {
    /// Every transform, in the order the documentation lists them.
    pub const ALL: [Transform; 6] = [
        Transform::Number,
        Transform::Log,
        Transform::Category,
        Transform::Rarity,
        Transform::Hour,
        Transform::Weekday,
    ];

    /// The name written after the colon.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Number => "number",
            Transform::Log => "log",
            Transform::Category => "category",
            Transform::Rarity => "rarity",
            Transform::Hour => "hour",
            Transform::Weekday => "weekday",
        }
    }

    /// True when the value depends on the record alone (every transform so far).
    pub fn is_stateless(self) -> bool {
        true
    }

    /// True when the transform reads a category and learns category counts (`category`,
    /// `rarity`); else it reads a number or a time and learns a median.
    pub fn is_category(self) -> bool {
        matches!(self, Transform::Category | Transform::Rarity)
    }

    fn parse(name: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One feature: a field and what is computed from it. Two features are equal when they read
/// the same field the same way (`amount` and `/amount:number` are one feature).
#[derive(Debug, Clone)]
pub struct Feature {
    field: FieldPath,
    transform: Transform,
    name: String,
}

impl Feature {
    /// A feature of `field` with `transform`.
    pub fn new(field: FieldPath, transform: Transform) -> Self {
        let name = match transform {
            // A field whose name has a colon keeps an explicit `:number`, so that the name
            // reads back as the same feature.
            Transform::Number if !field.as_str().contains(':') => field.as_str().to_string(),
            _ => format!("{}:{}", field.as_str(), transform.name()),
        };
        Feature {
            field,
            transform,
            name,
        }
    }

    /// Reads one item of a `--features` list: `FIELD` or `FIELD:TRANSFORM`.
    ///
    /// The transform is the text after the first colon that is followed by a transform's
    /// name, so a pointer may hold colons (`/a:b/c`); a top-level field whose own name ends in
    /// `:something` takes an explicit transform (`ns:x:number`).
    pub fn parse(item: &str) -> Result<Feature, SpecError> {
        let item = item.trim();
        let problem = |kind| SpecError::Item {
            item: item.to_string(),
            kind,
        };
        if item.ends_with(':') {
            return Err(problem(ItemError::NoTransform));
        }
        let split = item
            .match_indices(':')
            .find_map(|(at, _)| Transform::parse(&item[at + 1..]).map(|t| (&item[..at], t)));
        let (field, transform) = match split {
            Some(split) => split,
            None => {
                if let Some((_, suffix)) = item.rsplit_once(':') {
                    if suffix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(problem(ItemError::UnknownTransform(suffix.to_string())));
                    }
                }
                (item, Transform::Number)
            }
        };
        let field = FieldPath::parse(field).map_err(|e| problem(ItemError::Field(e)))?;
        Ok(Feature::new(field, transform))
    }

    /// The name shown to people and given to the model: `amount`, `/merchant/mcc:category`,
    /// `ts:hour`. It reads back ([`Feature::parse`]) as the same feature.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field read.
    pub fn field(&self) -> &FieldPath {
        &self.field
    }

    /// What is computed from it.
    pub fn transform(&self) -> Transform {
        self.transform
    }
}

impl PartialEq for Feature {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.transform == other.transform
    }
}

impl Eq for Feature {}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name)
    }
}

/// What happens to a record that lacks a feature's field (absent or `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missing {
    /// The record is refused (to the dead-letter topic, reason `missing_feature`); in
    /// training it is left out. The default.
    #[default]
    DeadLetter,
    /// The training median stands in for a number, the most frequent training category for a
    /// category.
    Impute,
}

impl Missing {
    /// `dead-letter` or `impute`.
    pub fn name(self) -> &'static str {
        match self {
            Missing::DeadLetter => "dead-letter",
            Missing::Impute => "impute",
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Missing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "dead-letter" => Ok(Missing::DeadLetter),
            "impute" => Ok(Missing::Impute),
            _ => Err(format!("expected `dead-letter` or `impute`, not {text:?}")),
        }
    }
}

/// The field that identifies a record when nobody says otherwise.
pub const DEFAULT_ID_FIELD: &str = "id";

/// Why a feature list or setting is refused. Each names the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No feature at all.
    #[error("the feature list is empty")]
    Empty,
    /// An empty item (`a,,b`, or a trailing comma).
    #[error("feature {position} of the list is empty")]
    EmptyItem {
        /// 1-based position in the list.
        position: usize,
    },
    /// An item that cannot be read.
    #[error("feature {item:?}: {kind}")]
    Item {
        /// The item as written.
        item: String,
        /// What is wrong with it.
        kind: ItemError,
    },
    /// Two items name the same feature.
    #[error("feature {name:?} is listed twice")]
    Duplicate {
        /// The feature's name.
        name: String,
    },
    /// The id field cannot be read.
    #[error("id field: {0}")]
    IdField(PathError),
}

/// What is wrong with one item of a feature list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The field cannot be read.
    #[error("{0}")]
    Field(PathError),
    /// `FIELD:` with nothing after the colon.
    #[error("nothing after the colon (transforms: number, log, category, rarity, hour, weekday)")]
    NoTransform,
    /// A transform nobody knows.
    #[error(
        "unknown transform {0:?} (transforms: number, log, category, rarity, hour, weekday; a field \
         whose name holds a colon takes one explicitly, as in `ns:x:number`)"
    )]
    UnknownTransform(String),
}

/// The features a model should read, unchecked: a `--features` list and the settings that go
/// with it. [`check`](Self::check) validates them into a [`FeatureSpec`].
///
/// Defaults: missing fields are dead-lettered ([`Missing::DeadLetter`]) and a record is
/// identified by its `id` field where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureParams {
    list: String,
    missing: Missing,
    id_field: String,
}

impl FeatureParams {
    /// The comma-separated list, as `--features` takes it: `amount:log,/merchant/mcc:category`.
    pub fn new(list: impl Into<String>) -> Self {
        FeatureParams {
            list: list.into(),
            missing: Missing::default(),
            id_field: DEFAULT_ID_FIELD.to_string(),
        }
    }

    /// What to do with a record that lacks a feature.
    pub fn missing(mut self, missing: Missing) -> Self {
        self.missing = missing;
        self
    }

    /// The field identifying a record (a name or a pointer); records without it are
    /// identified by where they were read.
    pub fn id_field(mut self, id_field: impl Into<String>) -> Self {
        self.id_field = id_field.into();
        self
    }

    /// Validates the list and the settings.
    pub fn check(self) -> Result<FeatureSpec, SpecError> {
        if self.list.trim().is_empty() {
            return Err(SpecError::Empty);
        }
        let mut features: Vec<Feature> = Vec::new();
        for (index, item) in self.list.split(',').enumerate() {
            if item.trim().is_empty() {
                return Err(SpecError::EmptyItem {
                    position: index + 1,
                });
            }
            let feature = Feature::parse(item)?;
            if features.iter().any(|f| f == &feature) {
                return Err(SpecError::Duplicate {
                    name: feature.name().to_string(),
                });
            }
            features.push(feature);
        }
        let id_field = FieldPath::parse(self.id_field.trim()).map_err(SpecError::IdField)?;
        Ok(FeatureSpec {
            features,
            missing: self.missing,
            id_field,
        })
    }
}

/// A checked feature specification: what to read from each record, what to do when a field
/// is missing, and which field identifies a record. [`fit`](Self::fit) learns what the
/// features need from training records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    pub(crate) features: Vec<Feature>,
    pub(crate) missing: Missing,
    pub(crate) id_field: FieldPath,
}

impl FeatureSpec {
    /// The features, in row order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// The features' names, in row order.
    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name().to_string()).collect()
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Always false: a checked specification has at least one feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// What happens to a record that lacks a feature.
    pub fn missing(&self) -> Missing {
        self.missing
    }

    /// The field identifying a record.
    pub fn id_field(&self) -> &FieldPath {
        &self.id_field
    }

    /// True when some feature reads `field` (a label field must not be one).
    pub fn reads(&self, field: &FieldPath) -> bool {
        self.features.iter().any(|f| f.field() == field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(item: &str) -> Result<(String, Transform), SpecError> {
        Feature::parse(item).map(|f| (f.field().as_str().to_string(), f.transform()))
    }

    #[test]
    fn every_item_form_reads() {
        let cases = [
            ("amount", "amount", Transform::Number, "amount"),
            ("amount:number", "amount", Transform::Number, "amount"),
            ("amount:log", "amount", Transform::Log, "amount:log"),
            (
                " /merchant/mcc:category ",
                "/merchant/mcc",
                Transform::Category,
                "/merchant/mcc:category",
            ),
            ("ts:hour", "ts", Transform::Hour, "ts:hour"),
            ("ts:weekday", "ts", Transform::Weekday, "ts:weekday"),
            (
                "/merchant/geo/lat",
                "/merchant/geo/lat",
                Transform::Number,
                "/merchant/geo/lat",
            ),
            ("/a:b/c", "/a:b/c", Transform::Number, "/a:b/c:number"),
            ("/a:b/c:log", "/a:b/c", Transform::Log, "/a:b/c:log"),
            ("ns:x:number", "ns:x", Transform::Number, "ns:x:number"),
            ("/t~1z:hour", "/t~1z", Transform::Hour, "/t~1z:hour"),
        ];
        for (item, field, transform, name) in cases {
            let feature = Feature::parse(item).unwrap();
            assert_eq!(
                (
                    feature.field().as_str(),
                    feature.transform(),
                    feature.name()
                ),
                (field, transform, name),
                "{item}"
            );
            assert_eq!(
                Feature::parse(feature.name()).unwrap(),
                feature,
                "{name} reads back"
            );
        }
    }

    #[test]
    fn a_bad_item_is_refused_with_the_item_named() {
        let unknown = parse("amount:lg").unwrap_err();
        assert_eq!(
            unknown,
            SpecError::Item {
                item: "amount:lg".into(),
                kind: ItemError::UnknownTransform("lg".into())
            }
        );
        assert!(unknown.to_string().contains("\"amount:lg\""), "{unknown}");
        assert!(unknown.to_string().contains("ns:x:number"), "{unknown}");
        assert!(matches!(
            parse("amount:"),
            Err(SpecError::Item {
                kind: ItemError::NoTransform,
                ..
            })
        ));
        assert!(matches!(
            parse(":log"),
            Err(SpecError::Item {
                kind: ItemError::Field(PathError::Empty),
                ..
            })
        ));
        let escape = parse("/a~2:log").unwrap_err();
        assert!(
            matches!(&escape, SpecError::Item { item, kind: ItemError::Field(PathError::BadEscape { .. }) } if item == "/a~2:log"),
            "{escape:?}"
        );
    }

    #[test]
    fn a_list_reads_in_order_with_its_settings() {
        let spec = FeatureParams::new("amount:log, /merchant/mcc:category,ts:hour")
            .missing(Missing::Impute)
            .id_field("/meta/id")
            .check()
            .unwrap();
        assert_eq!(
            spec.names(),
            ["amount:log", "/merchant/mcc:category", "ts:hour"]
        );
        assert_eq!(spec.len(), 3);
        assert_eq!(spec.missing(), Missing::Impute);
        assert_eq!(spec.id_field().as_str(), "/meta/id");
        assert!(spec.reads(&FieldPath::parse("/amount").unwrap()));
        assert!(!spec.reads(&FieldPath::parse("label").unwrap()));
        let defaults = FeatureParams::new("x").check().unwrap();
        assert_eq!(defaults.missing(), Missing::DeadLetter);
        assert_eq!(defaults.id_field().as_str(), "id");
    }

    #[test]
    fn the_list_cannot_be_empty_or_hold_empty_items() {
        assert_eq!(FeatureParams::new(" ").check(), Err(SpecError::Empty));
        assert_eq!(
            FeatureParams::new("a,,b").check(),
            Err(SpecError::EmptyItem { position: 2 })
        );
        assert_eq!(
            FeatureParams::new("a,b,").check(),
            Err(SpecError::EmptyItem { position: 3 })
        );
    }

    #[test]
    fn a_feature_cannot_be_listed_twice() {
        assert_eq!(
            FeatureParams::new("amount,/amount:number").check(),
            Err(SpecError::Duplicate {
                name: "/amount".into()
            })
        );
        // The same field with two transforms is two features.
        assert!(FeatureParams::new("amount,amount:log").check().is_ok());
    }

    #[test]
    fn the_id_field_must_be_a_field() {
        assert_eq!(
            FeatureParams::new("a").id_field("").check(),
            Err(SpecError::IdField(PathError::Empty))
        );
    }

    #[test]
    fn names_pad_as_strings_do() {
        assert_eq!(format!("{:<6}|", Transform::Log), "log   |");
        let feature = Feature::parse("ts:hour").unwrap();
        assert_eq!(
            format!("{feature:>9}|{:<5}|", feature.field()),
            "  ts:hour|ts   |"
        );
        assert_eq!(format!("{:<12}|", Missing::Impute), "impute      |");
    }

    #[test]
    fn missing_policies_read_and_print() {
        for policy in [Missing::DeadLetter, Missing::Impute] {
            assert_eq!(policy.to_string().parse::<Missing>(), Ok(policy));
        }
        assert!("skip"
            .parse::<Missing>()
            .unwrap_err()
            .contains("dead-letter"));
    }
}
