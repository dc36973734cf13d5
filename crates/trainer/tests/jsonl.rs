//! The trainer binary on JSON-lines files: fit with named features, show, score and eval, and
//! the same with `data` records. Scores are checked against the library computing them the
//! detector's way (`features::NamedFeatures::read`, `schema::Transaction::decode`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dataset::PaymentsParams;
use features::Features;
use iforest::IsolationForest;
use serde_json::Value;

const TRAINER: &str = env!("CARGO_BIN_EXE_trainer");
const FEATURES: &str =
    "amount:log,/merchant/mcc:category,/merchant/country:category,ts:hour,ts:weekday";

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

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// Writes `count` payments from the `skip`-th on (seed 1) as JSON lines, then `extra` lines.
fn payments_file(dir: &Path, name: &str, skip: usize, count: usize, extra: &[&str]) -> PathBuf {
    let mut lines: Vec<String> = PaymentsParams {
        seed: 1,
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

/// The fit's `model <id>` and the model file's id agree, and the copy by id is the file.
fn check_kept_by_id(stdout: &str, model: &Path, models_dir: &Path) -> String {
    let bytes = std::fs::read(model).unwrap();
    let id = iforest::model_id(&bytes);
    assert!(stdout.contains(&format!("model {id}")), "{stdout}");
    let kept = models_dir.join(format!("{id}.bin"));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        bytes,
        "{} is the model",
        kept.display()
    );
    id
}

#[test]
fn named_features_are_fitted_shown_and_scored_as_the_detector_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let train = payments_file(dir.path(), "train.jsonl", 0, 8000, &[]);
    let odd = [
        r#"{"id": "odd-1", "amount": "912.40", "merchant": {"mcc": "5411", "country": "FR"}, "ts": "2026-12-01T03:12:09Z"}"#,
        r#"{"id": "odd-2", "amount": 12, "merchant": {"country": "FR"}, "ts": "2026-12-01T03:12:09Z"}"#,
        r#"{"amount": 12, "merchant": {"mcc": 7995, "country": "FR"}, "ts": 1796094900000}"#,
    ];
    let test = payments_file(dir.path(), "test.jsonl", 8000, 3000, &odd);
    let model = path(dir.path(), "model.bin");
    let models_dir = dir.path().join("kept");
    let fit_args = [
        "fit",
        "--jsonl",
        train.to_str().unwrap(),
        "--features",
        FEATURES,
        "--label-field",
        "label",
        "--trees",
        "50",
        "--out",
        &model,
        "--models-dir",
        models_dir.to_str().unwrap(),
    ];
    let stdout = trainer_ok(&fit_args);
    let id = check_kept_by_id(&stdout, Path::new(&model), &models_dir);
    assert!(
        stdout.contains(&format!("features {}", FEATURES.replace(',', ", "))),
        "{stdout}"
    );
    assert!(stdout.contains("training records labelled"), "{stdout}");
    // The same records and settings give the same file.
    let again = path(dir.path(), "again.bin");
    let mut args = fit_args;
    args[10] = &again;
    trainer_ok(&args);
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let shown = trainer_ok(&["show", "--model", &model]);
    assert!(
        shown.contains(&format!("id                 {id}")),
        "{shown}"
    );
    assert!(
        shown.contains("named features; missing fields: dead-letter; id field: id"),
        "{shown}"
    );
    assert!(
        shown.contains("amount:log") && shown.contains("median"),
        "{shown}"
    );
    assert!(
        shown.contains("/merchant/mcc:category") && shown.contains("\"5411\""),
        "{shown}"
    );

    let scores = trainer_ok(&[
        "score",
        "--model",
        &model,
        "--jsonl",
        test.to_str().unwrap(),
        "--label-field",
        "label",
    ]);
    let mut lines = scores.lines();
    assert_eq!(lines.next(), Some("line,id,score,anomaly,label,reason"));
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 3003);
    // The detector's way: the model's features, NamedFeatures::read, the forest.
    let forest = IsolationForest::load(&model).unwrap();
    let Features::Named(named) = Features::from_metadata(forest.metadata()).unwrap() else {
        panic!("the model names its features")
    };
    let text = std::fs::read_to_string(&test).unwrap();
    for (line, row) in text.lines().zip(&rows) {
        let mut features = Vec::new();
        match named.read(line.as_bytes(), &mut features) {
            Ok(id) => {
                let score = forest.score(&features).unwrap();
                assert_eq!(
                    row[2].parse::<f64>().unwrap().to_bits(),
                    score.to_bits(),
                    "{line}"
                );
                assert_eq!(row[3], if score > forest.threshold() { "1" } else { "0" });
                assert_eq!(row[1], id.map_or(String::new(), |id| id.to_string()));
                assert_eq!(row[5], "");
            }
            Err(error) => assert_eq!((row[2], row[5]), ("", error.reason()), "{line}"),
        }
    }
    let refused: Vec<(&str, &str)> = rows[3000..].iter().map(|row| (row[1], row[5])).collect();
    assert_eq!(
        refused,
        [
            ("odd-1", "not_numeric"),
            ("odd-2", "missing_feature"),
            ("", "")
        ]
    );
    assert_eq!(rows[3002][0], "3003", "line numbers");

    let eval = trainer_ok(&[
        "eval",
        "--model",
        &model,
        "--jsonl",
        test.to_str().unwrap(),
        "--group-field",
        "fraud",
        "--json",
    ]);
    let eval: Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(eval["refused"], 2);
    assert_eq!(eval["unlabelled"], 1, "the last odd line has no label");
    assert_eq!(eval["rows"], 3000);
    let groups = eval["groups"].as_object().unwrap();
    let kinds: Vec<&str> = groups.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "amount",
            "card_amount",
            "card_burst",
            "category",
            "night_burst"
        ]
    );
    for (kind, group) in groups {
        let recall = group["recall"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&recall), "{kind}: {group}");
        let tops: u64 = group["top_features"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            tops,
            group["labelled_anomalies"].as_u64().unwrap(),
            "{kind}: {group}"
        );
    }
    // A category never seen in training is far from the population: found.
    assert!(
        groups["category"]["recall"].as_f64().unwrap() > 0.5,
        "{}",
        groups["category"]
    );
}

