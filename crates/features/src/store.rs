//! Every key's history for one partition ([`StateStore`]): the per-record step of a consumer
//! with per-key items ([`StateStore::read`]), and what keeping the states in a changelog
//! needs: restoring them ([`StateStore::restore`]), taking the states changed since the last
//! flush ([`StateStore::take_changes`]), forgetting keys not seen for the time to live
//! ([`StateStore::expire`], tombstones), and skipping records replayed after a restart.

use std::collections::HashMap;
use std::mem::size_of;

use schema::RecordId;

use crate::codec::StateError;
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
    /// The record's offset in its partition (a line number for a file): offsets increase
    /// along a partition, and a record at or below its key's last offset is a replay.
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
    /// Its key's state, the record added (unchanged for a replay).
    pub state: &'s KeyState,
    /// Its record time, epoch milliseconds.
    pub time_ms: i64,
    /// True when records are keyed by a field and the Kafka key is not that field's key
    /// (or is absent): the input is then not partitioned by the key, and a key's records may
    /// be read by several consumers, each with part of its history.
    pub key_differs: bool,
    /// True when the record's offset is at or below its key's last applied offset: it was
    /// applied before its key's state was saved, so it was scored and its outputs
    /// acknowledged. No row was appended and the state is unchanged; a consumer sends
    /// nothing for it.
    pub replayed: bool,
}

/// One change for a changelog, under its key: a state's bytes ([`KeyState::encode`]) or a
/// tombstone (`None`) for a key forgotten after its time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The key (the changelog record's key).
    pub key: Box<[u8]>,
    /// The state's bytes; `None`: a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A key's state and whether it changed since the last [`StateStore::take_changes`].
#[derive(Debug, Clone)]
struct Entry {
    state: KeyState,
    changed: bool,
}

/// Every key's history, by key bytes, for the records of one partition, read in offset
/// order; built for one model's features, whose per-key layout it keeps.
///
/// A consumer keeps one store per assigned partition; the changelog's partition p holds the
/// states of input partition p's keys. The protocol that makes every record meet exactly the
/// state an uninterrupted run would give it:
///
/// 1. On assignment of partition p: a new store, then every record of changelog partition p
///    through [`restore`](StateStore::restore), before any input record of p is read.
/// 2. Each record through [`read`](StateStore::read). A record whose offset is at or below its
///    key's last applied offset ([`Applied::replayed`]) was scored, and its outputs
///    acknowledged, before its key's state was saved: it gives no row and nothing is sent
///    for it; any later record meets exactly the state that followed it.
/// 3. Once every output of the records read so far is acknowledged:
///    [`take_changes`](StateStore::take_changes), written to changelog partition p; once
///    those are acknowledged, the input offsets are stored.
/// 4. Between batches, after the offsets are stored, now and then:
///    [`expire`](StateStore::expire), whose tombstones leave with the next changes.
/// 5. On revocation: step 3, then the store is dropped.
///
/// Keys whose last record is more than the time to live (record time) before the latest
/// record are forgotten by [`expire`](Self::expire); rows do not depend on when that runs, as
/// [`NamedFeatures::step`] starts such a key afresh anyway.
#[derive(Debug, Clone)]
pub struct StateStore {
    states: HashMap<Box<[u8]>, Entry>,
    /// Keys changed since the last take, in the order they first changed (a key may be
    /// listed twice if it expired and came back; its entry's flag counts once).
    changed: Vec<Box<[u8]>>,
    /// Keys forgotten since the last take: tombstones to write.
    expired: Vec<Box<[u8]>>,
    /// The layout fingerprint of the features it was built for.
    layout: u32,
    ttl_ms: Option<i64>,
    /// The latest record time applied or restored.
    latest_ms: Option<i64>,
    reading: Reading,
}

impl StateStore {
    /// An empty store for `features`.
    pub fn new(features: &NamedFeatures) -> StateStore {
        StateStore {
            states: HashMap::new(),
            changed: Vec::new(),
            expired: Vec::new(),
            layout: features.layout().fingerprint,
            ttl_ms: features.layout().ttl_ms,
            latest_ms: None,
            reading: Reading::default(),
        }
    }

    /// True when the store's states mean the same for `features` as for the features it was
    /// built for (a new model with the same per-key items, key, time field and settings): a
    /// consumer reloading a model keeps the store, else it starts a new one. Every call
    /// taking features expects features that fit.
    pub fn fits(&self, features: &NamedFeatures) -> bool {
        self.layout == features.layout().fingerprint && self.ttl_ms == features.layout().ttl_ms
    }

