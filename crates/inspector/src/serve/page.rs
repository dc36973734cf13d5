//! What the page shows, as typed data sent to it once a second ([`Page`], as JSON). The
//! figures `stats` prints are in it unchanged ([`Snapshot`]); the rest are views of the same
//! reading that only a page can show (series, tables, histograms).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::group::Member;
use crate::stats::Snapshot;

/// One second's page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// What `inspector stats --json` prints: rates, share, lag, latency, labels, model.
    pub stats: Snapshot,
    /// Per-second series for the charts.
    pub history: History,
    /// The detectors' group: who owns which partition.
    pub group: GroupView,
    /// The score histogram.
    pub scores: ScoreView,
    /// The latest points (2-feature model with `--model`): `[x, y, 1 = above threshold]`.
    pub points: Vec<[f64; 3]>,
    /// The latest anomalies, newest first.
    pub latest: Vec<AnomalyRow>,
    /// Dead letters read, by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// The model in use.
    pub model: ModelView,
}

/// Records and anomalies per second (by record timestamp) for the seconds up to `end_s`
/// (excluded: the current second is still filling), and latency percentiles per tick.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    /// The first second after the series, s since the epoch.
    pub end_s: i64,
    /// Transactions per second, oldest first.
    pub input: Vec<u64>,
    /// Anomalies per second, oldest first.
    pub anomalies: Vec<u64>,
    /// Anomalies per transaction over the last minute of the series.
    pub share_last_minute: Option<f64>,
    /// Latency at each tick: `[at_ms, p50, p95, p99]`, oldest first.
    pub latency: Vec<[Option<f64>; 4]>,
}

/// The group as its coordinator describes it, and each input partition's owner.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupView {
    /// `Stable`, `PreparingRebalance`, … when described.
    pub state: Option<String>,
    /// Its members.
    pub members: Vec<Member>,
    /// Per input partition, the client owning it (`client_id @ host`), when known.
    pub owners: BTreeMap<i32, String>,
    /// Why members are not shown, when they are not.
    pub note: Option<String>,
}

/// A histogram of scores with the threshold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScoreView {
    /// What was scored: `transactions` (scored with `--model`) or `anomalies` (their scores).
    pub source: &'static str,
    /// The threshold drawn.
    pub threshold: Option<f64>,
    /// The bins' span.
    pub low: f64,
    /// The bins' span.
    pub high: f64,
    /// Per bin, equal widths: `[below or at the threshold, above]`.
    pub bins: Vec<[usize; 2]>,
    /// Scores counted.
    pub count: usize,
}

/// One anomaly in the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRow {
    /// The anomaly record's Kafka timestamp, ms.
    pub at_ms: Option<i64>,
    /// The transaction's id.
    pub id: String,
    /// Its score.
    pub score: f64,
    /// The threshold it passed.
    pub threshold: f64,
    /// The explanation's first entry, when the record carries one.
    pub reason: Option<Reason>,
    /// Features by name: the record's `features` object, else its `data` named as the model
    /// file names them (`feature 0`, `feature 1`, … without one).
    pub features: Vec<(String, f64)>,
    /// The model that scored it.
    pub model: String,
    /// Where the transaction was: `partition/offset`.
    pub source: String,
}

/// Why an anomaly was flagged: its top feature.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reason {
    /// Feature name.
    pub feature: String,
    /// Its value.
    #[serde(default)]
    pub value: Option<f64>,
    /// `high` or `low`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Its share of the isolation, 0..=1.
    #[serde(default)]
    pub share: Option<f64>,
}

/// The model in use and the model file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelView {
    /// The model the newest anomaly names.
    pub in_use: Option<String>,
    /// When it named its first anomaly (ms): when the model in use last changed, as seen.
    pub in_use_since_ms: Option<i64>,
    /// Models named by the anomalies read.
    pub models_seen: usize,
    /// Feature names (from the file), or `feature i` for the anomalies' width.
    pub features: Vec<String>,
    /// The `--model` file, when given.
    pub file: Option<ModelFileView>,
}

/// The `--model` file as last read.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFileView {
    /// Its path.
    pub path: String,
    /// Its id (content hash), as detectors name it.
    pub id: String,
    /// Trees.
    pub n_trees: usize,
    /// Its threshold.
    pub threshold: f64,
    /// Whether it has names for its features.
    pub named_features: bool,
    /// Its modification time, ms.
    pub modified_ms: Option<i64>,
    /// When it was (re)read, ms.
    pub loaded_ms: i64,
    /// Why the last reread failed (the previous version is kept).
    pub error: Option<String>,
}
