//! What either delivery mode does with a batch: read it ([`Worker::fill_batch`]), score it
//! ([`Worker::score`]), put its outputs in the producer's queue ([`enqueue`]) and count it
//! ([`Worker::count`]); plus the run's totals ([`Stats`]), why a loop stops ([`Stop`]) and the
//! progress line. The delivery modes (`at_least_once`, `exactly_once`) decide when offsets
//! move; this module never touches them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use futures::FutureExt as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Topics;
use crate::fit::{self, Refused};
use crate::limits::OutputLimits;
use crate::metrics::Metrics;
use crate::output::{Destination, Form};
use crate::reload::ModelWatcher;
use crate::scoring::{BatchOutcome, Incoming, Output, Scorer};
use crate::statelog::StateLog;

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
    /// Outputs reduced to fit their topic before they were sent.
    pub reduced: u64,
    /// Outputs the broker (or librdkafka) refused for themselves, each sent again smaller.
    pub refused: u64,
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
        self.reduced += outcome.reduced;
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

/// The most a clean stop waits for the outputs in flight before it gives up on them (their
/// offsets are then not stored, and a restart reads them again), so SIGTERM ends the process
/// within 10 s even when the broker is gone.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// The most the final flush, commit and leaving of the group wait, each.
pub(crate) const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// The state a run's loop works on, in either delivery mode.
pub(crate) struct Worker {
    pub(crate) scorer: Scorer,
    pub(crate) watcher: ModelWatcher,
    pub(crate) model_path: Option<std::path::PathBuf>,
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
    /// Per-key features: the changelog of the key states.
    pub(crate) state_log: Option<std::sync::Arc<StateLog>>,
    /// Where to open the changelog when a reloaded model brings per-key items: the
    /// connection and the group.
    pub(crate) kafka: bus::ClientSettings,
    pub(crate) group: String,
    /// When keys past their time to live were last forgotten.
    pub(crate) expired_at: Instant,
    /// Rebalances seen when the last batch was read (its generation).
    pub(crate) generation: u64,
    /// For the batch being read: the rebalance count just after each record was received.
    pub(crate) received_at: Vec<u64>,
}

