//! The detectors' consumer group, read without joining it: its committed offsets, by a
//! client that carries the group's id but never subscribes (so it never joins or rebalances
//! the group), against the input topic's high watermarks.

use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::snapshot::{PartitionLag, Watermarks};

/// The detector group's lag on the input partitions: its committed offsets, read by a client
/// with the group's id that never subscribes (so it does not join the group), against the
/// high watermarks.
pub fn group_lag(
    kafka: &bus::ClientSettings,
    group: &str,
    topic: &str,
    watermarks: &[Watermarks],
) -> Result<Vec<PartitionLag>> {
    let consumer = committed_reader(kafka, group)?;
    lag_with(&consumer, topic, watermarks)
}

/// A client for reading `group`'s committed offsets: it has the group's id, commits nothing
/// and is never subscribed.
pub fn committed_reader(kafka: &bus::ClientSettings, group: &str) -> Result<BaseConsumer> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    Ok(config
        .create()
        .map_err(|error| bus::creation_error(error, "consumer"))?)
}

/// The lag per partition of `topic`, with `consumer` from [`committed_reader`].
pub fn lag_with(
    consumer: &BaseConsumer,
    topic: &str,
    watermarks: &[Watermarks],
) -> Result<Vec<PartitionLag>> {
    let mut list = TopicPartitionList::new();
    for w in watermarks {
        list.add_partition(topic, w.partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .context("cannot read the group's committed offsets")?;
    Ok(watermarks
        .iter()
        .map(|&w| {
            let offset =
                committed
                    .find_partition(topic, w.partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
            PartitionLag::new(w, offset)
        })
        .collect())
}
