//! Transactions and anomalies: decoding with a precise reason for every refusal, encoding in
//! the original pipeline's shape.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// A transaction's id: an integer, as the original writes it, or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for RecordId {
    /// The record's Kafka key: the id as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::Int(id) => write!(f, "{id}"),
            RecordId::Str(id) => f.write_str(id),
        }
    }
}

impl From<&RecordId> for Value {
    fn from(id: &RecordId) -> Self {
        match id {
            RecordId::Int(id) => Value::from(*id),
            RecordId::Str(id) => Value::from(id.as_str()),
        }
    }
}

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

/// Why a record is not a usable transaction. [`reason`](Self::reason) is a stable,
/// machine-readable code; `Display` says it for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Larger than the configured limit.
    #[error("the record has {size} bytes, more than the limit of {limit}")]
    Oversized {
        /// Record size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("the record is not UTF-8 text")]
    NotUtf8,
    /// Not JSON.
    #[error("the record is not JSON: {0}")]
    NotJson(String),
    /// Nested deeper than the limit.
    #[error("the record is nested deeper than {limit} levels")]
    TooDeep {
        /// Limit.
        limit: usize,
    },
    /// `NaN` or `Infinity` literals, which JSON does not have.
    #[error("the record holds NaN or Infinity, which are not numbers in JSON")]
    NonFiniteLiteral,
    /// A number too large for a 64-bit float.
    #[error("a number is beyond the range of a 64-bit float")]
    NumberOutOfRange,
    /// JSON, but not an object.
    #[error("the record is JSON but not an object")]
    NotAnObject,
    /// No `id` field.
    #[error("the record has no `id`")]
    MissingId,
    /// An `id` that is not an integer or a non-empty string.
    #[error("`id` must be an integer or a non-empty string")]
    InvalidId,
    /// No `data` field.
    #[error("the record has no `data`")]
    MissingData,
    /// `data` is not a list.
    #[error("`data` must be a list of numbers, or a list holding one list of numbers")]
    DataNotArray,
    /// `data` is an empty list.
    #[error("`data` is empty")]
    EmptyData,
    /// `data` mixes numbers and lists, or holds rows of different lengths.
    #[error("`data` is ragged: it mixes numbers and lists or rows of different lengths")]
    RaggedData,
    /// `data` holds several rows; a transaction is one row.
    #[error("`data` holds {rows} rows; a transaction is one row")]
    MultipleRows {
        /// Rows found.
        rows: usize,
    },
    /// `data` nests lists inside its row.
    #[error("`data` is nested too deep: a row must be a list of numbers")]
    DataTooDeep,
    /// A value in `data` is not a number.
    #[error("`data` value {index} is not a number")]
    NonNumeric {
        /// Position in the row.
        index: usize,
    },
    /// `label` is present but neither 0 nor 1.
    #[error("`label` must be 0 or 1")]
    InvalidLabel,
    /// An anomaly record lacks a field it must have.
    #[error("the record has no valid `{0}`")]
    MissingField(&'static str),
}

impl DecodeError {
    /// The stable, machine-readable reason, as dead letters carry it.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::NotUtf8 => "not_utf8",
            DecodeError::NotJson(_) => "not_json",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::NonFiniteLiteral => "non_finite",
            DecodeError::NumberOutOfRange => "number_out_of_range",
            DecodeError::NotAnObject => "not_an_object",
            DecodeError::MissingId => "missing_id",
            DecodeError::InvalidId => "invalid_id",
            DecodeError::MissingData => "missing_data",
            DecodeError::DataNotArray => "data_not_array",
            DecodeError::EmptyData => "empty_data",
            DecodeError::RaggedData => "ragged_data",
            DecodeError::MultipleRows { .. } => "multiple_rows",
            DecodeError::DataTooDeep => "data_too_deep",
            DecodeError::NonNumeric { .. } => "non_numeric",
            DecodeError::InvalidLabel => "invalid_label",
            DecodeError::MissingField(_) => "missing_field",
        }
    }
}

/// Why the detector refused a record: what a dead letter carries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The record is not a usable transaction.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A usable transaction with another number of features than the model's.
    #[error("the record has {found} features, the model expects {expected}")]
    FeatureCount {
        /// Model's feature count.
        expected: usize,
        /// Record's feature count.
        found: usize,
    },
}

impl Rejection {
    /// The stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Decode(error) => error.reason(),
            Rejection::FeatureCount { .. } => "feature_count",
        }
    }
}

/// One transaction: its id, its features, and every field it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The id (the Kafka key is its text).
    pub id: RecordId,
    /// The feature values, one row.
    pub features: Vec<f64>,
    /// The label of replayed labelled data (1 = anomaly).
    pub label: Option<u8>,
    /// `current_time` as written.
    pub current_time: Option<String>,
    time_problem: Option<String>,
    fields: Map<String, Value>,
}