impl Worker {
    /// Between batches: the model may change (hot reload), and the metrics' view of the
    /// model, rebalances and batches in flight is brought up to date.
    pub(crate) fn between_batches(&mut self, consumer: &bus::LoggingConsumer, in_flight: usize) {
        use rdkafka::consumer::Consumer as _;
        self.watcher.poll(&mut self.scorer);
        self.metrics.state(
            self.scorer.model(),
            self.model_path.as_deref(),
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
        use rdkafka::consumer::Consumer as _;
        let rebalances = || consumer.context().rebalances();
        let mut messages = Vec::with_capacity(limit);
        messages.push(first);
        self.received_at.clear();
        self.received_at.push(rebalances());
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
                Ok(message) => {
                    messages.push(message);
                    self.received_at.push(rebalances());
                }
                Err(error) => consumer_error(error)?,
            }
        }
        self.first_record_at.get_or_insert_with(SystemTime::now);
        Ok(messages)
    }

    /// Makes a batch just read ready for scoring. A model with per-key items: the records
    /// received before a rebalance seen while the batch was read are dropped unscored (their
    /// partitions' owner reads them again from the committed offset); after a rebalance every
    /// key state is dropped; then every partition of the batch without a store is restored
    /// from the changelog. Returns the records to score and the batch's generation (the
    /// rebalances seen).
    pub(crate) async fn prepare<'c>(
        &mut self,
        mut messages: Vec<BorrowedMessage<'c>>,
    ) -> Result<(Vec<BorrowedMessage<'c>>, u64)> {
        let before = self.generation;
        let now = self.received_at.last().copied().unwrap_or(before);
        self.generation = now;
        if !self.scorer.is_per_key() {
            return Ok((messages, now));
        }
        let state_log = self.state_log().await?;
        if now != before {
            let stale = crate::keystate::fetched_before_rebalance(before, &self.received_at);
            if stale > 0 {
                log::info!(
                    "{stale} records fetched before a rebalance dropped unscored; their \
                     partitions' owner reads them again"
                );
                messages.drain(..stale);
            }
            let states = self.scorer.states();
            if states.partitions() > 0 {
                log::info!(
                    "rebalanced: dropping the per-key states of {} partitions ({} keys); \
                     each is restored from the changelog before its next record",
                    states.partitions(),
                    states.keys()
                );
            }
            self.scorer.states_mut().clear();
        }
        let partitions: Vec<i32> = messages.iter().map(|m| m.partition()).collect();
        state_log
            .restore_missing(&mut self.scorer, partitions)
            .await?;
        Ok((messages, now))
    }

    /// The changelog, opened (made sure of) the first time.
    pub(crate) async fn state_log(&mut self) -> Result<std::sync::Arc<StateLog>> {
        if let Some(log) = &self.state_log {
            return Ok(log.clone());
        }
        let log = StateLog::open(
            &self.kafka,
            &self.group,
            &self.topics.input,
            self.metrics.clone(),
        )
        .await?;
        let log = std::sync::Arc::new(log);
        self.state_log = Some(log.clone());
        Ok(log)
    }

    /// True when keys past their time to live are due to be forgotten (per-key features, at
    /// most every [`EXPIRE_EVERY`](crate::statelog::EXPIRE_EVERY)).
    pub(crate) fn expire_due(&self) -> bool {
        self.state_log.is_some()
            && self.scorer.is_per_key()
            && self.scorer.states().partitions() > 0
            && self.expired_at.elapsed() >= crate::statelog::EXPIRE_EVERY
    }

    /// Forgets the keys past their time to live (every offset read so far committed).
    pub(crate) fn expire(&mut self) {
        self.expired_at = Instant::now();
        if let Some(log) = &self.state_log {
            log.expire(&mut self.scorer);
        }
    }

    /// Tries again to forget expired keys after the next interval (the commit failed).
    pub(crate) fn postpone_expiry(&mut self) {
        self.expired_at = Instant::now();
    }

    /// One summary line on stdout.
    pub(crate) fn print_summary(&self) {
        let epoch_ms = |time: Option<SystemTime>| {
            time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis())
        };
        let (first_ms, last_ms) = (epoch_ms(self.first_record_at), epoch_ms(self.last_done_at));
        // The rate counts the time spent working: first record in to last output done.
        let seconds = last_ms.saturating_sub(first_ms) as f64 / 1000.0;
        let stats = &self.stats;
        println!(
            "detector: consumed={} scored={} anomalies={} dead_letters={} reduced={} refused={} \
             seconds={seconds:.3} rate={:.1}/s first_ms={first_ms} last_ms={last_ms} \
             transactions={} aborted={}",
            stats.consumed,
            stats.scored,
            stats.anomalies,
            stats.dead_letters,
            stats.reduced,
            stats.refused,
            stats.consumed as f64 / seconds.max(1e-3),
            stats.transactions,
            stats.aborted
        );
    }
}

