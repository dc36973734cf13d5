//! Why a record is an anomaly, as its anomaly carries it: the values the model scored, by
//! feature name (`features`), and the features that isolated it most (`explanation`), beside
//! the record's own id as the model read it (`record_id`).
//!
//! On the wire:
//!
//! ```json
//! "record_id": 17,
//! "features": {"amount:log": 6.817, "/merchant/mcc:category": 0.0, "ts:hour": 3.2025},
//! "explanation": [
//!   {"feature": "amount:log", "value": 6.817, "direction": "high", "share": 0.52},
//!   {"feature": "ts:hour", "value": 3.2025, "direction": "low", "share": 0.31},
//!   {"feature": "/merchant/mcc:category", "value": 0.0, "direction": "low", "share": 0.17}
//! ]
//! ```
//!
//! `record_id` is an integer, a string, or `null` for a record without an id (it is then
//! identified by its partition and offset). `features` keeps the model's feature order.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::id::RecordId;

/// Whether a feature's value was unusually high or low against the training data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Above the splits that isolated the record.
    High,
    /// Below them.
    Low,
}

impl Direction {
    /// `high` or `low`, as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::High => "high",
            Direction::Low => "low",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the features that isolated an anomaly most, as read from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The feature's name (`amount:log`, or `x0` for an unnamed `data` feature).
    pub feature: String,
    /// The value scored.
    pub value: f64,
    /// Whether it was unusually high or low.
    pub direction: Direction,
    /// Its share of the isolation, in [0, 1]; an anomaly's shares sum to at most 1.
    pub share: f64,
}

/// A feature's share of a record's isolation, by the feature's index in the row: what the
/// detector computed, before names and values are written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureShare {
    /// The feature's index in the row.
    pub feature: usize,
    /// Whether its value was unusually high or low.
    pub direction: Direction,
    /// Its share of the isolation.
    pub share: f64,
}

/// What an anomaly says about its scoring, borrowed from the detector's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// The record's id as the model reads it; None when it has none.
    pub record_id: Option<&'a RecordId>,
    /// The model's feature names, in row order.
    pub names: &'a [String],
    /// The row scored (one value per name).
    pub row: &'a [f64],
    /// The largest shares, largest first (the detector writes three).
    pub top: &'a [FeatureShare],
    /// The row came from the record's `data` (a model without named features): a reduced
    /// anomaly then keeps `id` and `data` too.
    pub from_data: bool,
}

/// Writes `,"record_id":…,"features":{…},"explanation":[…]` (with the leading comma) into
/// `out`. A share whose feature is not in the row is left out.
pub(crate) fn write_reasons(out: &mut Vec<u8>, scored: &Scored<'_>) {
    // Writing JSON into a Vec cannot fail; the row is finite (the forest scored it).
    out.extend_from_slice(b",\"record_id\":");
    match scored.record_id {
        Some(RecordId::Int(id)) => {
            let _ = serde_json::to_writer(&mut *out, id);
        }
        Some(RecordId::Str(id)) => {
            let _ = serde_json::to_writer(&mut *out, id);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"features\":{");
    for (index, (name, value)) in scored.names.iter().zip(scored.row).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.extend_from_slice(b"},\"explanation\":[");
    let mut first = true;
    for share in scored.top {
        let (Some(name), Some(value)) = (
            scored.names.get(share.feature),
            scored.row.get(share.feature),
        ) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"feature\":");
        let _ = serde_json::to_writer(&mut *out, name);
        out.extend_from_slice(b",\"value\":");
        let _ = serde_json::to_writer(&mut *out, value);
        out.extend_from_slice(b",\"direction\":\"");
        out.extend_from_slice(share.direction.as_str().as_bytes());
        out.extend_from_slice(b"\",\"share\":");
        let _ = serde_json::to_writer(&mut *out, &share.share);
        out.push(b'}');
    }
    out.push(b']');
}

/// The `features` object read back in its order: names and values.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct OrderedFeatures {
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<f64>,
}

impl<'de> Deserialize<'de> for OrderedFeatures {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = OrderedFeatures;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of feature values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedFeatures, A::Error> {
                let mut features = OrderedFeatures::default();
                while let Some((name, value)) = map.next_entry::<String, f64>()? {
                    features.names.push(name);
                    features.values.push(value);
                }
                Ok(features)
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// `record_id` as written: an integer, a string, or null.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireId {
    Int(i64),
    Str(String),
}

impl From<WireId> for RecordId {
    fn from(id: WireId) -> Self {
        match id {
            WireId::Int(id) => RecordId::Int(id),
            WireId::Str(id) => RecordId::Str(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn written(scored: &Scored<'_>) -> Value {
        let mut out = b"{\"x\":1".to_vec();
        write_reasons(&mut out, scored);
        out.push(b'}');
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn reasons_are_written_by_name_in_row_order() {
        let names = [
            "amount:log".to_string(),
            "/a\"b:category".to_string(),
            "ts:hour".into(),
        ];
        let row = [6.5, 0.0, 3.25];
        let top = [
            FeatureShare {
                feature: 2,
                direction: Direction::Low,
                share: 0.5,
            },
            FeatureShare {
                feature: 0,
                direction: Direction::High,
                share: 0.25,
            },
            // Not in the row: left out, never a panic.
            FeatureShare {
                feature: 9,
                direction: Direction::High,
                share: 0.25,
            },
        ];
        let id = RecordId::Str("tx-1".into());
        let value = written(&Scored {
            record_id: Some(&id),
            names: &names,
            row: &row,
            top: &top,
            from_data: false,
        });
        assert_eq!(value["record_id"], json!("tx-1"));
        assert_eq!(
            value["features"],
            json!({"amount:log": 6.5, "/a\"b:category": 0.0, "ts:hour": 3.25})
        );
        assert_eq!(
            value["explanation"],
            json!([
                {"feature": "ts:hour", "value": 3.25, "direction": "low", "share": 0.5},
                {"feature": "amount:log", "value": 6.5, "direction": "high", "share": 0.25}
            ])
        );
        let none = written(&Scored {
            record_id: None,
            names: &names[..1],
            row: &row[..1],
            top: &[],
            from_data: false,
        });
        assert_eq!(none["record_id"], Value::Null);
        assert_eq!(none["explanation"], json!([]));
    }

    #[test]
    fn the_features_object_is_read_in_its_own_order() {
        let read: OrderedFeatures = serde_json::from_str(r#"{"z": 1.5, "a": -2, "m": 0}"#).unwrap();
        assert_eq!(read.names, ["z", "a", "m"]);
        assert_eq!(read.values, [1.5, -2.0, 0.0]);
        assert!(serde_json::from_str::<OrderedFeatures>(r#"{"z": "1.5"}"#).is_err());
    }
}
