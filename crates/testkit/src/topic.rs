//! Reading a topic back and writing records to it, as the tests need: every partition from
//! the beginning, records with chosen partitions, keys and timestamps, committed offsets.

use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::settings;

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
}

/// Reads every partition of `topic` from the beginning until `done(records so far)` holds or
/// `timeout` passes, then returns what it read (the caller asserts on it).
pub fn read_topic(
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Received]) -> bool,
) -> Vec<Received> {
    let consumer = settings().base_consumer().expect("consumer");
    bus::assign_all(&consumer, topic, Offset::Beginning)
        .unwrap_or_else(|error| panic!("cannot read {topic}: {error}"));
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while !done(&received) && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("read");
            received.push(Received {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: message.payload().unwrap_or_default().to_vec(),
                timestamp_ms: message.timestamp().to_millis(),
            });
        }
    }
    received
}

/// A record to produce; `None` leaves the choice to the producer (partition by key, the
/// current time).
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The partition.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Vec<u8>,
    /// The timestamp (ms).
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// A record for `partition` with this key, value and timestamp (ms).
    pub fn at(
        partition: i32,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        timestamp_ms: i64,
    ) -> Self {
        Self {
            partition: Some(partition),
            key: Some(key.into()),
            value: value.into(),
            timestamp_ms: Some(timestamp_ms),
        }
    }

    /// A record with this key and value, partition and time left to the producer.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: Some(key.into()),
            value: value.into(),
            ..Self::default()
        }
    }
}

/// Produces the records (an idempotent producer: each partition's records keep their order)
/// and waits for every acknowledgement; returns where each landed, `(partition, offset)`.
pub fn produce(topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
    let producer = settings().future_producer(None).expect("producer");
    let deliveries: Vec<_> = records
        .iter()
        .map(|record| {
            let mut future: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).payload(&record.value);
            if let Some(key) = &record.key {
                future = future.key(key);
            }
            if let Some(partition) = record.partition {
                future = future.partition(partition);
            }
            if let Some(timestamp) = record.timestamp_ms {
                future = future.timestamp(timestamp);
            }
            producer
                .send_result(future)
                .map_err(|(error, _)| error)
                .expect("enqueued")
        })
        .collect();
    block_on(join_all(deliveries))
        .into_iter()
        .map(|delivery| {
            let delivery = delivery.expect("producer alive").expect("delivered");
            (delivery.partition, delivery.offset)
        })
        .collect()
}

/// `group`'s committed offset of each partition `0..partitions` of `topic` (`None`: none).
pub fn committed(group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let mut config = settings().client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let offsets = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .elements()
        .iter()
        .map(|element| match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        })
        .collect()
}
