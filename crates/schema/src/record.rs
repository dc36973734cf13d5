//! Transactions and anomalies: decoding with a precise reason for every refusal, encoding in
//! the original pipeline's shape.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::fast_read;

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
    /// `NaN` or `Infinity` outside `data` (JSON has no such numbers, so the record could not
    /// be passed on with its fields).
    #[error("the record holds NaN or Infinity, which are not numbers in JSON")]
    NonFiniteLiteral,
    /// A number outside `data` too large for a 64-bit float.
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
    /// A value in `data` is `NaN`, `Infinity`, `-Infinity`, or a number beyond the range of a
    /// 64-bit float (which would be infinite).
    #[error("`data` value {index} is not finite (NaN, Infinity or beyond a 64-bit float)")]
    NonFinite {
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
            DecodeError::NonFinite { .. } => "non_finite",
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
    time_problem: Option<String>,
    /// The record's JSON object, as read or as built.
    text: Box<str>,
    /// The public fields as `text` has them, to tell whether they were changed since.
    as_read: AsRead,
    /// `text` already has fields an anomaly adds (a re-scored anomaly): they are replaced.
    has_verdict_fields: bool,
}

#[derive(Debug, Clone)]
struct AsRead {
    id: RecordId,
    features: Vec<f64>,
    label: Option<u8>,
    current_time: Option<String>,
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
    fn unchanged(&self) -> bool {
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
    fn current_fields(&self) -> Map<String, Value> {
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
        Transaction::decode_value(text, &scan)
    }

    fn from_fast_read(text: &str, read: fast_read::FastRead<'_>) -> Transaction {
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

    /// The full reader, through a `Value` tree: every record the fast one passes over, and the
    /// exact reason for each it refuses.
    fn decode_value(text: &str, scan: &Scan) -> Result<Transaction, DecodeError> {
        let Parsed { fields, stand_in } = parse_object(text, scan)?;
        let id = match fields.get("id") {
            None | Some(Value::Null) => return Err(DecodeError::MissingId),
            Some(value) => parse_id(value)?,
        };
        let features = match fields.get("data") {
            None | Some(Value::Null) => return Err(DecodeError::MissingData),
            Some(value) => parse_data(value, stand_in.as_ref())?,
        };
        if let Some(stand_in) = &stand_in {
            // `data` is clean, so the value JSON cannot hold is in another field.
            return Err(stand_in.error());
        }
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
        let has_verdict_fields = VERDICT_FIELDS.iter().any(|name| fields.contains_key(*name));
        Ok(Transaction {
            as_read: AsRead {
                id: id.clone(),
                features: features.clone(),
                label,
                current_time: current_time.clone(),
            },
            id,
            features,
            label,
            current_time,
            time_problem,
            text: text.into(),
            has_verdict_fields,
        })
    }
}

/// Parses a naive ISO-8601 time (taken as UTC) or one with an offset.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(time) = parse_naive_time_quickly(text) {
        return Some(time);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// The original's own shape, `YYYY-MM-DDTHH:MM:SS[.f…]` (up to 9 decimals, `T` or a space),
/// read by hand: chrono's format parser was a sixth of the detector's decoding time. Anything
/// else, or any doubt, is `None` and left to chrono, which reads the same text the same way.
fn parse_naive_time_quickly(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes.get(from..to)?.iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 19
        || !matches!(bytes[10], b'T' | b' ')
        || separators.iter().any(|&(at, byte)| bytes[at] != byte)
    {
        return None;
    }
    let nanos = match bytes.len() {
        19 => 0,
        21..=29 if bytes[19] == b'.' => {
            number(20, bytes.len())? * 10u32.pow(29 - bytes.len() as u32)
        }
        _ => return None,
    };
    let second = number(17, 19).filter(|&second| second < 60)?;
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    date.and_hms_nano_opt(number(11, 13)?, number(14, 16)?, second, nanos)
        .map(|naive| naive.and_utc())
}

/// A record's top-level object, and the stand-in for the values JSON cannot hold.
struct Parsed {
    fields: Map<String, Value>,
    /// Set when the text held `NaN`, `Infinity` or out-of-range numbers: each was replaced by
    /// this string (one the text does not contain) so the rest could be read and the bad
    /// value located.
    stand_in: Option<StandIn>,
}

struct StandIn {
    text: String,
    /// At least one replaced value was a `NaN`/`Infinity` literal (else all were numbers
    /// beyond f64).
    literal: bool,
}

impl StandIn {
    fn is(stand_in: Option<&StandIn>, value: &Value) -> bool {
        matches!((stand_in, value), (Some(s), Value::String(v)) if *v == s.text)
    }

    /// The refusal for a replaced value found outside `data`.
    fn error(&self) -> DecodeError {
        if self.literal {
            DecodeError::NonFiniteLiteral
        } else {
            DecodeError::NumberOutOfRange
        }
    }
}

/// JSON, object: the record as a `Value` map.
fn parse_object(text: &str, scan: &Scan) -> Result<Parsed, DecodeError> {
    let (value, stand_in) = if scan.non_finite.is_empty() {
        (serde_json::from_str(text), None)
    } else {
        let (replaced, stand_in) = replace_non_finite(text, &scan.non_finite);
        (serde_json::from_str(&replaced), Some(stand_in))
    };
    match value.map_err(|error| DecodeError::NotJson(error.to_string()))? {
        Value::Object(fields) => Ok(Parsed { fields, stand_in }),
        _ => Err(DecodeError::NotAnObject),
    }
}

/// A value JSON cannot hold, at `text[start..end]`.
struct NonFiniteToken {
    start: usize,
    end: usize,
    literal: bool,
}

struct Scan {
    max_depth: usize,
    non_finite: Vec<NonFiniteToken>,
}

/// One pass over the text outside strings: nesting depth (checked before serde_json recurses)
/// and the values JSON has no room for (`NaN`, `Infinity`, `-Infinity`, numbers beyond f64),
/// so that they can be named and located rather than called "not JSON".
fn scan_json(text: &str) -> Scan {
    let (mut depth, mut max_depth) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    let bytes = text.as_bytes();
    let mut non_finite = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            position += 1;
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'N' | b'I' | b'-' | b'0'..=b'9' => {
                let rest = &bytes[position..];
                let literal = ["NaN", "Infinity", "-Infinity"]
                    .iter()
                    .find(|word| rest.starts_with(word.as_bytes()));
                if let Some(word) = literal {
                    non_finite.push(NonFiniteToken {
                        start: position,
                        end: position + word.len(),
                        literal: true,
                    });
                    position += word.len();
                    continue;
                }
                if byte == b'-' || byte.is_ascii_digit() {
                    let length = rest
                        .iter()
                        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                        .unwrap_or(rest.len());
                    let token = &text[position..position + length];
                    // Only an exponent or hundreds of digits can reach beyond f64.
                    if (length > 300 || token.contains(['e', 'E']))
                        && token.parse::<f64>().is_ok_and(f64::is_infinite)
                    {
                        non_finite.push(NonFiniteToken {
                            start: position,
                            end: position + length,
                            literal: false,
                        });
                    }
                    position += length;
                    continue;
                }
            }
            _ => {}
        }
        position += 1;
    }
    Scan {
        max_depth,
        non_finite,
    }
}

