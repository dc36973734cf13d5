//! An anomaly record as `verify` reads it: the verdict fields it checks, read tolerantly
//! (`features`, `explanation` and the reduced form's fields when present), and the record's
//! other fields kept for comparison with the source.

use serde_json::{Map, Value};

/// Fields an anomaly adds to its transaction (the verdict, and the reasons: the id as the
/// model read it, the features scored, the explanation) or a reduced anomaly carries instead
/// of the transaction's own: everything that is not the source record's.
pub const ADDED_FIELDS: [&str; 13] = [
    "score",
    "anomaly_score",
    "threshold",
    "model",
    "detected_at",
    "partition",
    "offset",
    "record_id",
    "features",
    "explanation",
    "truncated",
    "original_bytes",
    "original_sha256",
];

/// Where an anomaly says its transaction is, and the model that scored it: what is needed to
/// plan the reading, before the whole record is looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Header {
    /// The model's id.
    pub model: String,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
}

impl Header {
    /// The header of an anomaly record; the error says what is missing or wrong.
    pub fn read(bytes: &[u8]) -> Result<Header, String> {
        serde_json::from_slice(bytes).map_err(|error| format!("not an anomaly record: {error}"))
    }
}

/// The whole anomaly record.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRecord {
    /// Every field as written.
    pub fields: Map<String, Value>,
    /// `anomaly_score`.
    pub anomaly_score: Option<f64>,
    /// `score`, `[−anomaly_score]`.
    pub score: Option<Vec<f64>>,
    /// `threshold`.
    pub threshold: Option<f64>,
    /// `truncated: true` with `original_bytes` and `original_sha256`.
    pub truncated: Option<Reduced>,
    /// The `features` object: name → value scored.
    pub features: Option<Map<String, Value>>,
}

/// What a reduced anomaly says of its whole transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    /// `original_bytes`.
    pub bytes: Option<u64>,
    /// `original_sha256`.
    pub sha256: Option<String>,
}

impl AnomalyRecord {
    /// Reads an anomaly record (a JSON object); absent or mistyped fields are `None` here,
    /// and reported by the comparison.
    pub fn read(bytes: &[u8]) -> Result<AnomalyRecord, String> {
        let fields = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err("not an anomaly record: not a JSON object".into()),
            Err(error) => return Err(format!("not an anomaly record: {error}")),
        };
        let number = |name: &str| fields.get(name).and_then(Value::as_f64);
        let truncated = match fields.get("truncated") {
            Some(Value::Bool(true)) => Some(Reduced {
                bytes: fields.get("original_bytes").and_then(Value::as_u64),
                sha256: fields
                    .get("original_sha256")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            _ => None,
        };
        Ok(AnomalyRecord {
            anomaly_score: number("anomaly_score"),
            score: fields
                .get("score")
                .and_then(Value::as_array)
                .and_then(|v| v.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()),
            threshold: number("threshold"),
            truncated,
            features: fields.get("features").and_then(Value::as_object).cloned(),
            fields,
        })
    }

    /// The transaction's id as the anomaly gives it, for people.
    pub fn id(&self) -> Option<String> {
        match self.fields.get("id")? {
            Value::String(id) => Some(id.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The `data` row, flat (`[[x, y]]` or `[x, y]`), when the record has one.
    pub fn data(&self) -> Option<Vec<f64>> {
        let data = self.fields.get("data")?.as_array()?;
        let row = match data.as_slice() {
            [Value::Array(inner)] => inner,
            _ => data,
        };
        row.iter().map(Value::as_f64).collect()
    }
}

/// Whether two JSON values say the same: numbers equal as numbers (`5`, `5.0` and `5e0` are
/// one number; floats compared bit for bit), objects equal whatever their key order.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x.to_bits() == y.to_bits(),
                    _ => false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_header_names_source_and_model_or_says_what_is_wrong() {
        let header =
            Header::read(br#"{"id": 4, "model": "m", "partition": 2, "offset": 9, "x": [1]}"#)
                .unwrap();
        assert_eq!(
            (header.model.as_str(), header.partition, header.offset),
            ("m", 2, 9)
        );
        let error = Header::read(br#"{"id": 4, "partition": 2, "offset": 9}"#).unwrap_err();
        assert!(error.contains("missing field `model`"), "{error}");
        assert!(Header::read(b"not json").is_err());
    }

    #[test]
    fn whole_reduced_and_named_anomalies_are_read() {
        let whole = AnomalyRecord::read(
            br#"{"id": 4, "data": [[2.5, -1]], "score": [-0.7], "anomaly_score": 0.7,
                 "threshold": 0.6, "model": "m", "partition": 0, "offset": 1}"#,
        )
        .unwrap();
        assert_eq!(whole.data(), Some(vec![2.5, -1.0]));
        assert_eq!(whole.score, Some(vec![-0.7]));
        assert_eq!(
            (whole.anomaly_score, whole.threshold),
            (Some(0.7), Some(0.6))
        );
        assert_eq!(
            (whole.truncated.clone(), whole.features.clone()),
            (None, None)
        );
        assert_eq!(whole.id().as_deref(), Some("4"));

        let reduced = AnomalyRecord::read(
            br#"{"id": "tx-9", "data": [[1, 2]], "truncated": true, "original_bytes": 5000,
                 "original_sha256": "ab", "anomaly_score": 0.7}"#,
        )
        .unwrap();
        assert_eq!(
            reduced.truncated,
            Some(Reduced {
                bytes: Some(5000),
                sha256: Some("ab".into())
            })
        );
        assert_eq!(reduced.id().as_deref(), Some("tx-9"));

        let named = AnomalyRecord::read(
            br#"{"amount": 912.4, "features": {"amount:log": 6.8}, "explanation": []}"#,
        )
        .unwrap();
        assert_eq!(named.features.as_ref().unwrap()["amount:log"], json!(6.8));
        assert_eq!((named.id(), named.data(), named.score), (None, None, None));
        assert!(AnomalyRecord::read(b"[1]").is_err());
    }

    #[test]
    fn json_values_compare_as_numbers_and_unordered_objects() {
        assert!(same_json(&json!(5), &json!(5.0)));
        assert!(same_json(
            &serde_json::from_str("[1e2, 0.1]").unwrap(),
            &json!([100, 0.1])
        ));
        assert!(!same_json(&json!(0.1), &json!(0.10000000000000002)));
        assert!(same_json(
            &serde_json::from_str(r#"{"b": 1, "a": [true, null]}"#).unwrap(),
            &json!({"a": [true, null], "b": 1})
        ));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same_json(&json!("5"), &json!(5)));
        assert!(same_json(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!same_json(&json!(u64::MAX), &json!(u64::MAX - 1)));
    }
}
