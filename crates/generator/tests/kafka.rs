//! The generator binary against a real broker at `$KAFKA_BOOTSTRAP` (default
//! 127.0.0.1:9092; start one with `scripts/broker.sh start`): what it writes is read back and
//! checked record by record.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::{DecodeLimits, Transaction};
use testkit::{create_topics, unique};

const GENERATOR: &str = env!("CARGO_BIN_EXE_generator");

/// A fresh topic with `partitions` partitions on the test broker.
fn topic(prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    create_topics(&[(&name, partitions)]);
    name
}

/// A record read back.
struct Read {
    partition: i32,
    key: String,
    transaction: Transaction,
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed;
/// then keeps reading for a moment more so that extra records would be seen.
fn read_back(topic: &str, expected: usize, timeout: Duration) -> Vec<Read> {
    let consumer = testkit::settings().base_consumer().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut grace: Option<Instant> = None;
    loop {
        if records.len() >= expected && grace.is_none() {
            grace = Some(Instant::now() + Duration::from_millis(500));
        }
        if grace.is_some_and(|g| Instant::now() > g) || Instant::now() > deadline {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        let transaction =
            Transaction::decode(message.payload().unwrap(), &DecodeLimits::default()).unwrap();
        records.push(Read {
            partition: message.partition(),
            key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
            transaction,
        });
    }
    records.sort_by_key(|r| r.transaction.key().parse::<i64>().unwrap());
    records
}

fn generator(topic: &str, args: &[&str]) -> Output {
    let output = Command::new(GENERATOR)
        .args(["--brokers", &testkit::bootstrap(), "--topic", topic])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "generator failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `generator: sent=N acknowledged=N failed=N seconds=S rate=R/s` as numbers.
fn summary(stdout: &[u8]) -> BTreeMap<String, f64> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with("generator: "))
        .unwrap_or_else(|| panic!("no summary line in {text:?}"));
    line["generator: ".len()..]
        .split(' ')
        .map(|field| {
            let (name, value) = field.split_once('=').unwrap();
            (
                name.to_string(),
                value.trim_end_matches("/s").parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_seeded_stream_arrives_exactly_as_synthetic_records_says() {
    let topic = topic("t-gen", 3);
    let (count, first_id, seed) = (3000u64, 1_000i64, 42u64);
    let output = generator(
        &topic,
        &[
            "--count",
            &count.to_string(),
            "--rate",
            "0",
            "--seed",
            &seed.to_string(),
            "--first-id",
            &first_id.to_string(),
        ],
    );
    let summary = summary(&output.stdout);
    assert_eq!(summary["sent"], count as f64);
    assert_eq!(summary["acknowledged"], count as f64);
    assert_eq!(summary["failed"], 0.0);

    let records = read_back(&topic, count as usize, Duration::from_secs(60));
    assert_eq!(records.len(), count as usize, "records in the topic");
    let expected: Vec<Transaction> =
        dataset::synthetic_records(seed, 0.7, first_id, count).collect();
    let mut partitions = BTreeMap::new();
    for (read, expected) in records.iter().zip(&expected) {
        assert_eq!(
            read.transaction.id, expected.id,
            "ids are first_id..first_id+N"
        );
        assert_eq!(read.key, expected.key(), "keyed by id");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&read.transaction.features),
            bits(&expected.features),
            "record {}",
            read.key
        );
        assert!(read.transaction.time().is_some(), "current_time is a time");
        assert!(
            read.transaction.fields()["data"][0].is_array(),
            "nested data"
        );
        *partitions.entry(read.partition).or_insert(0) += 1;
    }
    assert_eq!(
        partitions.len(),
        3,
        "keys spread over the partitions: {partitions:?}"
    );
}

#[test]
fn a_csv_replays_with_its_labels() {
    let topic = topic("t-gen-csv", 1);
    let dir = std::env::temp_dir().join(unique("gen-csv"));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("table.csv");
    let mut text = String::from("amount,label,age,score\n");
    for row in 0..40 {
        text.push_str(&format!(
            "{}.5,{},{},{}e-3\n",
            row,
            row % 3 / 2,
            20 + row,
            row * 7
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let output = generator(
        &topic,
        &[
            "--csv",
            csv.to_str().unwrap(),
            "--label-column",
            "label",
            "--count",
            "0",
            "--rate",
            "0",
            "--first-id",
            "7",
        ],
    );
    assert_eq!(summary(&output.stdout)["acknowledged"], 40.0);
    let records = read_back(&topic, 40, Duration::from_secs(30));
    assert_eq!(records.len(), 40);
    for (row, read) in records.iter().enumerate() {
        let tx = &read.transaction;
        assert_eq!(read.key, (7 + row).to_string());
        assert_eq!(tx.label, Some((row % 3 / 2) as u8), "row {row}");
        assert_eq!(
            tx.features,
            [
                format!("{row}.5").parse::<f64>().unwrap(),
                (20 + row) as f64,
                format!("{}e-3", row * 7).parse::<f64>().unwrap()
            ],
            "row {row}: every column but the label, in file order"
        );
    }
    assert!(records.iter().any(|r| r.transaction.label == Some(1)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_rate_is_held() {
    let topic = topic("t-gen-rate", 1);
    let output = generator(&topic, &["--count", "60", "--rate", "100"]);
    let summary = summary(&output.stdout);
    assert_eq!(summary["acknowledged"], 60.0);
    // Record n is due at n/100 s: the last at 0.59 s.
    assert!(
        (0.55..3.0).contains(&summary["seconds"]),
        "60 records at 100/s took {} s",
        summary["seconds"]
    );
}

#[test]
fn sigterm_stops_cleanly_with_everything_sent_acknowledged() {
    let topic = topic("t-gen-stop", 3);
    let child = Command::new(GENERATOR)
        .args(["--brokers", &testkit::bootstrap(), "--topic", &topic])
        .args(["--count", "0", "--rate", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let consumer = testkit::settings().base_consumer().unwrap();
    let in_topic = || -> i64 {
        (0..3)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))
                    .map_or(0, |(low, high)| high - low)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_topic() < 200 {
        assert!(Instant::now() < deadline, "the generator wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        started.elapsed()
    );
    assert!(
        output.status.success(),
        "exit {} after SIGTERM:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary(&output.stdout);
    assert!(summary["sent"] >= 200.0, "{summary:?}");
    assert_eq!(summary["acknowledged"], summary["sent"], "{summary:?}");
    assert_eq!(summary["failed"], 0.0);
    assert_eq!(
        in_topic() as f64,
        summary["sent"],
        "what was sent is in the topic"
    );
}
