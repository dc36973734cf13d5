//! The Kafka loop around the [`Scorer`]: read a batch, score it, send its outputs, and store
//! its offsets once the broker has acknowledged every output (at-least-once, as
//! rust-rdkafka's `at_least_once.rs`, with `enable.auto.offset.store=false` and auto-commit
//! committing what was stored).
//!
//! Batches are pipelined: while the outputs of up to `in_flight_batches` batches await their
//! acknowledgements, the next batch is read and scored. Offsets are stored oldest batch first,
//! so a partition's stored offset only ever covers records whose outputs (and those of every
//! record before them) are acknowledged. Records are processed in order per partition.
//!
//! A delivery that fails (librdkafka has already retried it) stops the detector with an error
//! and without storing that batch's offsets or any later batch's: a restart re-reads them.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use futures::channel::oneshot::Canceled;
use futures::future::{join_all, JoinAll};
use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use crate::config::{Config, Topics};
use crate::reload::ModelWatcher;
use crate::scoring::{BatchOutcome, Destination, Incoming, Output, Scorer};

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

impl Stats {
    fn add(&mut self, records: usize, outcome: &BatchOutcome) {
        self.consumed += records as u64;
        self.scored += outcome.scored;
        self.anomalies += outcome.anomalies;
        self.dead_letters += outcome.dead_letters;
    }
}

/// Why the loop ended (all of them end cleanly).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--max-records` reached.
    MaxRecords(u64),
    /// `--idle-exit`: nothing arrived for this long.
    Idle(Duration),
}

/// How often the loop wakes up without records (model file check, idle limit).
const TICK: Duration = Duration::from_millis(500);
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Before the first record, `--idle-exit` waits at least this long (joining a group).
const FIRST_RECORD_GRACE: Duration = Duration::from_secs(30);

/// Runs until `shutdown` resolves (or a `--max-records` / `--idle-exit` limit), then stops
/// consuming, waits for the outputs in flight, stores and commits their offsets, flushes,
/// leaves the group and prints one summary line.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Stats> {
    // Watch the model file from now: a model replaced while the broker is awaited is seen.
    let mut watcher = ModelWatcher::new(&config.model_path);
    let forest = &config.model.forest;
    log::info!(
        "model {} ({}): {} trees, {} features, threshold {:.4}",
        config.model.id,
        config.model_path.display(),
        forest.n_trees(),
        forest.n_features(),
        forest.threshold()
    );
    log::info!(
        "reading {} in group {}; anomalies to {}, dead letters to {}; batches of up to {} \
         records or {:?}, {} in flight",
        config.topics.input,
        config.group,
        config.topics.output,
        config.topics.dead_letters,
        config.batch_size,
        config.batch_wait,
        config.in_flight_batches
    );
    log::info!("connecting: {}", config.kafka.describe());
    let kafka = config.kafka.clone();
    let startup_timeout = config.startup_timeout;
    tokio::task::spawn_blocking(move || bus::wait_for_broker(&kafka, startup_timeout))
        .await
        .context("broker check failed")??;
    let producer = config.producer()?;
    warm_up(&producer, &config.topics).await;
    let consumer = config.consumer()?;

    let Config {
        model,
        topics,
        limits,
        ..
    } = config;
    let mut scorer = Scorer::new(model, limits, &topics.input);
    let mut pending = Pending::new(&consumer, &topics.input);
    let mut progress = Progress::new();
    let mut stats = Stats::default();
    let mut first_record_at: Option<SystemTime> = None;
    let mut last_record = Instant::now();
    tokio::pin!(shutdown);

    let stop = loop {
        // Between batches: the only place the model may change.
        watcher.poll(&mut scorer);
        pending.store_acknowledged()?;
        if let Some(max) = config.max_records.filter(|&max| stats.consumed >= max) {
            break Stop::MaxRecords(max);
        }
        // The first record of a batch: wait for it, an acknowledgement, a shutdown or a tick.
        let first = tokio::select! {
            biased;
            () = &mut shutdown => break Stop::Signal,
            acknowledged = pending.next() => {
                acknowledged?;
                continue;
            }
            received = consumer.recv() => received,
            () = tokio::time::sleep(TICK) => {
                if let Some(idle) = config.idle_exit {
                    let limit = if first_record_at.is_none() { idle.max(FIRST_RECORD_GRACE) } else { idle };
                    if last_record.elapsed() >= limit {
                        break Stop::Idle(last_record.elapsed());
                    }
                }
                continue;
            }
        };
        let batch_started = Instant::now();
        let limit = config.max_records.map_or(config.batch_size, |max| {
            config
                .batch_size
                .min(usize::try_from(max - stats.consumed).unwrap_or(usize::MAX))
        });
        let mut messages = Vec::with_capacity(limit);
        match first {
            Ok(message) => messages.push(message),
            Err(error) => {
                consumer_error(error)?;
                continue;
            }
        }
        // The rest of the batch: what is there now, or arrives before the deadline.
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while messages.len() < limit {
            let next = match consumer.recv().now_or_never() {
                Some(next) => next,
                None => match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            match next {
                Ok(message) => messages.push(message),
                Err(error) => consumer_error(error)?,
            }
        }
        let read_at = Instant::now();
        first_record_at.get_or_insert_with(SystemTime::now);

        let batch: Vec<Incoming> = messages
            .iter()
            .map(|m| Incoming {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key(),
                payload: m.payload(),
            })
            .collect();
        let outcome = scorer
            .process(&batch)
            .context("scoring a checked batch failed; its offsets are not stored")?;
        stats.add(batch.len(), &outcome);
        let deliveries = send(&producer, &topics, &outcome.outputs, &mut pending).await?;
        pending.push(InFlight {
            deliveries: join_all(deliveries),
            offsets: outcome.last_offsets,
        });
        let sent_at = Instant::now();
        while pending.len() > config.in_flight_batches {
            pending.next().await?;
        }
        log::debug!(
            "batch of {} read in {:.1?} (idle {:.1?} before), scored and sent in {:.1?}, \
             waited {:.1?} for older batches",
            batch.len(),
            read_at - batch_started,
            batch_started - last_record,
            sent_at - read_at,
            sent_at.elapsed()
        );
        last_record = read_at;
        progress.tick(&stats, pending.len());
    };

    match stop {
        Stop::Signal => log::info!("shutdown requested: stopping"),
        Stop::MaxRecords(max) => log::info!("read {max} records: stopping"),
        Stop::Idle(idle) => log::info!("no record for {idle:.1?}: stopping"),
    }
    // Every output acknowledged and its offsets stored, then committed now rather than at the
    // next auto-commit; then leave the group.
    pending.drain().await?;
    let last_acknowledged_at = pending.last_acknowledged_at;
    drop(pending);
    if let Err(error) = producer.flush(Timeout::After(Duration::from_secs(10))) {
        log::warn!("flush: {error}");
    }
    commit(&consumer);
    consumer.unsubscribe();
    drop(consumer);

    let epoch_ms = |time: Option<SystemTime>| {
        time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis())
    };
    let (first_ms, last_ms) = (epoch_ms(first_record_at), epoch_ms(last_acknowledged_at));
    // The rate counts the time spent working: first record in to last output acknowledged.
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

