//! Range-aware isolation on an event table: trained on one part of a synthetic stream of
//! payments, scored on the next, with and without the range check; precision and recall at
//! the same flagged share.
//!
//! `cargo run --release -p iforest --example events -- [--seeds N] [--rows N]`
//!
//! Five named features per event: `amount_log` (ln of the amount, drawn per category),
//! `category_share` (the share of the event's category in the training part; 0 for a category
//! never seen), `hour` (8–20 h, peaked at 14 h), `events_last_hour` (Poisson, mean 2) and
//! `account_age_log` (ln of days, log-uniform over 30–3000).
//!
//! The training part holds `--rows` events (default 20 000), 0.5 % of them anomalies of the
//! in-range kind below; the scored part holds as many events, 1 % anomalies, a quarter of each
//! kind:
//! - `new_category`: a category never seen (share 0), a plausible amount;
//! - `night`: an hour between 0 and 5;
//! - `huge_amount`: ln(amount) 1 to 3 above the largest in training;
//! - `mismatch`: the most common (cheap) category with an amount typical of the dearest one,
//!   every value inside the training range (what a range check cannot see).
//!
//! The data are the same for every run (seed 2024); forests use seeds 0..N (default 5). The
//! output gives, per mode, the mean over seeds of precision and recall when the top 0.5 %
//! and 1 % of scores are flagged, the recall of each kind at 1 %, and the ROC AUC.

#[allow(dead_code)]
mod common;

use iforest::{IsolationForestParams, RangeCheck};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const NAMES: [&str; 5] = [
    "amount_log",
    "category_share",
    "hour",
    "events_last_hour",
    "account_age_log",
];
const KINDS: [&str; 4] = ["new_category", "night", "huge_amount", "mismatch"];
const CATEGORIES: usize = 16;

/// The stream's fixed parameters: category shares and typical amounts.
struct Stream {
    share: [f64; CATEGORIES],
    mean_log: [f64; CATEGORIES],
    sd_log: [f64; CATEGORIES],
}

impl Stream {
    fn new() -> Self {
        let weights: Vec<f64> = (0..CATEGORIES)
            .map(|k| 1.0 / (k as f64 + 1.0).powf(1.1))
            .collect();
        let total: f64 = weights.iter().sum();
        Stream {
            share: std::array::from_fn(|k| weights[k] / total),
            // The most common category is the cheapest; the others are spread over 2..6.
            mean_log: std::array::from_fn(|k| 2.0 + 4.0 * ((k * 7) % CATEGORIES) as f64 / 15.0),
            sd_log: std::array::from_fn(|k| 0.4 + 0.2 * (k % 3) as f64),
        }
    }

    fn category(&self, rng: &mut ChaCha8Rng) -> usize {
        let mut draw: f64 = rng.random();
        for (k, share) in self.share.iter().enumerate() {
            draw -= share;
            if draw < 0.0 {
                return k;
            }
        }
        CATEGORIES - 1
    }

    /// A normal event.
    fn event(&self, rng: &mut ChaCha8Rng) -> [f64; 5] {
        let k = self.category(rng);
        let noise: f64 = rng.sample(StandardNormal);
        let hour = 8.0 + 12.0 * (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
        [
            self.mean_log[k] + self.sd_log[k] * noise,
            self.share[k],
            hour,
            poisson(rng, 2.0),
            rng.random_range(30f64.ln()..3000f64.ln()),
        ]
    }

    /// An anomaly of kind `kind` (an index into `KINDS`); `max_amount_log` is the training
    /// part's largest.
    fn anomaly(&self, rng: &mut ChaCha8Rng, kind: usize, max_amount_log: f64) -> [f64; 5] {
        let mut event = self.event(rng);
        match kind {
            0 => {
                let noise: f64 = rng.sample(StandardNormal);
                event[0] = 4.0 + 0.5 * noise;
                event[1] = 0.0;
            }
            1 => event[2] = rng.random_range(0.0..5.0),
            2 => event[0] = max_amount_log + rng.random_range(1.0..3.0),
            _ => {
                let dearest = (0..CATEGORIES)
                    .max_by(|&a, &b| self.mean_log[a].total_cmp(&self.mean_log[b]))
                    .unwrap_or(0);
                let noise: f64 = rng.sample(StandardNormal);
                event[0] = self.mean_log[dearest] + self.sd_log[dearest] * noise;
                event[1] = self.share[0];
            }
        }
        event
    }
}

/// Knuth's Poisson sampler (small means).
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut count = 0.0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1.0;
    }
    count
}

