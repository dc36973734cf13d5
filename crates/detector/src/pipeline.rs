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
use std::sync::Arc;
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

use rdkafka::message::BorrowedMessage;

use crate::config::{Config, Topics};
use crate::metrics::Metrics;
use crate::reload::ModelWatcher;
use crate::scoring::{BatchOutcome, Incoming, Output, Scorer};

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
    /// With `--exactly-once`: transactions committed.
    pub transactions: u64,
    /// With `--exactly-once`: transactions aborted (their batches were read again).
    pub aborted: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, records: usize, outcome: &BatchOutcome) {
        self.consumed += records as u64;
        self.scored += outcome.scored;
        self.anomalies += outcome.anomalies;
        self.dead_letters += outcome.dead_letters;
    }
}

/// Why the loop ended (all of them end cleanly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stop {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--max-records` reached.
    MaxRecords(u64),
    /// `--idle-exit`: nothing arrived for this long.
    Idle(Duration),
}

/// How often the loop wakes up without records (model file check, idle limit).
pub(crate) const TICK: Duration = Duration::from_millis(500);
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Before the first record, `--idle-exit` waits at least this long (joining a group).
pub(crate) const FIRST_RECORD_GRACE: Duration = Duration::from_secs(30);

/// Runs until `shutdown` resolves (or a `--max-records` / `--idle-exit` limit), then stops
/// consuming, waits (at most [`SHUTDOWN_DEADLINE`]) for the outputs in flight, stores and
/// commits their offsets, flushes, leaves the group and prints one summary line.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Stats> {
    // Watch the model file from now: a model replaced while the broker is awaited is seen.
    let watcher = ModelWatcher::new(&config.model_path);
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
         records, {}, {}",
        config.topics.input,
        config.group,
        config.topics.output,
        config.topics.dead_letters,
        config.batch_size,
        if config.batch_wait.is_zero() {
            "scored as they arrive".to_string()
        } else {
            format!("waiting up to {:?} for more", config.batch_wait)
        },
        match &config.transactional_id {
            Some(id) => format!("exactly-once, one transaction per batch (transactional.id {id})"),
            None => format!("at-least-once, {} in flight", config.in_flight_batches),
        }
    );
    let metrics = Metrics::new();
    if let Some(address) = &config.metrics_addr {
        metrics.serve(address)?;
    }
    log::info!("connecting: {}", config.kafka.describe());
    let kafka = config.kafka.clone();
    let startup_timeout = config.startup_timeout;
    tokio::task::spawn_blocking(move || bus::wait_for_broker(&kafka, startup_timeout))
        .await
        .context("broker check failed")??;
    let producer = config.producer()?;
    if let Some(id) = &config.transactional_id {
        crate::transactional::init(
            &producer,
            &config.kafka,
            id,
            config.startup_timeout.min(Duration::from_secs(30)),
        )
        .await?;
    }
    warm_up(&producer, &config.topics).await;
    let consumer = Arc::new(config.consumer()?);

    let Config {
        model,
        topics,
        limits,
        ..
    } = config;
    let mut worker = Worker {
        scorer: Scorer::new(model, limits, &topics.input),
        watcher,
        model_path: config.model_path.clone(),
        metrics,
        topics,
        batch_size: config.batch_size,
        batch_wait: config.batch_wait,
        max_records: config.max_records,
        idle_exit: config.idle_exit,
        stats: Stats::default(),
        progress: Progress::new(),
        first_record_at: None,
        last_record: Instant::now(),
        last_done_at: None,
    };
    let exactly_once = config.transactional_id.is_some();
    let result = if exactly_once {
        crate::transactional::run(&mut worker, &consumer, &producer, shutdown).await
    } else {
        at_least_once(
            &mut worker,
            &consumer,
            &producer,
            config.in_flight_batches,
            shutdown,
        )
        .await
    };
    let commit_result = match result {
        Ok(stop) => {
            match stop {
                Stop::Signal => log::info!("shutdown requested: stopping"),
                Stop::MaxRecords(max) => log::info!("read {max} records: stopping"),
                Stop::Idle(idle) => log::info!("no record for {idle:.1?}: stopping"),
            }
            Ok(())
        }
        Err(error) => Err(error),
    };
    // Stored offsets committed now rather than at the next auto-commit (at-least-once; in
    // exactly-once mode the transactions committed them), then leave the group. Both with
    // deadlines: a broker that is gone must not hold the exit.
    let flushing = producer.clone();
    let flushed =
        tokio::task::spawn_blocking(move || flushing.flush(Timeout::After(SHUTDOWN_FLUSH)));
    if let Ok(Ok(Err(error))) =
        tokio::time::timeout(SHUTDOWN_FLUSH + Duration::from_secs(1), flushed).await
    {
        log::warn!("flush: {error}");
    }
    if commit_result.is_ok() && !exactly_once {
        commit(&consumer).await;
    }
    // Leaving the group is librdkafka's business from here (the consumer's close), and the
    // process does not wait for it past the runtime's shutdown (see main).
    // Leaving the group waits for the coordinator; a broker that is gone must not hold the
    // exit, so that happens on a blocking thread with a deadline (main does not wait for it).
    consumer.unsubscribe();
    let leaving = tokio::task::spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(SHUTDOWN_FLUSH, leaving).await.is_err() {
        log::warn!("the group was not left within {SHUTDOWN_FLUSH:?}; its coordinator will time the member out");
    }
    commit_result?;
    worker.print_summary();
    Ok(worker.stats)
}

