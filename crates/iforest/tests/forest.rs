//! Behaviour of the forest: scores, thresholds, determinism, errors, explanations.

use iforest::{
    average_path_length, Contamination, Direction, FitError, IsolationForest,
    IsolationForestParams, ParamsError, RangeCheck, ScoreError, SplitRule,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The original pipeline's training data: 0.3·N(0, 1) around (2, 2) and (−2, −2).
fn two_clusters(points_per_cluster: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::new();
    for centre in [2.0, -2.0] {
        for _ in 0..points_per_cluster * 2 {
            let noise: f64 = rng.sample(StandardNormal);
            data.push(centre + 0.3 * noise);
        }
    }
    data
}

/// `features` independent N(0, 1) columns.
fn gaussian(rows: usize, features: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * features)
        .map(|_| rng.sample(StandardNormal))
        .collect()
}

#[test]
fn average_path_length_matches_the_paper() {
    assert!(
        (average_path_length(256) - 10.2448).abs() < 1e-4,
        "{}",
        average_path_length(256)
    );
    assert_eq!(average_path_length(1), 0.0);
    assert_eq!(average_path_length(2), 1.0);
}

#[test]
fn cluster_points_score_below_one_half_and_far_points_above() {
    for rule in [
        SplitRule::Axis,
        SplitRule::Extended {
            extension_level: None,
        },
    ] {
        let model = IsolationForestParams::new()
            .split_rule(rule)
            .seed(1)
            .fit(&two_clusters(500, 1), 2)
            .unwrap();
        for inside in [[2.0, 2.0], [-2.0, -2.0], [2.1, 1.9]] {
            let score = model.score(&inside).unwrap();
            assert!(score < 0.5, "{rule}: {inside:?} scored {score}");
        }
        for far in [[4.0, -4.0], [0.0, 0.0], [-3.9, 3.9]] {
            let score = model.score(&far).unwrap();
            assert!(score > 0.5, "{rule}: {far:?} scored {score}");
            assert!(model.predict(&far).unwrap());
        }
    }
}

#[test]
fn batch_and_single_row_scores_are_identical() {
    let data = gaussian(1000, 3, 2);
    let model = IsolationForestParams::new().seed(3).fit(&data, 3).unwrap();
    let batch = model.score_batch(&data).unwrap();
    for (row, score) in data.chunks(3).zip(&batch) {
        assert_eq!(model.score(row).unwrap(), *score);
        assert!(*score > 0.0 && *score <= 1.0);
    }
}

#[test]
fn parallel_batch_scores_are_identical_to_one_thread() {
    let data = gaussian(5000, 3, 11);
    let model = IsolationForestParams::new().fit(&data, 3).unwrap();
    let one = model.score_batch(&data).unwrap();
    for threads in [0, 1, 2, 3, 7] {
        let mut many = vec![0.0; one.len()];
        model
            .score_batch_into_parallel(&data, &mut many, threads)
            .unwrap();
        assert_eq!(many, one, "{threads} threads");
    }
    let mut short = vec![0.0; 10];
    assert!(matches!(
        model.score_batch_into_parallel(&data, &mut short, 2),
        Err(ScoreError::OutputLength { .. })
    ));
}

#[test]
fn same_seed_same_model_on_any_number_of_threads() {
    let data = gaussian(2000, 4, 4);
    let extended = SplitRule::Extended {
        extension_level: None,
    };
    for (rule, check) in [SplitRule::Axis, extended]
        .into_iter()
        .flat_map(|rule| [(rule, RangeCheck::Off), (rule, RangeCheck::On)])
    {
        let fit = |threads| {
            IsolationForestParams::new()
                .seed(9)
                .split_rule(rule)
                .range_check(check)
                .contamination(Contamination::Fraction(0.05))
                .threads(threads)
                .fit(&data, 4)
                .unwrap()
        };
        let one = fit(1);
        for threads in [2, 3, 0] {
            let many = fit(threads);
            assert!(
                one.to_bytes() == many.to_bytes(),
                "{threads} threads, {rule}, range check {check}"
            );
            assert_eq!(one.score_batch(&data), many.score_batch(&data));
        }
    }
    let one = IsolationForestParams::new()
        .seed(9)
        .fit(&data, 4)
        .unwrap()
        .to_bytes();
    let other_seed = IsolationForestParams::new()
        .seed(10)
        .fit(&data, 4)
        .unwrap()
        .to_bytes();
    assert!(one != other_seed);
}