/// Looks up the output topics through the producer before the first batch, so its first
/// sends do not wait for their metadata (and a missing topic is reported up front).
async fn warm_up(producer: &FutureProducer<bus::LoggingContext>, topics: &Topics) {
    for topic in [&topics.output, &topics.dead_letters] {
        let producer = producer.clone();
        let name = topic.clone();
        let started = Instant::now();
        let found = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map(|metadata| {
                    metadata
                        .topics()
                        .iter()
                        .any(|t| t.error().is_none() && !t.partitions().is_empty())
                })
        })
        .await;
        match found {
            Ok(Ok(true)) => log::debug!("topic {topic} found in {:.1?}", started.elapsed()),
            Ok(Ok(false)) => {
                log::warn!("topic {topic} does not exist (yet); sends to it will wait for it")
            }
            Ok(Err(error)) => log::warn!("cannot look up topic {topic}: {error}"),
            Err(error) => log::warn!("cannot look up topic {topic}: {error}"),
        }
    }
}

/// A consumer error: fatal ones end the run, the others are logged (librdkafka retries).
fn consumer_error(error: KafkaError) -> Result<()> {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
        bail!("the consumer failed: {error}");
    }
    log::warn!("consumer error: {error}");
    Ok(())
}

/// Puts every output in the producer's queue (none is waited for here). When the queue is
/// full, waits for the oldest batch in flight, or a moment when there is none.
async fn send(
    producer: &FutureProducer<bus::LoggingContext>,
    topics: &Topics,
    outputs: &[Output],
    pending: &mut Pending<'_>,
) -> Result<Vec<DeliveryFuture>> {
    let mut deliveries = Vec::with_capacity(outputs.len());
    for output in outputs {
        let topic = match output.destination {
            Destination::Anomalies => &topics.output,
            Destination::DeadLetters => &topics.dead_letters,
        };
        loop {
            let record = FutureRecord::to(topic)
                .key(&output.key)
                .payload(&output.payload);
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if pending.len() == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        pending.next().await?;
                    }
                }
                Err((error, _)) => bail!(
                    "cannot send to {topic} ({error}); stopping without storing the offsets of \
                     this batch (a restart reads it again)"
                ),
            }
        }
    }
    Ok(deliveries)
}

