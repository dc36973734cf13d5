//! Extraction: one row of numbers from one record, with the learned state, or the reason the
//! record cannot give one ([`ExtractError`], what a dead letter carries).

use schema::RecordId;
use serde_json::Value;

use crate::categories::CategoryCounts;
use crate::item::{Feature, Transform};
use crate::path::FieldPath;
use crate::reader::{Fields, Plan};
use crate::spec::{FeatureSpec, Missing};
use crate::state::StateLayout;
use crate::value::{category_key, log1p, Instant, Scalar, MAX_EPOCH_MS};

/// Why a record gives no row. [`reason`](Self::reason) is the stable, machine-readable code
/// for the dead-letter topic; `Display` is the detail for people, naming the feature's field
/// (and the feature, where its name says more): `/merchant/geo/lat is a string`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The bytes are not UTF-8.
    #[error("the record is not UTF-8 text")]
    NotUtf8,
    /// The bytes are not JSON.
    #[error("the record is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the record is JSON but not an object")]
    NotAnObject,
    /// A feature's field is absent or `null`, and missing fields are dead-lettered.
    #[error("{field} is missing{}", also(feature, field))]
    Missing {
        /// The feature.
        feature: String,
        /// Its field.
        field: String,
    },
    /// A number was expected.
    #[error("{field} is {found}{}", also(feature, field))]
    NotNumeric {
        /// The feature.
        feature: String,
        /// Its field.
        field: String,
        /// What the field holds (`a string`, `an object`, …).
        found: String,
    },
    /// `:log` of a negative number.
    #[error("{field} is {value}, and {feature} needs a number ≥ 0")]
    NegativeLog {
        /// The feature.
        feature: String,
        /// Its field.
        field: String,
        /// The value.
        value: f64,
    },
    /// `:hour` or `:weekday` of something that is not a time.
    #[error(
        "{field} is {found}, not a time (RFC 3339, naive ISO 8601 as UTC, or epoch \
         milliseconds within ±8.64e15){}",
        also(feature, field)
    )]
    NotATime {
        /// The feature.
        feature: String,
        /// Its field.
        field: String,
        /// What the field holds, quoted and shortened.
        found: String,
    },
    /// `:category` of something that is not a string or an integer.
    #[error(
        "{field} is {found}, not a string or an integer category{}",
        also(feature, field)
    )]
    NotACategory {
        /// The feature.
        feature: String,
        /// Its field.
        field: String,
        /// What the field holds.
        found: String,
    },
    /// The id field holds something that cannot identify a record.
    #[error("the id field {field} is {found}, not an integer or a non-empty string")]
    InvalidId {
        /// The id field.
        field: String,
        /// What it holds.
        found: String,
    },
    /// Per-key items need a key: the key field is absent or `null`, or (keyed by the Kafka
    /// key) the record has none. A key is never imputed.
    #[error("{}", match field {
        Some(field) => format!("the key field {field} is missing"),
        None => "the record has no Kafka key".to_string(),
    })]
    MissingKey {
        /// The key field (`None`: the Kafka key).
        field: Option<String>,
    },
    /// The key field holds something that cannot be a key.
    #[error("the key field {field} is {found}, not a string or an integer")]
    InvalidKey {
        /// The key field.
        field: String,
        /// What it holds.
        found: String,
    },
    /// Per-key items need the record's time: the time field is absent or `null`, or (timed
    /// by the Kafka timestamp) the record has none. A time is never imputed.
    #[error("{}", match field {
        Some(field) => format!("the time field {field} is missing"),
        None => "the record has no Kafka timestamp".to_string(),
    })]
    MissingTime {
        /// The time field (`None`: the Kafka timestamp).
        field: Option<String>,
    },
    /// The time field holds something that is not a time.
    #[error(
        "the time field {field} is {found}, not a time (RFC 3339, naive ISO 8601 as UTC, or \
         epoch milliseconds within ±8.64e15)"
    )]
    NotATimeField {
        /// The time field.
        field: String,
        /// What it holds, quoted and shortened.
        found: String,
    },
    /// The features have per-key items, and this way of reading has no key history: read
    /// such records through a [`StateStore`](crate::StateStore).
    #[error(
        "the features have per-key items ({0}): records are read with their key's history, \
         through a state store"
    )]
    NeedsKeyState(String),
}

