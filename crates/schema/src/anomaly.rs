//! Anomalies: the transaction with every field it had plus the detector's [`Verdict`]
//! ([`encode_anomaly`]), and the record as readers see it ([`Anomaly`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::DecodeError;

use crate::id::RecordId;
use crate::transaction::{DecodeLimits, Transaction};

/// The detector's verdict on one transaction, added to it in the anomaly record.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Our score in (0, 1], higher = more anomalous.
    pub anomaly_score: f64,
    /// The model's threshold.
    pub threshold: f64,
    /// The model's id (content hash of its file).
    pub model: String,
    /// Source partition in the transactions topic.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// When it was scored.
    pub detected_at: DateTime<Utc>,
}

/// The anomaly record: every field the transaction had, plus `score` (`[−anomaly_score]`,
/// scikit-learn's sign: lower = more anomalous), `anomaly_score`, `threshold`, `model`,
/// `detected_at` (RFC 3339) and the source `partition` and `offset`.
pub fn encode_anomaly(transaction: &Transaction, verdict: &Verdict) -> Vec<u8> {
    let detected_at = detected_at_text(verdict.detected_at);
    if transaction.has_verdict_fields || !transaction.unchanged() {
        // A record that already carries verdict fields (re-scored), or whose public fields
        // were changed: through a map.
        let verdict_fields = [
            ("score", Value::from(vec![-verdict.anomaly_score])),
            ("anomaly_score", Value::from(verdict.anomaly_score)),
            ("threshold", Value::from(verdict.threshold)),
            ("model", Value::from(verdict.model.as_str())),
            ("detected_at", Value::from(detected_at)),
            ("partition", Value::from(verdict.partition)),
            ("offset", Value::from(verdict.offset)),
        ];
        let mut fields = transaction.current_fields();
        for (name, value) in verdict_fields {
            fields.insert(name.to_string(), value);
        }
        return serde_json::to_vec(&fields).unwrap_or_default();
    }
    // Fast path: the transaction's own text with the verdict appended before its closing
    // brace, each value written straight into the buffer (this runs once per anomaly).
    let text = transaction.text.trim_end();
    let object = text.strip_suffix('}').unwrap_or(text).trim_end();
    let mut bytes = Vec::with_capacity(object.len() + 224);
    bytes.extend_from_slice(object.as_bytes());
    // `{` alone: the record had no field before the verdict (not possible for a transaction,
    // which has `id` and `data`, but kept valid JSON).
    let mut first = object == "{";
    let mut field = |bytes: &mut Vec<u8>, name: &str| {
        if !first {
            bytes.push(b',');
        }
        first = false;
        bytes.push(b'"');
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b"\":");
    };
    // Writing JSON into a Vec cannot fail; a non-finite score (impossible from the forest)
    // would become null, as serde_json writes it.
    field(&mut bytes, "score");
    let _ = serde_json::to_writer(&mut bytes, &[-verdict.anomaly_score]);
    field(&mut bytes, "anomaly_score");
    let _ = serde_json::to_writer(&mut bytes, &verdict.anomaly_score);
    field(&mut bytes, "threshold");
    let _ = serde_json::to_writer(&mut bytes, &verdict.threshold);
    field(&mut bytes, "model");
    let _ = serde_json::to_writer(&mut bytes, verdict.model.as_str());
    field(&mut bytes, "detected_at");
    let _ = serde_json::to_writer(&mut bytes, detected_at.as_str());
    field(&mut bytes, "partition");
    let _ = serde_json::to_writer(&mut bytes, &verdict.partition);
    field(&mut bytes, "offset");
    let _ = serde_json::to_writer(&mut bytes, &verdict.offset);
    bytes.push(b'}');
    bytes
}

/// A reduced anomaly's JSON, in the order written.
#[derive(serde::Serialize)]
struct ReducedAnomaly<'a> {
    id: &'a RecordId,
    data: [&'a [f64]; 1],
    truncated: bool,
    original_bytes: u64,
    original_sha256: &'a str,
    score: [f64; 1],
    anomaly_score: f64,
    threshold: f64,
    model: &'a str,
    detected_at: &'a str,
    partition: i32,
    offset: i64,
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RecordId::Int(id) => serializer.serialize_i64(*id),
            RecordId::Str(id) => serializer.serialize_str(id),
        }
    }
}