#[test]
fn data_records_in_json_lines_fit_and_score_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = dataset::synthetic_records(3, 0.1, 0, 2000)
        .map(|t| String::from_utf8(t.encode()).unwrap())
        .collect();
    let file = dir.path().join("data.jsonl");
    std::fs::write(
        &file,
        lines.join("\n") + "\n{\"id\": 9, \"data\": [[1, 2, 3]]}\n",
    )
    .unwrap();
    let model = path(dir.path(), "model.bin");
    let stdout = trainer_ok(&[
        "fit",
        "--jsonl",
        file.to_str().unwrap(),
        "--out",
        &model,
        "--trees",
        "30",
    ]);
    check_kept_by_id(&stdout, Path::new(&model), &dir.path().join("by-id"));
    assert!(stdout.contains("left out 1 records"), "{stdout}");
    assert!(
        stdout.contains("feature_count ×1 (first: line 2001"),
        "{stdout}"
    );
    let shown = trainer_ok(&["show", "--model", &model]);
    assert!(shown.contains("the `data` array"), "{shown}");
    let scores = trainer_ok(&[
        "score",
        "--model",
        &model,
        "--jsonl",
        file.to_str().unwrap(),
    ]);
    let forest = IsolationForest::load(&model).unwrap();
    let rows: Vec<&str> = scores.lines().skip(1).collect();
    assert_eq!(rows.len(), 2001);
    for (line, row) in lines.iter().zip(&rows) {
        let transaction =
            schema::Transaction::decode(line.as_bytes(), &schema::DecodeLimits::default()).unwrap();
        let score = forest.score(&transaction.features).unwrap();
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[1], transaction.key());
        assert_eq!(cells[2].parse::<f64>().unwrap().to_bits(), score.to_bits());
    }
    assert!(rows[2000].ends_with(",feature_count"), "{}", rows[2000]);
}

#[test]
fn bad_requests_are_refused_with_the_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let train = payments_file(dir.path(), "train.jsonl", 0, 300, &[]);
    let train = train.to_str().unwrap();
    let out = path(dir.path(), "m.bin");
    for (args, expected) in [
        (
            vec![
                "fit",
                "--jsonl",
                train,
                "--features",
                "amount,label",
                "--label-field",
                "label",
            ],
            "is also a feature",
        ),
        (
            vec!["fit", "--jsonl", train, "--features", "amount:lg"],
            "unknown transform \"lg\"",
        ),
        (
            vec!["fit", "--features", "amount"],
            "--features needs training records",
        ),
        (
            vec!["fit", "--jsonl", train, "--features", "amount,nothing"],
            "nothing is missing",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--out", &out]);
        let output = trainer(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!Path::new(&out).exists(), "nothing written");
}

#[test]
fn a_model_file_is_shown_as_it_is_and_a_corrupt_features_entry_refused() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../iforest/tests/fixtures/v1-axis.bin");
    let shown = trainer_ok(&["show", "--model", fixture.to_str().unwrap()]);
    assert!(shown.contains("format version     1\n"), "{shown}");
    assert!(shown.contains("the `data` array"), "{shown}");

    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<f64> = (0..200).map(|i| f64::from(i % 17)).collect();
    let model = iforest::IsolationForestParams::new()
        .n_trees(10)
        .fit(&rows, 1)
        .unwrap()
        .with_metadata(
            features::METADATA_KEY,
            r#"{"version": 1, "missing": "impute"}"#,
        );
    let path = dir.path().join("corrupt.bin");
    model.save(&path).unwrap();
    let jsonl = dir.path().join("r.jsonl");
    std::fs::write(&jsonl, "{\"a\": 1}\n").unwrap();
    let output = trainer(&["show", "--model", path.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("trees              10\n"),
        "the rest of the file is still shown"
    );
    for args in [
        vec!["show", "--model", path.to_str().unwrap()],
        vec![
            "score",
            "--model",
            path.to_str().unwrap(),
            "--jsonl",
            jsonl.to_str().unwrap(),
        ],
    ] {
        let output = trainer(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("corrupt.bin is not a usable model")
                && stderr.contains("the model's `features` entry is not valid"),
            "{args:?}: {stderr}"
        );
    }
}
