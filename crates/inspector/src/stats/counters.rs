//! The counters `stats` keeps while reading (no Kafka here): records and rates per topic, the
//! anomalies matched to their transactions, the models named, and the [`Snapshot`] they make.

use std::collections::BTreeMap;

use schema::{Anomaly, DecodeLimits, Transaction};

use super::snapshot::{
    GroupSummary, LabelSummary, LatencySummary, ModelSummary, PartitionLag, Role, Snapshot,
    TopicSummary, Watermarks,
};
use super::tracker::Tracker;

/// Records per second are counted over this trailing span of record timestamps.
pub const RATE_WINDOW_MS: i64 = 10_000;

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

/// One topic's reading.
#[derive(Debug, Clone)]
struct TopicState {
    name: String,
    role: Role,
    records: u64,
    rate: RateCounter,
    watermarks: Vec<Watermarks>,
}

/// The models named by the anomalies (each anomaly names the model that scored it): the one
/// in use is the newest anomaly's, and its age is how long it has been naming anomalies.
#[derive(Debug, Default)]
pub struct Models {
    /// Per model id: anomalies, and the first and last anomaly timestamps.
    seen: BTreeMap<String, (u64, i64, i64)>,
    /// The model of the newest anomaly, and that anomaly's timestamp.
    newest: Option<(String, i64)>,
}

impl Models {
    /// An anomaly of `model` written at `timestamp_ms`.
    pub fn add(&mut self, model: &str, timestamp_ms: i64) {
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

    /// The model in use at `now_ms`, `None` before an anomaly named one.
    pub fn summary(&self, now_ms: i64) -> Option<ModelSummary> {
        let (id, _) = self.newest.as_ref()?;
        let (anomalies, first_ms, _) = self.seen.get(id).copied().unwrap_or_default();
        Some(ModelSummary {
            id: id.clone(),
            in_use_s: round3((now_ms - first_ms).max(0) as f64 / 1000.0),
            anomalies,
            models_seen: self.seen.len(),
        })
    }

    /// When the model in use named its first anomaly (ms), `None` before any.
    pub fn in_use_since_ms(&self) -> Option<i64> {
        let (id, _) = self.newest.as_ref()?;
        self.seen.get(id).map(|&(_, first_ms, _)| first_ms)
    }
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
        &mut self.topics[index(role)]
    }

    /// The role of a topic by name.
    pub fn role_of(&self, topic: &str) -> Option<Role> {
        self.topics.iter().find(|t| t.name == topic).map(|t| t.role)
    }

    /// A topic's last watermarks.
    pub fn watermarks(&self, role: Role) -> &[Watermarks] {
        &self.topics[index(role)].watermarks
    }

