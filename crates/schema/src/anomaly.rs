//! Anomalies: the record with every field it had plus the detector's [`Verdict`] and the
//! reasons ([`encode_scored_anomaly`]; [`encode_anomaly`] writes the form without reasons),
//! and the record as readers see it ([`Anomaly`], which reads both forms).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::DecodeError;
use crate::fields::ANOMALY_FIELDS;
use crate::id::RecordId;
use crate::members::extend_object;
use crate::reasons::{write_reasons, Contribution, OrderedFeatures, Scored, WireId};
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

/// The anomaly record without reasons (the form written before anomalies carried
/// `features` and `explanation`): every field the transaction had, plus `score`
/// (`[−anomaly_score]`, scikit-learn's sign: lower = more anomalous), `anomaly_score`,
/// `threshold`, `model`, `detected_at` (RFC 3339) and the source `partition` and `offset`.
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
    extend_object(&transaction.text, &[], 224, |out| {
        write_verdict(out, verdict, &detected_at)
    })
}

/// The anomaly of a record the detector scored: the record's JSON object (`record`, its text
/// as read) with every field it had, in its order and as written, then the verdict (`score`,
/// `anomaly_score`, `threshold`, `model`, `detected_at`, `partition`, `offset`) and the
/// reasons (`record_id`, `features`, `explanation`; see [`Scored`]). A field of the record
/// with one of those names is replaced (a re-scored anomaly gets one verdict, not two).
/// [`Anomaly::decode`] reads it.
pub fn encode_scored_anomaly(record: &str, verdict: &Verdict, scored: &Scored<'_>) -> Vec<u8> {
    let detected_at = detected_at_text(verdict.detected_at);
    // The verdict is about 200 bytes; each feature about 30 in `features` and 80 in
    // `explanation`.
    let extra = 256 + 32 * scored.names.len() + 96 * scored.top.len();
    extend_object(record, &ANOMALY_FIELDS, extra, |out| {
        write_verdict(out, verdict, &detected_at);
        write_reasons(out, scored);
    })
}

/// The anomaly of a record too large to be written whole, with reasons: `truncated: true`
/// with the record's size (`original_bytes`) and SHA-256 (`original_sha256`), every verdict
/// field, and `record_id`, `features` and `explanation`; for a `data` record
/// ([`Scored::from_data`]) also `id` and `data`, first, as before. The record's other fields
/// are left out: it is at `partition`/`offset` of the source topic, and the digest tells that
/// it is the one. [`Anomaly::decode`] reads it, with [`Anomaly::truncated`] set.
pub fn encode_reduced_scored_anomaly(
    verdict: &Verdict,
    scored: &Scored<'_>,
    original: &Digest,
) -> Vec<u8> {
    let detected_at = detected_at_text(verdict.detected_at);
    let mut out = Vec::with_capacity(512 + 128 * scored.names.len());
    // Writing JSON into a Vec cannot fail.
    out.push(b'{');
    if let (true, Some(id)) = (scored.from_data, scored.record_id) {
        out.extend_from_slice(b"\"id\":");
        let _ = serde_json::to_writer(&mut out, id);
        out.extend_from_slice(b",\"data\":");
        let _ = serde_json::to_writer(&mut out, &[scored.row]);
        out.push(b',');
    }
    out.extend_from_slice(b"\"truncated\":true,\"original_bytes\":");
    let _ = serde_json::to_writer(&mut out, &original.bytes);
    out.extend_from_slice(b",\"original_sha256\":");
    let _ = serde_json::to_writer(&mut out, &original.sha256);
    write_verdict(&mut out, verdict, &detected_at);
    write_reasons(&mut out, scored);
    out.push(b'}');
    out
}

