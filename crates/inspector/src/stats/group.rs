//! The detectors' consumer group, read without joining it: its committed offsets, by a
//! client that carries the group's id but never subscribes (so it never joins or rebalances
//! the group), against the input topic's high watermarks; and its members with the
//! partitions each owns, from the group coordinator's description (DescribeGroups, which
//! Tansu 0.6 and librdkafka's mock cluster do not answer).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

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

/// A member of the group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub id: String,
    /// The client's `client.id`.
    pub client_id: String,
    /// Where it connects from.
    pub host: String,
    /// What it owns: topic and partitions.
    pub assignment: Vec<TopicAssignment>,
}

/// Partitions of one topic owned by a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicAssignment {
    /// Topic name.
    pub topic: String,
    /// Partition ids, ascending.
    pub partitions: Vec<i32>,
}

/// The group's state (`Stable`, `PreparingRebalance`, …) and members, asked of its
/// coordinator with `client` (which need not be in the group).
pub fn describe_group<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    group: &str,
    timeout: Duration,
) -> Result<(String, Vec<Member>)> {
    // The error's own text names its code; its source would repeat it.
    let list = client
        .fetch_group_list(Some(group), timeout)
        .map_err(|error| anyhow::anyhow!("the broker did not describe the group: {error}"))?;
    let Some(description) = list.groups().iter().find(|g| g.name() == group) else {
        bail!("the broker did not describe group {group}");
    };
    let members = description
        .members()
        .iter()
        .map(|member| Member {
            id: member.id().to_string(),
            client_id: member.client_id().to_string(),
            host: member.client_host().to_string(),
            assignment: member
                .assignment()
                .map(|bytes| {
                    decode_assignment(bytes).unwrap_or_else(|| {
                        log::debug!("member {}: unreadable assignment", member.id());
                        Vec::new()
                    })
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok((description.state().to_string(), members))
}

/// A consumer-protocol assignment (`version: i16`, then `[topic: string, [partition: i32]]`,
/// then user data, all big-endian): topics and partitions. Empty bytes (a member between
/// rebalances) own nothing; `None` when the bytes do not parse.
pub fn decode_assignment(bytes: &[u8]) -> Option<Vec<TopicAssignment>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(head)
    }
    fn int16(bytes: &mut &[u8]) -> Option<i16> {
        take(bytes, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn int32(bytes: &mut &[u8]) -> Option<i32> {
        take(bytes, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut rest = bytes;
    int16(&mut rest)?; // version: the layout below is the same in 0..=3
    let topics = int32(&mut rest)?;
    // Each topic needs at least 6 bytes: a count beyond what is left is corrupt.
    if topics < 0 || topics as usize > rest.len() / 6 {
        return None;
    }
    let mut assignment = Vec::with_capacity(topics as usize);
    for _ in 0..topics {
        let length = usize::try_from(int16(&mut rest)?).ok()?;
        let topic = std::str::from_utf8(take(&mut rest, length)?)
            .ok()?
            .to_string();
        let count = int32(&mut rest)?;
        if count < 0 || count as usize > rest.len() / 4 {
            return None;
        }
        let mut partitions = (0..count)
            .map(|_| int32(&mut rest))
            .collect::<Option<Vec<i32>>>()?;
        partitions.sort_unstable();
        assignment.push(TopicAssignment { topic, partitions });
    }
    Some(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An assignment as the Java client and librdkafka write it.
    fn encoded(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend(partition.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                bytes.extend((data.len() as i32).to_be_bytes());
                bytes.extend(data);
            }
            None => bytes.extend((-1i32).to_be_bytes()),
        }
        bytes
    }

    #[test]
    fn assignments_decode_to_topics_and_sorted_partitions() {
        let bytes = encoded(3, &[("transactions", &[2, 0]), ("other", &[])], Some(b"x"));
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            [
                TopicAssignment {
                    topic: "transactions".into(),
                    partitions: vec![0, 2],
                },
                TopicAssignment {
                    topic: "other".into(),
                    partitions: vec![],
                },
            ]
        );
        assert_eq!(
            decode_assignment(&encoded(0, &[("t", &[1])], None)).unwrap()[0].partitions,
            [1]
        );
        assert_eq!(decode_assignment(&[]).unwrap(), []);
    }

    #[test]
    fn corrupt_assignments_are_refused_without_panicking() {
        let bytes = encoded(1, &[("transactions", &[0, 1, 2])], None);
        for cut in 1..bytes.len() - 4 {
            assert_eq!(decode_assignment(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(decode_assignment(&huge), None);
        let mut negative = 0i16.to_be_bytes().to_vec();
        negative.extend((-3i32).to_be_bytes());
        assert_eq!(decode_assignment(&negative), None);
    }
}
