//! Exactly-once mode (`--exactly-once`): each batch's anomalies and dead letters are written,
//! and its input offsets committed, in one Kafka transaction (`send_offsets_to_transaction`,
//! KIP-447 group metadata), so a `read_committed` reader sees every output once whatever
//! crashes, and the group's committed offsets move only with the outputs they cover.
//!
//! One transaction per batch, committed before the next batch is read. A transaction that
//! fails in a way that allows it (a refused delivery, a lost partition) is aborted and its
//! batch read again from its first offsets; a fatal error (another producer took the
//! transactional id over) stops the detector. The consumer never commits by itself
//! (`enable.auto.commit=false`) and reads with `isolation.level=read_committed`.
//!
//! An output refused for itself (too large, an invalid record) cannot be sent again inside
//! the transaction, which is then abortable. So outputs are reduced before sending to fit the
//! limits learned at start, and the rare refusal that still comes (a limit the broker did not
//! tell) aborts the transaction; the batch is read again and the refused record's output is
//! sent in its next smaller form (whole → reduced → minimal dead letter), never dropped. The
//! outputs' deliveries are awaited before the offsets join the transaction, so a refusal is
//! known before anything is committed.
//!
//! A model with per-key features sends the batch's state changes to the changelog inside the
//! same transaction, after its outputs are acknowledged and before its offsets join it: the
//! state, the outputs and the offsets are committed together or not at all. An aborted
//! transaction drops every key state (the states had the batch applied), and each partition
//! is restored, `read_committed`, before its next record.
//!
//! The transaction calls block (they wait for the coordinator), so they run on the runtime's
//! worker thread through `block_in_place`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use futures::future::join_all;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::fit::{self, Refused};
use crate::output::Form;
use crate::scoring::Output;
use crate::statelog::StateLog;
use crate::worker::{consumer_error, incoming_one, Enqueued, Fitting, Stop, Worker, TICK};

/// How long one transaction call may wait for the coordinator.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Consecutive aborted transactions after which the detector gives up.
const MAX_ABORTS_IN_A_ROW: u32 = 10;
/// The pause after an abort, times the number of aborts in a row.
const ABORT_BACKOFF: Duration = Duration::from_millis(200);

type Producer = FutureProducer<bus::LoggingContext>;

/// Registers the transactional id with its coordinator, which also aborts whatever a previous
/// producer with the same id left open. A broker without transactions fails here, and the
/// detector stops with a message saying what the mode needs.
pub(crate) async fn init(
    producer: &Producer,
    kafka: &bus::ClientSettings,
    transactional_id: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || check_broker(&kafka))
        .await
        .context("broker check failed")??;
    let result = tokio::task::block_in_place(|| producer.init_transactions(timeout));
    match result {
        Ok(()) => {
            log::info!(
                "transactions ready for {transactional_id} in {:.1?}",
                started.elapsed()
            );
            Ok(())
        }
        Err(error) => bail!(
            "--exactly-once: the broker did not start transactions for transactional.id \
             {transactional_id} ({error}). This mode needs a broker with Kafka transactions, \
             such as Apache Kafka 2.5 or later (docker-compose.yml runs one); Tansu 0.6.0 has \
             none. Without --exactly-once the detector is at-least-once."
        ),
    }
}

/// Asks the broker (plain TCP only) whether it lists the transaction APIs: a broker may accept
/// `InitProducerId` for a transactional id and still have no `EndTxn` (Tansu 0.6.0), which
/// would only show at the first commit.
fn check_broker(kafka: &bus::ClientSettings) -> Result<()> {
    let config = kafka.client_config();
    let plain = config
        .get("security.protocol")
        .is_none_or(|protocol| protocol.eq_ignore_ascii_case("plaintext"));
    if !plain {
        log::info!("the broker's transaction support is not checked over TLS/SASL; the first transaction shows it");
        return Ok(());
    }
    let servers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    for server in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match bus::api_versions::api_versions(server, Duration::from_secs(5)) {
            Ok(versions) => {
                let missing = bus::api_versions::missing_transaction_apis(&versions);
                if missing.is_empty() {
                    return Ok(());
                }
                bail!(
                    "--exactly-once: the broker at {server} has no Kafka transactions (its \
                     ApiVersions answer lacks {}). This mode needs a broker with \
                     transactions, such as Apache Kafka 2.5 or later (docker-compose.yml runs \
                     one); Tansu 0.6.0 has none. Without --exactly-once the detector is \
                     at-least-once.",
                    missing.join(", ")
                );
            }
            Err(error) => log::debug!("ApiVersions from {server}: {error:#}"),
        }
    }
    Ok(())
}

