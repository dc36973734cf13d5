//! Named features: which fields of a JSON record a model reads, what it learned about them in
//! training, and the extraction of one row of numbers per record. The trainer (offline) and
//! the detector (online) both use this crate, so a record gives the same row in both.
//!
//! A record such as
//! `{"card": "c-81", "amount": 912.40, "merchant": {"mcc": "5411", "country": "FR"},
//! "ts": "2026-12-01T03:12:09Z"}` is read through a list like
//! `amount:log,/merchant/mcc:category,ts:hour`: each item is a field (a top-level name, or an
//! RFC 6901 JSON Pointer for nested fields) and a transform (`number` when none is written,
//! `log`, `category`, `rarity`, `hour`, `weekday`).
//!
//! ```
//! use features::{FeatureParams, Features, Missing};
//! use serde_json::json;
//!
//! // The specification, checked once.
//! let spec = FeatureParams::new("amount:log,/merchant/mcc:category,ts:hour")
//!     .missing(Missing::DeadLetter)
//!     .check()?;
//!
//! // Learn from training records: category frequencies, medians.
//! let training: Vec<_> = (0..10)
//!     .map(|i| json!({
//!         "card": format!("c-{i}"),
//!         "amount": 10.0 * i as f64,
//!         "merchant": {"mcc": if i < 8 { "5411" } else { "5812" }, "country": "FR"},
//!         "ts": format!("2026-12-01T{:02}:30:00Z", 8 + i),
//!     }))
//!     .collect();
//! let fitted = spec.fit(&training)?;
//! assert_eq!(fitted.kept.len(), 10);
//! assert_eq!(fitted.rows.len(), 10 * 3); // row-major, ready for the forest
//!
//! // What a model file keeps, and reads back.
//! let text = fitted.features.to_metadata();
//! let features = Features::from_metadata_entry(Some(&text))?;
//! let named = features.named().expect("named features");
//!
//! // One row per record, exactly as in training.
//! let record = br#"{"amount": 912.40, "merchant": {"mcc": 5411}, "ts": "2026-12-01T04:12:09+01:00"}"#;
//! let mut row = Vec::new();
//! let id = named.read(record, &mut row)?;
//! assert_eq!(id, None); // no `id`: identified by where it was read
//! assert_eq!(row[1], 0.8); // 5411 was 8 of the 10 training records
//! assert!((row[2] - 3.2025).abs() < 1e-12); // 03:12:09 UTC
//!
//! // A record that cannot give a row says why, naming the feature.
//! let error = named.read(br#"{"amount": "912.40", "merchant": {"mcc": 1}, "ts": 0}"#, &mut row)
//!     .unwrap_err();
//! assert_eq!(error.reason(), "not_numeric");
//! assert_eq!(error.to_string(), "amount is a string (feature amount:log)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Per-key items
//!
//! Items computed from a key's previous records, in partition order, before the record
//! itself is added: `FIELD:zscore` (against the key's exponentially weighted mean and
//! variance, the training mean and standard deviation standing in until the key has a few
//! values), `FIELD:delta`, `FIELD:lag:K` (the key's previous K values), `count:WINDOW` (its
//! records within a window of record time) and `since_last` (seconds since its previous
//! record); `amount:log:zscore` applies the log first. A record's key is its Kafka key or a
//! key field; its time its Kafka timestamp or a time field. The whole specification (the
//! half-life, the windows, the key and time fields, the time to live) is kept in the model.
//!
//! Such features read records through a [`StateStore`], one per partition: a record's row
//! depends on the record and on its key's [`KeyState`], which the record then joins. The
//! trainer runs its records through the same step, so a record gives the same row offline
//! and online. A store's states travel to and from a changelog as bytes
//! ([`StateStore::take_changes`], [`StateStore::restore`]); each carries the offset of its
//! key's last record, so a record replayed after a restart is recognised and skipped
//! ([`Applied::replayed`]). [`StateStore`] documents the whole protocol.
//!
//! ```
//! use features::{FeatureParams, RecordMeta, StateStore};
//! use serde_json::json;
//!
//! let spec = FeatureParams::new("amount:log,amount:log:zscore,count:10m,since_last")
//!     .key_field(Some("card".into()))
//!     .time_field(Some("ts".into()))
//!     .check()?;
//! // Two cards, one paying about 10, one about 1000, a payment every hour.
//! let training: Vec<_> = (0..200)
//!     .map(|i| json!({
//!         "card": if i % 2 == 0 { "small" } else { "large" },
//!         "amount": if i % 2 == 0 { 10.0 + (i % 7) as f64 } else { 1000.0 + (i % 5) as f64 * 50.0 },
//!         "ts": 1_796_094_900_000i64 + i as i64 * 1_800_000,
//!     }))
//!     .collect();
//! let features = spec.fit(&training)?.features;
//!
//! // Online: one store per partition; each record's row from its key's history.
//! let mut store = StateStore::new(&features);
//! let mut row = Vec::new();
//! for (offset, record) in training.iter().enumerate() {
//!     row.clear();
//!     let meta = RecordMeta::at(offset as i64); // and the Kafka key and timestamp, if any
//!     store.read(&features, record.to_string().as_bytes(), meta, &mut row)?;
//! }
//! // 1000 is ordinary for the population, not for the small card.
//! row.clear();
//! let fraud = br#"{"card": "small", "amount": 1000.0, "ts": 1796455000000}"#;
//! let applied = store.read(&features, fraud, RecordMeta::at(200), &mut row)?;
//! assert!(row[1] > 10.0, "z-score {}", row[1]);
//! assert_eq!((applied.key, applied.replayed), (&b"small"[..], false));
//!
//! // Once the outputs are acknowledged: the changed states, for a changelog.
//! let changes = store.take_changes();
//! assert_eq!(changes.len(), 2);
//!
//! // After a restart: the changelog restores the states, and a replayed record is skipped.
//! let mut restored = StateStore::new(&features);
//! for change in &changes {
//!     restored.restore(&features, &change.key, change.value.as_deref())?;
//! }
//! row.clear();
//! let replay = restored.read(&features, fraud, RecordMeta::at(200), &mut row)?;
//! assert!(replay.replayed && row.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - `path`: [`FieldPath`], a top-level name or a JSON Pointer, parsed once into tokens.
//! - `span`: [`Span`], a span of record time (`60s`, `7d`).
//! - `item`: one item of a list ([`Feature`], [`Transform`], [`PerKey`]), parsed and named;
//!   [`SpecError`] and [`ItemError`] name the item at fault.
//! - `spec`: [`FeatureParams`] (the list as typed, by-value setters) → `check()` →
//!   [`FeatureSpec`] (validated), [`Missing`], [`PerKeySettings`].
//! - `value`: the transforms' arithmetic on one JSON value (numbers, `ln(1 + x)`, times,
//!   category keys), whatever parsed the record.
//! - `reader`: the per-record reader behind [`NamedFeatures::read`]: one parser pass that keeps
//!   only the values on the features' paths, no `Value` tree.
//! - `categories`: [`CategoryCounts`], a category's training frequency and rarity.
//! - `extract`: [`NamedFeatures`] (specification + [`Learned`] state) gives one row per record
//!   or an [`ExtractError`] whose [`reason`](ExtractError::reason) a dead letter carries.
//! - `reading`: a record read for per-key items ([`Reading`]): id, key, time, values.
//! - `state`: a key's history ([`KeyState`]) and its shape for a specification.
//! - `history`: the pure per-key step ([`NamedFeatures::step`]).
//! - `codec`: a key's state as bytes ([`KeyState::encode`], [`KeyState::decode`],
//!   [`StateError`]).
//! - `store`: every key's state for a partition ([`StateStore`], [`RecordMeta`], [`Applied`],
//!   [`StateChange`]): the per-record step, replays, changes for a changelog, restoring,
//!   expiry after the time to live.
//! - `learn`: [`FeatureSpec::fit`] learns counts, medians and moments ([`Fitted`],
//!   [`LearnError`], [`TrainingRecord`]).
//! - `metadata`: the JSON kept in the model file under [`METADATA_KEY`], with a version, read
//!   back with checks ([`MetadataError`]).
//! - here: [`Features`], the one type for both a model's kinds of input.
#![deny(missing_docs)]

