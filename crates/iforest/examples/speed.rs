//! Speed on one thread: fit time, single-row latency and batch scoring time per row, 100 trees
//! × 256 samples, on the synthetic 2-D data and on http, shuttle and satellite.
//!
//! `cargo run --release -p iforest --example speed -- [ODDS_DIR] [--reps N] [--extended]
//! [--tables http,shuttle,…] [--range-check on|off]`
//!
//! `ODDS_DIR` defaults to the environment variable of that name, else `bench/data/odds` in the
//! repository (`bench/fetch-data.sh` fetches the tables there). Each figure is the median over `--reps` repetitions (default 7); the synthetic table (1000
//! rows) is batch-scored tiled to 100 000 rows. Prints tab-separated
//! `dataset rows features fit_ms single_us batch_us_per_row` lines after a header.

#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::time::Instant;

use iforest::{IsolationForestParams, RangeCheck, SplitRule};

/// Rows scored one at a time per repetition of the latency measurement.
const SINGLE_ROWS: usize = 20_000;
/// A table smaller than this (the synthetic one) is scored tiled to this many rows, so a
/// per-call overhead does not count as per-row cost (bench/sklearn_compare.py does the same).
const MIN_BATCH_ROWS: usize = 100_000;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let extended = args.iter().any(|a| a == "--extended");
    args.retain(|a| a != "--extended");
    let mut reps = 7usize;
    if let Some(at) = args.iter().position(|a| a == "--reps") {
        reps = args.get(at + 1).ok_or("--reps needs a number")?.parse()?;
        args.drain(at..at + 2);
    }
    let reps = reps.max(1);
    let mut range_check = RangeCheck::default();
    if let Some(at) = args.iter().position(|a| a == "--range-check") {
        range_check = args
            .get(at + 1)
            .ok_or("--range-check needs on or off")?
            .parse()?;
        args.drain(at..at + 2);
    }
    let mut names = "http,shuttle,satellite".to_string();
    if let Some(at) = args.iter().position(|a| a == "--tables") {
        names = args.get(at + 1).ok_or("--tables needs names")?.clone();
        args.drain(at..at + 2);
    }
    let dir = common::odds_dir(args.into_iter().next());
    let rule = if extended {
        SplitRule::Extended {
            extension_level: None,
        }
    } else {
        SplitRule::Axis
    };
    let mut tables = vec![common::two_clusters()];
    for name in names.split(',').filter(|name| !name.is_empty()) {
        tables.push(common::read_table(&dir.join(format!("{name}.csv")))?);
    }

    println!("dataset\trows\tfeatures\tfit_ms\tsingle_us\tbatch_us_per_row");
    for table in &tables {
        let params = IsolationForestParams::new()
            .n_trees(100)
            .sample_size(256)
            .seed(1)
            .threads(1)
            .split_rule(rule)
            .range_check(range_check);
        let fit_ms = median(
            (0..reps)
                .map(|_| {
                    let start = Instant::now();
                    black_box(params.clone().fit(&table.data, table.n_features).unwrap());
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        );
        let model = params.fit(&table.data, table.n_features)?;

        let rows: Vec<&[f64]> = table
            .data
            .chunks_exact(table.n_features)
            .cycle()
            .take(SINGLE_ROWS)
            .collect();
        let single_us = median(
            (0..reps)
                .map(|_| {
                    let start = Instant::now();
                    for row in &rows {
                        black_box(model.score(black_box(row)).unwrap());
                    }
                    start.elapsed().as_secs_f64() * 1e6 / rows.len() as f64
                })
                .collect(),
        );

        let batch = if table.rows() >= MIN_BATCH_ROWS {
            table.data.clone()
        } else {
            table.data.repeat(MIN_BATCH_ROWS / table.rows())
        };
        let mut out = vec![0.0; batch.len() / table.n_features];
        let batch_us = median(
            (0..reps)
                .map(|_| {
                    let start = Instant::now();
                    model.score_batch_into(&batch, &mut out).unwrap();
                    black_box(&out);
                    start.elapsed().as_secs_f64() * 1e6 / out.len() as f64
                })
                .collect(),
        );
        println!(
            "{}\t{}\t{}\t{:.2}\t{:.3}\t{:.3}",
            table.name,
            table.rows(),
            table.n_features,
            fit_ms,
            single_us,
            batch_us
        );
    }
    Ok(())
}
