//! The inspector: reads topics for people. `tail` prints records as they arrive, `topics`
//! lists topics with their partitions and watermarks, `create-topics` creates the pipeline's
//! topics. It reads without a consumer group, so it never moves the detectors' offsets.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Read the pipeline's topics.
#[derive(Debug, Parser)]
#[command(name = "inspector", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}

/// The inspector's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a topic's records as they arrive.
    Tail(TailArgs),
    /// List topics, their partitions and watermarks.
    Topics {
        /// Include internal topics (names starting with `__`).
        #[arg(long)]
        all: bool,
    },
    /// Create topics that do not exist yet: NAME[:PARTITIONS] (default 1 partition).
    CreateTopics {
        /// Topics to create, e.g. transactions:3 anomalies.
        #[arg(required = true, value_name = "NAME[:PARTITIONS]")]
        topics: Vec<String>,
    },
}

/// `inspector tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Topic to read.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub topic: String,
    /// Start from the oldest record instead of the newest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop after this many seconds without a record.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print each record's JSON value alone, one per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs one command.
pub fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Tail(args) => tail(&cli.kafka, args, &mut std::io::stdout().lock()),
        Command::Topics { all } => topics(&cli.kafka, *all, &mut std::io::stdout().lock()),
        Command::CreateTopics { topics } => create_topics(&cli.kafka, topics),
    }
}

/// `NAME[:PARTITIONS]`.
pub fn parse_topic_spec(spec: &str) -> Result<(String, i32)> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), 1)),
        Some((name, partitions)) => {
            let partitions: i32 = partitions
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{spec}: partitions must be a positive number"))?;
            Ok((name.to_string(), partitions))
        }
    }
}

fn create_topics(kafka: &bus::KafkaArgs, specs: &[String]) -> Result<()> {
    let topics: Vec<(String, i32)> = specs
        .iter()
        .map(|s| parse_topic_spec(s))
        .collect::<Result<_>>()?;
    let wanted: Vec<(&str, i32)> = topics.iter().map(|(name, n)| (name.as_str(), *n)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    bus::wait_for_broker(kafka, Duration::from_secs(60))?;
    runtime.block_on(bus::ensure_topics(kafka, &wanted))
}

fn topics(kafka: &bus::KafkaArgs, all: bool, out: &mut dyn Write) -> Result<()> {
    let consumer = kafka.base_consumer()?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| format!("cannot read metadata from {}", kafka.brokers))?;
    let mut topics: Vec<_> = metadata
        .topics()
        .iter()
        .filter(|topic| all || !topic.name().starts_with("__"))
        .collect();
    topics.sort_by_key(|topic| topic.name());
    writeln!(
        out,
        "{:<40} {:>9} {:>12} {:>12}",
        "topic", "partition", "low", "high"
    )?;
    for topic in topics {
        for partition in topic.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                .unwrap_or((-1, -1));
            writeln!(
                out,
                "{:<40} {:>9} {:>12} {:>12}",
                topic.name(),
                partition.id(),
                low,
                high
            )?;
        }
    }
    Ok(())
}

/// One line for a person: where the record was, its key, and a compact view of the value.
pub fn describe_record(partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) -> String {
    let key = key.map_or_else(
        || "-".to_string(),
        |k| String::from_utf8_lossy(k).into_owned(),
    );
    let value = match serde_json::from_slice::<serde_json::Value>(value) {
        Ok(json) => json.to_string(),
        Err(_) => format!(
            "(not JSON, {} bytes) {}",
            value.len(),
            String::from_utf8_lossy(value)
        ),
    };
    format!("{partition}/{offset} key={key} {value}")
}

fn tail(kafka: &bus::KafkaArgs, args: &TailArgs, out: &mut dyn Write) -> Result<()> {
    let consumer = kafka.base_consumer()?;
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .with_context(|| format!("cannot read metadata from {}", kafka.brokers))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == args.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {} does not exist", args.topic);
    }
    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&args.topic, *partition, start)?;
    }
    consumer.assign(&assignment)?;
    let idle = args.timeout.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let mut last = Instant::now();
    let mut printed = 0u64;
    let mut seen_per_partition: HashMap<i32, i64> = HashMap::new();
    while args.max_messages.is_none_or(|max| printed < max) {
        if idle.is_some_and(|idle| last.elapsed() >= idle) {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read {}", args.topic))?;
        last = Instant::now();
        seen_per_partition.insert(message.partition(), message.offset());
        let value = message.payload().unwrap_or_default();
        let line = if args.json {
            String::from_utf8_lossy(value).into_owned()
        } else {
            describe_record(message.partition(), message.offset(), message.key(), value)
        };
        if let Err(error) = writeln!(out, "{line}") {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(error.into());
        }
        printed += 1;
    }
    out.flush()?;
    log::info!("printed {printed} records from {}", args.topic);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse_topic_spec("x:0").is_err());
        assert!(parse_topic_spec("x:many").is_err());
    }

    #[test]
    fn records_are_described_compactly() {
        let line = describe_record(2, 7, Some(b"4"), br#"{"id": 4, "anomaly_score": 0.7}"#);
        assert_eq!(line, r#"2/7 key=4 {"anomaly_score":0.7,"id":4}"#);
        assert!(describe_record(0, 0, None, b"\xff").contains("not JSON"));
    }
}
