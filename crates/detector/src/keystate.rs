//! Per-key feature state of the assigned partitions ([`KeyStates`]), and the rules that keep
//! it exact across failures; the pure part, no Kafka.
//!
//! A model whose named features include per-key items (`amount:zscore`, `count:60s`, …)
//! reads each record through its partition's [`StateStore`]. The stores are backed by the
//! changelog topic `<group>.<input>.state` (`bus::changelog`), and the detector keeps this
//! order (see [`after_outputs`]):
//!
//! 1. a partition's store is restored from the changelog before any of its records is scored;
//! 2. a batch's state changes ([`BatchOutcome::state_changes`](crate::scoring::BatchOutcome),
//!    taken as the batch is scored) are written only after all its outputs are acknowledged;
//! 3. its offsets are stored only after those writes are acknowledged; batches in order;
//! 4. a batch read before a rebalance writes no state and stores no offset: every rebalance
//!    revokes every partition (the eager protocol), so the batch is read again by the
//!    partition's owner, from the committed offset, with the state restored from the
//!    changelog.
//!
//! A record at or below its key's applied offset was scored, and its outputs acknowledged,
//! before that state was written: it is *replayed* and gives no output; every later record
//! meets exactly the state that followed it.

use std::collections::BTreeMap;

use features::{NamedFeatures, RecordMeta, StateChange, StateStore};
use schema::RecordId;

use crate::reading::Refusal;

/// The stores of the partitions whose records were scored since the last rebalance, by input
/// partition (the changelog's partition).
#[derive(Debug, Default, Clone)]
pub struct KeyStates {
    stores: BTreeMap<i32, StateStore>,
}

/// A record read through its partition's store.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed {
    /// Its id (`None`: identified by where it was read).
    pub id: Option<RecordId>,
    /// Already applied to its key's state: no row, no output.
    pub replayed: bool,
    /// Its Kafka key is not its key field's value: the input is not partitioned by the key.
    pub key_differs: bool,
}

impl KeyStates {
    /// True when `partition` has a store (restored, or built since).
    pub fn has(&self, partition: i32) -> bool {
        self.stores.contains_key(&partition)
    }

    /// The partitions among `partitions` without a store, sorted, once each: those to
    /// restore before scoring.
    pub fn missing(&self, partitions: impl IntoIterator<Item = i32>) -> Vec<i32> {
        let mut missing: Vec<i32> = partitions
            .into_iter()
            .filter(|partition| !self.has(*partition))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Puts `partition`'s store (restored from the changelog), replacing any.
    pub fn insert(&mut self, partition: i32, store: StateStore) {
        self.stores.insert(partition, store);
    }

    /// `partition`'s store.
    pub fn get(&self, partition: i32) -> Option<&StateStore> {
        self.stores.get(&partition)
    }

    /// Drops every store (a rebalance, an aborted transaction, a model with other per-key
    /// items): each partition is restored from the changelog before its next record.
    pub fn clear(&mut self) {
        self.stores.clear();
    }

    /// Partitions with a store.
    pub fn partitions(&self) -> usize {
        self.stores.len()
    }

    /// Keys held, all partitions.
    pub fn keys(&self) -> usize {
        self.stores.values().map(StateStore::len).sum()
    }

    /// Memory the states take, all partitions ([`StateStore::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        self.stores.values().map(StateStore::memory_bytes).sum()
    }

    /// True when every store's states mean the same for `features` (a reloaded model with the
    /// same per-key items and settings).
    pub fn fit(&self, features: &NamedFeatures) -> bool {
        self.stores.values().all(|store| store.fits(features))
    }

    /// Reads one record through its partition's store (a new, empty one when the caller
    /// restored none: only a test does that), appending its row to `rows` unless it is
    /// replayed or refused.
    pub fn read(
        &mut self,
        features: &NamedFeatures,
        partition: i32,
        payload: &[u8],
        meta: RecordMeta<'_>,
        rows: &mut Vec<f64>,
    ) -> Result<Keyed, Refusal> {
        let store = self
            .stores
            .entry(partition)
            .or_insert_with(|| StateStore::new(features));
        let applied = store.read(features, payload, meta, rows)?;
        Ok(Keyed {
            id: applied.id,
            replayed: applied.replayed,
            key_differs: applied.key_differs,
        })
    }

