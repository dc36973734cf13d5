//! Per-key features give the same rows, bit for bit, however the records are read: learned
//! offline in one pass ([`FeatureSpec::fit`], what the trainer does), or read online through
//! a [`StateStore`] (what the detector does).

use dataset::PaymentsParams;
use features::{FeatureParams, Missing, NamedFeatures, RecordMeta, StateStore};
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
        let meta = RecordMeta::at(offset as i64);
        store
            .read(features, text.as_bytes(), meta, &mut rows)
            .unwrap();
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
