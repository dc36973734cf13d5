//! `inspector stats` against a real broker: labelled transactions, their anomalies (one of
//! them twice, as at-least-once may write it) and dead letters on fresh topics, with chosen
//! Kafka timestamps so the latencies are known, and a consumer group's committed offsets.

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use schema::{encode_anomaly, Transaction, Verdict};
use serde_json::Value;
use testkit::{bootstrap, create_topics, now_ms, produce, settings, unique, Record};

const INSPECTOR: &str = env!("CARGO_BIN_EXE_inspector");

/// Transactions 0..20, transaction `id` in partition `id % 2` at offset `id / 2`.
const TRANSACTIONS: i64 = 20;
/// Label 1: every third id.
fn label(id: i64) -> u8 {
    u8::from(id % 3 == 0)
}
/// The flagged ids and each one's latency (ms from its transaction's timestamp).
const FLAGGED: [(i64, i64); 6] = [(0, 10), (3, 20), (6, 30), (9, 40), (1, 50), (2, 60)];

struct Pipeline {
    input: String,
    output: String,
    dlq: String,
    group: String,
}

fn transaction(id: i64) -> Transaction {
    let time = DateTime::<Utc>::from_timestamp(1_700_000_000 + id, 0)
        .unwrap()
        .naive_utc();
    Transaction::new(id, vec![id as f64, -1.0], time).with_label(label(id))
}

fn anomaly(id: i64) -> Vec<u8> {
    let verdict = Verdict {
        anomaly_score: 0.7,
        threshold: 0.6,
        model: "test".into(),
        partition: (id % 2) as i32,
        offset: id / 2,
        detected_at: Utc::now(),
    };
    encode_anomaly(&transaction(id), &verdict)
}

/// Fresh topics holding the data described above; the group has committed offset 7 on input
/// partition 0 and nothing on partition 1.
fn pipeline() -> Pipeline {
    let pipeline = Pipeline {
        input: unique("t-stats-in"),
        output: unique("t-stats-out"),
        dlq: unique("t-stats-dlq"),
        group: unique("g-stats"),
    };
    create_topics(&[
        (&pipeline.input, 2),
        (&pipeline.output, 1),
        (&pipeline.dlq, 1),
    ]);
    let base = now_ms() - 1_000;
    let tx_time = |id: i64| base + id * 10;
    let transactions: Vec<Record> = (0..TRANSACTIONS)
        .map(|id| {
            Record::at(
                (id % 2) as i32,
                id.to_string(),
                transaction(id).encode(),
                tx_time(id),
            )
        })
        .collect();
    produce(&pipeline.input, &transactions);
    let mut anomalies: Vec<Record> = FLAGGED
        .iter()
        .map(|&(id, latency)| Record::at(0, id.to_string(), anomaly(id), tx_time(id) + latency))
        .collect();
    // A duplicate of id 0's anomaly, much later: it must count once, with the first latency.
    anomalies.push(Record::at(0, "0", anomaly(0), tx_time(0) + 900));
    produce(&pipeline.output, &anomalies);
    let letters: Vec<Record> = (0..3)
        .map(|i| {
            Record::at(
                0,
                i.to_string(),
                b"{\"reason\": \"not_json\"}".to_vec(),
                base,
            )
        })
        .collect();
    produce(&pipeline.dlq, &letters);

    let committer = group_client(&pipeline.group);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&pipeline.input, 0, Offset::Offset(7))
        .unwrap();
    committer.commit(&offsets, CommitMode::Sync).unwrap();
    pipeline
}

fn group_client(group: &str) -> BaseConsumer {
    let mut config = settings().client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    config.create().unwrap()
}

fn committed(pipeline: &Pipeline) -> Vec<Offset> {
    let mut list = TopicPartitionList::new();
    list.add_partition(&pipeline.input, 0);
    list.add_partition(&pipeline.input, 1);
    group_client(&pipeline.group)
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset())
        .collect()
}

