//! What reading a record costs: parsing its JSON, extracting its named features, both in one
//! call (`NamedFeatures::read`, the detector's per-record step), and, for scale, the `schema`
//! crate's decoding of a `data` record. Medians of 9 runs over the same records, in one run.
//!
//! `cargo run --release -p features --example extract_cost [FEATURES]`
//! (default `amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday`).

use std::hint::black_box;
use std::time::Instant;

use dataset::PaymentsParams;
use features::FeatureParams;
use serde_json::Value;

const RECORDS: usize = 20_000;
const RUNS: usize = 9;

/// Median nanoseconds per record of `RUNS` runs of `pass` over all records.
fn per_record(mut pass: impl FnMut() -> usize) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let done = black_box(pass());
            started.elapsed().as_secs_f64() * 1e9 / done.max(1) as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let list = std::env::args().nth(1).unwrap_or_else(|| {
        "amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday".into()
    });
    let payments: Vec<String> = PaymentsParams::default()
        .records()?
        .take(2 * RECORDS)
        .map(|p| p.to_json())
        .collect();
    let (training, scored) = payments.split_at(RECORDS);
    let training: Vec<Value> = training
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<_, _>>()?;
    let features = FeatureParams::new(&list).check()?.fit(&training)?.features;
    let bytes: Vec<&[u8]> = scored.iter().map(|text| text.as_bytes()).collect();
    let values: Vec<Value> = scored
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<_, _>>()?;
    let mut check = Vec::new();
    if let Some(error) = values
        .iter()
        .find_map(|v| features.extract_into(v, &mut check).err())
    {
        return Err(format!("a record does not read: {error}").into());
    }
    let mean_len = bytes.iter().map(|b| b.len()).sum::<usize>() as f64 / bytes.len() as f64;

    let parse = per_record(|| {
        bytes
            .iter()
            .filter(|b| serde_json::from_slice::<Value>(b).is_ok())
            .count()
    });
    let mut row = Vec::with_capacity(features.len());
    let extract = per_record(|| {
        values
            .iter()
            .filter(|value| {
                row.clear();
                features.extract_into(value, &mut row).is_ok()
            })
            .count()
    });
    // The same 64 records over and over: extraction alone, its record in cache as it is
    // right after parsing.
    let hot = per_record(|| {
        let mut done = 0;
        for _ in 0..RECORDS / 64 {
            for value in &values[..64] {
                row.clear();
                done += usize::from(features.extract_into(value, &mut row).is_ok());
            }
        }
        done
    });
    let read = per_record(|| {
        bytes
            .iter()
            .filter(|b| {
                row.clear();
                features.read(b, &mut row).is_ok()
            })
            .count()
    });
    let data: Vec<Vec<u8>> = dataset::synthetic_records(1, 0.7, 0, RECORDS as u64)
        .map(|t| t.encode())
        .collect();
    let limits = schema::DecodeLimits::default();
    let decode = per_record(|| {
        data.iter()
            .filter(|b| schema::Transaction::decode(b, &limits).is_ok())
            .count()
    });
    println!("features             {list}");
    println!(
        "records              {} payments of {mean_len:.0} bytes on average",
        bytes.len()
    );
    println!("parse to a Value     {parse:7.0} ns/record");
    println!("extract from a Value {extract:7.0} ns/record ({hot:.0} ns with the record in cache)");
    println!("read (both, one call){read:7.0} ns/record");
    println!("schema decode (data) {decode:7.0} ns/record, for scale");
    Ok(())
}
