//! Scoring speed of two versions of crates/iforest in one process: `base` (an older commit)
//! and this checkout with the range check off and on, timed in turn on the same data, round
//! after round. Built and run by bench/iforest-ab.sh, which supplies the two crates.
//!
//! `iforest_ab ODDS_DIR [ROUNDS] [TABLES]` (TABLES: comma-separated; `synthetic-2d` is a
//! fixed 1000-row table). Per table and scorer: the medians over the rounds of batch µs per
//! row (the table tiled to at least 100 000 rows) and of single-row µs (20 000 rows), and the
//! median [quartiles] of the per-round ratios to `base` (for `on`, to `off`). The three
//! scorers run back to back within a round, in an order that rotates, so a machine that is
//! busier at some moments weighs on all of them alike. The scores of `base` and `off` are
//! checked to be identical.

use std::hint::black_box;
use std::time::Instant;

fn read(path: &str) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let width = lines.next().expect("a header").split(',').count() - 1;
    let mut data = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let fields: Vec<f64> = line.split(',').map(|f| f.parse().expect("a number")).collect();
        data.extend_from_slice(&fields[..width]);
    }
    (data, width)
}

/// 1000 points on two small rings around (2, 2) and (−2, −2).
fn synthetic() -> (Vec<f64>, usize) {
    let data = (0..1000)
        .flat_map(|i| {
            let centre = if i < 500 { 2.0 } else { -2.0 };
            let angle = f64::from(i) * 0.618 * std::f64::consts::TAU;
            [centre + 0.3 * angle.sin(), centre + 0.3 * (1.3 * angle).cos()]
        })
        .collect();
    (data, 2)
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Times one scorer: (batch µs per row, single-row µs).
fn time(scorer: &Scorer, batch: &[f64], out: &mut [f64], singles: &[&[f64]]) -> (f64, f64) {
    let start = Instant::now();
    (scorer.batch)(batch, out);
    let batch_us = start.elapsed().as_secs_f64() * 1e6 / out.len() as f64;
    let start = Instant::now();
    for row in singles {
        black_box((scorer.single)(black_box(row)));
    }
    (batch_us, start.elapsed().as_secs_f64() * 1e6 / singles.len() as f64)
}

struct Scorer<'a> {
    name: &'static str,
    batch: Box<dyn Fn(&[f64], &mut [f64]) + 'a>,
    single: Box<dyn Fn(&[f64]) -> f64 + 'a>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: iforest_ab ODDS_DIR [ROUNDS] [TABLES]");
    let rounds: usize = args.get(2).map_or(31, |r| r.parse().expect("rounds"));
    let tables = args.get(3).map_or("synthetic-2d,http,shuttle,satellite", String::as_str);
    println!("table\tscorer\tbatch_us_per_row\tsingle_us\tbatch_ratio [quartiles]\tsingle_ratio [quartiles]");
    for name in tables.split(',') {
        let (data, width) = match name {
            "synthetic-2d" => synthetic(),
            _ => read(&format!("{dir}/{name}.csv")),
        };
        let copies = 100_000usize.div_ceil(data.len() / width);
        let batch = data.repeat(copies);
        let base = base::IsolationForestParams::new().seed(1).fit(&data, width).unwrap();
        let fit = |check| {
            new::IsolationForestParams::new()
                .seed(1)
                .range_check(check)
                .fit(&data, width)
                .unwrap()
        };
        let (off, on) = (fit(new::RangeCheck::Off), fit(new::RangeCheck::On));
        let (base, off, on) = (&base, &off, &on);
        assert_eq!(
            base.score_batch(&batch).unwrap(),
            off.score_batch(&batch).unwrap(),
            "base and off score alike"
        );
        let scorers = [
            Scorer {
                name: "base",
                batch: Box::new(|d, o| base.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| base.score(r).unwrap()),
            },
            Scorer {
                name: "off",
                batch: Box::new(|d, o| off.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| off.score(r).unwrap()),
            },
            Scorer {
                name: "on",
                batch: Box::new(|d, o| on.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| on.score(r).unwrap()),
            },
        ];
        let mut out = vec![0.0; batch.len() / width];
        let singles: Vec<&[f64]> = data.chunks_exact(width).cycle().take(20_000).collect();
        // Per scorer: each round's (batch, single) timings.
        let mut timings = vec![Vec::new(); scorers.len()];
        for round in 0..rounds {
            for k in 0..scorers.len() {
                let which = (round + k) % scorers.len();
                timings[which].push(time(&scorers[which], &batch, &mut out, &singles));
            }
        }
        for (which, scorer) in scorers.iter().enumerate() {
            let reference = if which == 2 { 1 } else { 0 };
            let column = |pick: fn(&(f64, f64)) -> f64| {
                let mine: Vec<f64> = timings[which].iter().map(pick).collect();
                let ratios: Vec<f64> = timings[which]
                    .iter()
                    .zip(&timings[reference])
                    .map(|(a, b)| pick(a) / pick(b))
                    .collect();
                let ratio = format!(
                    "{:.3} [{:.3}, {:.3}]",
                    quantile(&ratios, 0.5),
                    quantile(&ratios, 0.25),
                    quantile(&ratios, 0.75)
                );
                (quantile(&mine, 0.5), ratio)
            };
            let (batch_us, batch_ratio) = column(|t| t.0);
            let (single_us, single_ratio) = column(|t| t.1);
            println!(
                "{name}\t{}\t{batch_us:.3}\t{single_us:.3}\t{batch_ratio}\t{single_ratio}",
                scorer.name
            );
        }
    }
}
