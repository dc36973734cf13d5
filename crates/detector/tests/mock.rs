//! `detector::run` in-process against librdkafka's own mock cluster (no broker needed): what a
//! clean stop commits, and what a failed delivery does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use detector::config::ConfigBuilder;
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
/// `--idle-exit` of the runs that read everything there is.
const IDLE: Duration = Duration::from_secs(1);

struct Setup {
    cluster: MockCluster<'static, DefaultProducerContext>,
    model: PathBuf,
    /// Ids of the records produced that the model flags.
    flagged: BTreeSet<i64>,
    /// Where each record produced (by id) landed.
    landed: BTreeMap<i64, (i32, i64)>,
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
        let mut landed = BTreeMap::new();
        for (id, delivery) in (0..records).zip(join_all(deliveries).await) {
            let delivery = delivery.expect("delivered");
            landed.insert(id, (delivery.partition, delivery.offset));
        }
        assert!(!flagged.is_empty());
        Setup {
            cluster,
            model,
            flagged,
            landed,
        }
    }

    /// Settings for a detector in `group` on this cluster, batches of 100.
    fn config(&self, group: &str) -> ConfigBuilder {
        // The mock cluster hands a departed member's partitions over only after its session
        // times out (45 s by default), even when it left the group.
        let kafka = bus::ClientSettings::new(self.cluster.bootstrap_servers())
            .with("session.timeout.ms", "6000");
        detector::Config::builder(self.model.clone())
            .kafka(kafka)
            .group(group)
            .batch_size(100)
            .startup_timeout(Duration::from_secs(10))
    }

    /// The ids in the anomalies topic (see [`Setup::anomaly_counts`]).
    fn anomaly_ids(&self, expected: usize) -> BTreeSet<i64> {
        self.anomaly_counts(expected).into_keys().collect()
    }
}

/// A run stopped by `--max-records` commits what it processed; the next run in the group
/// reads exactly the rest, and together they write every anomaly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_commits_and_the_next_run_reads_only_the_rest() {
    let setup = Setup::new("stop", 3000).await;
    let first = detector::run(
        setup.config("g").max_records(1200).build().expect("config"),
        std::future::pending(),
    )
    .await
    .expect("first run");
    assert_eq!(first.consumed, 1200);
    let second = detector::run(
        setup.config("g").idle_exit(IDLE).build().expect("config"),
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
    let stats = detector::run(
        setup.config("g").build().expect("config"),
        std::future::ready(()),
    )
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
        setup.config("g").idle_exit(IDLE).build().expect("config"),
        std::future::pending(),
    )
    .await
    .expect_err("a refused delivery must end the run");
    let message = format!("{error:#}");
    assert!(message.contains("without storing"), "{message}");
    setup.cluster.clear_request_errors(RDKafkaApiKey::Produce);

    let second = detector::run(
        setup.config("g").idle_exit(IDLE).build().expect("config"),
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

impl Setup {
    /// Every anomaly record's id with how often it appears: reads until at least `expected`
    /// records are in and then nothing more arrives for a second (or 30 s pass).
    fn anomaly_counts(&self, expected: usize) -> BTreeMap<i64, usize> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", "counter")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(OUTPUT, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut counts, mut records) = (BTreeMap::new(), 0);
        let mut last_seen = Instant::now();
        while Instant::now() < deadline
            && (records < expected || last_seen.elapsed() < Duration::from_secs(1))
        {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("read");
                let anomaly = schema::Anomaly::decode(message.payload().unwrap_or_default())
                    .expect("anomaly");
                *counts
                    .entry(anomaly.id.to_string().parse().expect("numeric id"))
                    .or_insert(0) += 1;
                records += 1;
                last_seen = Instant::now();
            }
        }
        counts
    }

    /// The group's committed offset of each input partition (None: nothing committed).
    fn committed(&self, group: &str) -> Vec<Option<i64>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        for partition in 0..3 {
            partitions.add_partition(INPUT, partition);
        }
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|element| match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .collect()
    }
}

