//! Learning from training records: each category feature's counts, each other feature's
//! median, each `zscore`'s training mean and standard deviation; then, for per-key items, the
//! medians of what records with a history give (deltas, gaps, z-scores), computed by running
//! the training records through their keys' histories. Deterministic: the same records (in
//! the same order, where per-key items make order matter) give the same state (sorted maps, a
//! fixed median rule), so the model file is byte-identical for the same input.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::categories::CategoryCounts;
use crate::extract::{
    id_from, stateless, ExtractError, Learned, NamedFeatures, Scratch, Stateless,
};
use crate::item::PerKey;
use crate::reading::{key_from, time_from, Reading};
use crate::spec::{FeatureSpec, Missing};
use crate::state::KeyState;
use crate::store::RecordMeta;
use crate::value::Scalar;

/// What [`FeatureSpec::fit`] returns: the features ready to use, and the training table
/// extracted with them.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The features with what they learned.
    pub features: NamedFeatures,
    /// The kept records' rows, row-major, extracted exactly as any later record is.
    pub rows: Vec<f64>,
    /// For each row, the position of its record in the input.
    pub kept: Vec<usize>,
    /// Records left out (position in the input, and why), in input order.
    pub rejected: Vec<(usize, ExtractError)>,
}

/// A training record and what a consumer would know of it besides: its partition, Kafka key,
/// timestamp and offset (what per-key items may need).
#[derive(Debug, Clone, Copy)]
pub struct TrainingRecord<'r> {
    /// The record.
    pub value: &'r Value,
    /// Its partition: each partition's records are one history, in the order given.
    pub partition: i32,
    /// Its Kafka key, timestamp and offset.
    pub meta: RecordMeta<'r>,
}

/// Why nothing can be learned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LearnError {
    /// No training records.
    #[error("no training records")]
    NoRecords,
    /// Every record was left out.
    #[error("none of the {records} training records is usable; the first (record {index}): {reason}: {first}", reason = first.reason())]
    NoUsableRecords {
        /// Records given.
        records: usize,
        /// Position of the first.
        index: usize,
        /// Why the first was left out.
        first: ExtractError,
    },
    /// With missing values imputed: a feature no training record has.
    #[error("no training record has {feature}: there is nothing to learn a stand-in from")]
    NoValues {
        /// The feature.
        feature: String,
    },
    /// A per-key item no training record had a history for (no key had two records with
    /// the field).
    #[error(
        "no training record has a history for {feature} (no key has two records with it): \
         there is nothing to learn its value for a key without history from"
    )]
    NoHistory {
        /// The feature.
        feature: String,
    },
}

/// Values gathered for one feature.
enum Gathered {
    Numbers(Vec<f64>),
    Categories(BTreeMap<String, u64>),
}

impl FeatureSpec {
    /// Learns what the features need from training records: category counts and medians,
    /// from the records whose features can all be read (a missing field, under
    /// [`Missing::DeadLetter`], leaves its record out, as it would refuse it later), then
    /// extracts the training rows with what was learned, exactly as any later record is.
    ///
    /// Records are taken as one partition, in the order given, without Kafka keys or
    /// timestamps (offsets count from 0): per-key items then need a key field and, for times,
    /// a time field. [`fit_records`](Self::fit_records) takes what a topic gives.
    pub fn fit<'r, I>(&self, records: I) -> Result<Fitted, LearnError>
    where
        I: IntoIterator<Item = &'r Value>,
        I::IntoIter: Clone,
    {
        self.fit_records(
            records
                .into_iter()
                .enumerate()
                .map(|(index, value)| TrainingRecord {
                    value,
                    partition: 0,
                    meta: RecordMeta::at(index as i64),
                }),
        )
    }

