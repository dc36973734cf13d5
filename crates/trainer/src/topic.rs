//! Training rows from transactions already in a Kafka topic.
//!
//! Reads every partition from its beginning until the stream goes quiet (or `max_records`),
//! without a consumer group, so it never moves the detectors' offsets.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::message::Message;
use rdkafka::Offset;
use schema::{DecodeLimits, Transaction};

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

/// Reads up to `limits.max_records` transactions from `topic`. Records that do not decode, or
/// whose feature count differs from the first record's, are skipped and counted in the log.
pub fn read_training_rows(
    kafka: &bus::ClientSettings,
    topic: &str,
    limits: &ReadLimits,
) -> Result<Table> {
    // Manual assignment, nothing committed; its logs go through `log`, secrets masked.
    let consumer = kafka.base_consumer()?;
    // Read every partition from its beginning. Some Kafka-compatible brokers report high
    // watermarks loosely, so the end is found by the stream going quiet, not by watermarks.
    bus::assign_all(&consumer, topic, Offset::Beginning)?;

    let decode_limits = DecodeLimits::default();
    let mut data = Vec::new();
    let mut n_features = None;
    let (mut rows, mut skipped) = (0usize, 0usize);
    let deadline = Instant::now() + limits.timeout;
    let mut last_record: Option<Instant> = None;
    while rows < limits.max_records {
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