#[test]
fn contamination_one_percent_flags_about_one_percent_of_training_rows() {
    let data = two_clusters(500, 5);
    let model = IsolationForestParams::new()
        .n_trees(50)
        .sample_size(500)
        .contamination(Contamination::Fraction(0.01))
        .seed(42)
        .fit(&data, 2)
        .unwrap();
    let flagged = model
        .score_batch(&data)
        .unwrap()
        .iter()
        .filter(|&&s| s > model.threshold())
        .count();
    assert!((8..=12).contains(&flagged), "{flagged} of 1000 flagged");
    let auto = IsolationForestParams::new().seed(42).fit(&data, 2).unwrap();
    assert_eq!(auto.threshold(), 0.5);
}

#[test]
fn sample_size_is_capped_at_the_row_count() {
    let model = IsolationForestParams::new()
        .sample_size(10_000)
        .fit(&gaussian(100, 2, 6), 2)
        .unwrap();
    assert_eq!(model.sample_size(), 100);
    assert_eq!(model.training_rows(), 100);
}

#[test]
fn training_summary_is_kept() {
    let data = [1.0, 10.0, 3.0, 20.0];
    let model = IsolationForestParams::new().fit(&data, 2).unwrap();
    let summary = model.summary();
    assert_eq!(
        (
            summary[0].min,
            summary[0].max,
            summary[0].mean,
            summary[0].std_dev
        ),
        (1.0, 3.0, 2.0, 1.0)
    );
    assert_eq!(
        (summary[1].min, summary[1].max, summary[1].mean),
        (10.0, 20.0, 15.0)
    );
    // The public summary function computes exactly what the model keeps.
    let data = gaussian(1000, 3, 13);
    let model = IsolationForestParams::new().fit(&data, 3).unwrap();
    assert_eq!(model.summary(), iforest::summarise(&data, 3));
}

#[test]
fn empty_data_is_an_error() {
    let result = IsolationForestParams::new().fit(&[], 2);
    assert_eq!(result.unwrap_err(), FitError::EmptyData);
    let rows: Vec<Vec<f64>> = vec![];
    assert_eq!(
        IsolationForestParams::new().fit_rows(&rows).unwrap_err(),
        FitError::EmptyData
    );
}

#[test]
fn zero_features_is_an_error() {
    assert_eq!(
        IsolationForestParams::new().fit(&[1.0], 0).unwrap_err(),
        FitError::NoFeatures
    );
}

#[test]
fn ragged_rows_are_an_error() {
    let rows = vec![vec![1.0, 2.0], vec![3.0]];
    assert_eq!(
        IsolationForestParams::new().fit_rows(&rows).unwrap_err(),
        FitError::RaggedRow {
            row: 1,
            expected: 2,
            found: 1
        }
    );
    assert!(matches!(
        IsolationForestParams::new().fit(&[1.0, 2.0, 3.0], 2),
        Err(FitError::DataLength {
            len: 3,
            n_features: 2
        })
    ));
}

#[test]
fn nan_or_infinite_training_values_are_an_error() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let result = IsolationForestParams::new().fit(&[1.0, 2.0, 3.0, bad], 2);
        assert_eq!(
            result.unwrap_err(),
            FitError::NonFinite { row: 1, feature: 1 }
        );
    }
}

#[test]
fn invalid_params_are_an_error_before_any_work() {
    let result = IsolationForestParams::new().n_trees(0).fit(&[1.0], 1);
    assert!(matches!(result, Err(FitError::InvalidParams(_))));
}

#[test]
fn feature_names_must_match_the_features() {
    let result = IsolationForestParams::new()
        .feature_names(vec!["a".into()])
        .fit(&[1.0, 2.0], 2);
    assert_eq!(
        result.unwrap_err(),
        FitError::FeatureNamesLength {
            names: 1,
            n_features: 2
        }
    );
}

#[test]
fn extension_level_must_be_below_the_feature_count() {
    let rule = SplitRule::Extended {
        extension_level: Some(2),
    };
    let result = IsolationForestParams::new()
        .split_rule(rule)
        .fit(&[1.0, 2.0], 2);
    assert_eq!(
        result.unwrap_err(),
        FitError::InvalidParams(ParamsError::ExtensionLevel {
            level: 2,
            n_features: 2
        })
    );
}