/// ` (feature NAME)` when the feature's name says more than its field.
fn also(feature: &str, field: &str) -> String {
    if feature == field {
        String::new()
    } else {
        format!(" (feature {feature})")
    }
}

impl ExtractError {
    /// The stable, machine-readable reason, as dead letters carry it.
    pub fn reason(&self) -> &'static str {
        match self {
            ExtractError::NotUtf8 => "not_utf8",
            ExtractError::NotJson(_) => "not_json",
            ExtractError::NotAnObject => "not_an_object",
            ExtractError::Missing { .. } => "missing_feature",
            ExtractError::NotNumeric { .. } => "not_numeric",
            ExtractError::NegativeLog { .. } => "negative_log",
            ExtractError::NotATime { .. } => "not_a_time",
            ExtractError::NotACategory { .. } => "not_a_category",
            ExtractError::InvalidId { .. } => "invalid_id",
            ExtractError::MissingKey { .. } => "missing_key",
            ExtractError::InvalidKey { .. } => "invalid_key",
            ExtractError::MissingTime { .. } => "missing_time",
            ExtractError::NotATimeField { .. } => "not_a_time",
            ExtractError::NeedsKeyState(_) => "needs_key_state",
        }
    }

    /// The feature at fault, if one is.
    pub fn feature(&self) -> Option<&str> {
        match self {
            ExtractError::Missing { feature, .. }
            | ExtractError::NotNumeric { feature, .. }
            | ExtractError::NegativeLog { feature, .. }
            | ExtractError::NotATime { feature, .. }
            | ExtractError::NotACategory { feature, .. } => Some(feature),
            _ => None,
        }
    }
}

/// What a feature learned from its training data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Learned {
    /// A number, log, hour or weekday feature: the median of its training values (after the
    /// transform), which stands in for a missing value under [`Missing::Impute`].
    ///
    /// For per-key items, the value that stands for "no history": `delta` the median of the
    /// training deltas, `since_last` the median of the training gaps in seconds (a key's
    /// first record), `lag:K` the median of the field (a slot before the key's first value
    /// when the current value is missing too).
    Median(f64),
    /// A category feature: how often each category occurred.
    Categories(CategoryCounts),
    /// A `zscore` item: the mean and standard deviation of the field over all training
    /// records (after its transform), which stand in for a key's own until it has enough
    /// history, and the median training z-score, which stands in for a missing field under
    /// [`Missing::Impute`].
    Moments {
        /// The training mean.
        mean: f64,
        /// The training standard deviation (population).
        std: f64,
        /// The median training z-score.
        median: f64,
    },
    /// A `count:WINDOW` item: nothing (every record has a count, 0 for a key's first).
    Nothing,
}

/// Named features ready to use: the specification and what each feature learned. Built by
/// [`FeatureSpec::fit`] from training records, or read back from a model's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedFeatures {
    spec: FeatureSpec,
    learned: Vec<Learned>,
    /// Derived from `spec`: the paths [`read`](Self::read) follows.
    plan: Plan,
    /// Derived from `spec`: what a key's history holds.
    layout: StateLayout,
}

impl NamedFeatures {
    /// The specification with its learned state (one per feature, of the feature's kind:
    /// the callers check).
    pub(crate) fn new(spec: FeatureSpec, learned: Vec<Learned>) -> NamedFeatures {
        let per_key = spec.is_per_key();
        let plan = Plan::new(Fields {
            features: spec.features().iter().map(Feature::field),
            id: spec.id_field(),
            key: spec.per_key().key_field().filter(|_| per_key),
            time: spec.per_key().time_field().filter(|_| per_key),
        });
        let layout = StateLayout::new(&spec);
        NamedFeatures {
            spec,
            learned,
            plan,
            layout,
        }
    }

