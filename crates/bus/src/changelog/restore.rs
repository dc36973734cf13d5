//! Restoring one changelog partition: each key's newest value, from the partition's beginning
//! to the end it had when the restore began.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{creation_error, ClientSettings};
use crate::context::LoggingContext;
use crate::error::{Error, Result};

/// What a restore needs whatever the user's settings say: committed records only, the
/// partition's end reported, nothing committed, and a changelog whose beginning moved
/// (compaction, retention) read from its new beginning. librdkafka assigns partitions only
/// to a consumer with a group id; this group is never joined.
const RESTORE_SETTINGS: &[(&str, &str)] = &[
    ("group.id", "kafka-iforest-restore"),
    ("isolation.level", "read_committed"),
    ("enable.partition.eof", "true"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
];

/// How long the partition's watermarks may take to come back.
const WATERMARK_WAIT: Duration = Duration::from_secs(30);
/// How often the consumer's position is looked at while no record arrives.
const POSITION_CHECK: Duration = Duration::from_millis(100);

/// A restored partition: each key's newest value (keys whose newest record is a tombstone
/// left out), and what was read.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Key → its newest value.
    pub states: HashMap<Vec<u8>, Vec<u8>>,
    /// Counts for the log.
    pub stats: RestoreStats,
}

/// What a restore read and kept. `Display` gives a line for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// The changelog topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The partition's low watermark when the restore began.
    pub low: i64,
    /// The end read up to: the partition's high watermark (its last stable offset, under
    /// `read_committed`) when the restore began.
    pub high: i64,
    /// Records read (values and tombstones).
    pub records: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Records without a key, skipped (a changelog record always has one).
    pub unkeyed: u64,
    /// Keys kept.
    pub keys: usize,
    /// Key and value bytes read.
    pub bytes_read: u64,
    /// Key and value bytes kept.
    pub bytes_kept: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl fmt::Display for RestoreStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restored {}/{}: {} keys ({} bytes) from {} records ({} tombstones, {} bytes) \
             between offsets {} and {} in {:.3} s",
            self.topic,
            self.partition,
            self.keys,
            self.bytes_kept,
            self.records,
            self.tombstones,
            self.bytes_read,
            self.low,
            self.high,
            self.elapsed.as_secs_f64()
        )?;
        if self.unkeyed > 0 {
            write!(f, "; {} records without a key skipped", self.unkeyed)?;
        }
        Ok(())
    }
}

/// Reads changelog `topic`'s `partition` from its low watermark to the high watermark it had
/// when the restore began (its last stable offset: records of transactions still open then
/// are not read), with `read_committed` (aborted records never seen), by a consumer of its
/// own that joins no group and commits nothing; returns each key's newest value, keys whose
/// newest record is a tombstone left out.
///
/// It ends at the record before that offset, when the partition's end is reported, or when
/// the consumer's position (looked at every 100 ms) reaches that offset: an empty partition
/// ends at once, and one whose last records are transaction markers or aborted records ends
/// without a record to wait for. Records written after the start are not applied.
///
/// `stop` ends it early with [`Error::RestoreStopped`] (its partial state is not returned);
/// pass a shutdown token's or channel's future, or `std::future::pending()`.
///
/// The restore's own settings win over the user's (`isolation.level=read_committed`,
/// `enable.partition.eof=true`, no commits); the rest are the user's, or librdkafka's
/// defaults (larger fetches or a shorter `fetch.wait.max.ms` made no measurable difference
/// on Tansu or the mock cluster: docs/design.md (the changelog of per-key state)).
pub async fn restore(
    settings: &ClientSettings,
    topic: &str,
    partition: i32,
    stop: impl Future<Output = ()>,
) -> Result<Restored> {
    let started = Instant::now();
    let stopped = || Error::RestoreStopped {
        topic: topic.to_string(),
        partition,
    };
    let config = settings.config_over(RESTORE_SETTINGS);
    let consumer: Arc<StreamConsumer<LoggingContext>> = Arc::new(
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "consumer"))?,
    );
    let mut stop = std::pin::pin!(stop);

    // The watermarks come from a blocking request: on the blocking pool, so `stop` is heard.
    let asked = Arc::clone(&consumer);
    let name = topic.to_string();
    let watermarks = tokio::task::spawn_blocking(move || {
        asked.fetch_watermarks(&name, partition, WATERMARK_WAIT)
    });
    let (low, high) = tokio::select! {
        biased;
        () = &mut stop => return Err(stopped()),
        answer = watermarks => answer
            .map_err(|_| Error::kafka(
                format!("cannot read the watermarks of {topic}/{partition}"),
                KafkaError::Canceled,
            ))?
            .map_err(|error| Error::kafka(
                format!("cannot read the watermarks of {topic}/{partition}"),
                error,
            ))?,
    };
    let mut state = State::new(topic, partition, low, high);
    if high <= low {
        return Ok(state.finish(started));
    }

    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .and_then(|()| consumer.assign(&assignment))
        .map_err(|error| Error::kafka(format!("cannot read {topic}/{partition}"), error))?;
    let mut check = tokio::time::interval(POSITION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return Err(stopped()),
            received = consumer.recv() => match received {
                Ok(message) => {
                    if message.offset() >= high {
                        break; // written after the start
                    }
                    state.apply(message.key(), message.payload());
                    if message.offset() + 1 >= high {
                        break;
                    }
                }
                // Everything up to the partition's end (at or past `high`: ends only grow)
                // has been handed over.
                Err(KafkaError::PartitionEOF(eof)) if eof == partition => break,
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(error) if is_permanent(&error) => {
                    return Err(Error::kafka(
                        format!("cannot read {topic}/{partition}"),
                        error,
                    ))
                }
                Err(error) => log::warn!("reading {topic}/{partition}: {error}; retrying"),
            },
            // Transaction markers and aborted records move the position without a record.
            _ = check.tick() => {
                if position(&consumer, topic, partition).is_some_and(|at| at >= high) {
                    break;
                }
            }
        }
    }
    Ok(state.finish(started))
}