#[test]
fn scoring_errors_are_typed() {
    let model = IsolationForestParams::new()
        .fit(&gaussian(100, 2, 7), 2)
        .unwrap();
    assert_eq!(
        model.score(&[1.0]).unwrap_err(),
        ScoreError::WrongFeatureCount {
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        model.score(&[1.0, f64::NAN]).unwrap_err(),
        ScoreError::NonFinite { row: 0, feature: 1 }
    );
    assert_eq!(
        model.score_batch(&[1.0, 2.0, 3.0]).unwrap_err(),
        ScoreError::DataLength {
            len: 3,
            n_features: 2
        }
    );
    assert_eq!(
        model
            .score_batch(&[1.0, 2.0, f64::INFINITY, 0.0])
            .unwrap_err(),
        ScoreError::NonFinite { row: 1, feature: 0 }
    );
    let mut out = [0.0; 3];
    assert_eq!(
        model.score_batch_into(&[1.0, 2.0], &mut out).unwrap_err(),
        ScoreError::OutputLength {
            expected: 1,
            found: 3
        }
    );
    assert!(model.check_feature_count(3).is_err());
    assert!(model.check_feature_count(2).is_ok());
}

#[test]
fn constant_data_fits_and_scores() {
    let model = IsolationForestParams::new().fit(&[5.0; 40], 2).unwrap();
    let same = model.score(&[5.0, 5.0]).unwrap();
    assert!(same.is_finite() && same > 0.0);
    let single = IsolationForestParams::new().fit(&[1.0, 2.0], 2).unwrap();
    assert!(single.score(&[1.0, 2.0]).unwrap().is_finite());
}

/// A point normal in every feature but one gets its largest share on that feature, in the
/// right direction.
#[test]
fn explanation_points_at_the_abnormal_feature_and_its_direction() {
    let features = 5;
    let names: Vec<String> = (0..features).map(|i| format!("f{i}")).collect();
    for rule in [
        SplitRule::Axis,
        SplitRule::Extended {
            extension_level: Some(1),
        },
    ] {
        let model = IsolationForestParams::new()
            .split_rule(rule)
            .feature_names(names.clone())
            .seed(11)
            .fit(&gaussian(2000, features, 8), features)
            .unwrap();
        for (feature, value, direction) in [(3, 6.0, Direction::High), (1, -6.0, Direction::Low)] {
            let mut point = vec![0.1; features];
            point[feature] = value;
            let explanation = model.explain(&point).unwrap();
            let top = &explanation.contributions[0];
            assert_eq!(top.feature, feature, "{rule}: {explanation:?}");
            assert_eq!(top.direction, direction, "{rule}: {explanation:?}");
            assert_eq!(top.name.as_deref(), Some(names[feature].as_str()));
            assert!(top.share > 0.3, "{rule}: {explanation:?}");
            let total: f64 = explanation.contributions.iter().map(|c| c.share).sum();
            assert!((total - 1.0).abs() < 1e-9);
            assert!(explanation.contributions.iter().all(|c| c.share >= 0.0));
            assert_eq!(explanation.score, model.score(&point).unwrap());
        }
    }
}

#[test]
fn the_extended_forest_has_no_axis_artefacts_where_the_axis_forest_does() {
    // Two clusters on the diagonal: the axis forest scores the off-diagonal corners (2, −2)
    // and (−2, 2) lower than they deserve (its "ghost clusters"); the extended one does not.
    let data = two_clusters(500, 12);
    let axis = IsolationForestParams::new().seed(1).fit(&data, 2).unwrap();
    let extended = IsolationForestParams::new()
        .seed(1)
        .split_rule(SplitRule::Extended {
            extension_level: None,
        })
        .fit(&data, 2)
        .unwrap();
    let ghost = [2.0, -2.0];
    let centre = [2.0, 2.0];
    let contrast =
        |model: &IsolationForest| model.score(&ghost).unwrap() - model.score(&centre).unwrap();
    assert!(
        contrast(&extended) > contrast(&axis),
        "{} vs {}",
        contrast(&extended),
        contrast(&axis)
    );
}

#[test]
fn models_are_send_sync_and_unpin() {
    fn has_autotraits<T: Send + Sync + Sized + Unpin>() {}
    has_autotraits::<IsolationForest>();
    has_autotraits::<IsolationForestParams>();
    has_autotraits::<iforest::ValidParams>();
    has_autotraits::<FitError>();
    has_autotraits::<ScoreError>();
    has_autotraits::<iforest::ModelError>();
    has_autotraits::<iforest::ParamsError>();
    has_autotraits::<iforest::Explanation>();
}

#[test]
fn a_forest_too_large_for_u32_indices_is_an_error() {
    let result = IsolationForestParams::new()
        .n_trees(1 << 31)
        .fit(&[0.0, 1.0, 2.0], 1);
    assert_eq!(
        result.unwrap_err(),
        FitError::TooLarge {
            n_trees: 1 << 31,
            sample_size: 3
        }
    );
}
