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

#[test]
fn per_key_features_from_a_topic_read_each_partition_in_order_by_kafka_key_and_time() {
    let topic = unique("t-trainer-perkey");
    create_topics(&[(&topic, 2)]);
    let payments: Vec<dataset::Payment> = PaymentsParams {
        seed: 4,
        cards: 60,
        ..PaymentsParams::default()
    }
    .records()
    .unwrap()
    .take(1200)
    .collect();
    // Keyed by card (each card's payments in one partition), stamped with their time.
    let records: Vec<Record> = payments
        .iter()
        .map(|payment| Record {
            timestamp_ms: Some(payment.time_ms()),
            ..Record::keyed(payment.card.clone(), payment.to_json())
        })
        .collect();
    produce(&topic, &records);
    let list = "amount:log,amount:log:zscore,count:1h,since_last";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.bin");
    let output = Command::new(TRAINER)
        .args([
            "fit",
            "--topic",
            &topic,
            "--features",
            list,
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
    assert_eq!(model.training_rows(), 1200);
    let named = named_features(&model);
    let settings = named.spec().per_key();
    assert_eq!((settings.key_field(), settings.time_field()), (None, None));
    // What the library gives for the topic's records, each partition in offset order, keyed
    // and timed by Kafka: the same training rows (compared through the model's summary, which
    // does not depend on how the partitions interleave, but for rounding in the mean).
    let received = testkit::read_topic(&topic, Duration::from_secs(60), |r| r.len() >= 1200);
    let values: Vec<serde_json::Value> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.value).unwrap())
        .collect();
    let fitted = features::FeatureParams::new(list)
        .check()
        .unwrap()
        .fit_records(
            received
                .iter()
                .zip(&values)
                .map(|(r, value)| features::TrainingRecord {
                    value,
                    partition: r.partition,
                    meta: features::RecordMeta {
                        key: r.key.as_deref().map(str::as_bytes),
                        timestamp_ms: r.timestamp_ms,
                        offset: r.offset,
                    },
                }),
        )
        .unwrap();
    let expected = iforest::summarise(&fitted.rows, named.len());
    for (got, expected) in model.summary().iter().zip(&expected) {
        assert_eq!((got.min, got.max), (expected.min, expected.max));
        assert!((got.mean - expected.mean).abs() <= 1e-9 * expected.mean.abs().max(1.0));
    }
    // since_last: seconds between a card's payments, as their timestamps say.
    let since_last = &model.summary()[3];
    assert!(since_last.max > 3600.0, "{since_last:?}");
}