    /// Every store's changes since the last take, by partition (partitions without any left
    /// out): what a batch writes to the changelog once its outputs are acknowledged.
    pub fn take_changes(&mut self) -> BTreeMap<i32, Vec<StateChange>> {
        self.stores
            .iter_mut()
            .filter(|(_, store)| store.pending_changes() > 0)
            .map(|(&partition, store)| (partition, store.take_changes()))
            .filter(|(_, changes)| !changes.is_empty())
            .collect()
    }

    /// Forgets, in every store, the keys past their time to live ([`StateStore::expire`]);
    /// their tombstones leave with the next batch's changes. Returns how many.
    pub fn expire(&mut self) -> usize {
        self.stores
            .values_mut()
            .map(|store| store.expire().len())
            .sum()
    }
}

/// What is done with a batch once all its outputs are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterOutputs {
    /// A model without per-key items: store the offsets.
    StoreOffsets,
    /// Write the batch's state changes, and once those are acknowledged store its offsets.
    WriteStateThenStoreOffsets,
    /// The batch was read before a rebalance that revoked its partitions: write nothing and
    /// store nothing; the partitions' owner reads it again from the committed offset.
    Skip,
}

/// The rule for a batch read when `read_at` rebalances had been seen, now that `now`
/// rebalances have been; `per_key`: the batch was read through key states. Checked just before
/// the writes start: a revocation is served only while the consumer is polled, which the
/// detector does not do while it writes state and stores offsets.
pub fn after_outputs(per_key: bool, read_at: u64, now: u64) -> AfterOutputs {
    match (per_key, read_at == now) {
        (false, _) => AfterOutputs::StoreOffsets,
        (true, true) => AfterOutputs::WriteStateThenStoreOffsets,
        (true, false) => AfterOutputs::Skip,
    }
}

