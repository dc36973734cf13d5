//! The development broker (`crates/devbroker`), run as the demo runs it: a process of its own
//! on a port of its own. It must report offsets truthfully (high watermarks that match what a
//! consumer reads, `inspector stats` counts and a group's lag), carry the pipeline (two
//! detectors sharing the partitions of one group, their committed offsets), and stop when
//! asked. Needs no other broker: these tests ignore `KAFKA_BOOTSTRAP`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use testkit::{run_ok, unique, wait_until, workspace_bin, Guard};

/// A development broker started for one test.
struct DevBroker {
    process: Guard,
    /// `HOST:PORT` from its ready line.
    address: String,
    ready_line: String,
}

impl DevBroker {
    /// Starts `devbroker --listen 127.0.0.1:0` (the kernel picks the port) with `topics`, and
    /// waits for its ready line. With `stdin_close_stops`, closing its stdin stops it.
    fn start(topics: &[String], stdin_close_stops: bool) -> DevBroker {
        let mut command = Command::new(workspace_bin("devbroker"));
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(topics)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if stdin_close_stops {
            command.arg("--stdin-close-stops");
        }
        let mut child = command.spawn().expect("start devbroker");
        let stdout = child.stdout.take().expect("stdout");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let process = Guard(child);
        let ready_line = line_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("devbroker printed no ready line within 30 s");
        let address = ready_line
            .strip_prefix("devbroker: listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected ready line {ready_line:?}"))
            .to_string();
        DevBroker {
            process,
            address,
            ready_line,
        }
    }

    fn child(&mut self) -> &mut Child {
        &mut self.process.0
    }

    /// Waits (at most `timeout`) for the process to end by itself.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "devbroker did not stop within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.address)
            .set("enable.auto.commit", "false");
        config
    }
}

/// One partition's row of `inspector topics`: (low, high).
fn topics_table(broker: &DevBroker, topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let output = run_ok(
        Command::new(workspace_bin("inspector"))
            .args(["topics", "--brokers", &broker.address])
            .env("RUST_LOG", "warn"),
    );
    let mut rows = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&topic) {
            assert_eq!(fields.len(), 5, "row {line:?}");
            let number = |i: usize| fields[i].parse::<i64>().expect(line);
            rows.insert(number(1) as i32, (number(2), number(3)));
            assert_eq!(
                number(4),
                number(3) - number(2),
                "records = high - low: {line}"
            );
        }
    }
    rows
}

/// Reads every partition of `topic` from its beginning until `expected` records came (or
/// 30 s passed): the offsets read, per partition.
fn read_offsets(broker: &DevBroker, topic: &str, expected: usize) -> BTreeMap<i32, Vec<i64>> {
    let mut config = broker.client_config();
    config.set("group.id", unique("devbroker-reader"));
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < expected && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("read");
            offsets
                .entry(message.partition())
                .or_default()
                .push(message.offset());
            read += 1;
        }
    }
    offsets
}

/// Commits `offsets` (partition → next offset to read) for `group`, as a consumer that read
/// that far would.
fn commit(broker: &DevBroker, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let mut config = broker.client_config();
    config.set("group.id", group);
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .expect("offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

fn stats_once(broker: &DevBroker, topics: &[&String; 3], group: &str) -> Value {
    let output = run_ok(
        Command::new(workspace_bin("inspector"))
            .args(["stats", "--once", "--json", "--brokers", &broker.address])
            .args(["--input-topic", topics[0], "--output-topic", topics[1]])
            .args(["--dlq-topic", topics[2], "--group", group])
            .env("RUST_LOG", "warn"),
    );
    serde_json::from_slice(&output.stdout).expect("stats JSON")
}

fn generate(broker: &DevBroker, topic: &str, count: u64) {
    let output = run_ok(
        Command::new(workspace_bin("generator"))
            .args(["--brokers", &broker.address, "--topic", topic])
            .args(["--count", &count.to_string(), "--rate", "0"])
            .env("RUST_LOG", "warn"),
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(&format!("acknowledged={count} ")),
        "the generator's summary: {summary}"
    );
}

#[test]
fn offsets_counts_and_lag_are_reported_truthfully() {
    const COUNT: u64 = 5_000;
    let (input, output, dead_letters) = (
        unique("devbroker-tx"),
        unique("devbroker-anomalies"),
        unique("devbroker-dlq"),
    );
    let mut broker = DevBroker::start(
        &[format!("{input}:3"), output.clone(), dead_letters.clone()],
        true,
    );
    assert!(
        broker.ready_line.contains("development broker") && broker.ready_line.contains("in memory"),
        "the ready line says what the broker is: {:?}",
        broker.ready_line
    );
    generate(&broker, &input, COUNT);

    // inspector topics: three partitions from 0, high watermarks summing to what was sent.
    let table = topics_table(&broker, &input);
    assert_eq!(
        table.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2],
        "{table:?}"
    );
    assert!(table.values().all(|&(low, _)| low == 0), "{table:?}");
    let total: i64 = table.values().map(|&(_, high)| high).sum();
    assert_eq!(total, COUNT as i64, "high watermarks {table:?}");
    // Seeded records are spread over the partitions by key: none is empty.
    assert!(table.values().all(|&(_, high)| high > 0), "{table:?}");

    // Each high watermark is what a consumer reads there: offsets 0 .. high, each once.
    let offsets = read_offsets(&broker, &input, COUNT as usize);
    for (partition, &(_, high)) in &table {
        let read = offsets.get(partition).cloned().unwrap_or_default();
        assert_eq!(
            read,
            (0..high).collect::<Vec<_>>(),
            "partition {partition}: offsets read vs high watermark {high}"
        );
    }

    // A group that consumed the first half of each partition; inspector stats counts every
    // record and shows the rest as its lag.
    let group = unique("devbroker-group");
    let halfway: BTreeMap<i32, i64> = table.iter().map(|(&p, &(_, high))| (p, high / 2)).collect();
    commit(&broker, &group, &input, &halfway);
    let stats = stats_once(&broker, &[&input, &output, &dead_letters], &group);
    assert_eq!(stats["complete"], true, "{stats:#}");
    assert_eq!(stats["topics"][&input]["records"], COUNT, "{stats:#}");
    let lag = stats["group"]["lag"].as_array().expect("lag per partition");
    assert_eq!(lag.len(), 3, "{stats:#}");
    for entry in lag {
        let partition = entry["partition"].as_i64().expect("partition") as i32;
        let high = table[&partition].1;
        assert_eq!(entry["committed"], halfway[&partition], "{entry}");
        assert_eq!(entry["high"], high, "{entry}");
        assert_eq!(entry["lag"], high - halfway[&partition], "{entry}");
    }
    let consumed: i64 = halfway.values().sum();
    assert_eq!(
        stats["group"]["total_lag"],
        COUNT as i64 - consumed,
        "{stats:#}"
    );

    // Closing its stdin stops it, and its address is free again.
    drop(broker.child().stdin.take());
    let status = broker.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "devbroker exited with {status}");
    assert!(
        TcpStream::connect(&broker.address).is_err(),
        "devbroker still listens on {}",
        broker.address
    );
}

