//! One item of a feature list: a field and its transform (`amount:log`), or a per-key item
//! computed from the key's history (`amount:log:zscore`, `value:lag:4`, `count:60s`,
//! `since_last`), parsed from its text and named so that the name reads back as the item.

use std::fmt;

use crate::path::{FieldPath, PathError};
use crate::span::{Span, SpanError};

/// What is computed from a field's value in one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transform {
    /// The number as it is (`amount`, or explicitly `amount:number`).
    Number,
    /// `ln(1 + x)` of a number `x ≥ 0` (`amount:log`): heavy-tailed amounts.
    Log,
    /// A string or integer category, encoded as its relative frequency in the training data;
    /// a value never seen in training is 0 (`mcc:category`).
    Category,
    /// A string or integer category, encoded as its surprisal in bits, −log2 of its relative
    /// frequency in the training data; a value never seen in training counts as half an
    /// occurrence, −log2(0.5 / N) for N training values (`mcc:rarity`). Rare values lie far
    /// from common ones, and unseen values beyond every training value.
    Rarity,
    /// The hour of day in UTC, 0 ≤ h < 24 and fractional, of an RFC 3339 time, a naive time
    /// (taken as UTC) or epoch milliseconds (`ts:hour`).
    Hour,
    /// The day of week in UTC, 0 = Monday … 6 = Sunday, of the same kinds of time
    /// (`ts:weekday`).
    Weekday,
}

impl Transform {
    /// Every transform, in the order the documentation lists them.
    pub const ALL: [Transform; 6] = [
        Transform::Number,
        Transform::Log,
        Transform::Category,
        Transform::Rarity,
        Transform::Hour,
        Transform::Weekday,
    ];

    /// The name written after the colon.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Number => "number",
            Transform::Log => "log",
            Transform::Category => "category",
            Transform::Rarity => "rarity",
            Transform::Hour => "hour",
            Transform::Weekday => "weekday",
        }
    }

    /// True: a transform reads one record. What depends on a key's history is a
    /// [`PerKey`] item, computed after the transform.
    pub fn is_stateless(self) -> bool {
        true
    }

    /// True when the transform reads a category and learns category counts (`category`,
    /// `rarity`); else it reads a number or a time and learns a median.
    pub fn is_category(self) -> bool {
        matches!(self, Transform::Category | Transform::Rarity)
    }

    /// True when a per-key item may follow it: the transforms that give a number from a
    /// number (`number`, `log`).
    pub fn is_numeric(self) -> bool {
        matches!(self, Transform::Number | Transform::Log)
    }

    pub(crate) fn parse(name: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Most previous values a `lag:K` item keeps.
pub const MAX_LAG: u16 = 64;

/// What a per-key item computes from the key's previous records (in partition order, before
/// the current record is added). `x` is the field's value after its transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PerKey {
    /// `FIELD:zscore`: (x − mean) / std of the key's exponentially weighted mean and variance
    /// of x; the training mean and std stand in until the key has enough history.
    ZScore,
    /// `FIELD:delta`: x minus the key's previous x.
    Delta,
    /// `FIELD:lag:K`: the key's previous K values of x, most recent first (K columns).
    Lag(u16),
    /// `count:WINDOW`: the key's records within the window before this one, by record time.
    Count(Span),
    /// `since_last`: seconds since the key's previous record, by record time.
    SinceLast,
}

impl PerKey {
    /// The name of its kind: `zscore`, `delta`, `lag`, `count`, `since_last`.
    pub fn kind(self) -> &'static str {
        match self {
            PerKey::ZScore => "zscore",
            PerKey::Delta => "delta",
            PerKey::Lag(_) => "lag",
            PerKey::Count(_) => "count",
            PerKey::SinceLast => "since_last",
        }
    }

    /// True for the items that read a field (`zscore`, `delta`, `lag:K`); `count:WINDOW` and
    /// `since_last` read only the key and the record time.
    pub fn reads_field(self) -> bool {
        matches!(self, PerKey::ZScore | PerKey::Delta | PerKey::Lag(_))
    }

    /// The text after a field: `zscore`, `delta`, `lag:K` (`None` for anything else).
    fn parse_after_field(text: &str) -> Option<PerKey> {
        match text {
            "zscore" => Some(PerKey::ZScore),
            "delta" => Some(PerKey::Delta),
            _ => text
                .strip_prefix("lag:")
                .and_then(parse_lag)
                .map(PerKey::Lag),
        }
    }

    /// The text of the item after its field (or the whole item without one).
    fn suffix(self) -> String {
        match self {
            PerKey::Lag(k) => format!("lag:{k}"),
            PerKey::Count(window) => format!("count:{window}"),
            other => other.kind().to_string(),
        }
    }
}

