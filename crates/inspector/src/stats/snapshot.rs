//! The summary `stats` prints (and `serve` shows), as typed data: [`Snapshot`] serializes to
//! the JSON of `stats --json` (fields in alphabetical order, `null` where a figure is not
//! defined yet), and [`render`](super::render::render) turns it into text for people.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which of the pipeline's topics a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Transactions.
    #[serde(rename = "input")]
    Input,
    /// Anomalies.
    #[serde(rename = "anomalies")]
    Output,
    /// Dead letters.
    #[serde(rename = "dead_letters")]
    DeadLetters,
}

impl Role {
    /// The name the summary gives it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "anomalies",
            Role::DeadLetters => "dead_letters",
        }
    }
}

/// One partition's watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    /// Next offset to be written.
    pub high: i64,
    /// Oldest offset.
    pub low: i64,
    /// Partition id.
    pub partition: i32,
}

/// The detectors' progress on one input partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The group's committed offset, `None` when it has committed none.
    pub committed: Option<i64>,
    /// High watermark.
    pub high: i64,
    /// Records not yet committed: high − committed, or high − low without a commit (the
    /// detectors start at the earliest record).
    pub lag: i64,
    /// Partition id.
    pub partition: i32,
}

impl PartitionLag {
    /// The lag of a partition with these watermarks and committed offset.
    pub fn new(watermarks: Watermarks, committed: Option<i64>) -> Self {
        let from = committed.unwrap_or(watermarks.low).max(watermarks.low);
        Self {
            partition: watermarks.partition,
            committed,
            high: watermarks.high,
            lag: (watermarks.high - from).max(0),
        }
    }
}

/// How the pipeline is doing at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Anomalies read per transaction read; `None` before a transaction is read.
    pub anomaly_share: Option<f64>,
    /// When it was taken (RFC 3339, ms, UTC).
    pub at: Option<String>,
    /// `--once` only: whether everything up to the start's end was read in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// Records in the dead-letter topic (high − low over its partitions).
    pub dead_letters: i64,
    /// The detectors' group and its lag.
    pub group: GroupSummary,
    /// Precision and recall, when labelled transactions were read.
    pub labels: Option<LabelSummary>,
    /// End-to-end latency, transaction to anomaly.
    pub latency_ms: LatencySummary,
    /// The model in use, once an anomaly named it.
    pub model: Option<ModelSummary>,
    /// Each topic by name.
    pub topics: BTreeMap<String, TopicSummary>,
}

/// One topic's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// Its partitions' watermarks.
    pub partitions: Vec<Watermarks>,
    /// Records per second (by record timestamp) over the rate window.
    pub per_second: f64,
    /// Records read.
    pub records: u64,
    /// What it holds.
    pub role: Role,
}

/// The detectors' group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Its id.
    pub id: String,
    /// Per input partition, `None` when it could not be read.
    pub lag: Option<Vec<PartitionLag>>,
    /// The sum of the lags.
    pub total_lag: Option<i64>,
}

/// Latency percentiles of matched anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: usize,
    /// Median, ms.
    pub p50: Option<f64>,
    /// 95th percentile, ms.
    pub p95: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// Anomalies whose transaction was not read.
    pub unmatched: u64,
}

/// The model named by the newest anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Anomalies that named it.
    pub anomalies: u64,
    /// Its id.
    pub id: String,
    /// Seconds since its first anomaly.
    pub in_use_s: f64,
    /// Distinct models named by the anomalies read.
    pub models_seen: usize,
}

/// Flagged against labelled transactions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelSummary {
    /// Harmonic mean of precision and recall; `None` when either is.
    pub f1: Option<f64>,
    /// Label-1 transactions without an anomaly (yet).
    pub false_negatives: u64,
    /// Label-0 transactions with an anomaly.
    pub false_positives: u64,
    /// Transactions labelled 0.
    pub negatives: u64,
    /// Transactions labelled 1.
    pub positives: u64,
    /// Flagged that were labelled 1; `None` before anything is flagged.
    pub precision: Option<f64>,
    /// Labelled 1 that were flagged; `None` before a label-1 transaction is read.
    pub recall: Option<f64>,
    /// Label-1 transactions with an anomaly.
    pub true_positives: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_high_minus_committed_or_everything_without_a_commit() {
        let w = Watermarks {
            partition: 2,
            low: 10,
            high: 50,
        };
        assert_eq!(PartitionLag::new(w, Some(45)).lag, 5);
        assert_eq!(PartitionLag::new(w, None).lag, 40);
        assert_eq!(PartitionLag::new(w, Some(50)).lag, 0);
        assert_eq!(PartitionLag::new(w, Some(3)).lag, 40, "below low: from low");
    }

    #[test]
    fn roles_are_named_as_the_summary_names_them() {
        for role in [Role::Input, Role::Output, Role::DeadLetters] {
            let json = serde_json::to_value(role).unwrap();
            assert_eq!(json, role.name());
            assert_eq!(serde_json::from_value::<Role>(json).unwrap(), role);
        }
    }
}
