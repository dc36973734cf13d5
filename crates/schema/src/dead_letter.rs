//! Dead letters: a refused record with its reason, where it came from and its original bytes
//! (or, for a record too large to travel whole, the first of them with the whole record's size
//! and SHA-256).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, KEY_PREFIX_BYTES};
use crate::error::{DecodeError, Rejection};

/// The most of the original a reduced dead letter carries.
pub const ORIGINAL_PREFIX_BYTES: usize = 64 << 10;
/// The most of a reason's detail a reduced dead letter carries.
const DETAIL_BYTES: usize = 1024;

/// A record the detector could not use. On the wire the original bytes travel as
/// `original_base64` (always) and `original_text` (when they are UTF-8), so nothing is lost and
/// people can read it.
///
/// A dead letter too large for its topic is reduced ([`DeadLetter::reduced_to_fit`]): it then
/// carries only the first bytes of the original (at most [`ORIGINAL_PREFIX_BYTES`]), and on the
/// wire `"truncated": true`, `original_bytes` and `original_sha256` (the whole original's size
/// and SHA-256), and, when the key was longer than [`KEY_PREFIX_BYTES`], its first bytes with
/// `key_bytes` and `key_sha256`. The whole record is still at `partition`/`offset` of
/// `source_topic`.
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
    /// Its key, as text (lossy), if it had one (its first bytes, when `truncated` says so).
    pub key: Option<String>,
    /// The original bytes (the first of them, when `truncated` is set).
    pub original: Vec<u8>,
    /// The original bytes as text, when they are UTF-8.
    pub original_text: Option<String>,
    /// When it was refused (RFC 3339, UTC).
    pub detected_at: String,
    /// Set when the dead letter was reduced to fit: what was cut.
    pub truncated: Option<Truncation>,
}

/// What a reduced dead letter cut, as digests of the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The whole original's size and SHA-256.
    pub original: Digest,
    /// The whole key's, when the key was cut too.
    pub key: Option<Digest>,
}

/// The record a dead letter is about.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value (empty for a tombstone).
    pub value: &'a [u8],
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_sha256: Option<String>,
}

impl From<DeadLetter> for Wire {
    fn from(letter: DeadLetter) -> Self {
        let (original, key) = match letter.truncated {
            Some(Truncation { original, key }) => (Some(original), key),
            None => (None, None),
        };
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
            truncated: original.is_some(),
            original_bytes: original.as_ref().map(|digest| digest.bytes),
            original_sha256: original.map(|digest| digest.sha256),
            key_bytes: key.as_ref().map(|digest| digest.bytes),
            key_sha256: key.map(|digest| digest.sha256),
        }
    }
}

/// Why a dead letter's JSON is not one.
#[derive(Debug, thiserror::Error)]
enum WireError {
    #[error("original_base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a truncated dead letter needs original_bytes and original_sha256")]
    Truncation,
}

impl TryFrom<Wire> for DeadLetter {
    type Error = WireError;

    fn try_from(wire: Wire) -> Result<Self, Self::Error> {
        let digest = |bytes: Option<u64>, sha256: Option<String>| match (bytes, sha256) {
            (Some(bytes), Some(sha256)) => Some(Digest { bytes, sha256 }),
            _ => None,
        };
        let truncated = if wire.truncated {
            Some(Truncation {
                original: digest(wire.original_bytes, wire.original_sha256)
                    .ok_or(WireError::Truncation)?,
                key: digest(wire.key_bytes, wire.key_sha256),
            })
        } else {
            None
        };
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
            truncated,
        })
    }
}