fn stats(pipeline: &Pipeline, extra: &[&str]) -> Output {
    Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "stats"])
        .args(["--input-topic", &pipeline.input])
        .args(["--output-topic", &pipeline.output])
        .args(["--dlq-topic", &pipeline.dlq])
        .args(["--group", &pipeline.group])
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "inspector failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The summary's figures, checked against what `pipeline` produced.
fn check_summary(summary: &Value, pipeline: &Pipeline) {
    let topic = |name: &str| &summary["topics"][name];
    assert_eq!(
        topic(&pipeline.input)["records"],
        TRANSACTIONS,
        "{summary:#}"
    );
    assert_eq!(topic(&pipeline.input)["role"], "input");
    assert_eq!(topic(&pipeline.output)["records"], 7, "{summary:#}");
    assert_eq!(topic(&pipeline.dlq)["records"], 3, "{summary:#}");
    assert_eq!(summary["dead_letters"], 3);
    assert_eq!(summary["anomaly_share"], 7.0 / 20.0);

    let lag = &summary["group"];
    assert_eq!(lag["id"], pipeline.group.as_str());
    assert_eq!(
        lag["lag"],
        serde_json::json!([
            {"partition": 0, "committed": 7, "high": 10, "lag": 3},
            {"partition": 1, "committed": null, "high": 10, "lag": 10},
        ]),
        "{summary:#}"
    );
    assert_eq!(lag["total_lag"], 13);

    // Latencies 10, 20, …, 60 ms (the duplicate not counted): nearest-rank p50 is the 3rd.
    let latency = &summary["latency_ms"];
    assert_eq!(latency["count"], 6, "{summary:#}");
    assert_eq!(latency["p50"], 30.0, "{summary:#}");
    assert_eq!(latency["p95"], 60.0);
    assert_eq!(latency["p99"], 60.0);
    assert_eq!(latency["unmatched"], 0);

    // Label 1: ids 0, 3, 6, 9, 12, 15, 18 (7). Flagged: 0, 3, 6, 9 (true) and 1, 2 (false).
    let labels = &summary["labels"];
    let positives = (0..TRANSACTIONS).filter(|&id| label(id) == 1).count() as f64;
    let true_positives = FLAGGED.iter().filter(|(id, _)| label(*id) == 1).count() as f64;
    let precision = true_positives / FLAGGED.len() as f64;
    let recall = true_positives / positives;
    assert_eq!(labels["true_positives"], 4, "{summary:#}");
    assert_eq!(labels["false_positives"], 2);
    assert_eq!(labels["false_negatives"], 3);
    assert_eq!(labels["precision"].as_f64().unwrap(), precision);
    assert_eq!(labels["recall"].as_f64().unwrap(), recall);
    let f1 = labels["f1"].as_f64().unwrap();
    assert!(
        (f1 - 2.0 * precision * recall / (precision + recall)).abs() < 1e-12,
        "{f1}"
    );
}

