//! The wire format interoperates with the original Python pipeline both ways: its producer
//! feeds our detector, and our generator feeds its detector (scikit-learn + confluent-kafka,
//! in the .venv that scripts/test.sh creates).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::Pipeline;
use testkit::{create_topics, read_topic, repo_root, run_ok, unique, workspace_bin};

fn python() -> PathBuf {
    let python = std::env::var_os("REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python environment at {} (scripts/python-env.sh creates it)",
        python.display()
    );
    python
}

fn reference(script: &str) -> PathBuf {
    let path = repo_root().join("reference/python").join(script);
    assert!(
        path.exists(),
        "the reference pipeline is missing: {}",
        path.display()
    );
    path
}

#[test]
fn reference_producer_feeds_our_detector() {
    const RECORDS: usize = 2_000;
    let pipeline = Pipeline::new("interop", 3);
    let (transactions, anomalies) = (&pipeline.transactions, &pipeline.anomalies);

    run_ok(Command::new(python()).arg(reference("produce.py")).args([
        "--bootstrap",
        &testkit::bootstrap(),
        "--topic",
        transactions,
        "--count",
        &RECORDS.to_string(),
        "--delay",
        "0",
        "--seed",
        "11",
        "--batch",
    ]));
    // The records exactly as Python wrote them, scored offline with our model.
    let model = pipeline.model();
    let written = read_topic(transactions, Duration::from_secs(30), |got| {
        got.len() >= RECORDS
    });
    assert_eq!(written.len(), RECORDS);
    let expected: BTreeSet<String> = written
        .iter()
        .map(|r| schema::Transaction::decode(&r.value, &Default::default()).expect("decodes"))
        .filter(|tx| model.predict(&tx.features).unwrap())
        .map(|tx| tx.id.to_string())
        .collect();

    run_ok(
        pipeline
            .detector(&unique("interop-group"))
            .args(["--idle-exit", "5"]),
    );
    let received = read_topic(anomalies, Duration::from_secs(30), |got| {
        got.len() >= expected.len()
    });
    let found: BTreeSet<String> = received
        .iter()
        .map(|r| {
            let value: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
            // The original's fields survive, in the original's shape.
            assert!(
                value["data"][0]
                    .as_array()
                    .is_some_and(|row| row.len() == 2),
                "{value}"
            );
            assert!(value["current_time"].is_string(), "{value}");
            value["id"].to_string()
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn our_generator_feeds_the_reference_detector() {
    const RECORDS: usize = 500;
    let transactions = unique("interop2-tx");
    let anomalies = unique("interop2-anomalies");
    create_topics(&[(&transactions, 3), (&anomalies, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let joblib = dir.path().join("isolation_forest.joblib");
    run_ok(
        Command::new(python())
            .arg(reference("train.py"))
            .arg("--out")
            .arg(&joblib),
    );

    run_ok(Command::new(workspace_bin("generator")).args([
        "--topic",
        &transactions,
        "--count",
        &RECORDS.to_string(),
        "--rate",
        "0",
        "--seed",
        "3",
    ]));
    let output = run_ok(
        Command::new(python())
            .arg(reference("detect.py"))
            .arg("--model")
            .arg(&joblib)
            .args([
                "--bootstrap",
                &testkit::bootstrap(),
                "--input",
                &transactions,
                "--output",
                &anomalies,
                "--group",
                &unique("interop2-group"),
                "--max-messages",
                &RECORDS.to_string(),
                "--idle-exit",
                "20",
            ]),
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(&format!("processed={RECORDS}")),
        "reference detector: {summary}"
    );
    let flagged: usize = summary
        .split_whitespace()
        .find_map(|field| field.strip_prefix("anomalies="))
        .and_then(|n| n.parse().ok())
        .expect("anomalies=N in the summary");
    // ~70% of the synthetic stream are uniform outliers; most lie outside the two clusters.
    assert!(
        flagged > RECORDS / 3,
        "the reference detector flagged only {flagged}"
    );

    let received = read_topic(&anomalies, Duration::from_secs(30), |got| {
        got.len() >= flagged
    });
    assert_eq!(received.len(), flagged);
    let ours: BTreeSet<i64> = (0..RECORDS as i64).collect();
    for record in &received {
        let value: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
        let id = value["id"].as_i64().expect("integer id");
        assert!(ours.contains(&id));
        assert_eq!(record.key.as_deref(), Some(id.to_string().as_str()));
        assert!(
            value["score"][0].as_f64().is_some_and(|s| s < 0.0),
            "{value}"
        );
    }
}
