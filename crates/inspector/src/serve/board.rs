//! What `serve` counts while reading: the figures of `stats` ([`Stats`], the one source of
//! them) and, from the same records, what only the page shows: per-second series, the latest
//! anomalies with their top reason, dead letters by reason, scores for the histogram and the
//! latest points. Everything is bounded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use schema::{Anomaly, DeadLetter, DecodeLimits, Transaction};
use serde::Deserialize;

use super::model::{feature_names, LoadedModel};
use super::page::{AnomalyRow, GroupView, History, ModelView, Page, Reason, ScoreView};
use crate::plot::histogram;
use crate::stats::{Count, PartitionLag, Role, Stats, Watermarks};

/// Anomalies kept for the table.
pub const LATEST_ANOMALIES: usize = 50;
/// Scores kept for the histogram.
pub const SCORES_KEPT: usize = 5_000;
/// Transactions scored with `--model` per tick at most (the rest are only counted).
pub const SCORED_PER_TICK: usize = 2_000;
/// Points kept for the contour.
pub const POINTS_KEPT: usize = 400;
/// Histogram bins.
const BINS: usize = 40;

/// The fields of an anomaly record that only the page reads.
#[derive(Deserialize)]
struct Extras {
    #[serde(default)]
    explanation: Option<Vec<Reason>>,
    #[serde(default)]
    features: Option<serde_json::Value>,
}

/// The counts of one reading, for the page.
#[derive(Debug)]
pub struct Board {
    stats: Stats,
    group: String,
    history_s: i64,
    /// Per second of record timestamp: `[transactions, anomalies]`.
    seconds: BTreeMap<i64, [u64; 2]>,
    /// `[at_ms, p50, p95, p99]` per tick.
    latency: VecDeque<[Option<f64>; 4]>,
    latest: VecDeque<AnomalyRow>,
    dead_letters: BTreeMap<String, u64>,
    /// `(score, above the threshold)`.
    scores: VecDeque<(f64, bool)>,
    points: VecDeque<[f64; 3]>,
    model: Option<Arc<LoadedModel>>,
    scored_this_tick: usize,
    /// The newest anomaly's threshold and feature count (without `--model`).
    anomaly_threshold: Option<f64>,
    anomaly_width: usize,
    limits: DecodeLimits,
}

impl Board {
    /// Counts around `stats`, for group `group`, with series over `history_s` seconds.
    pub fn new(stats: Stats, group: &str, history_s: u32) -> Self {
        Self {
            stats,
            group: group.to_string(),
            history_s: i64::from(history_s.max(10)),
            seconds: BTreeMap::new(),
            latency: VecDeque::new(),
            latest: VecDeque::new(),
            dead_letters: BTreeMap::new(),
            scores: VecDeque::new(),
            points: VecDeque::new(),
            model: None,
            scored_this_tick: 0,
            anomaly_threshold: None,
            anomaly_width: 0,
            limits: DecodeLimits::default(),
        }
    }

    /// Scores transactions with `model` from now on (none: the anomalies' scores are shown).
    pub fn set_model(&mut self, model: Option<Arc<LoadedModel>>) {
        self.model = model;
        // Scores and points of another model would mix two pictures.
        self.scores.clear();
        self.points.clear();
    }

    fn transaction(&mut self, value: &[u8]) {
        let Some(model) = &self.model else { return };
        if self.scored_this_tick >= SCORED_PER_TICK {
            return;
        }
        let Ok(tx) = Transaction::decode(value, &self.limits) else {
            return;
        };
        let Ok(score) = model.forest.score(&tx.features) else {
            return; // a record the model cannot score goes to the dead letters
        };
        self.scored_this_tick += 1;
        let above = score > model.forest.threshold();
        push_bounded(&mut self.scores, (score, above), SCORES_KEPT);
        if let [x, y] = tx.features[..] {
            push_bounded(
                &mut self.points,
                [x, y, f64::from(u8::from(above))],
                POINTS_KEPT,
            );
        }
    }