    /// The models the anomalies named.
    pub fn models(&self) -> &Models {
        &self.models
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

    /// The summary at `now_ms`, with the group's lag (`None`: unknown).
    pub fn snapshot(&mut self, now_ms: i64, group: &str, lag: Option<&[PartitionLag]>) -> Snapshot {
        self.tracker.window.prune(now_ms);
        let since = self.observed_since_ms;
        let topics = self
            .topics
            .iter_mut()
            .map(|topic| {
                let summary = TopicSummary {
                    partitions: topic.watermarks.clone(),
                    per_second: round3(topic.rate.per_second(now_ms, since)),
                    records: topic.records,
                    role: topic.role,
                };
                (topic.name.clone(), summary)
            })
            .collect();
        let transactions = self.topics[index(Role::Input)].records;
        let anomalies = self.topics[index(Role::Output)].records;
        let dead_letters = self.topics[index(Role::DeadLetters)]
            .watermarks
            .iter()
            .map(|w| w.high - w.low)
            .sum();
        let latency = self.tracker.window.percentiles();
        let labels = self.tracker.labels();
        Snapshot {
            anomaly_share: (transactions > 0).then(|| anomalies as f64 / transactions as f64),
            at: chrono::DateTime::from_timestamp_millis(now_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            complete: None,
            dead_letters,
            group: GroupSummary {
                id: group.to_string(),
                lag: lag.map(<[PartitionLag]>::to_vec),
                total_lag: lag.map(|lag| lag.iter().map(|l| l.lag).sum()),
            },
            labels: labels.any().then(|| LabelSummary {
                f1: labels.f1(),
                false_negatives: labels.false_negatives(),
                false_positives: labels.false_positives,
                negatives: labels.negatives,
                positives: labels.positives,
                precision: labels.precision(),
                recall: labels.recall(),
                true_positives: labels.true_positives,
            }),
            latency_ms: LatencySummary {
                count: latency.map_or(0, |l| l.count),
                p50: latency.map(|l| l.p50),
                p95: latency.map(|l| l.p95),
                p99: latency.map(|l| l.p99),
                unmatched: self.tracker.unmatched(),
            },
            model: self.models.summary(now_ms),
            topics,
        }
    }
}

fn index(role: Role) -> usize {
    match role {
        Role::Input => 0,
        Role::Output => 1,
        Role::DeadLetters => 2,
    }
}

/// `value` rounded to 3 decimals.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Three transactions, an anomaly of the first, a record that is not an anomaly, dead
    /// letters and the group's lag on two partitions.
    fn counted() -> (Stats, Vec<PartitionLag>) {
        let mut stats = Stats::new("tx", "an", "dlq", None, None);
        let tx = |id: i64, label: u8| {
            format!(r#"{{"id": {id}, "data": [[1.0, 2.0]], "label": {label}}}"#).into_bytes()
        };
        stats.record(Role::Input, 0, 0, Some(1_000), &tx(0, 1));
        stats.record(Role::Input, 0, 1, Some(1_000), &tx(1, 0));
        stats.record(Role::Input, 1, 0, Some(1_500), &tx(2, 1));
        let anomaly = br#"{"id": 0, "data": [[1.0, 2.0]], "label": 1, "score": [-0.7],
            "anomaly_score": 0.7, "threshold": 0.6, "model": "m",
            "detected_at": "2026-01-01T00:00:00Z", "partition": 0, "offset": 0}"#;
        stats.record(Role::Output, 0, 0, Some(1_025), anomaly);
        stats.record(Role::Output, 0, 1, Some(1_030), b"not an anomaly");
        let marks = |partition, low, high| Watermarks {
            partition,
            low,
            high,
        };
        stats.set_watermarks(Role::DeadLetters, vec![marks(0, 1, 4)]);
        stats.set_watermarks(Role::Input, vec![marks(0, 0, 2), marks(1, 0, 1)]);
        let lag = vec![
            PartitionLag::new(marks(0, 0, 2), Some(1)),
            PartitionLag::new(marks(1, 0, 1), None),
        ];
        (stats, lag)
    }

    #[test]
    fn the_snapshot_is_the_json_scripts_read() {
        let (mut stats, lag) = counted();
        let snapshot = stats.snapshot(5_000, "detectors", Some(&lag));
        assert_eq!(stats.undecodable_anomalies, 1);
        // The exact text (keys in order): scripts and earlier releases read this.
        assert_eq!(
            serde_json::to_string(&snapshot).unwrap(),
            concat!(
                r#"{"anomaly_share":0.6666666666666666,"at":"1970-01-01T00:00:05.000Z","#,
                r#""dead_letters":3,"group":{"id":"detectors","lag":[{"committed":1,"high":2,"#,
                r#""lag":1,"partition":0},{"committed":null,"high":1,"lag":1,"partition":1}],"#,
                r#""total_lag":2},"labels":{"f1":0.6666666666666666,"false_negatives":1,"#,
                r#""false_positives":0,"negatives":1,"positives":2,"precision":1.0,"#,
                r#""recall":0.5,"true_positives":1},"latency_ms":{"count":1,"p50":25.0,"#,
                r#""p95":25.0,"p99":25.0,"unmatched":0},"model":{"anomalies":1,"id":"m","#,
                r#""in_use_s":3.975,"models_seen":1},"topics":{"an":{"partitions":[],"#,
                r#""per_second":0.2,"records":2,"role":"anomalies"},"dlq":{"partitions":"#,
                r#"[{"high":4,"low":1,"partition":0}],"per_second":0.0,"records":0,"#,
                r#""role":"dead_letters"},"tx":{"partitions":[{"high":2,"low":0,"partition":0},"#,
                r#"{"high":1,"low":0,"partition":1}],"per_second":0.3,"records":3,"#,
                r#""role":"input"}}}"#
            )
        );
        let read_back: Snapshot =
            serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
        assert_eq!(read_back, snapshot);
    }

    #[test]
    fn undefined_figures_are_null() {
        let mut unlabelled = Stats::new("tx", "an", "dlq", Some(60_000), Some(0));
        let json = serde_json::to_value(unlabelled.snapshot(0, "g", None)).unwrap();
        assert_eq!(
            json.to_string(),
            concat!(
                r#"{"anomaly_share":null,"at":"1970-01-01T00:00:00.000Z","dead_letters":0,"#,
                r#""group":{"id":"g","lag":null,"total_lag":null},"labels":null,"#,
                r#""latency_ms":{"count":0,"p50":null,"p95":null,"p99":null,"unmatched":0},"#,
                r#""model":null,"topics":{"an":{"partitions":[],"per_second":0.0,"records":0,"#,
                r#""role":"anomalies"},"dlq":{"partitions":[],"per_second":0.0,"records":0,"#,
                r#""role":"dead_letters"},"tx":{"partitions":[],"per_second":0.0,"records":0,"#,
                r#""role":"input"}}}"#
            )
        );
    }

    #[test]
    fn the_model_in_use_is_the_newest_anomaly_s_and_its_age_counts_from_its_first() {
        let mut models = Models::default();
        models.add("old", 1_000);
        models.add("new", 5_000);
        models.add("old", 4_000); // a late anomaly of the old model, read after
        models.add("new", 9_000);
        let summary = models.summary(15_000).unwrap();
        assert_eq!(summary.id, "new");
        assert_eq!(summary.in_use_s, 10.0);
        assert_eq!(summary.anomalies, 2);
        assert_eq!(summary.models_seen, 2);
        assert_eq!(models.in_use_since_ms(), Some(5_000));
        assert_eq!(Models::default().summary(0), None);
    }
}