/// Naive ISO-8601, as Python's `datetime.isoformat()` writes it (microseconds).
const NAIVE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

impl Transaction {
    /// A transaction as the original pipeline writes it: `data` nested (`[[x, y]]`) and the
    /// time as naive UTC with microseconds.
    pub fn new(id: i64, features: Vec<f64>, current_time: NaiveDateTime) -> Self {
        let time = current_time.format(NAIVE_TIME_FORMAT).to_string();
        let mut fields = Map::new();
        fields.insert("id".into(), Value::from(id));
        fields.insert(
            "data".into(),
            Value::Array(vec![Value::from(features.clone())]),
        );
        fields.insert("current_time".into(), Value::from(time.clone()));
        Self {
            id: RecordId::Int(id),
            features,
            label: None,
            current_time: Some(time),
            time_problem: None,
            fields,
        }
    }

    /// Adds a 0/1 label (replayed labelled data).
    pub fn with_label(mut self, label: u8) -> Self {
        self.label = Some(label);
        self.fields.insert("label".into(), Value::from(label));
        self
    }

    /// The Kafka key: the id as text.
    pub fn key(&self) -> String {
        self.id.to_string()
    }

    /// Every field the record had, unknown ones included.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The record's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&self.fields).unwrap_or_default()
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
        let fields = parse_object(bytes, limits)?;
        let id = match fields.get("id") {
            None | Some(Value::Null) => return Err(DecodeError::MissingId),
            Some(value) => parse_id(value)?,
        };
        let features = match fields.get("data") {
            None | Some(Value::Null) => return Err(DecodeError::MissingData),
            Some(value) => parse_data(value)?,
        };
        let label = match fields.get("label") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_label(value)?),
        };
        let (current_time, time_problem) = match fields.get("current_time") {
            None | Some(Value::Null) => (None, None),
            Some(Value::String(text)) => match parse_time(text) {
                Some(_) => (Some(text.clone()), None),
                None => (
                    Some(text.clone()),
                    Some(format!("current_time {text:?} is not a time")),
                ),
            },
            Some(other) => (
                None,
                Some(format!("current_time {other} is not a time string")),
            ),
        };
        Ok(Transaction {
            id,
            features,
            label,
            current_time,
            time_problem,
            fields,
        })
    }
}

/// Parses a naive ISO-8601 time (taken as UTC) or one with an offset.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// Size, UTF-8, depth, JSON, object: the checks every record passes first.
fn parse_object(bytes: &[u8], limits: &DecodeLimits) -> Result<Map<String, Value>, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::Oversized {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
    let scan = scan_json(text);
    if scan.max_depth > limits.max_depth {
        return Err(DecodeError::TooDeep {
            limit: limits.max_depth,
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|error| {
        if scan.non_finite_literal {
            DecodeError::NonFiniteLiteral
        } else if error.to_string().contains("number out of range") {
            DecodeError::NumberOutOfRange
        } else {
            DecodeError::NotJson(error.to_string())
        }
    })?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(DecodeError::NotAnObject),
    }
}

struct Scan {
    max_depth: usize,
    non_finite_literal: bool,
}

/// One pass over the text outside strings: nesting depth (checked before serde_json recurses)
/// and NaN / Infinity literals (to name them rather than say "not JSON").
fn scan_json(text: &str) -> Scan {
    let (mut depth, mut max_depth) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    let bytes = text.as_bytes();
    let mut non_finite_literal = false;
    for (position, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'N' => non_finite_literal |= bytes[position..].starts_with(b"NaN"),
            b'I' => non_finite_literal |= bytes[position..].starts_with(b"Infinity"),
            _ => {}
        }
    }
    Scan {
        max_depth,
        non_finite_literal,
    }
}

fn parse_id(value: &Value) -> Result<RecordId, DecodeError> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .map(RecordId::Int)
            .ok_or(DecodeError::InvalidId),
        Value::String(text) if !text.is_empty() => Ok(RecordId::Str(text.clone())),
        _ => Err(DecodeError::InvalidId),
    }
}

/// `[x, y, …]` or `[[x, y, …]]`.
fn parse_data(value: &Value) -> Result<Vec<f64>, DecodeError> {
    let Value::Array(items) = value else {
        return Err(DecodeError::DataNotArray);
    };
    if items.is_empty() {
        return Err(DecodeError::EmptyData);
    }
    let row = if items.iter().all(Value::is_array) {
        if items.len() > 1 {
            let first_len = items[0].as_array().map_or(0, Vec::len);
            if items
                .iter()
                .any(|row| row.as_array().map_or(0, Vec::len) != first_len)
            {
                return Err(DecodeError::RaggedData);
            }
            return Err(DecodeError::MultipleRows { rows: items.len() });
        }
        match &items[0] {
            Value::Array(row) if row.is_empty() => return Err(DecodeError::EmptyData),
            Value::Array(row) => row,
            _ => return Err(DecodeError::RaggedData),
        }
    } else if items.iter().any(Value::is_array) {
        return Err(DecodeError::RaggedData);
    } else {
        items
    };
    row.iter()
        .enumerate()
        .map(|(index, value)| match value {
            Value::Number(number) => number.as_f64().ok_or(DecodeError::NonNumeric { index }),
            Value::Array(_) | Value::Object(_) => Err(DecodeError::DataTooDeep),
            _ => Err(DecodeError::NonNumeric { index }),
        })
        .collect()
}