    fn anomaly(&mut self, partition: i32, offset: i64, timestamp_ms: Option<i64>, value: &[u8]) {
        let Ok(anomaly) = Anomaly::decode(value) else {
            return; // counted by `Stats`
        };
        let extras: Option<Extras> = serde_json::from_slice(value).ok();
        let (reason, named) = match extras {
            Some(extras) => (
                extras.explanation.and_then(|e| e.into_iter().next()),
                extras.features,
            ),
            None => (None, None),
        };
        let features = match named.as_ref().and_then(serde_json::Value::as_object) {
            Some(object) => object
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_f64()?)))
                .collect(),
            None => {
                // Named as the model file names them, when it fits.
                let names = match &self.model {
                    Some(model) if model.forest.n_features() == anomaly.features.len() => {
                        feature_names(&model.forest)
                    }
                    _ => (0..anomaly.features.len())
                        .map(|i| format!("feature {i}"))
                        .collect(),
                };
                names
                    .into_iter()
                    .zip(anomaly.features.iter().copied())
                    .collect()
            }
        };
        self.anomaly_threshold = Some(anomaly.threshold);
        self.anomaly_width = anomaly.features.len();
        if self.model.is_none() {
            push_bounded(&mut self.scores, (anomaly.anomaly_score, true), SCORES_KEPT);
        }
        let row = AnomalyRow {
            at_ms: timestamp_ms,
            id: anomaly.id.to_string(),
            score: anomaly.anomaly_score,
            threshold: anomaly.threshold,
            reason,
            features,
            model: anomaly.model,
            source: format!("{}/{}", anomaly.partition, anomaly.offset),
        };
        log::trace!("anomaly at {partition}/{offset}: {}", row.id);
        // Newest first; the topics' partitions interleave, so order by timestamp.
        let at = self.latest.partition_point(|shown| shown.at_ms > row.at_ms);
        if at < LATEST_ANOMALIES {
            self.latest.insert(at, row);
            self.latest.truncate(LATEST_ANOMALIES);
        }
    }

    fn dead_letter(&mut self, value: &[u8]) {
        let reason = DeadLetter::decode(value).map_or_else(|_| "unreadable".into(), |l| l.reason);
        *self.dead_letters.entry(reason).or_default() += 1;
    }

    /// The page at `now_ms`, with the group's lag and its description.
    pub fn page(
        &mut self,
        now_ms: i64,
        lag: Option<&[PartitionLag]>,
        group: GroupView,
        model_error: Option<String>,
    ) -> Page {
        self.scored_this_tick = 0;
        let stats = self.stats.snapshot(now_ms, &self.group, lag);
        let latency = &stats.latency_ms;
        push_bounded(
            &mut self.latency,
            [Some(now_ms as f64), latency.p50, latency.p95, latency.p99],
            self.history_s as usize,
        );
        let models = self.stats.models();
        let model = ModelView {
            in_use: stats.model.as_ref().map(|m| m.id.clone()),
            in_use_since_ms: models.in_use_since_ms(),
            models_seen: stats.model.as_ref().map_or(0, |m| m.models_seen),
            features: match &self.model {
                Some(loaded) => feature_names(&loaded.forest),
                None => (0..self.anomaly_width)
                    .map(|i| format!("feature {i}"))
                    .collect(),
            },
            file: self.model.as_ref().map(|m| m.view(model_error)),
        };
        Page {
            history: self.history(now_ms),
            group,
            scores: self.score_view(),
            points: self.points.iter().copied().collect(),
            latest: self.latest.iter().cloned().collect(),
            dead_letters: self.dead_letters.clone(),
            model,
            stats,
        }
    }

    fn history(&mut self, now_ms: i64) -> History {
        let end_s = now_ms.div_euclid(1000);
        let start_s = end_s - self.history_s;
        self.seconds = self.seconds.split_off(&start_s);
        let mut input = vec![0; self.history_s as usize];
        let mut anomalies = vec![0; self.history_s as usize];
        for (&second, counts) in self.seconds.range(start_s..end_s) {
            let index = (second - start_s) as usize;
            input[index] = counts[0];
            anomalies[index] = counts[1];
        }
        let minute = input.len().saturating_sub(60);
        let (tx, an): (u64, u64) = (
            input[minute..].iter().sum(),
            anomalies[minute..].iter().sum(),
        );
        History {
            end_s,
            share_last_minute: (tx > 0).then(|| an as f64 / tx as f64),
            input,
            anomalies,
            latency: self.latency.iter().copied().collect(),
        }
    }

    fn score_view(&self) -> ScoreView {
        let threshold = match &self.model {
            Some(model) => Some(model.forest.threshold()),
            None => self.anomaly_threshold,
        };
        let (scores, above): (Vec<f64>, Vec<bool>) = self.scores.iter().copied().unzip();
        let start = threshold.unwrap_or(0.5);
        let (low, high) = scores
            .iter()
            .fold((start, start), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let margin = ((high - low) * 0.02).max(1e-3);
        let (low, high) = (low - margin, high + margin);
        ScoreView {
            source: if self.model.is_some() {
                "transactions"
            } else {
                "anomalies"
            },
            threshold,
            low,
            high,
            bins: histogram(&scores, &above, BINS, low, high),
            count: scores.len(),
        }
    }
}

impl Count for Board {
    fn role_of(&self, topic: &str) -> Option<Role> {
        self.stats.role_of(topic)
    }