/// The consumer's position in `topic/partition`: the offset after the last record or
/// transaction marker handed over.
fn position(consumer: &StreamConsumer<LoggingContext>, topic: &str, partition: i32) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(at) => Some(at),
        _ => None,
    }
}

/// Errors that retrying cannot cure; librdkafka keeps retrying the others by itself.
fn is_permanent(error: &KafkaError) -> bool {
    match error {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::Fatal
        ),
        _ => false,
    }
}

/// The restore's tally: the newest value per key and the counts.
struct State {
    states: HashMap<Vec<u8>, Vec<u8>>,
    stats: RestoreStats,
}

impl State {
    fn new(topic: &str, partition: i32, low: i64, high: i64) -> Self {
        Self {
            states: HashMap::new(),
            stats: RestoreStats {
                topic: topic.to_string(),
                partition,
                low,
                high,
                ..RestoreStats::default()
            },
        }
    }

    /// One record: a value replaces the key's, a tombstone removes it.
    fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.stats.records += 1;
        let Some(key) = key else {
            self.stats.unkeyed += 1;
            return;
        };
        self.stats.bytes_read += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        match value {
            Some(value) => {
                // Most records replace a key's value: reuse its allocation.
                match self.states.get_mut(key) {
                    Some(kept) => {
                        kept.clear();
                        kept.extend_from_slice(value);
                    }
                    None => {
                        self.states.insert(key.to_vec(), value.to_vec());
                    }
                }
            }
            None => {
                self.stats.tombstones += 1;
                self.states.remove(key);
            }
        }
    }

    fn finish(mut self, started: Instant) -> Restored {
        self.stats.keys = self.states.len();
        self.stats.bytes_kept = self
            .states
            .iter()
            .map(|(key, value)| (key.len() + value.len()) as u64)
            .sum();
        self.stats.elapsed = started.elapsed();
        Restored {
            states: self.states,
            stats: self.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_value_wins_and_a_tombstone_removes_the_key() {
        let mut state = State::new("t", 0, 0, 6);
        state.apply(Some(b"a"), Some(b"1"));
        state.apply(Some(b"b"), Some(b"2"));
        state.apply(Some(b"a"), Some(b"33"));
        state.apply(Some(b"b"), None);
        state.apply(None, Some(b"x"));
        state.apply(Some(b"c"), None);
        let restored = state.finish(Instant::now());
        assert_eq!(
            restored.states,
            HashMap::from([(b"a".to_vec(), b"33".to_vec())])
        );
        let stats = restored.stats;
        assert_eq!(
            (stats.records, stats.tombstones, stats.unkeyed, stats.keys),
            (6, 2, 1, 1)
        );
        assert_eq!(stats.bytes_read, 2 + 2 + 3 + 1 + 1);
        assert_eq!(stats.bytes_kept, 3);
        let line = stats.to_string();
        assert!(line.contains("t/0: 1 keys"), "{line}");
        assert!(line.contains("1 records without a key skipped"), "{line}");
    }
}
