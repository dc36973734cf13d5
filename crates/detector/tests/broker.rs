//! The detector binary against a real broker over TCP (`$KAFKA_BOOTSTRAP`, default
//! `127.0.0.1:9092`; `scripts/test.sh` starts one with sqlite storage). Each test has its own
//! topics (`t-det-<pid>-<nanos>-…`, transactions with 3 partitions) and consumer group, a model
//! trained here with `iforest` on the original pipeline's two clusters, and a seeded stream
//! produced here with rdkafka in the original record format. Waits are polls with deadlines.
//!
//! Tansu's memory storage skips the rest of a record batch when a consumer resumes inside it,
//! so the restart and hand-over tests need a broker with sqlite storage (or Apache Kafka).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use iforest::{Contamination, IsolationForest, IsolationForestParams};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema::{Anomaly, DeadLetter};
use tempfile::TempDir;
use testkit::{bootstrap, create_topics, unique, wait_until, Guard};

// ---------------------------------------------------------------------------------------------
// Broker, topics, processes
// ---------------------------------------------------------------------------------------------

/// One test's topics: transactions (3 partitions), anomalies and dead letters.
struct Topics {
    transactions: String,
    anomalies: String,
    dead_letters: String,
}

impl Topics {
    fn create() -> Topics {
        let topics = Topics {
            transactions: unique("t-det-transactions"),
            anomalies: unique("t-det-anomalies"),
            dead_letters: unique("t-det-dlq"),
        };
        create_topics(&[
            (&topics.transactions, 3),
            (&topics.anomalies, 1),
            (&topics.dead_letters, 1),
        ]);
        topics
    }
}

/// A detector on `topics` with `model` in `group`; its log goes to `log`.
fn detector(model: &TrainedModel, topics: &Topics, group: &str, log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_detector"));
    command
        .arg("--model")
        .arg(&model.path)
        .args(["--brokers", &bootstrap()])
        .args(["--input-topic", &topics.transactions])
        .args(["--output-topic", &topics.anomalies])
        .args(["--dlq-topic", &topics.dead_letters])
        .args(["--group", group])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"));
    command
}

/// `name=value` from a detector's summary line.
fn field(summary: &str, name: &str) -> f64 {
    summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .map(|value| value.trim_end_matches("/s"))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in the summary {summary:?}"))
}

/// How many partitions of `topic` the detector logging to `log` owns now.
fn owned(log: &Path, topic: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rfind(|line| line.contains("assigned partitions:"))
        .map_or(0, |line| line.matches(&format!("{topic}/")).count())
}

// ---------------------------------------------------------------------------------------------
// Model and records
// ---------------------------------------------------------------------------------------------

/// splitmix64: a seeded stream, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The original pipeline's point: 0.3·N(0, 1) around (2, 2) or (−2, −2).
    fn cluster_point(&mut self) -> [f64; 2] {
        let centre = if self.uniform() < 0.5 { 2.0 } else { -2.0 };
        [centre + 0.3 * self.normal(), centre + 0.3 * self.normal()]
    }
}

struct TrainedModel {
    path: PathBuf,
    forest: IsolationForest,
    id: String,
}

/// 1000 points of the two clusters, contamination 0.01, saved in `scratch`.
fn train(scratch: &TempDir) -> TrainedModel {
    let mut rng = Rng(2024);
    let data: Vec<f64> = (0..1000).flat_map(|_| rng.cluster_point()).collect();
    let path = scratch.path().join("model.bin");
    IsolationForestParams::new()
        .contamination(Contamination::Fraction(0.01))
        .seed(7)
        .fit(&data, 2)
        .expect("fit")
        .save(&path)
        .expect("save");
    TrainedModel {
        forest: IsolationForest::load(&path).expect("load"),
        id: iforest::model_id(&std::fs::read(&path).expect("read model")),
        path,
    }
}

/// A transaction as produced: id, features, the JSON sent.
struct Record {
    id: i64,
    features: [f64; 2],
    json: Vec<u8>,
}