    fn record(
        &mut self,
        role: Role,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        value: &[u8],
    ) {
        self.stats
            .record(role, partition, offset, timestamp_ms, value);
        let column = match role {
            Role::Input => Some(0),
            Role::Output => Some(1),
            Role::DeadLetters => None,
        };
        if let (Some(column), Some(ms)) = (column, timestamp_ms) {
            self.seconds.entry(ms.div_euclid(1000)).or_default()[column] += 1;
        }
        match role {
            Role::Input => self.transaction(value),
            Role::Output => self.anomaly(partition, offset, timestamp_ms, value),
            Role::DeadLetters => self.dead_letter(value),
        }
    }

    fn set_watermarks(&mut self, role: Role, watermarks: Vec<Watermarks>) {
        self.stats.set_watermarks(role, watermarks);
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, value: T, capacity: usize) {
    if ring.len() >= capacity.max(1) {
        ring.pop_front();
    }
    ring.push_back(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        Board::new(Stats::new("tx", "an", "dlq", None, None), "g", 60)
    }

    fn anomaly(id: i64, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"id": {id}, "data": [[1.5, -2.0]], "score": [-0.7], "anomaly_score": 0.7,
            "threshold": 0.6, "model": "m1", "detected_at": "2026-01-01T00:00:00Z",
            "partition": 0, "offset": {id}{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_latest_anomalies_come_newest_first_with_their_top_reason_or_none() {
        let mut board = board();
        let explained = r#", "explanation": [{"feature": "amount", "value": 912.5,
            "direction": "high", "share": 0.62}, {"feature": "hour", "value": 3,
            "direction": "low", "share": 0.2}], "features": {"amount": 912.5, "hour": 3}"#;
        board.record(Role::Output, 0, 0, Some(2_000), &anomaly(1, explained));
        board.record(Role::Output, 0, 1, Some(1_000), &anomaly(2, ""));
        board.record(Role::Output, 0, 2, Some(3_000), b"not an anomaly");
        let page = board.page(4_000, None, GroupView::default(), None);
        let ids: Vec<&str> = page.latest.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        let reason = page.latest[0].reason.as_ref().unwrap();
        assert_eq!(
            (
                reason.feature.as_str(),
                reason.direction.as_deref(),
                reason.share
            ),
            ("amount", Some("high"), Some(0.62))
        );
        assert_eq!(
            page.latest[0].features,
            [("amount".to_string(), 912.5), ("hour".to_string(), 3.0)]
        );
        assert_eq!(page.latest[1].reason, None);
        assert_eq!(page.latest[1].features[1], ("feature 1".to_string(), -2.0));
        // Without --model: the anomalies' scores, with their threshold.
        assert_eq!(page.scores.source, "anomalies");
        assert_eq!(page.scores.threshold, Some(0.6));
        assert_eq!(page.scores.count, 2);
        assert_eq!(page.model.features, ["feature 0", "feature 1"]);
        assert_eq!(page.stats.topics["an"].records, 3, "one source of truth");
    }

    #[test]
    fn series_count_records_by_second_and_dead_letters_by_reason() {
        let mut board = board();
        let tx = br#"{"id": 1, "data": [[1.0, 2.0]]}"#;
        for ms in [10_100, 10_900, 11_500, 12_000] {
            board.record(Role::Input, 0, ms, Some(ms), tx);
        }
        board.record(Role::Output, 0, 0, Some(11_700), &anomaly(1, ""));
        let rejection = schema::Rejection::FeatureCount {
            expected: 2,
            found: 3,
        };
        let letter = DeadLetter::new(&rejection, "tx", 0, 3, None, b"{}");
        board.record(Role::DeadLetters, 0, 0, Some(11_000), &letter.encode());
        board.record(Role::DeadLetters, 0, 1, Some(11_000), b"garbage");
        let page = board.page(12_500, None, GroupView::default(), None);
        let history = &page.history;
        assert_eq!(history.end_s, 12);
        assert_eq!(history.input.len(), 60);
        // The last two complete seconds: 10 (two records) and 11 (one), 12 still filling.
        assert_eq!(history.input[58..], [2, 1]);
        assert_eq!(history.anomalies[58..], [0, 1]);
        assert_eq!(history.share_last_minute, Some(1.0 / 3.0));
        assert_eq!(history.latency.len(), 1);
        let reasons: Vec<(&str, u64)> = page
            .dead_letters
            .iter()
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        assert_eq!(reasons, [("feature_count", 1), ("unreadable", 1)]);
    }

    #[test]
    fn what_the_page_keeps_is_bounded() {
        let mut board = board();
        for id in 0..(LATEST_ANOMALIES as i64 + 20) {
            board.record(Role::Output, 0, id, Some(id), &anomaly(id, ""));
        }
        let page = board.page(100_000, None, GroupView::default(), None);
        assert_eq!(page.latest.len(), LATEST_ANOMALIES);
        assert_eq!(page.latest[0].id, (LATEST_ANOMALIES + 19).to_string());
        for tick in 0..200 {
            board.page(100_000 + tick * 1000, None, GroupView::default(), None);
        }
        assert_eq!(board.latency.len(), 60);
    }
}