/// The most a clean stop waits for the outputs in flight before it gives up on them (their
/// offsets are then not stored, and a restart reads them again), so SIGTERM ends the process
/// within 10 s even when the broker is gone.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// The most the final flush and commit wait, each.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// The state a run's loop works on, in either delivery mode.
pub(crate) struct Worker {
    pub(crate) scorer: Scorer,
    pub(crate) watcher: ModelWatcher,
    pub(crate) model_path: std::path::PathBuf,
    pub(crate) metrics: Metrics,
    pub(crate) topics: Topics,
    pub(crate) batch_size: usize,
    pub(crate) batch_wait: Duration,
    pub(crate) max_records: Option<u64>,
    pub(crate) idle_exit: Option<Duration>,
    pub(crate) stats: Stats,
    pub(crate) progress: Progress,
    /// When the first record arrived.
    pub(crate) first_record_at: Option<SystemTime>,
    /// When the last batch was read (for `--idle-exit`).
    pub(crate) last_record: Instant,
    /// When the last batch's outputs were acknowledged (or its transaction committed).
    pub(crate) last_done_at: Option<SystemTime>,
}

impl Worker {
    /// Between batches: the model may change (hot reload), and the metrics' view of the
    /// model, rebalances and batches in flight is brought up to date.
    pub(crate) fn between_batches(&mut self, consumer: &bus::LoggingConsumer, in_flight: usize) {
        use rdkafka::consumer::Consumer as _;
        self.watcher.poll(&mut self.scorer);
        self.metrics.state(
            self.scorer.model(),
            &self.model_path,
            consumer.context().rebalances(),
            in_flight,
        );
    }