/// `K` of `lag:K`: 1 to [`MAX_LAG`], digits only.
fn parse_lag(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|k| (1..=MAX_LAG).contains(k))
}

/// One item of a feature list: a field and what is computed from it, possibly over the key's
/// history, or a per-key item without a field. Two items are equal when they compute the same
/// thing (`amount` and `/amount:number` are one; `count:60s` and `count:1m` are one).
#[derive(Debug, Clone)]
pub struct Feature {
    field: Option<FieldPath>,
    transform: Transform,
    per_key: Option<PerKey>,
    name: String,
}

impl Feature {
    /// A feature of `field` with `transform` (one record's value).
    pub fn new(field: FieldPath, transform: Transform) -> Self {
        Feature::build(Some(field), transform, None)
    }

    /// An item from its parts, as read back from a model; `None` when they do not fit
    /// together (a per-key item on a transform other than `number` or `log`, a field on
    /// `count` or `since_last`, a missing field elsewhere).
    pub fn from_parts(
        field: Option<FieldPath>,
        transform: Transform,
        per_key: Option<PerKey>,
    ) -> Option<Feature> {
        let fits = match (&field, per_key) {
            (Some(_), None) => true,
            (Some(_), Some(per_key)) => per_key.reads_field() && transform.is_numeric(),
            (None, Some(per_key)) => !per_key.reads_field() && transform == Transform::Number,
            (None, None) => false,
        };
        fits.then(|| Feature::build(field, transform, per_key))
    }

    fn build(field: Option<FieldPath>, transform: Transform, per_key: Option<PerKey>) -> Self {
        let name = match (&field, per_key) {
            (None, Some(per_key)) => per_key.suffix(),
            (None, None) => String::new(),
            (Some(field), per_key) => {
                // A field whose name has a colon keeps an explicit `:number`, so that the
                // name reads back as the same item.
                let mut name = match transform {
                    Transform::Number if !field.as_str().contains(':') => {
                        field.as_str().to_string()
                    }
                    _ => format!("{}:{}", field.as_str(), transform.name()),
                };
                if let Some(per_key) = per_key {
                    name.push(':');
                    name.push_str(&per_key.suffix());
                }
                name
            }
        };
        Feature {
            field,
            transform,
            per_key,
            name,
        }
    }

    /// Reads one item of a `--features` list: `FIELD`, `FIELD:TRANSFORM`, a per-key item on
    /// a field (`FIELD[:TRANSFORM]:zscore`, `…:delta`, `…:lag:K`), `count:WINDOW` or
    /// `since_last`.
    ///
    /// The field ends at the first colon followed by what may follow a field (a transform, a
    /// per-key item, or both), so a pointer may hold colons (`/a:b/c`); a top-level field
    /// whose own name ends in `:something` takes an explicit transform (`ns:x:number`). A
    /// field named `since_last`, or `count` with a window-like transform, is written as a
    /// pointer (`/since_last`).
    pub fn parse(item: &str) -> Result<Feature, SpecError> {
        let item = item.trim();
        let problem = |kind| SpecError::Item {
            item: item.to_string(),
            kind,
        };
        if item == "since_last" {
            return Ok(Feature::build(
                None,
                Transform::Number,
                Some(PerKey::SinceLast),
            ));
        }
        if let Some(window) = item.strip_prefix("count:") {
            if window.starts_with(|c: char| c.is_ascii_digit()) {
                let window = Span::parse(window).map_err(|e| problem(ItemError::Window(e)))?;
                return Ok(Feature::build(
                    None,
                    Transform::Number,
                    Some(PerKey::Count(window)),
                ));
            }
        }
        if item.ends_with(':') {
            return Err(problem(ItemError::NoTransform));
        }
        let split = item
            .match_indices(':')
            .find_map(|(at, _)| after_field(&item[at + 1..]).map(|parts| (&item[..at], parts)));
        let (field, transform, per_key) = match split {
            Some((field, (transform, per_key))) => (field, transform, per_key),
            None => match unreadable_suffix(item) {
                Some(kind) => return Err(problem(kind)),
                None => (item, Transform::Number, None),
            },
        };
        let field = FieldPath::parse(field).map_err(|e| problem(ItemError::Field(e)))?;
        if per_key.is_some() && !transform.is_numeric() {
            return Err(problem(ItemError::PerKeyTransform(transform)));
        }
        Ok(Feature::build(Some(field), transform, per_key))
    }