mod categories;
mod codec;
mod extract;
mod history;
mod item;
mod learn;
mod metadata;
mod path;
mod reader;
mod reading;
mod span;
mod spec;
mod state;
mod store;
mod value;

use std::collections::BTreeMap;

pub use categories::CategoryCounts;
pub use codec::{StateError, STATE_FORMAT};
pub use extract::{ExtractError, Learned, NamedFeatures};
pub use item::{Feature, ItemError, PerKey, SpecError, Transform, MAX_LAG};
pub use learn::{Fitted, LearnError, TrainingRecord};
pub use metadata::{MetadataError, METADATA_KEY, METADATA_VERSION};
pub use path::{FieldPath, PathError};
pub use reading::{key_text, Reading};
pub use span::{Span, SpanError};
pub use spec::{
    FeatureParams, FeatureSpec, Missing, PerKeySettings, DEFAULT_HALF_LIFE, DEFAULT_ID_FIELD,
    DEFAULT_MAX_WINDOW_RECORDS, DEFAULT_MIN_HISTORY, DEFAULT_STATE_TTL_DAYS,
};
pub use state::KeyState;
pub use store::{Applied, RecordMeta, StateChange, StateStore};

/// What a model reads from a record: the `data` array of the original pipeline, or named
/// features.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Features {
    /// The record's `data` array (`{"id": 4, "data": [[x, y]]}`), read by the `schema` crate:
    /// every model without a features entry.
    Data,
    /// Named features.
    Named(NamedFeatures),
}

