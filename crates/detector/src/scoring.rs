//! The pure part of the detector: a batch of raw records in, the records to write out and the
//! offsets that may then be stored. No Kafka here, so it is unit-tested directly.
//!
//! A record is read as its model reads it (`reading`: a `data` array or named features), the
//! valid rows are scored in one batch, and each record above the threshold is explained
//! (`explaining`) and written as an anomaly with its reasons (`fit`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use features::{Features, MetadataError, RecordMeta, StateChange};
use iforest::{IsolationForest, ScoreError};
use schema::{DecodeLimits, RecordId, Scored, Verdict};

use crate::explaining::Explainer;
use crate::keystate::{KeyStates, Keyed};
use crate::limits::OutputLimits;
use crate::reading::{Reader, Refusal};

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
    /// Per source partition: records read, scored, dead-lettered and replayed (read = the
    /// other three).
    pub per_partition: BTreeMap<i32, PartitionCounts>,
    /// Records already applied to their key's state (per-key features): no output.
    pub replayed: u64,
    /// Records whose Kafka key is not their key field's value (per-key features).
    pub key_differs: u64,
    /// True when the batch was read through key states: its
    /// [`state_changes`](Self::state_changes) go to the changelog once its outputs are
    /// acknowledged.
    pub per_key: bool,
    /// Per partition, the keys' states the batch changed (and tombstones of keys expired
    /// before it), taken as it was scored.
    pub state_changes: BTreeMap<i32, Vec<StateChange>>,
}

/// One partition's records in a batch: every record read is scored, dead-lettered or (per-key
/// features) replayed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCounts {
    /// Records read.
    pub consumed: u64,
    /// Of which scored.
    pub scored: u64,
    /// Of which dead-lettered.
    pub dead_lettered: u64,
    /// Of which replayed: already applied to their key's state, so already scored.
    pub replayed: u64,
}

/// A loaded, validated model, its id (the content hash of its file, which every anomaly
/// names) and what it reads from a record.
pub struct Model {
    /// The forest.
    pub forest: IsolationForest,
    /// `iforest::model_id` of the file's bytes.
    pub id: String,
    /// What the forest reads (from its metadata, checked when the model was made).
    features: Features,
    /// The features' names, in row order: the named features', else the forest's own, else
    /// `x0`, `x1`, ….
    names: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("names", &self.names)
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
    /// The model's features entry cannot be read, or does not fit the forest.
    #[error("{} is not a usable model", path.display())]
    Features {
        /// The file.
        path: PathBuf,
        /// What is wrong with the entry.
        #[source]
        source: MetadataError,
    },
}

impl Model {
    /// A model of `forest`, whose file has id `id`: the features its metadata names are read
    /// and checked against its width.
    pub fn new(forest: IsolationForest, id: impl Into<String>) -> Result<Model, MetadataError> {
        let features = Features::from_model(&forest)?;
        let names = match (&features, forest.feature_names()) {
            (Features::Named(named), _) => named.names(),
            (Features::Data, Some(names)) if names.len() == forest.n_features() => names.to_vec(),
            (Features::Data, _) => (0..forest.n_features()).map(|i| format!("x{i}")).collect(),
        };
        Ok(Model {
            forest,
            id: id.into(),
            features,
            names,
        })
    }

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
        Model::new(forest, iforest::model_id(&bytes)).map_err(|source| ModelLoadError::Features {
            path: path.to_path_buf(),
            source,
        })
    }

    /// What the model reads from a record.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The named features, when they include per-key items.
    pub fn per_key(&self) -> Option<&features::NamedFeatures> {
        self.features.named().filter(|named| named.is_per_key())
    }

    /// The features' names, in row order (what anomalies call them).
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// What the model reads, for the log: `named features amount:log, ts:hour (missing
    /// fields: dead-letter; id field: id)` or `data (x0, x1)`.
    pub fn describe_features(&self) -> String {
        match &self.features {
            Features::Named(named) => format!(
                "named features {} (missing fields: {}; id field: {})",
                self.names.join(", "),
                named.spec().missing().name(),
                named.id_field()
            ),
            Features::Data => format!("`data` ({})", self.names.join(", ")),
        }
    }
}

/// The model and everything needed to turn records into verdicts.
pub struct Scorer {
    model: Model,
    limits: DecodeLimits,
    output_limits: OutputLimits,
    source_topic: String,
    /// Reused across batches: the valid rows, flat and row-major, their scores, and the
    /// explanations' buffers.
    rows: Vec<f64>,
    scores: Vec<f64>,
    explainer: Explainer,
    /// Per-key features: the assigned partitions' key states.
    states: KeyStates,
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
            explainer: Explainer::default(),
            states: KeyStates::default(),
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

