//! The detector: a consumer-group member that scores every transaction with the Isolation
//! Forest and writes anomalies (and records it cannot use, as dead letters).
//!
//! Delivery is at-least-once, as rust-rdkafka's `at_least_once.rs`: offsets are stored
//! (`enable.auto.offset.store=false`) only after every output of a batch has been acknowledged
//! by the broker, and auto-commit commits what was stored. A batch is up to `--batch-size`
//! records, scored with one `score_batch` call; its outputs are all in flight at once.
//!
//! Layout: [`scoring`] is the pure part (records in, outputs and offsets out); [`run`] is the
//! Kafka loop around it.

pub mod reload;
pub mod scoring;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::util::Timeout;
use schema::DecodeLimits;

use scoring::{Destination, Incoming, Scorer};

/// Score transactions from Kafka and write the anomalies.
#[derive(Debug, Clone, Parser)]
#[command(name = "detector", version, about)]
pub struct Cli {
    /// Model file (written by `trainer fit`).
    #[arg(long, default_value = "models/model.bin", value_name = "FILE")]
    pub model: PathBuf,
    /// Consumer group: detectors in one group share the partitions.
    #[arg(long, default_value = schema::topics::DEFAULT_GROUP)]
    pub group: String,
    /// Topic of transactions to score.
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub input_topic: String,
    /// Topic the anomalies go to.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub output_topic: String,
    /// Topic the records that cannot be scored go to, with the reason.
    #[arg(long, default_value = schema::topics::DEAD_LETTERS)]
    pub dlq_topic: String,
    /// Most records scored together.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Longest wait, in milliseconds, for a batch to fill once its first record is in.
    #[arg(long, default_value_t = 5)]
    pub batch_wait_ms: u64,
    /// Records larger than this many bytes are dead letters.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_record_bytes: usize,
    /// Stop (cleanly) after this many records; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub max_records: u64,
    /// Stop (cleanly) after this many seconds without a record; 0 = never.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub idle_exit: f64,
    /// How long to keep retrying a broker that does not answer at start.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub startup_timeout: f64,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Records read.
    pub consumed: u64,
    /// Records scored.
    pub scored: u64,
    /// Anomalies written.
    pub anomalies: u64,
    /// Dead letters written.
    pub dead_letters: u64,
}

