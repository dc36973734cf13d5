//! Drift: the stream's clusters move, so a detector flags most records; `trainer fit
//! --follow` on the transactions topic measures the drift, refits on the recent window and
//! replaces the model file; the detector reloads it, and the share of anomalies returns to
//! the contamination level.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dataset::Shift;
use e2e::Pipeline;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use testkit::{read_topic, run_ok, unique, wait_until, workspace_bin, Guard};

const BATCH: u64 = 2_000;
const SHIFT: [f64; 2] = [4.0, -4.0];

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The records `generator --shift` sends (clusters only: the drift is in normal behaviour).
fn shifted(seed: u64, first_id: u64) -> Vec<schema::Transaction> {
    let shift = Shift {
        by: SHIFT,
        after: 0,
    };
    dataset::shifted_synthetic_records(seed, 0.0, first_id as i64, BATCH, shift).collect()
}

fn produce_shifted(pipeline: &Pipeline, seed: u64, first_id: u64) {
    run_ok(Command::new(workspace_bin("generator")).args([
        "--topic",
        &pipeline.transactions,
        "--count",
        &BATCH.to_string(),
        "--rate",
        "0",
        "--outlier-probability",
        "0",
        "--shift",
        &format!("{},{}", SHIFT[0], SHIFT[1]),
        "--seed",
        &seed.to_string(),
        "--first-id",
        &first_id.to_string(),
    ]));
}

fn flagged_ids(model: &iforest::IsolationForest, records: &[schema::Transaction]) -> Vec<String> {
    records
        .iter()
        .filter(|t| model.predict(&t.features).unwrap())
        .map(|t| t.id.to_string())
        .collect()
}

/// Every record of a one-partition topic (to its high watermark).
fn read_all(topic: &str) -> Vec<testkit::Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", testkit::bootstrap())
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    read_topic(topic, Duration::from_secs(60), |got| {
        got.len() as i64 >= high
    })
}

#[test]
fn after_a_shift_the_following_trainer_refits_and_the_anomaly_share_returns_to_normal() {
    let pipeline = Pipeline::new("drift", 1);
    let model_bytes = std::fs::read(&pipeline.model_path).unwrap();
    let first_model = iforest::IsolationForest::from_bytes(&model_bytes).unwrap();
    let first_id = iforest::model_id(&model_bytes);

    // The detector stops by itself once both batches are scored.
    let detector_log = pipeline.dir.path().join("detector.log");
    let mut detector = Guard(
        pipeline
            .detector(&unique("drift-group"))
            .args(["--max-records", &(2 * BATCH).to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&detector_log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(60), "the detector to join", || {
        text(&detector_log).contains("assigned partitions")
    });

    // The clusters move: the model trained on the old ones flags most records.
    produce_shifted(&pipeline, 1, 0);
    let before = flagged_ids(&first_model, &shifted(1, 0));
    let share_before = before.len() as f64 / BATCH as f64;
    assert!(share_before > 0.9, "share before the refit: {share_before}");
    let found = read_topic(&pipeline.anomalies, Duration::from_secs(60), |got| {
        got.len() >= before.len()
    });
    assert_eq!(found.len(), before.len(), "anomalies of the shifted batch");

    // The following trainer sees the drift in its window and replaces the model.
    let trainer_out = pipeline.dir.path().join("trainer.out");
    let trainer_log = pipeline.dir.path().join("trainer.log");
    let mut trainer = Guard(
        Command::new(workspace_bin("trainer"))
            .args(["fit", "--topic", &pipeline.transactions, "--follow"])
            .args(["--window", &BATCH.to_string()])
            .args(["--contamination", "0.01", "--trees", "50", "--seed", "7"])
            .arg("--out")
            .arg(&pipeline.model_path)
            .args(["--brokers", &testkit::bootstrap()])
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&trainer_out).unwrap())
            .stderr(std::fs::File::create(&trainer_log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(60), "the trainer to refit", || {
        text(&trainer_out).contains("refitted")
    });
    let refit_line = text(&trainer_out);
    assert!(
        refit_line.contains("refitted (drift: ") && refit_line.contains("mean moved"),
        "{refit_line}"
    );
    let model_bytes = std::fs::read(&pipeline.model_path).unwrap();
    let second_model = iforest::IsolationForest::from_bytes(&model_bytes).unwrap();
    let second_id = iforest::model_id(&model_bytes);
    assert!(
        refit_line.contains(&format!("model {second_id}")),
        "{refit_line}"
    );
    assert_ne!(first_id, second_id);
    wait_until(Duration::from_secs(30), "the detector to reload", || {
        text(&detector_log).contains(&format!("model {second_id} in use"))
    });

    // More of the shifted stream: the new model flags about the contamination's share.
    produce_shifted(&pipeline, 2, BATCH);
    let after = flagged_ids(&second_model, &shifted(2, BATCH));
    let share_after = after.len() as f64 / BATCH as f64;
    assert!(
        !after.is_empty() && share_after < 0.05,
        "share after the refit: {share_after}"
    );
    wait_until(
        Duration::from_secs(60),
        "the detector to score both batches and stop",
        || detector.0.try_wait().unwrap().is_some(),
    );
    assert!(detector.0.wait().unwrap().success());

    let mut by_model: Vec<(String, String)> = read_all(&pipeline.anomalies)
        .iter()
        .map(|r| {
            let anomaly = schema::Anomaly::decode(&r.value).unwrap();
            (anomaly.id.to_string(), anomaly.model)
        })
        .collect();
    by_model.sort();
    let mut expected: Vec<(String, String)> = before
        .iter()
        .map(|id| (id.clone(), first_id.clone()))
        .chain(after.iter().map(|id| (id.clone(), second_id.clone())))
        .collect();
    expected.sort();
    assert!(
        by_model == expected,
        "anomalies by model differ: {} found, {} expected",
        by_model.len(),
        expected.len()
    );
    eprintln!(
        "anomaly share: {:.1}% before the refit (model {first_id}), {:.1}% after (model \
         {second_id}); {refit_line}",
        share_before * 100.0,
        share_after * 100.0
    );

    // The picture of the new model with both topics: every transaction, an anomaly when a
    // detector flagged it or the new model does.
    let picture = pipeline.dir.path().join("after.svg");
    let output = run_ok(
        Command::new(workspace_bin("inspector"))
            .args(["--brokers", &testkit::bootstrap(), "plot", "--model"])
            .arg(&pipeline.model_path)
            .args(["--topic", &pipeline.anomalies])
            .args(["--transactions-topic", &pipeline.transactions])
            .arg("--out")
            .arg(&picture),
    );
    let mut drawn_as_anomalies: Vec<String> = before.iter().chain(&after).cloned().collect();
    drawn_as_anomalies.extend(flagged_ids(&second_model, &shifted(1, 0)));
    drawn_as_anomalies.sort();
    drawn_as_anomalies.dedup();
    let svg = text(&picture);
    let legend = format!("anomaly ({})", drawn_as_anomalies.len());
    assert!(
        svg.contains(&legend),
        "no {legend:?} in the picture; {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let normal = format!("normal ({})", 2 * BATCH as usize - drawn_as_anomalies.len());
    assert!(svg.contains(&normal), "no {normal:?} in the picture");

    // The stream stayed where it moved: one refit only; SIGTERM stops the trainer cleanly.
    run_ok(Command::new("kill").args(["-TERM", &trainer.0.id().to_string()]));
    assert!(trainer.0.wait().unwrap().success());
    assert_eq!(text(&trainer_out).matches("refitted").count(), 1);
}