    /// [`fit`](Self::fit) of records with their partitions, Kafka keys, timestamps and
    /// offsets. Per-key items read each partition's records in the order given (a topic's:
    /// offset order), each key's history as a consumer of that partition would.
    pub fn fit_records<'r, I>(&self, records: I) -> Result<Fitted, LearnError>
    where
        I: IntoIterator<Item = TrainingRecord<'r>>,
        I::IntoIter: Clone,
    {
        let records = records.into_iter();
        let learned = self.learn_from_values(records.clone())?;
        let features = NamedFeatures::new(self.clone(), learned);
        if !self.is_per_key() {
            let mut rows = Vec::new();
            let mut kept = Vec::new();
            let mut rejected = Vec::new();
            for (index, record) in records.enumerate() {
                match features.extract_into(record.value, &mut rows) {
                    Ok(()) => kept.push(index),
                    Err(error) => rejected.push((index, error)),
                }
            }
            return Ok(Fitted {
                features,
                rows,
                kept,
                rejected,
            });
        }
        // What records with a history give, with the provisional state (the stand-ins for
        // no history are what is being learned, and are left out).
        let mut observed: Vec<Vec<f64>> = vec![Vec::new(); self.features.len()];
        run_histories(&features, records.clone(), Some(&mut observed));
        let mut learned = features.learned().to_vec();
        for ((feature, state), values) in self.features.iter().zip(&mut learned).zip(observed) {
            let missing = || LearnError::NoHistory {
                feature: feature.name().to_string(),
            };
            match (feature.per_key(), state) {
                (Some(PerKey::ZScore), Learned::Moments { median: m, .. }) => {
                    *m = median(&mut values.clone()).ok_or_else(missing)?;
                }
                (Some(PerKey::Delta | PerKey::SinceLast), Learned::Median(m)) => {
                    *m = median(&mut values.clone()).ok_or_else(missing)?;
                }
                _ => {}
            }
        }
        let features = NamedFeatures::new(self.clone(), learned);
        let (rows, kept, rejected) = run_histories(&features, records, None);
        Ok(Fitted {
            features,
            rows,
            kept,
            rejected,
        })
    }

    /// The first pass: what each item learns from the values of its field (counts, medians,
    /// training moments), with placeholders for what per-key items learn from histories.
    fn learn_from_values<'r>(
        &self,
        records: impl Iterator<Item = TrainingRecord<'r>>,
    ) -> Result<Vec<Learned>, LearnError> {
        let mut gathered: Vec<Gathered> = self
            .features
            .iter()
            .map(|f| {
                if f.transform().is_category() {
                    Gathered::Categories(BTreeMap::new())
                } else {
                    Gathered::Numbers(Vec::new())
                }
            })
            .collect();
        let (mut count, mut usable) = (0usize, 0usize);
        let mut first_rejected = None;
        let mut scratch = Scratch::default();
        for (index, record) in records.enumerate() {
            count += 1;
            if let Err(error) = self.check_training(&record, &mut scratch) {
                first_rejected.get_or_insert((index, error));
                continue;
            }
            usable += 1;
            for (feature, gathered) in self.features.iter().zip(&mut gathered) {
                let Some(value) = feature
                    .field()
                    .and_then(|field| field.lookup(record.value))
                    .map(Scalar::of)
                else {
                    continue;
                };
                match (stateless(feature, &value, &mut scratch, None), gathered) {
                    (Ok(Stateless::Number(n)), Gathered::Numbers(numbers)) => numbers.push(n),
                    (Ok(Stateless::Category(key)), Gathered::Categories(counts)) => {
                        match counts.get_mut(key) {
                            Some(count) => *count += 1,
                            None => {
                                counts.insert(key.to_string(), 1);
                            }
                        }
                    }
                    // Null (missing, imputed later); errors were ruled out above.
                    _ => {}
                }
            }
        }
        match (count, usable, first_rejected) {
            (0, _, _) => return Err(LearnError::NoRecords),
            (records, 0, Some((index, first))) => {
                return Err(LearnError::NoUsableRecords {
                    records,
                    index,
                    first,
                })
            }
            _ => {}
        }
        self.features
            .iter()
            .zip(gathered)
            .map(|(feature, gathered)| {
                let no_values = || LearnError::NoValues {
                    feature: feature.name().to_string(),
                };
                match (feature.per_key(), gathered) {
                    (Some(PerKey::Count(_)), _) => Ok(Learned::Nothing),
                    (Some(PerKey::SinceLast), _) => Ok(Learned::Median(0.0)),
                    (Some(PerKey::ZScore), Gathered::Numbers(numbers)) => {
                        let (mean, std) = moments(&numbers).ok_or_else(no_values)?;
                        Ok(Learned::Moments {
                            mean,
                            std,
                            median: 0.0,
                        })
                    }
                    (Some(PerKey::Delta), Gathered::Numbers(numbers)) if !numbers.is_empty() => {
                        Ok(Learned::Median(0.0))
                    }
                    (_, Gathered::Numbers(mut numbers)) => median(&mut numbers)
                        .map(Learned::Median)
                        .ok_or_else(no_values),
                    (_, Gathered::Categories(counts)) => CategoryCounts::new(counts)
                        .map(Learned::Categories)
                        .ok_or_else(no_values),
                }
            })
            .collect()
    }

    /// Whether `record` can give a row, as far as that depends on the record alone: it is an
    /// object and every feature's field holds a value of the right kind (a missing one only
    /// refuses the record under [`Missing::DeadLetter`]). Once the features are learned, a
    /// record that passes always gives a row (with per-key items, given its key and time:
    /// see [`fit_records`](Self::fit_records)).
    pub fn check_record(&self, record: &Value) -> Result<(), ExtractError> {
        self.check_with(record, &mut Scratch::default())
    }

    /// [`check_record`](Self::check_record), and with per-key items its id, key and time as
    /// reading it would check them.
    fn check_training(
        &self,
        record: &TrainingRecord<'_>,
        scratch: &mut Scratch,
    ) -> Result<(), ExtractError> {
        self.check_with(record.value, scratch)?;
        if !self.is_per_key() {
            return Ok(());
        }
        let lookup = |field: &crate::FieldPath| field.lookup(record.value).map(Scalar::of);
        id_from(&self.id_field, lookup(&self.id_field).as_ref())?;
        let settings = self.per_key();
        match settings.key_field() {
            Some(field) => {
                key_from(field, lookup(field).as_ref())?;
            }
            None if record.meta.key.is_none() => {
                return Err(ExtractError::MissingKey { field: None });
            }
            None => {}
        }
        match settings.time_field() {
            Some(field) => {
                time_from(field, lookup(field).as_ref())?;
            }
            None if record.meta.timestamp_ms.is_none() && self.needs_time() => {
                return Err(ExtractError::MissingTime { field: None });
            }
            None => {}
        }
        Ok(())
    }

    /// [`check_record`](Self::check_record) with a scratch buffer for category keys.
    fn check_with(&self, record: &Value, scratch: &mut Scratch) -> Result<(), ExtractError> {
        if !record.is_object() {
            return Err(ExtractError::NotAnObject);
        }
        for feature in &self.features {
            let Some(field) = feature.field() else {
                continue;
            };
            match field.lookup(record).map(Scalar::of) {
                None | Some(Scalar::Null) => {
                    if self.missing == Missing::DeadLetter {
                        return Err(ExtractError::Missing {
                            feature: feature.name().to_string(),
                            field: field.to_string(),
                        });
                    }
                }
                Some(value) => {
                    stateless(feature, &value, scratch, None)?;
                }
            }
        }
        Ok(())
    }
}

