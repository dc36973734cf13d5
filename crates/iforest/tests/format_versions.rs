//! Model files of each format version, checked in: they must keep loading and scoring exactly
//! as they did when they were written (`tests/fixtures/v<N>-*.scores`, the bits of each score
//! in hex, one per line), and the same data, seed and parameters must keep writing the
//! newest version's bytes.
//!
//! - `v1-*`: written by the crate at commit a46c0da (before the range check).
//! - `v2-*`: range-aware, with metadata; written when format version 2 was introduced.

use iforest::{
    Contamination, IsolationForest, IsolationForestParams, RangeCheck, SplitRule, FORMAT_VERSION,
};
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

/// The parameters the fixtures were fitted with (version 1 had no range check, which is the
/// same trees scored without it).
fn params(rule: SplitRule, range_check: RangeCheck) -> IsolationForestParams {
    IsolationForestParams::new()
        .n_trees(8)
        .sample_size(32)
        .seed(5)
        .split_rule(rule)
        .contamination(Contamination::Fraction(0.05))
        .feature_names(vec!["amount".into(), "hour".into(), "rate".into()])
        .range_check(range_check)
}

/// Version 2's fixtures: range-aware, with metadata.
fn version_2_model(rule: SplitRule) -> IsolationForest {
    params(rule, RangeCheck::On)
        .fit(&training_data(), 3)
        .unwrap()
        .with_metadata(
            "features",
            r#"[{"name":"amount"},{"name":"hour"},{"name":"rate"}]"#,
        )
        .with_metadata("source", "tests/format_versions.rs")
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

fn fixture(version: u32, name: &str, extension: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("v{version}-{name}.{extension}"))
}

fn expected_scores(version: u32, name: &str) -> Vec<f64> {
    std::fs::read_to_string(fixture(version, name, "scores"))
        .unwrap()
        .lines()
        .map(|line| f64::from_bits(u64::from_str_radix(line, 16).unwrap()))
        .collect()
}

/// The fixture of `version` loads, and scores every row with the bits it was written with,
/// in a batch and one row at a time.
fn loads_and_scores_as_written(version: u32, name: &str) -> IsolationForest {
    let model = IsolationForest::load(fixture(version, name, "bin")).unwrap();
    assert_eq!(model.feature_names().unwrap(), ["amount", "hour", "rate"]);
    let rows = scored_rows();
    let expected = expected_scores(version, name);
    assert_eq!(
        model.score_batch(&rows).unwrap(),
        expected,
        "v{version} {name}"
    );
    for (row, expected) in rows.chunks_exact(3).zip(&expected) {
        assert_eq!(model.score(row).unwrap(), *expected, "v{version} {name}");
    }
    model
}

#[test]
fn version_1_files_load_range_unaware_and_score_as_when_they_were_written() {
    for (name, rule) in RULES {
        let model = loads_and_scores_as_written(1, name);
        assert_eq!(model.params().split_rule(), rule);
        assert_eq!(model.params().range_check(), RangeCheck::Off);
        assert!(model.metadata().is_empty());
        // Saved again (as the newest version), it is the same model as a fit today.
        let today = params(rule, RangeCheck::Off)
            .fit(&training_data(), 3)
            .unwrap();
        assert!(model.to_bytes() == today.to_bytes(), "{name}");
    }
}

#[test]
fn version_2_files_load_and_score_as_when_they_were_written() {
    for (name, rule) in RULES {
        let model = loads_and_scores_as_written(2, name);
        assert_eq!(model.params().split_rule(), rule);
        assert_eq!(model.params().range_check(), RangeCheck::On);
        assert_eq!(
            model.metadata().get("source").map(String::as_str),
            Some("tests/format_versions.rs")
        );
        assert_eq!(model, version_2_model(rule));
    }
}

#[test]
fn the_same_data_seed_and_parameters_still_write_the_newest_bytes() {
    assert_eq!(FORMAT_VERSION, 2, "add fixtures for the new version");
    for (name, rule) in RULES {
        let written = std::fs::read(fixture(2, name, "bin")).unwrap();
        assert!(
            version_2_model(rule).to_bytes() == written,
            "{name}: the model file changed"
        );
    }
}

/// Writes a fixture file that does not exist yet (never overwrites one).
fn write_new(path: std::path::PathBuf, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap_or_else(|error| {
            panic!("{}: {error} (fixtures are never rewritten)", path.display())
        });
    file.write_all(bytes).unwrap();
}

#[test]
#[ignore = "writes the newest version's fixtures when they are missing"]
fn write_newest_fixtures() {
    for (name, rule) in RULES {
        let model = version_2_model(rule);
        write_new(fixture(2, name, "bin"), &model.to_bytes());
        let scores: String = model
            .score_batch(&scored_rows())
            .unwrap()
            .iter()
            .map(|score| format!("{:016x}\n", score.to_bits()))
            .collect();
        write_new(fixture(2, name, "scores"), scores.as_bytes());
    }
}
