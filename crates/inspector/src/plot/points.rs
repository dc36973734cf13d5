//! The points a picture shows: from a CSV table (scored with the model) or from the
//! pipeline's topics (anomalies as flagged, transactions scored), thinned to a number a
//! picture can hold.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use iforest::IsolationForest;
use rdkafka::message::Message;
use rdkafka::Offset;
use schema::{Anomaly, DecodeLimits, Transaction};

use crate::cli::PlotArgs;

/// A topic has been read to its end when nothing arrived for this long.
const QUIET: Duration = Duration::from_secs(2);

/// The points to draw: row-major features, and for each whether it is drawn as an anomaly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// Features per point.
    pub n_features: usize,
    /// Row-major feature values.
    pub data: Vec<f64>,
    /// Per point: drawn as an anomaly.
    pub flagged: Vec<bool>,
    /// Per point, when the source had labels: 1 = labelled anomaly.
    pub labels: Option<Vec<u8>>,
}

impl Points {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.flagged.len()
    }

    /// True when there is no point.
    pub fn is_empty(&self) -> bool {
        self.flagged.is_empty()
    }

    /// The features of point `index`.
    pub fn row(&self, index: usize) -> &[f64] {
        &self.data[index * self.n_features..(index + 1) * self.n_features]
    }
}

/// A CSV table's rows, scored: anomalies are the rows above the model's threshold.
pub fn csv_points(
    model: &IsolationForest,
    path: &Path,
    label_column: Option<&str>,
) -> Result<Points> {
    // A model trained on a CSV knows its columns by name; a table without those names
    // (the model came from synthetic data or a topic) gives every non-label column in order.
    let names: Option<Vec<String>> = model.feature_names().map(<[String]>::to_vec);
    let all_columns = dataset::CsvSelection {
        label_column,
        columns: None,
    };
    let table = match &names {
        Some(names) => dataset::read_csv(
            path,
            &dataset::CsvSelection {
                label_column,
                columns: Some(names),
            },
        )
        .or_else(|_| dataset::read_csv(path, &all_columns))?,
        None => dataset::read_csv(path, &all_columns)?,
    };
    model
        .check_feature_count(table.n_features())
        .with_context(|| format!("{} does not fit the model", path.display()))?;
    let scores = model
        .score_batch(&table.data)
        .context("cannot score the table")?;
    Ok(Points {
        n_features: table.n_features(),
        data: table.data,
        flagged: scores.iter().map(|&s| s > model.threshold()).collect(),
        labels: table.labels,
    })
}

/// Points from the anomalies topic (flagged) and the transactions topic (scored), as asked.
pub fn topic_points(
    kafka: &bus::ClientSettings,
    model: &IsolationForest,
    args: &PlotArgs,
) -> Result<Points> {
    let limits = DecodeLimits::default();
    let width = model.n_features();
    let mut points = Points {
        n_features: width,
        ..Points::default()
    };
    let mut anomaly_ids = HashSet::new();
    let mut skipped = 0usize;
    if let Some(topic) = &args.topic {
        for value in read_values(kafka, topic, args.max_records, args.timeout)? {
            match Anomaly::decode(&value) {
                Ok(anomaly) if anomaly.features.len() == width => {
                    anomaly_ids.insert(anomaly.id.to_string());
                    if args.transactions_topic.is_none() {
                        points.data.extend_from_slice(&anomaly.features);
                        points.flagged.push(true);
                    }
                }
                _ => skipped += 1,
            }
        }
    }
    if let Some(topic) = &args.transactions_topic {
        let mut data = Vec::new();
        let mut ids = Vec::new();
        for value in read_values(kafka, topic, args.max_records, args.timeout)? {
            match Transaction::decode(&value, &limits) {
                Ok(tx) if tx.features.len() == width => {
                    data.extend_from_slice(&tx.features);
                    ids.push(tx.id.to_string());
                }
                _ => skipped += 1,
            }
        }
        let scores = model
            .score_batch(&data)
            .context("cannot score the transactions")?;
        points.data.extend_from_slice(&data);
        points.flagged.extend(
            scores
                .iter()
                .zip(&ids)
                .map(|(&score, id)| score > model.threshold() || anomaly_ids.contains(id)),
        );
    }
    if skipped > 0 {
        log::warn!("{skipped} records left out: not decodable, or not {width} features");
    }
    Ok(points)
}

/// Every record's value in `topic`, read from the beginning of each partition until
/// `max_records` or until the topic is quiet (as kcat reads: no group, nothing committed).
fn read_values(
    kafka: &bus::ClientSettings,
    topic: &str,
    max_records: usize,
    timeout: f64,
) -> Result<Vec<Vec<u8>>> {
    let timeout = Duration::try_from_secs_f64(timeout)
        .with_context(|| format!("--timeout must be 0 or more seconds, not {timeout}"))?;
    let consumer = kafka.base_consumer()?;
    bus::assign_all(&consumer, topic, Offset::Beginning)?;
    let deadline = Instant::now() + timeout;
    let mut last = Instant::now();
    let mut values = Vec::new();
    while values.len() < max_records && Instant::now() < deadline && last.elapsed() < QUIET {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                last = Instant::now();
                values.push(message.payload().unwrap_or_default().to_vec());
            }
            Some(Err(error)) => log::warn!("reading {topic}: {error}"),
        }
    }
    log::info!("read {} records from {topic}", values.len());
    Ok(values)
}

/// At most `max` points, every k-th kept (so the picture keeps the points' mix).
pub fn thin(points: Points, max: usize) -> Points {
    if max == 0 || points.len() <= max {
        return points;
    }
    let step = points.len().div_ceil(max);
    let keep: Vec<usize> = (0..points.len()).step_by(step).collect();
    Points {
        n_features: points.n_features,
        data: keep
            .iter()
            .flat_map(|&i| points.row(i).iter().copied())
            .collect(),
        flagged: keep.iter().map(|&i| points.flagged[i]).collect(),
        labels: points
            .labels
            .as_ref()
            .map(|labels| keep.iter().map(|&i| labels[i]).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::two_d;
    use super::*;

    #[test]
    fn thinning_keeps_every_kth_point_with_its_verdict_and_label() {
        let points = Points {
            n_features: 1,
            data: (0..10).map(f64::from).collect(),
            flagged: (0..10).map(|i| i % 3 == 0).collect(),
            labels: Some((0..10).map(|i| (i % 2) as u8).collect()),
        };
        let thinned = thin(points.clone(), 4);
        assert_eq!(thinned.data, [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(thinned.flagged, [true; 4]);
        assert_eq!(thinned.labels, Some(vec![0, 1, 0, 1]));
        assert_eq!(thin(points.clone(), 0), points, "0 = all");
    }

    #[test]
    fn csv_points_are_scored_and_keep_their_labels() {
        let (model, _) = two_d();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,b,label\n2.0,2.0,0\n3.9,-3.9,1\n-2.1,-1.9,0\n").unwrap();
        let points = csv_points(&model, &path, Some("label")).unwrap();
        assert_eq!(points.data, [2.0, 2.0, 3.9, -3.9, -2.1, -1.9]);
        assert_eq!(points.flagged, [false, true, false]);
        assert_eq!(points.labels, Some(vec![0, 1, 0]));
    }
}
