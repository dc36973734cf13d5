//! `detector::run` in-process against librdkafka's own mock cluster (no broker needed): what a
//! clean stop commits, and what a failed delivery does not.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::future::join_all;
use iforest::{Contamination, IsolationForestParams};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

const INPUT: &str = "transactions";
const OUTPUT: &str = "anomalies";
const DLQ: &str = "transactions.dlq";

struct Setup {
    cluster: MockCluster<'static, DefaultProducerContext>,
    model: PathBuf,
    /// Ids of the records produced that the model flags.
    flagged: BTreeSet<i64>,
}

impl Setup {
    /// A mock cluster with the three topics, `records` transactions in the input (ids 0..),
    /// and a model on disk.
    async fn new(name: &str, records: i64) -> Setup {
        let _ = env_logger::builder().is_test(true).try_init();
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic(INPUT, 3, 1).expect("topic");
        cluster.create_topic(OUTPUT, 1, 1).expect("topic");
        cluster.create_topic(DLQ, 1, 1).expect("topic");

        // Two clusters around (2, 2) and (−2, −2), from a fixed sequence.
        let data: Vec<f64> = (0..1000)
            .flat_map(|i| {
                let centre = if i % 2 == 0 { 2.0 } else { -2.0 };
                let a = ((i as f64 * 0.618_034).fract() - 0.5) * 0.8;
                let b = ((i as f64 * 0.414_214).fract() - 0.5) * 0.8;
                [centre + a, centre + b]
            })
            .collect();
        let forest = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .seed(3)
            .fit(&data, 2)
            .expect("fit");
        let dir = std::env::temp_dir().join(format!("detector-mock-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let model = dir.join("model.bin");
        forest.save(&model).expect("save");

        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .expect("producer");
        let mut flagged = BTreeSet::new();
        let mut payloads = Vec::new();
        for id in 0..records {
            // Every other record an outlier on the square's edge, the rest at a centre.
            let (x, y) = if id % 2 == 0 {
                (3.9, -3.9 + (id % 79) as f64 * 0.1)
            } else {
                (2.0, 2.0)
            };
            if forest.predict(&[x, y]).expect("score") {
                flagged.insert(id);
            }
            payloads.push((
                id.to_string(),
                format!(r#"{{"id": {id}, "data": [[{x}, {y}]]}}"#),
            ));
        }
        let deliveries = payloads.iter().map(|(key, value)| {
            producer.send(
                FutureRecord::to(INPUT).key(key).payload(value),
                Duration::from_secs(10),
            )
        });
        for delivery in join_all(deliveries).await {
            delivery.expect("delivered");
        }
        assert!(!flagged.is_empty());
        Setup {
            cluster,
            model,
            flagged,
        }
    }

    fn config(&self, group: &str, extra: &[&str]) -> detector::Config {
        let bootstrap = self.cluster.bootstrap_servers();
        let model = self.model.to_str().expect("utf-8 path");
        let mut args = vec![
            "detector",
            "--model",
            model,
            "--brokers",
            &bootstrap,
            "--group",
            group,
            "--batch-size",
            "100",
            "--startup-timeout",
            "10",
            // The mock cluster hands a departed member's partitions over only after its
            // session times out (45 s by default), even when it left the group.
            "-X",
            "session.timeout.ms=6000",
        ];
        args.extend_from_slice(extra);
        detector::Config::from_cli(detector::Cli::try_parse_from(args).expect("flags"))
            .expect("config")
    }

    /// The ids in the anomalies topic (reads until `expected` are all there or 20 s pass).
    fn anomaly_ids(&self, expected: usize) -> BTreeSet<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", "reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(OUTPUT, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ids = BTreeSet::new();
        while ids.len() < expected && Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("read");
                let anomaly = schema::Anomaly::decode(message.payload().unwrap_or_default())
                    .expect("anomaly");
                ids.insert(anomaly.id.to_string().parse().expect("numeric id"));
            }
        }
        ids
    }
}

/// A run stopped by `--max-records` commits what it processed; the next run in the group
/// reads exactly the rest, and together they write every anomaly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_commits_and_the_next_run_reads_only_the_rest() {
    let setup = Setup::new("stop", 3000).await;
    let first = detector::run(
        setup.config("g", &["--max-records", "1200"]),
        std::future::pending(),
    )
    .await
    .expect("first run");
    assert_eq!(first.consumed, 1200);
    let second = detector::run(
        setup.config("g", &["--idle-exit", "1"]),
        std::future::pending(),
    )
    .await
    .expect("second run");
    assert_eq!(
        first.consumed + second.consumed,
        3000,
        "records read twice or lost"
    );
    assert_eq!(
        setup.anomaly_ids(setup.flagged.len()),
        setup.flagged,
        "anomalies written"
    );
}

/// The shutdown future ends the run cleanly, before any record when it resolves at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_future_stops_the_run() {
    let setup = Setup::new("shutdown", 10).await;
    let stats = detector::run(setup.config("g", &[]), std::future::ready(()))
        .await
        .expect("run");
    assert_eq!(stats, detector::Stats::default());
}

/// A delivery the broker refuses ends the run with an error and without storing the batch's
/// offsets: the next run reads those records again and writes their anomalies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_stops_the_run_and_its_records_are_read_again() {
    let setup = Setup::new("failure", 1000).await;
    setup.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    let error = detector::run(
        setup.config("g", &["--idle-exit", "1"]),
        std::future::pending(),
    )
    .await
    .expect_err("a refused delivery must end the run");
    let message = format!("{error:#}");
    assert!(message.contains("without storing"), "{message}");
    setup.cluster.clear_request_errors(RDKafkaApiKey::Produce);

    let second = detector::run(
        setup.config("g", &["--idle-exit", "1"]),
        std::future::pending(),
    )
    .await
    .expect("second run");
    assert_eq!(
        second.consumed, 1000,
        "every record is read again: nothing was stored"
    );
    assert_eq!(setup.anomaly_ids(setup.flagged.len()), setup.flagged);
}
