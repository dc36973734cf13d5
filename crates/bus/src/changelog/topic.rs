//! The changelog topic: its name, and creating it or checking the one that exists.

use std::time::Duration;

use rdkafka::admin::{AdminOptions, ResourceSpecifier};

use crate::admin::{ensure_topic_specs, topic_partitions, TopicSpec};
use crate::client::ClientSettings;
use crate::error::{Error, Result};

/// Kafka's longest topic name.
const MAX_NAME: usize = 249;
/// `DescribeConfigs`' API key.
const DESCRIBE_CONFIGS: i16 = 32;
/// How long the check of an existing topic's settings may take.
const DESCRIBE_WAIT: Duration = Duration::from_secs(10);

/// The changelog topic of `group`'s state for `input_topic`: `<group>.<input_topic>.state`.
/// Refused when the result is not a name Kafka accepts (characters other than
/// `a-z A-Z 0-9 . _ -`, longer than 249).
///
/// ```
/// assert_eq!(
///     bus::changelog::topic_name("detectors", "transactions").unwrap(),
///     "detectors.transactions.state"
/// );
/// assert!(bus::changelog::topic_name("my group", "transactions").is_err());
/// ```
pub fn topic_name(group: &str, input_topic: &str) -> Result<String> {
    let name = format!("{group}.{input_topic}.state");
    let invalid = |reason| {
        Err(Error::InvalidTopicName {
            name: name.clone(),
            reason,
        })
    };
    if group.is_empty() || input_topic.is_empty() {
        return invalid("the group and the input topic need names");
    }
    if name.len() > MAX_NAME {
        return invalid("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("a character Kafka does not allow");
    }
    Ok(name)
}

/// Makes sure `group`'s changelog for `input_topic` exists and can serve: creates it if it is
/// missing (compacted, with the input's partition count, `replication` copies), and refuses
/// one that exists with another partition count or a cleanup policy without `compact` (when
/// the broker answers `DescribeConfigs`). Returns its name. Idempotent.
///
/// The input topic must exist: [`Error::NoSuchTopic`] otherwise.
pub async fn ensure(
    settings: &ClientSettings,
    group: &str,
    input_topic: &str,
    replication: i32,
) -> Result<String> {
    let topic = topic_name(group, input_topic)?;
    let consumer = settings.base_consumer()?;
    let input_partitions = topic_partitions(&consumer, input_topic)?.len() as i32;
    match topic_partitions(&consumer, &topic) {
        Ok(found) => {
            let partitions = found.len() as i32;
            if partitions != input_partitions {
                return Err(Error::ChangelogPartitions {
                    topic,
                    partitions,
                    input: input_topic.to_string(),
                    input_partitions,
                });
            }
            check_compacted(settings, &topic).await?;
            log::info!("changelog {topic} exists with {partitions} partitions");
        }
        Err(Error::NoSuchTopic(_)) => {
            let spec = TopicSpec {
                name: &topic,
                partitions: input_partitions,
                config: &[("cleanup.policy", "compact")],
            };
            ensure_topic_specs(settings, &[spec], replication).await?;
        }
        Err(other) => return Err(other),
    }
    Ok(topic)
}

/// Refuses a topic whose `cleanup.policy` lacks `compact`. A broker that does not serve
/// `DescribeConfigs` (librdkafka's mock cluster), or does not answer in time, is not asked
/// or believed: the check is skipped with a warning.
async fn check_compacted(settings: &ClientSettings, topic: &str) -> Result<()> {
    let probe = settings.clone();
    let served = tokio::task::spawn_blocking(move || {
        crate::api_versions::serves(&probe, DESCRIBE_CONFIGS, Duration::from_secs(2))
    })
    .await
    .ok()
    .flatten();
    if served == Some(false) {
        log::warn!(
            "the broker does not serve DescribeConfigs: {topic}'s cleanup policy is not checked"
        );
        return Ok(());
    }
    let admin = settings.admin()?;
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_WAIT));
    let described = tokio::time::timeout(
        DESCRIBE_WAIT,
        admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options),
    )
    .await;
    let resource = match described {
        Ok(Ok(mut results)) if results.len() == 1 => results.remove(0),
        Ok(Ok(_)) => {
            log::warn!("no settings came back for {topic}: its cleanup policy is not checked");
            return Ok(());
        }
        Ok(Err(error)) => {
            log::warn!(
                "cannot read {topic}'s settings ({error}): its cleanup policy is not checked"
            );
            return Ok(());
        }
        Err(_) => {
            log::warn!("no answer about {topic}'s settings within {DESCRIBE_WAIT:?}: its cleanup policy is not checked");
            return Ok(());
        }
    };
    let resource = resource.map_err(|code| Error::Kafka {
        context: format!("cannot read the settings of {topic}"),
        source: rdkafka::error::KafkaError::AdminOp(code),
    })?;
    // A broker that lists only the settings given at creation (Tansu) leaves the default
    // out, which is `delete`.
    let policy = resource
        .get("cleanup.policy")
        .and_then(|entry| entry.value.clone())
        .unwrap_or_else(|| "delete".to_string());
    if policy.split(',').any(|part| part.trim() == "compact") {
        Ok(())
    } else {
        Err(Error::NotCompacted {
            topic: topic.to_string(),
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kafka_refuses_are_refused_here() {
        assert_eq!(
            topic_name("g-1", "in_put.v2").unwrap(),
            "g-1.in_put.v2.state"
        );
        for (group, input) in [("", "t"), ("g", ""), ("g/1", "t"), ("g", "t é")] {
            let error = topic_name(group, input).unwrap_err();
            assert!(
                matches!(error, Error::InvalidTopicName { .. }),
                "{group:?} {input:?}: {error}"
            );
        }
        let long = "x".repeat(250);
        assert!(topic_name(&long, "t")
            .unwrap_err()
            .to_string()
            .contains("249"));
    }
}