/// Writes the verdict's fields, each with a leading comma.
fn write_verdict(out: &mut Vec<u8>, verdict: &Verdict, detected_at: &str) {
    // Writing JSON into a Vec cannot fail; a non-finite score (impossible from the forest)
    // would become null, as serde_json writes it.
    out.extend_from_slice(b",\"score\":");
    let _ = serde_json::to_writer(&mut *out, &[-verdict.anomaly_score]);
    out.extend_from_slice(b",\"anomaly_score\":");
    let _ = serde_json::to_writer(&mut *out, &verdict.anomaly_score);
    out.extend_from_slice(b",\"threshold\":");
    let _ = serde_json::to_writer(&mut *out, &verdict.threshold);
    out.extend_from_slice(b",\"model\":");
    let _ = serde_json::to_writer(&mut *out, verdict.model.as_str());
    out.extend_from_slice(b",\"detected_at\":");
    let _ = serde_json::to_writer(&mut *out, detected_at);
    out.extend_from_slice(b",\"partition\":");
    let _ = serde_json::to_writer(&mut *out, &verdict.partition);
    out.extend_from_slice(b",\"offset\":");
    let _ = serde_json::to_writer(&mut *out, &verdict.offset);
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

/// An anomaly record, as readers see it: with reasons ([`encode_scored_anomaly`]) or
/// without ([`encode_anomaly`]), whole or reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// The record's id; for a record without one, `<partition>:<offset>`
    /// ([`RecordId::position`], the anomaly's Kafka key), and
    /// [`identified_by_position`](Self::identified_by_position) is set.
    pub id: RecordId,
    /// The record had no id: [`id`](Self::id) is its partition and offset.
    pub identified_by_position: bool,
    /// The values scored, in the model's feature order (`data` in an anomaly without
    /// reasons).
    pub features: Vec<f64>,
    /// The features' names, in the same order (empty in an anomaly without reasons).
    pub feature_names: Vec<String>,
    /// The features that isolated the record most, largest share first (empty in an anomaly
    /// without reasons).
    pub explanation: Vec<Contribution>,
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

    /// Reads an anomaly record within `limits` (its size; the nesting limit applies to
    /// anomalies without reasons, whose records are transactions).
    pub fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Anomaly, DecodeError> {
        if bytes.len() > limits.max_bytes {
            return Err(DecodeError::Oversized {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let with_reasons =
            serde_json::from_slice::<Probe>(bytes).is_ok_and(|probe| probe.record_id.0);
        if !with_reasons {
            return Anomaly::decode_without_reasons(bytes, limits);
        }
        match serde_json::from_slice::<WithReasons>(bytes) {
            Ok(wire) => Ok(wire.into()),
            // A transaction of its own with a `record_id` field, scored without reasons.
            Err(error) => Anomaly::decode_without_reasons(bytes, limits)
                .map_err(|_| DecodeError::NotJson(format!("not an anomaly with reasons: {error}"))),
        }
    }

    /// An anomaly without reasons: its record is a transaction.
    fn decode_without_reasons(bytes: &[u8], limits: &DecodeLimits) -> Result<Anomaly, DecodeError> {
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
            identified_by_position: false,
            feature_names: Vec::new(),
            explanation: Vec::new(),
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

/// Whether a field is present, whatever it holds.
#[derive(Debug, Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

/// Enough of an anomaly to tell whether it carries reasons.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    record_id: Present,
}

/// An anomaly with reasons, as written. The record's own fields are read only where the
/// typed [`Anomaly`] has them, and leniently (they are whatever the record held).
#[derive(Deserialize)]
struct WithReasons {
    score: Vec<f64>,
    anomaly_score: f64,
    threshold: f64,
    model: String,
    detected_at: String,
    partition: i32,
    offset: i64,
    record_id: Option<WireId>,
    features: OrderedFeatures,
    explanation: Vec<Contribution>,
    #[serde(default)]
    label: Option<Value>,
    #[serde(default)]
    current_time: Option<Value>,
    #[serde(default)]
    truncated: Option<Value>,
    #[serde(default)]
    original_bytes: Option<Value>,
    #[serde(default)]
    original_sha256: Option<Value>,
}

impl From<WithReasons> for Anomaly {
    fn from(wire: WithReasons) -> Self {
        let label = match wire.label {
            Some(Value::Bool(label)) => Some(u8::from(label)),
            Some(Value::Number(label)) => label.as_u64().filter(|&l| l <= 1).map(|l| l as u8),
            _ => None,
        };
        let truncated = match (wire.truncated, wire.original_bytes, wire.original_sha256) {
            (Some(Value::Bool(true)), Some(Value::Number(bytes)), Some(Value::String(sha256))) => {
                bytes.as_u64().map(|bytes| Digest { bytes, sha256 })
            }
            _ => None,
        };
        Anomaly {
            identified_by_position: wire.record_id.is_none(),
            id: wire.record_id.map_or_else(
                || RecordId::position(wire.partition, wire.offset),
                RecordId::from,
            ),
            features: wire.features.values,
            feature_names: wire.features.names,
            explanation: wire.explanation,
            label,
            score: wire.score,
            anomaly_score: wire.anomaly_score,
            threshold: wire.threshold,
            model: wire.model,
            detected_at: wire.detected_at,
            partition: wire.partition,
            offset: wire.offset,
            current_time: match wire.current_time {
                Some(Value::String(time)) => Some(time),
                _ => None,
            },
            truncated,
        }
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

    use crate::reasons::{Direction, FeatureShare};

    fn names() -> Vec<String> {
        ["amount:log", "/merchant/mcc:category", "ts:hour"]
            .map(String::from)
            .to_vec()
    }

    const TOP: [FeatureShare; 3] = [
        FeatureShare {
            feature: 0,
            direction: Direction::High,
            share: 0.5,
        },
        FeatureShare {
            feature: 2,
            direction: Direction::Low,
            share: 0.3,
        },
        FeatureShare {
            feature: 1,
            direction: Direction::Low,
            share: 0.125,
        },
    ];

    fn scored<'a>(id: Option<&'a RecordId>, names: &'a [String], row: &'a [f64]) -> Scored<'a> {
        Scored {
            record_id: id,
            names,
            row,
            top: &TOP,
            from_data: false,
        }
    }

    const PAYMENT: &str = r#"{"card": "c-81", "amount": 912.40, "merchant": {"mcc": "5411", "geo": [1e999, 2]}, "ts": "2026-12-01T03:12:09Z", "label": true} "#;

    #[test]
    fn a_scored_anomaly_keeps_the_record_as_written_and_adds_verdict_and_reasons() {
        let (names, row) = (names(), [6.817, 0.0, 3.2025]);
        let bytes = encode_scored_anomaly(PAYMENT, &verdict(), &scored(None, &names, &row));
        let text = String::from_utf8(bytes.clone()).unwrap();
        // Every field as written (1e999 included), in its order; the additions at the end.
        let record = PAYMENT.trim_end().strip_suffix('}').unwrap();
        assert!(text.starts_with(record), "{text}");
        let added = &text[record.len()..];
        let score = serde_json::to_string(&verdict().anomaly_score).unwrap();
        assert_eq!(
            added,
            format!(
                r#","score":[-{score}],"anomaly_score":{score},"threshold":0.62,"model":"abc","detected_at":"2026-11-28T09:00:00.000000Z","partition":2,"offset":99,"record_id":null,"features":{{"amount:log":6.817,"/merchant/mcc:category":0.0,"ts:hour":3.2025}},"explanation":[{{"feature":"amount:log","value":6.817,"direction":"high","share":0.5}},{{"feature":"ts:hour","value":3.2025,"direction":"low","share":0.3}},{{"feature":"/merchant/mcc:category","value":0.0,"direction":"low","share":0.125}}]}}"#
            )
        );
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!(anomaly.id, RecordId::Str("2:99".into()));
        assert!(anomaly.identified_by_position);
        assert_eq!(anomaly.features, row);
        assert_eq!(anomaly.feature_names, names);
        assert_eq!(
            anomaly.explanation,
            [
                Contribution {
                    feature: "amount:log".into(),
                    value: 6.817,
                    direction: Direction::High,
                    share: 0.5
                },
                Contribution {
                    feature: "ts:hour".into(),
                    value: 3.2025,
                    direction: Direction::Low,
                    share: 0.3
                },
                Contribution {
                    feature: "/merchant/mcc:category".into(),
                    value: 0.0,
                    direction: Direction::Low,
                    share: 0.125
                },
            ]
        );
        assert_eq!(
            (anomaly.label, anomaly.current_time.as_deref()),
            (Some(1), None)
        );
        assert_eq!(anomaly.verdict(), Some(verdict()));
        assert_eq!(anomaly.truncated, None);
    }

    #[test]
    fn a_rescored_anomaly_with_reasons_gets_one_verdict_and_the_record_its_other_fields() {
        let (names, row) = (names(), [1.0, 2.0, 3.0]);
        let id = RecordId::Int(17);
        let first = encode_scored_anomaly(PAYMENT, &verdict(), &scored(Some(&id), &names, &row));
        let again = Verdict {
            offset: 7,
            ..verdict()
        };
        let other = RecordId::Str("x".into());
        let second = encode_scored_anomaly(
            std::str::from_utf8(&first).unwrap(),
            &again,
            &scored(Some(&other), &names[..1], &row[..1]),
        );
        let text = String::from_utf8(second.clone()).unwrap();
        for name in ANOMALY_FIELDS {
            assert_eq!(
                text.matches(&format!("\"{name}\"")).count(),
                1,
                "{name}: {text}"
            );
        }
        assert!(text.contains(r#""amount":912.40"#), "{text}");
        let anomaly = Anomaly::decode(&second).unwrap();
        assert_eq!((anomaly.offset, anomaly.id), (7, other));
        assert_eq!(anomaly.feature_names, ["amount:log"]);
        // A data record scored with reasons: `id` and `data` are the record's, `record_id`
        // and `features` the same values.
        let tx = r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387", "label": 0}"#;
        let (names, row) = (vec!["x0".to_string(), "x1".to_string()], [2.39, -1.22]);
        let id = RecordId::Int(4);
        let bytes = encode_scored_anomaly(
            tx,
            &verdict(),
            &Scored {
                from_data: true,
                top: &TOP[..1],
                ..scored(Some(&id), &names, &row)
            },
        );
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!((anomaly.id, anomaly.identified_by_position), (id, false));
        assert_eq!(anomaly.features, row);
        assert_eq!(anomaly.label, Some(0));
        assert_eq!(
            anomaly.current_time.as_deref(),
            Some("2024-04-27T21:17:34.733387")
        );
        let value = json_of(&bytes);
        assert_eq!(
            (value["id"].clone(), value["data"].clone()),
            (json!(4), json!([[2.39, -1.22]]))
        );
    }

    #[test]
    fn anomalies_without_reasons_are_still_read() {
        let anomaly =
            Anomaly::decode(&encode_anomaly(&decode(ORIGINAL).unwrap(), &verdict())).unwrap();
        assert_eq!(anomaly.id, RecordId::Int(4));
        assert_eq!(anomaly.features, [2.39, -1.22]);
        assert!(anomaly.feature_names.is_empty() && anomaly.explanation.is_empty());
        assert!(!anomaly.identified_by_position);
        // A transaction with its own `record_id` (not an anomaly with reasons) too.
        let own = r#"{"id": 5, "data": [1, 2], "record_id": {"a": 1}}"#;
        let anomaly = Anomaly::decode(&encode_anomaly(&decode(own).unwrap(), &verdict())).unwrap();
        assert_eq!(
            (anomaly.id, anomaly.features),
            (RecordId::Int(5), vec![1.0, 2.0])
        );
        // Something that is neither says why.
        let error = Anomaly::decode(br#"{"record_id": 1, "id": 1}"#).unwrap_err();
        assert!(error.to_string().contains("reasons"), "{error}");
    }

    #[test]
    fn a_reduced_scored_anomaly_keeps_reasons_and_verdict() {
        let (names, row) = (names(), [6.817, 0.0, 3.2025]);
        let original = Digest::of(PAYMENT.as_bytes());
        let id = RecordId::Str("tx-9".into());
        let bytes =
            encode_reduced_scored_anomaly(&verdict(), &scored(Some(&id), &names, &row), &original);
        let value = json_of(&bytes);
        assert!(
            value.get("id").is_none() && value.get("card").is_none(),
            "{value}"
        );
        assert_eq!(value["record_id"], json!("tx-9"));
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!(anomaly.truncated, Some(original.clone()));
        assert_eq!((&anomaly.id, &anomaly.features), (&id, &row.to_vec()));
        assert_eq!(anomaly.explanation.len(), 3);
        assert_eq!(anomaly.verdict(), Some(verdict()));
        // A data record's keeps `id` and `data` first, as the form without reasons did.
        let (names, row) = (vec!["x0".to_string(), "x1".to_string()], [3.5, -1.25]);
        let id = RecordId::Int(9);
        let data = Scored {
            from_data: true,
            ..scored(Some(&id), &names, &row)
        };
        let bytes = encode_reduced_scored_anomaly(&verdict(), &data, &original);
        assert!(bytes.starts_with(br#"{"id":9,"data":[[3.5,-1.25]],"truncated":true,"#));
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!((anomaly.id, anomaly.truncated), (id, Some(original)));
        // Neither form is large: three features and their explanation.
        assert!(bytes.len() < 700, "{} bytes", bytes.len());
    }
}
