//! What reading a record costs: parsing its JSON into a `Value` tree, extracting its named
//! features from the tree, `NamedFeatures::read` (one pass, no tree: the detector's
//! per-record step), and, for scale, the `schema` crate's decoding of a `data` record (what
//! the detector does per record today). The methods take turns within each of 15 rounds, so
//! a busy machine slows them alike; medians per record, and ratios to the schema decoding.
//!
//! `cargo run --release -p features --example extract_cost [FEATURES]`
//! (default `amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday`).

use std::hint::black_box;
use std::time::Instant;

use dataset::PaymentsParams;
use features::FeatureParams;
use serde_json::Value;

const RECORDS: usize = 20_000;
const ROUNDS: usize = 15;

/// A named pass over the records, and its times.
type Pass<'a> = (&'static str, &'a mut dyn FnMut() -> usize, Vec<f64>);

/// Nanoseconds per record of one pass of `pass` (which returns the records it handled).
fn time(pass: &mut dyn FnMut() -> usize) -> f64 {
    let started = Instant::now();
    let done = black_box(pass());
    started.elapsed().as_secs_f64() * 1e9 / done.max(1) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
    let mut row = Vec::with_capacity(features.len());
    if let Some(error) = values
        .iter()
        .find_map(|v| features.extract_into(v, &mut row).err())
    {
        return Err(format!("a record does not read: {error}").into());
    }
    let data: Vec<Vec<u8>> = dataset::synthetic_records(1, 0.7, 0, RECORDS as u64)
        .map(|t| t.encode())
        .collect();
    let limits = schema::DecodeLimits::default();

    let mut parse = || {
        bytes
            .iter()
            .filter(|b| serde_json::from_slice::<Value>(b).is_ok())
            .count()
    };
    let mut extract_row = Vec::with_capacity(features.len());
    // The same 64 trees over and over: extraction alone, its record in cache as it is right
    // after parsing.
    let mut extract = || {
        let mut done = 0;
        for _ in 0..RECORDS / 64 {
            for value in &values[..64] {
                extract_row.clear();
                done += usize::from(features.extract_into(value, &mut extract_row).is_ok());
            }
        }
        done
    };
    let mut read_row = Vec::with_capacity(features.len());
    let mut read = || {
        bytes
            .iter()
            .filter(|b| {
                read_row.clear();
                features.read(b, &mut read_row).is_ok()
            })
            .count()
    };
    let mut decode = || {
        data.iter()
            .filter(|b| schema::Transaction::decode(b, &limits).is_ok())
            .count()
    };
    let mut passes: [Pass; 4] = [
        ("parse to a Value tree", &mut parse, Vec::new()),
        ("extract from the tree", &mut extract, Vec::new()),
        ("NamedFeatures::read", &mut read, Vec::new()),
        ("schema decode (data)", &mut decode, Vec::new()),
    ];
    for _ in 0..ROUNDS {
        for (_, pass, times) in passes.iter_mut() {
            times.push(time(*pass));
        }
    }
    let medians: Vec<(&str, f64)> = passes
        .into_iter()
        .map(|(name, _, times)| (name, median(times)))
        .collect();
    let scale = medians[3].1;
    let mean_len = bytes.iter().map(|b| b.len()).sum::<usize>() as f64 / bytes.len() as f64;
    println!("features               {list}");
    println!(
        "records                {} payments of {mean_len:.0} bytes on average; `data` records of {:.0} bytes",
        bytes.len(),
        data.iter().map(Vec::len).sum::<usize>() as f64 / data.len() as f64
    );
    for (name, nanos) in medians {
        println!(
            "{name:<22} {nanos:6.0} ns/record  ({:.2}× the schema decoding)",
            nanos / scale
        );
    }
    Ok(())
}