    /// The paths a record is read along.
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What a key's history holds.
    pub(crate) fn layout(&self) -> &StateLayout {
        &self.layout
    }

    /// True when some item is computed from the key's history ([`FeatureSpec::is_per_key`]):
    /// read records through a [`StateStore`](crate::StateStore), not [`read`](Self::read).
    pub fn is_per_key(&self) -> bool {
        self.spec.is_per_key()
    }

    /// The refusal of a stateless reading when the features have per-key items.
    fn refuse_per_key(&self) -> Result<(), ExtractError> {
        match self.features().iter().find(|f| f.per_key().is_some()) {
            Some(feature) => Err(ExtractError::NeedsKeyState(feature.name().to_string())),
            None => Ok(()),
        }
    }

    /// The specification.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The features, in row order.
    pub fn features(&self) -> &[Feature] {
        self.spec.features()
    }

    /// The columns' names, in row order (as the model names its features).
    pub fn names(&self) -> Vec<String> {
        self.spec.names()
    }

    /// Columns per row (an item may fill several: [`Feature::width`]).
    pub fn len(&self) -> usize {
        self.spec.len()
    }

    /// Always false: there is at least one feature.
    pub fn is_empty(&self) -> bool {
        self.spec.is_empty()
    }

    /// What each item learned, in the order of [`features`](Self::features).
    pub fn learned(&self) -> &[Learned] {
        &self.learned
    }

    /// The field identifying a record.
    pub fn id_field(&self) -> &FieldPath {
        self.spec.id_field()
    }