/// The text with every non-finite value replaced by a string the text does not contain.
fn replace_non_finite(text: &str, tokens: &[NonFiniteToken]) -> (String, StandIn) {
    let mut stand_in = String::from("~non-finite~");
    while text.contains(stand_in.as_str()) {
        stand_in.push('~');
    }
    let mut replaced = String::with_capacity(text.len() + tokens.len() * (stand_in.len() + 2));
    let mut copied = 0;
    for token in tokens {
        replaced.push_str(&text[copied..token.start]);
        replaced.push('"');
        replaced.push_str(&stand_in);
        replaced.push('"');
        copied = token.end;
    }
    replaced.push_str(&text[copied..]);
    let literal = tokens.iter().any(|token| token.literal);
    (
        replaced,
        StandIn {
            text: stand_in,
            literal,
        },
    )
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
fn parse_data(value: &Value, stand_in: Option<&StandIn>) -> Result<Vec<f64>, DecodeError> {
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
            Value::Number(number) => number
                .as_f64()
                .filter(|value| value.is_finite())
                .ok_or(DecodeError::NonFinite { index }),
            Value::Array(_) | Value::Object(_) => Err(DecodeError::DataTooDeep),
            value if StandIn::is(stand_in, value) => Err(DecodeError::NonFinite { index }),
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
}

impl Anomaly {
    /// Reads an anomaly record.
    pub fn decode(bytes: &[u8]) -> Result<Anomaly, DecodeError> {
        let transaction = Transaction::decode(bytes, &DecodeLimits::default())?;
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
    use serde_json::json;

    const ORIGINAL: &str =
        r#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}"#;

    fn decode(text: &str) -> Result<Transaction, DecodeError> {
        Transaction::decode(text.as_bytes(), &DecodeLimits::default())
    }

    fn error(bytes: &[u8]) -> DecodeError {
        Transaction::decode(bytes, &DecodeLimits::default()).unwrap_err()
    }

    fn json_of(bytes: &[u8]) -> Value {
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

    /// Every variant, so that a new one cannot be added without a case below (the match is
    /// exhaustive inside the crate).
    fn reason_of_each(error: &DecodeError) -> &'static str {
        match error {
            DecodeError::Oversized { .. }
            | DecodeError::NotUtf8
            | DecodeError::NotJson(_)
            | DecodeError::TooDeep { .. }
            | DecodeError::NonFiniteLiteral
            | DecodeError::NumberOutOfRange
            | DecodeError::NotAnObject
            | DecodeError::MissingId
            | DecodeError::InvalidId
            | DecodeError::MissingData
            | DecodeError::DataNotArray
            | DecodeError::EmptyData
            | DecodeError::RaggedData
            | DecodeError::MultipleRows { .. }
            | DecodeError::DataTooDeep
            | DecodeError::NonNumeric { .. }
            | DecodeError::NonFinite { .. }
            | DecodeError::InvalidLabel
            | DecodeError::MissingField(_) => error.reason(),
        }
    }

    #[test]
    fn every_kind_of_bad_record_has_its_own_error_and_reason() {
        let deep = format!(
            "{{\"id\": 1, \"data\": {}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let cases: Vec<(&[u8], DecodeError, &str)> = vec![
            (b"\xff\xfe not text", DecodeError::NotUtf8, "not_utf8"),
            (
                deep.as_bytes(),
                DecodeError::TooDeep { limit: 32 },
                "too_deep",
            ),
            (br#"[1, 2, 3]"#, DecodeError::NotAnObject, "not_an_object"),
            (b"42", DecodeError::NotAnObject, "not_an_object"),
            (br#""text""#, DecodeError::NotAnObject, "not_an_object"),
            (
                br#"{"data": [[1, 2]]}"#,
                DecodeError::MissingId,
                "missing_id",
            ),
            (
                br#"{"id": null, "data": [[1, 2]]}"#,
                DecodeError::MissingId,
                "missing_id",
            ),
            (
                br#"{"id": 1.5, "data": [[1, 2]]}"#,
                DecodeError::InvalidId,
                "invalid_id",
            ),
            (br#"{"id": 1}"#, DecodeError::MissingData, "missing_data"),
            (
                br#"{"id": 1, "data": null}"#,
                DecodeError::MissingData,
                "missing_data",
            ),
            (
                br#"{"id": 1, "data": "1,2"}"#,
                DecodeError::DataNotArray,
                "data_not_array",
            ),
            (
                br#"{"id": 1, "data": {"x": 1}}"#,
                DecodeError::DataNotArray,
                "data_not_array",
            ),
            (
                br#"{"id": 1, "data": []}"#,
                DecodeError::EmptyData,
                "empty_data",
            ),
            (
                br#"{"id": 1, "data": [[]]}"#,
                DecodeError::EmptyData,
                "empty_data",
            ),
            (
                br#"{"id": 1, "data": [[1, 2], [3]]}"#,
                DecodeError::RaggedData,
                "ragged_data",
            ),
            (
                br#"{"id": 1, "data": [1, [2]]}"#,
                DecodeError::RaggedData,
                "ragged_data",
            ),
            (
                br#"{"id": 1, "data": [[1, 2], [3, 4]]}"#,
                DecodeError::MultipleRows { rows: 2 },
                "multiple_rows",
            ),
            (
                br#"{"id": 1, "data": [[[1, 2]]]}"#,
                DecodeError::DataTooDeep,
                "data_too_deep",
            ),
            (
                br#"{"id": 1, "data": [1, {"x": 2}]}"#,
                DecodeError::DataTooDeep,
                "data_too_deep",
            ),
            (
                br#"{"id": 1, "data": [[1, "two"]]}"#,
                DecodeError::NonNumeric { index: 1 },
                "non_numeric",
            ),
            (
                br#"{"id": 1, "data": [null, 1]}"#,
                DecodeError::NonNumeric { index: 0 },
                "non_numeric",
            ),
            (
                br#"{"id": 1, "data": [1, 2, true]}"#,
                DecodeError::NonNumeric { index: 2 },
                "non_numeric",
            ),
            (
                br#"{"id": 1, "data": [[1, NaN]]}"#,
                DecodeError::NonFinite { index: 1 },
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [Infinity, 1]}"#,
                DecodeError::NonFinite { index: 0 },
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [[1, 2, -Infinity]]}"#,
                DecodeError::NonFinite { index: 2 },
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [[2, 1e400]]}"#,
                DecodeError::NonFinite { index: 1 },
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [-1.5E+999]}"#,
                DecodeError::NonFinite { index: 0 },
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [1], "amount": NaN}"#,
                DecodeError::NonFiniteLiteral,
                "non_finite",
            ),
            (
                br#"{"id": 1, "data": [1], "amount": 1e400}"#,
                DecodeError::NumberOutOfRange,
                "number_out_of_range",
            ),
            (
                br#"{"id": 1, "data": [[1, 2]], "label": 7}"#,
                DecodeError::InvalidLabel,
                "invalid_label",
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (bytes, expected, reason) in &cases {
            let got = error(bytes);
            assert_eq!(&got, expected, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(reason_of_each(&got), *reason);
            seen.insert(got.reason());
        }
        for (bytes, reason) in [
            (&b"this is not json"[..], "not_json"),
            (b"{\"id\": 1, \"data\": [1,", "not_json"),
            (b"", "not_json"),
            (br#"{"id": 1, "data": [NaN] oops"#, "not_json"),
            (br#"{"id": 1, "data": [NaNa]}"#, "not_json"),
        ] {
            let got = error(bytes);
            assert!(matches!(got, DecodeError::NotJson(_)), "{got:?}");
            assert_eq!(got.reason(), reason);
            seen.insert(got.reason());
        }
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        let oversized = Transaction::decode(br#"{"id": 1, "data": [1]}"#, &limits).unwrap_err();
        assert_eq!(
            oversized,
            DecodeError::Oversized {
                size: 22,
                limit: 10
            }
        );
        assert_eq!(oversized.reason(), "oversized");
        seen.insert(oversized.reason());
        let missing = Anomaly::decode(ORIGINAL.as_bytes()).unwrap_err();
        assert_eq!(missing, DecodeError::MissingField("score"));
        assert_eq!(missing.reason(), "missing_field");
        seen.insert(missing.reason());
        // Eighteen distinct reasons: the two non-finite variants share theirs.
        assert_eq!(seen.len(), 18, "{seen:?}");
        for error in [
            DecodeError::NotUtf8,
            DecodeError::NonFinite { index: 3 },
            DecodeError::MultipleRows { rows: 5 },
        ] {
            assert!(!error.to_string().is_empty());
        }
        assert!(DecodeError::NonFinite { index: 3 }
            .to_string()
            .contains('3'));
    }

    #[test]
    fn only_values_outside_strings_are_non_finite() {
        let tx = decode(
            r#"{"id": "NaN[[[", "data": [1e-400, 1e300], "note": "Infinity 1e400 \" NaN", "k": 1e5}"#,
        )
        .unwrap();
        assert_eq!(tx.id, RecordId::Str("NaN[[[".into()));
        assert_eq!(tx.features, [0.0, 1e300]);
        // A string equal to the stand-in for non-finite values changes nothing.
        let tx = decode(r#"{"id": 1, "data": [[1, 2]], "x": "~non-finite~"}"#).unwrap();
        assert_eq!(tx.features, [1.0, 2.0]);
        assert_eq!(
            error(br#"{"id": 1, "data": [["~non-finite~", 2]]}"#),
            DecodeError::NonNumeric { index: 0 }
        );
        assert_eq!(
            error(br#"{"id": 1, "data": [1, NaN], "x": "~non-finite~"}"#),
            DecodeError::NonFinite { index: 1 }
        );
        // Depth is counted outside strings only.
        let brackets = format!(r#"{{"id": 1, "data": [1], "x": "{}"}}"#, "[".repeat(100));
        assert!(decode(&brackets).is_ok());
    }

    #[test]
    fn depth_and_size_limits_are_configurable() {
        let record = br#"{"id": 1, "data": [[1, 2]], "x": {"y": {"z": 1}}}"#;
        let limits = |max_bytes, max_depth| DecodeLimits {
            max_bytes,
            max_depth,
        };
        assert!(Transaction::decode(record, &limits(record.len(), 3)).is_ok());
        assert_eq!(
            Transaction::decode(record, &limits(record.len(), 2)).unwrap_err(),
            DecodeError::TooDeep { limit: 2 }
        );
        assert_eq!(
            Transaction::decode(record, &limits(record.len() - 1, 3))
                .unwrap_err()
                .reason(),
            "oversized"
        );
        assert_eq!(DecodeLimits::default().max_bytes, 1 << 20);
    }

    #[test]
    fn feature_count_rejection_has_its_reason() {
        let rejection = Rejection::FeatureCount {
            expected: 2,
            found: 3,
        };
        assert_eq!(rejection.reason(), "feature_count");
        assert_eq!(
            rejection.to_string(),
            "the record has 3 features, the model expects 2"
        );
        let decode = Rejection::from(DecodeError::MissingId);
        assert_eq!(decode.reason(), "missing_id");
        assert_eq!(decode.to_string(), DecodeError::MissingId.to_string());
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

    /// Random records from pieces, valid and not: whatever the fast reader accepts, the full
    /// reader reads the same way (so the fast path changes no verdict and no dead letter).
    #[test]
    fn the_fast_reader_agrees_with_the_full_one() {
        let pieces: [(&str, &[&str]); 7] = [
            (
                "id",
                &[
                    "4",
                    "-7",
                    r#""abc""#,
                    r#""""#,
                    "1.5",
                    "null",
                    "9223372036854775807",
                    "9223372036854775808",
                    r#""a\"b""#,
                    "true",
                    "[1]",
                ],
            ),
            (
                "data",
                &[
                    "[[1, 2]]",
                    "[1, 2.5]",
                    "[]",
                    "[[]]",
                    "[[1],[2]]",
                    "[1,[2]]",
                    r#"[[1,"x"]]"#,
                    "[[1,[2]]]",
                    "[1e308, -0.0]",
                    r#""x""#,
                    "null",
                    "[[1, null]]",
                    "[ [ 3 , 4 ] ]",
                    "[[1, 2], 3]",
                    "{}",
                ],
            ),
            (
                "label",
                &["0", "1", "1.0", "-0.0", "2", "null", "true", r#""1""#],
            ),
            (
                "current_time",
                &[
                    r#""2024-04-27T21:17:34.733387""#,
                    r#""not a time""#,
                    "null",
                    "5",
                    r#""2024-04-27T21:17:34\u002b02:00""#,
                    "{}",
                ],
            ),
            (
                "x",
                &[
                    r#"{"y": [1, {"z": null}]}"#,
                    r#""text""#,
                    "[]",
                    "[[[]]]",
                    r#"{"a": NaN}"#,
                    "1e999",
                    r#"[{"\"]": "[[["}]"#,
                ],
            ),
            ("score", &["[0.1]"]),
            ("model", &[r#""m""#]),
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut fast, mut total) = (0, 0);
        for _ in 0..5000 {
            let mut fields = Vec::new();
            for (name, values) in &pieces {
                // id and data usually present; the others now and then; sometimes twice.
                let wanted = if matches!(*name, "id" | "data") { 9 } else { 3 };
                for _ in 0..1 + usize::from(next(8) == 0) {
                    if next(10) < wanted {
                        // Half the time the first, valid, value.
                        let pick = if next(2) == 0 { 0 } else { next(values.len()) };
                        fields.push(format!("{name:?}: {}", values[pick]));
                    }
                }
            }
            for i in (1..fields.len()).rev() {
                fields.swap(i, next(i + 1));
            }
            let text = format!("{{{}}}", fields.join(", "));
            let scan = scan_json(&text);
            for max_depth in [2, 3, 4, 32] {
                // What decoding said before the fast reader: the depth, then the `Value` tree.
                let full = if scan.max_depth > max_depth {
                    Err(DecodeError::TooDeep { limit: max_depth })
                } else {
                    Transaction::decode_value(&text, &scan)
                };
                total += 1;
                let Some(read) = fast_read::read(&text, &VERDICT_FIELDS, max_depth) else {
                    let limits = DecodeLimits {
                        max_depth,
                        ..DecodeLimits::default()
                    };
                    assert_eq!(
                        Transaction::decode(text.as_bytes(), &limits),
                        full,
                        "{text}"
                    );
                    continue;
                };
                fast += 1;
                let read = Transaction::from_fast_read(&text, read);
                let full = full.unwrap_or_else(|error| panic!("{text}: fast read, full {error}"));
                assert_eq!(read, full, "{text}");
                assert_eq!(read.time_problem, full.time_problem, "{text}");
                assert_eq!(read.has_verdict_fields, full.has_verdict_fields, "{text}");
                assert!(
                    read.features
                        .iter()
                        .zip(&full.features)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{text}"
                );
                assert_eq!(read.encode(), full.encode(), "{text}");
                assert_eq!(
                    encode_anomaly(&read, &verdict()),
                    encode_anomaly(&full, &verdict()),
                    "{text}"
                );
            }
        }
        // Both paths were exercised.
        assert!(
            fast > total / 10 && fast < total * 9 / 10,
            "{fast} of {total} fast"
        );
    }

    /// The hand-written reader of the original's time shape agrees with chrono on every
    /// text it takes, and leaves the rest to it.
    #[test]
    fn quick_times_agree_with_chrono() {
        let chrono_only = |text: &str| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|naive| naive.and_utc())
        };
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut quick = 0;
        for _ in 0..20_000 {
            let mut text = format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
                1990 + next(50),
                next(14),
                next(33),
                ["T", " ", "t"][next(3) as usize],
                next(26),
                next(61),
                next(62)
            );
            let digits = next(12);
            if digits > 0 {
                text.push('.');
                text.extend((0..digits - 1).map(|_| char::from(b'0' + next(10) as u8)));
            }
            if next(10) == 0 {
                text.push_str(["Z", "+02:00", "x", "0"][next(4) as usize]);
            }
            if let Some(time) = parse_naive_time_quickly(&text) {
                quick += 1;
                assert_eq!(Some(time), chrono_only(&text), "{text}");
            }
        }
        assert!(quick > 5_000, "{quick} read quickly");
        assert_eq!(
            parse_naive_time_quickly("2024-04-27T21:17:34.733387"),
            Some(
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 4, 27, 21, 17, 34).unwrap()
                    + chrono::Duration::microseconds(733_387)
            )
        );
    }

    #[test]
    fn records_and_errors_can_cross_threads() {
        fn has_autotraits<T: Send + Sync + Unpin>() {}
        has_autotraits::<Transaction>();
        has_autotraits::<Anomaly>();
        has_autotraits::<Verdict>();
        has_autotraits::<RecordId>();
        has_autotraits::<DecodeError>();
        has_autotraits::<Rejection>();
        has_autotraits::<DecodeLimits>();
    }
}