/// Runs until `shutdown` resolves (or a `--max-records` / `--idle-exit` limit), then stops
/// consuming, commits what was stored, and leaves the group.
pub async fn run(cli: &Cli, shutdown: impl Future<Output = ()>) -> Result<Stats> {
    if cli.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    // The model first: a bad model stops the detector before it touches Kafka.
    let (model, model_id) = Scorer::load_model(&cli.model)?;
    log::info!(
        "model {} ({}): {} trees, {} features, threshold {:.4}",
        model_id,
        cli.model.display(),
        model.n_trees(),
        model.n_features(),
        model.threshold()
    );
    let limits = DecodeLimits {
        max_bytes: cli.max_record_bytes,
        ..DecodeLimits::default()
    };
    let mut scorer = Scorer::new(model, model_id, limits, &cli.input_topic);
    let mut watcher = reload::ModelWatcher::new(&cli.model);

    log::info!("connecting: {}", cli.kafka.describe());
    let kafka = cli.kafka.clone();
    let startup_timeout = Duration::from_secs_f64(cli.startup_timeout.max(0.0));
    tokio::task::spawn_blocking(move || bus::wait_for_broker(&kafka, startup_timeout))
        .await
        .context("broker check failed")??;
    let producer = cli.kafka.future_producer()?;
    let consumer = cli.kafka.stream_consumer(&cli.group)?;
    consumer
        .subscribe(&[&cli.input_topic])
        .with_context(|| format!("cannot subscribe to {}", cli.input_topic))?;
    log::info!("consuming {} in group {}", cli.input_topic, cli.group);

    tokio::pin!(shutdown);
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut last_record = Instant::now();
    // Per partition, the next offset to read: what has been processed and acknowledged.
    let mut stored: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    // Wall-clock span of the work (first record in, last batch acknowledged), for rates.
    let mut first_record_at: Option<std::time::SystemTime> = None;
    let mut last_batch_done_at: Option<std::time::SystemTime> = None;
    let mut last_report = Instant::now();
    let batch_wait = Duration::from_millis(cli.batch_wait_ms);
    let idle_exit = (cli.idle_exit > 0.0).then(|| Duration::from_secs_f64(cli.idle_exit));
    'consume: loop {
        // Between batches: the only place the model may change.
        watcher.poll(&mut scorer);
        if cli.max_records > 0 && stats.consumed >= cli.max_records {
            log::info!("read {} records: stopping", stats.consumed);
            break;
        }
        // The first record of a batch: wait for it, a shutdown, or the idle limit.
        let first = tokio::select! {
            biased;
            () = &mut shutdown => { log::info!("shutdown requested"); break 'consume; }
            received = consumer.recv() => received,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(idle) = idle_exit {
                    // Before the first record, allow time to join the group too.
                    let limit = if stats.consumed == 0 { idle.max(Duration::from_secs(30)) } else { idle };
                    if last_record.elapsed() >= limit {
                        log::info!("no record for {:?}: stopping", last_record.elapsed());
                        break 'consume;
                    }
                }
                continue;
            }
        };
        let mut messages = Vec::with_capacity(cli.batch_size);
        match first {
            Ok(message) => messages.push(message),
            Err(error) => {
                log::warn!("consumer error: {error}");
                continue;
            }
        }
        let limit = if cli.max_records > 0 {
            cli.batch_size
                .min((cli.max_records - stats.consumed) as usize)
        } else {
            cli.batch_size
        };
        let deadline = tokio::time::Instant::now() + batch_wait;
        while messages.len() < limit {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => messages.push(message),
                Ok(Err(error)) => log::warn!("consumer error: {error}"),
                Err(_) => break,
            }
        }
        last_record = Instant::now();
        first_record_at.get_or_insert_with(std::time::SystemTime::now);

        let batch: Vec<Incoming> = messages
            .iter()
            .map(|m| Incoming {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key(),
                payload: m.payload(),
            })
            .collect();
        let outcome = scorer.process(&batch);
        let deliveries = outcome.outputs.iter().map(|output| {
            let topic = match output.destination {
                Destination::Anomalies => &cli.output_topic,
                Destination::DeadLetters => &cli.dlq_topic,
            };
            producer.send(
                FutureRecord::to(topic)
                    .key(&output.key)
                    .payload(&output.payload),
                Timeout::Never,
            )
        });
        for delivery in join_all(deliveries).await {
            if let Err((error, _)) = delivery {
                // The batch's offsets are not stored: a restart re-reads it (at-least-once).
                bail!("an output was not delivered ({error}); stopping without storing offsets");
            }
        }
        for (&partition, &offset) in &outcome.last_offsets {
            // Stores offset + 1. A partition revoked meanwhile refuses; its new owner re-reads.
            match consumer.store_offset(&cli.input_topic, partition, offset) {
                Ok(()) => {
                    stored.insert(partition, offset + 1);
                }
                Err(error) => {
                    log::warn!("cannot store offset {offset} of partition {partition}: {error}")
                }
            }
        }
        last_batch_done_at = Some(std::time::SystemTime::now());
        stats.consumed += messages.len() as u64;
        stats.scored += outcome.scored;
        stats.anomalies += outcome.anomalies;
        stats.dead_letters += outcome.dead_letters;
        if last_report.elapsed() >= Duration::from_secs(5) {
            let seconds = started.elapsed().as_secs_f64();
            log::info!(
                "consumed={} anomalies={} dead_letters={} ({:.0}/s)",
                stats.consumed,
                stats.anomalies,
                stats.dead_letters,
                stats.consumed as f64 / seconds
            );
            last_report = Instant::now();
        }
    }

    // Everything consumed was processed and acknowledged, and its offsets stored: commit them
    // now rather than waiting for the next auto-commit, then leave the group.
    if let Err(error) = producer.flush(Timeout::After(Duration::from_secs(10))) {
        log::warn!("flush: {error}");
    }
    commit_processed(&consumer, &cli.input_topic, &stored);
    consumer.unsubscribe();
    drop(consumer);
    let epoch_ms = |time: Option<std::time::SystemTime>| {
        time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis())
    };
    let (first_ms, last_ms) = (epoch_ms(first_record_at), epoch_ms(last_batch_done_at));
    // The rate counts the time spent working: first record in to last batch acknowledged.
    let seconds = last_ms.saturating_sub(first_ms) as f64 / 1000.0;
    println!(
        "detector: consumed={} scored={} anomalies={} dead_letters={} seconds={seconds:.3} \
         rate={:.1}/s first_ms={first_ms} last_ms={last_ms}",
        stats.consumed,
        stats.scored,
        stats.anomalies,
        stats.dead_letters,
        stats.consumed as f64 / seconds.max(1e-3)
    );
    Ok(stats)
}

/// Commits, synchronously, the offsets this detector stored (processed and acknowledged) for
/// the partitions it still owns. Not `commit_consumer_state`: that commits the consumer's
/// position, which can run ahead of what was processed.
fn commit_processed(
    consumer: &bus::LoggingConsumer,
    topic: &str,
    stored: &std::collections::BTreeMap<i32, i64>,
) {
    let owned = consumer.assignment().unwrap_or_default();
    let mut offsets = rdkafka::TopicPartitionList::new();
    for (&partition, &next) in stored {
        if owned.find_partition(topic, partition).is_some() {
            if let Err(error) =
                offsets.add_partition_offset(topic, partition, rdkafka::Offset::Offset(next))
            {
                log::warn!("cannot commit partition {partition}: {error}");
            }
        }
    }
    if offsets.count() == 0 {
        return;
    }
    match consumer.commit(&offsets, CommitMode::Sync) {
        Ok(()) => log::info!("committed {}", bus::describe_partitions(&offsets)),
        Err(error) => log::warn!("final commit failed: {error}"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => {
            log::warn!("cannot listen for SIGTERM; only Ctrl-C stops the detector");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