    /// Scores a batch, timing it for the metrics; `record` says whether the batch counts in
    /// the metrics now (at-least-once) or only once its transaction commits.
    pub(crate) fn score(
        &mut self,
        messages: &[BorrowedMessage<'_>],
    ) -> Result<(BatchOutcome, Duration)> {
        let started = Instant::now();
        let outcome = self
            .scorer
            .process(&incoming(messages))
            .context("scoring a checked batch failed; its offsets are not stored")?;
        Ok((outcome, started.elapsed()))
    }

    /// A batch done (outputs sent, or its transaction committed): totals and metrics.
    pub(crate) fn count(
        &mut self,
        messages: &[BorrowedMessage<'_>],
        outcome: &BatchOutcome,
        scoring: Duration,
    ) {
        self.stats.add(messages.len(), outcome);
        let timestamps: Vec<i64> = messages
            .iter()
            .map(|message| message.timestamp().to_millis().unwrap_or(0))
            .collect();
        self.metrics.batch(outcome, scoring, &timestamps);
    }

    /// The stop that applies before the next batch, if any: `--max-records` reached.
    pub(crate) fn limit_reached(&self) -> Option<Stop> {
        self.max_records
            .filter(|&max| self.stats.consumed >= max)
            .map(Stop::MaxRecords)
    }

    /// On a tick without records: the `--idle-exit` stop, if due.
    pub(crate) fn idle_stop(&self) -> Option<Stop> {
        let idle = self.idle_exit?;
        let limit = if self.first_record_at.is_none() {
            idle.max(FIRST_RECORD_GRACE)
        } else {
            idle
        };
        let waited = self.last_record.elapsed();
        (waited >= limit).then_some(Stop::Idle(waited))
    }

    /// Reads the rest of a batch whose first record is `first`: what is there now, or
    /// arrives within `--batch-wait-ms`, up to `--batch-size` (and `--max-records`).
    pub(crate) async fn fill_batch<'c>(
        &mut self,
        consumer: &'c bus::LoggingConsumer,
        first: BorrowedMessage<'c>,
    ) -> Result<Vec<BorrowedMessage<'c>>> {
        let limit = self.max_records.map_or(self.batch_size, |max| {
            self.batch_size
                .min(usize::try_from(max - self.stats.consumed).unwrap_or(usize::MAX))
        });
        let mut messages = Vec::with_capacity(limit);
        messages.push(first);
        let deadline = tokio::time::Instant::now() + self.batch_wait;
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
        self.first_record_at.get_or_insert_with(SystemTime::now);
        Ok(messages)
    }

    /// One summary line on stdout.
    fn print_summary(&self) {
        let epoch_ms = |time: Option<SystemTime>| {
            time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis())
        };
        let (first_ms, last_ms) = (epoch_ms(self.first_record_at), epoch_ms(self.last_done_at));
        // The rate counts the time spent working: first record in to last output done.
        let seconds = last_ms.saturating_sub(first_ms) as f64 / 1000.0;
        let stats = &self.stats;
        println!(
            "detector: consumed={} scored={} anomalies={} dead_letters={} seconds={seconds:.3} \
             rate={:.1}/s first_ms={first_ms} last_ms={last_ms} transactions={} aborted={}",
            stats.consumed,
            stats.scored,
            stats.anomalies,
            stats.dead_letters,
            stats.consumed as f64 / seconds.max(1e-3),
            stats.transactions,
            stats.aborted
        );
    }
}