/// Of a batch's records, how many at its start were received before the latest rebalance
/// seen while it was read: `seen[i]` is the rebalance count just after record i was received.
/// Those records were fetched for an assignment that has ended; a model with per-key items
/// drops them unscored (their partitions' owner reads them again).
pub fn fetched_before_rebalance(before_first: u64, seen: &[u64]) -> usize {
    let Some(&last) = seen.last() else {
        return 0;
    };
    if last == before_first {
        return 0;
    }
    // The first record received once the count had reached its final value.
    seen.iter().position(|&count| count == last).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use features::FeatureParams;
    use serde_json::{json, Value};

    /// `amount:zscore,amount:delta,count:1h` keyed by `card`, timed by `ts` (ms).
    pub(crate) fn per_key() -> NamedFeatures {
        let training: Vec<Value> = (0..40)
            .map(|i| json!({"card": format!("c{}", i % 3), "amount": 10 + i % 7, "ts": 60_000 * i}))
            .collect();
        FeatureParams::new("amount:zscore,amount:delta,count:1h")
            .key_field(Some("card".into()))
            .time_field(Some("ts".into()))
            .check()
            .unwrap()
            .fit(&training)
            .unwrap()
            .features
    }

    fn payment(card: &str, amount: i64, minute: i64) -> Vec<u8> {
        json!({"card": card, "amount": amount, "ts": 60_000 * minute})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn state_is_written_only_after_outputs_and_skipped_after_a_rebalance() {
        assert_eq!(after_outputs(false, 3, 5), AfterOutputs::StoreOffsets);
        assert_eq!(after_outputs(false, 3, 3), AfterOutputs::StoreOffsets);
        assert_eq!(
            after_outputs(true, 3, 3),
            AfterOutputs::WriteStateThenStoreOffsets
        );
        assert_eq!(after_outputs(true, 3, 4), AfterOutputs::Skip);
    }

    #[test]
    fn records_fetched_before_a_rebalance_are_counted_from_the_start() {
        assert_eq!(fetched_before_rebalance(2, &[]), 0);
        assert_eq!(fetched_before_rebalance(2, &[2, 2, 2]), 0);
        // Rebalanced before the first record came: all are of the new assignment.
        assert_eq!(fetched_before_rebalance(2, &[4, 4]), 0);
        // Revoked and assigned after the second record.
        assert_eq!(fetched_before_rebalance(2, &[2, 2, 3, 4, 4]), 3);
        assert_eq!(fetched_before_rebalance(2, &[2, 4]), 1);
    }

    #[test]
    fn a_replay_after_a_restore_gives_no_row_and_later_records_meet_the_uninterrupted_state() {
        let features = per_key();
        let records: Vec<(i64, Vec<u8>)> = (0..30)
            .map(|i| (i, payment(["a", "b"][i as usize % 2], 10 + i % 4, i)))
            .collect();
        let meta = |offset| RecordMeta::at(offset);
        // Uninterrupted: every record's row.
        let mut whole = KeyStates::default();
        let mut expected = Vec::new();
        for (offset, bytes) in &records {
            let keyed = whole
                .read(&features, 0, bytes, meta(*offset), &mut expected)
                .unwrap();
            assert!(!keyed.replayed);
        }
        // Interrupted: states saved after record 19, the run restarts from offset 12 (the
        // last committed offset), restoring what the changelog holds.
        let mut first = KeyStates::default();
        let mut rows = Vec::new();
        for (offset, bytes) in &records[..20] {
            first
                .read(&features, 0, bytes, meta(*offset), &mut rows)
                .unwrap();
        }
        let changes = first.take_changes();
        assert_eq!(changes.keys().copied().collect::<Vec<_>>(), [0]);
        let mut restored = StateStore::new(&features);
        for change in &changes[&0] {
            restored
                .restore(&features, &change.key, change.value.as_deref())
                .unwrap();
        }
        let mut second = KeyStates::default();
        second.insert(0, restored);
        let mut replayed = 0;
        for (offset, bytes) in &records[12..] {
            let keyed = second
                .read(&features, 0, bytes, meta(*offset), &mut rows)
                .unwrap();
            replayed += usize::from(keyed.replayed);
        }
        assert_eq!(replayed, 8, "records 12..=19 were applied before the save");
        assert_eq!(rows, expected, "every row as the uninterrupted run's");
    }

    #[test]
    fn changes_are_taken_once_per_partition_and_expired_keys_leave_as_tombstones() {
        let features = per_key();
        let mut states = KeyStates::default();
        let mut rows = Vec::new();
        for (partition, offset, bytes) in [
            (0, 0, payment("a", 10, 0)),
            (1, 0, payment("b", 10, 0)),
            (0, 1, payment("a", 11, 1)),
        ] {
            states
                .read(
                    &features,
                    partition,
                    &bytes,
                    RecordMeta::at(offset),
                    &mut rows,
                )
                .unwrap();
        }
        let changes = states.take_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[&0].len(), 1, "one change per key, its newest state");
        assert!(states.take_changes().is_empty(), "taken once");
        assert_eq!(states.keys(), 2);
        assert!(states.memory_bytes() > 0);
        // A key seen much later makes the others expire (time to live of the model).
        let ttl_days = 8;
        let late = payment("c", 10, 60 * 24 * ttl_days);
        states
            .read(&features, 0, &late, RecordMeta::at(2), &mut rows)
            .unwrap();
        assert_eq!(states.expire(), 1, "`a` is past the time to live");
        let changes = states.take_changes();
        let tombstones: Vec<&[u8]> = changes[&0]
            .iter()
            .filter(|change| change.value.is_none())
            .map(|change| &change.key[..])
            .collect();
        assert_eq!(tombstones, [&b"a"[..]]);
    }

    #[test]
    fn a_record_without_its_key_is_refused_with_a_reason() {
        let features = per_key();
        let mut states = KeyStates::default();
        let mut rows = Vec::new();
        let refusal = states
            .read(
                &features,
                0,
                br#"{"amount": 1, "ts": 0}"#,
                RecordMeta::at(0),
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(refusal.reason, "missing_key");
        assert!(rows.is_empty());
    }

    /// A forest over `per_key()`'s features, fitted on cards paying around their own habit.
    pub(crate) fn per_key_model(id: &str) -> crate::scoring::Model {
        use iforest::{Contamination, IsolationForestParams};
        let training: Vec<Value> = (0..300)
            .map(|i| {
                let card = i % 5;
                json!({"card": format!("c{card}"), "amount": 10 * (card + 1) + i % 3, "ts": 60_000 * i})
            })
            .collect();
        let params = FeatureParams::new("amount:zscore,amount:delta,count:1h")
            .key_field(Some("card".into()))
            .time_field(Some("ts".into()));
        let fitted = params.check().unwrap().fit(&training).unwrap();
        let forest = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.05))
            .seed(5)
            .fit(&fitted.rows, fitted.features.len())
            .unwrap();
        crate::scoring::Model::new(fitted.features.attach(forest), id).unwrap()
    }

    /// Payments of cards c0..c4, some far from the card's habit; card = Kafka key.
    fn stream() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..80i64)
            .map(|i| {
                let card = i % 5;
                let amount = if i % 13 == 7 { 900 } else { 10 * (card + 1) + i % 3 };
                let key = format!("c{card}").into_bytes();
                let value = json!({"id": i, "card": format!("c{card}"), "amount": amount, "ts": 60_000 * i});
                (key, value.to_string().into_bytes())
            })
            .collect()
    }

    fn batch(records: &[(Vec<u8>, Vec<u8>)], from: i64) -> Vec<crate::output::Incoming<'_>> {
        records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| crate::output::Incoming {
                partition: 0,
                offset: from + i as i64,
                key: Some(key),
                payload: Some(value),
                timestamp_ms: None,
            })
            .collect()
    }

    /// (offset, features, score) of each anomaly.
    fn anomalies(outcome: &crate::scoring::BatchOutcome) -> Vec<(i64, Vec<f64>, f64)> {
        outcome
            .outputs
            .iter()
            .map(|output| {
                let anomaly = schema::Anomaly::decode(&output.payload).unwrap();
                (anomaly.offset, anomaly.features, anomaly.anomaly_score)
            })
            .collect()
    }

    #[test]
    fn a_scorer_restarted_from_saved_states_gives_the_uninterrupted_run_s_anomalies() {
        use crate::scoring::Scorer;
        let records = stream();
        let scorer = || Scorer::new(per_key_model("m"), Default::default(), "payments");
        let mut whole = scorer();
        let first = whole.process(&batch(&records[..40], 0)).unwrap();
        let second = whole.process(&batch(&records[40..], 40)).unwrap();
        let expected: Vec<_> = [anomalies(&first), anomalies(&second)].concat();
        assert!(
            expected.len() >= 3,
            "the stream has anomalies: {expected:?}"
        );
        assert!(first.per_key && !first.state_changes.is_empty());
        // A run that saved its states after offset 39 and had committed offset 25 only.
        let mut saved = StateStore::new(whole.model().per_key().unwrap());
        for change in &first.state_changes[&0] {
            let features = whole.model().per_key().unwrap();
            saved
                .restore(features, &change.key, change.value.as_deref())
                .unwrap();
        }
        let mut restarted = scorer();
        restarted.states_mut().insert(0, saved);
        let again = restarted.process(&batch(&records[25..], 25)).unwrap();
        assert_eq!(
            again.replayed, 15,
            "offsets 25..=39 were applied before the save"
        );
        let counts = again.per_partition[&0];
        assert_eq!(
            counts.consumed,
            counts.scored + counts.dead_lettered + counts.replayed
        );
        let after_save: Vec<_> = expected.iter().filter(|a| a.0 >= 40).cloned().collect();
        assert_eq!(
            anomalies(&again),
            after_save,
            "the same features, bit for bit"
        );
        // Without the saved states, the same records get other rows.
        let mut forgetful = scorer();
        let fresh = forgetful.process(&batch(&records[40..], 40)).unwrap();
        assert_ne!(anomalies(&fresh), after_save);
    }

    #[test]
    fn a_kafka_key_other_than_the_key_field_is_counted_and_a_reload_keeps_fitting_states() {
        use crate::scoring::Scorer;
        let mut scorer = Scorer::new(per_key_model("m1"), Default::default(), "payments");
        let records = stream();
        let mut incoming = batch(&records[..10], 0);
        incoming[3].key = Some(b"someone else");
        incoming[4].key = None;
        let outcome = scorer.process(&incoming).unwrap();
        assert_eq!(outcome.key_differs, 2);
        assert_eq!(outcome.scored, 10, "counted, still scored");
        assert_eq!(scorer.states().keys(), 5);
        scorer.replace_model(per_key_model("m2"));
        assert_eq!(scorer.states().keys(), 5, "same per-key items: states kept");
        let other = crate::scoring::tests::named_model("amount:log", "m3");
        scorer.replace_model(other);
        assert_eq!(
            scorer.states().partitions(),
            0,
            "another model: states dropped"
        );
        assert!(!scorer.is_per_key());
    }
}
