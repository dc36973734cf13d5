//! Incidents: anomalies as a message shows them ([`AlertItem`]), gathered into an
//! [`Incident`] by a [`Grouper`] when their Kafka timestamps are close, and an incident's text.

use std::time::{Duration, Instant};

use iforest::{Direction, IsolationForest};
use schema::Anomaly;

use crate::reason::TopReason;

/// Longest incident, from its first anomaly's timestamp to its last: a steady stream of
/// anomalies still makes a message a minute (subject to the rate limit).
pub const MAX_INCIDENT_SPAN_MS: i64 = 60_000;
/// Ids listed in a message; the rest are counted ("and 37 more").
pub const LISTED_IDS: usize = 50;
/// Anomalies shown in detail (highest scores first).
pub const SHOWN_ANOMALIES: usize = 5;

/// The feature that contributed most to isolating an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct TopFeature {
    /// Its name, or `feature N`.
    pub name: String,
    /// Its share of the isolation, 0..=1.
    pub share: f64,
    /// Unusually high or low.
    pub direction: Direction,
}

/// One anomaly, as a message shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertItem {
    /// The transaction's id.
    pub id: String,
    /// Anomaly score.
    pub anomaly_score: f64,
    /// The model's threshold.
    pub threshold: f64,
    /// The features.
    pub features: Vec<f64>,
    /// The top feature: the one the anomaly's explanation names first, else the model's
    /// explanation's (when a model was available and fits the features).
    pub top: Option<TopFeature>,
    /// The anomaly record's Kafka timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Where the transaction was: partition and offset.
    pub source: (i32, i64),
}

impl TopFeature {
    /// The top reason an anomaly carries, when it names a direction and a share.
    pub fn carried(reason: &TopReason) -> Option<TopFeature> {
        let direction = match reason.direction.as_deref()? {
            "high" => Direction::High,
            "low" => Direction::Low,
            _ => return None,
        };
        Some(TopFeature {
            name: reason.feature.clone(),
            share: reason.share?,
            direction,
        })
    }
}

impl AlertItem {
    /// The anomaly written at `timestamp_ms`, with the top reason it carries (`carried`,
    /// from its `explanation`); an anomaly written without one is explained by `model` when
    /// there is one.
    pub fn new(
        anomaly: &Anomaly,
        timestamp_ms: i64,
        carried: Option<TopFeature>,
        model: Option<&IsolationForest>,
    ) -> Self {
        let explained = || {
            model.and_then(|model| match model.explain(&anomaly.features) {
                Ok(explanation) => explanation.contributions.first().map(|c| TopFeature {
                    name: c
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("feature {}", c.feature)),
                    share: c.share,
                    direction: c.direction,
                }),
                Err(error) => {
                    log::debug!("anomaly {} not explained: {error}", anomaly.id);
                    None
                }
            })
        };
        let top = carried.or_else(explained);
        Self {
            id: anomaly.id.to_string(),
            anomaly_score: anomaly.anomaly_score,
            threshold: anomaly.threshold,
            features: anomaly.features.clone(),
            top,
            timestamp_ms,
            source: (anomaly.partition, anomaly.offset),
        }
    }

    /// `id=4 score=0.7123 (threshold 0.6200) features=[2.39,-1.22] top feature: feature 1
    /// high (62%) source 1/33`.
    pub fn line(&self) -> String {
        let features = serde_json::to_string(&self.features).unwrap_or_default();
        let top = self.top.as_ref().map_or(String::new(), |top| {
            format!(
                " top feature: {} {} ({:.0}%)",
                top.name,
                top.direction,
                top.share * 100.0
            )
        });
        format!(
            "id={} score={:.4} (threshold {:.4}) features={features}{top} source {}/{}",
            self.id, self.anomaly_score, self.threshold, self.source.0, self.source.1
        )
    }
}

/// Anomalies close in time, sent as one message; or several incidents folded together while
/// the sender was busy.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Earliest anomaly timestamp, ms.
    pub first_ms: i64,
    /// Latest anomaly timestamp, ms.
    pub last_ms: i64,
    /// Anomalies in it.
    pub count: u64,
    /// Incidents folded into it (1 when none was).
    pub incidents: u64,
    /// The first [`LISTED_IDS`] ids.
    pub ids: Vec<String>,
    /// The [`SHOWN_ANOMALIES`] highest-scoring anomalies, highest first.
    pub shown: Vec<AlertItem>,
}

impl Incident {
    /// An incident of one anomaly.
    pub fn new(item: AlertItem) -> Self {
        Self {
            first_ms: item.timestamp_ms,
            last_ms: item.timestamp_ms,
            count: 1,
            incidents: 1,
            ids: vec![item.id.clone()],
            shown: vec![item],
        }
    }

