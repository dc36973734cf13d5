//! Learning from training records: each category feature's counts, each other feature's
//! median. Deterministic: the same records give the same state (sorted maps, a fixed median
//! rule), so the model file is byte-identical for the same input.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::categories::CategoryCounts;
use crate::extract::{stateless, ExtractError, Learned, NamedFeatures, Scratch, Stateless};
use crate::spec::{FeatureSpec, Missing};
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
    pub fn fit<'r, I>(&self, records: I) -> Result<Fitted, LearnError>
    where
        I: IntoIterator<Item = &'r Value>,
        I::IntoIter: Clone,
    {
        let records = records.into_iter();
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
        for (index, record) in records.clone().enumerate() {
            count += 1;
            if let Err(error) = self.check_with(record, &mut scratch) {
                first_rejected.get_or_insert((index, error));
                continue;
            }
            usable += 1;
            for (feature, gathered) in self.features.iter().zip(&mut gathered) {
                let Some(value) = feature.field().lookup(record).map(Scalar::of) else {
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
        let learned = self
            .features
            .iter()
            .zip(gathered)
            .map(|(feature, gathered)| {
                match gathered {
                    Gathered::Numbers(mut numbers) => median(&mut numbers).map(Learned::Median),
                    Gathered::Categories(counts) => {
                        CategoryCounts::new(counts).map(Learned::Categories)
                    }
                }
                .ok_or_else(|| LearnError::NoValues {
                    feature: feature.name().to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let features = NamedFeatures::new(self.clone(), learned);
        let mut rows = Vec::with_capacity(usable * self.len());
        let mut kept = Vec::with_capacity(usable);
        let mut rejected = Vec::new();
        for (index, record) in records.enumerate() {
            match features.extract_into(record, &mut rows) {
                Ok(()) => kept.push(index),
                Err(error) => rejected.push((index, error)),
            }
        }
        Ok(Fitted {
            features,
            rows,
            kept,
            rejected,
        })
    }

    /// Whether `record` can give a row, as far as that depends on the record alone: it is an
    /// object and every feature's field holds a value of the right kind (a missing one only
    /// refuses the record under [`Missing::DeadLetter`]). Once the features are learned, a
    /// record that passes always gives a row.
    pub fn check_record(&self, record: &Value) -> Result<(), ExtractError> {
        self.check_with(record, &mut Scratch::default())
    }

    /// [`check_record`](Self::check_record) with a scratch buffer for category keys.
    fn check_with(&self, record: &Value, scratch: &mut Scratch) -> Result<(), ExtractError> {
        if !record.is_object() {
            return Err(ExtractError::NotAnObject);
        }
        for feature in &self.features {
            match feature.field().lookup(record).map(Scalar::of) {
                None | Some(Scalar::Null) => {
                    if self.missing == Missing::DeadLetter {
                        return Err(ExtractError::Missing {
                            feature: feature.name().to_string(),
                            field: feature.field().to_string(),
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