/// The original's stream: with probability 0.7 a uniform outlier in [−4, 4]², otherwise a
/// cluster point; rounded to 3 decimals; `{"id": N, "data": [[x, y]], "current_time": "…"}`.
fn stream(seed: u64, first_id: i64, count: usize) -> Vec<Record> {
    let mut rng = Rng(seed);
    (first_id..first_id + count as i64)
        .map(|id| {
            let point = if rng.uniform() < 0.7 {
                [rng.uniform() * 8.0 - 4.0, rng.uniform() * 8.0 - 4.0]
            } else {
                rng.cluster_point()
            };
            let features = point.map(|v| (v * 1000.0).round() / 1000.0);
            let time = format!(
                "2024-04-27T21:{:02}:{:02}.{:06}",
                (id / 60_000) % 60,
                (id / 1000) % 60,
                (id % 1000) * 1000
            );
            let json = format!(
                r#"{{"id": {id}, "data": [[{}, {}]], "current_time": "{time}"}}"#,
                features[0], features[1]
            );
            Record {
                id,
                features,
                json: json.into_bytes(),
            }
        })
        .collect()
}

/// The ids offline scoring flags.
fn flagged(model: &TrainedModel, records: &[Record]) -> BTreeSet<i64> {
    records
        .iter()
        .filter(|r| model.forest.predict(&r.features).expect("score"))
        .map(|r| r.id)
        .collect()
}

/// Produces (key, value, partition) all at once and waits for every acknowledgement;
/// returns where each landed.
fn produce(topic: &str, records: &[(Option<String>, Vec<u8>, Option<i32>)]) -> Vec<(i32, i64)> {
    let records: Vec<testkit::Record> = records
        .iter()
        .map(|(key, value, partition)| testkit::Record {
            partition: *partition,
            key: key.clone().map(String::into_bytes),
            value: value.clone(),
            timestamp_ms: None,
        })
        .collect();
    testkit::produce(topic, &records)
}

/// Produces transactions keyed by id (the producer spreads them over the partitions).
fn produce_stream(topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
    let values: Vec<_> = records
        .iter()
        .map(|r| (Some(r.id.to_string()), r.json.clone(), None))
        .collect();
    produce(topic, &values)
}

/// Reads every partition of `topic` from the beginning, handing each value to `done`, until
/// it says so or `timeout` passes; returns every value read.
fn read_topic(topic: &str, timeout: Duration, mut done: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let (mut handed, mut finished) = (0, false);
    testkit::read_topic(topic, timeout, |got| {
        for record in &got[handed..] {
            finished = finished || done(&record.value);
        }
        handed = got.len();
        finished
    })
    .into_iter()
    .map(|record| record.value)
    .collect()
}

/// Reads `n` values of `topic` (fewer if `timeout` passes first).
fn read_n(topic: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut count = 0;
    read_topic(topic, timeout, |_| {
        count += 1;
        count >= n
    })
}

/// Reads anomalies until every id of `expected` has arrived (or `timeout`): all those read.
fn read_anomalies(topic: &str, expected: &BTreeSet<i64>, timeout: Duration) -> Vec<Anomaly> {
    let mut missing = expected.clone();
    read_topic(topic, timeout, |value| {
        if let Some(id) = Anomaly::decode(value)
            .ok()
            .and_then(|a| a.id.to_string().parse::<i64>().ok())
        {
            missing.remove(&id);
        }
        missing.is_empty()
    })
    .iter()
    .map(|value| Anomaly::decode(value).expect("an anomaly record"))
    .collect()
}

