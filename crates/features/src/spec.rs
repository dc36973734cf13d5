//! The specification: which features a model reads, parsed from a `--features` list and
//! validated once with its settings ([`FeatureParams`] → [`FeatureSpec`], as linfa checks its
//! parameters).

use std::fmt;
use std::str::FromStr;

use crate::item::{Feature, PerKey, SpecError};
use crate::path::FieldPath;
use crate::span::Span;

/// What happens to a record that lacks a feature's field (absent or `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missing {
    /// The record is refused (to the dead-letter topic, reason `missing_feature`); in
    /// training it is left out. The default.
    #[default]
    DeadLetter,
    /// The training median stands in for a number, the most frequent training category for a
    /// category; a per-key item uses the value that stands for "no history" and leaves the
    /// key's history of that field as it was.
    Impute,
}

impl Missing {
    /// `dead-letter` or `impute`.
    pub fn name(self) -> &'static str {
        match self {
            Missing::DeadLetter => "dead-letter",
            Missing::Impute => "impute",
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Missing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "dead-letter" => Ok(Missing::DeadLetter),
            "impute" => Ok(Missing::Impute),
            _ => Err(format!("expected `dead-letter` or `impute`, not {text:?}")),
        }
    }
}

/// The field that identifies a record when nobody says otherwise.
pub const DEFAULT_ID_FIELD: &str = "id";
/// The half-life of a key's weighted mean and variance, in records, when nobody says
/// otherwise.
pub const DEFAULT_HALF_LIFE: f64 = 20.0;
/// The records a key needs before its own mean and variance replace the training ones.
pub const DEFAULT_MIN_HISTORY: u32 = 5;
/// The most record times a key keeps for its `count:WINDOW` items.
pub const DEFAULT_MAX_WINDOW_RECORDS: u32 = 1000;
/// Days of record time after which a key not seen again is forgotten.
pub const DEFAULT_STATE_TTL_DAYS: u64 = 7;

/// How per-key items keep each key's history: the key, the record time, the weighting of the
/// mean and variance, the window bound and the time to live. They matter only to a list with
/// per-key items.
#[derive(Debug, Clone, PartialEq)]
pub struct PerKeySettings {
    pub(crate) key_field: Option<FieldPath>,
    pub(crate) time_field: Option<FieldPath>,
    pub(crate) half_life: f64,
    pub(crate) min_history: u32,
    pub(crate) max_window_records: u32,
    pub(crate) state_ttl: Option<Span>,
}

// The half-life is checked finite when built, so equality is an equivalence.
impl Eq for PerKeySettings {}

impl Default for PerKeySettings {
    /// The defaults [`FeatureParams`] lists.
    fn default() -> Self {
        PerKeySettings {
            key_field: None,
            time_field: None,
            half_life: DEFAULT_HALF_LIFE,
            min_history: DEFAULT_MIN_HISTORY,
            max_window_records: DEFAULT_MAX_WINDOW_RECORDS,
            state_ttl: Some(Span::days(DEFAULT_STATE_TTL_DAYS)),
        }
    }
}

impl PerKeySettings {
    /// The field keying a record (`None`: its Kafka key).
    pub fn key_field(&self) -> Option<&FieldPath> {
        self.key_field.as_ref()
    }

    /// The field holding a record's time (`None`: its Kafka timestamp).
    pub fn time_field(&self) -> Option<&FieldPath> {
        self.time_field.as_ref()
    }

    /// The half-life of a key's weighted mean and variance, in records.
    pub fn half_life(&self) -> f64 {
        self.half_life
    }

    /// Values of a field a key needs before its own mean and variance replace the training
    /// ones in `zscore`.
    pub fn min_history(&self) -> u32 {
        self.min_history
    }

    /// The most record times a key keeps for `count:WINDOW`; a count is at most this.
    pub fn max_window_records(&self) -> u32 {
        self.max_window_records
    }

    /// How long (record time) a key's history outlives its last record; `None`: forever.
    pub fn state_ttl(&self) -> Option<Span> {
        self.state_ttl
    }
}

