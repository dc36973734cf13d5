//! JSON records through the generator binary against a real broker at `$KAFKA_BOOTSTRAP`
//! (default 127.0.0.1:9092; start one with `scripts/broker.sh start`): a replayed JSON-lines
//! file and the payments scenario, read back and checked record by record.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Duration;

use dataset::PaymentsParams;
use serde_json::Value;
use testkit::{create_topics, read_topic, unique, Received};

const GENERATOR: &str = env!("CARGO_BIN_EXE_generator");

fn topic(prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    create_topics(&[(&name, partitions)]);
    name
}

/// Runs the generator to `topic`; returns its summary line.
fn generator(topic: &str, args: &[&str]) -> String {
    let output = Command::new(GENERATOR)
        .args([
            "--brokers",
            &testkit::bootstrap(),
            "--topic",
            topic,
            "--rate",
            "0",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "generator failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Reads `expected` records back, then a moment more so that extra ones would be seen.
fn read_back(topic: &str, expected: usize) -> Vec<Received> {
    let mut records = read_topic(topic, Duration::from_secs(60), |got| got.len() >= expected);
    records.extend(read_more(topic, records.len()));
    records
}

/// Whatever arrives after the first `already` records within half a second.
fn read_more(topic: &str, already: usize) -> Vec<Received> {
    let mut all = read_topic(topic, Duration::from_millis(500), |_| false);
    all.drain(..already.min(all.len()));
    all
}

/// Every record of one key is in one partition.
fn one_partition_per_key(records: &[Received]) {
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for record in records {
        if let Some(key) = &record.key {
            let partition = *partition_of.entry(key).or_insert(record.partition);
            assert_eq!(partition, record.partition, "key {key}");
        }
    }
}

#[test]
fn a_jsonl_file_is_replayed_byte_for_byte_keyed_by_its_field() {
    let topic = topic("t-gen-jsonl", 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.jsonl");
    let mut lines: Vec<String> = PaymentsParams {
        seed: 5,
        ..PaymentsParams::default()
    }
    .records()
    .unwrap()
    .take(300)
    // Spaced as people write it, so "as it is" is not the serialiser's spelling.
    .map(|payment| {
        payment
            .to_json()
            .replace(",\"", ", \"")
            .replace("\":", "\": ")
    })
    .collect();
    lines.push(r#"{"amount": 1.50, "note": "no card: no key"}"#.to_string());
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let summary = generator(
        &topic,
        &[
            "--jsonl",
            path.to_str().unwrap(),
            "--key-field",
            "card",
            "--count",
            "0",
        ],
    );
    assert!(summary.contains("acknowledged=301 failed=0"), "{summary}");
    let records = read_back(&topic, lines.len());
    assert_eq!(records.len(), lines.len(), "records in the topic");

    // Each partition holds its records in file order, exactly as written.
    let mut by_partition: BTreeMap<i32, Vec<&Received>> = BTreeMap::new();
    for record in &records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    assert_eq!(by_partition.len(), 3, "cards spread over the partitions");
    let position: HashMap<&str, usize> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| (line.as_str(), i))
        .collect();
    for partition in by_partition.values() {
        let order: Vec<usize> = partition
            .iter()
            .map(|r| position[std::str::from_utf8(&r.value).unwrap()])
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "file order: {order:?}"
        );
    }
    for record in &records {
        let value: Value = serde_json::from_slice(&record.value).unwrap();
        assert_eq!(
            record.key.as_deref(),
            value["card"].as_str(),
            "keyed by card"
        );
    }
    one_partition_per_key(&records);
}

#[test]
fn the_payments_scenario_arrives_as_the_dataset_says() {
    let topic = topic("t-gen-payments", 3);
    let count = 3000;
    let summary = generator(
        &topic,
        &[
            "--scenario",
            "payments",
            "--count",
            &count.to_string(),
            "--seed",
            "11",
            "--first-id",
            "100",
            "--key-field",
            "card",
        ],
    );
    assert!(
        summary.contains(&format!("acknowledged={count} failed=0")),
        "{summary}"
    );
    let mut records = read_back(&topic, count);
    assert_eq!(records.len(), count, "records in the topic");
    let id = |r: &Received| {
        serde_json::from_slice::<Value>(&r.value).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    records.sort_by_key(id);
    let expected = PaymentsParams {
        seed: 11,
        first_id: 100,
        ..PaymentsParams::default()
    }
    .records()
    .unwrap()
    .take(count);
    let mut frauds = 0;
    for (record, payment) in records.iter().zip(expected) {
        assert_eq!(
            record.value,
            payment.to_json().into_bytes(),
            "payment {}",
            payment.id
        );
        assert_eq!(record.key.as_deref(), Some(payment.card.as_str()));
        frauds += usize::from(payment.label);
    }
    assert!(frauds > 0, "labelled frauds among {count} payments");
    one_partition_per_key(&records);
}
