//! `trainer fit --topic T --follow`: keeps a model fitted to the recent stream.
//!
//! It reads the topic without end (partitions assigned, no group joined, nothing committed),
//! keeps the last `window` usable records, and refits on them when the model is older than
//! `--interval`, or when the window's feature summary has moved away from the model's training
//! summary by more than `--drift-threshold` ([`drift()`]). Each new model replaces the model file
//! atomically (and is kept under its id), so the detectors, which watch that file, pick it up
//! between two batches.
//!
//! With named features (the model's, or `--features`), the window keeps the records
//! themselves, and each refit learns the features afresh from them (category frequencies,
//! medians), as `trainer fit` would.
//!
//! [`Follower`] holds the window and makes the decisions without Kafka (unit-tested);
//! [`follow`] feeds it from the topic. [`drift`](mod@drift) holds the policy and the decision, [`window`]
//! the rows; the window is summarised as the model summarises its training data
//! ([`iforest::summarise`]), so the two compare value for value.

pub mod drift;
pub mod window;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use features::{FeatureSpec, Features, NamedFeatures};
use iforest::{summarise, FeatureSummary, IsolationForest, IsolationForestParams};
use rdkafka::message::Message;
use rdkafka::Offset;
use schema::{DecodeLimits, Transaction};
use serde_json::Value;

pub use drift::{decide, drift, Drift, DriftKind, Policy, Reason};
pub use window::{RecordWindow, Window};

/// How often the window is compared with the model (at most).
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// A model written by the follower.
#[derive(Debug, Clone)]
pub struct Refit {
    /// Why.
    pub reason: Reason,
    /// Rows it was fitted on.
    pub rows: usize,
    /// The new model's id (content hash of the file).
    pub model_id: String,
    /// Its threshold.
    pub threshold: f64,
    /// Window rows above the threshold.
    pub flagged: usize,
    /// Fitting time.
    pub fit_time: Duration,
}

impl fmt::Display for Refit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refitted ({}) on {} rows: model {}, threshold {:.4}, {} of the rows above it, \
             fitted in {:.1} ms",
            self.reason,
            self.rows,
            self.model_id,
            self.threshold,
            self.flagged,
            self.fit_time.as_secs_f64() * 1e3
        )
    }
}

/// How records become rows.
#[derive(Debug)]
enum Reading {
    /// Their `data` arrays.
    Data,
    /// Named features: the records themselves are kept, to learn from at each refit.
    Named(Box<Named>),
}

/// What a follower of named features keeps.
#[derive(Debug)]
struct Named {
    spec: FeatureSpec,
    /// What the current model's features learned (none before the first model).
    current: Option<NamedFeatures>,
    records: RecordWindow,
}

/// Where the follower writes.
#[derive(Debug, Clone)]
pub struct Output {
    /// The model file the detectors watch.
    pub out: PathBuf,
    /// Where each model is kept under its id.
    pub models_dir: PathBuf,
}

/// The window and the current model's summary; decides and refits.
pub struct Follower {
    policy: Policy,
    params: IsolationForestParams,
    /// Feature names for new `data` models: the current model's, else `f0`, `f1`, … (as
    /// `trainer fit --topic` names them).
    names: Option<Vec<String>>,
    output: Output,
    reading: Reading,
    /// Rows as the current model reads them, for drift.
    window: Window,
    /// The current model's training summary and write time.
    model: Option<(Vec<FeatureSummary>, SystemTime)>,
    /// Records pushed since the model was written.
    new_records: u64,
    last_check: Option<Instant>,
}

