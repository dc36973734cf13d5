//! Hot reload: a replaced model file (and SIGHUP) swaps the model between batches; every
//! anomaly names the model that scored it; an invalid new model is refused and the old one
//! kept.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{create_topics, read_topic, run_ok, unique, wait_until, workspace_bin, Guard};

const BATCH: u64 = 2_000;

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
}

#[test]
fn a_replaced_model_is_used_from_the_next_batch_and_a_bad_one_is_refused() {
    let transactions = unique("reload-tx");
    let anomalies = unique("reload-anomalies");
    let dead_letters = unique("reload-dlq");
    create_topics(&[(&transactions, 3), (&anomalies, 1), (&dead_letters, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.bin");
    let fit = |seed: &str, contamination: &str| {
        run_ok(
            Command::new(workspace_bin("trainer"))
                .args([
                    "fit",
                    "--seed",
                    seed,
                    "--contamination",
                    contamination,
                    "--out",
                ])
                .arg(&model_path),
        );
        let bytes = std::fs::read(&model_path).unwrap();
        (
            iforest::IsolationForest::from_bytes(&bytes).unwrap(),
            iforest::model_id(&bytes),
        )
    };
    let (first_model, first_id) = fit("1", "0.01");

    let log = dir.path().join("detector.log");
    let mut detector = Guard(
        Command::new(workspace_bin("detector"))
            .arg("--model")
            .arg(&model_path)
            .args(["--input-topic", &transactions, "--output-topic", &anomalies])
            .args([
                "--dlq-topic",
                &dead_letters,
                "--group",
                &unique("reload-group"),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(60), "the detector to join", || {
        log_has(&log, "assigned partitions")
    });

    let produce = |first_id: u64| {
        run_ok(Command::new(workspace_bin("generator")).args([
            "--topic",
            &transactions,
            "--count",
            &BATCH.to_string(),
            "--rate",
            "0",
            "--seed",
            &first_id.to_string(),
            "--first-id",
            &first_id.to_string(),
        ]));
        dataset::synthetic_records(first_id, 0.7, first_id as i64, BATCH).collect::<Vec<_>>()
    };
    let flagged =
        |model: &iforest::IsolationForest, records: &[schema::Transaction]| -> BTreeSet<String> {
            records
                .iter()
                .filter(|t| model.predict(&t.features).unwrap())
                .map(|t| t.id.to_string())
                .collect()
        };
    // (id → model) of every anomaly so far, once `count` have arrived.
    let anomalies_by_model = |count: usize| -> Vec<(String, String)> {
        read_topic(&anomalies, Duration::from_secs(60), |got| {
            got.len() >= count
        })
        .iter()
        .map(|r| {
            let anomaly = schema::Anomaly::decode(&r.value).unwrap();
            (anomaly.id.to_string(), anomaly.model)
        })
        .collect()
    };

    let first_batch = produce(0);
    let mut expected: Vec<(String, String)> = flagged(&first_model, &first_batch)
        .into_iter()
        .map(|id| (id, first_id.clone()))
        .collect();
    assert_eq!(anomalies_by_model(expected.len()).len(), expected.len());

    // Replace the file (the trainer writes atomically): the detector says it swapped.
    let (second_model, second_id) = fit("2", "0.2");
    assert_ne!(first_id, second_id);
    wait_until(
        Duration::from_secs(30),
        "the new model to be in use",
        || log_has(&log, &format!("model {second_id} in use")),
    );
    let second_batch = produce(BATCH);
    expected.extend(
        flagged(&second_model, &second_batch)
            .into_iter()
            .map(|id| (id, second_id.clone())),
    );

    // A damaged model replaces the file: refused, the second model stays.
    let temporary = dir.path().join("incoming.tmp");
    std::fs::write(&temporary, b"IFOREST\0garbage").unwrap();
    std::fs::rename(&temporary, &model_path).unwrap();
    wait_until(
        Duration::from_secs(30),
        "the damaged model to be refused",
        || log_has(&log, "new model refused"),
    );
    // SIGHUP with the damaged file still there: refused again, nothing changes.
    run_ok(Command::new("kill").args(["-HUP", &detector.0.id().to_string()]));
    let third_batch = produce(2 * BATCH);
    expected.extend(
        flagged(&second_model, &third_batch)
            .into_iter()
            .map(|id| (id, second_id.clone())),
    );

    let mut found = anomalies_by_model(expected.len());
    found.sort();
    expected.sort();
    assert_eq!(
        found.len(),
        expected.len(),
        "anomalies lost or scored twice"
    );
    assert!(
        found == expected,
        "an anomaly names the wrong model, or was not flagged by it"
    );
    run_ok(Command::new("kill").args(["-TERM", &detector.0.id().to_string()]));
    assert!(detector.0.wait().unwrap().success());
}