    /// Adds an anomaly.
    pub fn add(&mut self, item: AlertItem) {
        self.first_ms = self.first_ms.min(item.timestamp_ms);
        self.last_ms = self.last_ms.max(item.timestamp_ms);
        self.count += 1;
        if self.ids.len() < LISTED_IDS {
            self.ids.push(item.id.clone());
        }
        self.show(item);
    }

    fn show(&mut self, item: AlertItem) {
        let at = self
            .shown
            .partition_point(|shown| shown.anomaly_score >= item.anomaly_score);
        if at < SHOWN_ANOMALIES {
            self.shown.insert(at, item);
            self.shown.truncate(SHOWN_ANOMALIES);
        }
    }

    /// Folds `other` into this one.
    pub fn merge(&mut self, other: Incident) {
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.count += other.count;
        self.incidents += other.incidents;
        let room = LISTED_IDS.saturating_sub(self.ids.len());
        self.ids.extend(other.ids.into_iter().take(room));
        for item in other.shown {
            self.show(item);
        }
    }

    /// The message text for people.
    pub fn text(&self) -> String {
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                || ms.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        };
        let mut text = if self.count == 1 {
            format!("Anomaly at {}", time(self.first_ms))
        } else {
            format!(
                "Incident: {} anomalies{} from {} to {} ({:.1} s)",
                self.count,
                if self.incidents > 1 {
                    format!(
                        " in {} incidents (folded while the webhook was busy or rate-limited)",
                        self.incidents
                    )
                } else {
                    String::new()
                },
                time(self.first_ms),
                time(self.last_ms),
                (self.last_ms - self.first_ms) as f64 / 1000.0
            )
        };
        for item in &self.shown {
            text.push_str("\n• ");
            text.push_str(&item.line());
        }
        let unshown = self.count.saturating_sub(self.shown.len() as u64);
        if unshown > 0 {
            text.push_str(&format!("\n…and {unshown} more"));
        }
        text.push_str("\nids: ");
        text.push_str(&self.ids.join(", "));
        let unlisted = self.count.saturating_sub(self.ids.len() as u64);
        if unlisted > 0 {
            text.push_str(&format!(" and {unlisted} more"));
        }
        text
    }

    /// The webhook body: `{"text": …}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "text": self.text() }).to_string()
    }
}

/// Groups anomalies into incidents by their timestamps.
#[derive(Debug)]
pub struct Grouper {
    window_ms: i64,
    idle: Duration,
    open: Option<Incident>,
    last_arrival: Option<Instant>,
}

impl Grouper {
    /// Anomalies within `window` of each other are one incident; an incident closes when an
    /// anomaly comes beyond it, or `window` after the last one arrived.
    pub fn new(window: Duration) -> Self {
        Self {
            window_ms: window.as_millis().min(i64::MAX as u128) as i64,
            idle: window,
            open: None,
            last_arrival: None,
        }
    }

    /// Adds an anomaly that arrived at `now`; returns the incident it closed, if any.
    pub fn add(&mut self, item: AlertItem, now: Instant) -> Option<Incident> {
        self.last_arrival = Some(now);
        let ts = item.timestamp_ms;
        let belongs = self.open.as_ref().is_some_and(|open| {
            ts <= open.last_ms.saturating_add(self.window_ms)
                && ts >= open.first_ms.saturating_sub(self.window_ms)
                && ts.max(open.last_ms) - ts.min(open.first_ms) <= MAX_INCIDENT_SPAN_MS
        });
        if belongs {
            if let Some(open) = &mut self.open {
                open.add(item);
            }
            None
        } else {
            self.open.replace(Incident::new(item))
        }
    }

    /// The open incident, once no anomaly arrived for a window's time.
    pub fn due(&mut self, now: Instant) -> Option<Incident> {
        match self.last_arrival {
            Some(last) if now.saturating_duration_since(last) >= self.idle => self.open.take(),
            _ => None,
        }
    }

    /// The open incident, whatever its age (stopping).
    pub fn take(&mut self) -> Option<Incident> {
        self.open.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, ms: i64, score: f64) -> AlertItem {
        AlertItem {
            id: id.to_string(),
            anomaly_score: score,
            threshold: 0.6,
            features: vec![1.5, -2.0],
            top: None,
            timestamp_ms: ms,
            source: (0, id),
        }
    }

    #[test]
    fn anomalies_close_in_time_are_one_incident() {
        let mut grouper = Grouper::new(Duration::from_secs(2));
        let now = Instant::now();
        assert_eq!(grouper.add(item(1, 10_000, 0.7), now), None);
        assert_eq!(grouper.add(item(2, 11_500, 0.7), now), None);
        // Out of order within the window still belongs.
        assert_eq!(grouper.add(item(3, 10_900, 0.7), now), None);
        let first = grouper.add(item(4, 14_000, 0.7), now).unwrap();
        assert_eq!(first.ids, ["1", "2", "3"]);
        assert_eq!(
            (first.first_ms, first.last_ms, first.count),
            (10_000, 11_500, 3)
        );
        // Not due until a window passed without anomalies.
        assert_eq!(grouper.due(now + Duration::from_millis(1900)), None);
        let second = grouper.due(now + Duration::from_secs(2)).unwrap();
        assert_eq!(second.ids, ["4"]);
        assert_eq!(grouper.take(), None);
    }

