//! The Kafka side of per-key state ([`StateLog`]): the changelog topic made sure of at start,
//! partitions restored from it before their records are scored, and a batch's state changes
//! written to it (or, with `--exactly-once`, sent inside the batch's transaction). The rules
//! of when are in `keystate`; the delivery modes apply them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bus::changelog::{self, Update};
use features::{StateChange, StateStore};
use rdkafka::producer::{DeliveryFuture, FutureProducer};

use crate::metrics::Metrics;
use crate::scoring::Scorer;

type Producer = FutureProducer<bus::LoggingContext>;

/// Copies of the changelog made when the detector creates it (`inspector create-topics
/// --state-for` makes it with the replication asked for).
const REPLICATION: i32 = 1;

/// How often, at most, keys past their time to live are forgotten.
pub(crate) const EXPIRE_EVERY: Duration = Duration::from_secs(30);

/// The changelog of a group's per-key state for its input topic.
#[derive(Debug, Clone)]
pub(crate) struct StateLog {
    topic: String,
    settings: bus::ClientSettings,
    metrics: Metrics,
}

impl StateLog {
    /// Makes sure `<group>.<input>.state` exists (compacted, the input's partition count).
    pub(crate) async fn open(
        settings: &bus::ClientSettings,
        group: &str,
        input: &str,
        metrics: Metrics,
    ) -> Result<StateLog> {
        let topic = changelog::ensure(settings, group, input, REPLICATION)
            .await
            .with_context(|| format!("cannot use the changelog of per-key state for {input}"))?;
        log::info!("per-key state: changelog {topic}");
        Ok(StateLog {
            topic,
            settings: settings.clone(),
            metrics,
        })
    }

    /// Restores, from the changelog, every partition among `partitions` that has no store
    /// yet: strictly before any of its records is scored. A state that cannot be read for the
    /// model (another specification, corrupt bytes) is left out with a warning: that key
    /// starts without history.
    pub(crate) async fn restore_missing(
        &self,
        scorer: &mut Scorer,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<()> {
        let missing = scorer.states().missing(partitions);
        if missing.is_empty() {
            return Ok(());
        }
        for partition in missing {
            let Some(named) = scorer.model().per_key() else {
                return Ok(());
            };
            let restored = changelog::restore(
                &self.settings,
                &self.topic,
                partition,
                std::future::pending(),
            )
            .await
            .with_context(|| {
                format!(
                    "cannot restore the per-key state of partition {partition} from {}; \
                             its records are not scored without it",
                    self.topic
                )
            })?;
            let mut store = StateStore::new(named);
            let mut unreadable = 0usize;
            let mut first_problem = None;
            for (key, value) in &restored.states {
                if let Err(error) = store.restore(named, key, Some(value)) {
                    unreadable += 1;
                    first_problem.get_or_insert(error);
                }
            }
            log::info!("{}", restored.stats);
            if let Some(problem) = first_problem {
                log::warn!(
                    "{unreadable} states of {}/{partition} cannot be read for this model \
                     (first: {problem}); those keys start without history",
                    self.topic
                );
            }
            self.metrics
                .state_restored(store.len(), restored.stats.elapsed);
            scorer.states_mut().insert(partition, store);
        }
        let states = scorer.states();
        self.metrics
            .state_held(states.keys(), states.memory_bytes());
        Ok(())
    }

    /// Writes a batch's state changes and waits for every acknowledgement.
    pub(crate) async fn write(
        &self,
        producer: &Producer,
        changes: &BTreeMap<i32, Vec<StateChange>>,
    ) -> Result<()> {
        let updates = updates(changes);
        if updates.is_empty() {
            return Ok(());
        }
        let written = changelog::write(producer, &self.topic, &updates)
            .await
            .context("the batch's per-key state was not written; stopping without storing its offsets (a restart reads it again)")?;
        self.metrics.state_written(written);
        Ok(())
    }

    /// Puts a batch's state changes in the producer's queue (inside the open transaction),
    /// returning their deliveries; a full queue is waited out.
    pub(crate) async fn send(
        &self,
        producer: &Producer,
        changes: &BTreeMap<i32, Vec<StateChange>>,
    ) -> Result<Vec<DeliveryFuture>, rdkafka::error::KafkaError> {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        let updates = updates(changes);
        let mut deliveries = Vec::with_capacity(updates.len());
        for update in &updates {
            let mut record = changelog::record(&self.topic, update);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        }
        Ok(deliveries)
    }

    /// Counts state updates acknowledged inside a committed transaction.
    pub(crate) fn written(&self, updates: usize) {
        self.metrics.state_written(updates);
    }

    /// Forgets the keys past their time to live; their tombstones leave with the next
    /// batch's changes. Call it only when every record read so far has its offset committed
    /// (a forgotten key's record read again would not be known as a replay).
    pub(crate) fn expire(&self, scorer: &mut Scorer) {
        let expired = scorer.states_mut().expire();
        if expired > 0 {
            log::info!("{expired} keys past their time to live forgotten");
        }
        let states = scorer.states();
        self.metrics
            .state_held(states.keys(), states.memory_bytes());
    }
}

/// The changelog updates of a batch's changes, partition by partition.
pub(crate) fn updates(changes: &BTreeMap<i32, Vec<StateChange>>) -> Vec<Update<'_>> {
    changes
        .iter()
        .flat_map(|(&partition, changes)| {
            changes.iter().map(move |change| match &change.value {
                Some(value) => Update::put(partition, &change.key, value),
                None => Update::tombstone(partition, &change.key),
            })
        })
        .collect()
}

/// Updates in `changes`, all partitions.
pub(crate) fn count(changes: &BTreeMap<i32, Vec<StateChange>>) -> usize {
    changes.values().map(Vec::len).sum()
}