fn parse_label(value: &Value) -> Result<u8, DecodeError> {
    match value.as_f64() {
        Some(0.0) => Ok(0),
        Some(1.0) => Ok(1),
        _ => Err(DecodeError::InvalidLabel),
    }
}

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

/// Fields an anomaly adds to its transaction.
const VERDICT_FIELDS: [&str; 7] = [
    "score",
    "anomaly_score",
    "threshold",
    "model",
    "detected_at",
    "partition",
    "offset",
];

/// The anomaly record: every field the transaction had, plus `score` (`[−anomaly_score]`,
/// scikit-learn's sign: lower = more anomalous), `anomaly_score`, `threshold`, `model`,
/// `detected_at` (RFC 3339) and the source `partition` and `offset`.
pub fn encode_anomaly(transaction: &Transaction, verdict: &Verdict) -> Vec<u8> {
    let verdict_fields = [
        ("score", Value::from(vec![-verdict.anomaly_score])),
        ("anomaly_score", Value::from(verdict.anomaly_score)),
        ("threshold", Value::from(verdict.threshold)),
        ("model", Value::from(verdict.model.as_str())),
        (
            "detected_at",
            Value::from(
                verdict
                    .detected_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ),
        ("partition", Value::from(verdict.partition)),
        ("offset", Value::from(verdict.offset)),
    ];
    let fields = &transaction.fields;
    if VERDICT_FIELDS.iter().any(|name| fields.contains_key(*name)) {
        // A record that already carries verdict fields (re-scored): replace them.
        let mut fields = fields.clone();
        for (name, value) in verdict_fields {
            fields.insert(name.to_string(), value);
        }
        return serde_json::to_vec(&fields).unwrap_or_default();
    }
    // Fast path: the transaction's object with the verdict appended before its closing brace.
    let mut bytes = serde_json::to_vec(fields).unwrap_or_default();
    bytes.pop(); // '}'
    for (name, value) in verdict_fields {
        if bytes.len() > 1 {
            bytes.push(b',');
        }
        bytes.push(b'"');
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b"\":");
        bytes.extend_from_slice(&serde_json::to_vec(&value).unwrap_or_default());
    }
    bytes.push(b'}');
    bytes
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
}

