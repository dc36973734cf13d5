//! Writing state updates to the changelog with the caller's producer.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{Error, Result};

/// How long to wait for room when the producer's queue is full and none of this batch's
/// deliveries is pending (other records fill it).
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// One key's new state, for the changelog partition of its input partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// The input partition the key belongs to, which is the changelog partition.
    pub partition: i32,
    /// The key.
    pub key: &'a [u8],
    /// The new state; `None` removes the key (a tombstone).
    pub value: Option<&'a [u8]>,
}

impl<'a> Update<'a> {
    /// `key`'s new state is `value`.
    pub fn put(partition: i32, key: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            partition,
            key,
            value: Some(value),
        }
    }

    /// `key` has no state any more (it aged out): a tombstone.
    pub fn tombstone(partition: i32, key: &'a [u8]) -> Self {
        Self {
            partition,
            key,
            value: None,
        }
    }
}

/// The record of `update` for changelog `topic`: its partition, its key, its value or none
/// (a tombstone).
pub fn record<'a>(topic: &'a str, update: &Update<'a>) -> FutureRecord<'a, [u8], [u8]> {
    let record = FutureRecord::to(topic)
        .partition(update.partition)
        .key(update.key);
    match update.value {
        Some(value) => record.payload(value),
        None => record,
    }
}

/// Sends `updates` to changelog `topic` with `producer` and waits for every acknowledgement,
/// also after a failure; returns how many were acknowledged, or the first failure. Inside a
/// transaction (`begin_transaction` before, `commit_transaction` after) they are part of it.
///
/// A full producer queue is waited out: this batch's oldest delivery first.
pub async fn write<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    topic: &str,
    updates: &[Update<'_>],
) -> Result<usize> {
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(updates.len());
    let mut outcome = Outcome::default();
    'updates: for update in updates {
        let mut next = record(topic, update);
        loop {
            match producer.send_result(next) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    next = back;
                    match pending.pop_front() {
                        Some(delivery) => outcome.note(topic, delivery.await),
                        None => tokio::time::sleep(QUEUE_FULL_WAIT).await,
                    }
                }
                Err((error, _)) => {
                    outcome.fail(topic, update.partition, error);
                    break 'updates;
                }
            }
        }
    }
    for delivery in pending {
        outcome.note(topic, delivery.await);
    }
    match outcome.first_error {
        None => Ok(outcome.acknowledged),
        Some(error) => Err(error),
    }
}

/// Acknowledgements counted, the first failure kept.
#[derive(Default)]
struct Outcome {
    acknowledged: usize,
    first_error: Option<Error>,
}

impl Outcome {
    fn note(&mut self, topic: &str, delivered: <DeliveryFuture as std::future::Future>::Output) {
        match delivered {
            Ok(Ok(_)) => self.acknowledged += 1,
            Ok(Err((error, message))) => {
                use rdkafka::message::Message as _;
                self.fail(topic, message.partition(), error);
            }
            Err(_) => self.fail(topic, -1, KafkaError::Canceled),
        }
    }

    fn fail(&mut self, topic: &str, partition: i32, error: KafkaError) {
        if self.first_error.is_none() {
            let at = if partition >= 0 {
                format!("{topic}/{partition}")
            } else {
                topic.to_string()
            };
            self.first_error = Some(Error::kafka(format!("cannot write state to {at}"), error));
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::future_producer::FutureRecord as Record;

    use super::*;

    fn parts<'a>(record: &Record<'a, [u8], [u8]>) -> (&'a str, Option<i32>, Option<&'a [u8]>) {
        (record.topic, record.partition, record.payload)
    }

    #[test]
    fn a_value_becomes_the_payload_and_a_tombstone_has_none() {
        let put = record("s", &Update::put(2, b"k", b"v"));
        assert_eq!(parts(&put), ("s", Some(2), Some(&b"v"[..])));
        assert_eq!(put.key, Some(&b"k"[..]));
        let gone = record("s", &Update::tombstone(1, b"k"));
        assert_eq!(parts(&gone), ("s", Some(1), None));
    }
}