    /// Appends `record`'s row (one value per feature) to `row`. On an error nothing is
    /// appended. `row` may already hold other rows: this builds row-major tables. Features
    /// with per-key items are refused ([`ExtractError::NeedsKeyState`]).
    pub fn extract_into(&self, record: &Value, row: &mut Vec<f64>) -> Result<(), ExtractError> {
        self.refuse_per_key()?;
        if !record.is_object() {
            return Err(ExtractError::NotAnObject);
        }
        let start = row.len();
        let mut scratch = Scratch::default();
        let features = self.spec.features.iter().zip(&self.learned);
        for ((feature, learned), &slot) in features.zip(&self.plan.feature_slots) {
            let value = feature
                .field()
                .and_then(|field| field.lookup(record))
                .map(Scalar::of);
            match self.value(feature, learned, value.as_ref(), &mut scratch, slot) {
                Ok(value) => row.push(value),
                Err(error) => {
                    row.truncate(start);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// `record`'s row.
    pub fn extract(&self, record: &Value) -> Result<Vec<f64>, ExtractError> {
        let mut row = Vec::with_capacity(self.len());
        self.extract_into(record, &mut row)?;
        Ok(row)
    }

    /// The record's id from the id field: `None` when it has none (it is then identified by
    /// where it was read); an error when the field holds something that cannot be an id.
    pub fn record_id(&self, record: &Value) -> Result<Option<RecordId>, ExtractError> {
        let value = self.id_field().lookup(record).map(Scalar::of);
        self.id_of(value.as_ref())
    }

    /// Reads a record from its bytes: its id (see [`record_id`](Self::record_id)) and its
    /// row, appended to `row` as [`extract_into`](Self::extract_into) does. This is the whole
    /// per-record step of a consumer.
    ///
    /// It parses the JSON once without building a tree, keeping only the values the features
    /// and the id read: the same values, so the same row or the same error, as
    /// [`extract_into`](Self::extract_into) on the parsed record. The syntax of the whole
    /// record is checked, but values no feature reads are not converted: a number beyond a
    /// 64-bit float, or a lone surrogate escape, in such a field is not an error here.
    ///
    /// Features with per-key items are refused ([`ExtractError::NeedsKeyState`]): read those
    /// records through a [`StateStore`](crate::StateStore).
    pub fn read(&self, bytes: &[u8], row: &mut Vec<f64>) -> Result<Option<RecordId>, ExtractError> {
        self.refuse_per_key()?;
        let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
        self.plan
            .read(text, |slots| {
                let slots = slots.ok_or(ExtractError::NotAnObject)?;
                let id = self.id_of(slots[self.plan.id_slot].as_ref())?;
                let start = row.len();
                let mut scratch = Scratch::default();
                let features = self.spec.features().iter().zip(&self.learned);
                for ((feature, learned), &slot) in features.zip(&self.plan.feature_slots) {
                    let value = slot.and_then(|slot| slots[slot].as_ref());
                    match self.value(feature, learned, value, &mut scratch, slot) {
                        Ok(value) => row.push(value),
                        Err(error) => {
                            row.truncate(start);
                            return Err(error);
                        }
                    }
                }
                Ok(id)
            })
            .map_err(|e| ExtractError::NotJson(e.to_string()))?
    }

    pub(crate) fn id_of(&self, value: Option<&Scalar>) -> Result<Option<RecordId>, ExtractError> {
        id_from(self.id_field(), value)
    }

    /// One feature's value from its field's value (`None`: absent); `slot` names the field
    /// for [`Scratch`]'s memory of times. For a per-key item on a field, the field's value
    /// after its transform (the per-key step computes the rest); a missing value under
    /// [`Missing::Impute`] is then NaN, which the per-key step replaces.
    pub(crate) fn value(
        &self,
        feature: &Feature,
        learned: &Learned,
        value: Option<&Scalar>,
        scratch: &mut Scratch,
        slot: Option<usize>,
    ) -> Result<f64, ExtractError> {
        let value = match value {
            None | Some(Scalar::Null) => return self.stand_in(feature, learned),
            Some(value) => value,
        };
        match (stateless(feature, value, scratch, slot)?, learned) {
            (Stateless::Number(number), _) => Ok(number),
            (Stateless::Category(key), Learned::Categories(counts)) => {
                Ok(counts.encode(feature.transform(), key))
            }
            // A category feature always learns categories (checked when built or read).
            (Stateless::Category(_), _) => Ok(0.0),
        }
    }

    /// What stands in for a missing value, or the refusal.
    fn stand_in(&self, feature: &Feature, learned: &Learned) -> Result<f64, ExtractError> {
        if self.spec.missing() == Missing::DeadLetter {
            return Err(ExtractError::Missing {
                feature: feature.name().to_string(),
                field: feature.field().map(ToString::to_string).unwrap_or_default(),
            });
        }
        Ok(match learned {
            _ if feature.per_key().is_some() => f64::NAN,
            Learned::Median(median) => *median,
            Learned::Categories(counts) => {
                counts.encode(feature.transform(), counts.most_frequent())
            }
            Learned::Moments { median, .. } => *median,
            Learned::Nothing => 0.0,
        })
    }
}

/// The id the id field's value gives: `None` when absent; an error when it cannot be an id.
pub(crate) fn id_from(
    field: &FieldPath,
    value: Option<&Scalar>,
) -> Result<Option<RecordId>, ExtractError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Int(id)) => Ok(Some(RecordId::Int(*id))),
        Some(Scalar::Str(id)) if !id.is_empty() => Ok(Some(RecordId::Str(id.to_string()))),
        Some(other) => Err(ExtractError::InvalidId {
            field: field.to_string(),
            found: other.quote(),
        }),
    }
}

/// A present value after its transform, before anything learned is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stateless<'b> {
    /// A number, log, hour or weekday value.
    Number(f64),
    /// A category's key.
    Category(&'b str),
}

/// What reading one record reuses between its features: a buffer for integer category keys,
/// and the last time read (`ts:hour,ts:weekday` read `ts` once).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffer: String,
    /// The field (its reader slot) and what its value read as.
    time: Option<(usize, Option<Instant>)>,
}

