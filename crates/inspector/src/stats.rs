//! `inspector stats`: how the pipeline is doing, read from its topics without joining the
//! detectors' group: records per second into and out of the detectors, the anomaly share, the
//! dead letters, the detectors' lag per partition, end-to-end latency percentiles and, for
//! labelled data, live precision, recall and F1.
//!
//! Every topic is read as `tail` reads it (partitions assigned, nothing committed). The lag
//! compares the detector group's committed offsets, fetched by a client that carries the
//! group's id but never subscribes (so it never joins or rebalances the group), with the input
//! topic's high watermarks.
//!
//! Latency runs from the transaction's Kafka timestamp to its anomaly's: the anomaly names its
//! source partition and offset, and [`Tracker`] keeps the timestamps of recent transactions
//! (at most [`TRACKED_TRANSACTIONS`]) by that position, and anomalies read before their
//! transaction (the topics are read side by side) until it comes.
//!
//! Two modes: live (a block every second, JSON lines with `--json`) reads from the end (or
//! `--from-beginning`); `--once` reads each topic from its beginning (or its last `--last N`
//! records per partition) up to the high watermarks seen at the start, prints one summary
//! and exits.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::{Anomaly, DecodeLimits, Transaction};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::cli::StatsArgs;

/// Transactions whose timestamp and label are kept for matching their anomalies; the oldest
/// is forgotten first. Detectors answer within milliseconds, so this is many seconds of
/// traffic even at tens of thousands of records a second.
pub const TRACKED_TRANSACTIONS: usize = 500_000;
/// Anomalies kept while their transaction has not been read yet.
pub const PENDING_ANOMALIES: usize = 100_000;
/// Records per second are counted over this trailing span of record timestamps.
pub const RATE_WINDOW_MS: i64 = 10_000;
/// Most latency samples kept for percentiles (the oldest go first).
pub const LATENCY_SAMPLES: usize = 1_000_000;

/// The value at quantile `q` (0..=1) of `sorted` (ascending), nearest-rank method: the
/// smallest value with at least `q` of the samples at or below it. `None` when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency samples over a trailing span of time (or all of them), bounded in number.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    max_age_ms: Option<i64>,
    capacity: usize,
    /// (when the anomaly was written, latency in ms), in arrival order.
    samples: VecDeque<(i64, f64)>,
}

/// p50, p95, p99 of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Samples they were computed from.
    pub count: usize,
}

impl LatencyWindow {
    /// Samples from the last `max_age_ms` (all with `None`), at most `capacity`.
    pub fn new(max_age_ms: Option<i64>, capacity: usize) -> Self {
        Self {
            max_age_ms,
            capacity: capacity.max(1),
            samples: VecDeque::new(),
        }
    }

    /// Adds a latency observed at `at_ms`.
    pub fn add(&mut self, at_ms: i64, latency_ms: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back((at_ms, latency_ms));
    }

    /// Drops what is older than the window at `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        if let Some(age) = self.max_age_ms {
            while self
                .samples
                .front()
                .is_some_and(|&(at, _)| at < now_ms - age)
            {
                self.samples.pop_front();
            }
        }
    }

    /// The percentiles of the samples in the window, `None` when there are none.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let mut values: Vec<f64> = self.samples.iter().map(|&(_, l)| l).collect();
        values.sort_by(f64::total_cmp);
        Some(Percentiles {
            p50: percentile(&values, 0.50)?,
            p95: percentile(&values, 0.95)?,
            p99: percentile(&values, 0.99)?,
            count: values.len(),
        })
    }
}

/// Records counted by the second of their timestamp, for a per-second rate over the last
/// [`RATE_WINDOW_MS`].
#[derive(Debug, Clone, Default)]
pub struct RateCounter {
    by_second: BTreeMap<i64, u64>,
}

impl RateCounter {
    /// Counts a record written at `timestamp_ms`.
    pub fn add(&mut self, timestamp_ms: i64) {
        *self
            .by_second
            .entry(timestamp_ms.div_euclid(1000))
            .or_default() += 1;
    }

    /// Records per second over the window ending at `now_ms`. `observed_since_ms` is when
    /// reading started when it started at the end of the topics: a window reaching back before
    /// it is shortened to what could be seen (at least a second).
    pub fn per_second(&mut self, now_ms: i64, observed_since_ms: Option<i64>) -> f64 {
        let from_ms = now_ms - RATE_WINDOW_MS;
        let from_second = from_ms.div_euclid(1000);
        self.by_second = self.by_second.split_off(&from_second);
        let count: u64 = self
            .by_second
            .range(from_second + 1..=now_ms.div_euclid(1000))
            .map(|(_, n)| n)
            .sum();
        let span_ms = match observed_since_ms {
            Some(since) if since > from_ms => (now_ms - since).max(1000),
            _ => RATE_WINDOW_MS,
        };
        count as f64 * 1000.0 / span_ms as f64
    }
}

