//! `trainer fit --topic T --follow`: keeps a model fitted to the recent stream.
//!
//! It reads the topic without end (partitions assigned, no group joined, nothing committed),
//! keeps the last `window` usable records, and refits on them when the model is older than
//! `--interval`, or when the window's feature summary has moved away from the model's training
//! summary by more than `--drift-threshold` ([`drift`]). Each new model replaces the model file
//! atomically, so the detectors, which watch that file, pick it up between two batches.
//!
//! [`Follower`] holds the window and makes the decisions without Kafka (unit-tested);
//! [`follow`] feeds it from the topic.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use iforest::{FeatureSummary, IsolationForest, IsolationForestParams};
use rdkafka::message::Message;
use rdkafka::Offset;
use schema::{DecodeLimits, Transaction};

/// How often the window is compared with the model (at most).
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// When to refit.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Records kept: the newest `window` usable ones.
    pub window: usize,
    /// No decision before the window holds this many records.
    pub min_records: usize,
    /// Refit when the model is this old (from the model file's write time).
    pub interval: Option<Duration>,
    /// Refit when [`drift`] exceeds this.
    pub drift_threshold: f64,
}

impl Policy {
    /// Checks the numbers; the error names the flag.
    pub fn check(&self) -> Result<()> {
        if self.window < 2 {
            bail!("--window must be at least 2 records");
        }
        if !(1..=self.window).contains(&self.min_records) {
            bail!(
                "--min-records must be between 1 and the window ({}), not {}",
                self.window,
                self.min_records
            );
        }
        if self.drift_threshold.is_nan() || self.drift_threshold <= 0.0 {
            bail!(
                "--drift-threshold must be more than 0 (inf: refit on --interval only), not {}",
                self.drift_threshold
            );
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            bail!("--interval must be more than 0 seconds");
        }
        Ok(())
    }
}

/// How far a window's features are from a model's training data: the largest, over
/// features, of the mean's shift in units of the training standard deviation, and of the
/// standard deviation's change as |ln(window / training)|. 0.5 means half a standard
/// deviation of shift, or a spread grown or shrunk by a factor e^0.5 ≈ 1.65.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    /// The measure.
    pub value: f64,
    /// The feature where it is largest.
    pub feature: usize,
    /// What moved there.
    pub kind: DriftKind,
}

/// What moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// The mean.
    Mean,
    /// The standard deviation.
    Spread,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DriftKind::Mean => write!(
                f,
                "feature {}'s mean moved {:.3} training standard deviations",
                self.feature, self.value
            ),
            DriftKind::Spread => write!(
                f,
                "feature {}'s standard deviation changed by a factor e^{:.3}",
                self.feature, self.value
            ),
        }
    }
}

/// `|a − b| / scale`, where a zero scale makes any difference infinite and none zero.
fn in_units(difference: f64, scale: f64) -> f64 {
    match (difference == 0.0, scale > 0.0) {
        (true, _) => 0.0,
        (false, true) => difference / scale,
        (false, false) => f64::INFINITY,
    }
}

/// The drift of `window` from `training` (see [`Drift`]); `None` when the feature counts
/// differ or there is no feature.
pub fn drift(training: &[FeatureSummary], window: &[FeatureSummary]) -> Option<Drift> {
    if training.len() != window.len() {
        return None;
    }
    let mut largest: Option<Drift> = None;
    for (feature, (model, now)) in training.iter().zip(window).enumerate() {
        let mean = in_units((now.mean - model.mean).abs(), model.std_dev);
        let spread = match (model.std_dev > 0.0, now.std_dev > 0.0) {
            (true, true) => (now.std_dev / model.std_dev).ln().abs(),
            (false, false) => 0.0,
            _ => f64::INFINITY,
        };
        for (value, kind) in [(mean, DriftKind::Mean), (spread, DriftKind::Spread)] {
            if largest.is_none_or(|largest| value > largest.value) {
                largest = Some(Drift {
                    value,
                    feature,
                    kind,
                });
            }
        }
    }
    largest
}

/// Min, max, mean and population standard deviation of each feature of row-major `data`.
pub fn summarise(data: &[f64], n_features: usize) -> Vec<FeatureSummary> {
    let rows = data.len().checked_div(n_features).unwrap_or(0).max(1) as f64;
    (0..n_features)
        .map(|feature| {
            let values = || data.iter().skip(feature).step_by(n_features);
            let mean = values().sum::<f64>() / rows;
            let variance = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / rows;
            FeatureSummary {
                min: values().copied().fold(f64::INFINITY, f64::min),
                max: values().copied().fold(f64::NEG_INFINITY, f64::max),
                mean,
                std_dev: variance.sqrt(),
            }
        })
        .collect()
}

