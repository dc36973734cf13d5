//! The full reader, through a `Value` tree: every record the fast reader passes over, and the
//! exact reason for each it refuses (values JSON cannot hold, such as `NaN`, are located and
//! named rather than called "not JSON").

use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::fields::VERDICT_FIELDS;
use crate::id::RecordId;
use crate::time::parse_time;

/// A transaction's fields, as the full reader found them.
pub(crate) struct FullRead {
    pub(crate) id: RecordId,
    pub(crate) features: Vec<f64>,
    pub(crate) label: Option<u8>,
    pub(crate) current_time: Option<String>,
    /// Why `current_time` is not a time, when it is not.
    pub(crate) time_problem: Option<String>,
    /// The record already carries fields an anomaly adds.
    pub(crate) has_verdict_fields: bool,
}

/// Reads `text` (already scanned) as a transaction, or says exactly why it is not one.
pub(crate) fn read(text: &str, scan: &Scan) -> Result<FullRead, DecodeError> {
    {
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
        Ok(FullRead {
            id,
            features,
            label,
            current_time,
            time_problem,
            has_verdict_fields,
        })
    }
}

/// A record's top-level object, and the stand-in for the values JSON cannot hold.
struct Parsed {
    fields: Map<String, Value>,
    /// Set when the text held `NaN`, `Infinity` or out-of-range numbers: each was replaced by
    /// this string (one the text does not contain) so the rest could be read and the bad
    /// value located.
    stand_in: Option<StandIn>,
}

pub(crate) struct StandIn {
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

pub(crate) struct Scan {
    pub(crate) max_depth: usize,
    non_finite: Vec<NonFiniteToken>,
}

/// One pass over the text outside strings: nesting depth (checked before serde_json recurses)
/// and the values JSON has no room for (`NaN`, `Infinity`, `-Infinity`, numbers beyond f64),
/// so that they can be named and located rather than called "not JSON".
pub(crate) fn scan_json(text: &str) -> Scan {
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

pub(crate) fn parse_id(value: &Value) -> Result<RecordId, DecodeError> {
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
pub(crate) fn parse_data(
    value: &Value,
    stand_in: Option<&StandIn>,
) -> Result<Vec<f64>, DecodeError> {
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

pub(crate) fn parse_label(value: &Value) -> Result<u8, DecodeError> {
    match value.as_f64() {
        Some(0.0) => Ok(0),
        Some(1.0) => Ok(1),
        _ => Err(DecodeError::InvalidLabel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::tests::verdict;
    use crate::transaction::tests::{decode, error, ORIGINAL};
    use crate::{encode_anomaly, fast_read, Anomaly, DecodeLimits, Rejection, Transaction};

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
                    read(&text, &scan).map(|read| Transaction::from_full_read(&text, read))
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
}
