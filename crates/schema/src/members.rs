//! A record's JSON object with fields added at its end, every other field passed on as
//! written ([`extend_object`]).
//!
//! Most records do not hold a field the anomaly adds: their text is copied, byte for byte,
//! and the new fields go before its closing brace. A record that may hold one (its text has
//! such a name in quotes, or a `\u` escape) is read member by member, without converting any
//! value; if it does hold one (a re-scored anomaly), it is written again without the members
//! the anomaly replaces, the others keeping their order and their text (the spacing between
//! them is not kept).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

/// `record` (a JSON object's text) with `write_fields` appended as its last members.
/// `write_fields` writes each added member with a leading comma (`,"name":value`). Top-level
/// members named in `replaced` are left out of the record (the added fields take their
/// place). A record that is not an object's text is copied up to its last `}` (not possible
/// for a record the detector read: it parsed as an object).
pub(crate) fn extend_object(
    record: &str,
    replaced: &[&str],
    extra: usize,
    write_fields: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + extra);
    if !replaced.is_empty() && may_hold(record, replaced) {
        // Only a record that does hold a replaced member is written again; any other is
        // copied, its spacing included.
        let holding = members(record).filter(|members| {
            members
                .0
                .iter()
                .any(|(key, _)| replaced.contains(&key.as_ref()))
        });
        if let Some(members) = holding {
            out.push(b'{');
            let mut first = true;
            for (key, value) in members.0 {
                if replaced.contains(&key.as_ref()) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                match key {
                    // A borrowed key had no escapes: its text is itself.
                    Cow::Borrowed(key) => {
                        out.push(b'"');
                        out.extend_from_slice(key.as_bytes());
                        out.push(b'"');
                    }
                    Cow::Owned(key) => {
                        let _ = serde_json::to_writer(&mut out, &key);
                    }
                }
                out.push(b':');
                out.extend_from_slice(value.get().as_bytes());
            }
            if first {
                // No member kept: the added fields start without a comma.
                let mut fields = Vec::with_capacity(extra);
                write_fields(&mut fields);
                out.extend_from_slice(fields.strip_prefix(b",").unwrap_or(&fields));
            } else {
                write_fields(&mut out);
            }
            out.push(b'}');
            return out;
        }
    }
    let text = record.trim_end();
    let object = text.strip_suffix('}').unwrap_or(text).trim_end();
    out.extend_from_slice(object.as_bytes());
    if object.trim_start() == "{" {
        let mut fields = Vec::with_capacity(extra);
        write_fields(&mut fields);
        out.extend_from_slice(fields.strip_prefix(b",").unwrap_or(&fields));
    } else {
        write_fields(&mut out);
    }
    out.push(b'}');
    out
}

/// Whether `record` may hold a top-level member named in `names`: it has `"name"` somewhere,
/// or a `\u` escape (which could spell one). False is certain; true is checked member by
/// member.
fn may_hold(record: &str, names: &[&str]) -> bool {
    let bytes = record.as_bytes();
    let mut at = 0;
    while let Some(found) = bytes[at..].iter().position(|&b| b == b'"' || b == b'\\') {
        let index = at + found;
        let rest = &bytes[index + 1..];
        if bytes[index] == b'\\' {
            if rest.first() == Some(&b'u') {
                return true;
            }
            // Any other escape: skip the escaped character.
            at = index + 2;
        } else {
            if names.iter().any(|name| {
                rest.len() > name.len()
                    && rest.starts_with(name.as_bytes())
                    && rest[name.len()] == b'"'
            }) {
                return true;
            }
            at = index + 1;
        }
        if at >= bytes.len() {
            break;
        }
    }
    false
}

/// The top-level members of an object's text, in order, values as written.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

fn members(text: &str) -> Option<Members<'_>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let members = deserializer.deserialize_map(MembersVisitor).ok()?;
    deserializer.end().ok()?;
    Some(members)
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value));
        }
        Ok(Members(members))
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLACED: [&str; 2] = ["score", "model"];

    fn extended(record: &str) -> String {
        let out = extend_object(record, &REPLACED, 32, |out| {
            out.extend_from_slice(br#","score":[-0.7],"model":"m""#)
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_plain_record_is_copied_and_extended() {
        assert_eq!(
            extended(r#"{"id": 1, "amount": 1e999, "n": {"x": 2}} "#),
            r#"{"id": 1, "amount": 1e999, "n": {"x": 2},"score":[-0.7],"model":"m"}"#
        );
        // A nested member of the same name is not the anomaly's, nor is a value or an
        // escaped text: the record is copied as written, spacing included.
        assert_eq!(
            extended(r#"{"id": 1, "amount": 1e999, "n": {"model": 2}}"#),
            r#"{"id": 1, "amount": 1e999, "n": {"model": 2},"score":[-0.7],"model":"m"}"#
        );
        assert_eq!(
            extended(r#"{"kind" : "score", "note": "\u00e9\n"}"#),
            r#"{"kind" : "score", "note": "\u00e9\n","score":[-0.7],"model":"m"}"#
        );
        assert_eq!(extended(" {} "), r#" {"score":[-0.7],"model":"m"}"#);
    }

    #[test]
    fn replaced_members_are_left_out_and_the_rest_kept_as_written() {
        assert_eq!(
            extended(r#"{"score": [1], "a": 1.50, "b": [1, 2], "model": "old", "c": "x"}"#),
            r#"{"a":1.50,"b":[1, 2],"c":"x","score":[-0.7],"model":"m"}"#
        );
        // A key spelled with escapes is still the field it spells.
        assert_eq!(
            extended(r#"{"sc\u006fre": 1, "\u00e9t\u00e9": 2}"#),
            r#"{"été":2,"score":[-0.7],"model":"m"}"#
        );
        assert_eq!(
            extended(r#"{"model": 1}"#),
            r#"{"score":[-0.7],"model":"m"}"#
        );
    }

    #[test]
    fn only_quoted_names_or_unicode_escapes_need_a_member_by_member_read() {
        assert!(!may_hold(r#"{"scores": 1, "x": "a model"}"#, &REPLACED));
        assert!(!may_hold(r#"{"x": "\"score"}"#, &REPLACED));
        assert!(may_hold(r#"{"x": "score"}"#, &REPLACED));
        assert!(may_hold(r#"{"x": "\u0041"}"#, &REPLACED));
        assert!(!may_hold(r#"{"x": "\\u0041"}"#, &REPLACED));
    }
}
