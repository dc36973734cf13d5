//! Two detectors in one group share the 3 partitions, together score every record, and when
//! one is stopped (SIGTERM) the other takes its partitions over without losing a record.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::Pipeline;
use testkit::{read_topic, run_ok, tally, unique, wait_until, Guard};

const HALF: u64 = 5_000;

/// Partitions a detector owns now: its last "assigned partitions" log line.
fn owned(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rfind(|line| line.contains("assigned partitions:"))
        .map_or(0, |line| line.matches('/').count())
}

fn anomaly_ids(topic: &str, expected: usize) -> Vec<String> {
    read_topic(topic, Duration::from_secs(60), |got| {
        got.iter().map(|r| &r.key).collect::<BTreeSet<_>>().len() >= expected
    })
    .iter()
    .map(|r| {
        schema::Anomaly::decode(&r.value)
            .expect("anomaly")
            .id
            .to_string()
    })
    .collect()
}

#[test]
fn two_detectors_share_the_partitions_and_survive_one_stopping() {
    let pipeline = Pipeline::new("scale", 3);
    let model = pipeline.model();
    let expected_for = |first_id: u64| -> BTreeSet<String> {
        dataset::synthetic_records(first_id, 0.7, first_id as i64, HALF)
            .filter(|tx| model.predict(&tx.features).unwrap())
            .map(|tx| tx.id.to_string())
            .collect()
    };

    let group = unique("scale-group");
    let start = |name: &str| {
        let log = pipeline.dir.path().join(format!("{name}.log"));
        let child = pipeline
            .detector(&group)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (Guard(child), log)
    };
    let (mut first, first_log) = start("first");
    let (mut second, second_log) = start("second");
    wait_until(
        Duration::from_secs(60),
        "both detectors to own partitions",
        || {
            let (a, b) = (owned(&first_log), owned(&second_log));
            a >= 1 && b >= 1 && a + b == 3
        },
    );
    println!(
        "partitions: first {}, second {}",
        owned(&first_log),
        owned(&second_log)
    );

    // Both at work: every anomaly of the first half arrives.
    pipeline.generate(HALF, 0, 0);
    let mut expected = expected_for(0);
    let found: BTreeSet<String> = anomaly_ids(&pipeline.anomalies, expected.len())
        .into_iter()
        .collect();
    assert_eq!(
        found, expected,
        "two detectors together lost or invented anomalies"
    );

    // Stop the second: it exits 0, and the first takes all three partitions.
    run_ok(Command::new("kill").args(["-TERM", &second.0.id().to_string()]));
    let status = second.0.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM should end the detector cleanly: {status}"
    );
    let mut summary = String::new();
    std::io::Read::read_to_string(second.0.stdout.as_mut().unwrap(), &mut summary).unwrap();
    assert!(summary.contains("detector: consumed="), "{summary}");
    assert!(
        !summary.contains("consumed=0 "),
        "the second detector did no work: {summary}"
    );
    wait_until(
        Duration::from_secs(60),
        "the first detector to own all partitions",
        || owned(&first_log) == 3,
    );

    pipeline.generate(HALF, HALF, HALF);
    expected.extend(expected_for(HALF));
    let ids = anomaly_ids(&pipeline.anomalies, expected.len());
    let counts = tally(ids);
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "expected {} anomalies, found {}, duplicates {duplicates}",
        expected.len(),
        found.len()
    );
    assert_eq!(
        found, expected,
        "anomalies lost or invented across the hand-over"
    );

    run_ok(Command::new("kill").args(["-TERM", &first.0.id().to_string()]));
    assert!(first.0.wait().unwrap().success());
}
