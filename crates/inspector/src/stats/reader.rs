//! Reading the pipeline's topics for the counters: every partition assigned (no group
//! joined, nothing committed), watermarks and the group's lag asked on clients of their own,
//! and the two ways through: up to the end seen at the start ([`Reader::read_to_end`]), or as
//! records come with a tick every second ([`live`]).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::counters::Stats;
use super::group::{committed_reader, lag_with};
use super::snapshot::{PartitionLag, Role, Watermarks};
use crate::cli::PipelineArgs;

/// What reading feeds: each record, and each topic's watermarks when they are asked.
pub trait Count {
    /// The role of a topic by name (`None`: not one of ours).
    fn role_of(&self, topic: &str) -> Option<Role>;
    /// One record.
    fn record(
        &mut self,
        role: Role,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        value: &[u8],
    );
    /// A topic's watermarks, as just asked.
    fn set_watermarks(&mut self, role: Role, watermarks: Vec<Watermarks>);
}

impl Count for Stats {
    fn role_of(&self, topic: &str) -> Option<Role> {
        Stats::role_of(self, topic)
    }

    fn record(
        &mut self,
        role: Role,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        value: &[u8],
    ) {
        Stats::record(self, role, partition, offset, timestamp_ms, value);
    }

    fn set_watermarks(&mut self, role: Role, watermarks: Vec<Watermarks>) {
        Stats::set_watermarks(self, role, watermarks);
    }
}

/// The clients reading the pipeline's topics, and what they read.
pub struct Reader {
    consumer: BaseConsumer<bus::LoggingContext>,
    /// Watermarks come from a client of its own: on the reading client's connections they
    /// would queue behind its fetches' long polls.
    asker: BaseConsumer<bus::LoggingContext>,
    /// Committed offsets, likewise.
    lag_reader: BaseConsumer,
    /// Each topic read: name, role, partitions.
    topics: Vec<(String, Role, Vec<i32>)>,
    input_topic: String,
    group: String,
    /// The input topic's watermarks as last asked (for the lag).
    input_watermarks: Vec<Watermarks>,
}

impl Reader {
    /// Clients for `pipeline`'s topics; the input topic must exist, a missing other topic is
    /// counted as empty.
    pub fn new(kafka: &bus::ClientSettings, pipeline: &PipelineArgs) -> Result<Self> {
        let consumer = kafka.base_consumer()?;
        let mut topics = Vec::new();
        for (name, role) in [
            (&pipeline.input_topic, Role::Input),
            (&pipeline.output_topic, Role::Output),
            (&pipeline.dlq_topic, Role::DeadLetters),
        ] {
            match bus::topic_partitions(&consumer, name).ok() {
                Some(partitions) => topics.push((name.clone(), role, partitions)),
                None if role == Role::Input => bail!("topic {name} does not exist"),
                None => log::warn!("topic {name} does not exist: counted as empty"),
            }
        }
        Ok(Self {
            consumer,
            asker: kafka.base_consumer()?,
            lag_reader: committed_reader(kafka, &pipeline.group)?,
            topics,
            input_topic: pipeline.input_topic.clone(),
            group: pipeline.group.clone(),
            input_watermarks: Vec::new(),
        })
    }

