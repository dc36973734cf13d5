//! The pure part of the detector: a batch of raw records in, the records to write out and the
//! offsets that may then be stored. No Kafka here, so it is unit-tested directly.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::Utc;
use iforest::IsolationForest;
use schema::{encode_anomaly, DeadLetter, DecodeLimits, Rejection, Transaction, Verdict};

/// One record as read from Kafka.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value (a tombstone has none).
    pub payload: Option<&'a [u8]>,
}

/// Where an output record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The anomalies topic.
    Anomalies,
    /// The dead-letter topic.
    DeadLetters,
}

/// A record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Which topic.
    pub destination: Destination,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub payload: Vec<u8>,
}

/// What a batch produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Records to write, in input order.
    pub outputs: Vec<Output>,
    /// Per partition, the highest offset in the batch: once every output is acknowledged,
    /// these (plus one) may be committed.
    pub last_offsets: BTreeMap<i32, i64>,
    /// Records scored.
    pub scored: u64,
    /// Of which anomalies.
    pub anomalies: u64,
    /// Records refused (dead letters).
    pub dead_letters: u64,
    /// Dead letters by reason.
    pub reasons: BTreeMap<&'static str, u64>,
}

/// The model and everything needed to turn records into verdicts.
pub struct Scorer {
    model: IsolationForest,
    model_id: String,
    limits: DecodeLimits,
    source_topic: String,
    /// Reused across batches: the valid rows, flat, and their scores.
    rows: Vec<f64>,
    scores: Vec<f64>,
}

impl Scorer {
    /// A scorer for records from `source_topic`.
    pub fn new(
        model: IsolationForest,
        model_id: String,
        limits: DecodeLimits,
        source_topic: &str,
    ) -> Self {
        Self {
            model,
            model_id,
            limits,
            source_topic: source_topic.to_string(),
            rows: Vec::new(),
            scores: Vec::new(),
        }
    }