    /// Swaps in another model (between batches), returning the old one. The next batch is
    /// read as the new model reads records. Key states are kept when they mean the same for
    /// the new model's features, else dropped (each partition then starts empty).
    pub fn replace_model(&mut self, model: Model) -> Model {
        let keep = model.per_key().is_some_and(|named| self.states.fit(named));
        if !keep && self.states.partitions() > 0 {
            log::warn!(
                "the new model's per-key features differ from the old one's: the states of \
                 {} keys are dropped and its keys start without history",
                self.states.keys()
            );
            self.states.clear();
        }
        std::mem::replace(&mut self.model, model)
    }

    /// True when the model's features include per-key items.
    pub fn is_per_key(&self) -> bool {
        self.model.per_key().is_some()
    }

    /// The assigned partitions' key states (per-key features).
    pub fn states(&self) -> &KeyStates {
        &self.states
    }

    /// The key states, to restore partitions into or drop them.
    pub fn states_mut(&mut self) -> &mut KeyStates {
        &mut self.states
    }

    /// Reads, checks and scores a batch (one `score_batch` call for all valid rows): the
    /// anomalies (each with its reasons) and dead letters in input order, and per partition
    /// the last offset.
    ///
    /// A record that cannot be used becomes a dead letter; an error here means the scoring
    /// kernel refused rows that were checked (a bug, not bad input), and the caller stops
    /// without storing the batch's offsets.
    pub fn process(&mut self, batch: &[Incoming<'_>]) -> Result<BatchOutcome, ScoreError> {
        let mut outcome = BatchOutcome::default();
        let model = &self.model;
        let forest = &model.forest;
        let width = forest.n_features();
        let reader = Reader {
            features: &model.features,
            width,
            limits: &self.limits,
        };
        // Each accepted record's index in the batch and its id (None: identified by its
        // partition and offset); its row is the next in `rows`.
        let per_key = model.per_key();
        let mut accepted: Vec<(usize, Option<RecordId>)> = Vec::with_capacity(batch.len());
        let mut rejected: Vec<(usize, Refusal)> = Vec::new();
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
            let payload = record.payload.unwrap_or_default();
            let read = match per_key {
                Some(named) => reader.check_size(payload).and_then(|()| {
                    let meta = RecordMeta {
                        key: record.key,
                        timestamp_ms: record.timestamp_ms,
                        offset: record.offset,
                    };
                    let partition = record.partition;
                    self.states
                        .read(named, partition, payload, meta, &mut self.rows)
                }),
                None => reader
                    .read(payload, &mut self.rows, (record.partition, record.offset))
                    .map(|id| Keyed {
                        id,
                        replayed: false,
                        key_differs: false,
                    }),
            };
            match read {
                Ok(keyed) if keyed.replayed => {
                    outcome.replayed += 1;
                    outcome
                        .per_partition
                        .entry(record.partition)
                        .or_default()
                        .replayed += 1;
                }
                Ok(keyed) => {
                    if keyed.key_differs {
                        outcome.key_differs += 1;
                    }
                    accepted.push((index, keyed.id));
                }
                Err(refusal) => rejected.push((index, refusal)),
            }
        }
        if per_key.is_some() {
            outcome.per_key = true;
            outcome.state_changes = self.states.take_changes();
            if outcome.key_differs > 0 {
                log::warn!(
                    "{} records of the batch have a Kafka key other than their key field's: \
                     per-key features are exact only when the input is partitioned by the key",
                    outcome.key_differs
                );
            }
        }
        self.scores.resize(accepted.len(), 0.0);
        forest.score_batch_into(&self.rows, &mut self.scores)?;
        let detected_at = Utc::now();
        let threshold = forest.threshold();
        let from_data = matches!(model.features, Features::Data);
        let mut outputs: Vec<(usize, Output)> = Vec::new();
        // One verdict per batch, its per-record fields set for each anomaly (the model's id
        // is then copied once a batch, not once an anomaly).
        let mut verdict = Verdict {
            anomaly_score: 0.0,
            threshold,
            model: model.id.clone(),
            partition: 0,
            offset: 0,
            detected_at,
        };
        let rows = self.rows.chunks_exact(width);
        for (((index, id), &anomaly_score), row) in accepted.iter().zip(&self.scores).zip(rows) {
            outcome.scored += 1;
            let record = &batch[*index];
            outcome
                .per_partition
                .entry(record.partition)
                .or_default()
                .scored += 1;
            if anomaly_score <= threshold {
                continue;
            }
            outcome.anomalies += 1;
            verdict.anomaly_score = anomaly_score;
            verdict.partition = record.partition;
            verdict.offset = record.offset;
            let scored = Scored {
                record_id: id.as_ref(),
                names: &model.names,
                row,
                top: self.explainer.top(forest, row),
                from_data,
            };
            let output = crate::fit::anomaly(
                &scored,
                &verdict,
                record,
                *index,
                &self.source_topic,
                &self.output_limits,
            );
            if output.form != Form::Whole {
                outcome.reduced += 1;
            }
            outputs.push((*index, output));
        }
        for (index, refusal) in rejected {
            outcome.dead_letters += 1;
            *outcome.reasons.entry(refusal.reason).or_insert(0) += 1;
            let record = &batch[index];
            outcome
                .per_partition
                .entry(record.partition)
                .or_default()
                .dead_lettered += 1;
            log::warn!(
                "dead letter {}/{}: {} ({})",
                record.partition,
                record.offset,
                refusal.reason,
                refusal.detail
            );
            let output = crate::fit::dead_letter(
                refusal.reason,
                &refusal.detail,
                record,
                index,
                &self.source_topic,
                &self.output_limits,
            );
            if output.form != Form::Whole {
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
    use schema::{DeadLetter, Transaction};

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
        Scorer::new(
            Model::new(model(), "m1").unwrap(),
            DecodeLimits::default(),
            "transactions",
        )
    }

    fn record(partition: i32, offset: i64, payload: &[u8]) -> Incoming<'_> {
        Incoming {
            partition,
            offset,
            key: Some(b"k"),
            payload: Some(payload),
            timestamp_ms: None,
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
            replayed: 0,
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
            Model::new(model(), "m1").unwrap(),
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
                timestamp_ms: None,
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
        let old = scorer.replace_model(Model::new(model(), "m2").unwrap());
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

    /// A model with named features fitted on nested payments: the amount (`:log`), the
    /// merchant's category, the hour, and a nested number.
    pub(crate) fn named_model(list: &str, id: &str) -> Model {
        let spec = features::FeatureParams::new(list).check().unwrap();
        let training: Vec<serde_json::Value> = (0..600)
            .map(|i| {
                let mcc = ["5411", "5812", "4111"][i as usize % 3];
                serde_json::json!({
                    "id": i,
                    "amount": 20.0 + f64::from(i % 40),
                    "merchant": {"mcc": mcc,
                                 "geo": {"lat": 48.0 + f64::from(i % 10) / 10.0}},
                    "ts": format!("2026-12-01T{:02}:{:02}:00Z", 9 + i % 10, i % 60),
                })
            })
            .collect();
        let fitted = spec.fit(&training).unwrap();
        let forest = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .feature_names(fitted.features.names())
            .seed(3)
            .fit(&fitted.rows, fitted.features.len())
            .unwrap();
        Model::new(fitted.features.attach(forest), id).unwrap()
    }

    const LIST: &str = "amount:log,/merchant/mcc:category,ts:hour,/merchant/geo/lat";

    #[test]
    fn named_features_are_read_scored_and_explained_and_bad_records_named() {
        let mut scorer = Scorer::new(
            named_model(LIST, "named"),
            DecodeLimits::default(),
            "payments",
        );
        assert_eq!(
            scorer.model().feature_names(),
            [
                "amount:log",
                "/merchant/mcc:category",
                "ts:hour",
                "/merchant/geo/lat"
            ]
        );
        let far = br#"{"id": 7, "amount": 90000, "merchant": {"mcc": "7995", "geo": {"lat": 48.5}}, "ts": "2026-12-01T03:10:00Z", "extra": {"n": 1.50, "deep": [1e999]}}"#;
        let usual = br#"{"id": 8, "amount": 30, "merchant": {"mcc": "5411", "geo": {"lat": 48.5}}, "ts": "2026-12-01T12:30:00Z"}"#;
        let without_id = br#"{"amount": 70000, "merchant": {"mcc": "6051", "geo": {"lat": 48.1}}, "ts": "2026-12-01T02:00:00Z"}"#;
        let missing = br#"{"id": 10, "amount": 30, "merchant": {"geo": {"lat": 48.5}}, "ts": "2026-12-01T12:30:00Z"}"#;
        let wrong = br#"{"id": 11, "amount": 30, "merchant": {"mcc": "5411", "geo": {"lat": "48.5"}}, "ts": "2026-12-01T12:30:00Z"}"#;
        let batch = [
            record(0, 0, far),
            record(0, 1, usual),
            record(1, 0, without_id),
            record(1, 1, missing),
            record(0, 2, wrong),
        ];
        let outcome = scorer.process(&batch).unwrap();
        assert_eq!(
            (outcome.scored, outcome.anomalies, outcome.dead_letters),
            (3, 2, 2)
        );
        assert_eq!(
            outcome.reasons,
            BTreeMap::from([("missing_feature", 1), ("not_numeric", 1)])
        );
        let counts = |consumed, scored, dead_lettered| PartitionCounts {
            consumed,
            scored,
            dead_lettered,
            replayed: 0,
        };
        assert_eq!(
            outcome.per_partition,
            BTreeMap::from([(0, counts(3, 2, 1)), (1, counts(2, 1, 1))])
        );
        let [first, second, third, fourth] = &outcome.outputs[..] else {
            panic!("{:?}", outcome.outputs);
        };
        // The record as written, then the verdict and the reasons.
        assert_eq!(first.key, b"7");
        let text = std::str::from_utf8(&first.payload).unwrap();
        let record_text = std::str::from_utf8(far).unwrap();
        assert!(
            text.starts_with(record_text.strip_suffix('}').unwrap()),
            "{text}"
        );
        let anomaly = schema::Anomaly::decode(&first.payload).unwrap();
        assert_eq!(anomaly.id, RecordId::Int(7));
        assert_eq!(anomaly.feature_names, scorer.model().feature_names());
        assert_eq!(anomaly.features[0], 90000f64.ln_1p());
        assert_eq!(anomaly.features[1], 0.0, "a category never seen");
        assert_eq!(anomaly.explanation.len(), 3);
        let shares: f64 = anomaly.explanation.iter().map(|c| c.share).sum();
        assert!(shares <= 1.0 + 1e-12, "{shares}");
        let explained = scorer.model().forest.explain(&anomaly.features).unwrap();
        for (got, expected) in anomaly.explanation.iter().zip(&explained.contributions) {
            assert_eq!(Some(&got.feature), expected.name.as_ref());
            assert_eq!(got.share, expected.share);
            assert_eq!(got.direction.as_str(), expected.direction.to_string());
            assert_eq!(got.value, anomaly.features[expected.feature]);
        }
        // No id: keyed and identified by where it was read.
        assert_eq!(second.key, b"1:0");
        let anomaly = schema::Anomaly::decode(&second.payload).unwrap();
        assert!(anomaly.identified_by_position);
        assert_eq!(anomaly.id.to_string(), "1:0");
        // Dead letters name the feature.
        let missing_letter = letter(third);
        assert_eq!(
            (
                missing_letter.reason.as_str(),
                missing_letter.partition,
                missing_letter.offset
            ),
            ("missing_feature", 1, 1)
        );
        assert!(
            missing_letter
                .detail
                .starts_with("/merchant/mcc is missing"),
            "{}",
            missing_letter.detail
        );
        assert_eq!(missing_letter.original, missing);
        let wrong_letter = letter(fourth);
        assert_eq!(wrong_letter.reason, "not_numeric");
        assert_eq!(wrong_letter.detail, "/merchant/geo/lat is a string");
    }

    #[test]
    fn a_new_model_with_other_features_reads_the_next_batch_its_way() {
        let mut scorer = Scorer::new(
            named_model(LIST, "first"),
            DecodeLimits::default(),
            "payments",
        );
        // No merchant at all: refused by the first model, read by the second.
        let payload = br#"{"id": 1, "amount": 90000, "ts": "2026-12-01T03:10:00Z"}"#;
        let outcome = scorer.process(&[record(0, 0, payload)]).unwrap();
        assert_eq!(outcome.reasons, BTreeMap::from([("missing_feature", 1)]));
        scorer.replace_model(named_model("amount:log,ts:hour", "second"));
        let outcome = scorer.process(&[record(0, 1, payload)]).unwrap();
        assert_eq!((outcome.scored, outcome.anomalies), (1, 1));
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(anomaly.model, "second");
        assert_eq!(anomaly.feature_names, ["amount:log", "ts:hour"]);
        // And back to a `data` model: names x0, x1.
        scorer.replace_model(Model::new(model(), "data").unwrap());
        let outcome = scorer
            .process(&[record(0, 2, br#"{"id": 2, "data": [[3.9, -3.9]]}"#)])
            .unwrap();
        let anomaly = schema::Anomaly::decode(&outcome.outputs[0].payload).unwrap();
        assert_eq!(anomaly.feature_names, ["x0", "x1"]);
        assert_eq!(anomaly.features, [3.9, -3.9]);
        assert_eq!(anomaly.explanation.len(), 2);
    }

    #[test]
    fn a_model_whose_features_entry_is_broken_is_refused() {
        let forest = model().with_metadata(features::METADATA_KEY, "{\"version\": 99}");
        let error = Model::new(forest, "bad").unwrap_err();
        assert!(!error.to_string().is_empty());
        let dir = std::env::temp_dir().join(format!("detector-features-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad-features.bin");
        model()
            .with_metadata(features::METADATA_KEY, "not json")
            .save(&path)
            .unwrap();
        let error = format!("{:#}", anyhow::Error::new(Model::load(&path).unwrap_err()));
        assert!(error.contains("bad-features.bin"), "{error}");
        assert!(error.contains("features"), "{error}");
    }
}