/// Flagged and labelled transactions, for precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelCounts {
    /// Labelled transactions read with label 1.
    pub positives: u64,
    /// Labelled transactions read with label 0.
    pub negatives: u64,
    /// Label-1 transactions with an anomaly.
    pub true_positives: u64,
    /// Label-0 transactions with an anomaly.
    pub false_positives: u64,
}

impl LabelCounts {
    /// Label-1 transactions without an anomaly (yet).
    pub fn false_negatives(&self) -> u64 {
        self.positives.saturating_sub(self.true_positives)
    }

    /// Flagged that were labelled 1; `None` before anything is flagged.
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.true_positives + self.false_positives;
        (flagged > 0).then(|| self.true_positives as f64 / flagged as f64)
    }

    /// Labelled 1 that were flagged; `None` before a label-1 transaction is read.
    pub fn recall(&self) -> Option<f64> {
        (self.positives > 0).then(|| self.true_positives as f64 / self.positives as f64)
    }

    /// Harmonic mean of precision and recall (0 when both are 0); `None` when either is.
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        Some(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        })
    }

    /// Whether any labelled transaction was read.
    pub fn any(&self) -> bool {
        self.positives + self.negatives > 0
    }
}

/// A transaction as remembered for its anomaly.
#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp_ms: Option<i64>,
    label: Option<u8>,
    flagged: bool,
}

/// Matches anomalies to the transactions they came from, by source (partition, offset): the
/// latency between their timestamps, and the label counts.
///
/// Precision and recall are over the transactions read so far: a transaction whose anomaly is
/// still in flight (or not read yet) counts as missed until it comes, so recall lags a little
/// behind the truth while records flow, and settles once they stop. An anomaly whose
/// transaction was not read (before the start of reading, or forgotten past
/// [`TRACKED_TRANSACTIONS`]) counts for neither latency nor labels. Duplicate anomalies of one
/// transaction (at-least-once redelivery) count once.
#[derive(Debug)]
pub struct Tracker {
    transactions: HashMap<(i32, i64), Seen>,
    transaction_order: VecDeque<(i32, i64)>,
    transaction_capacity: usize,
    /// Anomalies read before their transaction: source position → anomaly timestamp.
    pending: HashMap<(i32, i64), Option<i64>>,
    pending_order: VecDeque<(i32, i64)>,
    pending_capacity: usize,
    /// Pending anomalies given up for room.
    abandoned: u64,
    labels: LabelCounts,
    /// Latencies of matched anomalies (over the live window, or the whole run for `--once`).
    pub window: LatencyWindow,
}

impl Tracker {
    /// A tracker keeping latencies over the last `window_ms` (all with `None`).
    pub fn new(window_ms: Option<i64>) -> Self {
        Self::with_capacity(window_ms, TRACKED_TRANSACTIONS, PENDING_ANOMALIES)
    }

    /// As [`new`](Self::new), with other bounds (tests).
    pub fn with_capacity(window_ms: Option<i64>, transactions: usize, pending: usize) -> Self {
        Self {
            transactions: HashMap::new(),
            transaction_order: VecDeque::new(),
            transaction_capacity: transactions.max(1),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            pending_capacity: pending.max(1),
            abandoned: 0,
            labels: LabelCounts::default(),
            window: LatencyWindow::new(window_ms, LATENCY_SAMPLES),
        }
    }

    /// A transaction read at `(partition, offset)`.
    pub fn transaction(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        label: Option<u8>,
    ) {
        let key = (partition, offset);
        match label {
            Some(1) => self.labels.positives += 1,
            Some(_) => self.labels.negatives += 1,
            None => {}
        }
        if self.transactions.len() == self.transaction_capacity {
            if let Some(oldest) = self.transaction_order.pop_front() {
                self.transactions.remove(&oldest);
            }
        }
        self.transactions.insert(
            key,
            Seen {
                timestamp_ms,
                label,
                flagged: false,
            },
        );
        self.transaction_order.push_back(key);
        // Its entry in `pending_order` stays behind and is skipped when it comes up.
        if let Some(anomaly_ms) = self.pending.remove(&key) {
            self.matched(key, anomaly_ms);
        }
    }

    /// An anomaly of the transaction at `(partition, offset)`, written at `timestamp_ms`.
    pub fn anomaly(&mut self, partition: i32, offset: i64, timestamp_ms: Option<i64>) {
        let key = (partition, offset);
        if self.transactions.contains_key(&key) {
            self.matched(key, timestamp_ms);
            return;
        }
        if self.pending.contains_key(&key) {
            return; // a duplicate of one already waiting
        }
        while self.pending.len() >= self.pending_capacity {
            let Some(oldest) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending.remove(&oldest).is_some() {
                self.abandoned += 1;
            }
        }
        self.pending.insert(key, timestamp_ms);
        self.pending_order.push_back(key);
    }

