//! The original pipeline's synthetic data: its training set (two clusters) and its stream
//! (the same clusters, and uniform outliers), seeded so that every record is known in advance.

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use schema::Transaction;

use crate::table::Table;

/// Points per cluster in the original pipeline's training set.
pub const SYNTHETIC_CLUSTER_POINTS: usize = 500;

/// The original pipeline's training data: one draw of `0.3·N(0, 1)` points, shifted to (2, 2)
/// and to (−2, −2), rounded to 3 decimals (1000 rows, two features `x`, `y`).
pub fn synthetic_training_data(seed: u64) -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cluster: Vec<f64> = (0..SYNTHETIC_CLUSTER_POINTS * 2)
        .map(|_| {
            let normal: f64 = StandardNormal.sample(&mut rng);
            0.3 * normal
        })
        .collect();
    let round3 = |value: f64| (value * 1000.0).round() / 1000.0;
    let data = [2.0, -2.0]
        .iter()
        .flat_map(|&centre| cluster.iter().map(move |&offset| round3(offset + centre)))
        .collect();
    Table {
        feature_names: vec!["x".into(), "y".into()],
        data,
        labels: None,
    }
}

/// The original pipeline's synthetic stream (its producer): with probability
/// `outlier_probability` a point uniform in [−4, 4]², otherwise 0.3·N(0, 1) around (2, 2) or
/// (−2, −2) with equal chance; rounded to 3 decimals. Ids count up from `first_id`; `count` 0
/// = without end.
///
/// The same seed gives the same ids and features (ChaCha's stream is stable across versions),
/// so tests and tools know every record in advance. `current_time` is the time each record is
/// drawn, as the original writes it.
pub fn synthetic_records(
    seed: u64,
    outlier_probability: f64,
    first_id: i64,
    count: u64,
) -> impl Iterator<Item = Transaction> {
    shifted_synthetic_records(seed, outlier_probability, first_id, count, Shift::NONE)
}

/// [`synthetic_records`] whose clusters move by `shift` from some record on (a drifting
/// stream); the draws are the same, so the records before the shift are the unshifted ones.
pub fn shifted_synthetic_records(
    seed: u64,
    outlier_probability: f64,
    first_id: i64,
    count: u64,
    shift: Shift,
) -> impl Iterator<Item = Transaction> {
    let mut points = SyntheticPoints::new(seed, outlier_probability).with_shift(shift);
    let mut next_id = first_id;
    let mut left = (count > 0).then_some(count);
    std::iter::from_fn(move || {
        if let Some(left) = left.as_mut() {
            *left = left.checked_sub(1)?;
        }
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        Some(Transaction::new(
            id,
            points.next_point().to_vec(),
            Utc::now().naive_utc(),
        ))
    })
}

/// A move of the synthetic clusters: from the `after`-th point of the stream (counted from 0)
/// on, cluster points are drawn around their centre + `by`. Outliers stay uniform in
/// [−4, 4]²: what drifts is normal behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Added to both cluster centres.
    pub by: [f64; 2],
    /// Points before this one are not shifted.
    pub after: u64,
}

impl Shift {
    /// No shift: the original stream.
    pub const NONE: Shift = Shift {
        by: [0.0, 0.0],
        after: 0,
    };
}

/// The points of [`synthetic_records`], without ids or times.
pub struct SyntheticPoints {
    rng: ChaCha8Rng,
    outlier_probability: f64,
    shift: Shift,
    drawn: u64,
}

impl SyntheticPoints {
    /// The stream for `seed`.
    pub fn new(seed: u64, outlier_probability: f64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            outlier_probability,
            shift: Shift::NONE,
            drawn: 0,
        }
    }

    /// The same stream with its clusters moved as `shift` says.
    pub fn with_shift(mut self, shift: Shift) -> Self {
        self.shift = shift;
        self
    }

    /// The next point.
    pub fn next_point(&mut self) -> [f64; 2] {
        let [dx, dy] = if self.drawn >= self.shift.after {
            self.shift.by
        } else {
            [0.0, 0.0]
        };
        self.drawn += 1;
        let rng = &mut self.rng;
        let point = if rng.random::<f64>() < self.outlier_probability {
            [rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0)]
        } else {
            let centre = if rng.random::<bool>() { 2.0 } else { -2.0 };
            let x: f64 = rng.sample(StandardNormal);
            let y: f64 = rng.sample(StandardNormal);
            [0.3 * x + centre + dx, 0.3 * y + centre + dy]
        };
        point.map(round3)
    }
}

