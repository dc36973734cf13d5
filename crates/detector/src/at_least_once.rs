//! At-least-once delivery, as rust-rdkafka's `at_least_once.rs`: a batch's offsets are stored
//! (`enable.auto.offset.store=false`) only once the broker has acknowledged every output of
//! it, and auto-commit commits what was stored.
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
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use futures::channel::oneshot::Canceled;
use futures::future::{join_all, JoinAll};
use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Topics;
use crate::scoring::Output;
use crate::worker::{
    consumer_error, enqueue, Stop, Worker, SHUTDOWN_DEADLINE, SHUTDOWN_FLUSH, TICK,
};

/// The at-least-once loop: batches pipelined, offsets stored once acknowledged.
pub(crate) async fn run(
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
pub(crate) async fn commit(consumer: &Arc<bus::LoggingConsumer>) {
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