    fn matched(&mut self, key: (i32, i64), anomaly_ms: Option<i64>) {
        let Some(seen) = self.transactions.get_mut(&key) else {
            return;
        };
        if seen.flagged {
            return;
        }
        seen.flagged = true;
        match seen.label {
            Some(1) => self.labels.true_positives += 1,
            Some(_) => self.labels.false_positives += 1,
            None => {}
        }
        if let (Some(from), Some(to)) = (seen.timestamp_ms, anomaly_ms) {
            self.window.add(to, (to - from) as f64);
        }
    }

    /// Anomalies whose transaction has not been read (waiting, or given up).
    pub fn unmatched(&self) -> u64 {
        self.pending.len() as u64 + self.abandoned
    }

    /// The label counts so far.
    pub fn labels(&self) -> LabelCounts {
        self.labels
    }
}

/// Which of the pipeline's topics a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Transactions.
    Input,
    /// Anomalies.
    Output,
    /// Dead letters.
    DeadLetters,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "anomalies",
            Role::DeadLetters => "dead_letters",
        }
    }
}

/// One partition's watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Partition id.
    pub partition: i32,
    /// Oldest offset.
    pub low: i64,
    /// Next offset to be written.
    pub high: i64,
}

/// The detectors' progress on one input partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition id.
    pub partition: i32,
    /// The group's committed offset, `None` when it has committed none.
    pub committed: Option<i64>,
    /// High watermark.
    pub high: i64,
    /// Records not yet committed: high − committed, or high − low without a commit (the
    /// detectors start at the earliest record).
    pub lag: i64,
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

/// One topic's reading.
#[derive(Debug, Clone)]
struct TopicState {
    name: String,
    role: Role,
    records: u64,
    rate: RateCounter,
    watermarks: Vec<Watermarks>,
}

/// Everything counted so far, turned into a summary by [`Stats::snapshot`].
#[derive(Debug)]
pub struct Stats {
    topics: Vec<TopicState>,
    /// Anomaly records that could not be read as anomalies.
    pub undecodable_anomalies: u64,
    tracker: Tracker,
    observed_since_ms: Option<i64>,
    limits: DecodeLimits,
    models: Models,
}

/// The models named by the anomalies (each anomaly names the model that scored it): the one
/// in use is the newest anomaly's, and its age is how long it has been naming anomalies.
#[derive(Debug, Default)]
struct Models {
    /// Per model id: anomalies, and the first and last anomaly timestamps.
    seen: std::collections::BTreeMap<String, (u64, i64, i64)>,
    /// The model of the newest anomaly, and that anomaly's timestamp.
    newest: Option<(String, i64)>,
}

impl Models {
    fn add(&mut self, model: &str, timestamp_ms: i64) {
        let entry = self
            .seen
            .entry(model.to_string())
            .or_insert((0, timestamp_ms, timestamp_ms));
        entry.0 += 1;
        entry.1 = entry.1.min(timestamp_ms);
        entry.2 = entry.2.max(timestamp_ms);
        if self
            .newest
            .as_ref()
            .is_none_or(|(_, at)| timestamp_ms >= *at)
        {
            self.newest = Some((model.to_string(), timestamp_ms));
        }
    }

    /// `{"id", "in_use_s", "anomalies", "models_seen"}` for the model in use, or null.
    fn summary(&self, now_ms: i64) -> Value {
        let Some((id, _)) = &self.newest else {
            return Value::Null;
        };
        let (anomalies, first_ms, _) = self.seen.get(id).copied().unwrap_or_default();
        json!({
            "id": id,
            "in_use_s": round3((now_ms - first_ms).max(0) as f64 / 1000.0),
            "anomalies": anomalies,
            "models_seen": self.seen.len(),
        })
    }
}

impl Stats {
    /// Counters for the three topics (input, anomalies, dead letters); latencies over the last
    /// `window_ms` (all with `None`); rates shortened to what was seen since
    /// `observed_since_ms` when reading started at the end.
    pub fn new(
        input: &str,
        output: &str,
        dead_letters: &str,
        window_ms: Option<i64>,
        observed_since_ms: Option<i64>,
    ) -> Self {
        let topic = |name: &str, role| TopicState {
            name: name.to_string(),
            role,
            records: 0,
            rate: RateCounter::default(),
            watermarks: Vec::new(),
        };
        Self {
            topics: vec![
                topic(input, Role::Input),
                topic(output, Role::Output),
                topic(dead_letters, Role::DeadLetters),
            ],
            undecodable_anomalies: 0,
            tracker: Tracker::new(window_ms),
            observed_since_ms,
            limits: DecodeLimits::default(),
            models: Models::default(),
        }
    }

    fn topic_mut(&mut self, role: Role) -> &mut TopicState {
        let index = match role {
            Role::Input => 0,
            Role::Output => 1,
            Role::DeadLetters => 2,
        };
        &mut self.topics[index]
    }

    /// The role of a topic by name.
    pub fn role_of(&self, topic: &str) -> Option<Role> {
        self.topics.iter().find(|t| t.name == topic).map(|t| t.role)
    }

