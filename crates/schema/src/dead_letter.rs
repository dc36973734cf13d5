//! Dead letters: a refused record with its reason, where it came from and its original bytes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, Rejection};

/// A record the detector could not use. On the wire the original bytes travel as
/// `original_base64` (always) and `original_text` (when they are UTF-8), so nothing is lost and
/// people can read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
pub struct DeadLetter {
    /// Machine-readable reason (`not_json`, `feature_count`, …).
    pub reason: String,
    /// The reason for people.
    pub detail: String,
    /// Topic the record came from.
    pub source_topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text (lossy), if it had one.
    pub key: Option<String>,
    /// The original bytes.
    pub original: Vec<u8>,
    /// The original bytes as text, when they are UTF-8.
    pub original_text: Option<String>,
    /// When it was refused (RFC 3339, UTC).
    pub detected_at: String,
}

/// A dead letter's JSON.
#[derive(Serialize, Deserialize)]
struct Wire {
    reason: String,
    detail: String,
    source_topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    original_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original_text: Option<String>,
    detected_at: String,
}

impl From<DeadLetter> for Wire {
    fn from(letter: DeadLetter) -> Self {
        Wire {
            reason: letter.reason,
            detail: letter.detail,
            source_topic: letter.source_topic,
            partition: letter.partition,
            offset: letter.offset,
            key: letter.key,
            original_base64: BASE64.encode(&letter.original),
            original_text: letter.original_text,
            detected_at: letter.detected_at,
        }
    }
}

impl TryFrom<Wire> for DeadLetter {
    type Error = base64::DecodeError;

    fn try_from(wire: Wire) -> Result<Self, Self::Error> {
        Ok(DeadLetter {
            original: BASE64.decode(&wire.original_base64)?,
            reason: wire.reason,
            detail: wire.detail,
            source_topic: wire.source_topic,
            partition: wire.partition,
            offset: wire.offset,
            key: wire.key,
            original_text: wire.original_text,
            detected_at: wire.detected_at,
        })
    }
}

impl DeadLetter {
    /// A dead letter for `original`, read from `source_topic` at `partition`/`offset`.
    pub fn new(
        rejection: &Rejection,
        source_topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        original: &[u8],
    ) -> Self {
        Self {
            reason: rejection.reason().to_string(),
            detail: rejection.to_string(),
            source_topic: source_topic.to_string(),
            partition,
            offset,
            key: key.map(|key| String::from_utf8_lossy(key).into_owned()),
            original: original.to_vec(),
            original_text: std::str::from_utf8(original).ok().map(str::to_string),
            detected_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }

    /// The original bytes (a copy of [`original`](Self::original); kept for callers written
    /// before the field existed).
    pub fn original(&self) -> Option<Vec<u8>> {
        Some(self.original.clone())
    }

    /// The dead letter's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a dead letter (a missing field or bad base64 is [`DecodeError::NotJson`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|error| DecodeError::NotJson(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_dead_letter_keeps_the_original_bytes_and_the_reason() {
        let original = b"\xff not utf8";
        let rejection = Rejection::Decode(DecodeError::NotUtf8);
        let letter = DeadLetter::new(&rejection, "transactions", 2, 41, Some(b"k"), original);
        let read = DeadLetter::decode(&letter.encode()).unwrap();
        assert_eq!(read, letter);
        assert_eq!(read.reason, "not_utf8");
        assert_eq!(read.detail, "the record is not UTF-8 text");
        assert_eq!(read.original, original);
        assert_eq!(read.original().unwrap(), original);
        assert_eq!(read.original_text, None);
        assert_eq!(read.source_topic, "transactions");
        assert_eq!(
            (read.partition, read.offset, read.key.as_deref()),
            (2, 41, Some("k"))
        );
        assert!(chrono::DateTime::parse_from_rfc3339(&read.detected_at).is_ok());
    }

    #[test]
    fn on_the_wire_the_bytes_are_base64_and_text_when_they_can_be() {
        let rejection = Rejection::FeatureCount {
            expected: 2,
            found: 3,
        };
        let original = br#"{"id": 4, "data": [[1, 2, 3]]}"#;
        let letter = DeadLetter::new(&rejection, "t", 0, 7, None, original);
        let value: Value = serde_json::from_slice(&letter.encode()).unwrap();
        assert_eq!(value["reason"], "feature_count");
        assert_eq!(
            value["detail"],
            "the record has 3 features, the model expects 2"
        );
        assert_eq!(value["original_base64"], BASE64.encode(original));
        assert_eq!(
            value["original_text"],
            std::str::from_utf8(original).unwrap()
        );
        assert_eq!(value["key"], Value::Null);
        assert!(value.get("original").is_none(), "{value}");

        let binary = DeadLetter::new(&rejection, "t", 0, 7, None, b"\x00\xff");
        let value: Value = serde_json::from_slice(&binary.encode()).unwrap();
        assert_eq!(value["original_base64"], "AP8=");
        assert!(value.get("original_text").is_none(), "{value}");
    }

    #[test]
    fn a_broken_dead_letter_is_refused() {
        let letter = DeadLetter::new(&DecodeError::MissingId.into(), "t", 0, 1, None, b"{}");
        let mut value: Value = serde_json::from_slice(&letter.encode()).unwrap();
        value["original_base64"] = "not base64!".into();
        let bad_base64 = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            DeadLetter::decode(&bad_base64).unwrap_err().reason(),
            "not_json"
        );
        assert!(DeadLetter::decode(br#"{"reason": "x"}"#).is_err());
        assert!(DeadLetter::decode(b"\xff").is_err());
    }
}
