//! Support for the end-to-end tests in `tests/`: a [`Pipeline`] of their own (topics and a
//! trained model), and the [`accounting`] harness. The generic helpers (broker, names,
//! polling, topic reading, binaries) are the `testkit` crate's.
//!
//! The tests run the processes as users do (separate binaries talking through Kafka) against
//! the broker at `$KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`; `scripts/test.sh` starts one).
#![deny(missing_docs)]

pub mod accounting;

use std::path::PathBuf;
use std::process::{Command, Output};

use testkit::{create_topics, run_ok, unique, workspace_bin as bin};

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
