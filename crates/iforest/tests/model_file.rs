//! The model file: round trip, atomic save, and damaged files refused with a typed error.

use iforest::{
    model_id, IsolationForest, IsolationForestParams, ModelError, RangeCheck, SplitRule,
    FORMAT_VERSION,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn model(rule: SplitRule) -> IsolationForest {
    model_with(rule, RangeCheck::On)
}

fn model_with(rule: SplitRule, range_check: RangeCheck) -> IsolationForest {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let data: Vec<f64> = (0..600).map(|_| rng.sample(StandardNormal)).collect();
    IsolationForestParams::new()
        .n_trees(20)
        .sample_size(64)
        .split_rule(rule)
        .range_check(range_check)
        .feature_names(vec!["a".into(), "b".into(), "c".into()])
        .fit(&data, 3)
        .unwrap()
        .with_metadata("features", "[1, 2, 3]")
}

/// Every kind of model the file holds: axis and extended, with and without the range check.
fn every_kind() -> Vec<IsolationForest> {
    let extended = SplitRule::Extended {
        extension_level: None,
    };
    [SplitRule::Axis, extended]
        .into_iter()
        .flat_map(|rule| [RangeCheck::Off, RangeCheck::On].map(|check| model_with(rule, check)))
        .collect()
}

#[test]
fn a_saved_model_loads_and_scores_identically() {
    for original in every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        original.save(&path).unwrap();
        let loaded = IsolationForest::load(&path).unwrap();
        assert_eq!(loaded, original);
        let rows = [0.1, 0.2, 0.3, 5.0, -5.0, 5.0];
        assert_eq!(
            loaded.score_batch(&rows).unwrap(),
            original.score_batch(&rows).unwrap()
        );
        assert_eq!(loaded.feature_names().unwrap(), ["a", "b", "c"]);
        assert_eq!(loaded.metadata(), original.metadata());
        // Nothing but the model is left in the folder (the temporary file was renamed).
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            model_id(&std::fs::read(&path).unwrap()),
            model_id(&original.to_bytes())
        );
    }
}

#[test]
fn each_kind_of_damage_is_named() {
    let bytes = model(SplitRule::Axis).to_bytes();
    assert!(matches!(
        IsolationForest::from_bytes(b"hello world, not a model"),
        Err(ModelError::NotAModelFile)
    ));
    assert!(matches!(
        IsolationForest::from_bytes(&bytes[..bytes.len() - 1]),
        Err(ModelError::Truncated)
    ));
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        IsolationForest::from_bytes(&newer),
        Err(ModelError::UnsupportedVersion { found, supported }) if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION
    ));
    let mut flipped = bytes.clone();
    let middle = bytes.len() / 2;
    flipped[middle] ^= 0x10;
    assert!(matches!(
        IsolationForest::from_bytes(&flipped),
        Err(ModelError::ChecksumMismatch)
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        IsolationForest::from_bytes(&longer),
        Err(ModelError::Corrupt(_))
    ));
    let missing = IsolationForest::load("/nonexistent/model.bin").unwrap_err();
    assert!(matches!(missing, ModelError::Io { .. }));
    assert!(
        missing.to_string().contains("/nonexistent/model.bin"),
        "{missing}"
    );
    let wrong_width = model(SplitRule::Axis).check_feature_count(2).unwrap_err();
    assert!(matches!(
        wrong_width,
        ModelError::FeatureCount {
            expected: 3,
            found: 2
        }
    ));
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for model in every_kind() {
        let bytes = model.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                IsolationForest::from_bytes(&bytes[..len]).is_err(),
                "prefix of {len} bytes loaded"
            );
        }
    }
}

#[test]
fn a_thousand_random_bit_flips_are_errors_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for model in every_kind() {
        let bytes = model.to_bytes();
        for _ in 0..1000 {
            let mut damaged = bytes.clone();
            let bit = rng.random_range(0..damaged.len() * 8);
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                IsolationForest::from_bytes(&damaged).is_err(),
                "bit {bit} flipped and it loaded"
            );
        }
    }
}

#[test]
fn a_structurally_broken_body_with_a_valid_checksum_is_refused() {
    // Rewrite the body with random bytes and a correct checksum: decoding or validation must
    // catch it (the checksum alone would not).
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for bytes in every_kind().iter().map(IsolationForest::to_bytes) {
        forge_bodies(&bytes, &mut rng);
    }
}