#[test]
fn once_json_reads_everything_there_and_sums_it_up() {
    let pipeline = pipeline();
    let before = committed(&pipeline);
    let output = stats(&pipeline, &["--once", "--json"]);
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    let summary: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["complete"], true);
    check_summary(&summary, &pipeline);
    // Records from the last second: all of them are within the rate window.
    assert!(
        summary["topics"][&pipeline.input]["per_second"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{summary:#}"
    );
    assert_eq!(
        committed(&pipeline),
        before,
        "reading with the group's id committed nothing"
    );
    assert_eq!(before, [Offset::Offset(7), Offset::Invalid]);
}

#[test]
fn once_last_n_reads_only_the_newest_records_of_each_partition() {
    let pipeline = pipeline();
    let summary: Value = serde_json::from_str(&stdout(&stats(
        &pipeline,
        &["--once", "--json", "--last", "2"],
    )))
    .unwrap();
    // 2 per input partition; the anomalies topic's last 2 are id 2's and the duplicate of 0,
    // whose transactions are outside the read: nothing matches.
    assert_eq!(summary["topics"][&pipeline.input]["records"], 4);
    assert_eq!(summary["topics"][&pipeline.output]["records"], 2);
    assert_eq!(summary["latency_ms"]["count"], 0);
    assert_eq!(summary["latency_ms"]["p50"], Value::Null);
    assert_eq!(summary["latency_ms"]["unmatched"], 2);
    // Transactions 16, 17, 18, 19: one labelled 1 (18), no anomaly.
    assert_eq!(summary["labels"]["positives"], 1);
    assert_eq!(summary["labels"]["recall"], 0.0);
    assert_eq!(summary["labels"]["precision"], Value::Null);
    // Lag and dead letters do not depend on what was read.
    assert_eq!(summary["group"]["total_lag"], 13);
    assert_eq!(summary["dead_letters"], 3);
}

#[test]
fn live_json_prints_a_summary_every_second_then_stops() {
    let pipeline = pipeline();
    let started = std::time::Instant::now();
    let output = stats(&pipeline, &["--json", "--from-beginning", "--seconds", "5"]);
    let elapsed = started.elapsed();
    let text = stdout(&output);
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        (3..=6).contains(&lines.len()),
        "about one line a second for 5 s: {text}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    // The first line may come before anything is read; the last has read everything.
    check_summary(lines.last().unwrap(), &pipeline);
}

#[test]
fn live_text_shows_the_figures_for_people() {
    let pipeline = pipeline();
    let text = stdout(&stats(&pipeline, &["--from-beginning", "--seconds", "5"]));
    let last = text.rsplit("inspector stats").next().unwrap();
    assert!(last.contains("anomaly share 35.000 %"), "{text}");
    assert!(last.contains("dead letters 3"), "{text}");
    assert!(
        last.contains(&format!("group {} lag 13", pipeline.group)),
        "{text}"
    );
    assert!(
        last.contains("latency ms  p50 30.0  p95 60.0  p99 60.0  (6 matched, 0 unmatched)"),
        "{text}"
    );
    assert!(last.contains("(tp 4 fp 2 fn 3)"), "{text}");
    assert!(!text.contains('\x1b'), "no screen clearing into a pipe");
}

#[test]
fn a_missing_input_topic_is_an_error() {
    settings();
    let missing = unique("t-missing");
    let output = Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "stats", "--once", "--json"])
        .args(["--input-topic", &missing])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn live_from_the_end_counts_only_what_comes_after_the_start() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let pipeline = pipeline();
    let mut child = Command::new(INSPECTOR)
        .args([
            "--brokers",
            &bootstrap(),
            "stats",
            "--json",
            "--seconds",
            "6",
        ])
        .args(["--input-topic", &pipeline.input])
        .args(["--output-topic", &pipeline.output])
        .args(["--dlq-topic", &pipeline.dlq])
        .args(["--group", &pipeline.group])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first summary is printed once the partitions are assigned at their ends.
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["topics"][&pipeline.input]["records"], 0);
    let now = now_ms();
    let new: Vec<Record> = (100..105)
        .map(|id| {
            Record::at(
                (id % 2) as i32,
                id.to_string(),
                transaction(id).encode(),
                now,
            )
        })
        .collect();
    produce(&pipeline.input, &new);
    let last: Value = serde_json::from_str(&lines.last().unwrap().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(last["topics"][&pipeline.input]["records"], 5, "{last:#}");
    assert_eq!(last["topics"][&pipeline.output]["records"], 0);
    // 5 records, all within the rate window (shortened to the time observed).
    let rate = last["topics"][&pipeline.input]["per_second"]
        .as_f64()
        .unwrap();
    assert!(rate > 0.0 && rate <= 5.0, "{rate}");
    // Id 102 is labelled 1 and has no anomaly.
    assert_eq!(last["labels"]["positives"], 1);
    assert_eq!(last["labels"]["recall"], 0.0);
}
