//! [`Transaction`]: the record as the original pipeline writes it, its id and limits, and its
//! encoding. Reading is done by two readers: `fast_read` for the common shape, `full_read`
//! for everything else (and every refusal's reason).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::fast_read;
use crate::fields::VERDICT_FIELDS;
use crate::full_read::{self, parse_data, parse_id, parse_label, scan_json};
use crate::id::RecordId;
use crate::time::parse_time;

/// Bounds on what [`Transaction::decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest record in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (default 32).
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 32,
        }
    }
}

/// One transaction: its id, its features, and every field it came with.
///
/// It keeps the record's own JSON text: encoding passes it on unchanged (field order, number
/// spelling and unknown fields included) while the public fields still say what it says, and
/// writes the changes in when they do not.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The id (the Kafka key is its text).
    pub id: RecordId,
    /// The feature values, one row.
    pub features: Vec<f64>,
    /// The label of replayed labelled data (1 = anomaly).
    pub label: Option<u8>,
    /// `current_time` as written.
    pub current_time: Option<String>,
    pub(crate) time_problem: Option<String>,
    /// The record's JSON object, as read or as built.
    pub(crate) text: Box<str>,
    /// The public fields as `text` has them, to tell whether they were changed since.
    pub(crate) as_read: AsRead,
    /// `text` already has fields an anomaly adds (a re-scored anomaly): they are replaced.
    pub(crate) has_verdict_fields: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AsRead {
    pub(crate) id: RecordId,
    pub(crate) features: Vec<f64>,
    pub(crate) label: Option<u8>,
    pub(crate) current_time: Option<String>,
}

impl PartialEq for Transaction {
    /// The same public fields and the same JSON fields (however the text spells them).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.features == other.features
            && self.label == other.label
            && self.current_time == other.current_time
            && self.time_problem == other.time_problem
            && self.current_fields() == other.current_fields()
    }
}

/// Naive ISO-8601, as Python's `datetime.isoformat()` writes it (microseconds).
const NAIVE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// A new record in the original's field order.
#[derive(serde::Serialize)]
struct NewRecord<'a> {
    id: i64,
    data: [&'a [f64]; 1],
    current_time: &'a str,
}

impl Transaction {
    /// A transaction as the original pipeline writes it: `data` nested (`[[x, y]]`) and the
    /// time as naive UTC with microseconds.
    pub fn new(id: i64, features: Vec<f64>, current_time: NaiveDateTime) -> Self {
        let time = current_time.format(NAIVE_TIME_FORMAT).to_string();
        let record = NewRecord {
            id,
            data: [&features],
            current_time: &time,
        };
        // Finite numbers and text always serialize; a NaN feature would be written as null
        // (and refused when read back).
        let text = serde_json::to_string(&record).unwrap_or_default();
        let id = RecordId::Int(id);
        Self {
            as_read: AsRead {
                id: id.clone(),
                features: features.clone(),
                label: None,
                current_time: Some(time.clone()),
            },
            id,
            features,
            label: None,
            current_time: Some(time),
            time_problem: None,
            text: text.into_boxed_str(),
            has_verdict_fields: false,
        }
    }

    /// Adds a 0/1 label (replayed labelled data).
    pub fn with_label(mut self, label: u8) -> Self {
        self.label = Some(label);
        self.rebase();
        self
    }

    /// Writes the public fields into the text, which then says what they say.
    fn rebase(&mut self) {
        let fields = self.current_fields();
        self.text = serde_json::to_string(&fields)
            .unwrap_or_default()
            .into_boxed_str();
        self.as_read = AsRead {
            id: self.id.clone(),
            features: self.features.clone(),
            label: self.label,
            current_time: self.current_time.clone(),
        };
    }

    /// The Kafka key: the id as text.
    pub fn key(&self) -> String {
        self.id.to_string()
    }