/// A batch whose outputs await their acknowledgements.
struct InFlight {
    deliveries: JoinAll<DeliveryFuture>,
    /// Per partition, the batch's last offset: stored (plus one) once all are acknowledged.
    offsets: BTreeMap<i32, i64>,
}

/// The batches in flight, oldest first, and the consumer whose offsets they hold back.
struct Pending<'c> {
    consumer: &'c bus::LoggingConsumer,
    topic: &'c str,
    batches: VecDeque<InFlight>,
    last_acknowledged_at: Option<SystemTime>,
}

impl<'c> Pending<'c> {
    fn new(consumer: &'c bus::LoggingConsumer, topic: &'c str) -> Self {
        Self {
            consumer,
            topic,
            batches: VecDeque::new(),
            last_acknowledged_at: None,
        }
    }

    fn len(&self) -> usize {
        self.batches.len()
    }

    fn push(&mut self, batch: InFlight) {
        self.batches.push_back(batch);
    }

    /// Waits until the oldest batch is acknowledged and stores its offsets; never resolves
    /// when nothing is in flight (so it can sit in a `select!`). Cancellation safe.
    async fn next(&mut self) -> Result<()> {
        let Some(oldest) = self.batches.front_mut() else {
            return std::future::pending().await;
        };
        let results = (&mut oldest.deliveries).await;
        self.acknowledged(results)
    }

    /// Stores the offsets of the oldest batches that are already acknowledged.
    fn store_acknowledged(&mut self) -> Result<()> {
        while let Some(oldest) = self.batches.front_mut() {
            match (&mut oldest.deliveries).now_or_never() {
                Some(results) => self.acknowledged(results)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Waits for every batch in flight, storing their offsets in order.
    async fn drain(&mut self) -> Result<()> {
        while !self.batches.is_empty() {
            self.next().await?;
        }
        Ok(())
    }

    /// The oldest batch's deliveries are done: on success store its offsets, else fail
    /// (storing nothing more: this batch and the later ones will be read again).
    fn acknowledged(&mut self, results: Vec<Result<OwnedDeliveryResult, Canceled>>) -> Result<()> {
        let Some(batch) = self.batches.pop_front() else {
            return Ok(());
        };
        let outputs = results.len();
        let mut failures = results.into_iter().filter_map(|result| match result {
            Ok(Ok(_)) => None,
            Ok(Err((error, message))) => Some(format!("{error} (to {})", message.topic())),
            Err(_) => Some("the producer went away".to_string()),
        });
        if let Some(first) = failures.next() {
            let failed = 1 + failures.count();
            bail!(
                "{failed} of {outputs} outputs were not delivered, first: {first}; stopping \
                 without storing their offsets (a restart reads them again)"
            );
        }
        for (&partition, &offset) in &batch.offsets {
            // Stores offset + 1. A partition revoked meanwhile refuses; its new owner re-reads.
            if let Err(error) = self.consumer.store_offset(self.topic, partition, offset) {
                log::warn!(
                    "offset {offset} of {}/{partition} not stored ({error}); the partition's \
                     new owner reads it again",
                    self.topic
                );
            }
        }
        self.last_acknowledged_at = Some(SystemTime::now());
        Ok(())
    }
}

/// Commits the stored offsets now. librdkafka commits each assigned partition's stored
/// offset (not its position), and clears stored offsets on every assignment change, so a
/// partition that moved away and back is not committed from an older owner's view.
fn commit(consumer: &bus::LoggingConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => log::info!("offsets committed"),
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
            log::info!("no new offsets to commit")
        }
        Err(error) => log::warn!("final commit failed: {error}"),
    }
}

/// Periodic progress in the log.
struct Progress {
    started: Instant,
    last: Instant,
    consumed_at_last: u64,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            consumed_at_last: 0,
        }
    }

    fn tick(&mut self, stats: &Stats, in_flight: usize) {
        let since = self.last.elapsed();
        if since < PROGRESS_EVERY {
            return;
        }
        let rate = (stats.consumed - self.consumed_at_last) as f64 / since.as_secs_f64();
        log::info!(
            "{rate:.0} records/s; consumed={} scored={} anomalies={} dead_letters={} in {:.0?}; \
             {in_flight} batches in flight",
            stats.consumed,
            stats.scored,
            stats.anomalies,
            stats.dead_letters,
            self.started.elapsed()
        );
        self.last = Instant::now();
        self.consumed_at_last = stats.consumed;
    }
}
