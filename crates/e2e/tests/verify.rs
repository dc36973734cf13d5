//! `inspector verify` on a real pipeline (trainer with its models kept by id, generator,
//! detector): every anomaly is identical when re-scored from its source, nothing is missing.
//! Then, one at a time: transactions the detectors have not read are pending, and missing once
//! the group commits past them; forged anomalies in the anomalies topic (one naming a normal
//! transaction, a changed score, a changed feature value, an unknown model) are each reported;
//! and so is a model file that was deleted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use e2e::Pipeline;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use schema::{encode_anomaly, DecodeLimits, Transaction, Verdict};
use serde_json::Value;
use testkit::{committed, produce, read_topic, run_ok, unique, workspace_bin, Received, Record};

const RECORDS: u64 = 3_000;
const SEED: u64 = 11;
/// An unknown model's id (well formed: 16 hexadecimal digits).
const UNKNOWN_MODEL: &str = "0123456789abcdef";

/// `inspector verify` on the pipeline's topics with `extra` flags.
fn verify(pipeline: &Pipeline, group: &str, models_dir: &Path, extra: &[&str]) -> Output {
    Command::new(workspace_bin("inspector"))
        .arg("verify")
        .args(["--input-topic", &pipeline.transactions])
        .args(["--output-topic", &pipeline.anomalies])
        .args(["--group", group, "--models-dir"])
        .arg(models_dir)
        .args(extra)
        .output()
        .expect("run inspector verify")
}

/// The JSON report of a run that exited with `code`.
fn report(output: &Output, code: i32) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {report}"))
}

/// A copy of `record`'s anomaly with `change` made to it.
fn forged(record: &Received, change: impl FnOnce(&mut Value)) -> Record {
    let mut value: Value = serde_json::from_slice(&record.value).expect("an anomaly");
    change(&mut value);
    Record::keyed(
        record.key.clone().unwrap_or_default(),
        serde_json::to_vec(&value).unwrap(),
    )
}