/// The partitions in a detector's last "assigned partitions" log line.
fn assigned(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once("assigned partitions: ").map(|(_, p)| p))
        .next_back()
        .map(|list| {
            list.split(", ")
                .filter(|p| *p != "none")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_detectors_share_the_partitions_and_commit_what_they_read() {
    const COUNT: u64 = 2_000;
    let dir = tempfile::tempdir().expect("temporary folder");
    let (input, output, dead_letters) = (
        unique("devbroker-pipe-tx"),
        unique("devbroker-pipe-anomalies"),
        unique("devbroker-pipe-dlq"),
    );
    let broker = DevBroker::start(
        &[format!("{input}:3"), output.clone(), dead_letters.clone()],
        false,
    );
    let model = dir.path().join("model.bin");
    run_ok(
        Command::new(workspace_bin("trainer"))
            .args(["fit", "--out"])
            .arg(&model)
            .env("RUST_LOG", "warn"),
    );
    let group = unique("devbroker-detectors");
    let logs = [
        dir.path().join("detector-1.log"),
        dir.path().join("detector-2.log"),
    ];
    let detectors: Vec<Guard> = logs
        .iter()
        .map(|log| {
            let log = std::fs::File::create(log).expect("log file");
            Guard(
                Command::new(workspace_bin("detector"))
                    .arg("--model")
                    .arg(&model)
                    .args(["--brokers", &broker.address, "--group", &group])
                    .args(["--input-topic", &input, "--output-topic", &output])
                    .args(["--dlq-topic", &dead_letters])
                    .env("RUST_LOG", "info")
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("start detector"),
            )
        })
        .collect();

    // One group: the three partitions split between the two, none owned twice.
    wait_until(
        Duration::from_secs(60),
        "both detectors to own partitions",
        || logs.iter().all(|log| !assigned(log).is_empty()),
    );
    let mut owned: Vec<String> = logs.iter().flat_map(|log| assigned(log)).collect();
    owned.sort();
    let expected: Vec<String> = (0..3).map(|p| format!("{input}/{p}")).collect();
    assert_eq!(owned, expected, "partitions owned by the two detectors");

    generate(&broker, &input, COUNT);
    // Their committed offsets (read with the group's OffsetFetch) reach the high watermarks.
    let mut last = Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the group's lag to reach 0",
        || {
            last = stats_once(&broker, &[&input, &output, &dead_letters], &group);
            last["group"]["total_lag"] == 0
        },
    );
    assert_eq!(last["topics"][&input]["records"], COUNT, "{last:#}");
    let anomalies = last["topics"][&output]["records"].as_u64().unwrap_or(0);
    assert!(anomalies > 0, "no anomaly written: {last:#}");
    drop(detectors);
}

#[test]
fn sigterm_stops_it() {
    let mut broker = DevBroker::start(&["t".to_string()], false);
    assert!(TcpStream::connect(&broker.address).is_ok());
    let pid = broker.child().id().to_string();
    run_ok(Command::new("kill").args(["-TERM", &pid]));
    let status = broker.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "devbroker exited with {status}");
    assert!(TcpStream::connect(&broker.address).is_err());
}

#[test]
fn an_address_other_machines_reach_is_refused() {
    let output = Command::new(workspace_bin("devbroker"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .expect("run devbroker");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
