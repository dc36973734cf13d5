//! Restore time of one changelog partition holding KEYS keys with values of VALUE_BYTES bytes
//! (one record per key, as a compacted changelog holds them), the median of RUNS restores,
//! and the bytes a consumer receives per key on the wire reading it.
//!
//! ```sh
//! # a broker at $KAFKA_BOOTSTRAP (default 127.0.0.1:9092)
//! cargo run --release -p bus --example changelog_restore -- --keys 1000000 --runs 5
//! # librdkafka's mock cluster, in process (it keeps about the newest 5 MB of a partition)
//! cargo run --release -p bus --example changelog_restore -- --mock --keys 50000 --runs 5
//! ```
//!
//! Prints a table row per fetch size (`--fetch-bytes 1048576,8388608` compares them in the
//! same run): the broker, keys, the partition's watermarks, the write time, each restore's
//! time, the median, keys restored per second, payload bytes per key and bytes received on
//! the wire per key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::changelog::{self, Update};
use bus::ClientSettings;
use clap::Parser;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

#[derive(Debug, Parser)]
struct Args {
    /// Keys in the partition.
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Bytes of each value.
    #[arg(long, default_value_t = 60)]
    value_bytes: usize,
    /// Restores timed.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// librdkafka's in-process mock cluster instead of $KAFKA_BOOTSTRAP.
    #[arg(long)]
    mock: bool,
    /// Client settings for the restore and the wire count (e.g. fetch.wait.max.ms=100).
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// `max.partition.fetch.bytes` values to compare, each restored RUNS times in turn
    /// (default: the restore's own).
    #[arg(long, value_delimiter = ',', value_name = "BYTES,...")]
    fetch_bytes: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mock = if args.mock {
        Some(MockCluster::new(1)?)
    } else {
        None
    };
    let (brokers, label) = match &mock {
        Some(cluster) => (cluster.bootstrap_servers(), "mock".to_string()),
        None => {
            let brokers = std::env::var(bus::settings::BOOTSTRAP_ENV)
                .unwrap_or_else(|_| bus::settings::DEFAULT_BROKERS.to_string());
            (brokers.clone(), brokers)
        }
    };
    let writer = ClientSettings::new(&brokers);
    let mut reader = writer.clone();
    for setting in &args.settings {
        let (key, value) = setting.split_once('=').ok_or("-X takes key=value")?;
        reader = reader.with(key, value);
    }
    bus::wait_for_broker(&writer, Duration::from_secs(15))?;

    let input = format!("restore-bench-{}", std::process::id());
    let topic = changelog::topic_name("bench", &input)?;
    match &mock {
        Some(cluster) => {
            cluster.create_topic(&input, 1, 1)?;
            cluster.create_topic(&topic, 1, 1)?;
        }
        None => bus::ensure_topics(&writer, &[(&input, 1)]).await?,
    }
    changelog::ensure(&writer, "bench", &input, 1).await?;

    let started = Instant::now();
    write_states(&writer, &topic, args.keys, args.value_bytes).await?;
    let write_time = started.elapsed();

    // Each run restores once with each fetch size, in turn, so the sizes share the machine's
    // moments.
    let sizes: Vec<Option<&str>> = if args.fetch_bytes.is_empty() {
        vec![None]
    } else {
        args.fetch_bytes
            .iter()
            .map(|size| Some(size.as_str()))
            .collect()
    };
    let mut times = vec![Vec::new(); sizes.len()];
    let mut last = None;
    for _ in 0..args.runs {
        for (size, times) in sizes.iter().zip(&mut times) {
            let settings = match size {
                Some(size) => reader.clone().with("max.partition.fetch.bytes", *size),
                None => reader.clone(),
            };
            let restored = changelog::restore(&settings, &topic, 0, std::future::pending()).await?;
            times.push(restored.stats.elapsed.as_secs_f64());
            eprintln!(
                "fetch bytes {}: {}",
                size.unwrap_or("default"),
                restored.stats
            );
            last = Some(restored.stats);
        }
    }
    let stats = last.ok_or("--runs must be at least 1")?;
    let wire = wire_bytes(&reader, &topic, stats.high)?;
    println!(
        "| broker | fetch bytes | keys | low | high | write s | restores s | median s | keys/s | payload B/key | wire B/key |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for (size, times) in sizes.iter().zip(&times) {
        let median = median(&mut times.clone());
        let runs: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "| {label} | {} | {} | {} | {} | {:.1} | {} | {median:.2} | {:.0} | {:.1} | {:.1} |",
            size.unwrap_or("default"),
            stats.keys,
            stats.low,
            stats.high,
            write_time.as_secs_f64(),
            runs.join(" "),
            stats.keys as f64 / median,
            stats.bytes_read as f64 / stats.records.max(1) as f64,
            wire as f64 / stats.records.max(1) as f64,
        );
    }
    Ok(())
}

/// One update per key, `key-<n>` → `value_bytes` bytes, in batches of 100,000.
async fn write_states(
    settings: &ClientSettings,
    topic: &str,
    keys: usize,
    value_bytes: usize,
) -> bus::Result<()> {
    let producer = settings.future_producer(None)?;
    const BATCH: usize = 100_000;
    for start in (0..keys).step_by(BATCH) {
        let end = (start + BATCH).min(keys);
        let names: Vec<Vec<u8>> = (start..end)
            .map(|k| format!("key-{k}").into_bytes())
            .collect();
        // Distinct, not very compressible values, like encoded floating-point state.
        let values: Vec<Vec<u8>> = (start..end)
            .map(|k| {
                (0..value_bytes)
                    .map(|i| {
                        (k as u64)
                            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                            .rotate_left(i as u32) as u8
                    })
                    .collect()
            })
            .collect();
        let updates: Vec<Update<'_>> = names
            .iter()
            .zip(&values)
            .map(|(key, value)| Update::put(0, key, value))
            .collect();
        changelog::write(&producer, topic, &updates).await?;
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// librdkafka's count of bytes received from the brokers.
#[derive(Clone, Default)]
struct Received {
    bytes: Arc<AtomicU64>,
    reports: Arc<AtomicU64>,
}

impl ClientContext for Received {
    fn stats(&self, statistics: Statistics) {
        let bytes = statistics
            .brokers
            .values()
            .map(|broker| broker.rxbytes)
            .sum();
        self.bytes.store(bytes, Ordering::Relaxed);
        self.reports.fetch_add(1, Ordering::Relaxed);
    }
}

impl ConsumerContext for Received {}

/// Bytes received on the wire by a consumer with the restore's fetch settings reading the
/// partition from its beginning to `high`.
fn wire_bytes(
    settings: &ClientSettings,
    topic: &str,
    high: i64,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut config = settings.client_config();
    config
        .set("group.id", "restore-bench")
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "100");
    let context = Received::default();
    let consumer: BaseConsumer<Received> = config.create_with_context(context.clone())?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut at = 0;
    while at < high {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            at = message?.offset() + 1;
        }
    }
    // A report made after the last fetch.
    let seen = context.reports.load(Ordering::Relaxed);
    while context.reports.load(Ordering::Relaxed) < seen + 2 {
        consumer.poll(Duration::from_millis(50));
    }
    Ok(context.bytes.load(Ordering::Relaxed))
}