/// Why a model is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// There is no usable model yet.
    NoModel,
    /// The model reached the interval's age.
    Interval(Duration),
    /// The stream drifted.
    Drift(Drift),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoModel => write!(f, "no model yet"),
            Reason::Interval(age) => write!(f, "the model is {:.0} s old", age.as_secs_f64()),
            Reason::Drift(drift) => write!(f, "drift: {drift}"),
        }
    }
}

/// The decision: refit or not, and why. `age` is the model's (None: no model); `drift` the
/// window's drift from it; `new_records` how many arrived since the model was written (an
/// old model is not refitted on the very rows it was fitted on). No decision before the
/// window holds `min_records`.
pub fn decide(
    policy: &Policy,
    window_len: usize,
    age: Option<Duration>,
    drift: Option<Drift>,
    new_records: u64,
) -> Option<Reason> {
    if window_len < policy.min_records {
        return None;
    }
    let Some(age) = age else {
        return Some(Reason::NoModel);
    };
    if new_records > 0 && policy.interval.is_some_and(|interval| age >= interval) {
        return Some(Reason::Interval(age));
    }
    drift
        .filter(|drift| drift.value > policy.drift_threshold)
        .map(Reason::Drift)
}

/// The newest `capacity` rows of `width` features.
#[derive(Debug, Clone)]
pub struct Window {
    width: Option<usize>,
    capacity: usize,
    values: VecDeque<f64>,
}

impl Window {
    /// An empty window of `capacity` rows; `width` is taken from the first row when `None`.
    pub fn new(capacity: usize, width: Option<usize>) -> Self {
        Self {
            width,
            capacity,
            values: VecDeque::new(),
        }
    }

    /// Adds a row, dropping the oldest when full; false (and nothing added) when the row has
    /// another width or a value that is not finite.
    pub fn push(&mut self, row: &[f64]) -> bool {
        let width = *self.width.get_or_insert(row.len());
        if row.len() != width || width == 0 || !row.iter().all(|v| v.is_finite()) {
            return false;
        }
        if self.len() == self.capacity {
            self.values.drain(..width);
        }
        self.values.extend(row);
        true
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.width
            .and_then(|width| self.values.len().checked_div(width))
            .unwrap_or(0)
    }

    /// True when no row is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Features per row, once known.
    pub fn width(&self) -> Option<usize> {
        self.width
    }

    /// The rows, oldest first, row-major.
    pub fn data(&self) -> Vec<f64> {
        self.values.iter().copied().collect()
    }
}

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

/// The window and the current model's summary; decides and refits.
pub struct Follower {
    policy: Policy,
    params: IsolationForestParams,
    /// Feature names for new models: the current model's, else `f0`, `f1`, … (as `trainer
    /// fit --topic` names them).
    names: Option<Vec<String>>,
    out: PathBuf,
    window: Window,
    /// The current model's training summary and write time.
    model: Option<(Vec<FeatureSummary>, SystemTime)>,
    /// Records pushed since the model was written.
    new_records: u64,
    last_check: Option<Instant>,
}