/// Rounds to 3 decimals as numpy's `round` does (half to even).
fn round3(value: f64) -> f64 {
    (value * 1000.0).round_ties_even() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(records: impl Iterator<Item = Transaction>) -> Vec<Vec<f64>> {
        records.map(|t| t.features).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_records() {
        let first = features(synthetic_records(5, 0.7, 10, 2000));
        assert_eq!(first, features(synthetic_records(5, 0.7, 10, 2000)));
        assert_ne!(first, features(synthetic_records(6, 0.7, 10, 2000)));
        // A prefix of a longer stream is the shorter stream.
        assert_eq!(
            first[..100],
            features(synthetic_records(5, 0.7, 10, 100))[..]
        );
    }

    #[test]
    fn ids_count_up_from_the_first_and_key_the_records() {
        let records: Vec<Transaction> = synthetic_records(1, 0.7, -3, 5).collect();
        let keys: Vec<String> = records.iter().map(Transaction::key).collect();
        assert_eq!(keys, ["-3", "-2", "-1", "0", "1"]);
        assert_eq!(
            synthetic_records(1, 0.7, 0, 0).take(10_000).count(),
            10_000,
            "0 = no end"
        );
        assert_eq!(synthetic_records(1, 0.7, 0, 1).count(), 1);
    }

    #[test]
    fn records_look_like_the_originals() {
        let record = synthetic_records(3, 0.7, 4, 1).next().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&record.encode()).unwrap();
        assert_eq!(value["id"], 4);
        assert_eq!(
            value["data"].as_array().unwrap().len(),
            1,
            "nested: [[x, y]]"
        );
        assert_eq!(value["data"][0].as_array().unwrap().len(), 2);
        let time = value["current_time"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.6f").is_ok(),
            "naive UTC with microseconds, as Python's isoformat(): {time}"
        );
    }

    #[test]
    fn the_mix_of_outliers_and_clusters_is_the_originals() {
        let n = 20_000;
        let points = features(synthetic_records(7, 0.7, 0, n));
        let mut near = [0usize; 2];
        for point in &points {
            assert!(point
                .iter()
                .all(|v| v.abs() <= 4.0 || (v.abs() - 2.0).abs() < 2.5));
            assert!(
                point
                    .iter()
                    .all(|v| (v * 1000.0 - (v * 1000.0).round()).abs() < 1e-6),
                "3 decimals: {point:?}"
            );
            for (slot, centre) in [2.0, -2.0].into_iter().enumerate() {
                if (point[0] - centre).hypot(point[1] - centre) < 0.3 * 3.0 {
                    near[slot] += 1;
                }
            }
        }
        // Cluster points (30%, split evenly) fall within 3σ of their centre 98.9% of the
        // time; outliers (70%, uniform over an 8×8 square) land in a radius-0.9 disc
        // π·0.81/64 = 4% of the time.
        let expected = n as f64 * (0.15 * 0.989 + 0.7 * std::f64::consts::PI * 0.81 / 64.0);
        for count in near {
            let count = count as f64;
            assert!(
                (count - expected).abs() < expected * 0.08,
                "{count} vs {expected}"
            );
        }
        let all_outliers = features(synthetic_records(7, 1.0, 0, 5000));
        assert!(all_outliers
            .iter()
            .all(|p| p.iter().all(|v| (-4.0..=4.0).contains(v))));
        let clusters = features(synthetic_records(7, 0.0, 0, 5000));
        let mean_abs = clusters.iter().map(|p| p[0].abs()).sum::<f64>() / 5000.0;
        assert!((mean_abs - 2.0).abs() < 0.05, "{mean_abs}");
        let same_sign = clusters
            .iter()
            .filter(|p| p[0].signum() == p[1].signum())
            .count();
        assert!(same_sign > 4950, "x and y share their cluster: {same_sign}");
    }

    #[test]
    fn a_shift_moves_the_clusters_from_its_point_on_and_leaves_the_rest() {
        let shift = Shift {
            by: [4.0, -3.0],
            after: 500,
        };
        let plain = features(synthetic_records(9, 0.0, 0, 1000));
        let moved = features(shifted_synthetic_records(9, 0.0, 0, 1000, shift));
        assert_eq!(
            plain[..500],
            moved[..500],
            "before the shift: the original stream"
        );
        for (before, after) in plain[500..].iter().zip(&moved[500..]) {
            assert!(
                (after[0] - before[0] - 4.0).abs() < 1.5e-3,
                "{before:?} {after:?}"
            );
            assert!(
                (after[1] - before[1] + 3.0).abs() < 1.5e-3,
                "{before:?} {after:?}"
            );
        }
        // Outliers do not move: with only outliers the streams are the same.
        assert_eq!(
            features(synthetic_records(9, 1.0, 0, 300)),
            features(shifted_synthetic_records(9, 1.0, 0, 300, shift))
        );
    }

    #[test]
    fn rounding_is_numpys() {
        assert_eq!(round3(2.3915), 2.392);
        assert_eq!(round3(-1.2204), -1.22);
        assert_eq!(round3(0.0005), 0.0, "half to even");
        assert_eq!(round3(0.0015), 0.002, "half to even");
    }

    #[test]
    fn synthetic_data_is_two_rounded_clusters_and_repeats_per_seed() {
        let table = synthetic_training_data(42);
        assert_eq!(table.rows(), 1000);
        assert_eq!(table, synthetic_training_data(42));
        assert_ne!(table, synthetic_training_data(43));
        let (upper, lower) = table.data.split_at(1000);
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean(upper) - 2.0).abs() < 0.05 && (mean(lower) + 2.0).abs() < 0.05);
        for value in &table.data {
            assert!(((value * 1000.0).round() - value * 1000.0).abs() < 1e-6);
        }
    }
}
