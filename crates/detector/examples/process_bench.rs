//! What one batch costs the detector's CPU, without Kafka: decoding the records, and the whole
//! `Scorer::process` (decode, check, score, encode the anomalies), per record, medians of
//! `--reps` runs, with the heap allocations each record costs. The records are the
//! generator's shape (`{"id", "data": [[x, y]], "current_time"}`), a share of them far out.
//!
//! ```text
//! cargo run --release -p detector --example process_bench
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Parser;
use detector::scoring::{Incoming, Model, Scorer};
use iforest::IsolationForestParams;
use rand::{Rng as _, SeedableRng as _};
use schema::{DecodeLimits, Transaction};

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
    let payloads = records(&cli);
    let incoming: Vec<Incoming<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(offset, payload)| Incoming {
            partition: 0,
            offset: offset as i64,
            key: Some(b"key"),
            payload: Some(payload),
        })
        .collect();
    let limits = DecodeLimits::default();
    let mut scorer = Scorer::new(model()?, limits, "transactions");
    let anomalies = scorer.process(&incoming)?.anomalies;

    let decode = measure(&cli, || {
        payloads
            .iter()
            .filter(|payload| Transaction::decode(payload, &limits).is_ok())
            .count()
    });
    let process = measure(&cli, || {
        scorer
            .process(&incoming)
            .map_or(0, |outcome| outcome.scored as usize)
    });
    println!(
        "{} records per batch, {anomalies} anomalies, {} batches per run, medians of {} runs",
        cli.batch, cli.batches, cli.reps
    );
    println!("{:<28} {:>10} {:>14}", "", "ns/record", "allocs/record");
    for (name, (nanos, allocations)) in [("decode", decode), ("process (whole batch)", process)] {
        println!("{name:<28} {nanos:>10.0} {allocations:>14.1}");
    }
    Ok(())
}