impl Anomaly {
    /// Reads an anomaly record.
    pub fn decode(bytes: &[u8]) -> Result<Anomaly, DecodeError> {
        let transaction = Transaction::decode(bytes, &DecodeLimits::default())?;
        let fields = &transaction.fields;
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
        Ok(Anomaly {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Transaction, DecodeError> {
        Transaction::decode(text.as_bytes(), &DecodeLimits::default())
    }

    fn reason(text: &[u8]) -> &'static str {
        Transaction::decode(text, &DecodeLimits::default())
            .unwrap_err()
            .reason()
    }

    #[test]
    fn the_original_record_decodes() {
        let tx = decode(
            r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}"#,
        )
        .unwrap();
        assert_eq!(tx.id, RecordId::Int(4));
        assert_eq!(tx.key(), "4");
        assert_eq!(tx.features, [2.39, -1.22]);
        assert_eq!(tx.label, None);
        assert_eq!(tx.time_problem(), None);
        assert_eq!(
            tx.time().unwrap().to_rfc3339(),
            "2024-04-27T21:17:34.733387+00:00"
        );
    }

    #[test]
    fn flat_data_any_width_offset_times_labels_and_string_ids() {
        let tx = decode(r#"{"id": "a-1", "data": [1, 2, 3, 4.5], "current_time": "2024-04-27T21:17:34+02:00", "label": 1}"#)
            .unwrap();
        assert_eq!(tx.id, RecordId::Str("a-1".into()));
        assert_eq!(tx.features, [1.0, 2.0, 3.0, 4.5]);
        assert_eq!(tx.label, Some(1));
        assert_eq!(tx.time().unwrap().to_rfc3339(), "2024-04-27T19:17:34+00:00");
    }

    #[test]
    fn a_bad_time_is_noted_not_refused() {
        let tx = decode(r#"{"id": 1, "data": [1], "current_time": "yesterday"}"#).unwrap();
        assert!(tx.time_problem().unwrap().contains("yesterday"));
        let tx = decode(r#"{"id": 1, "data": [1], "current_time": 5}"#).unwrap();
        assert!(tx.time_problem().is_some());
    }

    #[test]
    fn every_kind_of_bad_record_has_its_own_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe not text", "not_utf8"),
            (b"this is not json", "not_json"),
            (b"{\"id\": 1, \"data\": [1,", "not_json"),
            (b"[1, 2, 3]", "not_an_object"),
            (b"42", "not_an_object"),
            (br#"{"data": [[1, 2]]}"#, "missing_id"),
            (br#"{"id": 1.5, "data": [[1, 2]]}"#, "invalid_id"),
            (br#"{"id": true, "data": [[1, 2]]}"#, "invalid_id"),
            (br#"{"id": 1}"#, "missing_data"),
            (br#"{"id": 1, "data": "1,2"}"#, "data_not_array"),
            (br#"{"id": 1, "data": []}"#, "empty_data"),
            (br#"{"id": 1, "data": [[]]}"#, "empty_data"),
            (br#"{"id": 1, "data": [[1, 2], [3]]}"#, "ragged_data"),
            (br#"{"id": 1, "data": [1, [2]]}"#, "ragged_data"),
            (br#"{"id": 1, "data": [[1, 2], [3, 4]]}"#, "multiple_rows"),
            (br#"{"id": 1, "data": [[[1, 2]]]}"#, "data_too_deep"),
            (br#"{"id": 1, "data": [[1, "two"]]}"#, "non_numeric"),
            (br#"{"id": 1, "data": [[1, null]]}"#, "non_numeric"),
            (br#"{"id": 1, "data": [[NaN, 1]]}"#, "non_finite"),
            (br#"{"id": 1, "data": [[Infinity, 1]]}"#, "non_finite"),
            (br#"{"id": 1, "data": [[1e400, 1]]}"#, "number_out_of_range"),
            (
                br#"{"id": 1, "data": [[1, 2]], "label": 7}"#,
                "invalid_label",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                reason(bytes),
                *expected,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let deep = format!(
            "{{\"id\": 1, \"data\": {}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(reason(deep.as_bytes()), "too_deep");
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        let error = Transaction::decode(br#"{"id": 1, "data": [1]}"#, &limits).unwrap_err();
        assert_eq!(error.reason(), "oversized");
        assert!(error.to_string().contains("10"));
        let strings_are_not_scanned = decode(r#"{"id": "NaN[[[", "data": [1]}"#).unwrap();
        assert_eq!(strings_are_not_scanned.id, RecordId::Str("NaN[[[".into()));
    }

    #[test]
    fn feature_count_rejection_has_its_reason() {
        let rejection = Rejection::FeatureCount {
            expected: 2,
            found: 3,
        };
        assert_eq!(rejection.reason(), "feature_count");
        assert_eq!(
            Rejection::from(DecodeError::MissingId).reason(),
            "missing_id"
        );
    }

    fn verdict() -> Verdict {
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
        let tx = decode(r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387", "merchant": {"name": "x"}}"#)
            .unwrap();
        let bytes = encode_anomaly(&tx, &verdict());
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["merchant"]["name"], "x");
        assert_eq!(value["data"], serde_json::json!([[2.39, -1.22]]));
        assert_eq!(value["current_time"], "2024-04-27T21:17:34.733387");
        assert_eq!(value["score"], serde_json::json!([-0.6821234567891234]));
        let anomaly = Anomaly::decode(&bytes).unwrap();
        assert_eq!(anomaly.id, RecordId::Int(4));
        assert_eq!(
            anomaly.anomaly_score, 0.6821234567891234,
            "bit-exact through JSON"
        );
        assert_eq!(anomaly.score, vec![-0.6821234567891234]);
        assert_eq!((anomaly.partition, anomaly.offset), (2, 99));
        assert_eq!(anomaly.model, "abc");
        assert_eq!(anomaly.detected_at, "2026-11-28T09:00:00.000000Z");
        // Re-scoring an anomaly replaces its verdict rather than duplicating keys.
        let again = Transaction::decode(&bytes, &DecodeLimits::default()).unwrap();
        let twice: Value = serde_json::from_slice(&encode_anomaly(&again, &verdict())).unwrap();
        assert_eq!(twice["offset"], 99);
    }

    #[test]
    fn new_transactions_look_like_the_originals() {
        let time =
            NaiveDateTime::parse_from_str("2024-04-27T21:17:34.733387", NAIVE_TIME_FORMAT).unwrap();
        let tx = Transaction::new(7, vec![1.5, -2.25], time).with_label(1);
        let text = String::from_utf8(tx.encode()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 7, "data": [[1.5, -2.25]], "current_time": "2024-04-27T21:17:34.733387", "label": 1})
        );
        assert_eq!(decode(&text).unwrap(), tx);
    }
}
