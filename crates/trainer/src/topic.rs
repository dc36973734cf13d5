//! Training records from a Kafka topic.
//!
//! Reads every partition from its beginning until the stream goes quiet (or enough records
//! were taken), without a consumer group, so it never moves the detectors' offsets.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::Offset;
use schema::{DecodeLimits, Transaction};
use serde_json::Value;

use dataset::Table;

/// The topic has been read to its end when nothing arrived for this long.
const QUIET: Duration = Duration::from_secs(2);

/// How much to read.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Stop after this many usable records.
    pub max_records: usize,
    /// Stop waiting for records after this long.
    pub timeout: Duration,
}

/// A JSON record read from a topic, with where it was, its key and its timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its Kafka key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its Kafka timestamp, epoch milliseconds, if it has one.
    pub timestamp_ms: Option<i64>,
    /// The record.
    pub value: Value,
}

/// Reads `topic` from the beginning of each partition, in offset order within each, handing
/// each message to `take` (which says whether it was usable) until `limits.max_records` were
/// usable, the stream goes quiet or the timeout passes. Returns the usable and left-out
/// counts.
fn read(
    kafka: &bus::ClientSettings,
    topic: &str,
    limits: &ReadLimits,
    mut take: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> Result<(usize, usize)> {
    // Manual assignment, nothing committed; its logs go through `log`, secrets masked.
    let consumer = kafka.base_consumer()?;
    // Read every partition from its beginning. Some Kafka-compatible brokers report high
    // watermarks loosely, so the end is found by the stream going quiet, not by watermarks.
    bus::assign_all(&consumer, topic, Offset::Beginning)?;
    let (mut usable, mut skipped) = (0usize, 0usize);
    let deadline = Instant::now() + limits.timeout;
    let mut last_record: Option<Instant> = None;
    while usable < limits.max_records {
        if Instant::now() >= deadline {
            log::warn!("stopped waiting for records after {:?}", limits.timeout);
            break;
        }
        if last_record.is_some_and(|last| last.elapsed() >= QUIET) {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read from {topic}"))?;
        last_record = Some(Instant::now());
        if take(&message) {
            usable += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((usable, skipped))
}

/// Reads up to `limits.max_records` transactions (`data` records) from `topic`. Records
/// that do not decode, or whose feature count differs from the first record's, are skipped
/// and counted in the log.
pub fn read_training_rows(
    kafka: &bus::ClientSettings,
    topic: &str,
    limits: &ReadLimits,
) -> Result<Table> {
    let decode_limits = DecodeLimits::default();
    let mut data = Vec::new();
    let mut n_features = None;
    let (rows, skipped) = read(kafka, topic, limits, |message| {
        match Transaction::decode(message.payload().unwrap_or_default(), &decode_limits) {
            Ok(transaction) => {
                let width = *n_features.get_or_insert(transaction.features.len());
                let fits = transaction.features.len() == width;
                if fits {
                    data.extend_from_slice(&transaction.features);
                }
                fits
            }
            Err(_) => false,
        }
    })?;
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

/// Reads up to `limits.max_records` JSON objects from `topic`; anything else is skipped and
/// counted in the log.
pub fn read_training_records(
    kafka: &bus::ClientSettings,
    topic: &str,
    limits: &ReadLimits,
) -> Result<Vec<TopicRecord>> {
    let mut records = Vec::new();
    let (read, skipped) = read(
        kafka,
        topic,
        limits,
        |message| match serde_json::from_slice::<Value>(message.payload().unwrap_or_default()) {
            Ok(value) if value.is_object() => {
                records.push(TopicRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    timestamp_ms: message.timestamp().to_millis(),
                    value,
                });
                true
            }
            _ => false,
        },
    )?;
    log::info!("read {read} JSON records from {topic} ({skipped} not JSON objects, skipped)");
    if records.is_empty() {
        bail!("no JSON records in topic {topic}");
    }
    Ok(records)
}
