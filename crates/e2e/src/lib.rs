//! Support for the end-to-end tests in `tests/`: the workspace's binaries, a real broker,
//! uniquely named topics, and reading a topic to the end.
//!
//! The tests run the processes as users do (separate binaries talking through Kafka) against
//! the broker at `$KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`; `scripts/test.sh` starts one).

pub mod accounting;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The broker the tests use.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

static BUILD: Once = Once::new();

/// Path of a workspace binary (built with the caller's profile), building the binaries once
/// per test process so they are never stale.
pub fn bin(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        // A release build (the accounting example) looks for release binaries below.
        let profile: &[&str] = if cfg!(debug_assertions) {
            &[]
        } else {
            &["--release"]
        };
        let status = Command::new(cargo)
            .args(["build", "--workspace", "--bins", "--quiet"])
            .args(profile)
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
    // target/debug/deps/<test> → target/debug/<name>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A name no other test run has used: `<prefix>-<pid>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap());
    config
}

/// Fails the test with a clear message when no broker answers.
pub fn require_broker() {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    if let Err(error) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
        panic!(
            "no Kafka broker answers at {} ({error}); start one with `scripts/broker.sh start` \
             or run `scripts/test.sh`",
            bootstrap()
        );
    }
}

/// Creates topics (name, partitions) and waits until their metadata shows every partition.
pub fn create_topics(topics: &[(&str, i32)]) {
    require_broker();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin");
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = runtime
        .block_on(admin.create_topics(&new_topics, &AdminOptions::new()))
        .expect("create topics");
    for result in results {
        if let Err((name, code)) = result {
            assert_eq!(
                code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "cannot create {name}"
            );
        }
    }
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    for (name, partitions) in topics {
        wait_until(
            Duration::from_secs(30),
            &format!("topic {name} to appear"),
            || {
                consumer
                    .fetch_metadata(Some(name), Duration::from_secs(5))
                    .ok()
                    .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32))
                    == Some(*partitions)
            },
        );
    }
}

/// Polls `condition` every 50 ms until it holds; panics after `timeout` naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Received {
    /// Partition it was in.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value.
    pub value: Vec<u8>,
}

/// Reads `topic` from the beginning of every partition until `done(records so far)` holds or
/// `timeout` passes, then returns what it read (the caller asserts on it).
pub fn read_topic(
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Received]) -> bool,
) -> Vec<Received> {
    let mut config = client_config();
    config
        .set("group.id", unique("e2e-reader"))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while !done(&received) && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("read");
            received.push(Received {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: message.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    received
}

/// Runs a command to completion, returning its output; panics with its stderr if it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A child process that is killed if the test ends before it does.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Counts how often each value occurs.
pub fn tally<T: std::hash::Hash + Eq>(values: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for value in values {
        *counts.entry(value).or_insert(0) += 1;
    }
    counts
}

/// Produces `values` (key, bytes) to partition 0 of `topic`, in order, and waits for every
/// acknowledgement.
pub fn produce_raw(topic: &str, values: &[(String, Vec<u8>)]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = client_config().create().expect("producer");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        for (key, value) in values {
            let record = FutureRecord::to(topic).partition(0).key(key).payload(value);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .expect("delivered");
        }
    });
}

/// A pipeline of its own for one test: uniquely named topics (transactions with
/// `partitions` partitions, anomalies, dead letters), a temporary folder and a model trained
/// by `trainer fit` (the original's synthetic data) in it.
pub struct Pipeline {
    /// Transactions topic.
    pub transactions: String,
    /// Anomalies topic.
    pub anomalies: String,
    /// Dead-letter topic.
    pub dead_letters: String,
    /// The model file.
    pub model_path: PathBuf,
    /// Scratch folder (removed when the pipeline is dropped).
    pub dir: tempfile::TempDir,
}

impl Pipeline {
    /// Creates the topics and trains the model.
    pub fn new(prefix: &str, partitions: i32) -> Self {
        let transactions = unique(&format!("{prefix}-tx"));
        let anomalies = unique(&format!("{prefix}-anomalies"));
        let dead_letters = unique(&format!("{prefix}-dlq"));
        create_topics(&[
            (&transactions, partitions),
            (&anomalies, 1),
            (&dead_letters, 1),
        ]);
        let dir = tempfile::tempdir().expect("temporary folder");
        let model_path = dir.path().join("model.bin");
        run_ok(
            Command::new(bin("trainer"))
                .args(["fit", "--out"])
                .arg(&model_path),
        );
        Self {
            transactions,
            anomalies,
            dead_letters,
            model_path,
            dir,
        }
    }

    /// The model, as the detector loads it.
    pub fn model(&self) -> iforest::IsolationForest {
        iforest::IsolationForest::load(&self.model_path).expect("model")
    }

    /// A detector command on this pipeline's topics and model, in consumer group `group`.
    pub fn detector(&self, group: &str) -> Command {
        let mut command = Command::new(bin("detector"));
        command
            .arg("--model")
            .arg(&self.model_path)
            .args([
                "--input-topic",
                &self.transactions,
                "--output-topic",
                &self.anomalies,
            ])
            .args(["--dlq-topic", &self.dead_letters, "--group", group]);
        command
    }

    /// Runs the generator: `count` synthetic records seeded with `seed`, ids from `first_id`.
    pub fn generate(&self, count: u64, seed: u64, first_id: u64) -> Output {
        run_ok(Command::new(bin("generator")).args([
            "--topic",
            &self.transactions,
            "--count",
            &count.to_string(),
            "--rate",
            "0",
            "--seed",
            &seed.to_string(),
            "--first-id",
            &first_id.to_string(),
        ]))
    }
}
