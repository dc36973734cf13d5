//! When to refit: the policy, the drift of a window from the model's training data, and the
//! decision.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Result};
use iforest::FeatureSummary;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