/// The features a model should read, unchecked: a `--features` list and the settings that go
/// with it. [`check`](Self::check) validates them into a [`FeatureSpec`].
///
/// Defaults: missing fields are dead-lettered ([`Missing::DeadLetter`]); a record is
/// identified by its `id` field where it has one; per-key items key a record by its Kafka key
/// and time it by its Kafka timestamp, with a half-life of 20 records, 5 records of history
/// before a key's own z-score, at most 1000 record times per key, and keys forgotten after 7
/// days of record time without a record.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureParams {
    list: String,
    missing: Missing,
    id_field: String,
    key_field: Option<String>,
    time_field: Option<String>,
    half_life: f64,
    min_history: u32,
    max_window_records: u32,
    state_ttl: Option<Span>,
}

impl FeatureParams {
    /// The comma-separated list, as `--features` takes it: `amount:log,/merchant/mcc:category`.
    pub fn new(list: impl Into<String>) -> Self {
        FeatureParams {
            list: list.into(),
            missing: Missing::default(),
            id_field: DEFAULT_ID_FIELD.to_string(),
            key_field: None,
            time_field: None,
            half_life: DEFAULT_HALF_LIFE,
            min_history: DEFAULT_MIN_HISTORY,
            max_window_records: DEFAULT_MAX_WINDOW_RECORDS,
            state_ttl: Some(Span::days(DEFAULT_STATE_TTL_DAYS)),
        }
    }

    /// What to do with a record that lacks a feature.
    pub fn missing(mut self, missing: Missing) -> Self {
        self.missing = missing;
        self
    }

    /// The field identifying a record (a name or a pointer); records without it are
    /// identified by where they were read.
    pub fn id_field(mut self, id_field: impl Into<String>) -> Self {
        self.id_field = id_field.into();
        self
    }

    /// The field keying a record for per-key items (a name or a pointer); `None`: the
    /// record's Kafka key.
    pub fn key_field(mut self, key_field: Option<String>) -> Self {
        self.key_field = key_field;
        self
    }

    /// The field holding a record's time for per-key items (a name or a pointer); `None`: the
    /// record's Kafka timestamp.
    pub fn time_field(mut self, time_field: Option<String>) -> Self {
        self.time_field = time_field;
        self
    }

    /// The half-life of a key's weighted mean and variance, in records (1 to 1,000,000).
    pub fn half_life(mut self, records: f64) -> Self {
        self.half_life = records;
        self
    }

    /// Values a key needs before its own mean and variance replace the training ones
    /// (2 to 1,000,000).
    pub fn min_history(mut self, records: u32) -> Self {
        self.min_history = records;
        self
    }

    /// The most record times a key keeps for `count:WINDOW` (1 to 100,000).
    pub fn max_window_records(mut self, records: u32) -> Self {
        self.max_window_records = records;
        self
    }

    /// How long (record time) a key's history outlives its last record; `None`: forever.
    pub fn state_ttl(mut self, ttl: Option<Span>) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// Validates the list and the settings.
    pub fn check(self) -> Result<FeatureSpec, SpecError> {
        if self.list.trim().is_empty() {
            return Err(SpecError::Empty);
        }
        let mut features: Vec<Feature> = Vec::new();
        for (index, item) in self.list.split(',').enumerate() {
            if item.trim().is_empty() {
                return Err(SpecError::EmptyItem {
                    position: index + 1,
                });
            }
            let feature = Feature::parse(item)?;
            if features.iter().any(|f| f == &feature) {
                return Err(SpecError::Duplicate {
                    name: feature.name().to_string(),
                });
            }
            features.push(feature);
        }
        let id_field = FieldPath::parse(self.id_field.trim()).map_err(SpecError::IdField)?;
        let mut per_key = check_per_key(
            self.key_field.as_deref(),
            self.time_field.as_deref(),
            self.half_life,
            self.min_history,
            self.max_window_records,
            self.state_ttl,
        )?;
        if !features.iter().any(|f| f.per_key().is_some()) {
            // Settings that change nothing are not kept, so that two lists without per-key
            // items are the same specification whatever settings came with them.
            per_key = PerKeySettings::default();
        }
        Ok(FeatureSpec {
            features,
            missing: self.missing,
            id_field,
            per_key,
        })
    }
}