    /// Every field the record had, unknown ones included, as decoded or built (changes to the
    /// public fields show in [`encode`](Self::encode), not here).
    pub fn fields(&self) -> Map<String, Value> {
        serde_json::from_str(&self.text).unwrap_or_default()
    }

    /// The record's JSON: every field it had, with `id`, `data`, `label` and `current_time`
    /// as the public fields now say (a changed `data` keeps its nested or flat shape). An
    /// unchanged record is its own text, byte for byte.
    pub fn encode(&self) -> Vec<u8> {
        if self.unchanged() {
            return self.text.as_bytes().to_vec();
        }
        serde_json::to_vec(&self.current_fields()).unwrap_or_default()
    }

    /// The public fields still say what the text says.
    pub(crate) fn unchanged(&self) -> bool {
        let read = &self.as_read;
        self.id == read.id
            && self.label == read.label
            && self.current_time == read.current_time
            && self.features.len() == read.features.len()
            && self
                .features
                .iter()
                .zip(&read.features)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// The fields to write: the record's own, with the public fields written in where they
    /// differ.
    pub(crate) fn current_fields(&self) -> Map<String, Value> {
        let mut fields = self.fields();
        if self.unchanged() {
            return fields;
        }
        if fields.get("id").map(parse_id) != Some(Ok(self.id.clone())) {
            fields.insert("id".into(), Value::from(&self.id));
        }
        let data = fields.get("data");
        let same_bits = |read: Vec<f64>| {
            read.len() == self.features.len()
                && read
                    .iter()
                    .zip(&self.features)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
        };
        if !data
            .and_then(|d| parse_data(d, None).ok())
            .is_some_and(same_bits)
        {
            let flat = data
                .and_then(Value::as_array)
                .and_then(|items| items.first())
                .is_some_and(|first| !first.is_array());
            let row = Value::from(self.features.clone());
            let data = if flat { row } else { Value::Array(vec![row]) };
            fields.insert("data".into(), data);
        }
        let label = fields.get("label").and_then(|l| parse_label(l).ok());
        if label != self.label {
            match self.label {
                Some(label) => fields.insert("label".into(), Value::from(label)),
                None => fields.remove("label"),
            };
        }
        match (&self.current_time, fields.get("current_time")) {
            (Some(time), Some(Value::String(written))) if time == written => {}
            (Some(time), _) => {
                fields.insert("current_time".into(), Value::from(time.as_str()));
            }
            (None, Some(Value::String(_))) => {
                fields.remove("current_time");
            }
            (None, _) => {}
        }
        fields
    }

    /// Why `current_time` is not a time, when it is present but unreadable (the record is still
    /// scored; the problem is noted).
    pub fn time_problem(&self) -> Option<&str> {
        self.time_problem.as_deref()
    }

    /// `current_time` as a UTC instant, when it is one (naive times are UTC, as the original
    /// writes them).
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.current_time.as_deref().and_then(parse_time)
    }

    /// Reads a transaction, or says exactly why it is not one.
    pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Transaction, DecodeError> {
        if bytes.len() > limits.max_bytes {
            return Err(DecodeError::Oversized {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
        if let Some(read) = fast_read::read(text, &VERDICT_FIELDS, limits.max_depth) {
            return Ok(Transaction::from_fast_read(text, read));
        }
        let scan = scan_json(text);
        if scan.max_depth > limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: limits.max_depth,
            });
        }
        full_read::read(text, &scan).map(|read| Transaction::from_full_read(text, read))
    }

    /// The transaction the full reader found in `text`.
    pub(crate) fn from_full_read(text: &str, read: full_read::FullRead) -> Transaction {
        Transaction {
            as_read: AsRead {
                id: read.id.clone(),
                features: read.features.clone(),
                label: read.label,
                current_time: read.current_time.clone(),
            },
            id: read.id,
            features: read.features,
            label: read.label,
            current_time: read.current_time,
            time_problem: read.time_problem,
            text: text.into(),
            has_verdict_fields: read.has_verdict_fields,
        }
    }

