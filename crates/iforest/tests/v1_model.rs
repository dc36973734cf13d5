//! Model files of format version 1, written by the crate at commit a46c0da and checked in
//! (`tests/fixtures/v1-*.bin`): they must keep loading, and score exactly as they did then
//! (`tests/fixtures/v1-*.scores`, the bits of each score in hex, one per line).

use iforest::{Contamination, IsolationForest, IsolationForestParams, SplitRule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The fixtures' training data: 300 rows of three N(0, 1) features.
fn training_data() -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    (0..900).map(|_| rng.sample(StandardNormal)).collect()
}

/// The rows the fixtures' scores were taken on: the training rows, then rows far outside.
fn scored_rows() -> Vec<f64> {
    let mut rows = training_data();
    rows.extend([
        5.0, 0.0, 0.0, -5.0, 5.0, -5.0, 0.0, 0.0, 40.0, 1e6, -1e6, 0.5,
    ]);
    rows
}

/// The parameters the fixtures were fitted with.
fn params(rule: SplitRule) -> IsolationForestParams {
    IsolationForestParams::new()
        .n_trees(8)
        .sample_size(32)
        .seed(5)
        .split_rule(rule)
        .contamination(Contamination::Fraction(0.05))
        .feature_names(vec!["amount".into(), "hour".into(), "rate".into()])
}

const RULES: [(&str, SplitRule); 2] = [
    ("axis", SplitRule::Axis),
    (
        "extended",
        SplitRule::Extended {
            extension_level: None,
        },
    ),
];

fn fixture(name: &str, extension: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("v1-{name}.{extension}"))
}

fn expected_scores(name: &str) -> Vec<f64> {
    std::fs::read_to_string(fixture(name, "scores"))
        .unwrap()
        .lines()
        .map(|line| f64::from_bits(u64::from_str_radix(line, 16).unwrap()))
        .collect()
}

#[test]
fn version_1_files_load_and_score_as_when_they_were_written() {
    for (name, rule) in RULES {
        let model = IsolationForest::load(fixture(name, "bin")).unwrap();
        assert_eq!(model.params().split_rule(), rule);
        assert_eq!(model.feature_names().unwrap(), ["amount", "hour", "rate"]);
        let rows = scored_rows();
        let expected = expected_scores(name);
        assert_eq!(model.score_batch(&rows).unwrap(), expected, "{name}");
        for (row, expected) in rows.chunks_exact(3).zip(&expected) {
            assert_eq!(model.score(row).unwrap(), *expected, "{name}");
        }
    }
}

#[test]
fn the_same_data_and_seed_still_write_the_version_1_bytes() {
    for (name, rule) in RULES {
        let model = params(rule).fit(&training_data(), 3).unwrap();
        let written = std::fs::read(fixture(name, "bin")).unwrap();
        assert!(
            model.to_bytes() == written,
            "{name}: the model file changed"
        );
    }
}