/// The anomaly of a transaction too large to be written whole: `id`, `data` (the features
/// scored, as `[[x, y, …]]`), `truncated: true` with the transaction's size in bytes
/// (`original_bytes`) and SHA-256 (`original_sha256`), and every verdict field, `partition`
/// and `offset` among them. The transaction's other fields are left out: the record itself
/// is at `partition`/`offset` of the source topic, and the digest tells that it is the one.
/// [`Anomaly::decode`] reads it, with [`Anomaly::truncated`] set.
pub fn encode_reduced_anomaly(
    id: &RecordId,
    features: &[f64],
    verdict: &Verdict,
    original: &Digest,
) -> Vec<u8> {
    let detected_at = detected_at_text(verdict.detected_at);
    let reduced = ReducedAnomaly {
        id,
        data: [features],
        truncated: true,
        original_bytes: original.bytes,
        original_sha256: &original.sha256,
        score: [-verdict.anomaly_score],
        anomaly_score: verdict.anomaly_score,
        threshold: verdict.threshold,
        model: &verdict.model,
        detected_at: &detected_at,
        partition: verdict.partition,
        offset: verdict.offset,
    };
    // Numbers, text and an id always serialize.
    serde_json::to_vec(&reduced).unwrap_or_default()
}

/// `detected_at` as RFC 3339 with microseconds. A batch's anomalies share one time, so the
/// last text is kept per thread and reused (formatting was ~3% of the detector's time).
fn detected_at_text(time: DateTime<Utc>) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(DateTime<Utc>, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((at, text)) if *at == time => text.clone(),
            _ => {
                let text = time.to_rfc3339_opts(SecondsFormat::Micros, true);
                *last = Some((time, text.clone()));
                text
            }
        }
    })
}

/// An anomaly record, as readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// The transaction's id.
    pub id: RecordId,
    /// Its features.
    pub features: Vec<f64>,
    /// Its label, if it had one.
    pub label: Option<u8>,
    /// `[−anomaly_score]`.
    pub score: Vec<f64>,
    /// Our score.
    pub anomaly_score: f64,
    /// The model's threshold.
    pub threshold: f64,
    /// The model's id.
    pub model: String,
    /// When it was scored, as written.
    pub detected_at: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The transaction's `current_time`, as written.
    pub current_time: Option<String>,
    /// Set when the anomaly was reduced to fit (see [`encode_reduced_anomaly`]): the whole
    /// transaction's size and SHA-256; its own fields other than `id` and `data` are absent.
    pub truncated: Option<Digest>,
}

impl Anomaly {
    /// Reads an anomaly record of at most 1 MiB.
    pub fn decode(bytes: &[u8]) -> Result<Anomaly, DecodeError> {
        Anomaly::decode_with(bytes, &DecodeLimits::default())
    }

    /// Reads an anomaly record within `limits`.
    pub fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Anomaly, DecodeError> {
        let transaction = Transaction::decode(bytes, limits)?;
        let fields = transaction.fields();
        let number = |name: &'static str| {
            fields
                .get(name)
                .and_then(Value::as_f64)
                .ok_or(DecodeError::MissingField(name))
        };
        let integer = |name: &'static str| {
            fields
                .get(name)
                .and_then(Value::as_i64)
                .ok_or(DecodeError::MissingField(name))
        };
        let text = |name: &'static str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(DecodeError::MissingField(name))
        };
        let score = fields
            .get("score")
            .and_then(Value::as_array)
            .and_then(|values| {
                values
                    .iter()
                    .map(Value::as_f64)
                    .collect::<Option<Vec<f64>>>()
            })
            .ok_or(DecodeError::MissingField("score"))?;
        let truncated = match fields.get("truncated") {
            Some(Value::Bool(true)) => Some(Digest {
                bytes: fields
                    .get("original_bytes")
                    .and_then(Value::as_u64)
                    .ok_or(DecodeError::MissingField("original_bytes"))?,
                sha256: text("original_sha256")?,
            }),
            _ => None,
        };
        Ok(Anomaly {
            truncated,
            score,
            anomaly_score: number("anomaly_score")?,
            threshold: number("threshold")?,
            model: text("model")?,
            detected_at: text("detected_at")?,
            partition: i32::try_from(integer("partition")?)
                .map_err(|_| DecodeError::MissingField("partition"))?,
            offset: integer("offset")?,
            current_time: transaction.current_time.clone(),
            id: transaction.id,
            features: transaction.features,
            label: transaction.label,
        })
    }
}

