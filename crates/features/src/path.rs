//! Where a feature's value is in a record: a top-level field name or an RFC 6901 JSON
//! Pointer, parsed once into tokens so that each record is only walked, never re-parsed.

use std::fmt;

use serde_json::Value;

/// A field of a JSON record: `amount` (a top-level field) or `/merchant/geo/lat` (a JSON
/// Pointer, RFC 6901, where `~1` stands for `/` and `~0` for `~` inside a name). A pointer
/// token steps into an object by name, or into an array by a decimal index (`/items/0`).
///
/// Two paths are equal when they lead to the same place: `amount` and `/amount` are one field.
#[derive(Debug, Clone)]
pub struct FieldPath {
    text: String,
    tokens: Vec<Token>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The name, unescaped.
    pub(crate) key: Box<str>,
    /// The array index the name spells, if it spells one (digits, no leading zero).
    pub(crate) index: Option<usize>,
}

impl Token {
    fn new(key: String) -> Self {
        let index = (!key.is_empty()
            && key.bytes().all(|b| b.is_ascii_digit())
            && (key == "0" || !key.starts_with('0')))
        .then(|| key.parse().ok())
        .flatten();
        Token {
            key: key.into_boxed_str(),
            index,
        }
    }
}

/// Why a field path cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("a field name cannot be empty")]
    Empty,
    /// A `~` in a pointer not followed by `0` or `1`.
    #[error("{text:?}: `~` must be followed by 0 (for `~`) or 1 (for `/`) in a JSON Pointer")]
    BadEscape {
        /// The path as written.
        text: String,
    },
}

impl FieldPath {
    /// Reads a top-level field name (`amount`) or a JSON Pointer (`/merchant/mcc`).
    pub fn parse(text: &str) -> Result<FieldPath, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let tokens = match text.strip_prefix('/') {
            None => vec![Token::new(text.to_string())],
            Some(pointer) => pointer
                .split('/')
                .map(|token| unescape(token).map(Token::new))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| PathError::BadEscape {
                    text: text.to_string(),
                })?,
        };
        Ok(FieldPath {
            text: text.to_string(),
            tokens,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path as a JSON Pointer, however it was written: `amount` → `/amount`, `a/b` →
    /// `/a~1b`. Two equal paths have the same pointer.
    pub fn pointer(&self) -> String {
        let mut pointer = String::new();
        for token in &self.tokens {
            pointer.push('/');
            pointer.push_str(&token.key.replace('~', "~0").replace('/', "~1"));
        }
        pointer
    }

    /// True for a field directly in the record (`amount`, `/amount`).
    pub fn is_top_level(&self) -> bool {
        self.tokens.len() == 1
    }

    /// The unescaped names along the path.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|token| &*token.key)
    }

    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The value at this path in `record`, if there is one.
    pub fn lookup<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(record, |value, token| match value {
                Value::Object(fields) => fields.get(&*token.key),
                Value::Array(items) => token.index.and_then(|index| items.get(index)),
                _ => None,
            })
    }
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens
    }
}

impl Eq for FieldPath {}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

/// `~1` → `/`, `~0` → `~`; `None` for any other `~`.
fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_string());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bare_name_is_one_top_level_field_even_with_slashes_inside() {
        let path = FieldPath::parse("amount").unwrap();
        assert!(path.is_top_level());
        assert_eq!(path.lookup(&json!({"amount": 3})), Some(&json!(3)));
        let odd = FieldPath::parse("a/b").unwrap();
        assert_eq!(odd.names().collect::<Vec<_>>(), ["a/b"]);
        assert_eq!(
            odd.lookup(&json!({"a/b": 1, "a": {"b": 2}})),
            Some(&json!(1))
        );
    }

    #[test]
    fn a_pointer_walks_objects_and_arrays() {
        let record = json!({"merchant": {"geo": {"lat": 48.8}}, "items": [10, 20, 30]});
        let lat = FieldPath::parse("/merchant/geo/lat").unwrap();
        assert!(!lat.is_top_level());
        assert_eq!(lat.lookup(&record), Some(&json!(48.8)));
        assert_eq!(
            FieldPath::parse("/items/2").unwrap().lookup(&record),
            Some(&json!(30))
        );
        for absent in [
            "/items/3",
            "/items/01",
            "/items/-",
            "/merchant/geo/lon",
            "/merchant/geo/lat/x",
        ] {
            assert_eq!(
                FieldPath::parse(absent).unwrap().lookup(&record),
                None,
                "{absent}"
            );
        }
    }

    #[test]
    fn pointer_escapes_are_rfc_6901s() {
        let record = json!({"a/b": {"m~n": 1}, "~1": 2, "": {"": 3}});
        let path = FieldPath::parse("/a~1b/m~0n").unwrap();
        assert_eq!(path.names().collect::<Vec<_>>(), ["a/b", "m~n"]);
        assert_eq!(path.lookup(&record), Some(&json!(1)));
        // `~01` is `~` then `1`, not `/`: the escapes are undone left to right once.
        assert_eq!(
            FieldPath::parse("/~01").unwrap().lookup(&record),
            Some(&json!(2))
        );
        assert_eq!(
            FieldPath::parse("//").unwrap().lookup(&record),
            Some(&json!(3))
        );
        for bad in ["/a~", "/a~2", "/~x/b"] {
            assert_eq!(
                FieldPath::parse(bad),
                Err(PathError::BadEscape { text: bad.into() }),
                "{bad}"
            );
        }
        assert_eq!(FieldPath::parse(""), Err(PathError::Empty));
    }

    #[test]
    fn a_name_and_its_pointer_are_the_same_field() {
        assert_eq!(
            FieldPath::parse("amount").unwrap(),
            FieldPath::parse("/amount").unwrap()
        );
        assert_ne!(
            FieldPath::parse("a").unwrap(),
            FieldPath::parse("/a/b").unwrap()
        );
        assert_eq!(FieldPath::parse("/amount").unwrap().to_string(), "/amount");
        for (text, pointer) in [
            ("amount", "/amount"),
            ("a/b", "/a~1b"),
            ("/m~0n/~1", "/m~0n/~1"),
        ] {
            let path = FieldPath::parse(text).unwrap();
            assert_eq!(path.pointer(), pointer);
            assert_eq!(FieldPath::parse(&path.pointer()).unwrap(), path);
        }
    }
}