    /// The name shown to people: `amount`, `/merchant/mcc:category`, `amount:log:zscore`,
    /// `count:60s`. It reads back ([`Feature::parse`]) as the same item. An item of several
    /// columns (`lag:K`) names its columns with [`column_names`](Self::column_names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field read; `None` for `count:WINDOW` and `since_last`.
    pub fn field(&self) -> Option<&FieldPath> {
        self.field.as_ref()
    }

    /// What is computed from the field's value in one record (`number` for items without a
    /// field).
    pub fn transform(&self) -> Transform {
        self.transform
    }

    /// What is computed over the key's history, for a per-key item.
    pub fn per_key(&self) -> Option<PerKey> {
        self.per_key
    }

    /// Columns of the row it fills: K for `lag:K`, else 1.
    pub fn width(&self) -> usize {
        match self.per_key {
            Some(PerKey::Lag(k)) => usize::from(k),
            _ => 1,
        }
    }

    /// The names of its columns: its name, or for `value:lag:3` `value:lag:3[1]` (the
    /// previous value) to `value:lag:3[3]`.
    pub fn column_names(&self) -> Vec<String> {
        match self.per_key {
            Some(PerKey::Lag(k)) => (1..=k).map(|i| format!("{}[{i}]", self.name)).collect(),
            _ => vec![self.name.clone()],
        }
    }
}

/// What may follow a field after a colon: a transform, a per-key item, or a transform and a
/// per-key item.
fn after_field(text: &str) -> Option<(Transform, Option<PerKey>)> {
    if let Some(transform) = Transform::parse(text) {
        return Some((transform, None));
    }
    if let Some(per_key) = PerKey::parse_after_field(text) {
        return Some((Transform::Number, Some(per_key)));
    }
    let (transform, per_key) = text.split_once(':')?;
    Some((
        Transform::parse(transform)?,
        Some(PerKey::parse_after_field(per_key)?),
    ))
}

/// Why nothing after any colon of `item` reads; `None` when the whole item is a field (no
/// colon, or only colons a field name may hold).
fn unreadable_suffix(item: &str) -> Option<ItemError> {
    let word = |text: &str| text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match item.rsplit_once(":lag:") {
        Some((_, k)) if word(k) => return Some(ItemError::Lag(k.to_string())),
        _ if item.ends_with(":lag") => return Some(ItemError::Lag(String::new())),
        _ => {}
    }
    let (_, suffix) = item.rsplit_once(':')?;
    word(suffix).then(|| ItemError::UnknownTransform(suffix.to_string()))
}

impl PartialEq for Feature {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field
            && self.transform == other.transform
            && self.per_key == other.per_key
    }
}

impl Eq for Feature {}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name)
    }
}

/// Why a feature list or setting is refused. Each names the item or setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No feature at all.
    #[error("the feature list is empty")]
    Empty,
    /// An empty item (`a,,b`, or a trailing comma).
    #[error("feature {position} of the list is empty")]
    EmptyItem {
        /// 1-based position in the list.
        position: usize,
    },
    /// An item that cannot be read.
    #[error("feature {item:?}: {kind}")]
    Item {
        /// The item as written.
        item: String,
        /// What is wrong with it.
        kind: ItemError,
    },
    /// Two items name the same feature.
    #[error("feature {name:?} is listed twice")]
    Duplicate {
        /// The feature's name.
        name: String,
    },
    /// The id field cannot be read.
    #[error("id field: {0}")]
    IdField(PathError),
    /// The key field cannot be read.
    #[error("key field: {0}")]
    KeyField(PathError),
    /// The time field cannot be read.
    #[error("time field: {0}")]
    TimeField(PathError),
    /// A per-key setting out of its range.
    #[error("{setting} must be {range}, not {value}")]
    Setting {
        /// The setting (`half-life`, `min-history`, `max-window-records`).
        setting: &'static str,
        /// What it may be.
        range: &'static str,
        /// What it was.
        value: String,
    },
}