impl Follower {
    /// Starts from the model already at `output.out` when there is a usable one (its summary
    /// is the reference, its write time its age, its width the window's, its features the
    /// ones read), else from nothing. `spec`, when given, names the features to read; a model
    /// that reads others is then no reference.
    pub fn new(
        policy: Policy,
        params: IsolationForestParams,
        output: Output,
        spec: Option<FeatureSpec>,
    ) -> Result<Self> {
        policy.check()?;
        let out = &output.out;
        let loaded = IsolationForest::load(out)
            .map_err(anyhow::Error::new)
            .and_then(|model| {
                let features = crate::model::features_of(&model)?;
                Ok((model, features))
            });
        if let Ok((_, Features::Named(named))) = &loaded {
            if named.is_per_key() {
                anyhow::bail!(
                    "the model in {} has per-key features, which --follow does not refit",
                    out.display()
                );
            }
        }
        let (model, reading) = match loaded {
            Ok((model, features)) => match (features, spec) {
                (Features::Data, None) => (Some(model), Reading::Data),
                (Features::Named(named), spec)
                    if spec.as_ref().is_none_or(|spec| spec == named.spec()) =>
                {
                    let reading = Reading::Named(Box::new(Named {
                        spec: named.spec().clone(),
                        current: Some(named),
                        records: RecordWindow::new(policy.window),
                    }));
                    (Some(model), reading)
                }
                (_, spec) => {
                    log::info!(
                        "the model in {} reads other features than --features: the first \
                         model is fitted once {} records are in",
                        out.display(),
                        policy.min_records
                    );
                    (None, named_reading(spec, &policy))
                }
            },
            Err(error) => {
                log::info!(
                    "no usable model in {} ({error:#}): the first one is fitted once {} \
                     records are in",
                    out.display(),
                    policy.min_records
                );
                (None, named_reading(spec, &policy))
            }
        };
        let names = model
            .as_ref()
            .and_then(|model| model.feature_names().map(<[String]>::to_vec));
        let width = model.as_ref().map(IsolationForest::n_features);
        if let Some(model) = &model {
            log::info!(
                "following from the model in {} ({} features, training summary as reference)",
                out.display(),
                model.n_features()
            );
            // Bad hyper-parameters stop the follower now, not at its first refit.
            params
                .clone()
                .feature_names(feature_names(names.as_deref(), model.n_features()))
                .check()
                .context("bad hyper-parameters")?;
        }
        let model = model.map(|model| {
            let written = std::fs::metadata(out)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            (model.summary().to_vec(), written)
        });
        Ok(Self {
            window: Window::new(policy.window, width),
            policy,
            params,
            names,
            output,
            reading,
            model,
            new_records: 0,
            last_check: None,
        })
    }

    /// Adds a record as it came from the topic; false when it is not usable (it does not
    /// decode, does not fit the window, or lacks what the features read).
    pub fn push_record(&mut self, payload: &[u8]) -> bool {
        match &mut self.reading {
            Reading::Data => match Transaction::decode(payload, &DecodeLimits::default()) {
                Ok(transaction) => self.push(&transaction.features),
                Err(_) => false,
            },
            Reading::Named(named) => {
                let Named {
                    spec,
                    current,
                    records,
                } = named.as_mut();
                let usable = serde_json::from_slice::<Value>(payload)
                    .ok()
                    .is_some_and(|record| spec.check_record(&record).is_ok());
                if !usable {
                    return false;
                }
                records.push(payload.to_vec());
                if let Some(current) = current {
                    let mut row = Vec::with_capacity(current.len());
                    if current.read(payload, &mut row).is_ok() {
                        self.window.push(&row);
                    }
                }
                self.new_records += 1;
                true
            }
        }
    }

    /// Adds a record's `data` features; false when they do not fit the window (see
    /// [`Window::push`]) or the follower reads named features.
    pub fn push(&mut self, features: &[f64]) -> bool {
        if !matches!(self.reading, Reading::Data) {
            return false;
        }
        let pushed = self.window.push(features);
        self.new_records += u64::from(pushed);
        pushed
    }

    /// Records in the window.
    pub fn window_len(&self) -> usize {
        match &self.reading {
            Reading::Data => self.window.len(),
            Reading::Named(named) => named.records.len(),
        }
    }

    /// The window's drift from the current model, if both exist.
    pub fn drift(&self) -> Option<Drift> {
        let (reference, _) = self.model.as_ref()?;
        let width = self.window.width()?;
        if self.window.is_empty() {
            return None;
        }
        drift(reference, &summarise(&self.window.data(), width))
    }

