//! The pure part of the detector: a batch of raw records in, the records to write out and the
//! offsets that may then be stored. No Kafka here, so it is unit-tested directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use iforest::{IsolationForest, ScoreError};
use schema::{DecodeLimits, Rejection, Transaction, Verdict};

use crate::limits::OutputLimits;

pub use crate::output::{Destination, Form, Incoming, Output};

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
    /// Outputs reduced to fit their topic (or written as a minimal dead letter).
    pub reduced: u64,
    /// Dead letters by reason.
    pub reasons: BTreeMap<&'static str, u64>,
    /// Per source partition: records read, scored and dead-lettered (read = the other two).
    pub per_partition: BTreeMap<i32, PartitionCounts>,
}

/// One partition's records in a batch: every record read is either scored or dead-lettered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCounts {
    /// Records read.
    pub consumed: u64,
    /// Of which scored.
    pub scored: u64,
    /// Of which dead-lettered.
    pub dead_lettered: u64,
}

/// A loaded, validated model and its id (the content hash of its file, which every anomaly
/// names).
pub struct Model {
    /// The forest.
    pub forest: IsolationForest,
    /// `iforest::model_id` of the file's bytes.
    pub id: String,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("forest", &self.forest)
            .finish()
    }
}

/// Why a model file cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelLoadError {
    /// The file cannot be read.
    #[error("cannot read the model file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid model.
    #[error("{} is not a usable model", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: iforest::ModelError,
    },
}