impl Follower {
    /// Starts from the model already at `out` when there is a usable one (its summary is the
    /// reference, its write time its age, its width the window's), else from nothing.
    pub fn new(policy: Policy, params: IsolationForestParams, out: &Path) -> Result<Self> {
        policy.check()?;
        let mut names = None;
        let model = match IsolationForest::load(out) {
            Ok(model) => {
                names = model.feature_names().map(<[String]>::to_vec);
                let written = std::fs::metadata(out)
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now());
                log::info!(
                    "following from the model in {} ({} features, training summary as reference)",
                    out.display(),
                    model.n_features()
                );
                Some((model.summary().to_vec(), written))
            }
            Err(error) => {
                log::info!(
                    "no usable model in {} ({error}): the first one is fitted once {} records are in",
                    out.display(),
                    policy.min_records
                );
                None
            }
        };
        let width = model.as_ref().map(|(summary, _)| summary.len());
        if let Some(width) = width {
            // Bad hyper-parameters stop the follower now, not at its first refit.
            params
                .clone()
                .feature_names(feature_names(names.as_deref(), width))
                .check()
                .context("bad hyper-parameters")?;
        }
        Ok(Self {
            window: Window::new(policy.window, width),
            policy,
            params,
            names,
            out: out.to_path_buf(),
            model,
            new_records: 0,
            last_check: None,
        })
    }

    /// Adds a record's features; false when they do not fit the window (see [`Window::push`]).
    pub fn push(&mut self, features: &[f64]) -> bool {
        let pushed = self.window.push(features);
        self.new_records += u64::from(pushed);
        pushed
    }

    /// Rows in the window.
    pub fn window_len(&self) -> usize {
        self.window.len()
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
            self.window.len(),
            age,
            drift,
            self.new_records,
        ) {
            Some(reason) => self.refit(reason).map(Some),
            None => Ok(None),
        }
    }

    /// Fits on the window and replaces the model file atomically.
    pub fn refit(&mut self, reason: Reason) -> Result<Refit> {
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
        let fit_time = started.elapsed();
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        model
            .save(&self.out)
            .with_context(|| format!("cannot save the model to {}", self.out.display()))?;
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
            rows: data.len() / width,
            model_id: iforest::model_id(&model.to_bytes()),
            threshold: model.threshold(),
            flagged,
            fit_time,
        })
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
    let limits = DecodeLimits::default();
    let (mut refits, mut skipped) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) => log::warn!("reading {topic}: {error}"),
            Some(Ok(message)) => {
                let usable = message
                    .payload()
                    .and_then(|payload| Transaction::decode(payload, &limits).ok())
                    .is_some_and(|tx| follower.push(&tx.features));
                if !usable {
                    skipped += 1;
                    if skipped.is_power_of_two() {
                        log::warn!(
                            "{skipped} records left out so far: not decodable, or another width"
                        );
                    }
                }
            }
        }
        if let Some(refit) = follower.poll(Instant::now())? {
            log::info!("{refit}");
            println!("trainer: {refit}; wrote {}", follower.out.display());
            refits += 1;
        }
    }
    log::info!("stopping: {refits} models written");
    Ok(refits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::{Contamination, IsolationForestParams};

    fn summary(mean: f64, std_dev: f64) -> FeatureSummary {
        FeatureSummary {
            min: mean - 3.0 * std_dev,
            max: mean + 3.0 * std_dev,
            mean,
            std_dev,
        }
    }

    fn policy() -> Policy {
        Policy {
            window: 100,
            min_records: 50,
            interval: Some(Duration::from_secs(60)),
            drift_threshold: 0.5,
        }
    }

    #[test]
    fn drift_is_the_largest_mean_shift_in_training_std_devs_or_spread_change() {
        let training = [summary(0.0, 2.0), summary(10.0, 1.0)];
        let same = drift(&training, &training).unwrap();
        assert_eq!(same.value, 0.0);
        // Feature 1's mean moved 1.5 of its standard deviations; feature 0's only 0.25.
        let moved = drift(&training, &[summary(0.5, 2.0), summary(11.5, 1.0)]).unwrap();
        assert_eq!((moved.feature, moved.kind), (1, DriftKind::Mean));
        assert!((moved.value - 1.5).abs() < 1e-12);
        // Spread doubled: ln 2.
        let wider = drift(&training, &[summary(0.0, 4.0), summary(10.0, 1.0)]).unwrap();
        assert_eq!((wider.feature, wider.kind), (0, DriftKind::Spread));
        assert!((wider.value - std::f64::consts::LN_2).abs() < 1e-12);
        // Shrinking counts as much as growing.
        let narrower = drift(&training, &[summary(0.0, 1.0), summary(10.0, 1.0)]).unwrap();
        assert!((narrower.value - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(drift(&training, &training[..1]), None, "another width");
    }

    #[test]
    fn a_constant_training_feature_drifts_infinitely_when_it_moves_and_not_otherwise() {
        let training = [summary(3.0, 0.0)];
        assert_eq!(drift(&training, &[summary(3.0, 0.0)]).unwrap().value, 0.0);
        assert_eq!(
            drift(&training, &[summary(3.1, 0.0)]).unwrap().value,
            f64::INFINITY
        );
        assert_eq!(
            drift(&training, &[summary(3.0, 0.2)]).unwrap().value,
            f64::INFINITY
        );
    }

    #[test]
    fn reasons_say_what_moved_and_how_far() {
        let mean = Drift {
            value: 1.98642,
            feature: 1,
            kind: DriftKind::Mean,
        };
        assert_eq!(
            Reason::Drift(mean).to_string(),
            "drift: feature 1's mean moved 1.986 training standard deviations"
        );
        let spread = Drift {
            kind: DriftKind::Spread,
            ..mean
        };
        assert_eq!(
            spread.to_string(),
            "feature 1's standard deviation changed by a factor e^1.986"
        );
        assert_eq!(
            Reason::Interval(Duration::from_secs(3600)).to_string(),
            "the model is 3600 s old"
        );
    }

    #[test]
    fn summaries_are_per_feature_population_statistics() {
        let data = [1.0, 10.0, 3.0, 10.0, 5.0, 40.0];
        let s = summarise(&data, 2);
        assert_eq!((s[0].min, s[0].max, s[0].mean), (1.0, 5.0, 3.0));
        assert!((s[0].std_dev - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((s[1].mean, s[1].min, s[1].max), (20.0, 10.0, 40.0));
    }

    #[test]
    fn nothing_is_decided_before_the_window_has_its_minimum() {
        let far = Drift {
            value: 9.0,
            feature: 0,
            kind: DriftKind::Mean,
        };
        assert_eq!(decide(&policy(), 49, None, Some(far), 49), None);
        assert_eq!(decide(&policy(), 50, None, None, 50), Some(Reason::NoModel));
    }

    #[test]
    fn an_old_model_or_a_drifted_stream_is_refitted_and_a_fresh_close_one_is_not() {
        let drift = |value| Drift {
            value,
            feature: 0,
            kind: DriftKind::Mean,
        };
        let young = Some(Duration::from_secs(10));
        let old = Some(Duration::from_secs(61));
        assert_eq!(decide(&policy(), 100, young, Some(drift(0.4)), 7), None);
        assert_eq!(decide(&policy(), 100, young, None, 7), None);
        assert_eq!(
            decide(&policy(), 100, young, Some(drift(0.6)), 7),
            Some(Reason::Drift(drift(0.6)))
        );
        assert_eq!(
            decide(&policy(), 100, old, Some(drift(0.1)), 7),
            Some(Reason::Interval(Duration::from_secs(61)))
        );
        assert_eq!(
            decide(&policy(), 100, old, Some(drift(0.1)), 0),
            None,
            "nothing new since the model was written: the same rows would give the same model"
        );
        let drift_only = Policy {
            interval: None,
            ..policy()
        };
        assert_eq!(decide(&drift_only, 100, old, Some(drift(0.1)), 7), None);
        let interval_only = Policy {
            drift_threshold: f64::INFINITY,
            ..policy()
        };
        assert_eq!(
            decide(&interval_only, 100, young, Some(drift(1e9)), 7),
            None
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_flag_named() {
        for (bad, flag) in [
            (
                Policy {
                    window: 1,
                    ..policy()
                },
                "--window",
            ),
            (
                Policy {
                    min_records: 101,
                    ..policy()
                },
                "--min-records",
            ),
            (
                Policy {
                    drift_threshold: 0.0,
                    ..policy()
                },
                "--drift-threshold",
            ),
            (
                Policy {
                    drift_threshold: f64::NAN,
                    ..policy()
                },
                "--drift-threshold",
            ),
            (
                Policy {
                    interval: Some(Duration::ZERO),
                    ..policy()
                },
                "--interval",
            ),
        ] {
            let error = bad.check().unwrap_err().to_string();
            assert!(error.contains(flag), "{bad:?}: {error}");
        }
        policy().check().unwrap();
    }

    #[test]
    fn the_window_keeps_the_newest_rows_of_one_width() {
        let mut window = Window::new(3, None);
        assert!(window.push(&[1.0, 1.5]));
        assert!(!window.push(&[1.0]), "another width");
        assert!(!window.push(&[f64::NAN, 0.0]), "not finite");
        for row in 2..=4 {
            assert!(window.push(&[row as f64, 0.5]));
        }
        assert_eq!(window.len(), 3);
        assert_eq!(window.data(), [2.0, 0.5, 3.0, 0.5, 4.0, 0.5]);
    }

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
        let mut follower = Follower::new(policy.clone(), params.clone(), &out).unwrap();
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
        let mut resumed = Follower::new(policy, params, &out).unwrap();
        for row in clusters(400, 3.0) {
            resumed.push(&row);
        }
        assert!(resumed.poll(Instant::now()).unwrap().is_none());
    }
}
