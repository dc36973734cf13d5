//! `inspector topics` and `inspector create-topics`.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::Consumer;

use crate::cli::{CreateTopicsArgs, TopicsArgs};

/// One partition of a topic, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Low and high watermarks, when the partition leader answered.
    pub watermarks: Option<(i64, i64)>,
}

/// The cluster's topics (internal `__` ones only with `all`), sorted by name, with every
/// partition's watermarks.
pub fn list(
    kafka: &bus::ClientSettings,
    all: bool,
    timeout: Duration,
) -> Result<Vec<PartitionInfo>> {
    log::debug!("listing topics with {}", kafka.describe());
    let consumer = kafka.base_consumer()?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .with_context(|| format!("cannot read the topics from {}", kafka.brokers))?;
    let mut topics: Vec<_> = metadata
        .topics()
        .iter()
        .filter(|topic| all || !topic.name().starts_with("__"))
        .collect();
    topics.sort_by_key(|topic| topic.name());
    let mut partitions = Vec::new();
    for topic in topics {
        let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        for partition in ids {
            let watermarks = consumer
                .fetch_watermarks(topic.name(), partition, timeout)
                .map_err(|error| {
                    log::warn!("no watermarks for {}/{partition}: {error}", topic.name())
                })
                .ok();
            partitions.push(PartitionInfo {
                topic: topic.name().to_string(),
                partition,
                watermarks,
            });
        }
    }
    Ok(partitions)
}

/// Prints the table: topic, partition, low, high, records (high − low).
pub fn print(partitions: &[PartitionInfo], out: &mut dyn Write) -> Result<()> {
    let width = partitions
        .iter()
        .map(|p| p.topic.len())
        .max()
        .unwrap_or(0)
        .max("topic".len());
    writeln!(
        out,
        "{:<width$}  {:>9}  {:>12}  {:>12}  {:>12}",
        "topic", "partition", "low", "high", "records"
    )?;
    for info in partitions {
        let (low, high, records) = match info.watermarks {
            Some((low, high)) => (low.to_string(), high.to_string(), (high - low).to_string()),
            None => ("?".into(), "?".into(), "?".into()),
        };
        writeln!(
            out,
            "{:<width$}  {:>9}  {low:>12}  {high:>12}  {records:>12}",
            info.topic, info.partition
        )?;
    }
    Ok(())
}

/// `inspector topics`.
pub fn topics(kafka: &bus::ClientSettings, args: &TopicsArgs, out: &mut dyn Write) -> Result<()> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        );
    }
    let partitions = list(kafka, args.all, Duration::from_secs_f64(args.timeout))?;
    print(&partitions, out)
}

/// `NAME[:PARTITIONS]`.
pub fn parse_topic_spec(spec: &str) -> Result<(String, i32)> {
    let (name, partitions) = match spec.split_once(':') {
        None => (spec, 1),
        Some((name, partitions)) => {
            let partitions: i32 = partitions
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{spec}: partitions must be a positive number"))?;
            (name, partitions)
        }
    };
    if name.is_empty() {
        bail!("{spec}: the topic needs a name");
    }
    Ok((name.to_string(), partitions))
}

/// `inspector create-topics`: waits for the broker (up to a minute), then creates what is
/// missing.
pub fn create_topics(kafka: &bus::ClientSettings, args: &CreateTopicsArgs) -> Result<()> {
    if args.replication_factor < 1 {
        bail!("--replication-factor must be at least 1");
    }
    let topics: Vec<(String, i32)> = args
        .topics
        .iter()
        .map(|spec| parse_topic_spec(spec))
        .collect::<Result<_>>()?;
    let wanted: Vec<(&str, i32)> = topics.iter().map(|(name, n)| (name.as_str(), *n)).collect();
    if let Some(group) = &args.state_for {
        // A name Kafka would refuse is refused before connecting.
        bus::changelog::topic_name(group, &args.input_topic)?;
    }
    bus::wait_for_broker(kafka, Duration::from_secs(60))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if !wanted.is_empty() {
            bus::ensure_topics_replicated(kafka, &wanted, args.replication_factor).await?;
        }
        if let Some(group) = &args.state_for {
            bus::changelog::ensure(kafka, group, &args.input_topic, args.replication_factor)
                .await
                .with_context(|| {
                    format!("cannot make {group}'s changelog for {}", args.input_topic)
                })?;
        }
        Ok::<_, anyhow::Error>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replication_factor_below_one_is_refused_before_connecting() {
        let args = CreateTopicsArgs {
            topics: vec!["t".into()],
            replication_factor: 0,
            state_for: None,
            input_topic: "t".into(),
        };
        // Nothing listens on port 1: the flag is refused before any connection is tried.
        let error =
            create_topics(&bus::ClientSettings::new("127.0.0.1:1"), &args).expect_err("refused");
        assert!(
            error.to_string().contains("--replication-factor"),
            "{error}"
        );
    }

    #[test]
    fn a_changelog_name_kafka_would_refuse_is_refused_before_connecting() {
        let args = CreateTopicsArgs {
            topics: Vec::new(),
            replication_factor: 1,
            state_for: Some("my group".into()),
            input_topic: "transactions".into(),
        };
        let error =
            create_topics(&bus::ClientSettings::new("127.0.0.1:1"), &args).expect_err("refused");
        assert!(
            error.to_string().contains("my group.transactions.state"),
            "{error}"
        );
    }

    #[test]
    fn topic_specs_parse() {
        assert_eq!(
            parse_topic_spec("transactions:3").unwrap(),
            ("transactions".into(), 3)
        );
        assert_eq!(
            parse_topic_spec("anomalies").unwrap(),
            ("anomalies".into(), 1)
        );
        assert_eq!(
            parse_topic_spec("transactions.dlq").unwrap(),
            ("transactions.dlq".into(), 1)
        );
        for bad in ["x:0", "x:-1", "x:many", ":3", ""] {
            assert!(parse_topic_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_has_a_row_per_partition_and_says_when_it_does_not_know() {
        let rows = [
            PartitionInfo {
                topic: "transactions".into(),
                partition: 0,
                watermarks: Some((0, 120)),
            },
            PartitionInfo {
                topic: "transactions".into(),
                partition: 1,
                watermarks: None,
            },
        ];
        let mut out = Vec::new();
        print(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["topic", "partition", "low", "high", "records"]);
        assert_eq!(lines[1], ["transactions", "0", "0", "120", "120"]);
        assert_eq!(lines[2], ["transactions", "1", "?", "?", "?"]);
    }
}
