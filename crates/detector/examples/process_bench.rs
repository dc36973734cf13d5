//! What one batch costs the detector's CPU, without Kafka: reading the records, and the whole
//! `Scorer::process` (read, check, score, explain and encode the anomalies), per record,
//! medians of `--reps` runs, with the heap allocations each record costs; and what explaining
//! one anomaly costs (`IsolationForest::attribute`, what the detector calls for each anomaly,
//! beside `explain`) and writing its reasons (`features`, `explanation`) into it; and from
//! these, what the explanation costs per record read.
//!
//! `--records synthetic` (the default): the generator's shape (`{"id", "data": [[x, y]],
//! "current_time"}`), a share of them far out, and a model of the clusters. `--records
//! pipeline`: what `scripts/bench-pipeline.sh` scores, the generator's records (seed 1, 70%
//! outliers in [−4, 4]²) and `trainer fit`'s default model (50 trees of 500, contamination
//! 0.01, seed 42). `--records payments`: the payments scenario's records, read through named
//! features (`amount:log,/merchant/mcc:category,ts:hour`) by a model fitted on the preceding
//! payments with `--contamination`.
//!
//! ```text
//! cargo run --release -p detector --example process_bench [-- --records payments]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Parser, ValueEnum};
use detector::scoring::{Incoming, Model, Scorer};
use features::Features;
use iforest::{Contamination, IsolationForestParams};
use rand::{Rng as _, SeedableRng as _};
use schema::{
    encode_scored_anomaly, DecodeLimits, Direction, FeatureShare, RecordId, Scored, Transaction,
    Verdict,
};

/// Counts heap allocations, so the table can show them per record.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator unchanged; counting touches only an
// atomic, never the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Parser)]
struct Cli {
    /// Records per batch (the detector's --batch-size default).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Batches per run.
    #[arg(long, default_value_t = 200)]
    batches: usize,
    /// Runs; the table shows medians.
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Share of records drawn uniformly over a wide square (most become anomalies).
    #[arg(long, default_value_t = 0.3)]
    outlier_share: f64,
    /// Which records.
    #[arg(long, value_enum, default_value_t = Records::Synthetic)]
    records: Records,
    /// Payments: the share of training payments above the threshold.
    #[arg(long, default_value_t = 0.01)]
    contamination: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Records {
    /// `data` records of two clusters and far points.
    Synthetic,
    /// The pipeline benchmark's records and model.
    Pipeline,
    /// Payments, read through named features.
    Payments,
}

/// `trainer fit`'s default model and the generator's default records, as the pipeline
/// benchmark uses them.
fn pipeline(cli: &Cli) -> Result<(Model, Vec<Vec<u8>>)> {
    let table = dataset::synthetic_training_data(42);
    let forest = IsolationForestParams::new()
        .n_trees(50)
        .sample_size(500)
        .contamination(Contamination::Fraction(0.01))
        .seed(42)
        .fit(&table.data, table.n_features())
        .context("fitting the bench model")?;
    let records = dataset::synthetic_records(1, 0.7, 0, cli.batch as u64)
        .map(|transaction| transaction.encode())
        .collect();
    Ok((Model::new(forest, "bench-pipeline")?, records))
}

/// The payments features.
const PAYMENTS_FEATURES: &str = "amount:log,/merchant/mcc:category,ts:hour";

/// A model with named features fitted on 20,000 payments, and the next `--batch` payments.
fn payments(cli: &Cli) -> Result<(Model, Vec<Vec<u8>>)> {
    let mut stream = dataset::PaymentsParams {
        seed: 7,
        ..dataset::PaymentsParams::default()
    }
    .records()?;
    let training: Vec<serde_json::Value> =
        stream.by_ref().take(20_000).map(|p| p.to_value()).collect();
    let fitted = features::FeatureParams::new(PAYMENTS_FEATURES)
        .check()?
        .fit(&training)?;
    let forest = IsolationForestParams::default()
        .contamination(Contamination::Fraction(cli.contamination))
        .feature_names(fitted.features.names())
        .seed(1)
        .fit(&fitted.rows, fitted.features.len())
        .context("fitting the bench model")?;
    let model = Model::new(fitted.features.attach(forest), "bench-payments")?;
    let records = stream
        .take(cli.batch)
        .map(|p| p.to_json().into_bytes())
        .collect();
    Ok((model, records))
}

fn records(cli: &Cli) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let time = chrono::NaiveDate::from_ymd_opt(2024, 4, 27)
        .and_then(|day| day.and_hms_micro_opt(21, 17, 34, 733_387))
        .unwrap_or_default();
    (0..cli.batch)
        .map(|id| {
            let features = if rng.random::<f64>() < cli.outlier_share {
                vec![rng.random_range(-8.0..8.0), rng.random_range(-8.0..8.0)]
            } else {
                vec![
                    2.0 + rng.random::<f64>() * 0.6,
                    -1.0 + rng.random::<f64>() * 0.6,
                ]
            };
            Transaction::new(id as i64, features, time).encode()
        })
        .collect()
}

fn model() -> Result<Model> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let data: Vec<f64> = (0..2000)
        .flat_map(|_| {
            [
                2.0 + rng.random::<f64>() * 0.6,
                -1.0 + rng.random::<f64>() * 0.6,
            ]
        })
        .collect();
    let forest = IsolationForestParams::default()
        .seed(1)
        .fit(&data, 2)
        .context("fitting the bench model")?;
    Ok(Model::new(forest, "bench-model")?)
}