/// Rows, kept and rejected records.
type Extracted = (Vec<f64>, Vec<usize>, Vec<(usize, ExtractError)>);

/// Runs `records` through their keys' histories (one per partition), as a consumer of each
/// partition would, giving each record's row; with `observed`, also collects per item the
/// per-key values that did not take a stand-in.
fn run_histories<'r>(
    features: &NamedFeatures,
    records: impl Iterator<Item = TrainingRecord<'r>>,
    mut observed: Option<&mut Vec<Vec<f64>>>,
) -> Extracted {
    let mut states: HashMap<(i32, Vec<u8>), KeyState> = HashMap::new();
    let mut reading = Reading::default();
    let (mut rows, mut kept, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
    let mut row = Vec::with_capacity(features.len());
    let mut stand_ins = Vec::with_capacity(features.features().len());
    for (index, record) in records.enumerate() {
        let read = features
            .reading_of(record.value, &mut reading)
            .and_then(|()| {
                let key = features.record_key(&reading, record.meta.key)?.to_vec();
                let time = features.record_time(&reading, record.meta.timestamp_ms)?;
                Ok((key, time))
            });
        let (key, time) = match read {
            Ok(read) => read,
            Err(error) => {
                rejected.push((index, error));
                continue;
            }
        };
        let state = states
            .entry((record.partition, key))
            .or_insert_with(|| KeyState::new(features));
        row.clear();
        let observe = observed.is_some().then_some(&mut stand_ins);
        features.step_observed(state, &reading, time, record.meta.offset, &mut row, observe);
        if let Some(observed) = observed.as_deref_mut() {
            let mut column = 0;
            for (item, feature) in features.features().iter().enumerate() {
                if !stand_ins[item] {
                    observed[item].push(row[column]);
                }
                column += feature.width();
            }
        }
        rows.extend_from_slice(&row);
        kept.push(index);
    }
    (rows, kept, rejected)
}

/// The mean and population standard deviation (two passes); `None` for no values.
fn moments(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// The median: the middle value, or the mean of the two middle ones; `None` for no values.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        values[middle - 1] / 2.0 + values[middle] / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureParams;
    use serde_json::json;

    fn spec(list: &str, missing: Missing) -> FeatureSpec {
        FeatureParams::new(list).missing(missing).check().unwrap()
    }

    #[test]
    fn medians_are_the_middle_value_or_the_mean_of_the_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 10.0]), Some(3.0));
        let records: Vec<Value> = [5.0, 1.0, 9.0, 3.0]
            .iter()
            .map(|a| json!({ "a": a }))
            .collect();
        let fitted = spec("a,a:log", Missing::DeadLetter).fit(&records).unwrap();
        assert_eq!(fitted.features.learned()[0], Learned::Median(4.0));
        // The median of the transformed values.
        let Learned::Median(log_median) = fitted.features.learned()[1] else {
            panic!()
        };
        assert!((log_median - (4f64.ln() + 6f64.ln()) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn categories_count_and_the_most_frequent_is_the_first_of_equals() {
        let records: Vec<Value> = ["b", "a", "b", "a", "c"]
            .iter()
            .map(|c| json!({ "c": c }))
            .collect();
        let fitted = spec("c:category", Missing::DeadLetter)
            .fit(&records)
            .unwrap();
        let Learned::Categories(counts) = &fitted.features.learned()[0] else {
            panic!()
        };
        assert_eq!(counts.total(), 5);
        assert_eq!(
            counts.most_frequent(),
            "a",
            "a and b tie: the first in key order"
        );
        assert_eq!(counts.frequency("b"), 0.4);
        assert_eq!(counts.frequency("z"), 0.0);
        assert_eq!(fitted.rows, [0.4, 0.4, 0.4, 0.4, 0.2]);
    }

    #[test]
    fn under_dead_letter_a_record_missing_a_feature_is_left_out_of_training() {
        let records = [
            json!({"a": 1, "c": "x"}),
            json!({"a": 100}),
            json!({"a": "oops", "c": "x"}),
            json!({"a": 3, "c": "y"}),
            json!(7),
        ];
        let fitted = spec("a,c:category", Missing::DeadLetter)
            .fit(&records)
            .unwrap();
        assert_eq!(fitted.kept, [0, 3]);
        assert_eq!(fitted.rows, [1.0, 0.5, 3.0, 0.5]);
        let reasons: Vec<_> = fitted
            .rejected
            .iter()
            .map(|(index, error)| (*index, error.reason()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "missing_feature"),
                (2, "not_numeric"),
                (4, "not_an_object")
            ]
        );
        assert_eq!(
            fitted.features.learned()[0],
            Learned::Median(2.0),
            "100 not counted"
        );

        let imputed = spec("a,c:category", Missing::Impute).fit(&records).unwrap();
        assert_eq!(imputed.kept, [0, 1, 3]);
        // Median of 1, 100, 3 is 3; `c` is x or y (1 each), so x (first in order) stands in.
        assert_eq!(imputed.features.learned()[0], Learned::Median(3.0));
        assert_eq!(imputed.rows[2..4], [100.0, 0.5]);
    }

    #[test]
    fn nothing_to_learn_is_an_error_that_says_why() {
        let spec_a = spec("a", Missing::DeadLetter);
        assert_eq!(spec_a.fit(&[]).unwrap_err(), LearnError::NoRecords);
        let error = spec_a
            .fit(&[json!({"b": 1}), json!({"a": "x"})])
            .unwrap_err();
        assert!(
            matches!(&error, LearnError::NoUsableRecords { records: 2, index: 0, first } if first.reason() == "missing_feature"),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("missing_feature: a is missing"),
            "{error}"
        );
        let impute = spec("a,b", Missing::Impute);
        assert_eq!(
            impute.fit(&[json!({"a": 1}), json!({"a": 2})]).unwrap_err(),
            LearnError::NoValues {
                feature: "b".into()
            }
        );
    }

    #[test]
    fn the_same_records_in_any_order_learn_the_same_state() {
        let records: Vec<Value> = (0..200)
            .map(|i| {
                json!({
                    "amount": (i * 37 % 101) as f64 * 1.5,
                    "mcc": (["5411", "5812", "4111"][i % 3]),
                    "ts": 1_796_094_900_000i64 + i as i64 * 3_600_000,
                })
            })
            .collect();
        let spec = spec(
            "amount:log,mcc:category,ts:hour,ts:weekday",
            Missing::DeadLetter,
        );
        let forward = spec.fit(&records).unwrap().features.to_metadata();
        let backward = spec
            .fit(records.iter().rev())
            .unwrap()
            .features
            .to_metadata();
        assert_eq!(forward, backward);
        assert_eq!(forward, spec.fit(&records).unwrap().features.to_metadata());
    }
}