/// Commits `offset` for `group` on `topic`/`partition`, as a detector does once its outputs
/// are acknowledged (here: without any output).
fn commit(group: &str, topic: &str, partition: i32, offset: i64) {
    let mut config = testkit::settings().client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

/// The anomaly a detector would write for `source` if it flagged it (the detector's own
/// encoding, with the true score).
fn anomaly_of(source: &Received, model: &iforest::IsolationForest, model_id: &str) -> Record {
    let transaction = Transaction::decode(&source.value, &DecodeLimits::default()).unwrap();
    let verdict = Verdict {
        anomaly_score: model.score(&transaction.features).unwrap(),
        threshold: model.threshold(),
        model: model_id.to_string(),
        partition: source.partition,
        offset: source.offset,
        detected_at: SystemTime::now().into(),
    };
    Record::keyed(
        transaction.id.to_string(),
        encode_anomaly(&transaction, &verdict),
    )
}

/// Whether `record` is a transaction the model reads and does not flag.
fn is_normal(record: &Received, model: &iforest::IsolationForest) -> bool {
    Transaction::decode(&record.value, &DecodeLimits::default())
        .is_ok_and(|tx| model.predict(&tx.features).is_ok_and(|flagged| !flagged))
}

#[test]
fn verify_finds_every_anomaly_identical_then_each_forgery() {
    let pipeline = Pipeline::new("verify", 3);
    let models_dir = pipeline.dir.path().join("by-id");
    let model_bytes = std::fs::read(&pipeline.model_path).unwrap();
    let model_id = iforest::model_id(&model_bytes);
    let model_file = models_dir.join(format!("{model_id}.bin"));
    assert_eq!(
        std::fs::read(&model_file).expect("trainer fit keeps the model by id"),
        model_bytes
    );

    // The stream, a record too large for the anomalies topic whole (its anomaly is reduced)
    // and one the model refuses (a dead letter, never expected as an anomaly).
    pipeline.generate(RECORDS, SEED, 0);
    let big = format!(
        r#"{{"id": 900000, "data": [[6.0, -6.0]], "pad": "{}"}}"#,
        "p".repeat(20_000)
    );
    produce(
        &pipeline.transactions,
        &[
            Record::keyed("900000", big),
            Record::keyed("900001", "not JSON"),
        ],
    );
    let model = pipeline.model();
    assert!(
        model.predict(&[6.0, -6.0]).unwrap(),
        "the big record is an anomaly"
    );
    let expected = dataset::synthetic_records(SEED, 0.7, 0, RECORDS)
        .filter(|tx| model.predict(&tx.features).unwrap())
        .count() as u64
        + 1;

    let group = unique("verify-detectors");
    let detector = run_ok(pipeline.detector(&group).args([
        "--idle-exit",
        "3",
        "-X",
        "message.max.bytes=10000",
    ]));
    let summary = String::from_utf8_lossy(&detector.stdout);
    assert!(summary.contains("reduced=1"), "detector said: {summary}");
    let anomalies = read_topic(&pipeline.anomalies, Duration::from_secs(60), |got| {
        got.len() as u64 >= expected
    });
    let written = anomalies.len() as u64;

    // The run as it is: all identical, and re-scoring the whole topic finds nothing missing.
    let clean = report(
        &verify(
            &pipeline,
            &group,
            &models_dir,
            &["--json", "--from-beginning"],
        ),
        0,
    );
    println!("clean: {clean}");
    assert_eq!(count(&clean, "checked"), written);
    assert_eq!(count(&clean, "identical"), written);
    for key in ["different", "source_gone", "model_not_found"] {
        assert_eq!(count(&clean, key), 0, "{key}");
    }
    assert_eq!(count(&clean, "truncated"), 1);
    let range = &clean["range"];
    assert_eq!(range["checked"], true, "{range}");
    assert_eq!(range["model"], model_id.as_str());
    assert_eq!(count(range, "scored"), RECORDS + 1);
    assert_eq!(count(range, "refused"), 1);
    assert_eq!(count(range, "flagged"), expected);
    for key in ["missing", "unexpected", "pending"] {
        assert_eq!(count(range, key), 0, "{key}");
    }
    assert_eq!(clean["passed"], true);

    // The same for people, and over the last anomalies only.
    let text = verify(&pipeline, &group, &models_dir, &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "result: all {written} identical, nothing missing\n"
        )),
        "{stdout}"
    );
    let last = report(
        &verify(&pipeline, &group, &models_dir, &["--json", "--last", "20"]),
        0,
    );
    assert_eq!(
        (count(&last, "checked"), count(&last, "identical")),
        (20, 20)
    );

    // Two anomalous transactions the detectors never read: pending while the group has not
    // committed past them, missing once it has.
    for row in [[6.0, 6.0], [-6.0, 6.0]] {
        assert!(model.predict(&row).unwrap(), "{row:?} is an anomaly");
    }
    let late = produce(
        &pipeline.transactions,
        &[
            Record::at(
                0,
                "910000",
                r#"{"id": 910000, "data": [[6.0, 6.0]]}"#,
                testkit::now_ms(),
            ),
            Record::at(
                0,
                "910001",
                r#"{"id": 910001, "data": [[-6.0, 6.0]]}"#,
                testkit::now_ms(),
            ),
        ],
    );
    let committed_before = committed(&group, &pipeline.transactions, 3)[0]
        .expect("the detector committed partition 0");
    assert!(
        late.iter()
            .all(|&(partition, offset)| partition == 0 && offset >= committed_before),
        "{late:?} past {committed_before}"
    );
    let pending = report(
        &verify(
            &pipeline,
            &group,
            &models_dir,
            &["--json", "--from-beginning"],
        ),
        0,
    );
    let range = &pending["range"];
    assert_eq!(
        (count(range, "scored"), count(range, "flagged")),
        (RECORDS + 3, expected + 2)
    );
    assert_eq!((count(range, "pending"), count(range, "missing")), (2, 0));
    assert_eq!(pending["passed"], true, "pending does not fail it");

    commit(&group, &pipeline.transactions, 0, late[1].1 + 1);
    assert_eq!(
        committed(&group, &pipeline.transactions, 3)[0],
        Some(late[1].1 + 1)
    );
    let missing = report(
        &verify(
            &pipeline,
            &group,
            &models_dir,
            &["--json", "--from-beginning"],
        ),
        1,
    );
    let range = &missing["range"];
    assert_eq!((count(range, "pending"), count(range, "missing")), (0, 2));
    let listed: Vec<(&str, &str)> = range["missing_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["source"].as_str().unwrap(), m["id"].as_str().unwrap()))
        .collect();
    let late_sources: Vec<String> = late
        .iter()
        .map(|(partition, offset)| format!("{}/{partition}/{offset}", pipeline.transactions))
        .collect();
    assert_eq!(
        listed,
        [
            (late_sources[0].as_str(), "910000"),
            (late_sources[1].as_str(), "910001")
        ]
    );
    assert_eq!(
        (count(&missing, "identical"), count(&missing, "different")),
        (written, 0),
        "the anomalies written are still right"
    );
    let text = verify(&pipeline, &group, &models_dir, &["--from-beginning"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "missing (2):\n  {} (id 910000): anomaly_score ",
            late_sources[0]
        )),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: 2 missing\n"), "{stdout}");
    // Without --from-beginning the range ends at the last anomaly's source: the two come
    // after it, so they are not looked at.
    let default_range = report(&verify(&pipeline, &group, &models_dir, &["--json"]), 0);
    let range = &default_range["range"];
    let partition_0 = range["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|span| span["partition"] == 0)
        .expect("partition 0 in the range");
    assert!(
        partition_0["last"].as_i64().unwrap() < late[0].1,
        "{partition_0}"
    );
    assert_eq!((count(range, "missing"), count(range, "pending")), (0, 0));

    // An anomaly naming a normal transaction, as a detector would write it with that
    // transaction's true score: it should not be there.
    let transactions = read_topic(&pipeline.transactions, Duration::from_secs(60), |got| {
        got.iter().any(|r| is_normal(r, &model))
    });
    let normal = transactions
        .iter()
        .find(|r| is_normal(r, &model))
        .expect("a normal transaction");
    let normal_at = produce(
        &pipeline.anomalies,
        &[anomaly_of(normal, &model, &model_id)],
    )[0];
    let unexpected = report(
        &verify(
            &pipeline,
            &group,
            &models_dir,
            &["--json", "--from-beginning"],
        ),
        1,
    );
    assert_eq!(count(&unexpected, "checked"), written + 1);
    assert_eq!(count(&unexpected, "identical"), written);
    assert_eq!(count(&unexpected, "different"), 1);
    let range = &unexpected["range"];
    assert_eq!(
        (count(range, "unexpected"), count(range, "missing")),
        (1, 2)
    );
    let source = format!(
        "{}/{}/{}",
        pipeline.transactions, normal.partition, normal.offset
    );
    let listed = &range["unexpected_list"][0];
    assert_eq!(listed["source"], source.as_str());
    assert!(
        listed["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("re-scored ") && why.contains("not above")),
        "{listed}"
    );
    let difference = &unexpected["differences"][0];
    assert_eq!(
        difference["anomaly"],
        format!("{}/{}/{}", pipeline.anomalies, normal_at.0, normal_at.1)
    );
    assert_eq!(difference["source"], source.as_str());
    let problems: Vec<String> = serde_json::from_value(difference["problems"].clone()).unwrap();
    assert_eq!(problems.len(), 1, "only the verdict is wrong: {problems:?}");
    assert!(
        problems[0].contains("not above the model's threshold"),
        "{problems:?}"
    );

    // Forgeries: a score changed in its last bit, a feature value changed, an unknown model.
    let whole: Vec<&Received> = anomalies
        .iter()
        .filter(|r| !String::from_utf8_lossy(&r.value).contains("\"truncated\""))
        .take(2)
        .collect();
    let changed_score = forged(whole[0], |v| {
        let score = v["anomaly_score"].as_f64().unwrap();
        let score = f64::from_bits(score.to_bits() + 1);
        v["anomaly_score"] = Value::from(score);
        v["score"] = Value::from(vec![-score]);
    });
    let changed_feature = forged(whole[1], |v| match v.get_mut("features") {
        // Anomalies that carry the features scored by name.
        Some(Value::Object(features)) => {
            let first = features.values_mut().next().expect("a feature");
            *first = Value::from(first.as_f64().unwrap() + 1.0);
        }
        _ => {
            let x = v["data"][0][0].as_f64().unwrap();
            v["data"][0][0] = Value::from(x + 1.0);
        }
    });
    let unknown_model = forged(whole[0], |v| v["model"] = Value::from(UNKNOWN_MODEL));
    let at: Vec<String> = produce(
        &pipeline.anomalies,
        &[changed_score, changed_feature, unknown_model],
    )
    .into_iter()
    .map(|(partition, offset)| format!("{}/{partition}/{offset}", pipeline.anomalies))
    .collect();

    let output = verify(
        &pipeline,
        &group,
        &models_dir,
        &["--json", "--from-beginning"],
    );
    let forgeries = report(&output, 1);
    println!("forgeries: {forgeries}");
    assert_eq!(count(&forgeries, "checked"), written + 4);
    assert_eq!(count(&forgeries, "identical"), written);
    assert_eq!(count(&forgeries, "different"), 3);
    assert_eq!(count(&forgeries, "model_not_found"), 1);
    assert_eq!(count(&forgeries, "duplicates"), 3, "copies of two sources");
    let differences = forgeries["differences"].as_array().unwrap();
    let listed: BTreeSet<&str> = differences
        .iter()
        .map(|d| d["anomaly"].as_str().unwrap())
        .collect();
    let normal_at = format!("{}/{}/{}", pipeline.anomalies, normal_at.0, normal_at.1);
    assert_eq!(
        listed,
        BTreeSet::from([normal_at.as_str(), at[0].as_str(), at[1].as_str()])
    );
    let problems = |at: &str| -> Vec<String> {
        let difference = differences.iter().find(|d| d["anomaly"] == at).unwrap();
        serde_json::from_value(difference["problems"].clone()).unwrap()
    };
    let score_problems = problems(&at[0]);
    assert_eq!(score_problems.len(), 2, "{score_problems:?}");
    assert!(
        score_problems[0].starts_with("anomaly_score "),
        "{score_problems:?}"
    );
    assert!(
        score_problems[1].starts_with("score ["),
        "{score_problems:?}"
    );
    let feature_problems = problems(&at[1]);
    assert_eq!(feature_problems.len(), 1, "{feature_problems:?}");
    assert!(
        feature_problems[0].starts_with("field data: ")
            || feature_problems[0].starts_with("feature "),
        "{feature_problems:?}"
    );
    let not_found = &forgeries["models_not_found"];
    assert_eq!(not_found[0]["model"], UNKNOWN_MODEL);
    assert_eq!(not_found[0]["anomalies"], 1);
    assert_eq!(
        not_found[0]["looked_for"],
        models_dir
            .join(format!("{UNKNOWN_MODEL}.bin"))
            .display()
            .to_string()
    );
    assert!(
        forgeries["range"]["skipped"]
            .as_str()
            .is_some_and(|why| why.starts_with("2 models in use")),
        "{}",
        forgeries["range"]
    );

    // The text names each one.
    let text = verify(&pipeline, &group, &models_dir, &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("result: 3 different, 1 model not found\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("\n  {}: anomaly_score ", at[0]))
            || stdout.contains(&format!("\n  {} from ", at[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  {UNKNOWN_MODEL} (1 anomaly): no such file in ")),
        "{stdout}"
    );

    // A model file deleted: every anomaly naming it is reported, with where it was looked for.
    std::fs::remove_file(&model_file).unwrap();
    let deleted = report(&verify(&pipeline, &group, &models_dir, &["--json"]), 1);
    assert_eq!(count(&deleted, "model_not_found"), written + 4);
    assert_eq!(count(&deleted, "identical"), 0);
    let gone = deleted["models_not_found"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model_id.as_str())
        .expect("the deleted model is listed");
    assert_eq!(gone["anomalies"], written + 3);
    assert_eq!(gone["looked_for"], model_file.display().to_string());
    assert!(
        gone["why"]
            .as_str()
            .unwrap()
            .starts_with("no such file in "),
        "{gone}"
    );
}

#[test]
fn a_topic_that_does_not_exist_is_a_usage_error() {
    let output = Command::new(workspace_bin("inspector"))
        .args(["verify", "--input-topic", &unique("verify-none")])
        .args(["--output-topic", &unique("verify-none")])
        .args(["--brokers", &testkit::bootstrap()])
        .output()
        .expect("run inspector verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}
