//! What per-key state costs: bytes per key encoded (a changelog record's value) and in memory,
//! for typical specifications on the payments and sensors scenarios, and, at scale, a store of
//! many keys: its memory (the store's own estimate, and the process's resident memory before
//! and after), the time to take every state as changes (encoding) and to restore them into a
//! new store (decoding), as a consumer restoring a partition's changelog would, broker aside.
//!
//! `cargo run --release -p features --example state_size [KEYS]` (default 1000000 keys for the
//! scale part; resident memory is read from /proc/self/statm, pages of 4 KiB).

use std::time::Instant;

use dataset::{PaymentsParams, SensorsParams};
use features::{FeatureParams, NamedFeatures, RecordMeta, StateStore};
use serde_json::{json, Value};

/// Quantiles of `values`: (median, 90th percentile, maximum).
fn quantiles(mut values: Vec<usize>) -> (usize, usize, usize) {
    values.sort_unstable();
    let at = |q: f64| values[((values.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.9), at(1.0))
}

/// Fits `list` on the first `train` records, runs every record through a store, and prints
/// the bytes per key.
fn measure(
    name: &str,
    list: &str,
    key: &str,
    records: &[Value],
    train: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let features: NamedFeatures = FeatureParams::new(list)
        .key_field(Some(key.into()))
        .time_field(Some("ts".into()))
        .check()?
        .fit(&records[..train])?
        .features;
    let mut store = StateStore::new(&features);
    let mut row = Vec::new();
    for (offset, record) in records.iter().enumerate() {
        row.clear();
        let meta = RecordMeta::at(offset as i64);
        store.read(&features, record.to_string().as_bytes(), meta, &mut row)?;
    }
    let changes = store.take_changes();
    let encoded: Vec<usize> = changes
        .iter()
        .map(|c| c.value.as_ref().map_or(0, Vec::len))
        .collect();
    let keys: Vec<usize> = changes.iter().map(|c| c.key.len()).collect();
    let memory: Vec<usize> = changes
        .iter()
        .filter_map(|c| store.get(&c.key))
        .map(|state| state.memory_bytes())
        .collect();
    let (e50, e90, emax) = quantiles(encoded);
    let (m50, m90, mmax) = quantiles(memory);
    let (k50, _, _) = quantiles(keys);
    println!(
        "{name:<9} {list:<48} {:>6} keys  encoded {e50:>4} / {e90:>4} / {emax:>4} B  \
         state in memory {m50:>4} / {m90:>4} / {mmax:>5} B  key {k50} B  store {:>5.0} B/key",
        store.len(),
        store.memory_bytes() as f64 / store.len() as f64,
    );
    Ok(())
}

/// The process's resident memory, bytes (0 where /proc is not there).
fn resident() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let payments: Vec<Value> = PaymentsParams::default()
        .records()?
        .take(60_000)
        .map(|p| p.to_value())
        .collect();
    let sensors: Vec<Value> = SensorsParams::default()
        .records()?
        .take(60_000)
        .map(|r| r.to_value())
        .collect();
    println!("bytes per key after 60000 records: median / 90th percentile / max");
    for (name, list, key, records) in [
        (
            "payments",
            "amount:log,amount:log:zscore,count:10m,since_last",
            "card",
            &payments,
        ),
        (
            "payments",
            "amount:log:zscore,count:10m,count:1h,since_last",
            "card",
            &payments,
        ),
        ("sensors", "value:lag:8", "sensor", &sensors),
        (
            "sensors",
            "value,value:zscore,value:lag:8",
            "sensor",
            &sensors,
        ),
    ] {
        measure(name, list, key, records, 40_000)?;
    }

    // At scale: `keys` keys of 3 payments each, 2 minutes apart.
    let list = "amount:log,amount:log:zscore,count:10m,since_last";
    let training: Vec<Value> = (0..20_000)
        .map(|i| json!({"card": format!("k-{}", i % 500), "amount": 5 + i % 97, "ts": 120_000 * i as i64}))
        .collect();
    let features = FeatureParams::new(list)
        .key_field(Some("card".into()))
        .time_field(Some("ts".into()))
        .check()?
        .fit(&training)?
        .features;
    let before = resident();
    let mut store = StateStore::new(&features);
    let mut row = Vec::new();
    let mut offset = 0;
    for round in 0..3i64 {
        for key in 0..keys {
            let record = format!(
                r#"{{"card": "k-{key}", "amount": {}, "ts": {}}}"#,
                5 + (key * 7 + round as usize) % 97,
                1_796_094_900_000 + round * 120_000 + key as i64
            );
            row.clear();
            store.read(
                &features,
                record.as_bytes(),
                RecordMeta::at(offset),
                &mut row,
            )?;
            offset += 1;
        }
    }
    let after = resident();
    let started = Instant::now();
    let changes = store.take_changes();
    let encode = started.elapsed();
    let bytes: usize = changes
        .iter()
        .map(|c| c.key.len() + c.value.as_ref().map_or(0, Vec::len))
        .sum();
    let started = Instant::now();
    let mut restored = StateStore::new(&features);
    for change in &changes {
        restored.restore(&features, &change.key, change.value.as_deref())?;
    }
    let restore = started.elapsed();
    assert_eq!(restored.len(), keys);
    println!(
        "{keys} keys ({list}, 3 records each): store estimate {:.0} B/key, resident memory \
         {:.0} B/key; changes {:.1} MB ({:.0} B/key with the key); taking them (encoding) \
         {:.2} s, restoring them (decoding, inserting) {:.2} s ({:.0} keys/s)",
        store.memory_bytes() as f64 / keys as f64,
        after.saturating_sub(before) as f64 / keys as f64,
        bytes as f64 / 1e6,
        bytes as f64 / keys as f64,
        encode.as_secs_f64(),
        restore.as_secs_f64(),
        keys as f64 / restore.as_secs_f64(),
    );
    Ok(())
}