    /// The per-record step of a consumer: reads `bytes` ([`NamedFeatures::read_record`]),
    /// finds its key and time ([`NamedFeatures::record_key`], [`NamedFeatures::record_time`]),
    /// appends its row to `row` from its key's history and adds it to that history
    /// ([`NamedFeatures::step`]), unless it is a replay ([`Applied::replayed`]). A refused
    /// record changes nothing and appends nothing.
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
        let found = outcome.and_then(|(time_ms, key_differs, applied)| {
            let key = features.record_key(&reading, meta.key)?;
            let (key, entry) = self
                .states
                .get_key_value(key)
                .ok_or(ExtractError::MissingKey { field: None })?;
            Ok((key, &entry.state, time_ms, key_differs, !applied))
        });
        let id = reading.take_id();
        self.reading = reading;
        let (key, state, time_ms, key_differs, replayed) = found?;
        Ok(Applied {
            id,
            key,
            state,
            time_ms,
            key_differs,
            replayed,
        })
    }

    /// [`read`](Self::read) into `reading`: (record time, whether the Kafka key differs,
    /// whether it was applied).
    fn read_with(
        &mut self,
        features: &NamedFeatures,
        bytes: &[u8],
        meta: RecordMeta<'_>,
        reading: &mut Reading,
        row: &mut Vec<f64>,
    ) -> Result<(i64, bool, bool), ExtractError> {
        features.read_record(bytes, reading)?;
        let key = features.record_key(reading, meta.key)?;
        let time_ms = features.record_time(reading, meta.timestamp_ms)?;
        let key_differs = reading.key().is_some() && meta.key != reading.key();
        let applied = self.apply(features, key, reading, time_ms, meta.offset, row);
        Ok((time_ms, key_differs, applied))
    }

    /// Appends the row of a record already read to `row` and adds the record to its key's
    /// history ([`NamedFeatures::step`]), marking the key changed; returns true. A replay (an
    /// `offset` at or below the key's last applied offset) changes nothing, appends nothing
    /// and returns false. [`get`](Self::get) then gives the key's state.
    pub fn apply(
        &mut self,
        features: &NamedFeatures,
        key: &[u8],
        reading: &Reading,
        time_ms: i64,
        offset: i64,
        row: &mut Vec<f64>,
    ) -> bool {
        match self.states.get_mut(key) {
            Some(entry) if entry.state.offset().is_some_and(|last| offset <= last) => {
                return false;
            }
            Some(entry) => {
                features.step(&mut entry.state, reading, time_ms, offset, row);
                if !entry.changed {
                    entry.changed = true;
                    self.changed.push(key.into());
                }
            }
            None => {
                let mut state = KeyState::new(features);
                features.step(&mut state, reading, time_ms, offset, row);
                let entry = Entry {
                    state,
                    changed: true,
                };
                self.states.insert(key.into(), entry);
                self.changed.push(key.into());
            }
        }
        self.see(time_ms);
        true
    }

    fn see(&mut self, time_ms: i64) {
        self.latest_ms = Some(self.latest_ms.map_or(time_ms, |latest| latest.max(time_ms)));
    }

    /// The state of `key`, if the store has one.
    pub fn get(&self, key: &[u8]) -> Option<&KeyState> {
        self.states.get(key).map(|entry| &entry.state)
    }

    /// Applies one record of the changelog: `value` decoded ([`KeyState::decode`]) and put
    /// under `key`, or for a tombstone (`None`) the key forgotten. Restored states are not
    /// changes: [`take_changes`](Self::take_changes) does not give them back. A state that
    /// cannot be decoded (another specification, corrupt bytes) changes nothing and is
    /// refused: the consumer cannot give that key's records the rows an uninterrupted run
    /// would.
    pub fn restore(
        &mut self,
        features: &NamedFeatures,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StateError> {
        match value {
            Some(bytes) => {
                let state = KeyState::decode(features, bytes)?;
                self.insert(key, state);
            }
            None => {
                self.states.remove(key);
            }
        }
        Ok(())
    }

    /// Puts a state (decoded from a changelog) under `key`, not as a change; returns the one
    /// it replaces.
    pub fn insert(&mut self, key: &[u8], state: KeyState) -> Option<KeyState> {
        if let Some(time) = state.time_ms() {
            self.see(time);
        }
        let entry = Entry {
            state,
            changed: false,
        };
        self.states.insert(key.into(), entry).map(|old| old.state)
    }

    /// Forgets `key` (a tombstone read from a changelog), not as a change; returns its state.
    pub fn remove(&mut self, key: &[u8]) -> Option<KeyState> {
        self.states.remove(key).map(|entry| entry.state)
    }

    /// The changes since the last take, for the changelog: first a tombstone for each key
    /// forgotten ([`expire`](Self::expire)) and not seen again, then each changed key's
    /// state encoded, in the order the keys first changed. Call it once every output of the
    /// records applied so far is acknowledged (a state saved with a record whose outputs were
    /// then lost would make the record's replay skipped).
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        let mut changes = Vec::with_capacity(self.expired.len() + self.changed.len());
        for key in std::mem::take(&mut self.expired) {
            if !self.states.contains_key(&key) {
                changes.push(StateChange { key, value: None });
            }
        }
        for key in std::mem::take(&mut self.changed) {
            if let Some(entry) = self.states.get_mut(&key) {
                if entry.changed {
                    entry.changed = false;
                    let value = Some(entry.state.encode());
                    changes.push(StateChange { key, value });
                }
            }
        }
        changes
    }

    /// Changes waiting for [`take_changes`](Self::take_changes) (at most; a key listed twice
    /// counts twice).
    pub fn pending_changes(&self) -> usize {
        self.changed.len() + self.expired.len()
    }

    /// Drops every state and every pending change (a partition revoked, once its changes
    /// were written).
    pub fn clear(&mut self) {
        self.states = HashMap::new();
        self.changed = Vec::new();
        self.expired = Vec::new();
        self.latest_ms = None;
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The latest record time applied or restored, epoch milliseconds.
    pub fn latest_time_ms(&self) -> Option<i64> {
        self.latest_ms
    }

    /// An estimate of the memory the states take, in bytes: the table's slots, the keys, and
    /// what each state holds ([`KeyState::memory_bytes`]); pending changes left out.
    pub fn memory_bytes(&self) -> usize {
        // hashbrown: one slot and one control byte per bucket; buckets ≥ capacity × 8/7.
        let buckets = (self.states.capacity() * 8).div_ceil(7).next_power_of_two();
        let slots = buckets * (size_of::<(Box<[u8]>, Entry)>() + 1);
        let held: usize = self
            .states
            .iter()
            .map(|(key, entry)| key.len() + entry.state.memory_bytes() - size_of::<KeyState>())
            .sum();
        size_of::<StateStore>() + slots + held
    }

    /// Forgets every key whose last record is more than the time to live before the latest
    /// record time, and returns those keys, sorted; each leaves as a tombstone with the next
    /// [`take_changes`](Self::take_changes). Nothing without a time to live. It visits every
    /// key: call it now and then between batches, after their offsets are stored (so that
    /// no forgotten key's last record can be replayed), not per record.
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
            .filter(|(_, entry)| entry.state.is_expired(ttl, now_ms))
            .map(|(key, _)| key.clone())
            .collect();
        expired.sort_unstable();
        for key in &expired {
            self.states.remove(key);
        }
        self.expired.extend(expired.iter().cloned());
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
            (first.key, first.time_ms, first.key_differs, first.replayed),
            (&b"c-9"[..], 0, false, false)
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

    /// Reads `(card, ts, offset)` payments into `store`; the rows, one per applied record.
    fn read_all(
        store: &mut StateStore,
        features: &NamedFeatures,
        payments: &[(&str, i64, i64)],
    ) -> Vec<Vec<f64>> {
        let mut rows = Vec::new();
        for &(card, ts, offset) in payments {
            let mut row = Vec::new();
            let applied = store
                .read(
                    features,
                    &payment(card, ts),
                    RecordMeta::at(offset),
                    &mut row,
                )
                .unwrap();
            if !applied.replayed {
                rows.push(row);
            }
        }
        rows
    }

    #[test]
    fn a_replayed_record_is_skipped_and_later_ones_meet_the_state_after_it() {
        let features = by_field();
        let stream = [
            ("c-1", 0, 10),
            ("c-2", 5_000, 11),
            ("c-1", 60_000, 12),
            ("c-1", 90_000, 13),
        ];
        let mut whole = StateStore::new(&features);
        let uninterrupted = read_all(&mut whole, &features, &stream);
        // Interrupted after offset 12, with the states saved then; the input is read again
        // from offset 11 (offsets stored before the states were).
        let mut first = StateStore::new(&features);
        read_all(&mut first, &features, &stream[..3]);
        let mut restarted = StateStore::new(&features);
        for change in first.take_changes() {
            restarted
                .restore(&features, &change.key, change.value.as_deref())
                .unwrap();
        }
        let mut row = Vec::new();
        let replay = restarted
            .read(
                &features,
                &payment("c-2", 5_000),
                RecordMeta::at(11),
                &mut row,
            )
            .unwrap();
        assert!(replay.replayed && row.is_empty());
        assert_eq!(replay.state.offset(), Some(11));
        let later = read_all(&mut restarted, &features, &stream[2..]);
        assert_eq!(later, uninterrupted[3..], "offset 12 skipped, 13 as before");
        assert_eq!(restarted.get(b"c-1"), whole.get(b"c-1"));
        assert_eq!(restarted.pending_changes(), 1, "c-1, by offset 13");
    }

    #[test]
    fn changes_are_the_states_changed_since_the_last_take_and_restore_the_store() {
        let features = by_field();
        let mut store = StateStore::new(&features);
        read_all(
            &mut store,
            &features,
            &[("c-2", 0, 0), ("c-1", 1, 1), ("c-2", 2, 2)],
        );
        let changes = store.take_changes();
        let keys: Vec<&[u8]> = changes.iter().map(|c| &*c.key).collect();
        assert_eq!(
            keys,
            [&b"c-2"[..], b"c-1"],
            "once each, in the order first changed"
        );
        assert_eq!(
            changes[0].value.as_deref(),
            Some(&store.get(b"c-2").unwrap().encode()[..])
        );
        assert!(store.take_changes().is_empty(), "taken");
        read_all(&mut store, &features, &[("c-1", 3, 3)]);
        let again = store.take_changes();
        assert_eq!(again.len(), 1);
        assert_eq!(&*again[0].key, b"c-1");
        // The changelog, read back in order, restores the same states; restoring is no change.
        let mut restored = StateStore::new(&features);
        for change in changes.iter().chain(&again) {
            restored
                .restore(&features, &change.key, change.value.as_deref())
                .unwrap();
        }
        assert_eq!(restored.len(), 2);
        for key in [&b"c-1"[..], b"c-2"] {
            assert_eq!(restored.get(key), store.get(key));
        }
        assert!(restored.take_changes().is_empty());
        restored.restore(&features, b"c-2", None).unwrap();
        assert_eq!(restored.get(b"c-2"), None, "a tombstone");
        let other = kafka_keyed();
        let error = restored
            .restore(&features, b"c-9", Some(&KeyState::new(&other).encode()))
            .unwrap_err();
        assert!(matches!(error, StateError::OtherFeatures { .. }), "{error}");
        assert_eq!(restored.get(b"c-9"), None);
        restored.clear();
        assert!(restored.is_empty() && restored.latest_time_ms().is_none());
    }

    #[test]
    fn expired_keys_leave_as_tombstones_unless_they_came_back() {
        let hourly = features(
            FeatureParams::new("amount:zscore,since_last")
                .key_field(Some("card".into()))
                .time_field(Some("ts".into()))
                .state_ttl(Some(Span::parse("3h").unwrap())),
        );
        let mut store = StateStore::new(&hourly);
        read_all(
            &mut store,
            &hourly,
            &[("a", 0, 0), ("b", 0, 1), ("c", 0, 2)],
        );
        assert_eq!(store.take_changes().len(), 3);
        read_all(&mut store, &hourly, &[("c", 14_400_000, 3)]);
        assert_eq!(store.expire(), [Box::from(&b"a"[..]), Box::from(&b"b"[..])]);
        read_all(&mut store, &hourly, &[("b", 14_500_000, 4)]);
        let changes = store.take_changes();
        let summary: Vec<(&[u8], bool)> = changes
            .iter()
            .map(|c| (&*c.key, c.value.is_some()))
            .collect();
        assert_eq!(
            summary,
            [(&b"a"[..], false), (b"c", true), (b"b", true)],
            "tombstones first; b came back"
        );
    }

    #[test]
    fn memory_grows_with_the_keys() {
        let features = by_field();
        let mut store = StateStore::new(&features);
        let empty = store.memory_bytes();
        let payments: Vec<(String, i64, i64)> = (0..1000)
            .map(|i| (format!("card-{i}"), i * 1_000, i))
            .collect();
        let payments: Vec<(&str, i64, i64)> = payments
            .iter()
            .map(|(c, t, o)| (c.as_str(), *t, *o))
            .collect();
        read_all(&mut store, &features, &payments);
        let per_key = (store.memory_bytes() - empty) as f64 / 1000.0;
        let state = store.get(b"card-7").unwrap();
        assert!(per_key > (state.memory_bytes() + 6) as f64, "{per_key}");
        assert!(per_key < 1000.0, "{per_key}");
    }
}