    /// Reads each topic from its start (or its last `last` records per partition) up to the
    /// high watermarks seen now; false when `timeout` came first.
    pub fn read_to_end(
        &mut self,
        last: Option<u64>,
        timeout: Duration,
        counts: &mut impl Count,
    ) -> Result<bool> {
        let mut assignment = TopicPartitionList::new();
        let mut ends: Vec<(String, i32, i64)> = Vec::new();
        for (name, role, partitions) in &self.topics {
            let marks = watermarks(&self.consumer, name, partitions);
            for w in &marks {
                let start = match last {
                    Some(last) => (w.high - last as i64).max(w.low),
                    None => w.low,
                };
                if start < w.high {
                    assignment.add_partition_offset(name, w.partition, Offset::Offset(start))?;
                    ends.push((name.clone(), w.partition, w.high));
                }
            }
            if *role == Role::Input {
                self.input_watermarks = marks.clone();
            }
            counts.set_watermarks(*role, marks);
        }
        if ends.is_empty() {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        self.consumer.assign(&assignment)?;
        loop {
            self.poll(Duration::from_millis(100), counts);
            let position = self.consumer.position()?;
            let done = ends.iter().all(|(topic, partition, high)| {
                position
                    .find_partition(topic, *partition)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(n) if n >= *high))
            });
            if done {
                return Ok(true);
            }
            if Instant::now() > deadline {
                log::warn!("--timeout reached before every record up to the start's end was read");
                return Ok(false);
            }
        }
    }

    /// Assigns every partition at its beginning, or at its end (`from_beginning` false).
    pub fn start_live(&mut self, from_beginning: bool, counts: &mut impl Count) -> Result<()> {
        // Start at offsets resolved from the watermarks rather than at Beginning/End, which
        // librdkafka resolves with a request of its own per partition once assigned.
        let mut assignment = TopicPartitionList::new();
        for (name, role, partitions) in &self.topics {
            let marks = watermarks(&self.consumer, name, partitions);
            for w in &marks {
                let start = if from_beginning { w.low } else { w.high };
                assignment.add_partition_offset(name, w.partition, Offset::Offset(start))?;
            }
            if *role == Role::Input {
                self.input_watermarks = marks.clone();
            }
            counts.set_watermarks(*role, marks);
        }
        self.consumer.assign(&assignment)?;
        Ok(())
    }

    /// Waits at most `wait` for a record and counts it.
    pub fn poll(&self, wait: Duration, counts: &mut impl Count) {
        match self.consumer.poll(wait) {
            Some(Ok(message)) => count(counts, &message),
            Some(Err(error)) => log::warn!("reading: {error}"),
            None => {}
        }
    }

    /// Asks every topic's watermarks again (into `counts`).
    pub fn refresh_watermarks(&mut self, counts: &mut impl Count) {
        for (name, role, partitions) in &self.topics {
            let marks = watermarks(&self.asker, name, partitions);
            if *role == Role::Input {
                self.input_watermarks = marks.clone();
            }
            counts.set_watermarks(*role, marks);
        }
    }

    /// The group's lag against the input watermarks last asked; `None` (with a warning)
    /// when the committed offsets cannot be read.
    pub fn lag(&self) -> Option<Vec<PartitionLag>> {
        lag_with(&self.lag_reader, &self.input_topic, &self.input_watermarks)
            .map_err(|error| log::warn!("lag of group {}: {error:#}", self.group))
            .ok()
    }

    /// The client that asks watermarks (free for other questions between ticks).
    pub fn asker(&self) -> &BaseConsumer<bus::LoggingContext> {
        &self.asker
    }
}

/// Reads as records come until `stop` is cancelled or `limit` passed, calling `tick` with the
/// counters and the group's lag every second (watermarks asked just before), and once more at
/// the stop (`true` then).
pub fn live<C: Count>(
    reader: &mut Reader,
    counts: &mut C,
    limit: Option<Duration>,
    stop: &CancellationToken,
    mut tick: impl FnMut(&mut C, Option<Vec<PartitionLag>>, bool) -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let mut next = Instant::now();
    loop {
        let stopping = stop.is_cancelled() || limit.is_some_and(|limit| started.elapsed() >= limit);
        // A last tick at the stop, so what was read since the last one is shown.
        if stopping || Instant::now() >= next {
            // A slow round of watermark and offset requests delays the next tick rather
            // than making ticks back to back with no reading between them.
            next = (next + Duration::from_secs(1)).max(Instant::now() + Duration::from_millis(500));
            let asking = Instant::now();
            reader.refresh_watermarks(counts);
            let watermarks_took = asking.elapsed();
            let lag = reader.lag();
            log::debug!(
                "watermarks took {watermarks_took:?}, the lag {:?}",
                asking.elapsed() - watermarks_took
            );
            tick(counts, lag, stopping)?;
            if stopping {
                return Ok(());
            }
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        reader.poll(wait, counts);
    }
}

fn count(counts: &mut impl Count, message: &BorrowedMessage<'_>) {
    if let Some(role) = counts.role_of(message.topic()) {
        counts.record(
            role,
            message.partition(),
            message.offset(),
            message.timestamp().to_millis(),
            message.payload().unwrap_or_default(),
        );
    }
}

fn watermarks(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
    partitions: &[i32],
) -> Vec<Watermarks> {
    partitions
        .iter()
        .filter_map(|&partition| {
            match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok((low, high)) => Some(Watermarks {
                    partition,
                    low,
                    high,
                }),
                Err(error) => {
                    log::warn!("no watermarks for {topic}/{partition}: {error}");
                    None
                }
            }
        })
        .collect()
}
