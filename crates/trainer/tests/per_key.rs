//! The trainer binary with per-key features on JSON-lines files: `fit` learns them with the
//! settings given and keeps them in the model, `show` lists them, `score --rows` gives the
//! rows the `features` library gives reading the file as a partition (each key's records in
//! line order), bit for bit, and requests that cannot work are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dataset::PaymentsParams;
use features::{FeatureParams, Features, NamedFeatures, RecordMeta, Span, StateStore};
use iforest::IsolationForest;
use serde_json::Value;

const TRAINER: &str = env!("CARGO_BIN_EXE_trainer");
const FEATURES: &str = "amount:log,ts:hour,amount:log:zscore,amount:delta,count:10m,since_last";

fn trainer(args: &[&str]) -> Output {
    Command::new(TRAINER)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn trainer_ok(args: &[&str]) -> String {
    let output = trainer(args);
    assert!(
        output.status.success(),
        "trainer {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `count` payments from the `skip`-th on (seed 5, 300 cards), then `extra` lines.
fn payments_file(dir: &Path, name: &str, skip: usize, count: usize, extra: &[&str]) -> PathBuf {
    let mut lines: Vec<String> = PaymentsParams {
        seed: 5,
        cards: 300,
        ..PaymentsParams::default()
    }
    .records()
    .unwrap()
    .skip(skip)
    .take(count)
    .map(|payment| payment.to_json())
    .collect();
    lines.extend(extra.iter().map(|line| line.to_string()));
    let file = dir.join(name);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

/// The `features` cells of `score --rows`, as bits (`None` for a refused line), and the
/// reasons.
fn scored_rows(scores: &str) -> Vec<(Option<Vec<u64>>, String)> {
    let mut lines = scores.lines();
    assert_eq!(
        lines.next(),
        Some("line,id,score,anomaly,label,reason,features")
    );
    lines
        .map(|line| {
            let (head, features) = match line.split_once(",\"[") {
                Some((head, rest)) => (head, Some(format!("[{}", rest.trim_end_matches('"')))),
                None => (line.trim_end_matches(','), None),
            };
            let row = features.map(|json| {
                let row: Vec<f64> = serde_json::from_str(&json).unwrap();
                row.iter().map(|v| v.to_bits()).collect()
            });
            let reason = head.rsplit(',').next().unwrap_or_default().to_string();
            (row, reason)
        })
        .collect()
}

/// The library's rows for a file read as one partition, in line order (line numbers as
/// offsets), or the reason a line is refused.
fn library_rows(features: &NamedFeatures, file: &Path) -> Vec<Result<Vec<u64>, String>> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut store = StateStore::new(features);
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let mut row = Vec::new();
            let meta = RecordMeta::at(index as i64 + 1);
            store
                .read(features, line.as_bytes(), meta, &mut row)
                .map(|_| row.iter().map(|v| v.to_bits()).collect())
                .map_err(|e| e.reason().to_string())
        })
        .collect()
}

#[test]
fn per_key_features_are_fitted_shown_and_scored_as_the_library_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let train = payments_file(dir.path(), "train.jsonl", 0, 6000, &[]);
    let odd = [r#"{"id": "no-card", "amount": 12, "ts": "2026-12-01T03:12:09Z"}"#];
    let test = payments_file(dir.path(), "test.jsonl", 6000, 2000, &odd);
    let model = dir.path().join("model.bin").to_str().unwrap().to_string();
    let fit = trainer_ok(&[
        "fit",
        "--jsonl",
        train.to_str().unwrap(),
        "--features",
        FEATURES,
        "--key-field",
        "card",
        "--time-field",
        "ts",
        "--half-life",
        "10",
        "--min-history",
        "3",
        "--state-ttl",
        "3d",
        "--trees",
        "40",
        "--out",
        &model,
    ]);
    assert!(fit.contains("6000 training rows"), "{fit}");
    let forest = IsolationForest::load(&model).unwrap();
    let Features::Named(named) = Features::from_model(&forest).unwrap() else {
        panic!("named features")
    };
    // The model keeps what the command line said, as the library checks it.
    let expected = FeatureParams::new(FEATURES)
        .key_field(Some("card".into()))
        .time_field(Some("ts".into()))
        .half_life(10.0)
        .min_history(3)
        .state_ttl(Some(Span::parse("3d").unwrap()))
        .check()
        .unwrap();
    assert_eq!(named.spec(), &expected);

    let shown = trainer_ok(&["show", "--model", &model]);
    assert!(
        shown.contains("keyed by field card; timed by field ts; half-life 10 records"),
        "{shown}"
    );
    assert!(shown.contains("forgotten after 3d"), "{shown}");
    assert!(
        shown.contains("amount:log:zscore") && shown.contains("training mean"),
        "{shown}"
    );

    // Scoring the training file gives the training rows; scoring the rest, the library's
    // rows for that file read as a partition of its own.
    for file in [&train, &test] {
        let scores = trainer_ok(&[
            "score",
            "--model",
            &model,
            "--jsonl",
            file.to_str().unwrap(),
            "--rows",
        ]);
        let scored = scored_rows(&scores);
        let library = library_rows(&named, file);
        assert_eq!(scored.len(), library.len());
        for (index, ((row, reason), expected)) in scored.iter().zip(&library).enumerate() {
            match expected {
                Ok(expected) => assert_eq!(row.as_ref(), Some(expected), "line {}", index + 1),
                Err(expected) => assert_eq!((row, reason), (&None, expected)),
            }
        }
    }
    let fitted = expected
        .fit(
            &std::fs::read_to_string(&train)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let library = library_rows(&named, &train);
    let training: Vec<u64> = fitted.rows.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        library
            .into_iter()
            .flat_map(Result::unwrap)
            .collect::<Vec<_>>(),
        training,
        "the training rows are the rows read"
    );
    let scores = trainer_ok(&[
        "score",
        "--model",
        &model,
        "--jsonl",
        test.to_str().unwrap(),
        "--rows",
    ]);
    assert_eq!(scored_rows(&scores)[2000].1, "missing_key");

    let eval = trainer_ok(&[
        "eval",
        "--model",
        &model,
        "--jsonl",
        test.to_str().unwrap(),
        "--json",
    ]);
    let eval: Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(
        (eval["rows"].as_u64(), eval["refused"].as_u64()),
        (Some(2000), Some(1))
    );
    // With the training records first, only to build the keys' histories.
    let both = dir.path().join("both.jsonl");
    let text = std::fs::read_to_string(&train).unwrap() + &std::fs::read_to_string(&test).unwrap();
    std::fs::write(&both, text).unwrap();
    let both = both.to_str().unwrap();
    let warm = trainer_ok(&[
        "eval",
        "--model",
        &model,
        "--jsonl",
        both,
        "--warm-up",
        "6000",
        "--json",
    ]);
    let warm: Value = serde_json::from_str(&warm).unwrap();
    assert_eq!(
        (warm["rows"].as_u64(), warm["refused"].as_u64()),
        (Some(2000), Some(1))
    );
    assert_ne!(
        warm["roc_auc"], eval["roc_auc"],
        "the keys' histories change the scores"
    );
    let output = trainer(&[
        "eval",
        "--model",
        &model,
        "--jsonl",
        both,
        "--warm-up",
        "8001",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn per_key_requests_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let train = payments_file(dir.path(), "train.jsonl", 0, 300, &[]);
    let train = train.to_str().unwrap();
    let out = dir.path().join("m.bin").to_str().unwrap().to_string();
    for (args, expected) in [
        (
            vec!["fit", "--jsonl", train, "--features", "amount:zscore"],
            "--key-field",
        ),
        (
            vec![
                "fit",
                "--jsonl",
                train,
                "--features",
                "count:1h",
                "--key-field",
                "card",
            ],
            "--time-field",
        ),
        (
            vec![
                "fit",
                "--jsonl",
                train,
                "--features",
                "amount:zscore",
                "--key-field",
                "card",
                "--state-ttl",
                "1w",
            ],
            "--state-ttl",
        ),
        (
            vec![
                "fit",
                "--jsonl",
                train,
                "--features",
                "amount:zscore",
                "--key-field",
                "card",
                "--half-life",
                "0",
            ],
            "half-life must be",
        ),
        (
            vec![
                "fit",
                "--jsonl",
                train,
                "--features",
                "mcc:category:zscore",
                "--key-field",
                "card",
            ],
            "per-key items follow a number or its log",
        ),
        (
            vec![
                "fit",
                "--topic",
                "payments",
                "--follow",
                "--features",
                "amount:zscore",
                "--key-field",
                "card",
            ],
            "--follow does not refit per-key features",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--out", &out]);
        let output = trainer(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!Path::new(&out).exists(), "nothing written");
    // A model keyed by the Kafka key cannot score a file, which has none.
    let model = dir.path().join("kafka.bin");
    let rows: Vec<f64> = (0..100).map(f64::from).collect();
    let features = FeatureParams::new("amount:zscore")
        .check()
        .unwrap()
        .fit_records(
            (0..50)
                .map(|i| serde_json::json!({ "amount": i }))
                .collect::<Vec<_>>()
                .iter()
                .enumerate()
                .map(|(i, value)| features::TrainingRecord {
                    value,
                    partition: 0,
                    meta: RecordMeta {
                        key: Some(if i % 2 == 0 { b"a" } else { b"b" }),
                        timestamp_ms: Some(i as i64),
                        offset: i as i64,
                    },
                }),
        )
        .unwrap()
        .features;
    let forest = features.attach(
        iforest::IsolationForestParams::new()
            .n_trees(5)
            .fit(&rows, 1)
            .unwrap(),
    );
    forest.save(&model).unwrap();
    let output = trainer(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--jsonl",
        train,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Kafka key"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