/// The exactly-once loop; returns why it stopped.
pub(crate) async fn run(
    worker: &mut Worker,
    consumer: &bus::LoggingConsumer,
    producer: &Producer,
    shutdown: impl Future<Output = ()>,
) -> Result<Stop> {
    tokio::pin!(shutdown);
    let mut aborted_in_a_row = 0u32;
    let fitting = Fitting {
        topics: worker.topics.clone(),
        limits: *worker.scorer.output_limits(),
        metrics: worker.metrics.clone(),
    };
    // Records whose output was refused, with the form refused and why: when they are read
    // again, their output is sent smaller than that.
    let mut refused: BTreeMap<(i32, i64), (Form, KafkaError)> = BTreeMap::new();
    loop {
        worker.between_batches(consumer, 0);
        // Every offset read so far is committed (each transaction committed its batch's).
        if worker.expire_due() {
            worker.expire();
        }
        if let Some(stop) = worker.limit_reached() {
            return Ok(stop);
        }
        let first = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(Stop::Signal),
            received = consumer.recv() => received,
            () = tokio::time::sleep(TICK) => {
                if let Some(stop) = worker.idle_stop() {
                    return Ok(stop);
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
        let messages = worker.fill_batch(consumer, first).await?;
        // No transaction is open yet: a shutdown during a restore leaves the batch unread.
        let (messages, _) = tokio::select! {
            prepared = worker.prepare(messages) => prepared?,
            () = &mut shutdown => return Ok(Stop::Signal),
        };
        if messages.is_empty() {
            continue;
        }
        worker.last_record = Instant::now();
        let (mut outcome, scoring) = worker.score(&messages)?;
        let changes = std::mem::take(&mut outcome.state_changes);
        let state_log = worker.state_log.clone().filter(|_| outcome.per_key);
        let state = state_log.as_deref().map(|log| (log, &changes));
        if !refused.is_empty() {
            make_smaller(&mut outcome.outputs, &messages, &refused, &fitting);
        }
        match transact(
            producer,
            consumer,
            &fitting,
            &messages,
            std::mem::take(&mut outcome.outputs),
            &outcome.last_offsets,
            state,
        )
        .await
        {
            Ok(()) => {
                aborted_in_a_row = 0;
                if let Some(log) = &state_log {
                    log.written(crate::statelog::count(&changes));
                }
                refused.retain(|(partition, offset), _| {
                    outcome
                        .last_offsets
                        .get(partition)
                        .is_none_or(|last| offset > last)
                });
                worker.count(&messages, &outcome, scoring);
                worker.metrics.transaction("committed");
                worker.stats.transactions += 1;
                worker.last_done_at = Some(SystemTime::now());
            }
            Err(Failed::Abortable(error)) => {
                log::warn!(
                    "transaction of {} records failed ({error}); aborting it and reading the \
                     batch again",
                    messages.len()
                );
                abort(producer)?;
                worker.metrics.transaction("aborted");
                worker.stats.aborted += 1;
                rewind(consumer, &worker.topics.input, &messages);
                forget_states(worker);
                aborted_in_a_row += 1;
                if aborted_in_a_row >= MAX_ABORTS_IN_A_ROW {
                    bail!(
                        "{aborted_in_a_row} transactions in a row were aborted, the last with \
                         {error}; stopping (nothing of them was committed)"
                    );
                }
                // A failure that lasts (a topic refusing writes) is not retried in a tight loop.
                tokio::time::sleep(ABORT_BACKOFF * aborted_in_a_row).await;
            }
            Err(Failed::Refused(records)) => {
                log::warn!(
                    "{} outputs of a transaction of {} records were refused for themselves; \
                     aborting it and sending them smaller",
                    records.len(),
                    messages.len()
                );
                abort(producer)?;
                worker.metrics.transaction("aborted");
                worker.stats.aborted += 1;
                rewind(consumer, &worker.topics.input, &messages);
                forget_states(worker);
                for (source, form, error) in records {
                    if form == Form::Minimal {
                        bail!(
                            "{} refused the minimal dead letter of {}/{} ({error}); stopping \
                             (nothing of its transaction was committed)",
                            worker.topics.dead_letters,
                            source.0,
                            source.1
                        );
                    }
                    refused.insert(source, (form, error));
                }
            }
            Err(Failed::Fatal(error)) => return Err(error),
        }
        worker.progress.tick(&worker.stats, 0);
    }
}

/// After an abort: the key states had the batch applied, so they are dropped, and each
/// partition is restored from the changelog's committed records before its next record.
fn forget_states(worker: &mut Worker) {
    if worker.scorer.states().partitions() > 0 {
        log::info!("transaction aborted: per-key states dropped, restored before the next records");
        worker.scorer.states_mut().clear();
    }
}

/// How a transaction failed.
enum Failed {
    /// Abort it and process the batch again.
    Abortable(KafkaError),
    /// Outputs were refused for themselves: abort, and process the batch again with each of
    /// these records' outputs smaller than the form refused.
    Refused(Vec<((i32, i64), Form, KafkaError)>),
    /// Stop the detector.
    Fatal(anyhow::Error),
}

/// Sorts a transaction call's error: fatal (fenced, or the producer is unusable) or abortable.
fn classify(error: KafkaError, call: &str) -> Failed {
    match &error {
        KafkaError::Transaction(inner) if inner.is_fatal() => Failed::Fatal(anyhow::anyhow!(
            "{call} failed fatally ({error}); another detector may have started with the same \
             --transactional-id (each needs its own)"
        )),
        _ => Failed::Abortable(error),
    }
}

/// Replaces each output about a record in `refused` by a form smaller than the one refused.
fn make_smaller(
    outputs: &mut [Output],
    messages: &[BorrowedMessage<'_>],
    refused: &BTreeMap<(i32, i64), (Form, KafkaError)>,
    fitting: &Fitting,
) {
    for output in outputs {
        let record = incoming_one(&messages[output.source]);
        let Some((form, error)) = refused.get(&(record.partition, record.offset)) else {
            continue;
        };
        while output.form <= *form {
            let refusal = Refused {
                destination: output.destination,
                form: output.form,
                payload: &output.payload,
                error,
            };
            let source_topic = &fitting.topics.input;
            match fit::smaller(
                refusal,
                &record,
                output.source,
                source_topic,
                &fitting.limits,
            ) {
                Some(smaller) => *output = smaller,
                None => break,
            }
        }
    }
}

/// Begins a transaction, writes the outputs, waits for their deliveries, adds the offsets
/// after the batch and commits.
async fn transact(
    producer: &Producer,
    consumer: &bus::LoggingConsumer,
    fitting: &Fitting,
    messages: &[BorrowedMessage<'_>],
    outputs: Vec<Output>,
    last_offsets: &BTreeMap<i32, i64>,
    state: Option<(&StateLog, &BTreeMap<i32, Vec<features::StateChange>>)>,
) -> Result<(), Failed> {
    producer
        .begin_transaction()
        .map_err(|error| classify(error, "begin_transaction"))?;
    let mut deliveries = Vec::with_capacity(outputs.len());
    let mut sent = Vec::with_capacity(outputs.len());
    for output in outputs {
        let record = incoming_one(&messages[output.source]);
        let mut waiting = output;
        loop {
            match fitting.enqueue(producer, waiting, &record) {
                Enqueued::Queued(delivery, what) => {
                    deliveries.push(delivery);
                    sent.push(what);
                    break;
                }
                Enqueued::QueueFull(full) => {
                    waiting = full;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Enqueued::Failed(error, _) => return Err(Failed::Abortable(error)),
                Enqueued::Stop(error) => return Err(Failed::Fatal(error)),
            }
        }
    }
    // Every output acknowledged (or refused) before the offsets join the transaction.
    let mut refused = Vec::new();
    for (delivery, what) in join_all(deliveries).await.into_iter().zip(sent) {
        match delivery {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) if fit::is_record_level(&error) => {
                fitting.metrics.refused(what.destination, what.form);
                let record = &messages[what.source];
                refused.push(((record.partition(), record.offset()), what.form, error));
            }
            Ok(Err((error, _))) => return Err(Failed::Abortable(error)),
            Err(_) => {
                return Err(Failed::Fatal(anyhow::anyhow!(
                    "the producer went away during a transaction"
                )))
            }
        }
    }
    if !refused.is_empty() {
        return Err(Failed::Refused(refused));
    }
    // The batch's state changes, once its outputs are acknowledged, before its offsets.
    if let Some((log, changes)) = state {
        let deliveries = log
            .send(producer, changes)
            .await
            .map_err(Failed::Abortable)?;
        for delivery in join_all(deliveries).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(Failed::Abortable(error)),
                Err(_) => {
                    return Err(Failed::Fatal(anyhow::anyhow!(
                        "the producer went away during a transaction"
                    )))
                }
            }
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (&partition, &offset) in last_offsets {
        offsets
            .add_partition_offset(&fitting.topics.input, partition, Offset::Offset(offset + 1))
            .map_err(Failed::Abortable)?;
    }
    let group = consumer.group_metadata().ok_or_else(|| {
        Failed::Fatal(anyhow::anyhow!(
            "the consumer has no group metadata to commit offsets with"
        ))
    })?;
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)
    })
    .map_err(|error| classify(error, "send_offsets_to_transaction"))?;
    // Commit flushes the outputs first; a refused one makes the commit fail (abortable).
    let mut committed =
        tokio::task::block_in_place(|| producer.commit_transaction(TRANSACTION_TIMEOUT));
    // A commit that timed out may be retried as it is.
    for _ in 0..3 {
        match &committed {
            Err(KafkaError::Transaction(inner)) if inner.is_retriable() => {
                log::warn!("commit_transaction: {inner}; retrying");
                committed = tokio::task::block_in_place(|| {
                    producer.commit_transaction(TRANSACTION_TIMEOUT)
                });
            }
            _ => break,
        }
    }
    committed.map_err(|error| classify(error, "commit_transaction"))?;
    Ok(())
}

/// Aborts the open transaction: its outputs are never shown to `read_committed` readers and
/// its offsets are not committed.
fn abort(producer: &Producer) -> Result<()> {
    tokio::task::block_in_place(|| producer.abort_transaction(TRANSACTION_TIMEOUT))
        .context("abort_transaction failed; stopping (a restart reads the batch again)")
}

/// Moves the consumer back to the first offset of each partition in the batch, so the batch
/// is read again. A partition revoked meanwhile is left to its new owner, which reads from
/// the committed offset.
fn rewind(consumer: &bus::LoggingConsumer, topic: &str, messages: &[BorrowedMessage<'_>]) {
    let mut first_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for message in messages {
        first_offsets
            .entry(message.partition())
            .and_modify(|offset| *offset = (*offset).min(message.offset()))
            .or_insert(message.offset());
    }
    for (partition, offset) in first_offsets {
        if let Err(error) = consumer.seek(
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        ) {
            log::warn!(
                "cannot go back to offset {offset} of {topic}/{partition} ({error}); its new \
                 owner reads it from the committed offset"
            );
        }
    }
}