/// The transform of a present, non-null value: all of the feature that depends on the record
/// alone. `slot`, when given, names the field in `scratch`'s memory of times.
pub(crate) fn stateless<'b>(
    feature: &Feature,
    value: &'b Scalar<'_>,
    scratch: &'b mut Scratch,
    slot: Option<usize>,
) -> Result<Stateless<'b>, ExtractError> {
    let names = || {
        (
            feature.name().to_string(),
            feature.field().map(ToString::to_string).unwrap_or_default(),
        )
    };
    match feature.transform() {
        Transform::Category | Transform::Rarity => match category_key(value, &mut scratch.buffer) {
            Some(key) => Ok(Stateless::Category(key)),
            None => {
                let (feature, field) = names();
                Err(ExtractError::NotACategory {
                    feature,
                    field,
                    found: value.describe(),
                })
            }
        },
        transform @ (Transform::Hour | Transform::Weekday) => {
            let instant = match (scratch.time, slot) {
                (Some((read, instant)), Some(slot)) if read == slot => instant,
                _ => {
                    let instant = Instant::of(value);
                    scratch.time = slot.map(|slot| (slot, instant));
                    instant
                }
            };
            match instant {
                Some(instant) if transform == Transform::Hour => {
                    Ok(Stateless::Number(instant.hour()))
                }
                Some(instant) => Ok(Stateless::Number(instant.weekday())),
                None => {
                    let (feature, field) = names();
                    let found = match value.number() {
                        Some(n) if n.abs() > MAX_EPOCH_MS => format!("{n} ms"),
                        _ => value.quote(),
                    };
                    Err(ExtractError::NotATime {
                        feature,
                        field,
                        found,
                    })
                }
            }
        }
        transform @ (Transform::Number | Transform::Log) => {
            let Some(number) = value.number() else {
                let (feature, field) = names();
                return Err(ExtractError::NotNumeric {
                    feature,
                    field,
                    found: value.describe(),
                });
            };
            if transform == Transform::Number {
                return Ok(Stateless::Number(number));
            }
            log1p(number).map(Stateless::Number).ok_or_else(|| {
                let (feature, field) = names();
                ExtractError::NegativeLog {
                    feature,
                    field,
                    value: number,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureParams;
    use serde_json::json;

    /// Features fitted on three simple records.
    fn fitted(list: &str, missing: Missing) -> NamedFeatures {
        let training = [
            json!({"amount": 10.0, "mcc": "5411", "ts": "2026-12-01T10:00:00Z", "geo": {"lat": 1.0}}),
            json!({"amount": 20.0, "mcc": "5411", "ts": "2026-12-01T12:00:00Z", "geo": {"lat": 2.0}}),
            json!({"amount": 60.0, "mcc": 5812, "ts": "2026-12-02T14:00:00Z", "geo": {"lat": 4.0}}),
        ];
        FeatureParams::new(list)
            .missing(missing)
            .check()
            .unwrap()
            .fit(&training)
            .unwrap()
            .features
    }

    #[test]
    fn numbers_and_logs_read_as_numbers() {
        let features = fitted("amount,amount:log,/geo/lat", Missing::DeadLetter);
        let row = features
            .extract(&json!({"amount": 3, "geo": {"lat": -2.5}}))
            .unwrap();
        assert_eq!(row, [3.0, 4f64.ln(), -2.5]);
        let negative = features.extract(&json!({"amount": -1, "geo": {"lat": 0}}));
        let error = negative.unwrap_err();
        assert_eq!(error.reason(), "negative_log");
        assert_eq!(
            error.to_string(),
            "amount is -1, and amount:log needs a number ≥ 0"
        );
        assert_eq!(error.feature(), Some("amount:log"));
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let features = fitted("/geo/lat", Missing::Impute);
        for (value, found) in [
            (json!("48.8"), "a string"),
            (json!(true), "a boolean"),
            (json!([1]), "an array"),
            (json!({"deg": 1}), "an object"),
        ] {
            let error = features
                .extract(&json!({"geo": {"lat": value}}))
                .unwrap_err();
            assert_eq!(error.reason(), "not_numeric");
            assert_eq!(error.to_string(), format!("/geo/lat is {found}"));
        }
    }

    #[test]
    fn categories_encode_as_training_frequency_and_unseen_as_zero() {
        let features = fitted("mcc:category", Missing::DeadLetter);
        let frequency = |mcc: Value| features.extract(&json!({"mcc": mcc})).unwrap()[0];
        assert_eq!(frequency(json!("5411")), 2.0 / 3.0);
        assert_eq!(
            frequency(json!(5411)),
            2.0 / 3.0,
            "an integer is its digits"
        );
        assert_eq!(frequency(json!("5812")), 1.0 / 3.0);
        assert_eq!(frequency(json!("7995")), 0.0, "never seen in training");
        let error = features.extract(&json!({"mcc": 54.11})).unwrap_err();
        assert_eq!(error.reason(), "not_a_category");
        assert_eq!(
            error.to_string(),
            "mcc is 54.11, not a string or an integer category (feature mcc:category)"
        );
    }

    #[test]
    fn rarity_is_the_surprisal_in_bits_and_unseen_is_half_a_count() {
        let features = fitted("mcc:rarity,mcc:category", Missing::DeadLetter);
        let row = |mcc: Value| features.extract(&json!({"mcc": mcc})).unwrap();
        // 5411 is 2 of 3, 5812 1 of 3; unseen counts as 0.5 of 3.
        assert_eq!(row(json!("5411")), [(3.0f64 / 2.0).log2(), 2.0 / 3.0]);
        assert_eq!(row(json!(5812)), [3f64.log2(), 1.0 / 3.0]);
        assert_eq!(
            row(json!("7995")),
            [6f64.log2(), 0.0],
            "never seen: one bit rarer"
        );
        let error = features.extract(&json!({"mcc": true})).unwrap_err();
        assert_eq!(error.reason(), "not_a_category");
        assert_eq!(error.feature(), Some("mcc:rarity"));
        let impute = fitted("mcc:rarity", Missing::Impute);
        assert_eq!(
            impute.extract(&json!({})).unwrap(),
            [(3.0f64 / 2.0).log2()],
            "the most frequent category stands in"
        );
    }

    #[test]
    fn times_give_hours_and_weekdays_or_not_a_time() {
        let features = fitted("ts:hour,ts:weekday", Missing::DeadLetter);
        let row = |ts: Value| features.extract(&json!({"ts": ts}));
        assert_eq!(row(json!("2026-12-01T03:15:00Z")).unwrap(), [3.25, 1.0]);
        assert_eq!(
            row(json!("2026-12-01T03:15:00")).unwrap(),
            [3.25, 1.0],
            "naive: UTC"
        );
        assert_eq!(
            row(json!("2026-12-01T04:15:00+01:00")).unwrap(),
            [3.25, 1.0]
        );
        // 2026-12-01T03:15:00Z in epoch milliseconds.
        assert_eq!(row(json!(1_796_094_900_000i64)).unwrap(), [3.25, 1.0]);
        for (ts, found) in [
            (json!("tomorrow"), "\"tomorrow\""),
            (json!(true), "a boolean"),
            (json!(1e20), "100000000000000000000 ms"),
        ] {
            let error = row(ts).unwrap_err();
            assert_eq!(error.reason(), "not_a_time");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("ts is {found}, not a time")),
                "{error}"
            );
            assert!(error.to_string().ends_with("(feature ts:hour)"), "{error}");
        }
    }

    #[test]
    fn missing_fields_are_refused_or_imputed_as_the_policy_says() {
        let list = "amount,mcc:category,ts:hour";
        let refuse = fitted(list, Missing::DeadLetter);
        let error = refuse.extract(&json!({"amount": 1, "ts": 0})).unwrap_err();
        assert_eq!(error.reason(), "missing_feature");
        assert_eq!(error.to_string(), "mcc is missing (feature mcc:category)");
        let null = refuse
            .extract(&json!({"amount": null, "mcc": "5411", "ts": 0}))
            .unwrap_err();
        assert_eq!(null.to_string(), "amount is missing", "null is missing");

        let impute = fitted(list, Missing::Impute);
        // Medians: amount 20, hour 12; the most frequent category 5411 (2 of 3).
        assert_eq!(impute.extract(&json!({})).unwrap(), [20.0, 2.0 / 3.0, 12.0]);
        assert_eq!(
            impute.extract(&json!({"amount": 5, "mcc": null})).unwrap(),
            [5.0, 2.0 / 3.0, 12.0]
        );
        // A wrong type is never imputed.
        assert_eq!(
            impute
                .extract(&json!({"amount": "5"}))
                .unwrap_err()
                .reason(),
            "not_numeric"
        );
    }

    #[test]
    fn a_failed_extraction_appends_nothing() {
        let features = fitted("amount,mcc:category", Missing::DeadLetter);
        let mut rows = vec![7.0];
        features
            .extract_into(&json!({"amount": 1, "mcc": "5411"}), &mut rows)
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(features
            .extract_into(&json!({"amount": 1}), &mut rows)
            .is_err());
        assert_eq!(rows.len(), 3);
        assert_eq!(
            features
                .extract_into(&json!([1, 2]), &mut rows)
                .unwrap_err(),
            ExtractError::NotAnObject
        );
    }

    #[test]
    fn ids_are_integers_or_non_empty_strings_and_may_be_absent() {
        let features = fitted("amount", Missing::DeadLetter);
        let id = |record: Value| features.record_id(&record);
        assert_eq!(id(json!({"id": 7})), Ok(Some(RecordId::Int(7))));
        assert_eq!(
            id(json!({"id": "p-7"})),
            Ok(Some(RecordId::Str("p-7".into())))
        );
        assert_eq!(id(json!({"amount": 1})), Ok(None));
        assert_eq!(id(json!({"id": null})), Ok(None));
        for bad in [json!(""), json!(1.5), json!({"a": 1}), json!(true)] {
            let error = id(json!({ "id": bad })).unwrap_err();
            assert_eq!(error.reason(), "invalid_id", "{bad}");
        }
        let nested = FeatureParams::new("amount")
            .id_field("/meta/ref")
            .check()
            .unwrap()
            .fit(&[json!({"amount": 1})])
            .unwrap()
            .features;
        assert_eq!(
            nested.record_id(&json!({"id": 1, "meta": {"ref": "r-1"}})),
            Ok(Some(RecordId::Str("r-1".into())))
        );
    }

    #[test]
    fn bytes_read_to_an_id_and_a_row_or_say_why_not() {
        let features = fitted("amount,mcc:category", Missing::DeadLetter);
        let mut row = Vec::new();
        let id = features
            .read(br#"{"id": "a", "amount": 2.5, "mcc": "5812"}"#, &mut row)
            .unwrap();
        assert_eq!(
            (id, row),
            (Some(RecordId::Str("a".into())), vec![2.5, 1.0 / 3.0])
        );
        let mut row = Vec::new();
        for (bytes, reason) in [
            (&b"{\"amount\": 1,"[..], "not_json"),
            (b"{} x", "not_json"),
            (b"\xff", "not_utf8"),
            (b"7", "not_an_object"),
            (b"[1]", "not_an_object"),
            (br#"{"id": [], "amount": 1, "mcc": "x"}"#, "invalid_id"),
            (br#"{"amount": 1}"#, "missing_feature"),
        ] {
            let error = features.read(bytes, &mut row).unwrap_err();
            assert_eq!(error.reason(), reason, "{}", String::from_utf8_lossy(bytes));
        }
        assert!(row.is_empty());
    }
}