/// Validates the per-key settings (as [`FeatureParams::check`] and a model's entry do).
pub(crate) fn check_per_key(
    key_field: Option<&str>,
    time_field: Option<&str>,
    half_life: f64,
    min_history: u32,
    max_window_records: u32,
    state_ttl: Option<Span>,
) -> Result<PerKeySettings, SpecError> {
    let key_field = key_field
        .map(|f| FieldPath::parse(f.trim()).map_err(SpecError::KeyField))
        .transpose()?;
    let time_field = time_field
        .map(|f| FieldPath::parse(f.trim()).map_err(SpecError::TimeField))
        .transpose()?;
    let setting = |setting, range, value: String| SpecError::Setting {
        setting,
        range,
        value,
    };
    if !(1.0..=1e6).contains(&half_life) {
        return Err(setting(
            "half-life",
            "a number of records from 1 to 1000000",
            half_life.to_string(),
        ));
    }
    if !(2..=1_000_000).contains(&min_history) {
        return Err(setting(
            "min-history",
            "a number of records from 2 to 1000000",
            min_history.to_string(),
        ));
    }
    if !(1..=100_000).contains(&max_window_records) {
        return Err(setting(
            "max-window-records",
            "a number of records from 1 to 100000",
            max_window_records.to_string(),
        ));
    }
    Ok(PerKeySettings {
        key_field,
        time_field,
        half_life,
        min_history,
        max_window_records,
        state_ttl,
    })
}

/// A checked feature specification: what to read from each record, what to do when a field
/// is missing, which field identifies a record, and how per-key items keep each key's
/// history. [`fit`](Self::fit) learns what the features need from training records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    pub(crate) features: Vec<Feature>,
    pub(crate) missing: Missing,
    pub(crate) id_field: FieldPath,
    pub(crate) per_key: PerKeySettings,
}

