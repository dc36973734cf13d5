//! Per-key features give the same rows, bit for bit, however the records are read: learned
//! offline in one pass ([`FeatureSpec::fit`], what the trainer does), read online through a
//! [`StateStore`] (what the detector does), and read online with restarts in between, the
//! states restored from their changes and the records since the last saved state read again.

use dataset::PaymentsParams;
use features::{FeatureParams, Missing, NamedFeatures, RecordMeta, StateChange, StateStore};
use serde_json::Value;

const LIST: &str = "amount:log,/merchant/mcc:category,ts:hour,amount:log:zscore,amount:delta,\
                    amount:lag:3,count:10m,count:1h,since_last";

fn payments(count: usize) -> Vec<Value> {
    PaymentsParams {
        seed: 11,
        cards: 150,
        ..PaymentsParams::default()
    }
    .records()
    .unwrap()
    .take(count)
    .map(|p| p.to_value())
    .collect()
}

fn fitted(records: &[Value], missing: Missing) -> (NamedFeatures, Vec<u64>) {
    let fitted = FeatureParams::new(LIST)
        .key_field(Some("card".into()))
        .time_field(Some("ts".into()))
        .missing(missing)
        .check()
        .unwrap()
        .fit(records)
        .unwrap();
    assert!(fitted.rejected.is_empty() || missing == Missing::DeadLetter);
    (fitted.features, bits(&fitted.rows))
}

fn bits(rows: &[f64]) -> Vec<u64> {
    rows.iter().map(|v| v.to_bits()).collect()
}

/// Rows of `texts` read in order through one store, offsets counting from 0.
fn online(features: &NamedFeatures, texts: &[String]) -> Vec<u64> {
    let mut store = StateStore::new(features);
    let mut rows = Vec::new();
    for (offset, text) in texts.iter().enumerate() {
        let applied = store
            .read(
                features,
                text.as_bytes(),
                RecordMeta::at(offset as i64),
                &mut rows,
            )
            .unwrap();
        assert!(!applied.replayed);
    }
    bits(&rows)
}

#[test]
fn training_rows_are_the_rows_a_consumer_reads() {
    let records = payments(6000);
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let (features, training) = fitted(&records, Missing::DeadLetter);
    assert_eq!(training.len(), 6000 * features.len());
    assert_eq!(online(&features, &texts), training);
    // Read back from the model's entry, the features give the same rows.
    let read = NamedFeatures::from_metadata(&features.to_metadata()).unwrap();
    assert_eq!(online(&read, &texts), training);
}

#[test]
fn imputed_fields_give_the_same_rows_both_ways() {
    let mut records = payments(3000);
    for (i, record) in records.iter_mut().enumerate() {
        if i % 17 == 3 {
            record["amount"] = Value::Null;
        }
    }
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let (features, training) = fitted(&records, Missing::Impute);
    assert_eq!(online(&features, &texts), training);
}

#[test]
fn restarts_with_restored_states_and_replays_give_the_uninterrupted_rows() {
    let records = payments(4000);
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let (features, uninterrupted) = fitted(&records, Missing::DeadLetter);
    let width = features.len();
    // The changelog: every change taken, in order.
    let mut changelog: Vec<StateChange> = Vec::new();
    let mut store = StateStore::new(&features);
    let mut rows: Vec<Option<Vec<u64>>> = vec![None; texts.len()];
    // Each restart: states saved at `saved`, offsets stored at `stored` ≤ `saved`, crash at
    // `crash` ≥ `saved` (the records after `saved` lose their states with the process).
    let mut next = 0;
    for (saved, stored, crash) in [
        (500, 450, 700),
        (1200, 1200, 1200),
        (2100, 1300, 2600),
        (3999, 3000, 4000),
    ] {
        while next < crash {
            let mut row = Vec::new();
            let applied = store
                .read(
                    &features,
                    texts[next].as_bytes(),
                    RecordMeta::at(next as i64),
                    &mut row,
                )
                .unwrap();
            if !applied.replayed {
                assert!(
                    rows[next].is_none() || rows[next] == Some(bits(&row)),
                    "offset {next}"
                );
                rows[next] = Some(bits(&row));
            }
            next += 1;
            if next == saved {
                changelog.extend(store.take_changes());
            }
        }
        // Crash: a new store from the changelog, the input read again from `stored`.
        store = StateStore::new(&features);
        for change in &changelog {
            store
                .restore(&features, &change.key, change.value.as_deref())
                .unwrap();
        }
        next = stored;
    }
    let mut all = Vec::with_capacity(uninterrupted.len());
    for (offset, row) in rows.iter().enumerate() {
        let row = row
            .as_ref()
            .unwrap_or_else(|| panic!("offset {offset} never read"));
        assert_eq!(row.len(), width);
        all.extend_from_slice(row);
    }
    assert_eq!(all, uninterrupted);
}