/// What is wrong with one item of a feature list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The field cannot be read.
    #[error("{0}")]
    Field(PathError),
    /// `FIELD:` with nothing after the colon.
    #[error(
        "nothing after the colon (transforms: number, log, category, rarity, hour, weekday; \
         per key: zscore, delta, lag:K)"
    )]
    NoTransform,
    /// A transform nobody knows.
    #[error(
        "unknown transform {0:?} (transforms: number, log, category, rarity, hour, weekday; \
         per key: zscore, delta, lag:K, and the items count:WINDOW and since_last; a field \
         whose name holds a colon takes a transform explicitly, as in `ns:x:number`)"
    )]
    UnknownTransform(String),
    /// `lag:K` without a K from 1 to [`MAX_LAG`].
    #[error("lag takes the number of previous values, 1 to 64, as in `value:lag:4`, not {0:?}")]
    Lag(String),
    /// `count:WINDOW` with a window that is not a span.
    #[error("count takes a window: {0}")]
    Window(SpanError),
    /// A per-key item on a transform that does not give a number.
    #[error(
        "per-key items follow a number or its log (`amount:zscore`, `amount:log:zscore`), \
         not {0}"
    )]
    PerKeyTransform(Transform),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(item: &str) -> Result<Feature, SpecError> {
        Feature::parse(item)
    }

    fn kind(item: &str) -> ItemError {
        match parse(item) {
            Err(SpecError::Item { kind, .. }) => kind,
            other => panic!("{item}: {other:?}"),
        }
    }

    #[test]
    fn every_item_form_reads() {
        for (item, field, transform, name) in [
            ("amount", "amount", Transform::Number, "amount"),
            ("amount:number", "amount", Transform::Number, "amount"),
            ("amount:log", "amount", Transform::Log, "amount:log"),
            (
                " /merchant/mcc:category ",
                "/merchant/mcc",
                Transform::Category,
                "/merchant/mcc:category",
            ),
            ("mcc:rarity", "mcc", Transform::Rarity, "mcc:rarity"),
            ("ts:hour", "ts", Transform::Hour, "ts:hour"),
            ("ts:weekday", "ts", Transform::Weekday, "ts:weekday"),
            (
                "/merchant/geo/lat",
                "/merchant/geo/lat",
                Transform::Number,
                "/merchant/geo/lat",
            ),
            ("/a:b/c", "/a:b/c", Transform::Number, "/a:b/c:number"),
            ("/a:b/c:log", "/a:b/c", Transform::Log, "/a:b/c:log"),
            ("ns:x:number", "ns:x", Transform::Number, "ns:x:number"),
            ("/t~1z:hour", "/t~1z", Transform::Hour, "/t~1z:hour"),
            ("count", "count", Transform::Number, "count"),
            ("count:log", "count", Transform::Log, "count:log"),
            (
                "/since_last",
                "/since_last",
                Transform::Number,
                "/since_last",
            ),
        ] {
            let feature = parse(item).unwrap();
            assert_eq!(
                (
                    feature.field().map(FieldPath::as_str),
                    feature.transform(),
                    feature.per_key(),
                    feature.name()
                ),
                (Some(field), transform, None, name),
                "{item}"
            );
            assert_eq!(parse(feature.name()).unwrap(), feature, "{name} reads back");
        }
    }

    #[test]
    fn every_per_key_form_reads() {
        let cases = [
            (
                "amount:zscore",
                Some("amount"),
                Transform::Number,
                PerKey::ZScore,
                "amount:zscore",
            ),
            (
                "amount:log:zscore",
                Some("amount"),
                Transform::Log,
                PerKey::ZScore,
                "amount:log:zscore",
            ),
            (
                "amount:number:delta",
                Some("amount"),
                Transform::Number,
                PerKey::Delta,
                "amount:delta",
            ),
            (
                "/s/v:lag:4",
                Some("/s/v"),
                Transform::Number,
                PerKey::Lag(4),
                "/s/v:lag:4",
            ),
            (
                "/a:b/c:lag:2",
                Some("/a:b/c"),
                Transform::Number,
                PerKey::Lag(2),
                "/a:b/c:number:lag:2",
            ),
            (
                "ns:x:zscore",
                Some("ns:x"),
                Transform::Number,
                PerKey::ZScore,
                "ns:x:number:zscore",
            ),
            (
                "count:60s",
                None,
                Transform::Number,
                PerKey::Count(Span::parse("60s").unwrap()),
                "count:60s",
            ),
            (
                "since_last",
                None,
                Transform::Number,
                PerKey::SinceLast,
                "since_last",
            ),
        ];
        for (item, field, transform, per_key, name) in cases {
            let feature = parse(item).unwrap();
            assert_eq!(
                (
                    feature.field().map(FieldPath::as_str),
                    feature.transform(),
                    feature.per_key(),
                    feature.name()
                ),
                (field, transform, Some(per_key), name),
                "{item}"
            );
            assert_eq!(parse(feature.name()).unwrap(), feature, "{name} reads back");
        }
        let lag = parse("value:lag:3").unwrap();
        assert_eq!(lag.width(), 3);
        assert_eq!(
            lag.column_names(),
            ["value:lag:3[1]", "value:lag:3[2]", "value:lag:3[3]"]
        );
        assert_eq!(parse("count:1m").unwrap(), parse("count:60s").unwrap());
        assert_eq!(parse("count:1m").unwrap().name(), "count:1m", "as written");
    }

    #[test]
    fn a_bad_item_is_refused_with_the_item_named() {
        let unknown = parse("amount:lg").unwrap_err();
        assert_eq!(
            unknown,
            SpecError::Item {
                item: "amount:lg".into(),
                kind: ItemError::UnknownTransform("lg".into())
            }
        );
        assert!(unknown.to_string().contains("\"amount:lg\""), "{unknown}");
        assert!(unknown.to_string().contains("ns:x:number"), "{unknown}");
        assert_eq!(kind("amount:"), ItemError::NoTransform);
        assert_eq!(kind(":log"), ItemError::Field(PathError::Empty));
        assert!(matches!(
            kind("/a~2:log"),
            ItemError::Field(PathError::BadEscape { .. })
        ));
        assert_eq!(kind("value:lag:0"), ItemError::Lag("0".into()));
        assert_eq!(kind("value:lag:65"), ItemError::Lag("65".into()));
        assert_eq!(kind("value:log:lag:x"), ItemError::Lag("x".into()));
        assert_eq!(kind("value:lag"), ItemError::Lag(String::new()));
        assert_eq!(
            kind("amount:log:zcore"),
            ItemError::UnknownTransform("zcore".into())
        );
        assert!(matches!(kind("count:60"), ItemError::Window(_)));
        assert!(matches!(kind("count:0s"), ItemError::Window(_)));
        assert_eq!(
            kind("mcc:category:zscore"),
            ItemError::PerKeyTransform(Transform::Category)
        );
        assert_eq!(
            kind("ts:hour:delta"),
            ItemError::PerKeyTransform(Transform::Hour)
        );
        let message = parse("ts:hour:lag:2").unwrap_err().to_string();
        assert!(message.contains("amount:log:zscore"), "{message}");
    }

    #[test]
    fn parts_fit_together_or_are_refused() {
        let field = || Some(FieldPath::parse("x").unwrap());
        assert!(Feature::from_parts(field(), Transform::Hour, None).is_some());
        assert!(Feature::from_parts(field(), Transform::Log, Some(PerKey::Lag(2))).is_some());
        assert!(Feature::from_parts(field(), Transform::Rarity, Some(PerKey::ZScore)).is_none());
        assert!(Feature::from_parts(field(), Transform::Number, Some(PerKey::SinceLast)).is_none());
        assert!(Feature::from_parts(None, Transform::Number, Some(PerKey::SinceLast)).is_some());
        assert!(Feature::from_parts(None, Transform::Log, Some(PerKey::SinceLast)).is_none());
        assert!(Feature::from_parts(None, Transform::Number, Some(PerKey::Delta)).is_none());
        assert!(Feature::from_parts(None, Transform::Number, None).is_none());
    }

    #[test]
    fn names_pad_as_strings_do() {
        assert_eq!(format!("{:<6}|", Transform::Log), "log   |");
        let feature = parse("ts:hour").unwrap();
        assert_eq!(
            format!("{feature:>9}|{:<5}|", feature.field().unwrap()),
            "  ts:hour|ts   |"
        );
    }
}