impl FeatureSpec {
    /// The items, in row order (an item may fill several columns: [`Feature::width`]).
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// The columns' names, in row order.
    pub fn names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(Feature::column_names)
            .collect()
    }

    /// Columns per row.
    pub fn len(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// Always false: a checked specification has at least one feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// What happens to a record that lacks a feature.
    pub fn missing(&self) -> Missing {
        self.missing
    }

    /// The field identifying a record.
    pub fn id_field(&self) -> &FieldPath {
        &self.id_field
    }

    /// How per-key items keep each key's history.
    pub fn per_key(&self) -> &PerKeySettings {
        &self.per_key
    }

    /// True when some item is computed from the key's history: records must then be read
    /// through a [`StateStore`](crate::StateStore), in partition order.
    pub fn is_per_key(&self) -> bool {
        self.features.iter().any(|f| f.per_key().is_some())
    }

    /// True when a row depends on the record's time: per-key items with a time to live, or
    /// `count:WINDOW` and `since_last`.
    pub fn needs_time(&self) -> bool {
        self.is_per_key()
            && (self.per_key.state_ttl.is_some()
                || self
                    .features
                    .iter()
                    .any(|f| matches!(f.per_key(), Some(PerKey::Count(_) | PerKey::SinceLast))))
    }

    /// True when some feature reads `field`, or per-key items key or time records by it (a
    /// label field must not be one).
    pub fn reads(&self, field: &FieldPath) -> bool {
        let per_key = self.is_per_key()
            && [&self.per_key.key_field, &self.per_key.time_field]
                .into_iter()
                .any(|f| f.as_ref() == Some(field));
        per_key || self.features.iter().any(|f| f.field() == Some(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::PathError;

    #[test]
    fn a_list_reads_in_order_with_its_settings() {
        let spec = FeatureParams::new("amount:log, /merchant/mcc:category,ts:hour")
            .missing(Missing::Impute)
            .id_field("/meta/id")
            .check()
            .unwrap();
        assert_eq!(
            spec.names(),
            ["amount:log", "/merchant/mcc:category", "ts:hour"]
        );
        assert_eq!(spec.len(), 3);
        assert_eq!(spec.missing(), Missing::Impute);
        assert_eq!(spec.id_field().as_str(), "/meta/id");
        assert!(spec.reads(&FieldPath::parse("/amount").unwrap()));
        assert!(!spec.reads(&FieldPath::parse("label").unwrap()));
        assert!(!spec.is_per_key() && !spec.needs_time());
        let defaults = FeatureParams::new("x").check().unwrap();
        assert_eq!(defaults.missing(), Missing::DeadLetter);
        assert_eq!(defaults.id_field().as_str(), "id");
        let per_key = defaults.per_key();
        assert_eq!(
            (
                per_key.key_field(),
                per_key.time_field(),
                per_key.half_life(),
                per_key.min_history(),
                per_key.max_window_records(),
                per_key.state_ttl()
            ),
            (None, None, 20.0, 5, 1000, Some(Span::days(7)))
        );
    }

    #[test]
    fn per_key_items_widen_the_row_and_read_their_key_and_time() {
        let spec = FeatureParams::new("amount:log:zscore,value:lag:3,count:60s,since_last")
            .key_field(Some("card".into()))
            .time_field(Some("/meta/ts".into()))
            .half_life(8.0)
            .min_history(3)
            .max_window_records(50)
            .state_ttl(None)
            .check()
            .unwrap();
        assert_eq!(spec.len(), 6);
        assert_eq!(
            spec.names(),
            [
                "amount:log:zscore",
                "value:lag:3[1]",
                "value:lag:3[2]",
                "value:lag:3[3]",
                "count:60s",
                "since_last"
            ]
        );
        assert!(spec.is_per_key() && spec.needs_time());
        assert!(spec.reads(&FieldPath::parse("card").unwrap()), "the key");
        assert!(
            spec.reads(&FieldPath::parse("/meta/ts").unwrap()),
            "the time"
        );
        let no_time = FeatureParams::new("amount:zscore")
            .state_ttl(None)
            .check()
            .unwrap();
        assert!(no_time.is_per_key() && !no_time.needs_time());
    }

    #[test]
    fn settings_without_per_key_items_are_not_kept() {
        let plain = FeatureParams::new("amount").check().unwrap();
        let with_settings = FeatureParams::new("amount")
            .key_field(Some("card".into()))
            .half_life(3.0)
            .check()
            .unwrap();
        assert_eq!(plain, with_settings);
        assert!(
            FeatureParams::new("amount").half_life(0.0).check().is_err(),
            "still checked"
        );
    }

    #[test]
    fn per_key_settings_are_checked() {
        let refused = |params: FeatureParams, setting: &str| match params.check() {
            Err(SpecError::Setting { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        };
        refused(FeatureParams::new("a").half_life(0.5), "half-life");
        refused(FeatureParams::new("a").half_life(f64::NAN), "half-life");
        refused(FeatureParams::new("a").min_history(1), "min-history");
        refused(
            FeatureParams::new("a").max_window_records(0),
            "max-window-records",
        );
        refused(
            FeatureParams::new("a").max_window_records(100_001),
            "max-window-records",
        );
        assert_eq!(
            FeatureParams::new("a")
                .key_field(Some(String::new()))
                .check(),
            Err(SpecError::KeyField(PathError::Empty))
        );
        assert_eq!(
            FeatureParams::new("a")
                .time_field(Some("/t~".into()))
                .check(),
            Err(SpecError::TimeField(PathError::BadEscape {
                text: "/t~".into()
            }))
        );
        let message = FeatureParams::new("a")
            .half_life(0.0)
            .check()
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "half-life must be a number of records from 1 to 1000000, not 0"
        );
    }

    #[test]
    fn the_list_cannot_be_empty_or_hold_empty_items() {
        assert_eq!(FeatureParams::new(" ").check(), Err(SpecError::Empty));
        assert_eq!(
            FeatureParams::new("a,,b").check(),
            Err(SpecError::EmptyItem { position: 2 })
        );
        assert_eq!(
            FeatureParams::new("a,b,").check(),
            Err(SpecError::EmptyItem { position: 3 })
        );
    }

    #[test]
    fn a_feature_cannot_be_listed_twice() {
        assert_eq!(
            FeatureParams::new("amount,/amount:number").check(),
            Err(SpecError::Duplicate {
                name: "/amount".into()
            })
        );
        assert_eq!(
            FeatureParams::new("count:60s,count:1m").check(),
            Err(SpecError::Duplicate {
                name: "count:1m".into()
            })
        );
        // The same field with two transforms is two features, and so is a field and its
        // per-key items.
        assert!(
            FeatureParams::new("amount,amount:log,amount:zscore,amount:log:zscore")
                .check()
                .is_ok()
        );
    }

    #[test]
    fn the_id_field_must_be_a_field() {
        assert_eq!(
            FeatureParams::new("a").id_field("").check(),
            Err(SpecError::IdField(PathError::Empty))
        );
    }

    #[test]
    fn missing_policies_read_and_print() {
        for policy in [Missing::DeadLetter, Missing::Impute] {
            assert_eq!(policy.to_string().parse::<Missing>(), Ok(policy));
        }
        assert!("skip"
            .parse::<Missing>()
            .unwrap_err()
            .contains("dead-letter"));
        assert_eq!(format!("{:<12}|", Missing::Impute), "impute      |");
    }
}