/// Records as the scorer takes them.
pub(crate) fn incoming<'m>(messages: &'m [BorrowedMessage<'_>]) -> Vec<Incoming<'m>> {
    messages
        .iter()
        .map(|m| Incoming {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
        })
        .collect()
}

/// The at-least-once loop: batches pipelined, offsets stored once acknowledged.
async fn at_least_once(
    worker: &mut Worker,
    consumer: &bus::LoggingConsumer,
    producer: &FutureProducer<bus::LoggingContext>,
    in_flight_batches: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<Stop> {
    let input = worker.topics.input.clone();
    let mut pending = Pending::new(consumer, &input);
    tokio::pin!(shutdown);
    let stop = loop {
        // Between batches: the only place the model may change.
        worker.between_batches(consumer, pending.len());
        pending.store_acknowledged()?;
        if let Some(stop) = worker.limit_reached() {
            break stop;
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
                if let Some(stop) = worker.idle_stop() {
                    break stop;
                }
                continue;
            }
        };
        let first = match first {
            Ok(message) => message,
            Err(error) => {
                consumer_error(error)?;
                continue;
            }
        };
        let batch_started = Instant::now();
        let messages = worker.fill_batch(consumer, first).await?;
        let read_at = Instant::now();
        let (outcome, scoring) = worker.score(&messages)?;
        worker.count(&messages, &outcome, scoring);
        let deliveries = send(producer, &worker.topics, &outcome.outputs, &mut pending).await?;
        pending.push(InFlight {
            deliveries: join_all(deliveries),
            offsets: outcome.last_offsets,
        });
        let sent_at = Instant::now();
        while pending.len() > in_flight_batches {
            pending.next().await?;
        }
        log::debug!(
            "batch of {} read in {:.1?} (idle {:.1?} before), scored and sent in {:.1?}, \
             waited {:.1?} for older batches",
            messages.len(),
            read_at - batch_started,
            batch_started - worker.last_record,
            sent_at - read_at,
            sent_at.elapsed()
        );
        worker.last_record = read_at;
        worker.last_done_at = pending.last_acknowledged_at.or(worker.last_done_at);
        worker.progress.tick(&worker.stats, pending.len());
    };
    // Every output acknowledged and its offsets stored, within the deadline.
    match tokio::time::timeout(SHUTDOWN_DEADLINE, pending.drain()).await {
        Ok(drained) => drained?,
        Err(_) => log::warn!(
            "{} batches still unacknowledged after {SHUTDOWN_DEADLINE:?}: stopping without \
             storing their offsets (a restart reads them again)",
            pending.len()
        ),
    }
    worker.last_done_at = pending.last_acknowledged_at.or(worker.last_done_at);
    Ok(stop)
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
pub(crate) fn consumer_error(error: KafkaError) -> Result<()> {
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
        loop {
            match enqueue(producer, topics, output) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    if pending.len() == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        pending.next().await?;
                    }
                }
                Err(error) => bail!(
                    "cannot send to {} ({error}); stopping without storing the offsets of \
                     this batch (a restart reads it again)",
                    topics.of(output.destination)
                ),
            }
        }
    }
    Ok(deliveries)
}

/// Puts one output in the producer's queue (without waiting for its delivery).
pub(crate) fn enqueue(
    producer: &FutureProducer<bus::LoggingContext>,
    topics: &Topics,
    output: &Output,
) -> Result<DeliveryFuture, KafkaError> {
    let record = FutureRecord::to(topics.of(output.destination))
        .key(&output.key)
        .payload(&output.payload);
    producer.send_result(record).map_err(|(error, _)| error)
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

/// Commits the stored offsets now, waiting at most [`SHUTDOWN_FLUSH`] (a commit that does
/// not finish in time leaves the last auto-commit standing: the records after it are read
/// again). librdkafka commits each assigned partition's stored offset (not its position), and
/// clears stored offsets on every assignment change, so a partition that moved away and back
/// is not committed from an older owner's view.
async fn commit(consumer: &Arc<bus::LoggingConsumer>) {
    let committing = Arc::clone(consumer);
    let committed =
        tokio::task::spawn_blocking(move || committing.commit_consumer_state(CommitMode::Sync));
    match tokio::time::timeout(SHUTDOWN_FLUSH, committed).await {
        Ok(Ok(Ok(()))) => log::info!("offsets committed"),
        Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {
            log::info!("no new offsets to commit")
        }
        Ok(Ok(Err(error))) => log::warn!("final commit failed: {error}"),
        Ok(Err(error)) => log::warn!("final commit failed: {error}"),
        Err(_) => log::warn!(
            "final commit not confirmed within {SHUTDOWN_FLUSH:?}; the last automatic commit \
             stands and the records after it are read again"
        ),
    }
}

/// Periodic progress in the log.
pub(crate) struct Progress {
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

    pub(crate) fn tick(&mut self, stats: &Stats, in_flight: usize) {
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