    /// Loads and checks a model file; the error names the file and the problem.
    pub fn load_model(path: &Path) -> Result<(IsolationForest, String)> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the model file {}", path.display()))?;
        let model = IsolationForest::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable model", path.display()))?;
        Ok((model, iforest::model_id(&bytes)))
    }

    /// The model in use.
    pub fn model(&self) -> &IsolationForest {
        &self.model
    }

    /// Swaps in another model, returning the old one's id.
    pub fn replace_model(&mut self, model: IsolationForest, model_id: String) -> String {
        self.model = model;
        std::mem::replace(&mut self.model_id, model_id)
    }

    /// The model's id.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Decodes, checks and scores a batch (one `score_batch` call for all valid rows).
    pub fn process(&mut self, batch: &[Incoming<'_>]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let width = self.model.n_features();
        let mut accepted: Vec<(usize, Transaction)> = Vec::with_capacity(batch.len());
        let mut rejected: Vec<(usize, Rejection)> = Vec::new();
        self.rows.clear();
        for (index, record) in batch.iter().enumerate() {
            let last = outcome
                .last_offsets
                .entry(record.partition)
                .or_insert(record.offset);
            *last = (*last).max(record.offset);
            let decoded = Transaction::decode(record.payload.unwrap_or_default(), &self.limits)
                .map_err(Rejection::from)
                .and_then(|transaction| {
                    if transaction.features.len() == width {
                        Ok(transaction)
                    } else {
                        Err(Rejection::FeatureCount {
                            expected: width,
                            found: transaction.features.len(),
                        })
                    }
                });
            match decoded {
                Ok(transaction) => {
                    if let Some(problem) = transaction.time_problem() {
                        log::debug!(
                            "record {} at {}/{}: {problem}; scored anyway",
                            transaction.id,
                            record.partition,
                            record.offset
                        );
                    }
                    self.rows.extend_from_slice(&transaction.features);
                    accepted.push((index, transaction));
                }
                Err(rejection) => rejected.push((index, rejection)),
            }
        }
        self.scores.resize(accepted.len(), 0.0);
        if let Err(error) = self.model.score_batch_into(&self.rows, &mut self.scores) {
            // Unreachable: widths were checked and decoding refuses non-finite values.
            log::error!("scoring failed ({error}); the batch's valid records go to dead letters");
            for (index, _) in accepted.drain(..) {
                rejected.push((
                    index,
                    Rejection::FeatureCount {
                        expected: width,
                        found: 0,
                    },
                ));
            }
        }
        let detected_at = Utc::now();
        let threshold = self.model.threshold();
        let mut outputs: Vec<(usize, Output)> = Vec::new();
        for ((index, transaction), &anomaly_score) in accepted.iter().zip(&self.scores) {
            outcome.scored += 1;
            if anomaly_score > threshold {
                outcome.anomalies += 1;
                let record = &batch[*index];
                let verdict = Verdict {
                    anomaly_score,
                    threshold,
                    model: self.model_id.clone(),
                    partition: record.partition,
                    offset: record.offset,
                    detected_at,
                };
                outputs.push((
                    *index,
                    Output {
                        destination: Destination::Anomalies,
                        key: transaction.key().into_bytes(),
                        payload: encode_anomaly(transaction, &verdict),
                    },
                ));
            }
        }
        for (index, rejection) in rejected {
            outcome.dead_letters += 1;
            *outcome.reasons.entry(rejection.reason()).or_insert(0) += 1;
            let record = &batch[index];
            let letter = DeadLetter::new(
                &rejection,
                &self.source_topic,
                record.partition,
                record.offset,
                record.key,
                record.payload.unwrap_or_default(),
            );
            log::warn!(
                "dead letter {}/{}: {} ({})",
                record.partition,
                record.offset,
                letter.reason,
                letter.detail
            );
            outputs.push((
                index,
                Output {
                    destination: Destination::DeadLetters,
                    key: record.key.unwrap_or_default().to_vec(),
                    payload: letter.encode(),
                },
            ));
        }
        outputs.sort_by_key(|(index, _)| *index);
        outcome.outputs = outputs.into_iter().map(|(_, output)| output).collect();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::{Contamination, IsolationForestParams};

    fn scorer() -> Scorer {
        let mut data = Vec::new();
        for i in 0..500 {
            let jitter = ((i as f64 * 0.618).fract() - 0.5) * 0.6;
            let jitter2 = ((i as f64 * 0.414).fract() - 0.5) * 0.6;
            let centre = if i % 2 == 0 { 2.0 } else { -2.0 };
            data.extend([centre + jitter, centre + jitter2]);
        }
        let model = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .seed(1)
            .fit(&data, 2)
            .unwrap();
        Scorer::new(model, "m1".into(), DecodeLimits::default(), "transactions")
    }

    fn record(partition: i32, offset: i64, payload: &[u8]) -> Incoming<'_> {
        Incoming {
            partition,
            offset,
            key: Some(b"k"),
            payload: Some(payload),
        }
    }

    #[test]
    fn anomalies_and_dead_letters_come_out_in_order_and_normals_do_not() {
        let mut scorer = scorer();
        let batch = [
            record(0, 10, br#"{"id": 1, "data": [[2.0, 2.0]]}"#),
            record(1, 5, br#"{"id": 2, "data": [[3.9, -3.9]]}"#),
            record(0, 11, b"not json"),
            record(1, 6, br#"{"id": 4, "data": [[1, 2, 3]]}"#),
            record(
                0,
                12,
                br#"{"id": 5, "data": [[-3.5, 3.5]], "current_time": "soon"}"#,
            ),
        ];
        let outcome = scorer.process(&batch);
        assert_eq!(
            (outcome.scored, outcome.anomalies, outcome.dead_letters),
            (3, 2, 2)
        );
        let kinds: Vec<Destination> = outcome.outputs.iter().map(|o| o.destination).collect();
        use Destination::*;
        assert_eq!(kinds, [Anomalies, DeadLetters, DeadLetters, Anomalies]);
        assert_eq!(outcome.last_offsets, BTreeMap::from([(0, 12), (1, 6)]));
        assert_eq!(
            outcome.reasons,
            BTreeMap::from([("feature_count", 1), ("not_json", 1)])
        );
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(
            (anomaly.partition, anomaly.offset, anomaly.model.as_str()),
            (1, 5, "m1")
        );
        assert_eq!(outcome.outputs[0].key, b"2");
        let letter = DeadLetter::decode(&outcome.outputs[2].payload).unwrap();
        assert_eq!(
            (letter.reason.as_str(), letter.partition, letter.offset),
            ("feature_count", 1, 6)
        );
        assert_eq!(
            letter.original().unwrap(),
            br#"{"id": 4, "data": [[1, 2, 3]]}"#
        );
    }

    #[test]
    fn batch_verdicts_match_single_row_predictions() {
        let mut scorer = scorer();
        let payloads: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                let x = (i as f64 * 0.37).sin() * 4.0;
                let y = (i as f64 * 0.11).cos() * 4.0;
                format!(r#"{{"id": {i}, "data": [{x}, {y}]}}"#).into_bytes()
            })
            .collect();
        let batch: Vec<Incoming> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| record(0, i as i64, p))
            .collect();
        let outcome = scorer.process(&batch);
        let flagged: Vec<String> = outcome
            .outputs
            .iter()
            .map(|o| String::from_utf8(o.key.clone()).unwrap())
            .collect();
        let expected: Vec<String> = payloads
            .iter()
            .filter_map(|p| {
                let tx = Transaction::decode(p, &DecodeLimits::default()).unwrap();
                scorer
                    .model()
                    .predict(&tx.features)
                    .unwrap()
                    .then(|| tx.key())
            })
            .collect();
        assert_eq!(flagged, expected);
        assert!(!expected.is_empty());
    }

    #[test]
    fn a_missing_or_broken_model_file_is_named() {
        let error = Scorer::load_model(Path::new("/nonexistent/model.bin")).unwrap_err();
        assert!(format!("{error:#}").contains("/nonexistent/model.bin"));
        let dir = std::env::temp_dir().join(format!("detector-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.bin");
        std::fs::write(&garbage, b"definitely not a model").unwrap();
        let error = format!("{:#}", Scorer::load_model(&garbage).unwrap_err());
        assert!(error.contains("not a model file"), "{error}");
    }
}