/// The longest start of `bytes` of at most `limit` bytes that does not end inside a UTF-8
/// character (so a text's prefix is text).
fn prefix(bytes: &[u8], limit: usize) -> &[u8] {
    let cut = &bytes[..limit.min(bytes.len())];
    match std::str::from_utf8(cut) {
        // Only an incomplete last character is cut off; other invalid bytes stay (the
        // original was not text).
        Err(error) if error.error_len().is_none() => &cut[..error.valid_up_to()],
        _ => cut,
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
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
        let source = SourceRecord {
            topic: source_topic,
            partition,
            offset,
            key,
            value: original,
        };
        DeadLetter::refused(rejection.reason(), &rejection.to_string(), &source)
    }

    /// A dead letter for `source`, refused for `reason` (the machine-readable code) with
    /// `detail` (for people): for refusals that are not a [`Rejection`], such as a feature a
    /// model names that a record does not hold (`missing_feature`).
    pub fn refused(reason: &str, detail: &str, source: &SourceRecord<'_>) -> Self {
        Self {
            reason: reason.to_string(),
            detail: detail.to_string(),
            source_topic: source.topic.to_string(),
            partition: source.partition,
            offset: source.offset,
            key: source
                .key
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            original: source.value.to_vec(),
            original_text: std::str::from_utf8(source.value).ok().map(str::to_string),
            detected_at: now(),
            truncated: None,
        }
    }

    /// A reduced dead letter about `source` carrying the first `keep` bytes of its value (cut
    /// back to a character boundary), `digest` being the whole value's.
    fn reduced(
        reason: &str,
        detail: &str,
        source: &SourceRecord<'_>,
        keep: usize,
        digest: &Digest,
    ) -> Self {
        let kept = prefix(source.value, keep);
        let detail = String::from_utf8_lossy(prefix(detail.as_bytes(), DETAIL_BYTES));
        let (key, key_digest) = match source.key {
            Some(key) if key.len() > KEY_PREFIX_BYTES => (
                Some(String::from_utf8_lossy(prefix(key, KEY_PREFIX_BYTES)).into_owned()),
                Some(Digest::of(key)),
            ),
            Some(key) => (Some(String::from_utf8_lossy(key).into_owned()), None),
            None => (None, None),
        };
        Self {
            reason: reason.to_string(),
            detail: detail.into_owned(),
            source_topic: source.topic.to_string(),
            partition: source.partition,
            offset: source.offset,
            key,
            original: kept.to_vec(),
            original_text: std::str::from_utf8(kept).ok().map(str::to_string),
            detected_at: now(),
            truncated: Some(Truncation {
                original: digest.clone(),
                key: key_digest,
            }),
        }
    }

    /// The reduced dead letter about `source` whose JSON has at most `max_bytes`: as much of
    /// the value as fits, at most [`ORIGINAL_PREFIX_BYTES`], with the whole value's size and
    /// SHA-256 (and the key cut to [`KEY_PREFIX_BYTES`] when longer). `reason` and `detail`
    /// say why (the detail cut to 1 KiB). None when not even the letter without any of the
    /// value fits.
    pub fn reduced_to_fit(
        reason: &str,
        detail: &str,
        source: &SourceRecord<'_>,
        max_bytes: usize,
    ) -> Option<(DeadLetter, Vec<u8>)> {
        let digest = Digest::of(source.value);
        let mut keep = ORIGINAL_PREFIX_BYTES.min(source.value.len());
        loop {
            let letter = DeadLetter::reduced(reason, detail, source, keep, &digest);
            let encoded = letter.encode();
            if encoded.len() <= max_bytes {
                return Some((letter, encoded));
            }
            if keep == 0 {
                return None;
            }
            // Each byte kept costs at least 4/3 bytes of base64: cut at least the excess's
            // worth, and always something.
            let excess = encoded.len() - max_bytes;
            keep = keep.saturating_sub((excess * 3).div_ceil(4).max(1));
        }
    }

    /// The smallest dead letter about `source`: the reason, where the record is, its key (cut
    /// to [`KEY_PREFIX_BYTES`]) and its value's size and SHA-256, none of the value itself.
    pub fn minimal(reason: &str, detail: &str, source: &SourceRecord<'_>) -> DeadLetter {
        DeadLetter::reduced(reason, detail, source, 0, &Digest::of(source.value))
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

    fn source<'a>(key: Option<&'a [u8]>, value: &'a [u8]) -> SourceRecord<'a> {
        SourceRecord {
            topic: "transactions",
            partition: 1,
            offset: 77,
            key,
            value,
        }
    }

    #[test]
    fn a_reduced_dead_letter_fits_and_names_the_whole_original() {
        let value = "é".repeat(1 << 20).into_bytes(); // 2 MiB of two-byte characters
        let key = vec![b'k'; 100 << 10];
        let source = source(Some(&key), &value);
        for max in [1_000_000, 200_000, 10_000, 2_000] {
            let (letter, encoded) =
                DeadLetter::reduced_to_fit("oversized", "too big", &source, max).unwrap();
            assert!(encoded.len() <= max, "{} > {max}", encoded.len());
            assert!(letter.original.len() <= ORIGINAL_PREFIX_BYTES);
            assert!(value.starts_with(&letter.original));
            let text = letter
                .original_text
                .as_deref()
                .expect("a text's prefix is text");
            assert_eq!(text.as_bytes(), &letter.original[..]);
            let read = DeadLetter::decode(&encoded).unwrap();
            assert_eq!(read, letter);
            let truncation = read.truncated.unwrap();
            assert_eq!(truncation.original, Digest::of(&value));
            assert_eq!(truncation.key, Some(Digest::of(&key)));
            assert_eq!(read.key.unwrap().len(), KEY_PREFIX_BYTES);
            assert_eq!((read.partition, read.offset), (1, 77));
            assert_eq!(read.reason, "oversized");
        }
        // As much as fits: the 1,000,000-byte letter carries the whole 64 KiB prefix.
        let (roomy, _) =
            DeadLetter::reduced_to_fit("oversized", "too big", &source, 1_000_000).unwrap();
        assert_eq!(roomy.original.len(), ORIGINAL_PREFIX_BYTES);
        assert!(DeadLetter::reduced_to_fit("oversized", "too big", &source, 100).is_none());
    }

    #[test]
    fn on_the_wire_a_reduced_dead_letter_says_truncated() {
        let value = b"\x00\xff binary";
        let (_, encoded) =
            DeadLetter::reduced_to_fit("oversized", "d", &source(Some(b"k"), value), 10_000)
                .unwrap();
        let wire: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(wire["truncated"], true);
        assert_eq!(wire["original_bytes"], value.len());
        assert_eq!(wire["original_sha256"], Digest::of(value).sha256);
        assert_eq!(wire["key"], "k");
        assert!(wire.get("key_sha256").is_none(), "{wire}");
        // A whole dead letter has none of these fields, and one claiming truncation without
        // the digest is refused.
        let whole = DeadLetter::new(&DecodeError::MissingId.into(), "t", 0, 1, None, b"{}");
        let wire: Value = serde_json::from_slice(&whole.encode()).unwrap();
        assert!(wire.get("truncated").is_none(), "{wire}");
        let mut broken = wire;
        broken["truncated"] = true.into();
        assert!(DeadLetter::decode(&serde_json::to_vec(&broken).unwrap()).is_err());
    }

    #[test]
    fn a_minimal_dead_letter_carries_no_value_and_a_cut_detail() {
        let value = vec![b'v'; 5000];
        let detail = "d".repeat(5000);
        let letter = DeadLetter::minimal("output_refused", &detail, &source(None, &value));
        assert!(letter.original.is_empty());
        assert_eq!(letter.detail.len(), 1024);
        assert_eq!(letter.truncated.unwrap().original, Digest::of(&value));
        assert!(letter.key.is_none());
    }
}
