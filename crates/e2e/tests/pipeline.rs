//! The processes together on a real broker: trainer → model file, generator → transactions →
//! detector → anomalies. The anomalies must be exactly the records that offline scoring of the
//! same seeded stream with the same model flags.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::Pipeline;
use testkit::{read_topic, run_ok, tally, unique};

const RECORDS: usize = 20_000;
const SEED: u64 = 7;

#[test]
fn generator_to_detector_flags_exactly_what_offline_scoring_flags() {
    let pipeline = Pipeline::new("e2e", 3);
    let sent = pipeline.generate(RECORDS as u64, SEED, 0);
    let summary = String::from_utf8_lossy(&sent.stdout);
    assert!(
        summary.contains(&format!("acknowledged={RECORDS}")),
        "generator said: {summary}"
    );

    // What the detector must find: the same stream, scored offline with the same model.
    let model = pipeline.model();
    let stream: Vec<schema::Transaction> =
        dataset::synthetic_records(SEED, 0.7, 0, RECORDS as u64).collect();
    assert_eq!(stream.len(), RECORDS);
    let expected: BTreeSet<String> = stream
        .iter()
        .filter(|tx| model.predict(&tx.features).unwrap())
        .map(|tx| tx.id.to_string())
        .collect();
    assert!(
        expected.len() > RECORDS / 2,
        "the stream is ~70% outliers: {}",
        expected.len()
    );

    let output = run_ok(
        pipeline
            .detector(&unique("e2e-detectors"))
            .args(["--idle-exit", "5"]),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("consumed={RECORDS}")),
        "detector said: {stdout}"
    );

    let received = read_topic(&pipeline.anomalies, Duration::from_secs(60), |got| {
        got.len() >= expected.len()
    });
    let model_id = iforest::model_id(&std::fs::read(&pipeline.model_path).unwrap());
    let mut found = Vec::new();
    for record in &received {
        let anomaly = schema::Anomaly::decode(&record.value).expect("an anomaly record");
        assert_eq!(anomaly.model, model_id);
        assert_eq!(
            record.key.as_deref(),
            Some(anomaly.id.to_string().as_str()),
            "keyed by id"
        );
        assert!(anomaly.anomaly_score > anomaly.threshold);
        assert_eq!(
            anomaly.score,
            vec![-anomaly.anomaly_score],
            "scikit-learn's sign"
        );
        found.push(anomaly.id.to_string());
    }
    let counts = tally(found.iter().cloned());
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "expected {} anomalies, found {} distinct, {duplicates} duplicates",
        expected.len(),
        found.len()
    );
    let lost: Vec<_> = expected.difference(&found).take(10).collect();
    let unexpected: Vec<_> = found.difference(&expected).take(10).collect();
    assert!(lost.is_empty(), "anomalies lost, e.g. {lost:?}");
    assert!(
        unexpected.is_empty(),
        "unexpected anomalies, e.g. {unexpected:?}"
    );
    let dead = read_topic(&pipeline.dead_letters, Duration::from_secs(2), |_| false);
    assert!(
        dead.is_empty(),
        "good records went to the dead-letter topic: {}",
        dead.len()
    );
}
