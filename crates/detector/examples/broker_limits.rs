//! What a broker does with large records, measured: whether it answers DescribeConfigs for a
//! topic (and what it says `max.message.bytes` is), whether it refuses a record over a
//! topic's `max.message.bytes`, and the largest record it takes and gives back whole. The
//! detector's output-size limits rest on these answers (see `limits` in the detector).
//!
//! ```text
//! cargo run --release -p detector --example broker_limits -- --brokers 127.0.0.1:9092
//! cargo run --release -p detector --example broker_limits -- --mock
//! ```
//!
//! Creates its own topics (`limits-probe-<pid>-…`), writes one record of each size with a
//! producer whose `message.max.bytes` is raised to 1 GB (so librdkafka itself refuses
//! nothing), reads each back, and prints one line per finding.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Debug, Parser)]
struct Cli {
    /// Use librdkafka's in-process mock cluster instead of --brokers.
    #[arg(long)]
    mock: bool,
    /// Record sizes to try, in bytes.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "999990,1048577,3145728,20971520,52428800,104857600"
    )]
    sizes: Vec<usize>,
    /// Brokers (ignored with --mock).
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    brokers: String,
}

fn config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config
}

/// DescribeConfigs for `topic`: its `max.message.bytes`, or why there is none.
async fn described_limit(admin: &AdminClient<DefaultClientContext>, topic: &str) -> String {
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let started = Instant::now();
    match admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await
    {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(resource)) => format!(
                "max.message.bytes={:?} ({} entries) in {:.0?}",
                resource
                    .get("max.message.bytes")
                    .and_then(|entry| entry.value.clone()),
                resource.entries.len(),
                started.elapsed()
            ),
            Some(Err(code)) => format!("refused: {code} in {:.0?}", started.elapsed()),
            None => "no answer".into(),
        },
        Err(error) => format!("failed: {error} in {:.0?}", started.elapsed()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mock = if cli.mock {
        Some(MockCluster::<DefaultProducerContext>::new(1).context("mock cluster")?)
    } else {
        None
    };
    let brokers = mock
        .as_ref()
        .map_or(cli.brokers.clone(), MockCluster::bootstrap_servers);
    let admin: AdminClient<DefaultClientContext> = config(&brokers).create()?;
    let base = format!("limits-probe-{}", std::process::id());
    let (plain, small) = (format!("{base}-plain"), format!("{base}-small"));
    match &mock {
        Some(mock) => {
            mock.create_topic(&plain, 1, 1)?;
            mock.create_topic(&small, 1, 1)?;
            println!("mock: topics created without configs (the mock takes none)");
        }
        None => {
            let topics = [
                NewTopic::new(&plain, 1, TopicReplication::Fixed(1)),
                NewTopic::new(&small, 1, TopicReplication::Fixed(1))
                    .set("max.message.bytes", "10000"),
            ];
            for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
                println!("create {:?}", result);
            }
        }
    }
    println!(
        "describe {plain}: {}",
        described_limit(&admin, &plain).await
    );
    println!(
        "describe {small}: {}",
        described_limit(&admin, &small).await
    );

    let producer: FutureProducer = config(&brokers)
        .set("message.max.bytes", "1000000000")
        .set("message.timeout.ms", "60000")
        .create()?;
    // A record of 20,000 bytes to the topic created with max.message.bytes=10000.
    let over = vec![b'x'; 20_000];
    let sent = producer
        .send(
            FutureRecord::<(), _>::to(&small).payload(&over),
            Duration::from_secs(30),
        )
        .await;
    println!(
        "20000 bytes to {small} (max.message.bytes=10000): {}",
        match sent {
            Ok(delivery) => format!("accepted at offset {}", delivery.offset),
            Err((error, _)) => format!("refused: {error}"),
        }
    );
    let consumer: BaseConsumer = config(&brokers)
        .set("group.id", &base)
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "524288000")
        .set("max.partition.fetch.bytes", "104857600")
        .set("receive.message.max.bytes", "1000000000")
        .create()?;
    for size in cli.sizes {
        let payload = vec![b'y'; size];
        let started = Instant::now();
        let sent = producer
            .send(
                FutureRecord::<(), _>::to(&plain).payload(&payload),
                Duration::from_secs(30),
            )
            .await;
        let offset = match sent {
            Ok(delivery) => delivery.offset,
            Err((error, _)) => {
                println!(
                    "{size} bytes: refused: {error} in {:.0?}",
                    started.elapsed()
                );
                continue;
            }
        };
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&plain, 0, Offset::Offset(offset))?;
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let read = loop {
            if Instant::now() > deadline {
                break "not read back within 60 s".to_string();
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) if message.offset() == offset => {
                    let length = message.payload().map_or(0, <[u8]>::len);
                    break format!("read back {length} bytes");
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => break format!("read error: {error}"),
                None => {}
            }
        };
        println!(
            "{size} bytes: accepted at offset {offset}; {read}; {:.0?}",
            started.elapsed()
        );
    }
    Ok(())
}
