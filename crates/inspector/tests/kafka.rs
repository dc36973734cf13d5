//! The inspector binary against a real broker at `$KAFKA_BOOTSTRAP` (default 127.0.0.1:9092;
//! start one with `scripts/broker.sh start`).

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use testkit::{bootstrap, create_topics, produce, settings, unique, Record};

const INSPECTOR: &str = env!("CARGO_BIN_EXE_inspector");

/// A fresh topic holding `records` transactions with ids 0.., record i in partition
/// `partition_of(i)`.
fn topic_with(partitions: i32, records: i64, partition_of: impl Fn(i64) -> i32) -> String {
    let name = unique("t-insp");
    create_topics(&[(&name, partitions)]);
    transactions(&name, 0..records, partition_of);
    name
}

/// Produces transactions with these ids, record i to partition `partition_of(i)`.
fn transactions(topic: &str, ids: std::ops::Range<i64>, partition_of: impl Fn(i64) -> i32) {
    let records: Vec<Record> = ids
        .map(|id| Record {
            partition: Some(partition_of(id)),
            ..Record::keyed(
                id.to_string(),
                format!(
                    r#"{{"id": {id}, "data": [[{id}.5, -1.25]], "current_time": "2024-04-27T21:17:34.733387"}}"#
                ),
            )
        })
        .collect();
    produce(topic, &records);
}

fn inspector(args: &[&str]) -> Output {
    Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap()])
        .args(args)
        .output()
        .unwrap()
}

fn lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "inspector failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tail_max_messages_prints_exactly_that_many_lines() {
    let topic = topic_with(3, 30, |id| (id % 3) as i32);
    let output = inspector(&[
        "tail",
        "--topic",
        &topic,
        "--from-beginning",
        "--max-messages",
        "20",
        "--timeout",
        "30",
    ]);
    let lines = lines(&output);
    assert_eq!(lines.len(), 20, "{lines:#?}");
    for line in &lines {
        // `partition/offset key=K id=K data=[…] time=…`
        let fields: Vec<&str> = line.split(' ').collect();
        let (partition, offset) = fields[0].split_once('/').unwrap();
        let key = fields[1].strip_prefix("key=").unwrap();
        assert_eq!(fields[2], format!("id={key}"), "{line}");
        let id: i64 = key.parse().unwrap();
        assert_eq!(partition.parse::<i64>().unwrap(), id % 3, "{line}");
        assert_eq!(offset.parse::<i64>().unwrap(), id / 3, "{line}");
        assert_eq!(fields[3], format!("data=[{id}.5,-1.25]"), "{line}");
    }
}

#[test]
fn tail_json_prints_every_value_then_stops_when_idle() {
    let topic = topic_with(3, 25, |id| (id % 3) as i32);
    let started = Instant::now();
    let output = inspector(&[
        "tail",
        "--topic",
        &topic,
        "--from-beginning",
        "--json",
        "--timeout",
        "2",
    ]);
    let elapsed = started.elapsed();
    let lines = lines(&output);
    let ids: BTreeSet<i64> = lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["current_time"], "2024-04-27T21:17:34.733387");
            value["id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(lines.len(), 25);
    assert_eq!(ids, (0..25).collect());
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(20)).contains(&elapsed),
        "stopped after {elapsed:?}"
    );
}

#[test]
fn tail_from_the_end_shows_only_new_records_and_commits_nothing() {
    let topic = topic_with(2, 10, |id| (id % 2) as i32);
    let mut child = Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "tail", "--topic", &topic])
        .args(["--json", "--max-messages", "4", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep producing new records until it has seen four and exited: its assignment at the
    // end resolves at some moment we cannot observe from here.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 1000;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("tail never saw four new records");
        }
        transactions(&topic, next..next + 1, |id| (id % 2) as i32);
        next += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let lines = lines(&output);
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            value["id"].as_i64().unwrap() >= 1000,
            "an old record: {line}"
        );
    }
    // No group offsets were committed by the inspector.
    let mut config = settings().client_config();
    config.set("group.id", "kafka-iforest-tools");
    let consumer: rdkafka::consumer::BaseConsumer = config.create().unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&topic, 0);
    partitions.add_partition(&topic, 1);
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        assert_eq!(element.offset(), Offset::Invalid, "committed: {element:?}");
    }
}

#[test]
fn tail_of_a_missing_topic_says_so() {
    settings();
    let output = inspector(&["tail", "--topic", &unique("t-missing"), "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn topics_lists_the_topic_with_its_partitions_and_watermarks() {
    // 4 records in partition 0, none in 1, 2 in 2.
    let topic = topic_with(3, 6, |id| if id < 4 { 0 } else { 2 });
    let lines = lines(&inspector(&["topics"]));
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["topic", "partition", "low", "high", "records"]
    );
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|line| line.split_whitespace().collect())
        .filter(|fields: &Vec<&str>| fields[0] == topic)
        .collect();
    assert_eq!(
        rows,
        [
            [topic.as_str(), "0", "0", "4", "4"],
            [topic.as_str(), "1", "0", "0", "0"],
            [topic.as_str(), "2", "0", "2", "2"],
        ]
    );
    assert!(
        lines.iter().all(|line| !line.starts_with("__")),
        "internal topics only with --all"
    );
}

#[test]
fn create_topics_makes_what_is_missing_and_accepts_what_exists() {
    settings();
    let (a, b) = (unique("t-create-a"), unique("t-create-b"));
    for _ in 0..2 {
        let output = inspector(&["create-topics", &format!("{a}:3"), &b]);
        lines(&output);
    }
    let lines = lines(&inspector(&["topics"]));
    let count = |name: &str| {
        lines
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(name))
            .count()
    };
    assert_eq!((count(&a), count(&b)), (3, 1));
}

#[test]
fn create_topics_makes_a_groups_changelog_with_its_inputs_partitions() {
    settings();
    let (input, group) = (unique("t-create-in"), unique("g-create"));
    for _ in 0..2 {
        let output = inspector(&[
            "create-topics",
            &format!("{input}:3"),
            "--state-for",
            &group,
            "--input-topic",
            &input,
        ]);
        lines(&output);
    }
    let changelog = format!("{group}.{input}.state");
    let lines = lines(&inspector(&["topics"]));
    let partitions: Vec<&str> = lines
        .iter()
        .filter(|l| l.split_whitespace().next() == Some(changelog.as_str()))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(partitions, ["0", "1", "2"], "{lines:?}");

    // The input must exist: its partitions decide the changelog's.
    let missing = unique("t-missing");
    let output = inspector(&[
        "create-topics",
        "--state-for",
        &group,
        "--input-topic",
        &missing,
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&missing), "{stderr}");
}