impl Model {
    /// Loads and checks a model file; the error names the file and the problem.
    pub fn load(path: &Path) -> Result<Model, ModelLoadError> {
        let bytes = std::fs::read(path).map_err(|source| ModelLoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let forest =
            IsolationForest::from_bytes(&bytes).map_err(|source| ModelLoadError::Invalid {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Model {
            forest,
            id: iforest::model_id(&bytes),
        })
    }
}

/// The model and everything needed to turn records into verdicts.
pub struct Scorer {
    model: Model,
    limits: DecodeLimits,
    output_limits: OutputLimits,
    source_topic: String,
    /// Reused across batches: the valid rows, flat and row-major, and their scores.
    rows: Vec<f64>,
    scores: Vec<f64>,
}

impl Scorer {
    /// A scorer for records from `source_topic`.
    pub fn new(model: Model, limits: DecodeLimits, source_topic: &str) -> Self {
        Self {
            model,
            limits,
            output_limits: OutputLimits::default(),
            source_topic: source_topic.to_string(),
            rows: Vec::new(),
            scores: Vec::new(),
        }
    }

    /// Outputs larger than `limits` are reduced (default: librdkafka's default
    /// `message.max.bytes` for both topics).
    pub fn set_output_limits(&mut self, limits: OutputLimits) {
        self.output_limits = limits;
    }

    /// The output limits in use.
    pub fn output_limits(&self) -> &OutputLimits {
        &self.output_limits
    }

    /// The model in use.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Swaps in another model (between batches), returning the old one.
    pub fn replace_model(&mut self, model: Model) -> Model {
        std::mem::replace(&mut self.model, model)
    }

    /// Decodes, checks and scores a batch (one `score_batch` call for all valid rows): the
    /// anomalies and dead letters in input order, and per partition the last offset.
    ///
    /// A record that cannot be used becomes a dead letter; an error here means the scoring
    /// kernel refused rows that were checked (a bug, not bad input), and the caller stops
    /// without storing the batch's offsets.
    pub fn process(&mut self, batch: &[Incoming<'_>]) -> Result<BatchOutcome, ScoreError> {
        let mut outcome = BatchOutcome::default();
        let forest = &self.model.forest;
        let width = forest.n_features();
        let mut accepted: Vec<(usize, Transaction)> = Vec::with_capacity(batch.len());
        let mut rejected: Vec<(usize, Rejection)> = Vec::new();
        self.rows.clear();
        for (index, record) in batch.iter().enumerate() {
            let last = outcome
                .last_offsets
                .entry(record.partition)
                .or_insert(record.offset);
            *last = (*last).max(record.offset);
            outcome
                .per_partition
                .entry(record.partition)
                .or_default()
                .consumed += 1;
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
        forest.score_batch_into(&self.rows, &mut self.scores)?;
        let detected_at = Utc::now();
        let threshold = forest.threshold();
        let mut outputs: Vec<(usize, Output)> = Vec::new();
        // One verdict per batch, its per-record fields set for each anomaly (the model's id
        // is then copied once a batch, not once an anomaly).
        let mut verdict = Verdict {
            anomaly_score: 0.0,
            threshold,
            model: self.model.id.clone(),
            partition: 0,
            offset: 0,
            detected_at,
        };
        for ((index, transaction), &anomaly_score) in accepted.iter().zip(&self.scores) {
            outcome.scored += 1;
            outcome
                .per_partition
                .entry(batch[*index].partition)
                .or_default()
                .scored += 1;
            if anomaly_score > threshold {
                outcome.anomalies += 1;
                let record = &batch[*index];
                verdict.anomaly_score = anomaly_score;
                verdict.partition = record.partition;
                verdict.offset = record.offset;
                let output = crate::fit::anomaly(
                    transaction,
                    &verdict,
                    record,
                    *index,
                    &self.source_topic,
                    &self.output_limits,
                );
                if output.form != crate::output::Form::Whole {
                    outcome.reduced += 1;
                }
                outputs.push((*index, output));
            }
        }
        for (index, rejection) in rejected {
            outcome.dead_letters += 1;
            *outcome.reasons.entry(rejection.reason()).or_insert(0) += 1;
            let record = &batch[index];
            outcome
                .per_partition
                .entry(record.partition)
                .or_default()
                .dead_lettered += 1;
            log::warn!(
                "dead letter {}/{}: {} ({rejection})",
                record.partition,
                record.offset,
                rejection.reason()
            );
            let output = crate::fit::dead_letter(
                &rejection,
                record,
                index,
                &self.source_topic,
                &self.output_limits,
            );
            if output.form != crate::output::Form::Whole {
                outcome.reduced += 1;
            }
            outputs.push((index, output));
        }
        outputs.sort_by_key(|(index, _)| *index);
        outcome.outputs = outputs.into_iter().map(|(_, output)| output).collect();
        Ok(outcome)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use iforest::{Contamination, IsolationForestParams};
    use schema::DeadLetter;

    /// A small 2-feature model: two clusters around (2, 2) and (−2, −2).
    pub(crate) fn model() -> IsolationForest {
        let mut data = Vec::new();
        for i in 0..500 {
            let jitter = ((i as f64 * 0.618).fract() - 0.5) * 0.6;
            let jitter2 = ((i as f64 * 0.414).fract() - 0.5) * 0.6;
            let centre = if i % 2 == 0 { 2.0 } else { -2.0 };
            data.extend([centre + jitter, centre + jitter2]);
        }
        IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .seed(1)
            .fit(&data, 2)
            .unwrap()
    }

    fn scorer() -> Scorer {
        let model = Model {
            forest: model(),
            id: "m1".into(),
        };
        Scorer::new(model, DecodeLimits::default(), "transactions")
    }

    fn record(partition: i32, offset: i64, payload: &[u8]) -> Incoming<'_> {
        Incoming {
            partition,
            offset,
            key: Some(b"k"),
            payload: Some(payload),
        }
    }

    fn letter(output: &Output) -> DeadLetter {
        assert_eq!(output.destination, Destination::DeadLetters);
        DeadLetter::decode(&output.payload).unwrap()
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
        let outcome = scorer.process(&batch).unwrap();
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
        let counts = |consumed, scored, dead_lettered| PartitionCounts {
            consumed,
            scored,
            dead_lettered,
        };
        assert_eq!(
            outcome.per_partition,
            BTreeMap::from([(0, counts(3, 2, 1)), (1, counts(2, 1, 1))])
        );
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(
            (anomaly.partition, anomaly.offset, anomaly.model.as_str()),
            (1, 5, "m1")
        );
        assert_eq!(outcome.outputs[0].key, b"2");
        let bad = letter(&outcome.outputs[1]);
        assert_eq!(
            (bad.reason.as_str(), bad.partition, bad.offset),
            ("not_json", 0, 11)
        );
        let wide = letter(&outcome.outputs[2]);
        assert_eq!(
            (wide.reason.as_str(), wide.partition, wide.offset),
            ("feature_count", 1, 6)
        );
        assert_eq!(wide.source_topic, "transactions");
        assert_eq!(
            wide.key.as_deref(),
            Some("k"),
            "a dead letter keeps the source key"
        );
        assert_eq!(wide.original, br#"{"id": 4, "data": [[1, 2, 3]]}"#);
    }

    #[test]
    fn a_record_whose_time_is_not_a_time_is_scored_anyway() {
        let mut scorer = scorer();
        let payload = br#"{"id": 9, "data": [3.9, -3.9], "current_time": "yesterday"}"#;
        let outcome = scorer.process(&[record(2, 0, payload)]).unwrap();
        assert_eq!((outcome.scored, outcome.dead_letters), (1, 0));
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(anomaly.current_time.as_deref(), Some("yesterday"));
    }

    #[test]
    fn tombstones_and_oversized_records_are_dead_letters() {
        let mut scorer = Scorer::new(
            Model {
                forest: model(),
                id: "m1".into(),
            },
            DecodeLimits {
                max_bytes: 64,
                ..DecodeLimits::default()
            },
            "transactions",
        );
        let big = format!(
            r#"{{"id": 1, "data": [1.0, 2.0], "pad": "{}"}}"#,
            "x".repeat(64)
        );
        let batch = [
            Incoming {
                partition: 0,
                offset: 0,
                key: None,
                payload: None,
            },
            record(0, 1, big.as_bytes()),
        ];
        let outcome = scorer.process(&batch).unwrap();
        assert_eq!((outcome.scored, outcome.dead_letters), (0, 2));
        assert_eq!(letter(&outcome.outputs[0]).key, None);
        assert_eq!(letter(&outcome.outputs[1]).reason, "oversized");
        assert_eq!(outcome.last_offsets, BTreeMap::from([(0, 1)]));
    }

    #[test]
    fn an_empty_batch_produces_nothing_and_stores_nothing() {
        let outcome = scorer().process(&[]).unwrap();
        assert_eq!(outcome, BatchOutcome::default());
    }

    #[test]
    fn the_last_offset_of_each_partition_is_the_highest_seen() {
        let mut scorer = scorer();
        let payload = br#"{"id": 1, "data": [2.0, 2.0]}"#;
        let batch: Vec<Incoming> = [(0, 7), (2, 100), (0, 8), (1, 3), (2, 101), (0, 9)]
            .into_iter()
            .map(|(partition, offset)| record(partition, offset, payload))
            .collect();
        let outcome = scorer.process(&batch).unwrap();
        assert_eq!(
            outcome.last_offsets,
            BTreeMap::from([(0, 9), (1, 3), (2, 101)])
        );
        assert!(outcome.outputs.is_empty(), "a normal record has no output");
    }

    #[test]
    fn batch_verdicts_match_single_row_predictions_across_batches() {
        let mut scorer = scorer();
        let payloads: Vec<Vec<u8>> = (0..600)
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
        // Batches of different sizes reuse the buffers: same verdicts as one row at a time.
        let mut flagged: Vec<String> = Vec::new();
        for chunk in batch.chunks(250) {
            let outcome = scorer.process(chunk).unwrap();
            flagged.extend(
                outcome
                    .outputs
                    .iter()
                    .map(|o| String::from_utf8(o.key.clone()).unwrap()),
            );
        }
        let expected: Vec<String> = payloads
            .iter()
            .filter_map(|p| {
                let tx = Transaction::decode(p, &DecodeLimits::default()).unwrap();
                scorer
                    .model()
                    .forest
                    .predict(&tx.features)
                    .unwrap()
                    .then(|| tx.key())
            })
            .collect();
        assert_eq!(flagged, expected);
        assert!(!expected.is_empty());
    }

    #[test]
    fn a_replaced_model_scores_the_next_batch_and_is_named() {
        let mut scorer = scorer();
        let old = scorer.replace_model(Model {
            forest: model(),
            id: "m2".into(),
        });
        assert_eq!(old.id, "m1");
        let outcome = scorer
            .process(&[record(0, 0, br#"{"id": 1, "data": [3.9, -3.9]}"#)])
            .unwrap();
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(anomaly.model, "m2");
    }

    #[test]
    fn a_missing_or_broken_model_file_is_named() {
        let error =
            anyhow::Error::new(Model::load(Path::new("/nonexistent/model.bin")).unwrap_err());
        assert!(format!("{error:#}").contains("/nonexistent/model.bin"));
        let dir = std::env::temp_dir().join(format!("detector-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.bin");
        std::fs::write(&garbage, b"definitely not a model").unwrap();
        let error = format!(
            "{:#}",
            anyhow::Error::new(Model::load(&garbage).unwrap_err())
        );
        assert!(error.contains("not a model file"), "{error}");
        assert!(error.contains("garbage.bin"), "{error}");
    }

    #[test]
    fn model_and_scorer_can_move_between_threads() {
        fn has_autotraits<T: Send + Sync + Unpin>() {}
        has_autotraits::<Model>();
        has_autotraits::<Scorer>();
        has_autotraits::<BatchOutcome>();
    }
}
