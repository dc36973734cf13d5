//! At-least-once delivery, as rust-rdkafka's `at_least_once.rs`: a batch's offsets are stored
//! (`enable.auto.offset.store=false`) only once the broker has acknowledged every output of
//! it, and auto-commit commits what was stored.
//!
//! Batches are pipelined: while the outputs of up to `in_flight_batches` batches await their
//! acknowledgements, the next batch is read and scored. Offsets are stored oldest batch first,
//! so a partition's stored offset only ever covers records whose outputs (and those of every
//! record before them) are acknowledged. Records are processed in order per partition.
//!
//! An output refused for itself (too large, an invalid record: see
//! [`fit::is_record_level`]) is sent again in its next smaller
//! form, and the batch stays in flight until that one is acknowledged too; the batch keeps
//! its records for this. Any other failed delivery (librdkafka has already retried it), or a
//! refused minimal dead letter, stops the detector with an error and without storing that
//! batch's offsets or any later batch's: a restart re-reads them.
//!
//! A model with per-key features adds a step (`keystate` has the rules): once a batch's
//! outputs are acknowledged its state changes are written to the changelog, and only once
//! those are acknowledged are its offsets stored. A batch read before a rebalance writes no
//! state and stores no offset (its partitions' owner reads it again). Keys past their time to
//! live are forgotten (at most every 30 s) only once every batch in flight is done and the
//! stored offsets are committed.

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
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::fit;
use crate::keystate::{after_outputs, AfterOutputs};
use crate::scoring::Output;
use crate::statelog::StateLog;
use crate::worker::{
    consumer_error, incoming_one, Fitting, Sent, Stop, Worker, SHUTDOWN_DEADLINE, SHUTDOWN_FLUSH,
    TICK,
};

type Producer = FutureProducer<bus::LoggingContext>;