    #[test]
    fn a_steady_stream_still_makes_a_message_a_minute() {
        let mut grouper = Grouper::new(Duration::from_secs(2));
        let now = Instant::now();
        let mut closed = Vec::new();
        for second in 0..=130 {
            closed.extend(grouper.add(item(second, second * 1000, 0.7), now));
        }
        assert_eq!(closed.len(), 2);
        assert_eq!(closed[0].count, 61);
        assert!(closed[0].last_ms - closed[0].first_ms <= MAX_INCIDENT_SPAN_MS);
    }

    #[test]
    fn a_message_names_the_anomalies_and_their_top_feature() {
        let mut one = item(17, 1_700_000_000_000, 0.71234);
        one.top = Some(TopFeature {
            name: "amount".into(),
            share: 0.625,
            direction: Direction::High,
        });
        let incident = Incident::new(one);
        let body: serde_json::Value = serde_json::from_str(&incident.body()).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
        assert_eq!(
            text,
            "Anomaly at 2023-11-14T22:13:20.000Z\n\
             • id=17 score=0.7123 (threshold 0.6000) features=[1.5,-2.0] \
             top feature: amount high (62%) source 0/17\nids: 17"
        );
    }

    #[test]
    fn the_reason_an_anomaly_carries_comes_before_the_model_s() {
        let bytes = br#"{"id": 5, "data": [[0.1, 9.0]], "score": [-0.7],
            "anomaly_score": 0.7, "threshold": 0.6, "model": "m", "partition": 0,
            "offset": 5, "detected_at": "2026-12-01T00:00:00Z", "explanation": [
            {"feature": "x", "value": 0.1, "direction": "low", "share": 0.55}]}"#;
        let anomaly = Anomaly::decode(bytes).unwrap();
        let carried = TopReason::of_bytes(bytes)
            .as_ref()
            .and_then(TopFeature::carried);
        let rows: Vec<[f64; 2]> = (0..200)
            .map(|i| [((i as f64 * 0.618).fract()), ((i as f64 * 0.414).fract())])
            .collect();
        let model = iforest::IsolationForestParams::new()
            .n_trees(20)
            .seed(1)
            .fit_rows(&rows)
            .unwrap();
        let item = AlertItem::new(&anomaly, 0, carried, Some(&model));
        assert_eq!(
            item.top,
            Some(TopFeature {
                name: "x".into(),
                share: 0.55,
                direction: Direction::Low
            })
        );
        // Without one, the model explains it (y, far above its training values).
        let item = AlertItem::new(&anomaly, 0, None, Some(&model));
        assert_eq!(
            item.top.map(|top| (top.name, top.direction)),
            Some(("feature 1".into(), Direction::High))
        );
        // An entry without a direction or share cannot say "high (55%)".
        let partial = TopReason {
            feature: "x".into(),
            value: None,
            direction: None,
            share: Some(0.5),
        };
        assert_eq!(TopFeature::carried(&partial), None);
    }

    #[test]
    fn an_incident_shows_its_highest_scores_and_counts_the_rest() {
        let mut incident = Incident::new(item(0, 1_000, 0.61));
        for id in 1..80 {
            incident.add(item(id, 1_000 + id, 0.61 + id as f64 / 1000.0));
        }
        let text = incident.text();
        assert!(
            text.starts_with("Incident: 80 anomalies from 1970-01-01T00:00:01.000Z to "),
            "{text}"
        );
        let shown: Vec<&str> = text.lines().filter(|l| l.starts_with("• ")).collect();
        assert_eq!(shown.len(), SHOWN_ANOMALIES);
        assert!(shown[0].starts_with("• id=79 "), "highest first: {text}");
        assert!(text.contains("\n…and 75 more\n"), "{text}");
        let ids = text.lines().last().unwrap();
        assert!(ids.starts_with("ids: 0, 1, 2,"), "{ids}");
        assert!(ids.ends_with("49 and 30 more"), "{ids}");
    }

    #[test]
    fn folded_incidents_add_up() {
        let mut waiting = Incident::new(item(1, 5_000, 0.7));
        let mut later = Incident::new(item(2, 9_000, 0.9));
        later.add(item(3, 9_100, 0.65));
        waiting.merge(later);
        assert_eq!(
            (
                waiting.count,
                waiting.incidents,
                waiting.first_ms,
                waiting.last_ms
            ),
            (3, 2, 5_000, 9_100)
        );
        assert_eq!(waiting.ids, ["1", "2", "3"]);
        assert_eq!(waiting.shown[0].id, "2");
        assert!(waiting
            .text()
            .starts_with("Incident: 3 anomalies in 2 incidents"));
    }
}