/// Ids (as numbers) of anomalies, with how often each came.
fn tally(anomalies: &[Anomaly]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for anomaly in anomalies {
        let id: i64 = anomaly.id.to_string().parse().expect("numeric id");
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// The group's committed offsets for the 3 partitions of `topic` (-1 = none).
fn committed(group: &str, topic: &str) -> Vec<i64> {
    testkit::committed(group, topic, 3)
        .into_iter()
        .map(|offset| offset.unwrap_or(-1))
        .collect()
}

/// Per partition (0..3), the offset after the last record produced: what a group that
/// processed everything has committed.
fn ends(landed: &[(i32, i64)]) -> Vec<i64> {
    let mut ends = vec![-1; 3];
    for &(partition, offset) in landed {
        let end = &mut ends[partition as usize];
        *end = (*end).max(offset + 1);
    }
    ends
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// 1: the ids in the output topic are exactly those offline scoring flags (at least once each),
/// and every anomaly traces back to its source record and names the model.
#[test]
fn anomalies_are_exactly_what_offline_scoring_flags() {
    const RECORDS: usize = 24_000;
    let topics = Topics::create();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let records = stream(1, 0, RECORDS);
    let expected = flagged(&model, &records);
    let landed = produce_stream(&topics.transactions, &records);
    let log = scratch.path().join("detector.log");

    let child = detector(&model, &topics, &unique("group"), &log)
        .args(["--idle-exit", "3"])
        .spawn()
        .expect("start the detector");
    let (status, summary) = Guard(child).finish(Duration::from_secs(90), "the detector to finish");
    assert!(
        status.success(),
        "{status}: {summary}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    println!("{}", summary.trim());
    assert_eq!(field(&summary, "consumed") as usize, RECORDS, "{summary}");
    assert_eq!(
        field(&summary, "anomalies") as usize,
        expected.len(),
        "{summary}"
    );

    let anomalies = read_anomalies(&topics.anomalies, &expected, Duration::from_secs(60));
    let counts = tally(&anomalies);
    let duplicates: Vec<(i64, usize)> = counts
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&id, &n)| (id, n))
        .collect();
    println!(
        "{} records, {} flagged offline, {} distinct anomalies, duplicates: {duplicates:?}",
        RECORDS,
        expected.len(),
        counts.len()
    );
    let found: BTreeSet<i64> = counts.keys().copied().collect();
    assert_eq!(
        found.difference(&expected).count(),
        0,
        "anomalies offline scoring does not flag"
    );
    assert_eq!(
        expected.difference(&found).count(),
        0,
        "flagged records without an anomaly"
    );
    assert!(
        expected.len() > RECORDS / 3,
        "the stream should be mostly outliers"
    );

    let by_id: BTreeMap<i64, (i32, i64)> = records.iter().map(|r| r.id).zip(landed).collect();
    for anomaly in &anomalies {
        let id: i64 = anomaly.id.to_string().parse().unwrap();
        assert_eq!(
            (anomaly.partition, anomaly.offset),
            by_id[&id],
            "source of anomaly {id}"
        );
        assert_eq!(anomaly.model, model.id);
        assert_eq!(anomaly.threshold, model.forest.threshold());
        assert!(anomaly.anomaly_score > anomaly.threshold);
        assert_eq!(anomaly.score, vec![-anomaly.anomaly_score]);
    }
}

/// 2: two detectors in one group share the 3 partitions and together process every record;
/// stopping one (SIGTERM) hands its partitions to the other without losing records.
#[test]
fn two_detectors_share_the_partitions_and_hand_over_on_sigterm() {
    const HALF: usize = 10_000;
    let topics = Topics::create();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let group = unique("group");
    let start = |name: &str| {
        let log = scratch.path().join(format!("{name}.log"));
        let child = detector(&model, &topics, &group, &log)
            .spawn()
            .expect("start");
        (Guard(child), log)
    };
    let (first, first_log) = start("first");
    let (second, second_log) = start("second");
    let topic = &topics.transactions;
    wait_until(
        Duration::from_secs(60),
        "both detectors to own partitions",
        || {
            let (a, b) = (owned(&first_log, topic), owned(&second_log, topic));
            a >= 1 && b >= 1 && a + b == 3
        },
    );
    println!(
        "partitions: first {}, second {}",
        owned(&first_log, topic),
        owned(&second_log, topic)
    );

    let first_half = stream(2, 0, HALF);
    let mut expected = flagged(&model, &first_half);
    let mut landed = produce_stream(topic, &first_half);
    let found = tally(&read_anomalies(
        &topics.anomalies,
        &expected,
        Duration::from_secs(60),
    ));
    assert!(
        expected.iter().all(|id| found.contains_key(id)),
        "two detectors together lost anomalies"
    );

    second.sigterm();
    let (status, second_summary) =
        second.finish(Duration::from_secs(15), "the second detector to stop");
    assert!(
        status.success(),
        "SIGTERM must end the detector with exit 0: {status}"
    );
    assert!(
        field(&second_summary, "consumed") > 0.0,
        "the second detector did no work: {second_summary}"
    );
    wait_until(
        Duration::from_secs(60),
        "the first detector to own all partitions",
        || owned(&first_log, topic) == 3,
    );

    let second_half = stream(3, HALF as i64, HALF);
    expected.extend(flagged(&model, &second_half));
    landed.extend(produce_stream(topic, &second_half));
    let anomalies = read_anomalies(&topics.anomalies, &expected, Duration::from_secs(60));
    first.sigterm();
    let (status, first_summary) =
        first.finish(Duration::from_secs(15), "the first detector to stop");
    assert!(status.success(), "{status}");

    let counts = tally(&anomalies);
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    let consumed = field(&first_summary, "consumed") + field(&second_summary, "consumed");
    println!(
        "first: {}\nsecond: {}\nexpected {} anomalies, found {}, duplicates {duplicates}",
        first_summary.trim(),
        second_summary.trim(),
        expected.len(),
        counts.len()
    );
    assert_eq!(
        counts.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "anomalies lost or invented across the hand-over"
    );
    assert!(
        consumed as usize >= 2 * HALF,
        "together they read only {consumed}"
    );
    // Every record processed and committed: the group's offsets are at the end of each partition.
    assert_eq!(committed(&group, topic), ends(&landed), "committed offsets");
}

/// 3: records that cannot be scored go to the dead-letter topic with their reason, partition,
/// offset and original bytes; the good records around them are scored.
#[test]
fn bad_records_become_dead_letters_and_good_ones_around_them_are_scored() {
    let topics = Topics::create();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let good = |id: i64, x: f64, y: f64| {
        (
            Some(id.to_string()),
            format!(r#"{{"id": {id}, "data": [[{x}, {y}]], "current_time": "2024-04-27T21:17:34.733387"}}"#)
                .into_bytes(),
            Some(0),
        )
    };
    let sent = vec![
        good(1, 3.9, -3.9),
        (
            Some("bad-1".to_string()),
            b"hello, detector".to_vec(),
            Some(0),
        ),
        good(2, -3.8, 3.7),
        (
            Some("3".to_string()),
            br#"{"id": 3, "data": [[1.0, 2.0, 3.0]]}"#.to_vec(),
            Some(0),
        ),
        (
            Some("4".to_string()),
            br#"{"id": 4, "data": [[3.5, 3.9]], "current_time": "not a time"}"#.to_vec(),
            Some(0),
        ),
        good(5, 2.0, 2.0),
        good(6, -3.9, -0.1),
    ];
    let landed = produce(&topics.transactions, &sent);
    // The good records are clear outliers except id 5, at a cluster's centre.
    let expected: BTreeSet<i64> = [1, 2, 4, 6].into();
    for (id, features) in [
        (1, [3.9, -3.9]),
        (2, [-3.8, 3.7]),
        (4, [3.5, 3.9]),
        (6, [-3.9, -0.1]),
    ] {
        assert!(
            model.forest.predict(&features).unwrap(),
            "record {id} should be flagged"
        );
    }
    assert!(!model.forest.predict(&[2.0, 2.0]).unwrap());

    let log = scratch.path().join("detector.log");
    let child = detector(&model, &topics, &unique("group"), &log)
        .args(["--idle-exit", "2"])
        .spawn()
        .expect("start");
    let (status, summary) = Guard(child).finish(Duration::from_secs(60), "the detector to finish");
    assert!(status.success(), "{status}");
    println!("{}", summary.trim());
    for (name, value) in [
        ("consumed", 7.0),
        ("scored", 5.0),
        ("anomalies", 4.0),
        ("dead_letters", 2.0),
    ] {
        assert_eq!(field(&summary, name), value, "{name} in {summary}");
    }

    let letters: Vec<DeadLetter> = read_n(&topics.dead_letters, 2, Duration::from_secs(30))
        .iter()
        .map(|value| DeadLetter::decode(value).expect("a dead letter"))
        .collect();
    assert_eq!(letters.len(), 2, "dead letters: {letters:?}");
    for (letter, (index, reason)) in letters.iter().zip([(1, "not_json"), (3, "feature_count")]) {
        assert_eq!(letter.reason, reason);
        assert_eq!((letter.partition, letter.offset), landed[index], "{reason}");
        assert_eq!(letter.original, sent[index].1, "{reason}: original bytes");
        assert_eq!(letter.key, sent[index].0, "{reason}: key");
        assert_eq!(letter.source_topic, topics.transactions);
        assert!(!letter.detail.is_empty());
    }
    let anomalies = read_anomalies(&topics.anomalies, &expected, Duration::from_secs(30));
    assert_eq!(
        tally(&anomalies).keys().copied().collect::<BTreeSet<_>>(),
        expected
    );
    let late = anomalies.iter().find(|a| a.id.to_string() == "4").unwrap();
    assert_eq!(
        late.current_time.as_deref(),
        Some("not a time"),
        "kept as written"
    );
}

/// 4: a model file that is missing, garbage or truncated stops the detector at start, before
/// it connects (no broker needed), with one line naming the file and the problem; no panic.
#[test]
fn a_bad_model_file_stops_the_detector_at_start_with_a_message() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let garbage = scratch.path().join("garbage.bin");
    std::fs::write(&garbage, b"\x00\x01 definitely not a model").unwrap();
    let truncated = scratch.path().join("truncated.bin");
    let bytes = std::fs::read(&model.path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let missing = scratch.path().join("missing.bin");
    for (path, problem) in [
        (&missing, "No such file"),
        (&garbage, "not a model file"),
        (&truncated, "truncated"),
    ] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("--model")
            .arg(path)
            // Nothing listens here: the detector must fail before trying.
            .args(["--brokers", "127.0.0.1:1"])
            .output()
            .expect("run the detector");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let line = stderr.lines().last().unwrap_or_default();
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            line.contains(&path.display().to_string()),
            "names the file: {line}"
        );
        assert!(
            line.contains(problem),
            "names the problem ({problem}): {line}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}

/// 5: SIGTERM mid-stream → exit 0 with the processed offsets committed; a restarted detector in
/// the same group reads exactly the rest: nothing committed is read again, nothing is lost.
#[test]
fn sigterm_commits_and_a_restart_reads_only_the_rest() {
    const RECORDS: usize = 20_000;
    let topics = Topics::create();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let records = stream(5, 0, RECORDS);
    let landed = produce_stream(&topics.transactions, &records);
    let group = unique("group");
    let start = |name: &str, extra: &[&str]| {
        // Small batches, one in flight: the detector is mid-stream when the signal comes.
        let log = scratch.path().join(format!("{name}.log"));
        let child = detector(&model, &topics, &group, &log)
            .args(["--batch-size", "50", "--in-flight-batches", "1"])
            .args(extra)
            .spawn()
            .expect("start");
        Guard(child)
    };

    let first = start("first", &[]);
    read_n(&topics.anomalies, 300, Duration::from_secs(60));
    let signalled = Instant::now();
    first.sigterm();
    let (status, summary) = first.finish(
        Duration::from_secs(10),
        "the detector to exit after SIGTERM",
    );
    let stopped_in = signalled.elapsed();
    assert!(
        status.success(),
        "SIGTERM must end the detector with exit 0, not {status}"
    );
    let before = field(&summary, "consumed") as i64;
    assert!(
        before > 0 && before < RECORDS as i64,
        "not stopped mid-stream: {summary}"
    );
    let offsets = committed(&group, &topics.transactions);
    assert_eq!(
        offsets.iter().map(|&o| o.max(0)).sum::<i64>(),
        before,
        "committed offsets {offsets:?} should cover exactly the {before} records read"
    );

    let second = start("second", &["--idle-exit", "3"]);
    let (status, summary) =
        second.finish(Duration::from_secs(90), "the restarted detector to finish");
    assert!(status.success(), "{status}");
    let after = field(&summary, "consumed") as i64;
    println!("stopped in {stopped_in:?}; read {before}, after the restart {after}, of {RECORDS}");
    assert_eq!(
        before + after,
        RECORDS as i64,
        "the restart re-read committed records or lost some"
    );
    assert_eq!(committed(&group, &topics.transactions), ends(&landed));
}

/// 6: `--exactly-once`. On a broker without Kafka transactions (Tansu, which `scripts/test.sh`
/// runs) the detector stops at start, exit 2, saying what the mode needs. On one with them
/// (Apache Kafka: `KAFKA_BOOTSTRAP=localhost:9092` with docker compose) a detector is killed
/// with SIGKILL mid-stream and restarted with the same transactional id, and a
/// `read_committed` reader sees every flagged record's anomaly exactly once.
#[test]
fn exactly_once_is_refused_without_transactions_and_exact_with_them() {
    let versions = bus::api_versions::api_versions(&bootstrap(), Duration::from_secs(5))
        .expect("ApiVersions from the test broker");
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let topics = Topics::create();
    let group = unique("group");
    if !bus::api_versions::missing_transaction_apis(&versions).is_empty() {
        let output = detector(&model, &topics, &group, &scratch.path().join("eos.log"))
            .arg("--exactly-once")
            .stderr(Stdio::piped())
            .output()
            .expect("run the detector");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(line.contains("no Kafka transactions"), "{line}");
        assert!(line.contains("EndTxn"), "names the missing API: {line}");
        assert!(line.contains("Apache Kafka"), "says what is needed: {line}");
        return;
    }
    println!(
        "{} has transactions: crash and restart under --exactly-once",
        bootstrap()
    );
    const RECORDS: usize = 20_000;
    let records = stream(6, 0, RECORDS);
    let expected = flagged(&model, &records);
    let landed = produce_stream(&topics.transactions, &records);
    let start = |name: &str, extra: &[&str]| {
        let log = scratch.path().join(format!("{name}.log"));
        let child = detector(&model, &topics, &group, &log)
            .args(["--exactly-once", "--transactional-id", &group])
            .args(["--batch-size", "100"])
            // The killed member's partitions move on after its session times out.
            .args(["-X", "session.timeout.ms=6000"])
            .args(extra)
            .spawn()
            .expect("start");
        Guard(child)
    };
    let first = start("first", &[]);
    read_n(&topics.anomalies, 500, Duration::from_secs(60));
    drop(first); // SIGKILL
    let second = start("second", &["--idle-exit", "3"]);
    let (status, summary) = second.finish(Duration::from_secs(120), "the restarted detector");
    assert!(status.success(), "{status}: {summary}");
    let counts = tally(&read_anomalies(
        &topics.anomalies,
        &expected,
        Duration::from_secs(60),
    ));
    assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), expected);
    let duplicates: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "read_committed saw duplicates: {duplicates:?}"
    );
    assert_eq!(committed(&group, &topics.transactions), ends(&landed));
}

/// Issue 6.3: `--metrics-addr` serves Prometheus text; a scrape after the stream shows, per
/// partition, consumed = scored + dead-lettered, totals that match what went in and out, dead
/// letters by reason, the model's id and the latency histograms.
#[test]
fn metrics_account_for_every_record() {
    const GOOD: usize = 2000;
    let topics = Topics::create();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let records = stream(11, 0, GOOD);
    let expected = flagged(&model, &records);
    produce_stream(&topics.transactions, &records);
    let bad: Vec<(Option<String>, Vec<u8>, Option<i32>)> = [
        &b"not json"[..],
        br#"{"id": 1}"#,
        br#"{"id": 2, "data": [[1, 2, 3]]}"#,
    ]
    .iter()
    .enumerate()
    .map(|(i, value)| (None, value.to_vec(), Some(i as i32)))
    .collect();
    produce(&topics.transactions, &bad);
    let total = GOOD + bad.len();

    let log = scratch.path().join("metrics.log");
    let detector = Guard(
        detector(&model, &topics, &unique("group"), &log)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .spawn()
            .expect("start"),
    );
    let mut address = String::new();
    wait_until(
        Duration::from_secs(30),
        "the metrics address in the log",
        || {
            address = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .find_map(|line| line.split("metrics at http://").nth(1))
                // A line still being written has no "/metrics" at its end yet.
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .map(str::to_string)
                .unwrap_or_default();
            !address.is_empty()
        },
    );
    let mut text = String::new();
    let mut detector = detector;
    wait_until(
        Duration::from_secs(60),
        "every record in the metrics",
        || {
            if let Ok(Some(status)) = detector.0.try_wait() {
                panic!(
                    "the detector exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            text = scrape(&address, "/metrics");
            sum(&text, "detector_records_consumed_total") == total as f64
        },
    );
    assert!(
        scrape(&address, "/other").is_empty(),
        "only /metrics answers"
    );
    drop(detector);

    for partition in 0..3 {
        let label = format!("{{partition=\"{partition}\"}}");
        let consumed = value(&text, &format!("detector_records_consumed_total{label}"));
        let scored = value(&text, &format!("detector_records_scored_total{label}"));
        let dead = value(
            &text,
            &format!("detector_records_dead_lettered_total{label}"),
        );
        assert!(
            consumed > 0.0,
            "partition {partition} read nothing:\n{text}"
        );
        assert_eq!(consumed, scored + dead, "partition {partition}:\n{text}");
    }
    assert_eq!(sum(&text, "detector_records_scored_total"), GOOD as f64);
    assert_eq!(
        value(&text, "detector_anomalies_total"),
        expected.len() as f64
    );
    for reason in ["not_json", "missing_data", "feature_count"] {
        let line = format!("detector_dead_letters_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&text, &line), 1.0, "{line}:\n{text}");
    }
    assert_eq!(
        value(&text, &format!("detector_model{{model=\"{}\"}}", model.id)),
        1.0
    );
    assert!(value(&text, "detector_model_age_seconds") >= 0.0);
    assert!(value(&text, "detector_rebalances_total") >= 1.0);
    assert!(value(&text, "detector_scoring_seconds_count") >= 1.0);
    assert_eq!(
        value(&text, "detector_end_to_end_seconds_count"),
        total as f64
    );
}

/// The body of `GET path` (empty unless the answer is 200).
fn scrape(address: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address)
        .unwrap_or_else(|error| panic!("connect to the metrics at {address:?}: {error}"));
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => body.to_string(),
        _ => String::new(),
    }
}

/// The value of the sample named exactly `name` (with its labels); panics when absent.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// The sum of every sample of the metric `name`, whatever its labels.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every (key, value) of partition 0 of `topic` from the start, read until `count` are in
/// (or `timeout` passes).
fn read_records(topic: &str, count: usize, timeout: Duration) -> Vec<(Vec<u8>, Vec<u8>)> {
    testkit::read_topic(topic, timeout, |got| {
        got.iter().filter(|record| record.partition == 0).count() >= count
    })
    .into_iter()
    .filter(|record| record.partition == 0)
    .map(|record| (record.key.unwrap_or_default().into_bytes(), record.value))
    .collect()
}

/// Issue "no record can stop the pipeline", on a real broker: between good records, a
/// 999,990-byte anomalous record, records of 1 MiB + 1, 3 MiB and 4 MiB (the largest Tansu
/// 0.6.0 hands back to a consumer: it takes 20 MiB but does not return 8 MiB, measured with
/// examples/broker_limits), and a not-JSON record whose key is 100 KiB. The dead-letter topic
/// is created with max.message.bytes=150000, which the detector learns through
/// DescribeConfigs (Tansu does not enforce it); the anomalies topic has none, so its limit is
/// the producer's message.max.bytes (1,000,000). The detector (in-process, from
/// Config::builder) keeps running, every good record is scored, each big one has exactly one
/// output naming its source, reduced where the whole would not fit, every output fits its
/// topic's limit, and consumed = scored + dead-lettered in the metrics.
#[test]
fn no_record_can_stop_the_pipeline() {
    const DLQ_LIMIT: usize = 150_000;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = train(&scratch);
    let (transactions, anomalies, dead_letters) = (
        unique("t-det-transactions"),
        unique("t-det-anomalies"),
        unique("t-det-dlq"),
    );
    let admin: AdminClient<DefaultClientContext> =
        testkit::settings().client_config().create().expect("admin");
    let limit = DLQ_LIMIT.to_string();
    let new = [
        NewTopic::new(&transactions, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&anomalies, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&dead_letters, 1, TopicReplication::Fixed(1))
            .set("max.message.bytes", &limit),
    ];
    for result in block_on(admin.create_topics(&new, &AdminOptions::new())).expect("create") {
        result.unwrap_or_else(|(name, code)| panic!("cannot create {name}: {code}"));
    }

    let producer: FutureProducer = testkit::settings()
        .client_config()
        .set("message.max.bytes", "25000000")
        .create()
        .expect("producer");
    let send = |key: &[u8], value: &[u8]| {
        let delivery = block_on(producer.send(
            FutureRecord::to(&transactions).key(key).payload(value),
            Duration::from_secs(60),
        ))
        .map_err(|(error, _)| error)
        .expect("produced");
        (delivery.partition, delivery.offset)
    };
    let padded = |id: i64, size: usize| {
        let mut value = format!(r#"{{"id": {id}, "data": [[3.9, -3.9]], "pad": ""#).into_bytes();
        value.resize(size - 2, b'p');
        value.extend_from_slice(b"\"}");
        value
    };
    assert!(model.forest.predict(&[3.9, -3.9]).unwrap());
    let good = stream(21, 0, 500);
    let expected = flagged(&model, &good);
    // Key, value, and the reason of its dead letter (None: it is an anomaly). Each is reduced.
    let bigs: Vec<(Vec<u8>, Vec<u8>, Option<&str>)> = vec![
        (b"9001".to_vec(), padded(9001, 999_990), None),
        (
            b"9002".to_vec(),
            padded(9002, (1 << 20) + 1),
            Some("oversized"),
        ),
        (b"9003".to_vec(), padded(9003, 3 << 20), Some("oversized")),
        (b"9004".to_vec(), padded(9004, 4 << 20), Some("oversized")),
        (
            vec![b'k'; 100 << 10],
            b"not json".to_vec(),
            Some("not_json"),
        ),
    ];
    let mut big_sources = Vec::new();
    for (n, chunk) in good.chunks(100).enumerate() {
        for record in chunk {
            send(record.id.to_string().as_bytes(), &record.json);
        }
        if let Some((key, value, _)) = bigs.get(n) {
            big_sources.push(send(key, value));
        }
    }

    let metrics = detector::metrics::Metrics::new();
    let config = detector::Config::builder(model.path.clone())
        .kafka(bus::ClientSettings::new(bootstrap()))
        .group(unique("group"))
        .input_topic(&transactions)
        .output_topic(&anomalies)
        .dead_letter_topic(&dead_letters)
        .metrics(metrics.clone())
        .idle_exit(Duration::from_secs(5))
        .build()
        .expect("config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stats = runtime
        .block_on(detector::run(config, std::future::pending()))
        .expect("no record may stop the detector");
    println!("{stats:?}");
    let total = (good.len() + bigs.len()) as u64;
    assert_eq!(stats.consumed, total, "{stats:?}");
    assert_eq!(stats.scored, good.len() as u64 + 1, "{stats:?}");
    assert_eq!(stats.dead_letters, 4, "{stats:?}");
    assert_eq!(stats.anomalies, expected.len() as u64 + 1, "{stats:?}");
    let text = metrics.render();
    let consumed = value(&text, "detector_records_consumed_total{partition=\"0\"}");
    let scored = value(&text, "detector_records_scored_total{partition=\"0\"}");
    let dead = value(
        &text,
        "detector_records_dead_lettered_total{partition=\"0\"}",
    );
    println!("metrics: consumed={consumed} scored={scored} dead_lettered={dead}");
    assert_eq!((consumed, scored + dead), (total as f64, total as f64));

    let outputs_of =
        |topic: &str, count: usize| read_records(topic, count, Duration::from_secs(60));
    let found_anomalies = outputs_of(&anomalies, expected.len() + 1);
    let found_letters = outputs_of(&dead_letters, 4);
    let mut seen: Vec<((i32, i64), bool, Option<String>)> = Vec::new();
    for (key, value) in &found_anomalies {
        assert!(
            key.len() + value.len() + 97 <= 1_000_000,
            "anomaly of {} bytes",
            value.len()
        );
        let anomaly = Anomaly::decode(value).expect("an anomaly");
        seen.push((
            (anomaly.partition, anomaly.offset),
            anomaly.truncated.is_some(),
            None,
        ));
    }
    for (key, value) in &found_letters {
        assert!(
            key.len() + value.len() + 97 <= DLQ_LIMIT,
            "letter of {} bytes",
            value.len()
        );
        let letter = DeadLetter::decode(value).expect("a dead letter");
        assert_eq!(letter.source_topic, transactions);
        seen.push((
            (letter.partition, letter.offset),
            letter.truncated.is_some(),
            Some(letter.reason),
        ));
    }
    for (source, (_, value, reason)) in big_sources.iter().zip(&bigs) {
        let about: Vec<_> = seen.iter().filter(|(s, _, _)| s == source).collect();
        println!("{} bytes at {source:?}: {about:?}", value.len());
        assert_eq!(about.len(), 1, "{source:?}: {about:?}");
        assert!(about[0].1, "{source:?} reduced");
        assert_eq!(about[0].2.as_deref(), *reason, "{source:?}");
    }
    assert_eq!(
        found_anomalies.len(),
        expected.len() + 1,
        "one anomaly per flagged record"
    );
    let ids: BTreeSet<i64> = found_anomalies
        .iter()
        .filter_map(|(_, value)| Anomaly::decode(value).ok()?.id.to_string().parse().ok())
        .collect();
    assert!(
        expected.is_subset(&ids),
        "every good flagged record has its anomaly"
    );
}
