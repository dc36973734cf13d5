//! The generator: produces transactions into Kafka, either the original pipeline's synthetic
//! stream (seeded, so tests know every record in advance) or a replayed CSV table with its
//! labels. Records are keyed by id and sent asynchronously in batches; deliveries are counted
//! from the broker's acknowledgements.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use chrono::Utc;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use schema::Transaction;

/// Produce transactions into Kafka.
#[derive(Debug, Parser)]
#[command(name = "generator", version, about)]
pub struct Cli {
    /// Records to send; 0 = until stopped.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Records per second; 0 = as fast as the broker takes them.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Share of synthetic records drawn as outliers, uniform in [−4, 4]².
    #[arg(long, default_value_t = 0.7)]
    pub outlier_probability: f64,
    /// Random seed: the same seed gives the same records.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Id of the first record; the next ones count up.
    #[arg(long, default_value_t = 0)]
    pub first_id: i64,
    /// Replay this CSV table (header line, numeric columns) instead of the synthetic stream.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Column of the CSV holding 0/1 labels; sent as the record's `label`.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// Topic to write to.
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub topic: String,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}

/// The original pipeline's synthetic stream: with probability `outlier_probability` a point
/// uniform in [−4, 4]², otherwise 0.3·N(0, 1) around (2, 2) or (−2, −2) with equal chance;
/// rounded to 3 decimals. Ids count up from `first_id`; `count` 0 = without end.
pub fn synthetic_records(
    seed: u64,
    outlier_probability: f64,
    first_id: i64,
    count: u64,
) -> impl Iterator<Item = Transaction> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let round3 = |value: f64| (value * 1000.0).round() / 1000.0;
    let ids = first_id..;
    let ids: Box<dyn Iterator<Item = i64>> = if count == 0 {
        Box::new(ids)
    } else {
        Box::new(ids.take(count as usize))
    };
    ids.map(move |id| {
        let point = if rng.random::<f64>() < outlier_probability {
            [rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0)]
        } else {
            let centre = if rng.random::<bool>() { 2.0 } else { -2.0 };
            let mut normal = || -> f64 { rng.sample(StandardNormal) };
            [centre + 0.3 * normal(), centre + 0.3 * normal()]
        };
        Transaction::new(id, point.map(round3).to_vec(), Utc::now().naive_utc())
    })
}

/// The rows of a CSV table as transactions, ids counting up from `first_id`, labels from
/// `label_column`.
pub fn csv_records(
    path: &std::path::Path,
    label_column: Option<&str>,
    first_id: i64,
) -> Result<Vec<Transaction>> {
    let selection = trainer::data::CsvSelection {
        label_column,
        columns: None,
    };
    let table = trainer::data::read_csv(path, &selection)?;
    let now = Utc::now().naive_utc();
    Ok((0..table.rows())
        .map(|row| {
            let transaction = Transaction::new(first_id + row as i64, table.row(row).to_vec(), now);
            match &table.labels {
                Some(labels) => transaction.with_label(labels[row]),
                None => transaction,
            }
        })
        .collect())
}

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Records handed to the producer.
    pub sent: u64,
    /// Records the broker acknowledged.
    pub acknowledged: u64,
    /// Records that could not be delivered.
    pub failed: u64,
}

/// Counts deliveries as the broker acknowledges them.
#[derive(Clone, Default)]
struct DeliveryCounter {
    acknowledged: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => self.acknowledged.fetch_add(1, Ordering::Relaxed),
            Err((error, _)) => {
                log::error!("delivery failed: {error}");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Sends the records the arguments describe; stops early on SIGINT or SIGTERM.
pub fn run(cli: &Cli) -> Result<Summary> {
    if !(0.0..=1.0).contains(&cli.outlier_probability) {
        bail!(
            "--outlier-probability must be in [0, 1], not {}",
            cli.outlier_probability
        );
    }
    if !(cli.rate >= 0.0 && cli.rate.is_finite()) {
        bail!(
            "--rate must be 0 or more records per second, not {}",
            cli.rate
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let (records, total): (Box<dyn Iterator<Item = Transaction>>, u64) = match &cli.csv {
        Some(path) => {
            let rows = csv_records(path, cli.label_column.as_deref(), cli.first_id)?;
            let total = if cli.count == 0 {
                rows.len() as u64
            } else {
                cli.count.min(rows.len() as u64)
            };
            (Box::new(rows.into_iter().take(total as usize)), total)
        }
        None => (
            Box::new(synthetic_records(
                cli.seed,
                cli.outlier_probability,
                cli.first_id,
                cli.count,
            )),
            cli.count,
        ),
    };
    log::info!("producing to {} on {}", cli.topic, cli.kafka.describe());
    let counter = DeliveryCounter::default();
    let config = cli.kafka.producer_config()?;
    let producer: ThreadedProducer<DeliveryCounter> =
        config
            .create_with_context(counter.clone())
            .context("cannot create the Kafka producer")?;

    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("sending");
    let started = Instant::now();
    let mut sent = 0u64;
    for transaction in records {
        if stop.load(Ordering::Relaxed) {
            log::info!("stopping on signal");
            break;
        }
        if cli.rate > 0.0 {
            // A schedule, not a sleep per record: record n is due at n / rate.
            let due = started + Duration::from_secs_f64(sent as f64 / cli.rate);
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
        let key = transaction.key();
        let payload = transaction.encode();
        let mut record = BaseRecord::to(&cli.topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => bail!("cannot send record {key}: {error}"),
            }
        }
        sent += 1;
        if sent % 1024 == 0 {
            bar.set_position(sent);
        }
    }
    bar.finish_and_clear();
    producer
        .flush(Duration::from_secs(60))
        .context("cannot flush the producer")?;
    let summary = Summary {
        sent,
        acknowledged: counter.acknowledged.load(Ordering::Relaxed),
        failed: counter.failed.load(Ordering::Relaxed),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "generator: sent={} acknowledged={} failed={} seconds={seconds:.1} rate={:.1}/s",
        summary.sent,
        summary.acknowledged,
        summary.failed,
        summary.sent as f64 / seconds.max(1e-9)
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_stream_repeats_per_seed_and_has_the_original_shape() {
        let first: Vec<Transaction> = synthetic_records(5, 0.7, 10, 2000).collect();
        let again: Vec<Transaction> = synthetic_records(5, 0.7, 10, 2000).collect();
        let features = |records: &[Transaction]| {
            records
                .iter()
                .map(|t| t.features.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(features(&first), features(&again));
        assert_ne!(
            features(&first),
            features(&synthetic_records(6, 0.7, 10, 2000).collect::<Vec<_>>())
        );
        assert_eq!(first[0].key(), "10");
        assert_eq!(first.last().unwrap().key(), "2009");
        let near = |t: &&Transaction, c: f64| (t.features[0] - c).hypot(t.features[1] - c) < 1.0;
        let near_a_centre = first
            .iter()
            .filter(|t| near(t, 2.0) || near(t, -2.0))
            .count();
        // 30% cluster points, plus the 70% uniform outliers that land within 1 of a centre
        // (2π/64 of them): about 37% of 2000.
        assert!((650..830).contains(&near_a_centre), "{near_a_centre}");
        for t in &first {
            assert!(t
                .features
                .iter()
                .all(|v| (-4.0..=4.0).contains(v) || v.abs() < 4.5));
            assert!(t
                .features
                .iter()
                .all(|v| ((v * 1000.0).round() - v * 1000.0).abs() < 1e-6));
        }
        assert_eq!(
            synthetic_records(1, 0.0, 0, 0).take(5).count(),
            5,
            "count 0 = without end"
        );
    }
}
