//! How fast one group member only reads a topic, with the detector's consumer settings and
//! nothing else: no decoding, no producing. Beside `passthrough`, it tells the consumer's
//! share of a pipeline's pace from the rest.
//!
//! ```text
//! cargo run --release -p detector --example read_rate -- --topic transactions \
//!     --group read-rate-1 --count 200000 [--poll]
//! ```
//!
//! `--poll` reads with `BaseConsumer::poll` on this thread instead of `StreamConsumer::recv`.
//! Prints `read_rate: reader=stream|poll records=N seconds=S rate=R/s`, timed from the first
//! record to the `--count`th.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::ClientConfig;

/// Read a topic's first records as a new group member.
#[derive(Debug, Parser)]
struct Cli {
    #[arg(long)]
    topic: String,
    /// A new group, so that the topic is read from its start.
    #[arg(long)]
    group: String,
    /// Records to read.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Read with `BaseConsumer::poll` rather than `StreamConsumer::recv`.
    #[arg(long)]
    poll: bool,
    #[command(flatten)]
    kafka: bus::KafkaArgs,
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let config: ClientConfig = cli.kafka.settings()?.consumer_config(&cli.group, None)?;
    let (mut read, mut started) = (0u64, None);
    if cli.poll {
        let consumer: BaseConsumer = config.create().context("consumer")?;
        consumer.subscribe(&[&cli.topic]).context("subscribe")?;
        while read < cli.count {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                message.context("reading")?;
                started.get_or_insert_with(Instant::now);
                read += 1;
            }
        }
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let consumer: StreamConsumer = config.create().context("consumer")?;
            consumer.subscribe(&[&cli.topic]).context("subscribe")?;
            while read < cli.count {
                consumer.recv().await.context("reading")?;
                started.get_or_insert_with(Instant::now);
                read += 1;
            }
            anyhow::Ok(())
        })?;
    }
    let seconds = started.map_or(0.0, |start| start.elapsed().as_secs_f64());
    println!(
        "read_rate: reader={} records={read} seconds={seconds:.3} rate={:.0}/s",
        if cli.poll { "poll" } else { "stream" },
        read as f64 / seconds.max(1e-6)
    );
    Ok(())
}
