//! The trainer binary reading JSON records from a real broker at `$KAFKA_BOOTSTRAP` (default
//! 127.0.0.1:9092; start one with `scripts/broker.sh start`): `fit --topic` with named
//! features, and `fit --topic --follow`, whose refits keep the features in the model file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dataset::PaymentsParams;
use features::Features;
use iforest::IsolationForest;
use testkit::{create_topics, produce, unique, Guard, Record};

const TRAINER: &str = env!("CARGO_BIN_EXE_trainer");
const FEATURES: &str = "amount:log,/merchant/mcc:category,ts:hour";

/// A topic holding `count` payments (seed 2) and, first, a few records that are not JSON
/// objects.
fn payments_topic(prefix: &str, count: usize) -> String {
    let topic = unique(prefix);
    create_topics(&[(&topic, 2)]);
    let mut records: Vec<Record> = [&b"not json"[..], b"[1, 2]", b""]
        .iter()
        .map(|value| Record {
            value: value.to_vec(),
            ..Record::default()
        })
        .collect();
    records.extend(
        PaymentsParams {
            seed: 2,
            ..PaymentsParams::default()
        }
        .records()
        .unwrap()
        .take(count)
        .map(|payment| Record::keyed(payment.card.clone(), payment.to_json())),
    );
    produce(&topic, &records);
    topic
}

fn named_features(model: &IsolationForest) -> features::NamedFeatures {
    match Features::from_model(model).unwrap() {
        Features::Named(named) => named,
        Features::Data => panic!("the model names no features"),
    }
}

#[test]
fn fit_reads_json_records_from_a_topic() {
    let topic = payments_topic("t-trainer-json", 1500);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.bin");
    let output = Command::new(TRAINER)
        .args([
            "fit",
            "--topic",
            &topic,
            "--features",
            FEATURES,
            "--trees",
            "20",
        ])
        .args(["--brokers", &testkit::bootstrap(), "--topic-timeout", "60"])
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let model = IsolationForest::load(&out).unwrap();
    assert_eq!(
        model.training_rows(),
        1500,
        "the three other records left out"
    );
    assert_eq!(
        named_features(&model).names(),
        FEATURES.split(',').collect::<Vec<_>>()
    );
    let id = iforest::model_id(&std::fs::read(&out).unwrap());
    assert!(dir.path().join("by-id").join(format!("{id}.bin")).exists());
}

#[test]
fn follow_refits_keep_the_features() {
    let topic = payments_topic("t-trainer-follow", 600);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.bin");
    let mut child = Command::new(TRAINER)
        .args(["fit", "--topic", &topic, "--follow", "--features", FEATURES])
        .args(["--window", "500", "--trees", "20"])
        .args(["--brokers", &testkit::bootstrap()])
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let trainer = Guard(child);
    let (lines, refits) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let refit = refits
        .recv_timeout(Duration::from_secs(60))
        .expect("a first model within a minute");
    assert!(
        refit.contains("refitted (no model yet) on 500 rows"),
        "{refit}"
    );
    let model = IsolationForest::load(&out).unwrap();
    let id = iforest::model_id(&std::fs::read(&out).unwrap());
    assert!(refit.contains(&format!("model {id}")), "{refit}");
    assert!(dir.path().join("by-id").join(format!("{id}.bin")).exists());
    let named = named_features(&model);
    assert_eq!(named.names(), FEATURES.split(',').collect::<Vec<_>>());
    drop(trainer);
}