impl Features {
    /// The features `model` reads: [`from_metadata`](Self::from_metadata) of its metadata,
    /// checked against its width. What a consumer calls once per model (at start and at each
    /// reload).
    pub fn from_model(model: &iforest::IsolationForest) -> Result<Features, MetadataError> {
        let features = Features::from_metadata(model.metadata())?;
        features.check_width(model.n_features())?;
        Ok(features)
    }

    /// The features a model's metadata names: [`Features::Data`] without a
    /// [`METADATA_KEY`] entry, else the entry read and checked.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<Features, MetadataError> {
        Features::from_metadata_entry(metadata.get(METADATA_KEY).map(String::as_str))
    }

    /// [`from_metadata`](Self::from_metadata) given the entry itself (`None`: no entry).
    pub fn from_metadata_entry(entry: Option<&str>) -> Result<Features, MetadataError> {
        match entry {
            None => Ok(Features::Data),
            Some(text) => NamedFeatures::from_metadata(text).map(Features::Named),
        }
    }

    /// The named features, unless the model reads `data`.
    pub fn named(&self) -> Option<&NamedFeatures> {
        match self {
            Features::Data => None,
            Features::Named(named) => Some(named),
        }
    }

    /// Checks the features against a model's width (`n_features`).
    pub fn check_width(&self, model_features: usize) -> Result<(), MetadataError> {
        match self {
            Features::Named(named) if named.len() != model_features => Err(MetadataError::Width {
                features: named.len(),
                model: model_features,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consumers share one model's features between tasks and swap them on reload.
    #[test]
    fn autotraits() {
        fn has_autotraits<T: Send + Sync + Sized + Unpin>() {}
        has_autotraits::<Features>();
        has_autotraits::<NamedFeatures>();
        has_autotraits::<FeatureSpec>();
        has_autotraits::<FeatureParams>();
        has_autotraits::<ExtractError>();
        has_autotraits::<MetadataError>();
        has_autotraits::<SpecError>();
        has_autotraits::<LearnError>();
        has_autotraits::<StateStore>();
        has_autotraits::<KeyState>();
        has_autotraits::<StateChange>();
        has_autotraits::<StateError>();
    }
}