/// Median of a run's per-record nanoseconds and allocations.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `work` over `batches` batches `reps` times: median ns and allocations per record.
fn measure(cli: &Cli, mut work: impl FnMut() -> usize) -> (f64, f64) {
    let (mut nanos, mut allocations) = (Vec::new(), Vec::new());
    for _ in 0..cli.reps {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut records = 0;
        for _ in 0..cli.batches {
            records += work();
        }
        let elapsed = started.elapsed().as_nanos() as f64;
        let allocated = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64;
        nanos.push(elapsed / records.max(1) as f64);
        allocations.push(allocated / records.max(1) as f64);
    }
    (median(nanos), median(allocations))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (model, payloads) = match cli.records {
        Records::Synthetic => (model()?, records(&cli)),
        Records::Pipeline => pipeline(&cli)?,
        Records::Payments => payments(&cli)?,
    };
    let incoming: Vec<Incoming<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(offset, payload)| Incoming {
            partition: 0,
            offset: offset as i64,
            key: Some(b"key"),
            payload: Some(payload),
            timestamp_ms: None,
        })
        .collect();
    let limits = DecodeLimits::default();
    let features = model.features().clone();
    let width = model.forest.n_features();
    let forest = model.forest.clone();
    let mut scorer = Scorer::new(model, limits, "transactions");
    let anomalies = scorer.process(&incoming)?.anomalies;

    let mut row = Vec::with_capacity(width);
    let read = measure(&cli, || {
        payloads
            .iter()
            .filter(|payload| match &features {
                Features::Data => Transaction::decode(payload, &limits).is_ok(),
                Features::Named(named) => {
                    row.clear();
                    named.read(payload, &mut row).is_ok()
                }
            })
            .count()
    });
    let process = measure(&cli, || {
        scorer
            .process(&incoming)
            .map_or(0, |outcome| outcome.scored as usize)
    });
    // The anomalies' rows, as the detector scored them, and their records' text.
    let mut rows = Vec::new();
    let mut texts = Vec::new();
    for payload in &payloads {
        let start = rows.len();
        let read = match &features {
            Features::Data => Transaction::decode(payload, &limits)
                .map(|transaction| rows.extend_from_slice(&transaction.features))
                .is_ok(),
            Features::Named(named) => named.read(payload, &mut rows).is_ok(),
        };
        if read && !forest.predict(&rows[start..])? {
            rows.truncate(start);
        } else if read {
            texts.push(std::str::from_utf8(payload)?);
        }
    }
    let flagged: Vec<&[f64]> = rows.chunks_exact(width).collect();
    let mut contributions = Vec::new();
    let attribute = measure(&cli, || {
        for row in &flagged {
            let _ = forest.attribute(row, &mut contributions);
        }
        flagged.len()
    });
    let explain = measure(&cli, || {
        flagged
            .iter()
            .filter(|row| forest.explain(row).is_ok())
            .count()
    });
    // An anomaly's text with its reasons, against the verdict alone: what writing the
    // reasons costs.
    let names = scorer.model().feature_names().to_vec();
    let top: Vec<FeatureShare> = (0..width.min(3))
        .map(|feature| FeatureShare {
            feature,
            direction: Direction::High,
            share: 0.25,
        })
        .collect();
    let verdict = Verdict {
        anomaly_score: 0.7,
        threshold: forest.threshold(),
        model: "bench".into(),
        partition: 0,
        offset: 0,
        detected_at: chrono::Utc::now(),
    };
    let id = RecordId::Int(1);
    let encode_with = |names: &[String], top: &[FeatureShare]| {
        measure(&cli, || {
            let mut bytes = 0;
            for (text, row) in texts.iter().zip(&flagged) {
                let scored = Scored {
                    record_id: Some(&id),
                    names: &names[..names.len().min(row.len())],
                    row,
                    top,
                    from_data: false,
                };
                bytes += encode_scored_anomaly(text, &verdict, &scored).len();
            }
            std::hint::black_box(bytes);
            flagged.len()
        })
    };
    let with_reasons = encode_with(&names, &top);
    let verdict_only = encode_with(&[], &[]);
    let share = anomalies as f64 / cli.batch as f64;
    println!(
        "{:?} records, {} per batch, {anomalies} anomalies, {} batches per run, medians of {} runs",
        cli.records, cli.batch, cli.batches, cli.reps
    );
    println!("{:<44} {:>10} {:>14}", "", "ns", "allocations");
    for (name, (nanos, allocations)) in [
        ("read, per record", read),
        ("process (whole batch), per record", process),
        ("attribute (detector), per anomaly", attribute),
        ("explain, per anomaly", explain),
        ("encode anomaly with reasons, per anomaly", with_reasons),
        ("encode anomaly, verdict only, per anomaly", verdict_only),
    ] {
        println!("{name:<44} {nanos:>10.0} {allocations:>14.1}");
    }
    println!(
        "explanation per record read ({:.1}% anomalies): {:.0} ns of attribution + {:.0} ns of \
         writing the reasons",
        100.0 * share,
        share * attribute.0,
        share * (with_reasons.0 - verdict_only.0)
    );
    Ok(())
}
