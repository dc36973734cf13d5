//! Every key's history for one stream of records in partition order ([`StateStore`]): the
//! per-record step of a consumer with per-key items ([`StateStore::read`]), restoring and
//! inspecting states, and forgetting keys not seen for the time to live
//! ([`StateStore::expire`]).

use std::collections::HashMap;

use schema::RecordId;

use crate::extract::{ExtractError, NamedFeatures};
use crate::reading::Reading;
use crate::state::KeyState;

/// What a consumer knows of a record besides its bytes: what per-key items may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// The record's Kafka key (`None`: it has none).
    pub key: Option<&'a [u8]>,
    /// The record's Kafka timestamp, epoch milliseconds (`None`: none).
    pub timestamp_ms: Option<i64>,
    /// The record's offset in its partition (a line number for a file).
    pub offset: i64,
}

impl RecordMeta<'_> {
    /// A record at `offset`, without a Kafka key or timestamp (a line of a file).
    pub fn at(offset: i64) -> RecordMeta<'static> {
        RecordMeta {
            key: None,
            timestamp_ms: None,
            offset,
        }
    }
}

/// A record read through a [`StateStore`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<'s> {
    /// The record's id (`None`: identify it by where it was read).
    pub id: Option<RecordId>,
    /// Its key (the key field's, else the Kafka key).
    pub key: &'s [u8],
    /// Its key's state, the record added.
    pub state: &'s KeyState,
    /// Its record time, epoch milliseconds.
    pub time_ms: i64,
    /// True when records are keyed by a field and the Kafka key is not that field's key
    /// (or is absent): the input is then not partitioned by the key, and a key's records may
    /// be read by several consumers, each with part of its history.
    pub key_differs: bool,
}

/// Every key's history, by key bytes, for the records of one partition (or of any set of
/// partitions read in order); built for one model's features, whose per-key layout it
/// keeps.
///
/// Keys whose last record is more than the time to live (record time) before the latest
/// record are forgotten by [`expire`](Self::expire); rows do not depend on when that runs, as
/// [`NamedFeatures::step`] starts such a key afresh anyway.
#[derive(Debug, Clone)]
pub struct StateStore {
    states: HashMap<Box<[u8]>, KeyState>,
    /// The layout fingerprint of the features it was built for.
    layout: u32,
    ttl_ms: Option<i64>,
    /// The latest record time applied.
    latest_ms: Option<i64>,
    reading: Reading,
}

impl StateStore {
    /// An empty store for `features`.
    pub fn new(features: &NamedFeatures) -> StateStore {
        StateStore {
            states: HashMap::new(),
            layout: features.layout().fingerprint,
            ttl_ms: features.layout().ttl_ms,
            latest_ms: None,
            reading: Reading::default(),
        }
    }

    /// True when the store's states mean the same for `features` as for the features it was
    /// built for (a new model with the same per-key items, key, time field and settings): a
    /// consumer reloading a model keeps the store, else it starts a new one.
    pub fn fits(&self, features: &NamedFeatures) -> bool {
        self.layout == features.layout().fingerprint && self.ttl_ms == features.layout().ttl_ms
    }