/// 200 forgeries of a model file's body, each with a valid checksum.
fn forge_bodies(bytes: &[u8], rng: &mut ChaCha8Rng) {
    for _ in 0..200 {
        let mut forged = bytes[..bytes.len() - 8].to_vec();
        let start = 20 + rng.random_range(0..forged.len() - 20);
        for byte in &mut forged[start..(start + 8).min(bytes.len() - 8)] {
            *byte = rng.random();
        }
        let checksum = fnv1a(&forged);
        forged.extend_from_slice(&checksum.to_le_bytes());
        // Either an error, or (if the bytes happened to be harmless) a model that scores.
        if let Ok(model) = IsolationForest::from_bytes(&forged) {
            let _ = model.score_batch(&[0.0, 0.0, 0.0]);
            let _ = model.explain(&[0.0, 0.0, 0.0]);
        }
    }
}

/// The model file's FNV-1a checksum, for forging files whose checksum is right.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn a_forged_huge_length_is_refused_without_allocating_it() {
    let bytes = model(SplitRule::Axis).to_bytes();
    let body = &bytes[20..bytes.len() - 8];
    // Strings in the body (bincode varints): the feature names (Some, 3 names, "a", "b",
    // "c"), whose name "a" gets the forged length, and the metadata key "features".
    let names: &[u8] = &[1, 3, 1, b'a', 1, b'b', 1, b'c'];
    let key: &[u8] = &[8, b'f', b'e', b'a', b't', b'u', b'r', b'e', b's'];
    for (pattern, length_at) in [(names, 2), (key, 0)] {
        let at = body
            .windows(pattern.len())
            .position(|window| window == pattern)
            .expect("the string in the body")
            + length_at;
        for huge in [1u64 << 31, 1 << 40, u64::MAX] {
            // The string now claims `huge` bytes: varint marker 253, then a u64.
            let mut forged_body = body[..at].to_vec();
            forged_body.push(253);
            forged_body.extend_from_slice(&huge.to_le_bytes());
            forged_body.extend_from_slice(&body[at + 1..]);
            let mut forged = bytes[..12].to_vec();
            forged.extend_from_slice(&(forged_body.len() as u64).to_le_bytes());
            forged.extend_from_slice(&forged_body);
            let checksum = fnv1a(&forged);
            forged.extend_from_slice(&checksum.to_le_bytes());
            assert!(matches!(
                IsolationForest::from_bytes(&forged),
                Err(ModelError::Corrupt(_))
            ));
        }
    }
}

#[test]
fn damaged_version_1_files_are_errors_never_panics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1-axis.bin");
    let bytes = std::fs::read(path).unwrap();
    assert!(IsolationForest::from_bytes(&bytes).is_ok());
    for len in 0..bytes.len() {
        assert!(IsolationForest::from_bytes(&bytes[..len]).is_err());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..1000 {
        let mut damaged = bytes.clone();
        let bit = rng.random_range(0..damaged.len() * 8);
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(IsolationForest::from_bytes(&damaged).is_err(), "bit {bit}");
    }
    forge_bodies(&bytes, &mut rng);
}

#[test]
fn metadata_is_set_saved_loaded_and_part_of_the_model_id() {
    let mut model = model(SplitRule::Axis);
    assert_eq!(model.metadata().len(), 1);
    let before = model_id(&model.to_bytes());
    assert_eq!(model.set_metadata("source", "test"), None);
    assert_eq!(
        model.set_metadata("source", "again").as_deref(),
        Some("test")
    );
    let model = model.with_metadata("spec", "{\"a\": 1}");
    assert!(model_id(&model.to_bytes()) != before);
    let loaded = IsolationForest::from_bytes(&model.to_bytes()).unwrap();
    let entries: Vec<_> = loaded
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("features", "[1, 2, 3]"),
            ("source", "again"),
            ("spec", "{\"a\": 1}")
        ]
    );
    let mut loaded = loaded;
    assert_eq!(
        loaded.remove_metadata("spec").as_deref(),
        Some("{\"a\": 1}")
    );
    assert_eq!(loaded.metadata().len(), 2);
    // Metadata does not change scores.
    assert_eq!(
        loaded.score_batch(&[0.1, 0.2, 0.3]).unwrap(),
        model.score_batch(&[0.1, 0.2, 0.3]).unwrap()
    );
}
