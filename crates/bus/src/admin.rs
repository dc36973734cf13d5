//! Small admin helpers: waiting for a broker, looking up and assigning a topic's partitions,
//! creating topics.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use crate::client::{creation_error, ClientSettings};
use crate::context::LoggingContext;
use crate::error::{Error, Result};

/// The partitions of `topic`, sorted; [`Error::NoSuchTopic`] when it does not exist (or has
/// none).
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|error| Error::kafka(format!("cannot read the metadata of {topic}"), error))?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(Error::NoSuchTopic(topic.to_string()));
    }
    Ok(partitions)
}

/// Assigns every partition of `topic` to `consumer` (no group joined), each from `start`;
/// returns the partitions.
pub fn assign_all<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    start: rdkafka::Offset,
) -> Result<Vec<i32>> {
    let partitions = topic_partitions(consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(topic, partition, start)
            .map_err(|error| Error::kafka(format!("cannot read {topic}"), error))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| Error::kafka(format!("cannot read {topic}"), error))?;
    Ok(partitions)
}

/// Creates the topics that are missing (`(name, partitions)`, one replica each), and waits
/// until their metadata shows them.
pub async fn ensure_topics(settings: &ClientSettings, topics: &[(&str, i32)]) -> Result<()> {
    ensure_topics_replicated(settings, topics, 1).await
}

/// How long [`ensure_topics`] waits for the broker and for new topics to show.
const TOPIC_WAIT: Duration = Duration::from_secs(30);

/// [`ensure_topics`] with `replication` copies of each partition (a cluster of several
/// brokers wants 3; one broker can only hold 1).
pub async fn ensure_topics_replicated(
    settings: &ClientSettings,
    topics: &[(&str, i32)],
    replication: i32,
) -> Result<()> {
    let specs: Vec<TopicSpec<'_>> = topics
        .iter()
        .map(|&(name, partitions)| TopicSpec {
            name,
            partitions,
            config: &[],
        })
        .collect();
    ensure_topic_specs(settings, &specs, replication).await
}

/// A topic to create: its name, partitions and topic-level settings.
pub(crate) struct TopicSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) partitions: i32,
    /// Topic settings given at creation, e.g. `cleanup.policy=compact`; a topic that exists
    /// already keeps its own.
    pub(crate) config: &'a [(&'a str, &'a str)],
}

/// Creates the topics that are missing, one request for all, and waits until their
/// metadata shows every partition.
pub(crate) async fn ensure_topic_specs(
    settings: &ClientSettings,
    topics: &[TopicSpec<'_>],
    replication: i32,
) -> Result<()> {
    let consumer = settings.base_consumer()?;
    // Topics that already exist with their partitions are not asked for again: a broker
    // without CreateTopics (librdkafka's mock cluster) then still serves a pipeline whose
    // topics it made itself.
    let missing: Vec<&TopicSpec<'_>> = topics
        .iter()
        .filter(|topic| {
            topic_partitions(&consumer, topic.name)
                .map_or(true, |found| (found.len() as i32) < topic.partitions)
        })
        .collect();
    if missing.is_empty() {
        for topic in topics {
            log::info!("topic {} exists", topic.name);
        }
        return Ok(());
    }
    let admin = settings.admin()?;
    let new_topics: Vec<NewTopic> = missing
        .iter()
        .map(|topic| {
            topic.config.iter().fold(
                NewTopic::new(
                    topic.name,
                    topic.partitions,
                    TopicReplication::Fixed(replication),
                ),
                |new, &(key, value)| new.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TOPIC_WAIT));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|error| Error::kafka("cannot create topics", error))?;
    for result in results {
        match result {
            Ok(name) => log::info!("created topic {name}"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => log::info!("topic {name} exists"),
            Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
        }
    }
    let started = Instant::now();
    for topic in topics {
        loop {
            let seen = consumer
                .fetch_metadata(Some(topic.name), Duration::from_secs(5))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32));
            if seen.is_some_and(|seen| seen >= topic.partitions) {
                break;
            }
            if started.elapsed() > TOPIC_WAIT {
                return Err(Error::TopicNotReady {
                    topic: topic.name.to_string(),
                    partitions: topic.partitions,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Waits until the cluster answers a metadata request, retrying with exponential backoff
/// (0.25 s doubling to 8 s) and logging each failure at warn; fails after `timeout`.
pub fn wait_for_broker(settings: &ClientSettings, timeout: Duration) -> Result<()> {
    let mut config = settings.client_config();
    config
        .set("group.id", "kafka-iforest-tools")
        .set("enable.auto.commit", "false");
    let brokers = config.get("bootstrap.servers").unwrap_or("?").to_string();
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new(&config))
        .map_err(|error| creation_error(error, "consumer"))?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut backoff = Duration::from_millis(250);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.clamp(Duration::from_millis(100), Duration::from_secs(5));
        match consumer.fetch_metadata(None, attempt) {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() + backoff < deadline => {
                log::warn!("broker {brokers} not reachable ({error}); retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
            Err(source) => {
                return Err(Error::Unreachable {
                    brokers,
                    waited: started.elapsed(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_no_broker_gives_up_on_time_without_naming_secrets() {
        let settings = ClientSettings::new("127.0.0.1:1").with("sasl.password", "TopSecret-5");
        let started = Instant::now();
        let error = wait_for_broker(&settings, Duration::from_millis(1500)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let text = error.to_string();
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(!text.contains("TopSecret"), "{text}");
    }
}