    /// The per-record step of a consumer: reads `bytes` ([`NamedFeatures::read_record`]),
    /// finds its key and time ([`NamedFeatures::record_key`], [`NamedFeatures::record_time`]),
    /// appends its row to `row` from its key's history and adds it to that history
    /// ([`NamedFeatures::step`]). A refused record changes nothing and appends nothing.
    pub fn read(
        &mut self,
        features: &NamedFeatures,
        bytes: &[u8],
        meta: RecordMeta<'_>,
        row: &mut Vec<f64>,
    ) -> Result<Applied<'_>, ExtractError> {
        // The reading buffer is reused across records; it holds the key field's key.
        let mut reading = std::mem::take(&mut self.reading);
        let outcome = self.read_with(features, bytes, meta, &mut reading, row);
        let found = outcome.and_then(|(time_ms, key_differs)| {
            let key = features.record_key(&reading, meta.key)?;
            let (key, state) = self
                .states
                .get_key_value(key)
                .ok_or(ExtractError::MissingKey { field: None })?;
            Ok((key, state, time_ms, key_differs))
        });
        let id = reading.take_id();
        self.reading = reading;
        let (key, state, time_ms, key_differs) = found?;
        Ok(Applied {
            id,
            key,
            state,
            time_ms,
            key_differs,
        })
    }

    /// [`read`](Self::read) into `reading`: (record time, whether the Kafka key differs).
    fn read_with(
        &mut self,
        features: &NamedFeatures,
        bytes: &[u8],
        meta: RecordMeta<'_>,
        reading: &mut Reading,
        row: &mut Vec<f64>,
    ) -> Result<(i64, bool), ExtractError> {
        features.read_record(bytes, reading)?;
        let key = features.record_key(reading, meta.key)?;
        let time_ms = features.record_time(reading, meta.timestamp_ms)?;
        let key_differs = reading.key().is_some() && meta.key != reading.key();
        self.apply(features, key, reading, time_ms, meta.offset, row);
        Ok((time_ms, key_differs))
    }

    /// Appends the row of a record already read to `row` and adds the record to its key's
    /// history ([`NamedFeatures::step`]); [`get`](Self::get) then gives the key's state.
    pub fn apply(
        &mut self,
        features: &NamedFeatures,
        key: &[u8],
        reading: &Reading,
        time_ms: i64,
        offset: i64,
        row: &mut Vec<f64>,
    ) {
        self.see(time_ms);
        match self.states.get_mut(key) {
            Some(state) => features.step(state, reading, time_ms, offset, row),
            None => {
                let mut state = KeyState::new(features);
                features.step(&mut state, reading, time_ms, offset, row);
                self.states.insert(key.into(), state);
            }
        }
    }

    fn see(&mut self, time_ms: i64) {
        self.latest_ms = Some(self.latest_ms.map_or(time_ms, |latest| latest.max(time_ms)));
    }

    /// The state of `key`, if the store has one.
    pub fn get(&self, key: &[u8]) -> Option<&KeyState> {
        self.states.get(key)
    }

    /// Puts a state under `key`; returns the one it replaces.
    pub fn insert(&mut self, key: &[u8], state: KeyState) -> Option<KeyState> {
        if let Some(time) = state.time_ms() {
            self.see(time);
        }
        self.states.insert(key.into(), state)
    }

    /// Forgets `key`; returns its state.
    pub fn remove(&mut self, key: &[u8]) -> Option<KeyState> {
        self.states.remove(key)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The latest record time applied or inserted, epoch milliseconds.
    pub fn latest_time_ms(&self) -> Option<i64> {
        self.latest_ms
    }

    /// Forgets every key whose last record is more than the time to live before the latest
    /// record time, and returns those keys, sorted. Nothing without a time to live. It visits
    /// every key: call it now and then, not per record.
    pub fn expire(&mut self) -> Vec<Box<[u8]>> {
        match self.latest_ms {
            Some(now) => self.expire_at(now),
            None => Vec::new(),
        }
    }

    /// [`expire`](Self::expire) as of record time `now_ms`.
    pub fn expire_at(&mut self, now_ms: i64) -> Vec<Box<[u8]>> {
        let ttl = self.ttl_ms;
        let mut expired: Vec<Box<[u8]>> = self
            .states
            .iter()
            .filter(|(_, state)| state.is_expired(ttl, now_ms))
            .map(|(key, _)| key.clone())
            .collect();
        expired.sort_unstable();
        for key in &expired {
            self.states.remove(key);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;
    use crate::spec::FeatureParams;
    use serde_json::{json, Value};

    /// `amount:zscore,since_last` fitted on two cards paying hourly; keyed as `params` say.
    fn features(params: FeatureParams) -> NamedFeatures {
        let training: Vec<Value> = (0..48)
            .map(|i| json!({"card": (["c-1", "c-2"][i % 2]), "amount": 10 + i % 5, "ts": 3_600_000 * i as i64}))
            .collect();
        params.check().unwrap().fit(&training).unwrap().features
    }

    fn by_field() -> NamedFeatures {
        features(
            FeatureParams::new("amount:zscore,since_last")
                .key_field(Some("card".into()))
                .time_field(Some("ts".into())),
        )
    }

    fn payment(card: &str, ts: i64) -> Vec<u8> {
        json!({"card": card, "amount": 12, "ts": ts})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_record_is_read_with_its_keys_history_and_joins_it() {
        let features = by_field();
        let mut store = StateStore::new(&features);
        let mut row = Vec::new();
        let meta = |key: Option<&'static [u8]>, offset| RecordMeta {
            key,
            timestamp_ms: None,
            offset,
        };
        let first = store
            .read(
                &features,
                &payment("c-9", 0),
                meta(Some(b"c-9"), 5),
                &mut row,
            )
            .unwrap();
        assert_eq!(
            (first.key, first.time_ms, first.key_differs),
            (&b"c-9"[..], 0, false)
        );
        assert_eq!((first.state.records(), first.state.offset()), (1, Some(5)));
        let second = store
            .read(&features, &payment("c-9", 90_000), meta(None, 6), &mut row)
            .unwrap();
        assert!(
            second.key_differs,
            "no Kafka key, while the key field has one"
        );
        assert_eq!(row[3], 90.0, "since the first, in seconds");
        let third = store
            .read(
                &features,
                &payment("c-9", 100_000),
                meta(Some(b"other"), 7),
                &mut row,
            )
            .unwrap();
        assert!(third.key_differs);
        assert_eq!(third.state.records(), 3);
        assert_eq!(store.len(), 1);
        assert_eq!(store.latest_time_ms(), Some(100_000));
    }

    #[test]
    fn a_refused_record_changes_nothing() {
        let features = by_field();
        let mut store = StateStore::new(&features);
        let mut row = Vec::new();
        store
            .read(&features, &payment("c-1", 0), RecordMeta::at(0), &mut row)
            .unwrap();
        let before = store.get(b"c-1").cloned();
        for (bytes, reason) in [
            (
                &br#"{"card": "c-1", "amount": "x", "ts": 5}"#[..],
                "not_numeric",
            ),
            (br#"{"amount": 1, "ts": 5}"#, "missing_key"),
            (br#"{"card": [1], "amount": 1, "ts": 5}"#, "invalid_key"),
            (br#"{"card": "c-1", "amount": 1}"#, "missing_time"),
            (
                br#"{"card": "c-1", "amount": 1, "ts": "soon"}"#,
                "not_a_time",
            ),
            (b"[]", "not_an_object"),
        ] {
            let error = store
                .read(&features, bytes, RecordMeta::at(1), &mut row)
                .unwrap_err();
            assert_eq!(error.reason(), reason, "{}", String::from_utf8_lossy(bytes));
        }
        assert_eq!(row.len(), 2, "nothing appended");
        assert_eq!(store.get(b"c-1").cloned(), before);
        assert_eq!(store.len(), 1);
        let error = store
            .read(
                &features,
                br#"{"amount": 1, "ts": 5}"#,
                RecordMeta::at(2),
                &mut row,
            )
            .unwrap_err();
        assert_eq!(error.to_string(), "the key field card is missing");
    }

    #[test]
    fn without_fields_the_kafka_key_and_timestamp_are_used() {
        let keyed = kafka_keyed();
        assert!(keyed.spec().needs_time());
        let mut store = StateStore::new(&keyed);
        let mut row = Vec::new();
        let bytes = br#"{"amount": 12}"#;
        let meta = RecordMeta {
            key: Some(b"card-7"),
            timestamp_ms: Some(1_000),
            offset: 0,
        };
        assert!(store.read(&keyed, bytes, meta, &mut row).is_ok());
        let applied = store
            .read(
                &keyed,
                bytes,
                RecordMeta {
                    timestamp_ms: Some(61_000),
                    offset: 1,
                    ..meta
                },
                &mut row,
            )
            .unwrap();
        assert_eq!((applied.key, applied.key_differs), (&b"card-7"[..], false));
        assert_eq!(row[3], 60.0);
        for (meta, error) in [
            (
                RecordMeta { key: None, ..meta },
                "the record has no Kafka key",
            ),
            (
                RecordMeta {
                    timestamp_ms: None,
                    ..meta
                },
                "the record has no Kafka timestamp",
            ),
        ] {
            let refused = store.read(&keyed, bytes, meta, &mut row).unwrap_err();
            assert_eq!(refused.to_string(), error);
        }
    }

    /// `amount:zscore,since_last` keyed by the Kafka key, fitted on records with keys and
    /// timestamps.
    fn kafka_keyed() -> NamedFeatures {
        let values: Vec<Value> = (0..20).map(|i| json!({"amount": 10 + i % 3})).collect();
        let keys: Vec<String> = (0..20).map(|i| format!("k{}", i % 2)).collect();
        let records = values
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (value, key))| crate::TrainingRecord {
                value,
                partition: 0,
                meta: RecordMeta {
                    key: Some(key.as_bytes()),
                    timestamp_ms: Some(i as i64 * 1_000),
                    offset: i as i64,
                },
            });
        FeatureParams::new("amount:zscore,since_last")
            .check()
            .unwrap()
            .fit_records(records)
            .unwrap()
            .features
    }

    #[test]
    fn keys_past_their_time_to_live_are_forgotten_and_reported_sorted() {
        let hourly = features(
            FeatureParams::new("amount:zscore,since_last")
                .key_field(Some("card".into()))
                .time_field(Some("ts".into()))
                .state_ttl(Some(Span::parse("3h").unwrap())),
        );
        let mut store = StateStore::new(&hourly);
        assert!(store.expire().is_empty(), "nothing read yet");
        let mut row = Vec::new();
        let payments = [
            ("c-3", 0),
            ("c-1", 1_000),
            ("c-2", 10_000_000),
            ("c-4", 2_000),
        ];
        for (offset, (card, ts)) in payments.into_iter().enumerate() {
            store
                .read(
                    &hourly,
                    &payment(card, ts),
                    RecordMeta::at(offset as i64),
                    &mut row,
                )
                .unwrap();
        }
        assert!(
            store.expire_at(10_800_000).is_empty(),
            "exactly 3 h is not past it"
        );
        assert_eq!(
            store.expire_at(10_801_500),
            [&b"c-1"[..], b"c-3"].map(Box::from),
            "sorted"
        );
        assert_eq!(store.len(), 2);
        store
            .read(
                &hourly,
                &payment("c-2", 20_000_000),
                RecordMeta::at(4),
                &mut row,
            )
            .unwrap();
        assert_eq!(
            store.expire(),
            [Box::from(&b"c-4"[..])],
            "as of the latest record"
        );
        assert_eq!(store.len(), 1);
        let forever = by_field();
        let mut keep = StateStore::new(&forever);
        keep.read(&forever, &payment("c-1", 0), RecordMeta::at(0), &mut row)
            .unwrap();
        assert_eq!(keep.expire_at(i64::MAX).len(), 1, "the default: seven days");
        let never = features(
            FeatureParams::new("amount:zscore")
                .key_field(Some("card".into()))
                .state_ttl(None),
        );
        let mut keep = StateStore::new(&never);
        keep.read(&never, &payment("c-1", 0), RecordMeta::at(0), &mut row)
            .unwrap();
        assert!(keep.expire_at(i64::MAX).is_empty());
    }

    #[test]
    fn states_are_restored_and_removed_by_key() {
        let features = by_field();
        let mut store = StateStore::new(&features);
        let mut row = Vec::new();
        let state = store
            .read(&features, &payment("c-1", 0), RecordMeta::at(0), &mut row)
            .unwrap()
            .state
            .clone();
        let mut restored = StateStore::new(&features);
        assert_eq!(restored.insert(b"c-1", state.clone()), None);
        assert_eq!(restored.latest_time_ms(), Some(0));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        store
            .read(
                &features,
                &payment("c-1", 60_000),
                RecordMeta::at(1),
                &mut a,
            )
            .unwrap();
        restored
            .read(
                &features,
                &payment("c-1", 60_000),
                RecordMeta::at(1),
                &mut b,
            )
            .unwrap();
        assert_eq!(a, b);
        assert!(restored.remove(b"c-1").is_some());
        assert!(restored.is_empty());
        assert!(store.fits(&by_field()));
        assert!(!store.fits(&kafka_keyed()));
    }
}
