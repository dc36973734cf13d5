//! Range-aware isolation: values outside a split's training range end their path there.

use iforest::{Direction, IsolationForestParams, RangeCheck, SplitRule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const EXTENDED: SplitRule = SplitRule::Extended {
    extension_level: None,
};

/// Events of three features: an amount, N(0, 1); an hour, uniform in 8..20; a count, N(5, 1).
fn events(rows: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows)
        .flat_map(|_| {
            let amount: f64 = rng.sample(StandardNormal);
            let count: f64 = rng.sample(StandardNormal);
            [amount, rng.random_range(8.0..20.0), 5.0 + count]
        })
        .collect()
}

#[test]
fn a_value_beyond_the_training_range_is_isolated_sooner_with_the_check() {
    let data = events(2000, 1);
    for rule in [SplitRule::Axis, EXTENDED] {
        let fit = |check| {
            IsolationForestParams::new()
                .seed(3)
                .split_rule(rule)
                .range_check(check)
                .fit(&data, 3)
                .unwrap()
        };
        let (off, on) = (fit(RangeCheck::Off), fit(RangeCheck::On));
        // Without the check, 3 a.m. is (axis-parallel splits) no more isolated than the
        // earliest training hour; with it, the hour ends paths early.
        let night = [0.0, 3.0, 5.0];
        let earliest = [0.0, 8.0, 5.0];
        let score = |model: &iforest::IsolationForest, row: &[f64]| model.score(row).unwrap();
        let (night_off, night_on) = (score(&off, &night), score(&on, &night));
        let (earliest_off, earliest_on) = (score(&off, &earliest), score(&on, &earliest));
        let scores =
            format!("{rule}: night {night_off} → {night_on}, 8 h {earliest_off} → {earliest_on}");
        assert!(night_on > night_off + 0.05, "{scores}");
        assert!(night_on > earliest_on + 0.05, "{scores}");
        if rule == SplitRule::Axis {
            assert_eq!(night_off, earliest_off, "{scores}");
        }
        // Far past the largest amount: the farther, the more it stands out with the check.
        let huge = [50.0, 14.0, 5.0];
        assert!(
            on.score(&huge).unwrap() > off.score(&huge).unwrap(),
            "{rule}"
        );
    }
}

#[test]
fn rows_inside_every_range_score_as_without_the_check() {
    // With every row in every tree's sample, each training row lies inside the range of
    // each split on its path, so the check never ends its path.
    let data = events(200, 2);
    for rule in [SplitRule::Axis, EXTENDED] {
        let fit = |check| {
            IsolationForestParams::new()
                .sample_size(200)
                .split_rule(rule)
                .range_check(check)
                .fit(&data, 3)
                .unwrap()
        };
        let (off, on) = (fit(RangeCheck::Off), fit(RangeCheck::On));
        assert_eq!(
            on.score_batch(&data).unwrap(),
            off.score_batch(&data).unwrap(),
            "{rule}"
        );
    }
}

#[test]
fn the_check_does_not_change_the_trees_only_how_rows_walk_them() {
    let data = events(1000, 3);
    let fit = |check| {
        IsolationForestParams::new()
            .range_check(check)
            .fit(&data, 3)
            .unwrap()
    };
    let (off, on) = (fit(RangeCheck::Off), fit(RangeCheck::On));
    assert_eq!(off.n_trees(), on.n_trees());
    // The file of a range-aware model holds 16 more bytes (min, max) per node.
    let nodes = (on.to_bytes().len() - off.to_bytes().len()) as f64 / 16.0;
    assert!(nodes > 1000.0, "{nodes}");
}

#[test]
fn range_aware_scores_are_the_same_single_row_batch_and_parallel() {
    let data = events(3000, 4);
    let mut rows = events(500, 5);
    rows.extend([0.0, 3.0, 5.0, 40.0, 14.0, 5.0, -40.0, 25.0, -3.0]);
    for rule in [SplitRule::Axis, EXTENDED] {
        let model = IsolationForestParams::new()
            .split_rule(rule)
            .range_check(RangeCheck::On)
            .fit(&data, 3)
            .unwrap();
        let batch = model.score_batch(&rows).unwrap();
        for (row, score) in rows.chunks_exact(3).zip(&batch) {
            assert_eq!(model.score(row).unwrap(), *score, "{rule}");
        }
        let mut parallel = vec![0.0; batch.len()];
        model
            .score_batch_into_parallel(&rows, &mut parallel, 3)
            .unwrap();
        assert_eq!(parallel, batch, "{rule}");
    }
}

#[test]
fn the_explanation_names_the_feature_out_of_range_and_its_side() {
    let data = events(2000, 6);
    let model = IsolationForestParams::new()
        .seed(1)
        .range_check(RangeCheck::On)
        .feature_names(vec!["amount".into(), "hour".into(), "count".into()])
        .fit(&data, 3)
        .unwrap();
    let why = model.explain(&[0.1, 2.0, 5.0]).unwrap();
    assert_eq!(
        why.contributions[0].name.as_deref(),
        Some("hour"),
        "{why:?}"
    );
    assert_eq!(why.contributions[0].direction, Direction::Low, "{why:?}");
    assert!(why.contributions[0].share > 0.4, "{why:?}");
    let why = model.explain(&[0.1, 14.0, 30.0]).unwrap();
    assert_eq!(
        why.contributions[0].name.as_deref(),
        Some("count"),
        "{why:?}"
    );
    assert_eq!(why.contributions[0].direction, Direction::High, "{why:?}");
    let total: f64 = why.contributions.iter().map(|c| c.share).sum();
    assert!((total - 1.0).abs() < 1e-9);
}