    /// Counts one record.
    pub fn record(
        &mut self,
        role: Role,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        value: &[u8],
    ) {
        let topic = self.topic_mut(role);
        topic.records += 1;
        if let Some(ms) = timestamp_ms {
            topic.rate.add(ms);
        }
        match role {
            Role::Input => {
                // A record the detector refuses has no label worth counting: it goes to the
                // dead letters, not through the model.
                let label = Transaction::decode(value, &self.limits)
                    .ok()
                    .and_then(|tx| tx.label);
                self.tracker
                    .transaction(partition, offset, timestamp_ms, label);
            }
            Role::Output => match Anomaly::decode(value) {
                Ok(anomaly) => {
                    self.tracker
                        .anomaly(anomaly.partition, anomaly.offset, timestamp_ms);
                    if let Some(ms) = timestamp_ms {
                        self.models.add(&anomaly.model, ms);
                    }
                }
                Err(error) => {
                    if self.undecodable_anomalies == 0 {
                        log::warn!("{partition}/{offset} is not an anomaly record: {error}");
                    }
                    self.undecodable_anomalies += 1;
                }
            },
            Role::DeadLetters => {}
        }
    }

    /// Sets a topic's watermarks (for dead-letter totals and the topic listing).
    pub fn set_watermarks(&mut self, role: Role, watermarks: Vec<Watermarks>) {
        self.topic_mut(role).watermarks = watermarks;
    }