/// Records as the scorer takes them.
pub(crate) fn incoming<'m>(messages: &'m [BorrowedMessage<'_>]) -> Vec<Incoming<'m>> {
    messages.iter().map(incoming_one).collect()
}

/// One record as the scorer takes it (no allocation).
pub(crate) fn incoming_one<'m>(message: &'m BorrowedMessage<'_>) -> Incoming<'m> {
    Incoming {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        payload: message.payload(),
        timestamp_ms: message.timestamp().to_millis(),
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

/// An output in the producer's queue: what it is, for its delivery report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) destination: Destination,
    pub(crate) form: Form,
    /// The index, in its batch, of the record it is about.
    pub(crate) source: usize,
}

impl Sent {
    fn of(output: &Output) -> Self {
        Self {
            destination: output.destination,
            form: output.form,
            source: output.source,
        }
    }
}

/// What an output needs to be made smaller when it is refused: the topics, the source topic
/// (which dead letters name), the limits and the metrics that count refusals.
#[derive(Debug, Clone)]
pub(crate) struct Fitting {
    pub(crate) topics: Topics,
    pub(crate) limits: OutputLimits,
    pub(crate) metrics: Metrics,
}

impl Fitting {
    /// The next smaller form of an output about `record` refused with `error` (a record-level
    /// error); an error when there is none (a refused minimal dead letter).
    pub(crate) fn smaller(
        &self,
        sent: Sent,
        payload: &[u8],
        error: &KafkaError,
        record: &Incoming<'_>,
    ) -> Result<Output> {
        self.metrics.refused(sent.destination, sent.form);
        let refused = Refused {
            destination: sent.destination,
            form: sent.form,
            payload,
            error,
        };
        let output = fit::smaller(
            refused,
            record,
            sent.source,
            &self.topics.input,
            &self.limits,
        )
        .with_context(|| {
            format!(
                "{} refused the minimal dead letter of {}/{} ({error}); stopping without \
                     storing its offset (a restart reads it again)",
                self.topics.dead_letters, record.partition, record.offset
            )
        })?;
        log::warn!(
            "{} refused the {:?} output of {}/{} ({error}); sending it {:?} to {}",
            self.topics.of(sent.destination),
            sent.form,
            record.partition,
            record.offset,
            output.form,
            self.topics.of(output.destination)
        );
        Ok(output)
    }

    /// Puts `output` (about `record`) in the producer's queue. An output librdkafka refuses
    /// for itself (larger than the producer's `message.max.bytes`) is replaced by its next
    /// smaller form at once.
    pub(crate) fn enqueue(
        &self,
        producer: &FutureProducer<bus::LoggingContext>,
        mut output: Output,
        record: &Incoming<'_>,
    ) -> Enqueued {
        loop {
            match enqueue(producer, &self.topics, &output) {
                Ok(delivery) => return Enqueued::Queued(delivery, Sent::of(&output)),
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    return Enqueued::QueueFull(output)
                }
                Err(error) if fit::is_record_level(&error) => {
                    match self.smaller(Sent::of(&output), &output.payload, &error, record) {
                        Ok(smaller) => output = smaller,
                        Err(nothing_smaller) => return Enqueued::Stop(nothing_smaller),
                    }
                }
                Err(error) => {
                    let topic = self.topics.of(output.destination).to_string();
                    return Enqueued::Failed(error, topic);
                }
            }
        }
    }
}

/// What became of an output put in the producer's queue.
pub(crate) enum Enqueued {
    /// Queued (it, or a smaller form of it).
    Queued(DeliveryFuture, Sent),
    /// The queue is full: try again once deliveries have made room.
    QueueFull(Output),
    /// librdkafka refused it for a reason other than the record (a transaction in error, a
    /// producer that failed), naming the topic.
    Failed(KafkaError, String),
    /// A minimal dead letter refused for itself: nothing smaller exists.
    Stop(anyhow::Error),
}

impl Enqueued {
    /// At-least-once's reading: queued, or the queue is full; anything else stops the
    /// detector without storing the batch's offsets.
    pub(crate) fn or_stop(self) -> Result<Result<(DeliveryFuture, Sent), Output>> {
        match self {
            Enqueued::Queued(delivery, sent) => Ok(Ok((delivery, sent))),
            Enqueued::QueueFull(output) => Ok(Err(output)),
            Enqueued::Failed(error, topic) => bail!(
                "cannot send to {topic} ({error}); stopping without storing the offsets of \
                 this batch (a restart reads it again)"
            ),
            Enqueued::Stop(error) => Err(error),
        }
    }
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

/// Periodic progress in the log.
pub(crate) struct Progress {
    started: Instant,
    last: Instant,
    consumed_at_last: u64,
}

impl Progress {
    pub(crate) fn new() -> Self {
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