    pub(crate) fn from_fast_read(text: &str, read: fast_read::FastRead<'_>) -> Transaction {
        let id = match read.id {
            fast_read::FastId::Int(id) => RecordId::Int(id),
            fast_read::FastId::Str(id) => RecordId::Str(id.into_owned()),
        };
        let current_time = read.current_time.map(Cow::into_owned);
        let time_problem = current_time
            .as_deref()
            .filter(|text| parse_time(text).is_none())
            .map(|text| format!("current_time {text:?} is not a time"));
        Transaction {
            as_read: AsRead {
                id: id.clone(),
                features: read.features.clone(),
                label: read.label,
                current_time: current_time.clone(),
            },
            id,
            features: read.features,
            label: read.label,
            current_time,
            time_problem,
            text: text.into(),
            has_verdict_fields: read.has_verdict_fields,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::anomaly::tests::verdict;
    use crate::{encode_anomaly, Anomaly, Verdict};
    use serde_json::json;

    pub(crate) const ORIGINAL: &str =
        r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}"#;

    pub(crate) fn decode(text: &str) -> Result<Transaction, DecodeError> {
        Transaction::decode(text.as_bytes(), &DecodeLimits::default())
    }

    pub(crate) fn error(bytes: &[u8]) -> DecodeError {
        Transaction::decode(bytes, &DecodeLimits::default()).unwrap_err()
    }

    pub(crate) fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn the_original_record_decodes() {
        let tx = decode(ORIGINAL).unwrap();
        assert_eq!(tx.id, RecordId::Int(4));
        assert_eq!(tx.key(), "4");
        assert_eq!(tx.features, [2.39, -1.22]);
        assert_eq!(tx.label, None);
        assert_eq!(
            tx.current_time.as_deref(),
            Some("2024-04-27T21:17:34.733387")
        );
        assert_eq!(tx.time_problem(), None);
        assert_eq!(
            tx.time().unwrap().to_rfc3339(),
            "2024-04-27T21:17:34.733387+00:00"
        );
    }

    #[test]
    fn the_original_record_round_trips_unchanged() {
        let tx = decode(ORIGINAL).unwrap();
        let encoded = tx.encode();
        assert_eq!(json_of(&encoded), json_of(ORIGINAL.as_bytes()));
        assert_eq!(
            Transaction::decode(&encoded, &DecodeLimits::default()).unwrap(),
            tx
        );
        // Integers stay integers, nested stays nested, flat stays flat.
        let flat = r#"{"id": 9, "data": [1, 2.5, -3]}"#;
        assert_eq!(
            json_of(&decode(flat).unwrap().encode()),
            json_of(flat.as_bytes())
        );
    }

    #[test]
    fn new_transactions_look_like_the_originals() {
        let time =
            NaiveDateTime::parse_from_str("2024-04-27T21:17:34.733387", NAIVE_TIME_FORMAT).unwrap();
        let tx = Transaction::new(4, vec![2.39, -1.22], time);
        assert_eq!(json_of(&tx.encode()), json_of(ORIGINAL.as_bytes()));
        assert_eq!(decode(ORIGINAL).unwrap(), tx);
        let labelled = tx.with_label(1);
        assert_eq!(
            json_of(&labelled.encode()),
            json!({"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387", "label": 1})
        );
        // A whole second still has its six decimals, as Python's isoformat() would not, but
        // both read back as the same instant.
        let whole =
            NaiveDateTime::parse_from_str("2024-04-27T21:17:34", "%Y-%m-%dT%H:%M:%S").unwrap();
        let tx = Transaction::new(1, vec![0.0], whole);
        assert_eq!(
            tx.current_time.as_deref(),
            Some("2024-04-27T21:17:34.000000")
        );
        assert_eq!(tx.time().unwrap(), whole.and_utc());
    }

    #[test]
    fn nested_and_flat_data_of_any_width() {
        for width in [1usize, 2, 3, 17, 200] {
            let row: Vec<f64> = (0..width).map(|i| i as f64 * 0.5 - 3.0).collect();
            let nested = json!({"id": 1, "data": [row.clone()]}).to_string();
            let flat = json!({"id": 1, "data": row.clone()}).to_string();
            assert_eq!(decode(&nested).unwrap().features, row, "nested, {width}");
            assert_eq!(decode(&flat).unwrap().features, row, "flat, {width}");
        }
        let integers = decode(r#"{"id": 1, "data": [[1, -2, 30000000000]]}"#).unwrap();
        assert_eq!(integers.features, [1.0, -2.0, 3e10]);
    }

    #[test]
    fn naive_and_offset_times() {
        let at = |text: &str| {
            decode(&json!({"id": 1, "data": [1], "current_time": text}).to_string()).unwrap()
        };
        for (text, utc) in [
            (
                "2024-04-27T21:17:34.733387",
                "2024-04-27T21:17:34.733387+00:00",
            ),
            ("2024-04-27T21:17:34", "2024-04-27T21:17:34+00:00"),
            ("2024-04-27 21:17:34.5", "2024-04-27T21:17:34.500+00:00"),
            (
                "2024-04-27T21:17:34.733387+02:00",
                "2024-04-27T19:17:34.733387+00:00",
            ),
            ("2024-04-27T21:17:34-05:30", "2024-04-28T02:47:34+00:00"),
            ("2024-04-27T21:17:34Z", "2024-04-27T21:17:34+00:00"),
        ] {
            let tx = at(text);
            assert_eq!(tx.time_problem(), None, "{text}");
            assert_eq!(tx.time().unwrap().to_rfc3339(), utc, "{text}");
            assert_eq!(tx.current_time.as_deref(), Some(text), "kept as written");
        }
        assert_eq!(decode(r#"{"id": 1, "data": [1]}"#).unwrap().time(), None);
    }

    #[test]
    fn a_bad_time_is_noted_not_refused() {
        for bad in [
            r#""yesterday""#,
            r#""2024-13-40T99:00:00""#,
            r#""""#,
            "5",
            "[2024]",
        ] {
            let tx = decode(&format!(
                r#"{{"id": 1, "data": [1], "current_time": {bad}}}"#
            ))
            .unwrap_or_else(|e| panic!("{bad} refused: {e}"));
            assert!(tx.time_problem().is_some(), "{bad}");
            assert_eq!(tx.time(), None, "{bad}");
            assert_eq!(tx.features, [1.0]);
        }
        let tx = decode(r#"{"id": 1, "data": [1], "current_time": "yesterday"}"#).unwrap();
        assert!(tx.time_problem().unwrap().contains("yesterday"));
        // The unreadable time travels on untouched.
        assert_eq!(json_of(&tx.encode())["current_time"], "yesterday");
        let tx = decode(r#"{"id": 1, "data": [1], "current_time": 5}"#).unwrap();
        assert_eq!(json_of(&tx.encode())["current_time"], 5);
    }

    #[test]
    fn ids_are_integers_or_strings() {
        assert_eq!(
            decode(r#"{"id": "a-1", "data": [1]}"#).unwrap().id,
            RecordId::Str("a-1".into())
        );
        assert_eq!(
            decode(r#"{"id": "a-1", "data": [1]}"#).unwrap().key(),
            "a-1"
        );
        assert_eq!(
            decode(r#"{"id": -9223372036854775808, "data": [1]}"#)
                .unwrap()
                .key(),
            "-9223372036854775808"
        );
        for bad in ["1.5", "true", r#""""#, "[1]", "{}", "18446744073709551615"] {
            let text = format!(r#"{{"id": {bad}, "data": [1]}}"#);
            assert_eq!(error(text.as_bytes()), DecodeError::InvalidId, "{bad}");
        }
    }

    #[test]
    fn labels_are_zero_or_one() {
        for (label, expected) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("1.0", Some(1)),
            ("null", None),
        ] {
            let text = format!(r#"{{"id": 1, "data": [1], "label": {label}}}"#);
            assert_eq!(decode(&text).unwrap().label, expected, "{label}");
        }
        for bad in ["2", "-1", "0.5", r#""1""#, "true"] {
            let text = format!(r#"{{"id": 1, "data": [1], "label": {bad}}}"#);
            assert_eq!(error(text.as_bytes()), DecodeError::InvalidLabel, "{bad}");
        }
    }

    /// Deterministic bit patterns spread over the whole f64 range.
    fn awkward_floats() -> Vec<f64> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![
            0.1,
            -0.0,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            2.39,
            -1.22,
            0.6821234567891234,
            9007199254740993.0,
        ];
        while values.len() < 2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let value = f64::from_bits(state);
            if value.is_finite() {
                values.push(value);
            }
        }
        values
    }

    #[test]
    fn floats_survive_the_json_hop_bit_exact() {
        let time = Utc::now().naive_utc();
        let values = awkward_floats();
        for chunk in values.chunks(7) {
            let tx = Transaction::new(1, chunk.to_vec(), time);
            let read = Transaction::decode(&tx.encode(), &DecodeLimits::default()).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&read.features), bits(chunk));
        }
        for &score in &values {
            let verdict = Verdict {
                anomaly_score: score,
                threshold: score / 3.0,
                ..verdict()
            };
            let tx = Transaction::new(1, vec![score], time);
            let anomaly = Anomaly::decode(&encode_anomaly(&tx, &verdict)).unwrap();
            assert_eq!(anomaly.anomaly_score.to_bits(), score.to_bits());
            assert_eq!(anomaly.threshold.to_bits(), (score / 3.0).to_bits());
            assert_eq!(anomaly.score[0].to_bits(), (-score).to_bits());
        }
    }

    #[test]
    fn encoding_follows_the_public_fields() {
        let mut tx = decode(
            r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387", "x": 1}"#,
        )
        .unwrap();
        tx.features = vec![1.0, 2.0, 3.0];
        tx.label = Some(0);
        tx.id = RecordId::Str("four".into());
        let value = json_of(&tx.encode());
        assert_eq!(
            value["data"],
            json!([[1.0, 2.0, 3.0]]),
            "nested stays nested"
        );
        assert_eq!(value["label"], 0);
        assert_eq!(value["id"], "four");
        assert_eq!(value["x"], 1);
        let anomaly = Anomaly::decode(&encode_anomaly(&tx, &verdict())).unwrap();
        assert_eq!(anomaly.features, [1.0, 2.0, 3.0]);

        let mut flat = decode(r#"{"id": 4, "data": [1, 2], "label": 1}"#).unwrap();
        flat.features[1] = 5.0;
        flat.label = None;
        flat.current_time = Some("2024-01-01T00:00:00".into());
        assert_eq!(
            json_of(&flat.encode()),
            json!({"id": 4, "data": [1.0, 5.0], "current_time": "2024-01-01T00:00:00"})
        );
        // Unchanged records are written as they were read, byte for byte: field order,
        // spacing, integers and unknown fields.
        let text = r#"{"x": {"y": [1e3]}, "id": 4,  "data": [1, 2] }"#;
        let same = decode(text).unwrap();
        assert_eq!(String::from_utf8(same.encode()).unwrap(), text);
    }

    #[test]
    fn records_and_errors_can_cross_threads() {
        fn has_autotraits<T: Send + Sync + Unpin>() {}
        has_autotraits::<Transaction>();
        has_autotraits::<crate::Anomaly>();
        has_autotraits::<crate::Verdict>();
        has_autotraits::<RecordId>();
        has_autotraits::<DecodeError>();
        has_autotraits::<crate::Rejection>();
        has_autotraits::<DecodeLimits>();
    }
}