/// Training rows, then scored rows with each row's anomaly kind (`None`: normal).
fn stream(rows: usize) -> (Vec<f64>, Vec<f64>, Vec<Option<usize>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let source = Stream::new();
    let mut training = Vec::with_capacity(rows * 5);
    for i in 0..rows {
        // One training event in 200 is an in-range anomaly.
        let event = if i % 200 == 199 {
            source.anomaly(&mut rng, 3, 0.0)
        } else {
            source.event(&mut rng)
        };
        training.extend_from_slice(&event);
    }
    let max_amount_log = training
        .chunks_exact(5)
        .map(|row| row[0])
        .fold(f64::MIN, f64::max);
    let mut scored = Vec::with_capacity(rows * 5);
    let mut kinds = Vec::with_capacity(rows);
    for i in 0..rows {
        // One scored event in 100 is an anomaly, the kinds in turn.
        if i % 100 == 99 {
            let kind = (i / 100) % KINDS.len();
            scored.extend_from_slice(&source.anomaly(&mut rng, kind, max_amount_log));
            kinds.push(Some(kind));
        } else {
            scored.extend_from_slice(&source.event(&mut rng));
            kinds.push(None);
        }
    }
    (training, scored, kinds)
}

/// Precision and recall when the `flagged` highest scores are flagged, and the recall of
/// each kind.
fn flag(scores: &[f64], kinds: &[Option<usize>], flagged: usize) -> (f64, f64, [f64; 4]) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut caught = [0usize; 4];
    for &row in &order[..flagged] {
        if let Some(kind) = kinds[row] {
            caught[kind] += 1;
        }
    }
    let mut present = [0usize; 4];
    for kind in kinds.iter().flatten() {
        present[*kind] += 1;
    }
    let hits: usize = caught.iter().sum();
    let anomalies: usize = present.iter().sum();
    let per_kind = std::array::from_fn(|k| caught[k] as f64 / present[k].max(1) as f64);
    (
        hits as f64 / flagged as f64,
        hits as f64 / anomalies as f64,
        per_kind,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut option = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(at) => {
                let value = args
                    .get(at + 1)
                    .ok_or(format!("{name} needs a number"))?
                    .parse()?;
                args.drain(at..at + 2);
                Ok(value)
            }
            None => Ok(default),
        }
    };
    let seeds = option("--seeds", 5)? as u64;
    let rows = option("--rows", 20_000)?;
    let (training, scored, kinds) = stream(rows);
    let labels: Vec<u8> = kinds.iter().map(|kind| u8::from(kind.is_some())).collect();
    let anomalies = labels.iter().filter(|&&label| label == 1).count();
    println!(
        "{rows} training events, {rows} scored ({anomalies} anomalies), mean over seeds 0..{seeds}"
    );
    println!(
        "range_check\tflagged\tprecision\trecall\t{}\tauc",
        KINDS.map(|kind| format!("recall_{kind}")).join("\t")
    );
    for check in [RangeCheck::Off, RangeCheck::On] {
        for share in [0.005, 0.01] {
            let flagged = (share * scored.len() as f64 / 5.0).round() as usize;
            let (mut precision, mut recall, mut per_kind, mut auc) = (0.0, 0.0, [0.0; 4], 0.0);
            for seed in 0..seeds {
                let model = IsolationForestParams::new()
                    .seed(seed)
                    .range_check(check)
                    .feature_names(NAMES.map(String::from).to_vec())
                    .fit(&training, NAMES.len())?;
                let scores = model.score_batch(&scored)?;
                let (p, r, k) = flag(&scores, &kinds, flagged);
                precision += p;
                recall += r;
                for (total, value) in per_kind.iter_mut().zip(k) {
                    *total += value;
                }
                auc += common::roc_auc(&scores, &labels);
            }
            let n = seeds as f64;
            println!(
                "{check}\t{:.1}%\t{:.3}\t{:.3}\t{}\t{:.4}",
                share * 100.0,
                precision / n,
                recall / n,
                per_kind.map(|r| format!("{:.2}", r / n)).join("\t"),
                auc / n
            );
        }
    }
    Ok(())
}