    /// The summary at `now_ms` as JSON (see the README for the fields), with the group's lag.
    pub fn snapshot(&mut self, now_ms: i64, group: &str, lag: Option<&[PartitionLag]>) -> Value {
        self.tracker.window.prune(now_ms);
        let since = self.observed_since_ms;
        let mut topics = serde_json::Map::new();
        for topic in &mut self.topics {
            let partitions: Vec<Value> = topic
                .watermarks
                .iter()
                .map(|w| json!({"partition": w.partition, "low": w.low, "high": w.high}))
                .collect();
            topics.insert(
                topic.name.clone(),
                json!({
                    "role": topic.role.name(),
                    "records": topic.records,
                    "per_second": round3(topic.rate.per_second(now_ms, since)),
                    "partitions": partitions,
                }),
            );
        }
        let (transactions, anomalies) = (self.topics[0].records, self.topics[1].records);
        let dead_letters: i64 = self.topics[2]
            .watermarks
            .iter()
            .map(|w| w.high - w.low)
            .sum();
        let latency = self.tracker.window.percentiles();
        let labels = self.tracker.labels();
        json!({
            "at": chrono::DateTime::from_timestamp_millis(now_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "topics": topics,
            "group": {
                "id": group,
                "lag": lag.map(|lag| lag.iter().map(|l| json!({
                    "partition": l.partition,
                    "committed": l.committed,
                    "high": l.high,
                    "lag": l.lag,
                })).collect::<Vec<_>>()),
                "total_lag": lag.map(|lag| lag.iter().map(|l| l.lag).sum::<i64>()),
            },
            "latency_ms": {
                "p50": latency.map(|l| l.p50),
                "p95": latency.map(|l| l.p95),
                "p99": latency.map(|l| l.p99),
                "count": latency.map_or(0, |l| l.count),
                "unmatched": self.tracker.unmatched(),
            },
            "anomaly_share": (transactions > 0).then(|| anomalies as f64 / transactions as f64),
            "dead_letters": dead_letters,
            "model": self.models.summary(now_ms),
            "labels": labels.any().then(|| json!({
                "precision": labels.precision(),
                "recall": labels.recall(),
                "f1": labels.f1(),
                "positives": labels.positives,
                "negatives": labels.negatives,
                "true_positives": labels.true_positives,
                "false_positives": labels.false_positives,
                "false_negatives": labels.false_negatives(),
            })),
        })
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The summary as a block of text for people.
pub fn render(snapshot: &Value) -> String {
    let number = |value: &Value| value.as_f64();
    let fixed = |value: &Value, digits: usize| {
        number(value).map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut text = format!(
        "inspector stats  {}\n{:<28} {:>12} {:>10}\n",
        snapshot["at"].as_str().unwrap_or("?"),
        "topic",
        "records",
        "per s"
    );
    if let Some(topics) = snapshot["topics"].as_object() {
        for (name, topic) in topics {
            text.push_str(&format!(
                "{name:<28} {:>12} {:>10}  ({})\n",
                topic["records"],
                fixed(&topic["per_second"], 1),
                topic["role"].as_str().unwrap_or("?")
            ));
        }
    }
    let share = number(&snapshot["anomaly_share"])
        .map_or_else(|| "-".to_string(), |s| format!("{:.3} %", s * 100.0));
    text.push_str(&format!(
        "anomaly share {share}   dead letters {}\n",
        snapshot["dead_letters"]
    ));
    let group = &snapshot["group"];
    match group["lag"].as_array() {
        Some(lag) => {
            let parts: Vec<String> = lag
                .iter()
                .map(|l| {
                    let committed = l["committed"]
                        .as_i64()
                        .map_or_else(|| "none".to_string(), |c| c.to_string());
                    format!(
                        "{}: {} (committed {committed}, high {})",
                        l["partition"], l["lag"], l["high"]
                    )
                })
                .collect();
            text.push_str(&format!(
                "group {} lag {}   {}\n",
                group["id"].as_str().unwrap_or("?"),
                group["total_lag"],
                parts.join("  ")
            ));
        }
        None => text.push_str(&format!(
            "group {} lag unknown\n",
            group["id"].as_str().unwrap_or("?")
        )),
    }
    let latency = &snapshot["latency_ms"];
    text.push_str(&format!(
        "latency ms  p50 {}  p95 {}  p99 {}  ({} matched, {} unmatched)\n",
        fixed(&latency["p50"], 1),
        fixed(&latency["p95"], 1),
        fixed(&latency["p99"], 1),
        latency["count"],
        latency["unmatched"]
    ));
    let model = &snapshot["model"];
    if model.is_object() {
        text.push_str(&format!(
            "model {} in use for {} s ({} anomalies; {} models seen)\n",
            model["id"].as_str().unwrap_or("?"),
            fixed(&model["in_use_s"], 0),
            model["anomalies"],
            model["models_seen"]
        ));
    }
    let labels = &snapshot["labels"];
    if labels.is_object() {
        text.push_str(&format!(
            "labels  precision {}  recall {}  f1 {}  (tp {} fp {} fn {})\n",
            fixed(&labels["precision"], 3),
            fixed(&labels["recall"], 3),
            fixed(&labels["f1"], 3),
            labels["true_positives"],
            labels["false_positives"],
            labels["false_negatives"]
        ));
    }
    text
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The partitions of `topic`, or `None` when it does not exist.
fn partitions_of(consumer: &BaseConsumer<bus::LoggingContext>, topic: &str) -> Option<Vec<i32>> {
    bus::topic_partitions(consumer, topic).ok()
}

fn watermarks(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
    partitions: &[i32],
) -> Vec<Watermarks> {
    partitions
        .iter()
        .filter_map(|&partition| {
            match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok((low, high)) => Some(Watermarks {
                    partition,
                    low,
                    high,
                }),
                Err(error) => {
                    log::warn!("no watermarks for {topic}/{partition}: {error}");
                    None
                }
            }
        })
        .collect()
}

/// The detector group's lag on the input partitions: its committed offsets, read by a client
/// with the group's id that never subscribes (so it does not join the group), against the
/// high watermarks.
pub fn group_lag(
    kafka: &bus::ClientSettings,
    group: &str,
    topic: &str,
    watermarks: &[Watermarks],
) -> Result<Vec<PartitionLag>> {
    let consumer = committed_reader(kafka, group)?;
    lag_with(&consumer, topic, watermarks)
}

fn committed_reader(kafka: &bus::ClientSettings, group: &str) -> Result<BaseConsumer> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    Ok(config
        .create()
        .map_err(|error| bus::creation_error(error, "consumer"))?)
}

fn lag_with(
    consumer: &BaseConsumer,
    topic: &str,
    watermarks: &[Watermarks],
) -> Result<Vec<PartitionLag>> {
    let mut list = TopicPartitionList::new();
    for w in watermarks {
        list.add_partition(topic, w.partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .context("cannot read the group's committed offsets")?;
    Ok(watermarks
        .iter()
        .map(|&w| {
            let offset =
                committed
                    .find_partition(topic, w.partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
            PartitionLag::new(w, offset)
        })
        .collect())
}

/// What is read: each topic's name, role and partitions.
struct Plan {
    topics: Vec<(String, Role, Vec<i32>)>,
}

impl Plan {
    fn new(consumer: &BaseConsumer<bus::LoggingContext>, args: &StatsArgs) -> Result<Plan> {
        let mut topics = Vec::new();
        for (name, role) in [
            (&args.input_topic, Role::Input),
            (&args.output_topic, Role::Output),
            (&args.dlq_topic, Role::DeadLetters),
        ] {
            match partitions_of(consumer, name) {
                Some(partitions) => topics.push((name.clone(), role, partitions)),
                None if role == Role::Input => bail!("topic {name} does not exist"),
                None => log::warn!("topic {name} does not exist: counted as empty"),
            }
        }
        Ok(Plan { topics })
    }
}

/// Runs `inspector stats` until `stop` is cancelled (or `--seconds` pass), writing to `out`,
/// a last summary at the stop; `clear` clears the screen before each live block (a
/// terminal). `--once`: one summary.
pub fn stats(
    kafka: &bus::ClientSettings,
    args: &StatsArgs,
    out: &mut dyn Write,
    clear: bool,
    stop: &CancellationToken,
) -> Result<()> {
    if !(args.window > 0.0 && args.window.is_finite()) {
        bail!(
            "--window must be a positive number of seconds, not {}",
            args.window
        );
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        );
    }
    let consumer = kafka.base_consumer()?;
    let plan = Plan::new(&consumer, args)?;
    // Watermarks and committed offsets come from clients of their own: on the reading
    // client's connections they would queue behind its fetches' long polls.
    let lag_reader = committed_reader(kafka, &args.group)?;
    if args.once {
        once(&consumer, &lag_reader, &plan, args, out)
    } else {
        let asker = kafka.base_consumer()?;
        live(
            &consumer,
            &asker,
            &lag_reader,
            &plan,
            args,
            out,
            clear,
            stop,
        )
    }
}

fn new_stats(args: &StatsArgs, window_ms: Option<i64>, since: Option<i64>) -> Stats {
    Stats::new(
        &args.input_topic,
        &args.output_topic,
        &args.dlq_topic,
        window_ms,
        since,
    )
}

fn count(stats: &mut Stats, message: &rdkafka::message::BorrowedMessage<'_>) {
    if let Some(role) = stats.role_of(message.topic()) {
        stats.record(
            role,
            message.partition(),
            message.offset(),
            message.timestamp().to_millis(),
            message.payload().unwrap_or_default(),
        );
    }
}

fn lag_or_warn(
    lag_reader: &BaseConsumer,
    args: &StatsArgs,
    stats: &Stats,
) -> Option<Vec<PartitionLag>> {
    let input = stats.topics[0].watermarks.clone();
    lag_with(lag_reader, &args.input_topic, &input)
        .map_err(|error| log::warn!("lag of group {}: {error:#}", args.group))
        .ok()
}

/// Reads each topic from its start (or last `--last` records) up to the high watermarks seen
/// now, then prints one summary.
fn once(
    consumer: &BaseConsumer<bus::LoggingContext>,
    lag_reader: &BaseConsumer,
    plan: &Plan,
    args: &StatsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let mut stats = new_stats(args, None, None);
    let mut assignment = TopicPartitionList::new();
    let mut ends: Vec<(String, i32, i64)> = Vec::new();
    for (name, role, partitions) in &plan.topics {
        let marks = watermarks(consumer, name, partitions);
        for w in &marks {
            let start = match args.last {
                Some(last) => (w.high - last as i64).max(w.low),
                None => w.low,
            };
            if start < w.high {
                assignment.add_partition_offset(name, w.partition, Offset::Offset(start))?;
                ends.push((name.clone(), w.partition, w.high));
            }
        }
        stats.set_watermarks(*role, marks);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let mut complete = true;
    if !ends.is_empty() {
        consumer.assign(&assignment)?;
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => count(&mut stats, &message),
                Some(Err(error)) => log::warn!("reading: {error}"),
                None => {}
            }
            let position = consumer.position()?;
            let done = ends.iter().all(|(topic, partition, high)| {
                position
                    .find_partition(topic, *partition)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(n) if n >= *high))
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                log::warn!("--timeout reached before every record up to the start's end was read");
                complete = false;
                break;
            }
        }
    }
    let lag = lag_or_warn(lag_reader, args, &stats);
    let mut snapshot = stats.snapshot(now_ms(), &args.group, lag.as_deref());
    snapshot["complete"] = Value::from(complete);
    if args.json {
        writeln!(out, "{snapshot}")?;
    } else {
        write!(out, "{}", render(&snapshot))?;
    }
    out.flush()?;
    Ok(())
}

/// Reads as records come, and shows a summary every second.
#[allow(clippy::too_many_arguments)]
fn live(
    consumer: &BaseConsumer<bus::LoggingContext>,
    asker: &BaseConsumer<bus::LoggingContext>,
    lag_reader: &BaseConsumer,
    plan: &Plan,
    args: &StatsArgs,
    out: &mut dyn Write,
    clear: bool,
    stop: &CancellationToken,
) -> Result<()> {
    let started = Instant::now();
    let since = (!args.from_beginning).then(now_ms);
    let window_ms = (args.window * 1000.0) as i64;
    let mut stats = new_stats(args, Some(window_ms), since);
    // Start at offsets resolved from the watermarks rather than at Beginning/End, which
    // librdkafka resolves with a request of its own per partition once assigned.
    let mut assignment = TopicPartitionList::new();
    for (name, role, partitions) in &plan.topics {
        let marks = watermarks(consumer, name, partitions);
        for w in &marks {
            let start = if args.from_beginning { w.low } else { w.high };
            assignment.add_partition_offset(name, w.partition, Offset::Offset(start))?;
        }
        stats.set_watermarks(*role, marks);
    }
    consumer.assign(&assignment)?;
    let limit = args.seconds.map(Duration::from_secs_f64);
    let mut next = Instant::now();
    loop {
        let stopping = stop.is_cancelled() || limit.is_some_and(|limit| started.elapsed() >= limit);
        // A last summary at the stop, so what was read since the last one is shown.
        if stopping || Instant::now() >= next {
            // A slow round of watermark and offset requests delays the next block rather
            // than making blocks back to back with no reading between them.
            next = (next + Duration::from_secs(1)).max(Instant::now() + Duration::from_millis(500));
            let asking = Instant::now();
            for (name, role, partitions) in &plan.topics {
                let marks = watermarks(asker, name, partitions);
                stats.set_watermarks(*role, marks);
            }
            let watermarks_took = asking.elapsed();
            let lag = lag_or_warn(lag_reader, args, &stats);
            log::debug!(
                "watermarks took {watermarks_took:?}, the lag {:?}",
                asking.elapsed() - watermarks_took
            );
            let snapshot = stats.snapshot(now_ms(), &args.group, lag.as_deref());
            let written = if args.json {
                writeln!(out, "{snapshot}")
            } else if clear {
                write!(out, "\x1b[2J\x1b[H{}", render(&snapshot))
            } else {
                writeln!(out, "{}", render(&snapshot))
            };
            written.and_then(|()| out.flush())?;
            if stopping {
                break;
            }
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match consumer.poll(wait) {
            Some(Ok(message)) => count(&mut stats, &message),
            Some(Err(error)) => log::warn!("reading: {error}"),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.95), Some(95.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 1.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        // 3 values: the median is the second, p95 and p99 the third.
        assert_eq!(percentile(&[1.0, 2.0, 30.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 30.0], 0.95), Some(30.0));
    }

    #[test]
    fn the_latency_window_forgets_old_samples_and_keeps_at_most_its_capacity() {
        let mut window = LatencyWindow::new(Some(60_000), 1000);
        window.add(0, 500.0);
        for i in 0..10 {
            window.add(100_000 + i, f64::from(i as i32));
        }
        window.prune(120_000);
        let p = window.percentiles().unwrap();
        assert_eq!((p.count, p.p50, p.p99), (10, 4.0, 9.0));
        window.prune(1_000_000);
        assert_eq!(window.percentiles(), None);

        let mut bounded = LatencyWindow::new(None, 3);
        for latency in [100.0, 1.0, 2.0, 3.0] {
            bounded.add(0, latency);
        }
        bounded.prune(i64::MAX);
        let p = bounded.percentiles().unwrap();
        assert_eq!((p.count, p.p99), (3, 3.0), "the oldest (100) went first");
    }

    #[test]
    fn rates_count_the_last_ten_seconds_of_timestamps() {
        let mut rate = RateCounter::default();
        for second in 0..30 {
            for _ in 0..5 {
                rate.add(second * 1000 + 500);
            }
        }
        // Seconds 20..=29 are in the window ending at 29.9 s.
        assert_eq!(rate.per_second(29_900, None), 5.0);
        // Observed only for the last 2 s: 10 seconds of records would be over-counted; the
        // span is shortened (records before the observation could not have been seen live).
        let mut recent = RateCounter::default();
        for _ in 0..20 {
            recent.add(29_500);
        }
        assert_eq!(recent.per_second(30_000, Some(28_000)), 10.0);
        assert_eq!(RateCounter::default().per_second(30_000, None), 0.0);
    }

    #[test]
    fn precision_recall_and_f1_follow_their_definitions() {
        let counts = LabelCounts {
            positives: 10,
            negatives: 90,
            true_positives: 6,
            false_positives: 2,
        };
        assert_eq!(counts.precision(), Some(0.75));
        assert_eq!(counts.recall(), Some(0.6));
        let f1 = counts.f1().unwrap();
        assert!((f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12, "{f1}");
        assert_eq!(counts.false_negatives(), 4);
        let nothing_flagged = LabelCounts {
            positives: 3,
            ..LabelCounts::default()
        };
        assert_eq!(nothing_flagged.precision(), None);
        assert_eq!(nothing_flagged.recall(), Some(0.0));
        assert_eq!(nothing_flagged.f1(), None);
        let all_wrong = LabelCounts {
            positives: 1,
            negatives: 1,
            true_positives: 0,
            false_positives: 1,
        };
        assert_eq!(all_wrong.f1(), Some(0.0));
        assert!(!LabelCounts::default().any());
    }

    #[test]
    fn anomalies_match_their_transactions_in_either_order_and_count_once() {
        let mut tracker = Tracker::with_capacity(None, 100, 100);
        // Transaction first, then its anomaly 40 ms later; a duplicate anomaly changes nothing.
        tracker.transaction(0, 5, Some(1_000), Some(1));
        tracker.anomaly(0, 5, Some(1_040));
        tracker.anomaly(0, 5, Some(1_090));
        // Anomaly first (read from another topic ahead of its transaction).
        tracker.anomaly(1, 7, Some(2_010));
        assert_eq!(tracker.unmatched(), 1);
        tracker.transaction(1, 7, Some(2_000), Some(0));
        assert_eq!(tracker.unmatched(), 0);
        // A labelled transaction without an anomaly, and one unlabelled with one.
        tracker.transaction(2, 0, Some(3_000), Some(1));
        tracker.transaction(2, 1, Some(3_000), None);
        tracker.anomaly(2, 1, Some(3_100));
        let p = tracker.window.percentiles().unwrap();
        assert_eq!(p.count, 3);
        assert_eq!((p.p50, p.p99), (40.0, 100.0));
        assert_eq!(
            tracker.labels(),
            LabelCounts {
                positives: 2,
                negatives: 1,
                true_positives: 1,
                false_positives: 1,
            }
        );
    }

    #[test]
    fn the_tracker_stays_bounded() {
        let mut tracker = Tracker::with_capacity(None, 2, 2);
        for offset in 0..3 {
            tracker.transaction(0, offset, Some(0), Some(1));
        }
        // Offset 0 was forgotten: its anomaly waits (and is given up for room later).
        tracker.anomaly(0, 0, Some(5));
        tracker.anomaly(0, 100, Some(5));
        tracker.anomaly(0, 101, Some(5));
        assert_eq!(tracker.unmatched(), 3);
        assert_eq!(tracker.labels().true_positives, 0);
        tracker.anomaly(0, 2, Some(7));
        assert_eq!(tracker.labels().true_positives, 1);
        assert_eq!(tracker.window.percentiles().unwrap().p50, 7.0);
    }

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
    fn a_snapshot_has_the_fields_scripts_read_and_renders_for_people() {
        let mut stats = Stats::new("tx", "an", "dlq", None, None);
        let tx = |id: i64, label: u8| {
            format!(r#"{{"id": {id}, "data": [[1.0, 2.0]], "label": {label}}}"#).into_bytes()
        };
        stats.record(Role::Input, 0, 0, Some(1_000), &tx(0, 1));
        stats.record(Role::Input, 0, 1, Some(1_000), &tx(1, 0));
        let anomaly = br#"{"id": 0, "data": [[1.0, 2.0]], "label": 1, "score": [-0.7],
            "anomaly_score": 0.7, "threshold": 0.6, "model": "m",
            "detected_at": "2026-01-01T00:00:00Z", "partition": 0, "offset": 0}"#;
        stats.record(Role::Output, 0, 0, Some(1_025), anomaly);
        stats.record(Role::Output, 0, 1, Some(1_030), b"not an anomaly");
        stats.set_watermarks(
            Role::DeadLetters,
            vec![Watermarks {
                partition: 0,
                low: 1,
                high: 4,
            }],
        );
        let lag = [PartitionLag::new(
            Watermarks {
                partition: 0,
                low: 0,
                high: 2,
            },
            Some(1),
        )];
        let snapshot = stats.snapshot(5_000, "detectors", Some(&lag));
        assert_eq!(snapshot["topics"]["tx"]["records"], 2);
        assert_eq!(snapshot["topics"]["tx"]["role"], "input");
        assert_eq!(snapshot["topics"]["an"]["records"], 2);
        assert_eq!(snapshot["anomaly_share"], 1.0);
        assert_eq!(snapshot["dead_letters"], 3);
        assert_eq!(snapshot["group"]["total_lag"], 1);
        assert_eq!(snapshot["group"]["lag"][0]["committed"], 1);
        assert_eq!(snapshot["latency_ms"]["p50"], 25.0);
        assert_eq!(snapshot["latency_ms"]["count"], 1);
        assert_eq!(snapshot["labels"]["precision"], 1.0);
        assert_eq!(snapshot["labels"]["recall"], 1.0);
        assert_eq!(stats.undecodable_anomalies, 1);
        let text = render(&snapshot);
        assert!(text.contains("latency ms  p50 25.0"), "{text}");
        assert!(text.contains("precision 1.000"), "{text}");
        assert!(text.contains("group detectors lag 1"), "{text}");
        assert_eq!(snapshot["model"]["id"], "m");
        assert_eq!(snapshot["model"]["in_use_s"], 3.975);
        assert!(text.contains("model m in use for 4 s"), "{text}");

        let mut unlabelled = Stats::new("tx", "an", "dlq", None, None);
        let snapshot = unlabelled.snapshot(0, "g", None);
        assert_eq!(snapshot["labels"], Value::Null);
        assert_eq!(snapshot["anomaly_share"], Value::Null);
        assert_eq!(snapshot["latency_ms"]["p50"], Value::Null);
        assert!(render(&snapshot).contains("lag unknown"));
        assert_eq!(snapshot["model"], Value::Null);
    }

    #[test]
    fn the_model_in_use_is_the_newest_anomaly_s_and_its_age_counts_from_its_first() {
        let mut models = Models::default();
        models.add("old", 1_000);
        models.add("new", 5_000);
        models.add("old", 4_000); // a late anomaly of the old model, read after
        models.add("new", 9_000);
        let summary = models.summary(15_000);
        assert_eq!(summary["id"], "new");
        assert_eq!(summary["in_use_s"], 10.0);
        assert_eq!(summary["anomalies"], 2);
        assert_eq!(summary["models_seen"], 2);
    }
}
