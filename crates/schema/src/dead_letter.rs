//! Dead letters: a refused record with its reason, where it came from and its original bytes.

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{DecodeError, Rejection};

/// A record the detector could not use. The original bytes travel in base64 (always) and as
/// text (when they are UTF-8), so nothing is lost and people can read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The original bytes, base64.
    pub original_base64: String,
    /// The original bytes as text, when they are UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_text: Option<String>,
    /// When it was refused (RFC 3339, UTC).
    pub detected_at: String,
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
            original_base64: base64::engine::general_purpose::STANDARD.encode(original),
            original_text: std::str::from_utf8(original).ok().map(str::to_string),
            detected_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }

    /// The original bytes.
    pub fn original(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.original_base64)
            .ok()
    }

    /// The dead letter's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a dead letter.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|error| DecodeError::NotJson(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_the_original_bytes_and_the_reason() {
        let original = b"\xff not utf8";
        let rejection = Rejection::Decode(DecodeError::NotUtf8);
        let letter = DeadLetter::new(&rejection, "transactions", 2, 41, Some(b"k"), original);
        let read = DeadLetter::decode(&letter.encode()).unwrap();
        assert_eq!(read, letter);
        assert_eq!(read.reason, "not_utf8");
        assert_eq!(read.original().unwrap(), original);
        assert_eq!(read.original_text, None);
        assert_eq!(
            (read.partition, read.offset, read.key.as_deref()),
            (2, 41, Some("k"))
        );
        let text = DeadLetter::new(&rejection, "t", 0, 0, None, b"{}");
        assert_eq!(text.original_text.as_deref(), Some("{}"));
    }
}
