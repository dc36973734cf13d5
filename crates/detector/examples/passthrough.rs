//! The throughput baseline for the detector: a plain consumer → producer that forwards every
//! record unchanged (same key), with the detector's client settings and nothing else: no
//! decoding, no scoring, no per-batch waiting. The detector's target is a share of this rate
//! on the same broker.
//!
//! ```text
//! cargo run --release -p detector --example passthrough -- \
//!     --input-topic transactions --output-topic passthrough --group bench --idle-exit 3
//! ```
//!
//! Prints `passthrough: consumed=N seconds=S rate=R/s first_ms=A last_ms=B`, the rate over the
//! span from the first record read to the last one acknowledged, like the detector's summary.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::Parser;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer};
use rdkafka::util::Timeout;

/// Forward every record of one topic to another.
#[derive(Debug, Parser)]
struct Cli {
    #[arg(long)]
    input_topic: String,
    #[arg(long)]
    output_topic: String,
    #[arg(long, default_value = "passthrough")]
    group: String,
    /// Stop after this many seconds without a record (after the first).
    #[arg(long, default_value_t = 3.0)]
    idle_exit: f64,
    #[command(flatten)]
    kafka: bus::KafkaArgs,
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn run(cli: Cli) -> Result<()> {
    let kafka = cli.kafka.settings()?;
    let producer = kafka.future_producer(None)?;
    // A new idempotent producer gets its producer id from a timer (500 ms after it starts),
    // and records sent before then wait for it. The detector's start (broker check, model,
    // metadata) outlasts that; a bare pass-through can start reading sooner. So one warm-up
    // record (key `passthrough-warm-up`, matching no input key) is sent and acknowledged
    // before reading, and the span below measures forwarding only.
    producer
        .send(
            FutureRecord::to(&cli.output_topic)
                .key("passthrough-warm-up")
                .payload("{}"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .context("the warm-up record was not acknowledged")?;
    let consumer = kafka.stream_consumer(&cli.group, None)?;
    consumer
        .subscribe(&[&cli.input_topic])
        .context("subscribe")?;
    let idle = Duration::from_secs_f64(cli.idle_exit);
    let mut consumed = 0u64;
    let mut first_ms = 0;
    let mut last_record = std::time::Instant::now();
    // Acknowledgements are awaited beside the reading, in order, by their own task, which
    // notes when the last one came: the rate's span ends at the last acknowledgement, as the
    // detector's does, not at the pause that follows it.
    let (acks, mut pending) = tokio::sync::mpsc::unbounded_channel::<DeliveryFuture>();
    let acknowledger = tokio::spawn(async move {
        let mut last_ms = 0;
        while let Some(delivery) = pending.recv().await {
            delivery
                .await
                .context("producer gone")?
                .map_err(|(e, _)| e)?;
            last_ms = epoch_ms();
        }
        anyhow::Ok(last_ms)
    });
    loop {
        let message = match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        {
            Err(_) => {
                let limit = if consumed == 0 {
                    Duration::from_secs(60)
                } else {
                    idle
                };
                if last_record.elapsed() >= limit {
                    break;
                }
                continue;
            }
            Ok(Err(error)) => {
                log::warn!("consumer error: {error}");
                continue;
            }
            Ok(Ok(message)) => message,
        };
        if consumed == 0 {
            first_ms = epoch_ms();
        }
        consumed += 1;
        last_record = std::time::Instant::now();
        let record = FutureRecord::to(&cli.output_topic)
            .key(message.key().unwrap_or_default())
            .payload(message.payload().unwrap_or_default());
        match producer.send_result(record) {
            Ok(delivery) => acks
                .send(delivery)
                .map_err(|_| anyhow::anyhow!("the acknowledging task stopped"))?,
            Err((error, _)) => anyhow::bail!("cannot enqueue: {error}"),
        }
    }
    drop(acks);
    let last_ms = acknowledger
        .await
        .context("the acknowledging task panicked")??;
    producer.flush(Timeout::After(Duration::from_secs(10)))?;
    let seconds = last_ms.saturating_sub(first_ms) as f64 / 1000.0;
    println!(
        "passthrough: consumed={consumed} seconds={seconds:.3} rate={:.1}/s first_ms={first_ms} last_ms={last_ms}",
        consumed as f64 / seconds.max(1e-3)
    );
    Ok(())
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(Cli::parse()))
}