impl Anomaly {
    /// The verdict this anomaly carries (None if its `detected_at` is not RFC 3339).
    pub fn verdict(&self) -> Option<Verdict> {
        Some(Verdict {
            anomaly_score: self.anomaly_score,
            threshold: self.threshold,
            model: self.model.clone(),
            partition: self.partition,
            offset: self.offset,
            detected_at: DateTime::parse_from_rfc3339(&self.detected_at)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fields::VERDICT_FIELDS;
    use crate::transaction::tests::{decode, json_of, ORIGINAL};
    use serde_json::json;

    pub(crate) fn verdict() -> Verdict {
        Verdict {
            anomaly_score: 0.6821234567891234,
            threshold: 0.62,
            model: "abc".into(),
            partition: 2,
            offset: 99,
            detected_at: DateTime::parse_from_rfc3339("2026-11-28T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn an_anomaly_keeps_every_field_and_adds_the_verdict() {
        let original = json!({
            "id": 4,
            "data": [[2.39, -1.22]],
            "current_time": "2024-04-27T21:17:34.733387",
            "merchant": {"name": "Zoë's", "tags": ["a", 1, null, true]},
            "amount": 12.5,
            "note": null,
            "label": 1
        });
        let tx = decode(&original.to_string()).unwrap();
        let bytes = encode_anomaly(&tx, &verdict());
        let mut value = json_of(&bytes);
        assert_eq!(value["score"], json!([-0.6821234567891234]));
        assert_eq!(value["anomaly_score"], json!(0.6821234567891234));
        assert_eq!(value["threshold"], json!(0.62));
        assert_eq!(value["model"], "abc");
        assert_eq!(value["detected_at"], "2026-11-28T09:00:00.000000Z");
        assert_eq!(
            (value["partition"].clone(), value["offset"].clone()),
            (json!(2), json!(99))
        );
        for name in VERDICT_FIELDS {
            value.as_object_mut().unwrap().remove(name);
        }
        assert_eq!(value, original, "every original field, unchanged");

        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!(anomaly.id, RecordId::Int(4));
        assert_eq!(anomaly.features, [2.39, -1.22]);
        assert_eq!(anomaly.label, Some(1));
        assert_eq!(anomaly.score, vec![-0.6821234567891234]);
        assert_eq!(anomaly.anomaly_score, 0.6821234567891234);
        assert_eq!(anomaly.threshold, 0.62);
        assert_eq!((anomaly.partition, anomaly.offset), (2, 99));
        assert_eq!(anomaly.model, "abc");
        assert_eq!(anomaly.detected_at, "2026-11-28T09:00:00.000000Z");
        assert_eq!(
            anomaly.current_time.as_deref(),
            Some("2024-04-27T21:17:34.733387")
        );
    }

    #[test]
    fn a_rescored_anomaly_gets_one_verdict_not_two() {
        let first = encode_anomaly(&decode(ORIGINAL).unwrap(), &verdict());
        let again = Transaction::decode(&first, &DecodeLimits::default()).unwrap();
        let second = Verdict {
            offset: 7,
            model: "def".into(),
            ..verdict()
        };
        let bytes = encode_anomaly(&again, &second);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.matches("\"offset\"").count(), 1, "{text}");
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!((anomaly.offset, anomaly.model.as_str()), (7, "def"));
    }

    #[test]
    fn an_anomaly_of_an_empty_looking_record_is_still_json() {
        // The fast path appends to the object's text: check the commas with few fields.
        let tx = decode(r#"{"id": 1, "data": [3]}"#).unwrap();
        let anomaly = Anomaly::decode(&encode_anomaly(&tx, &verdict())).unwrap();
        assert_eq!(anomaly.features, [3.0]);
    }

    #[test]
    fn a_reduced_anomaly_keeps_id_data_and_verdict_and_names_the_original() {
        let padding = "x".repeat(5000);
        let text = format!(
            r#"{{"id": "tx-9", "data": [[3.5, -1.25]], "current_time": "2024-04-27T21:17:34.733387", "note": "{padding}"}}"#
        );
        let tx = decode(&text).unwrap();
        let original = Digest::of(text.as_bytes());
        let bytes = encode_reduced_anomaly(&tx.id, &tx.features, &verdict(), &original);
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
        let value = json_of(&bytes);
        assert_eq!(value["truncated"], json!(true));
        assert_eq!(value["original_bytes"], json!(text.len()));
        assert_eq!(value["original_sha256"], json!(original.sha256));
        assert!(value.get("note").is_none() && value.get("current_time").is_none());
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!(anomaly.id, RecordId::Str("tx-9".into()));
        assert_eq!(anomaly.features, [3.5, -1.25]);
        assert_eq!(anomaly.truncated, Some(original));
        assert_eq!(anomaly.verdict(), Some(verdict()));
        assert_eq!(anomaly.score, [-verdict().anomaly_score]);
        // A whole anomaly is not truncated, and carries the same verdict.
        let whole = Anomaly::decode(&encode_anomaly(&tx, &verdict())).unwrap();
        assert_eq!(whole.truncated, None);
        assert_eq!(whole.verdict(), Some(verdict()));
    }

    #[test]
    fn a_large_anomaly_is_read_with_larger_limits() {
        let text = format!(
            r#"{{"id": 1, "data": [1.0, 2.0], "pad": "{}"}}"#,
            "p".repeat(1 << 20)
        );
        let unlimited = DecodeLimits {
            max_bytes: usize::MAX,
            ..DecodeLimits::default()
        };
        let tx = Transaction::decode(text.as_bytes(), &unlimited).unwrap();
        let bytes = encode_anomaly(&tx, &verdict());
        assert!(Anomaly::decode(&bytes).is_err());
        let limits = DecodeLimits {
            max_bytes: bytes.len(),
            ..DecodeLimits::default()
        };
        assert_eq!(Anomaly::decode_with(&bytes, &limits).unwrap().offset, 99);
    }
}
