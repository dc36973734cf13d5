//! The per-feature summary of training data (min, max, mean, standard deviation), kept in the
//! model so a later window of data can be compared with what the model was trained on.

use serde::{Deserialize, Serialize};

/// Summary of one training feature, kept in the model for drift checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std_dev: f64,
}

/// Min, max, mean and population standard deviation of each feature of flat, row-major
/// `data` with `n_features` columns: the summary a model keeps of its training data
/// ([`IsolationForest::summary`](crate::IsolationForest::summary)), computed the same way, so
/// a window of new data can be compared with it value for value.
///
/// Only whole rows count (a trailing partial row is ignored). No features gives an empty
/// vector; no rows gives, per feature, min +∞, max −∞, mean 0 and standard deviation 0 (the
/// empty fold). Values are not checked: a NaN makes its feature's mean and deviation NaN.
pub fn summarise(data: &[f64], n_features: usize) -> Vec<FeatureSummary> {
    let rows = data.len().checked_div(n_features).unwrap_or(0);
    if rows == 0 {
        return vec![
            FeatureSummary {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                mean: 0.0,
                std_dev: 0.0,
            };
            n_features
        ];
    }
    stripes(&data[..rows * n_features], n_features)
}

/// [`summarise`] of at least one whole row, in two passes over the data: sums, minima and
/// maxima, then squared deviations from the mean.
///
/// Each pass walks the flat data in stripes of `n_features · k ≥ 64` values with one
/// accumulator per position, which the compiler vectorises, and folds the stripes' positions
/// into features at the end (a strided walk per feature was most of a large table's fit time).
fn stripes(data: &[f64], n_features: usize) -> Vec<FeatureSummary> {
    let rows = (data.len() / n_features) as f64;
    let stripe = n_features * 64usize.div_ceil(n_features);
    let mut sum = vec![0.0; stripe];
    let mut min = vec![f64::INFINITY; stripe];
    let mut max = vec![f64::NEG_INFINITY; stripe];
    let mut stripes = data.chunks_exact(stripe);
    for values in &mut stripes {
        for (((sum, min), max), &value) in sum.iter_mut().zip(&mut min).zip(&mut max).zip(values) {
            *sum += value;
            *min = min.min(value);
            *max = max.max(value);
        }
    }
    for (((sum, min), max), &value) in sum
        .iter_mut()
        .zip(&mut min)
        .zip(&mut max)
        .zip(stripes.remainder())
    {
        *sum += value;
        *min = min.min(value);
        *max = max.max(value);
    }
    let by_feature = |values: &[f64], fold: fn(f64, f64) -> f64, start: f64| -> Vec<f64> {
        let mut out = vec![start; n_features];
        for (position, &value) in values.iter().enumerate() {
            out[position % n_features] = fold(out[position % n_features], value);
        }
        out
    };
    let mean: Vec<f64> = by_feature(&sum, |a, b| a + b, 0.0)
        .into_iter()
        .map(|total| total / rows)
        .collect();
    let min = by_feature(&min, f64::min, f64::INFINITY);
    let max = by_feature(&max, f64::max, f64::NEG_INFINITY);
    let centre: Vec<f64> = (0..stripe)
        .map(|position| mean[position % n_features])
        .collect();
    let mut squares = vec![0.0; stripe];
    let mut stripes = data.chunks_exact(stripe);
    for values in &mut stripes {
        for ((square, centre), &value) in squares.iter_mut().zip(&centre).zip(values) {
            *square += (value - centre) * (value - centre);
        }
    }
    for ((square, centre), &value) in squares.iter_mut().zip(&centre).zip(stripes.remainder()) {
        *square += (value - centre) * (value - centre);
    }
    let squares = by_feature(&squares, |a, b| a + b, 0.0);
    (0..n_features)
        .map(|feature| FeatureSummary {
            min: min[feature],
            max: max[feature],
            mean: mean[feature],
            std_dev: (squares[feature] / rows).sqrt(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_per_feature_population_statistics() {
        let data = [1.0, 10.0, 3.0, 10.0, 5.0, 40.0];
        let s = summarise(&data, 2);
        assert_eq!((s[0].min, s[0].max, s[0].mean), (1.0, 5.0, 3.0));
        assert!((s[0].std_dev - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((s[1].mean, s[1].min, s[1].max), (20.0, 10.0, 40.0));
    }

    #[test]
    fn wide_and_long_tables_fold_their_stripes_into_the_right_features() {
        // 70 rows of 3 features (more than one stripe), feature f of row r = r·10 + f.
        let data: Vec<f64> = (0..70)
            .flat_map(|row| (0..3).map(move |feature| f64::from(row * 10 + feature)))
            .collect();
        let s = summarise(&data, 3);
        for (feature, summary) in s.iter().enumerate() {
            let feature = feature as f64;
            assert_eq!((summary.min, summary.max), (feature, 690.0 + feature));
            assert_eq!(summary.mean, 345.0 + feature);
        }
    }

    #[test]
    fn no_features_no_rows_and_partial_rows_do_not_panic() {
        assert!(summarise(&[1.0, 2.0], 0).is_empty());
        let empty = summarise(&[], 2);
        assert_eq!(empty.len(), 2);
        assert_eq!(
            (empty[0].min, empty[0].max),
            (f64::INFINITY, f64::NEG_INFINITY)
        );
        assert_eq!((empty[0].mean, empty[0].std_dev), (0.0, 0.0));
        assert_eq!(summarise(&[1.0], 2), empty);
        // The trailing 99 is half a row: ignored.
        assert_eq!(summarise(&[1.0, 2.0, 99.0], 2), summarise(&[1.0, 2.0], 2));
    }
}