pub(crate) async fn run(
    worker: &mut Worker,
    consumer: &bus::LoggingConsumer,
    producer: &FutureProducer<bus::LoggingContext>,
    in_flight_batches: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<Stop> {
    let fitting = Fitting {
        topics: worker.topics.clone(),
        limits: *worker.scorer.output_limits(),
        metrics: worker.metrics.clone(),
    };
    let mut pending = Pending::new(consumer, producer, &fitting);
    tokio::pin!(shutdown);
    let stop = loop {
        // Between batches: the only place the model may change.
        worker.between_batches(consumer, pending.len());
        pending.store_acknowledged().await?;
        // Keys past their time to live: forgotten only with every record read so far
        // acknowledged, its state written and its offset committed.
        if worker.expire_due() {
            pending.drain().await?;
            if commit_now(consumer).await {
                worker.expire();
            } else {
                worker.postpone_expiry();
            }
        }
        if let Some(stop) = worker.limit_reached() {
            break stop;
        }
        // The first record of a batch: wait for it, an acknowledgement, a shutdown or a tick.
        let first = tokio::select! {
            biased;
            () = &mut shutdown => break Stop::Signal,
            results = pending.oldest_delivered() => {
                // Not cancelled from here: refused outputs are sent again smaller, or the
                // batch's offsets stored.
                pending.settle(results).await?;
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
        // Restoring a partition's key states can take a while: a shutdown ends it, and the
        // batch (whose offsets are not stored) is read again by the next run.
        let (messages, generation) = tokio::select! {
            prepared = worker.prepare(messages) => prepared?,
            () = &mut shutdown => break Stop::Signal,
        };
        if messages.is_empty() {
            continue;
        }
        let read_at = Instant::now();
        let (mut outcome, scoring) = worker.score(&messages)?;
        worker.count(&messages, &outcome, scoring);
        let records = messages.len();
        let state = outcome.per_key.then(|| BatchState {
            log: worker.state_log.clone(),
            generation,
            changes: std::mem::take(&mut outcome.state_changes),
        });
        pending
            .send(messages, outcome.outputs, outcome.last_offsets, state)
            .await?;
        let sent_at = Instant::now();
        while pending.len() > in_flight_batches {
            pending.next().await?;
        }
        log::debug!(
            "batch of {} read in {:.1?} (idle {:.1?} before), scored and sent in {:.1?}, \
             waited {:.1?} for older batches",
            records,
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

/// A batch whose outputs await their acknowledgements.
struct InFlight<'c> {
    /// The outputs sent last (the batch's own, or smaller forms of refused ones).
    deliveries: JoinAll<DeliveryFuture>,
    /// What each of those is, in the same order.
    sent: Vec<Sent>,
    /// Smaller forms of refused outputs the producer's queue had no room for yet.
    unsent: Vec<Output>,
    /// The batch's records, to make a refused output smaller.
    messages: Vec<BorrowedMessage<'c>>,
    /// Per partition, the batch's last offset: stored (plus one) once all are acknowledged.
    offsets: BTreeMap<i32, i64>,
    /// Per-key features: the batch's state changes, written before its offsets are stored.
    state: Option<BatchState>,
}

/// A batch's per-key state changes and when it was read.
struct BatchState {
    log: Option<Arc<StateLog>>,
    /// Rebalances seen when the batch was read.
    generation: u64,
    changes: BTreeMap<i32, Vec<features::StateChange>>,
}

/// The batches in flight, oldest first, and the consumer whose offsets they hold back.
struct Pending<'c> {
    consumer: &'c bus::LoggingConsumer,
    producer: &'c Producer,
    fitting: &'c Fitting,
    batches: VecDeque<InFlight<'c>>,
    last_acknowledged_at: Option<SystemTime>,
}

impl<'c> Pending<'c> {
    fn new(
        consumer: &'c bus::LoggingConsumer,
        producer: &'c Producer,
        fitting: &'c Fitting,
    ) -> Self {
        Self {
            consumer,
            producer,
            fitting,
            batches: VecDeque::new(),
            last_acknowledged_at: None,
        }
    }

    fn len(&self) -> usize {
        self.batches.len()
    }

    /// Puts a batch's outputs in the producer's queue (none is waited for here) and the batch
    /// in flight. When the queue is full, waits for the oldest batch in flight, or a moment
    /// when there is none.
    async fn send(
        &mut self,
        messages: Vec<BorrowedMessage<'c>>,
        outputs: Vec<Output>,
        offsets: BTreeMap<i32, i64>,
        state: Option<BatchState>,
    ) -> Result<()> {
        let mut deliveries = Vec::with_capacity(outputs.len());
        let mut sent = Vec::with_capacity(outputs.len());
        for output in outputs {
            let record = incoming_one(&messages[output.source]);
            let mut waiting = output;
            loop {
                match self
                    .fitting
                    .enqueue(self.producer, waiting, &record)
                    .or_stop()?
                {
                    Ok((delivery, what)) => {
                        deliveries.push(delivery);
                        sent.push(what);
                        break;
                    }
                    Err(full) => {
                        waiting = full;
                        if self.batches.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            self.next().await?;
                        }
                    }
                }
            }
        }
        self.batches.push_back(InFlight {
            deliveries: join_all(deliveries),
            sent,
            unsent: Vec::new(),
            messages,
            offsets,
            state,
        });
        Ok(())
    }

    /// Waits until the outputs the oldest batch sent last are all acknowledged or failed;
    /// never resolves when nothing is in flight (so it can sit in a `select!`). Cancellation
    /// safe; hand what it returns to [`settle`](Self::settle).
    async fn oldest_delivered(&mut self) -> Vec<Result<OwnedDeliveryResult, Canceled>> {
        let Some(oldest) = self.batches.front_mut() else {
            return std::future::pending().await;
        };
        (&mut oldest.deliveries).await
    }

    /// Waits until the oldest batch is done and its offsets stored (sending smaller forms
    /// of refused outputs meanwhile); never resolves when nothing is in flight.
    async fn next(&mut self) -> Result<()> {
        loop {
            let results = self.oldest_delivered().await;
            if self.settle(results).await? {
                return Ok(());
            }
        }
    }

    /// Stores the offsets of the oldest batches that are already acknowledged.
    async fn store_acknowledged(&mut self) -> Result<()> {
        while let Some(oldest) = self.batches.front_mut() {
            match (&mut oldest.deliveries).now_or_never() {
                Some(results) => {
                    if !self.settle(results).await? {
                        break;
                    }
                }
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

    /// The outputs the oldest batch sent last are done. Refused ones (for themselves) are
    /// sent again smaller, and the batch stays in flight (false). With all acknowledged, its
    /// offsets are stored and it leaves (true). Any other failure is an error, and nothing
    /// more is stored: this batch and the later ones will be read again.
    async fn settle(
        &mut self,
        results: Vec<Result<OwnedDeliveryResult, Canceled>>,
    ) -> Result<bool> {
        let fitting = self.fitting;
        let Some(batch) = self.batches.front_mut() else {
            return Ok(true);
        };
        let outputs = results.len();
        let mut failures = Vec::new();
        let sent = std::mem::take(&mut batch.sent);
        for (result, what) in results.into_iter().zip(sent) {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((error, message))) if fit::is_record_level(&error) => {
                    let record = incoming_one(&batch.messages[what.source]);
                    let payload = message.payload().unwrap_or_default();
                    batch
                        .unsent
                        .push(fitting.smaller(what, payload, &error, &record)?);
                }
                Ok(Err((error, message))) => {
                    failures.push(format!("{error} (to {})", message.topic()));
                }
                Err(_) => failures.push("the producer went away".to_string()),
            }
        }
        if let Some(first) = failures.first() {
            bail!(
                "{} of {outputs} outputs were not delivered, first: {first}; stopping without \
                 storing their offsets (a restart reads them again)",
                failures.len()
            );
        }
        if batch.unsent.is_empty() {
            self.acknowledged().await?;
            return Ok(true);
        }
        // Send the smaller forms; what the full queue takes nothing of waits a moment.
        let mut deliveries = Vec::new();
        let mut sent = Vec::new();
        let mut still = Vec::new();
        for output in std::mem::take(&mut batch.unsent) {
            let record = incoming_one(&batch.messages[output.source]);
            match fitting.enqueue(self.producer, output, &record).or_stop()? {
                Ok((delivery, what)) => {
                    deliveries.push(delivery);
                    sent.push(what);
                }
                Err(full) => still.push(full),
            }
        }
        let queue_full = deliveries.is_empty();
        batch.deliveries = join_all(deliveries);
        batch.sent = sent;
        batch.unsent = still;
        if queue_full {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(false)
    }

    /// The oldest batch is acknowledged: write its state changes (per-key features), then
    /// store its offsets; a batch read before a rebalance does neither.
    async fn acknowledged(&mut self) -> Result<()> {
        let Some(batch) = self.batches.pop_front() else {
            return Ok(());
        };
        self.last_acknowledged_at = Some(SystemTime::now());
        let (per_key, generation) = batch
            .state
            .as_ref()
            .map_or((false, 0), |state| (true, state.generation));
        // No revocation can be served from here to the stored offsets: the consumer is not
        // polled meanwhile.
        let now = self.consumer.context().rebalances();
        match after_outputs(per_key, generation, now) {
            AfterOutputs::Skip => {
                log::info!(
                    "a batch read before a rebalance is done: its state is not written and its \
                     offsets not stored (its partitions' owner reads it again)"
                );
                self.fitting.metrics.state_skipped();
                return Ok(());
            }
            AfterOutputs::WriteStateThenStoreOffsets => {
                if let Some(BatchState {
                    log: Some(log),
                    changes,
                    ..
                }) = &batch.state
                {
                    log.write(self.producer, changes).await?;
                }
            }
            AfterOutputs::StoreOffsets => {}
        }
        let topic = &self.fitting.topics.input;
        for (&partition, &offset) in &batch.offsets {
            // Stores offset + 1. A partition revoked meanwhile refuses; its new owner re-reads.
            if let Err(error) = self.consumer.store_offset(topic, partition, offset) {
                log::warn!(
                    "offset {offset} of {topic}/{partition} not stored ({error}); the \
                     partition's new owner reads it again"
                );
            }
        }
        Ok(())
    }
}

/// Commits the stored offsets now and waits for the answer; true when they are committed
/// (or nothing was left to commit).
async fn commit_now(consumer: &bus::LoggingConsumer) -> bool {
    let committed =
        tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync));
    match committed {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => true,
        Err(error) => {
            log::debug!("commit before forgetting expired keys failed: {error}");
            false
        }
    }
}

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