// Exactly-once (`--exactly-once`) against the mock cluster. What the mock checks: the
// transaction protocol our detector drives (InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn; commit and abort) and what the detector does on
// each outcome. What it cannot check (librdkafka 2.12's rdkafka_mock_handlers.c): its Fetch
// answers a last stable offset equal to the high watermark and no aborted transactions, so a
// read_committed reader also sees aborted records; and TxnOffsetCommit does not store the
// offsets. Hiding aborted records is the broker's part; with Apache Kafka
// (docker-compose.yml) a read_committed reader sees each record once.

/// Every batch is one committed transaction: every anomaly written once, every record counted
/// once, and the consumer itself never commits (the mock stores plain OffsetCommits, so an
/// auto-commit would show there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_commits_one_transaction_per_batch() {
    let setup = Setup::new("eos-commit", 3000).await;
    let stats = detector::run(
        setup
            .config("eos")
            .exactly_once(Some("t-commit".into()))
            .idle_exit(IDLE)
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("run");
    assert_eq!(stats.consumed, 3000);
    assert_eq!(stats.aborted, 0);
    assert!(
        stats.transactions >= 30,
        "batches of at most 100: {stats:?}"
    );
    let counts = setup.anomaly_counts(setup.flagged.len());
    assert_ids(&counts, &setup.flagged);
    assert!(counts.values().all(|&n| n == 1), "duplicates: {counts:?}");
    assert_eq!(
        setup.committed("eos"),
        [None, None, None],
        "offsets went outside the transactions"
    );
}

/// A delivery refused inside a transaction makes it abortable: the detector aborts it, goes
/// back to the batch's first offsets and processes the batch again in a new transaction, and
/// keeps running. Each record is counted in exactly one committed transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abortable_failure_aborts_and_the_batch_is_processed_again() {
    let setup = Setup::new("eos-abort", 3000).await;
    setup.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let stats = detector::run(
        setup
            .config("eos")
            .exactly_once(Some("t-abort".into()))
            .idle_exit(IDLE)
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("an aborted transaction must not end the run");
    // librdkafka may refuse a few more sends to the topic right after the error, and the
    // producer's epoch bump after an abort; each is one more aborted transaction.
    assert!((1..10).contains(&stats.aborted), "{stats:?}");
    assert_eq!(
        stats.consumed, 3000,
        "records counted once, in committed transactions"
    );
    // The mock shows the aborted transaction's records too (see above): every flagged id is
    // there, and no other.
    let counts = setup.anomaly_counts(setup.flagged.len());
    assert_ids(&counts, &setup.flagged);
}

/// A detector killed (SIGKILL) between writing a batch and committing it: its transaction is
/// left open. A new detector with the same transactional id fences it (InitProducerId bumps
/// the epoch and aborts what was open) and processes the records in committed transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_produce_and_commit_is_fenced_by_the_restart() {
    let setup = Setup::new("eos-crash", 1000).await;
    // EndTxn answers "coordinator loading" for a long while: commits hang after the outputs
    // are written, and the detector is killed there.
    setup.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 500],
    );
    let bootstrap = setup.cluster.bootstrap_servers();
    let model = setup.model.to_str().expect("utf-8 path").to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--model",
            &model,
            "--brokers",
            &bootstrap,
            "--group",
            "eos",
            "--batch-size",
            "100",
            "--exactly-once",
            "--transactional-id",
            "t-crash",
            "-X",
            "session.timeout.ms=6000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut crashed = std::process::Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(args(&[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start detector");
    // Its first batch's anomalies are written (the mock shows them) but not committed.
    let written = setup.anomaly_counts(1);
    assert!(!written.is_empty(), "the first detector wrote nothing");
    crashed.kill().expect("SIGKILL");
    crashed.wait().expect("reap");
    setup.cluster.clear_request_errors(RDKafkaApiKey::EndTxn);

    let restarted = std::process::Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(args(&["--idle-exit", "1"]))
        .output()
        .expect("run detector");
    let stdout = String::from_utf8_lossy(&restarted.stdout);
    let stderr = String::from_utf8_lossy(&restarted.stderr);
    assert!(restarted.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("consumed=1000 "), "{stdout}");
    assert!(stdout.contains("aborted=0"), "{stdout}");
    assert!(
        stderr.contains("transactions ready for t-crash"),
        "{stderr}"
    );
    let counts = setup.anomaly_counts(setup.flagged.len() + written.len());
    assert_ids(&counts, &setup.flagged);
}

