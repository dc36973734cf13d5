//! Training rows from transactions already in a Kafka topic.
//!
//! Reads every partition from its beginning up to the high watermark seen at start (or
//! `max_records`), without a consumer group, so it never moves the detectors' offsets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::{DecodeLimits, Transaction};

use crate::data::Table;

/// How much to read.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Stop after this many usable records.
    pub max_records: usize,
    /// Stop waiting for records after this long.
    pub timeout: Duration,
}

/// Reads up to `limits.max_records` transactions from `topic`. Records that do not decode, or
/// whose feature count differs from the first record's, are skipped and counted in the log.
pub fn read_training_rows(
    kafka: &bus::KafkaArgs,
    topic: &str,
    limits: &ReadLimits,
) -> Result<Table> {
    let mut config = kafka.client_config()?;
    // A group id is required by librdkafka even for manual assignment; nothing is committed.
    config
        .set("group.id", "trainer")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create().context("cannot create a Kafka consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| {
            format!(
                "cannot read metadata for topic {topic} from {}",
                kafka.brokers
            )
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist or has no partitions");
    }
    // Where each partition ends now: we read up to there.
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .with_context(|| format!("cannot read the watermarks of {topic}/{partition}"))?;
        if high > low {
            remaining.insert(partition, high);
        }
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let decode_limits = DecodeLimits::default();
    let mut data = Vec::new();
    let mut n_features = None;
    let (mut rows, mut skipped) = (0usize, 0usize);
    let deadline = Instant::now() + limits.timeout;
    while rows < limits.max_records && !remaining.is_empty() {
        if Instant::now() >= deadline {
            log::warn!("stopped waiting for records after {:?}", limits.timeout);
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read from {topic}"))?;
        if let Some(&end) = remaining.get(&message.partition()) {
            if message.offset() + 1 >= end {
                remaining.remove(&message.partition());
            }
        }
        let decoded = message
            .payload()
            .map(|payload| Transaction::decode(payload, &decode_limits));
        match decoded {
            Some(Ok(transaction)) => {
                let width = *n_features.get_or_insert(transaction.features.len());
                if transaction.features.len() == width {
                    data.extend_from_slice(&transaction.features);
                    rows += 1;
                } else {
                    skipped += 1;
                }
            }
            _ => skipped += 1,
        }
    }
    log::info!("read {rows} training rows from {topic} ({skipped} skipped)");
    let Some(width) = n_features else {
        bail!("no usable transactions in topic {topic}");
    };
    let feature_names = (0..width).map(|index| format!("f{index}")).collect();
    Ok(Table {
        feature_names,
        data,
        labels: None,
    })
}