    /// At most every half second: decides, and refits and writes the model when it is time.
    /// Returns what was written.
    pub fn poll(&mut self, now: Instant) -> Result<Option<Refit>> {
        if self
            .last_check
            .is_some_and(|last| now.duration_since(last) < CHECK_EVERY)
        {
            return Ok(None);
        }
        self.last_check = Some(now);
        let age = self.model.as_ref().map(|(_, written)| {
            SystemTime::now()
                .duration_since(*written)
                .unwrap_or_default()
        });
        let drift = self.drift();
        match decide(
            &self.policy,
            self.window_len(),
            age,
            drift,
            self.new_records,
        ) {
            Some(reason) => self.refit(reason).map(Some),
            None => Ok(None),
        }
    }

    /// Fits on the window (learning named features afresh from its records) and replaces the
    /// model file atomically.
    pub fn refit(&mut self, reason: Reason) -> Result<Refit> {
        let (model, data, fit_time) = match &mut self.reading {
            Reading::Data => {
                let width = self
                    .window
                    .width()
                    .context("no record yet: nothing to fit on")?;
                let data = self.window.data();
                let started = Instant::now();
                let model = self
                    .params
                    .clone()
                    .feature_names(feature_names(self.names.as_deref(), width))
                    .fit(&data, width)
                    .context("cannot fit the model")?;
                (model, data, started.elapsed())
            }
            Reading::Named(named) => {
                let Named {
                    spec,
                    current,
                    records,
                } = named.as_mut();
                let values: Vec<Value> = records
                    .iter()
                    .filter_map(|payload| serde_json::from_slice(payload).ok())
                    .collect();
                let started = Instant::now();
                let fitted = spec
                    .fit(&values)
                    .context("cannot learn the features from the window")?;
                let width = fitted.features.len();
                let model = self
                    .params
                    .clone()
                    .feature_names(fitted.features.names())
                    .fit(&fitted.rows, width)
                    .context("cannot fit the model")?;
                let model = crate::model::with_features(model, &fitted.features);
                let fit_time = started.elapsed();
                // From now on the window's rows are read with what was just learned.
                self.window = Window::new(self.policy.window, Some(width));
                for row in fitted.rows.chunks_exact(width) {
                    self.window.push(row);
                }
                *current = Some(fitted.features);
                (model, fitted.rows, fit_time)
            }
        };
        let model_id = crate::model::save(&model, &self.output.out, &self.output.models_dir)?;
        let flagged = model
            .score_batch(&data)
            .context("cannot score the window")?
            .iter()
            .filter(|&&score| score > model.threshold())
            .count();
        self.model = Some((model.summary().to_vec(), SystemTime::now()));
        self.new_records = 0;
        Ok(Refit {
            reason,
            rows: data.len() / model.n_features(),
            model_id,
            threshold: model.threshold(),
            flagged,
            fit_time,
        })
    }
}

/// Reading for a follower without a reference model: `spec`'s features, else `data`.
fn named_reading(spec: Option<FeatureSpec>, policy: &Policy) -> Reading {
    match spec {
        Some(spec) => Reading::Named(Box::new(Named {
            spec,
            current: None,
            records: RecordWindow::new(policy.window),
        })),
        None => Reading::Data,
    }
}

/// `names` when there are `width` of them, else `f0`, `f1`, ….
fn feature_names(names: Option<&[String]>, width: usize) -> Vec<String> {
    match names {
        Some(names) if names.len() == width => names.to_vec(),
        _ => (0..width).map(|index| format!("f{index}")).collect(),
    }
}

/// Reads `topic` until `stop` is set, feeding `follower` and printing each refit. Starts
/// `window` records before the end of each partition, so the first decision sees the recent
/// stream, not the topic's whole history.
pub fn follow(
    kafka: &bus::ClientSettings,
    topic: &str,
    follower: &mut Follower,
    stop: &AtomicBool,
) -> Result<u64> {
    // Manual assignment, nothing committed; its logs go through `log`, secrets masked.
    let consumer = kafka.base_consumer()?;
    let tail = i64::try_from(follower.policy.window).unwrap_or(i64::MAX);
    let partitions = bus::assign_all(&consumer, topic, Offset::OffsetTail(tail))?;
    log::info!(
        "following {topic} ({} partitions): window {} records, drift threshold {}, interval {}",
        partitions.len(),
        follower.policy.window,
        follower.policy.drift_threshold,
        follower
            .policy
            .interval
            .map_or("none".to_string(), |i| format!("{} s", i.as_secs_f64()))
    );
    let (mut refits, mut skipped) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) => log::warn!("reading {topic}: {error}"),
            Some(Ok(message)) => {
                let usable = message
                    .payload()
                    .is_some_and(|payload| follower.push_record(payload));
                if !usable {
                    skipped += 1;
                    if skipped.is_power_of_two() {
                        log::warn!(
                            "{skipped} records left out so far: not decodable, another width, \
                             or without what the features read"
                        );
                    }
                }
            }
        }
        if let Some(refit) = follower.poll(Instant::now())? {
            log::info!("{refit}");
            println!("trainer: {refit}; wrote {}", follower.output.out.display());
            refits += 1;
        }
    }
    log::info!("stopping: {refits} models written");
    Ok(refits)
}