/// SIGTERM with the broker gone: the detector still exits 0 within 10 s (it gives up on the
/// outputs in flight, whose offsets stay uncommitted, and on leaving the group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_gone_exits_within_ten_seconds() {
    let setup = Setup::new("sigterm-down", 3000).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(["--model", setup.model.to_str().expect("utf-8 path")])
        .args(["--brokers", &setup.cluster.bootstrap_servers()])
        .args([
            "--group",
            "g",
            "--batch-size",
            "50",
            "-X",
            "session.timeout.ms=6000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start detector");
    assert!(
        !setup.anomaly_counts(1).is_empty(),
        "the detector wrote nothing"
    );
    setup.cluster.broker_down(1).expect("broker down");
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            break exit;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("no exit 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    println!("exited {exit} {took:?} after SIGTERM, broker down");
    assert!(exit.success(), "{exit}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A dead-letter topic that cannot be written loses nothing: the batch holding the bad record
/// keeps its offsets unstored, the detector stops with an error, and the next run reads the
/// record again and writes its dead letter (with the original bytes) once the topic accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_dead_letter_topic_keeps_the_record_for_the_next_run() {
    let setup = Setup::new("dlq-down", 500).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", setup.cluster.bootstrap_servers())
        .create()
        .expect("producer");
    let bad = b"{\"id\": 9000, \"data\": \"not numbers\"}".to_vec();
    producer
        .send(
            FutureRecord::to(INPUT)
                .key("9000")
                .payload(&bad)
                .partition(1),
            Duration::from_secs(10),
        )
        .await
        .expect("bad record produced");
    setup
        .cluster
        .topic_error(
            DLQ,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("topic error");
    let error = detector::run(
        setup.config("g").idle_exit(IDLE).build().expect("config"),
        std::future::pending(),
    )
    .await
    .expect_err("an undeliverable dead letter must end the run");
    assert!(
        format!("{error:#}").contains("without storing"),
        "{error:#}"
    );

    setup
        .cluster
        .topic_error(DLQ, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .expect("topic error cleared");
    let second = detector::run(
        setup.config("g").idle_exit(IDLE).build().expect("config"),
        std::future::pending(),
    )
    .await
    .expect("second run");
    assert_eq!(
        second.dead_letters, 1,
        "the bad record read again: {second:?}"
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", setup.cluster.bootstrap_servers())
        .set("group.id", "dlq-reader")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(DLQ, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    let letter = loop {
        assert!(Instant::now() < deadline, "no dead letter arrived");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("read");
            break schema::DeadLetter::decode(message.payload().unwrap_or_default())
                .expect("a dead letter");
        }
    };
    assert_eq!(letter.partition, 1);
    assert_eq!(letter.reason, "data_not_array");
    assert_eq!(letter.original, bad);
}

/// The ids in `counts` are exactly `flagged` (however often each appears).
fn assert_ids(counts: &BTreeMap<i64, usize>, flagged: &BTreeSet<i64>) {
    let ids: BTreeSet<i64> = counts.keys().copied().collect();
    assert_eq!(
        &ids, flagged,
        "anomaly ids differ from the ids offline scoring flags"
    );
}

// Records too large for their outputs. librdkafka's mock cluster takes no topic configs and
// does not serve DescribeConfigs (measured with examples/broker_limits: the request times
// out), so here the limit is the producer's `message.max.bytes`, which librdkafka itself
// enforces when a record is queued; and the broker's own refusal of a record is a
// MSG_SIZE_TOO_LARGE answer injected into Produce.

/// Every record of `topic` (key, value), read from the start until at least `expected` are in
/// and then nothing more arrives for a second (or 60 s pass).
fn read_all(setup: &Setup, topic: &str, expected: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", setup.cluster.bootstrap_servers())
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    let mut last_seen = Instant::now();
    while Instant::now() < deadline
        && (records.len() < expected || last_seen.elapsed() < Duration::from_secs(1))
    {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("read");
            records.push((
                message.key().unwrap_or_default().to_vec(),
                message.payload().unwrap_or_default().to_vec(),
            ));
            last_seen = Instant::now();
        }
    }
    records
}

/// An output as the tests see it: the source record it names, and whether it was reduced.
#[derive(Debug)]
struct Seen {
    source: (i32, i64),
    truncated: bool,
    reason: Option<String>,
    bytes: usize,
}

/// Every output in the anomalies and dead-letter topics, by what it says of its source.
fn outputs(setup: &Setup, expected: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let anomalies = read_all(setup, OUTPUT, 0);
    let letters = read_all(setup, DLQ, expected.saturating_sub(anomalies.len()));
    for (key, value) in anomalies {
        let anomaly = schema::Anomaly::decode(&value).expect("an anomaly");
        seen.push(Seen {
            source: (anomaly.partition, anomaly.offset),
            truncated: anomaly.truncated.is_some(),
            reason: None,
            bytes: key.len() + value.len(),
        });
    }
    for (key, value) in letters {
        let letter = schema::DeadLetter::decode(&value).expect("a dead letter");
        seen.push(Seen {
            source: (letter.partition, letter.offset),
            truncated: letter.truncated.is_some(),
            reason: Some(letter.reason),
            bytes: key.len() + value.len(),
        });
    }
    seen
}

/// The value of the sample named exactly `name` in OpenMetrics `text` (0 when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Per input partition, consumed = scored + dead-lettered in the metrics, and their sums.
fn accounting(metrics: &detector::metrics::Metrics) -> (f64, f64, f64) {
    let text = metrics.render();
    let mut totals = (0.0, 0.0, 0.0);
    for partition in 0..3 {
        let label = format!("{{partition=\"{partition}\"}}");
        let consumed = sample(&text, &format!("detector_records_consumed_total{label}"));
        let scored = sample(&text, &format!("detector_records_scored_total{label}"));
        let dead = sample(
            &text,
            &format!("detector_records_dead_lettered_total{label}"),
        );
        assert_eq!(consumed, scored + dead, "partition {partition}:\n{text}");
        totals = (totals.0 + consumed, totals.1 + scored, totals.2 + dead);
    }
    totals
}

/// With outputs limited to 10,000 bytes (the detector's `message.max.bytes`): a 999,990-byte
/// anomalous record, records of 1 MiB + 1 byte and 3 MiB, and a record with a 100 KiB key,
/// between good records. The detector keeps running, every good record is scored, each big
/// one has exactly one output, reduced, naming its source, and every output fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_reduced_to_fit_a_small_limit() {
    const LIMIT: usize = 10_000;
    let setup = Setup::new("sizes", 300).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", setup.cluster.bootstrap_servers())
        .set("message.max.bytes", "8000000")
        .create()
        .expect("producer");
    let padded = |id: i64, size: usize| {
        let head = format!(r#"{{"id": {id}, "data": [[3.9, -3.9]], "pad": ""#);
        let mut value = head.into_bytes();
        value.resize(size - 2, b'p');
        value.extend_from_slice(b"\"}");
        value
    };
    let big_key = vec![b'k'; 100 << 10];
    let bigs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"9001".to_vec(), padded(9001, 999_990)),
        (b"9002".to_vec(), padded(9002, (1 << 20) + 1)),
        (b"9003".to_vec(), padded(9003, 3 << 20)),
        (big_key, b"not json".to_vec()),
    ];
    let mut big_sources = Vec::new();
    // The mock keeps about 5 MiB of each partition and drops the oldest records past that:
    // the big records go to different partitions.
    for (n, (key, value)) in bigs.iter().enumerate() {
        let partition = [0, 1, 2, 2][n];
        let delivery = producer
            .send(
                FutureRecord::to(INPUT)
                    .key(key)
                    .payload(value)
                    .partition(partition),
                Duration::from_secs(30),
            )
            .await
            .expect("big record produced");
        big_sources.push((delivery.partition, delivery.offset));
        let good = format!(r#"{{"id": {}, "data": [[2.0, 2.0]]}}"#, 9100 + n);
        producer
            .send(
                FutureRecord::to(INPUT)
                    .key("good")
                    .payload(&good)
                    .partition(0),
                Duration::from_secs(10),
            )
            .await
            .expect("good record produced");
    }
    let metrics = detector::metrics::Metrics::new();
    let kafka = bus::ClientSettings::new(setup.cluster.bootstrap_servers())
        .with("session.timeout.ms", "6000")
        .with("message.max.bytes", LIMIT.to_string());
    let stats = detector::run(
        setup
            .config("sizes")
            .kafka(kafka)
            .metrics(metrics.clone())
            // The mock hands a large record over slowly (~0.5 s for 1 MiB).
            .idle_exit(Duration::from_secs(5))
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("big records must not stop the detector");
    let records = 300 + 2 * bigs.len() as u64;
    assert_eq!(stats.consumed, records, "{stats:?}\n{}", metrics.render());
    assert_eq!(stats.scored, 300 + 1 + bigs.len() as u64, "{stats:?}");
    assert_eq!(stats.dead_letters, 3, "{stats:?}");
    assert_eq!(stats.reduced, 4, "{stats:?}");
    assert_eq!(
        accounting(&metrics),
        (records as f64, stats.scored as f64, 3.0)
    );

    let seen = outputs(&setup, setup.flagged.len() + bigs.len());
    for output in &seen {
        assert!(output.bytes + 97 <= LIMIT, "{output:?} does not fit");
    }
    for (source, reason) in
        big_sources
            .iter()
            .zip([None, Some("oversized"), Some("oversized"), Some("not_json")])
    {
        let about: Vec<&Seen> = seen.iter().filter(|s| s.source == *source).collect();
        assert_eq!(about.len(), 1, "{source:?}: {about:?}");
        assert!(about[0].truncated, "{source:?} reduced: {about:?}");
        assert_eq!(about[0].reason.as_deref(), reason, "{source:?}");
    }
    // Every good record flagged has its anomaly, whole.
    for id in &setup.flagged {
        let source = setup.landed[id];
        assert!(
            seen.iter().any(|s| s.source == source && !s.truncated),
            "no anomaly for {id} at {source:?}"
        );
    }
}

/// The broker refuses produce requests as too large (MSG_SIZE_TOO_LARGE, three times): the
/// refused outputs are sent again smaller, the detector keeps running, and every flagged
/// record still has an output naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_the_broker_refuses_are_sent_again_smaller() {
    let setup = Setup::new("refused", 1000).await;
    setup.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 3],
    );
    let metrics = detector::metrics::Metrics::new();
    let stats = detector::run(
        setup
            .config("refused")
            .metrics(metrics.clone())
            .idle_exit(IDLE)
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("a refused output must not stop the detector");
    assert_eq!(stats.consumed, 1000, "{stats:?}");
    assert!(stats.refused >= 1, "nothing was refused: {stats:?}");
    assert_eq!(accounting(&metrics).0, 1000.0);
    let seen = outputs(&setup, setup.flagged.len());
    let reduced = seen.iter().filter(|s| s.truncated).count();
    println!("{stats:?}; {reduced} reduced outputs of {}", seen.len());
    assert!(reduced >= 1, "no output was sent smaller");
    for id in &setup.flagged {
        let source = setup.landed[id];
        assert!(
            seen.iter().any(|s| s.source == source),
            "no output for {id} at {source:?}"
        );
    }
}

/// The same under --exactly-once: the refusal aborts the transaction, the batch is read again
/// and the refused outputs go out smaller in a committed transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_sends_a_refused_output_smaller_in_a_new_transaction() {
    let setup = Setup::new("eos-refused", 1000).await;
    setup.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let stats = detector::run(
        setup
            .config("eos")
            .exactly_once(Some("t-refused".into()))
            .idle_exit(IDLE)
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("a refused output must not stop the detector");
    assert_eq!(
        stats.consumed, 1000,
        "counted once, in committed transactions: {stats:?}"
    );
    assert!(stats.aborted >= 1 && stats.refused >= 1, "{stats:?}");
    // The mock shows aborted transactions' records too (see above): the reduced outputs are
    // there beside the refused ones' first attempts.
    let seen = outputs(&setup, setup.flagged.len());
    assert!(
        seen.iter().any(|s| s.truncated),
        "no output was sent smaller"
    );
    for id in &setup.flagged {
        let source = setup.landed[id];
        assert!(
            seen.iter().any(|s| s.source == source),
            "no output for {id}"
        );
    }
}