/// Where a model's path is kept: its folder of models by id, for tests.
pub fn output(out: &Path, models_dir: Option<&Path>) -> Output {
    Output {
        out: out.to_path_buf(),
        models_dir: crate::model::models_dir(models_dir, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::Contamination;

    /// Two clusters around ±2 (both features), moved by `shift`; deterministic jitter.
    fn clusters(rows: usize, shift: f64) -> Vec<Vec<f64>> {
        (0..rows)
            .map(|row| {
                let centre = if row % 2 == 0 { 2.0 } else { -2.0 };
                let jitter = |k: f64| ((row as f64 * k).fract() - 0.5) * 0.8;
                vec![
                    centre + shift + jitter(0.618),
                    centre + shift + jitter(0.414),
                ]
            })
            .collect()
    }

    #[test]
    fn the_follower_refits_when_the_stream_moves_and_then_stays() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.bin");
        let params = IsolationForestParams::new()
            .n_trees(30)
            .contamination(Contamination::Fraction(0.01))
            .seed(5);
        let policy = Policy {
            window: 400,
            min_records: 400,
            interval: None,
            drift_threshold: 0.5,
        };
        let mut follower =
            Follower::new(policy.clone(), params.clone(), output(&out, None), None).unwrap();
        let mut clock = Instant::now();
        let mut tick = |follower: &mut Follower| {
            clock += CHECK_EVERY;
            follower.poll(clock).unwrap()
        };
        for row in clusters(399, 0.0) {
            assert!(follower.push(&row));
        }
        assert!(tick(&mut follower).is_none(), "399 < min records");
        follower.push(&[2.0, 2.0]);
        let first = tick(&mut follower).expect("a first model");
        assert_eq!(first.reason, Reason::NoModel);
        assert_eq!(first.rows, 400);
        let written = std::fs::read(&out).unwrap();
        assert_eq!(iforest::model_id(&written), first.model_id);
        let kept = dir
            .path()
            .join("by-id")
            .join(format!("{}.bin", first.model_id));
        assert_eq!(std::fs::read(kept).unwrap(), written, "kept under its id");

        // The same distribution: no refit.
        for row in clusters(400, 0.0) {
            follower.push(&row);
        }
        assert!(
            tick(&mut follower).is_none(),
            "drift {:?}",
            follower.drift()
        );

        // Moved by 3 (the training std dev is about 2): a refit for drift, on shifted rows.
        let model = IsolationForest::load(&out).unwrap();
        let shifted = clusters(400, 3.0);
        let flagged_before = shifted
            .iter()
            .filter(|row| model.predict(row).unwrap())
            .count();
        assert!(flagged_before > 300, "{flagged_before} of 400");
        for row in &shifted {
            follower.push(row);
        }
        let refit = tick(&mut follower).expect("a refit for drift");
        let Reason::Drift(drift) = refit.reason else {
            panic!("{:?}", refit.reason)
        };
        assert!(drift.value > 1.0, "{drift}");
        let model = IsolationForest::load(&out).unwrap();
        assert_eq!(
            iforest::model_id(&std::fs::read(&out).unwrap()),
            refit.model_id
        );
        let flagged_after = shifted
            .iter()
            .filter(|row| model.predict(row).unwrap())
            .count();
        assert!(flagged_after <= 12, "{flagged_after} of 400");
        assert!(follower.drift().unwrap().value < 1e-9);
        assert!(tick(&mut follower).is_none(), "no second refit");

        // A follower started on the file takes its summary as the reference: no refit.
        let mut resumed = Follower::new(policy, params, output(&out, None), None).unwrap();
        for row in clusters(400, 3.0) {
            resumed.push(&row);
        }
        assert!(resumed.poll(Instant::now()).unwrap().is_none());
    }

    /// A payment-like record: amounts around `centre`, two categories.
    fn payment(i: usize, centre: f64) -> Vec<u8> {
        let jitter = ((i as f64 * 0.618).fract() - 0.5) * centre * 0.2;
        let mcc = if i.is_multiple_of(3) { "5812" } else { "5411" };
        format!(
            r#"{{"id": {i}, "amount": {}, "merchant": {{"mcc": "{mcc}"}}}}"#,
            centre + jitter
        )
        .into_bytes()
    }

    #[test]
    fn a_follower_of_named_features_learns_them_afresh_at_each_refit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.bin");
        let params = IsolationForestParams::new().n_trees(30).seed(5);
        let policy = Policy {
            window: 300,
            min_records: 300,
            interval: None,
            drift_threshold: 0.5,
        };
        let spec = features::FeatureParams::new("amount:log,/merchant/mcc:category")
            .check()
            .unwrap();
        let mut follower = Follower::new(
            policy.clone(),
            params.clone(),
            output(&out, None),
            Some(spec.clone()),
        )
        .unwrap();
        let mut clock = Instant::now();
        let mut tick = |follower: &mut Follower| {
            clock += CHECK_EVERY;
            follower.poll(clock).unwrap()
        };
        assert!(!follower.push_record(b"not json"));
        assert!(!follower.push_record(br#"{"amount": "12"}"#), "not numeric");
        assert!(
            !follower.push(&[1.0, 2.0]),
            "named features read records, not rows"
        );
        for i in 0..300 {
            assert!(follower.push_record(&payment(i, 40.0)));
        }
        let first = tick(&mut follower).expect("a first model");
        assert_eq!((first.reason, first.rows), (Reason::NoModel, 300));
        let model = IsolationForest::load(&out).unwrap();
        assert_eq!(
            model.feature_names().unwrap(),
            ["amount:log", "/merchant/mcc:category"]
        );
        for i in 300..600 {
            follower.push_record(&payment(i, 40.0));
        }
        assert!(
            tick(&mut follower).is_none(),
            "the same stream: {:?}",
            follower.drift()
        );
        // Amounts ten times larger: the log moves by ln 10, many standard deviations.
        for i in 600..900 {
            follower.push_record(&payment(i, 400.0));
        }
        let refit = tick(&mut follower).expect("a refit for drift");
        assert!(
            matches!(refit.reason, Reason::Drift(d) if d.feature == 0),
            "{refit}"
        );
        assert!(
            follower.drift().unwrap().value < 1e-9,
            "the window is what was learned"
        );
        // The model file carries what was learned from the shifted window.
        let model = IsolationForest::load(&out).unwrap();
        let Features::Named(named) = Features::from_model(&model).unwrap() else {
            panic!("the model names its features")
        };
        let features::Learned::Median(median) = named.learned()[0] else {
            panic!("{:?}", named.learned())
        };
        assert!((median - 401f64.ln()).abs() < 0.1, "{median}");

        // A follower started on that file, without --features, reads the model's features.
        let mut resumed =
            Follower::new(policy.clone(), params.clone(), output(&out, None), None).unwrap();
        assert!(!resumed.push(&[1.0, 2.0]), "records, not rows");
        for i in 900..1200 {
            assert!(resumed.push_record(&payment(i, 400.0)));
        }
        assert!(resumed.poll(Instant::now()).unwrap().is_none(), "no drift");
        // With other features asked for, the model is no reference: a first model is fitted.
        let other = features::FeatureParams::new("amount").check().unwrap();
        let mut fresh = Follower::new(policy, params, output(&out, None), Some(other)).unwrap();
        for i in 0..300 {
            fresh.push_record(&payment(i, 40.0));
        }
        let refit = fresh.poll(Instant::now()).unwrap().expect("a first model");
        assert_eq!(refit.reason, Reason::NoModel);
        let model = IsolationForest::load(&out).unwrap();
        assert_eq!(model.feature_names().unwrap(), ["amount"]);
    }
}
