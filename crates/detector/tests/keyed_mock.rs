//! A detector whose model has per-key features, in-process against librdkafka's mock cluster:
//! stopped mid-stream, its offsets set back (as a crash before the commit would leave them),
//! and run again. Every anomaly's `features` must equal the offline computation over the
//! records in partition order, bit for bit; none is lost, none invented, and records already
//! applied to their key's state are replayed without output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use features::{FeatureParams, RecordMeta, StateStore};
use futures::future::join_all;
use iforest::{Contamination, IsolationForestParams};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

const INPUT: &str = "payments";
const OUTPUT: &str = "anomalies";
const DLQ: &str = "payments.dlq";
const GROUP: &str = "keyed";
const PARTITIONS: i32 = 3;
const RECORDS: i64 = 1500;
const CARDS: i64 = 40;

/// Offline: the row of every record, by (partition, offset), computed with one store per
/// partition over the records in offset order; and the sources the forest flags.
struct Offline {
    rows: BTreeMap<(i32, i64), Vec<f64>>,
    flagged: BTreeSet<(i32, i64)>,
}

struct Setup {
    cluster: MockCluster<'static, DefaultProducerContext>,
    model: PathBuf,
    forest: iforest::IsolationForest,
    producer: FutureProducer,
    /// Where each record produced landed: (partition, offset, index of its payment).
    landed: Vec<(i32, i64, usize)>,
}

/// Card `card`'s `i`th payment: around its own amount, now and then 30 times that.
fn payment(i: i64) -> (String, String) {
    let card = i % CARDS;
    let habit = 5 * (card + 1);
    let amount = if i % 97 == 50 {
        habit * 30
    } else {
        habit + i % 4
    };
    let value = json!({"id": i, "card": format!("card-{card}"), "amount": amount,
                       "ts": 1_700_000_000_000i64 + 20_000 * i});
    (format!("card-{card}"), value.to_string())
}

impl Setup {
    /// A mock cluster with the topics and the group's changelog, a per-key model on disk, and
    /// payments `0..first` produced.
    async fn new(name: &str, first: i64) -> Setup {
        let _ = env_logger::builder().is_test(true).try_init();
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic(INPUT, PARTITIONS, 1).expect("topic");
        cluster.create_topic(OUTPUT, 1, 1).expect("topic");
        cluster.create_topic(DLQ, 1, 1).expect("topic");
        // The mock broker serves no CreateTopics: the changelog exists, as `inspector
        // create-topics --state-for` makes it; the detector checks its partitions.
        let changelog = bus::changelog::topic_name(GROUP, INPUT).expect("name");
        cluster
            .create_topic(&changelog, PARTITIONS, 1)
            .expect("topic");

        // A model of per-card habits, fitted on ordinary payments.
        let training: Vec<serde_json::Value> = (0..2000)
            .map(|i| {
                let card = i % CARDS;
                json!({"card": format!("card-{card}"), "amount": 5 * (card + 1) + i % 4,
                       "ts": 20_000 * i})
            })
            .collect();
        let fitted = FeatureParams::new("amount:zscore,amount:delta,count:10m,since_last")
            .key_field(Some("card".into()))
            .time_field(Some("ts".into()))
            .check()
            .expect("features")
            .fit(&training)
            .expect("fit");
        let forest = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .feature_names(fitted.features.names())
            .seed(7)
            .fit(&fitted.rows, fitted.features.len())
            .expect("forest");
        let forest = fitted.features.attach(forest);
        let dir =
            std::env::temp_dir().join(format!("detector-keyed-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let model = dir.join("model.bin");
        forest.save(&model).expect("save");

        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .expect("producer");
        let mut setup = Setup {
            cluster,
            model,
            forest,
            producer,
            landed: Vec::new(),
        };
        setup.produce(0..first).await;
        setup
    }

    /// Produces payments `ids` (keyed by card: librdkafka keeps a partition's order).
    async fn produce(&mut self, ids: std::ops::Range<i64>) {
        let payloads: Vec<(String, String)> = ids.clone().map(payment).collect();
        let deliveries = payloads.iter().map(|(key, value)| {
            self.producer.send(
                FutureRecord::to(INPUT).key(key).payload(value),
                Duration::from_secs(10),
            )
        });
        for (id, delivery) in ids.zip(join_all(deliveries).await) {
            let delivery = delivery.expect("delivered");
            self.landed
                .push((delivery.partition, delivery.offset, id as usize));
        }
    }

    /// The offline computation over every record produced, each partition in offset order.
    fn offline(&self) -> Offline {
        let mut landed = self.landed.clone();
        landed.sort_unstable();
        let named = features::Features::from_model(&self.forest)
            .expect("features")
            .named()
            .cloned()
            .expect("named");
        let mut stores: BTreeMap<i32, StateStore> = BTreeMap::new();
        let mut rows = BTreeMap::new();
        let mut flagged = BTreeSet::new();
        for (partition, offset, id) in landed {
            let (key, value) = payment(id as i64);
            let store = stores
                .entry(partition)
                .or_insert_with(|| StateStore::new(&named));
            let meta = RecordMeta {
                key: Some(key.as_bytes()),
                timestamp_ms: None,
                offset,
            };
            let mut row = Vec::new();
            let applied = store
                .read(&named, value.as_bytes(), meta, &mut row)
                .expect("read");
            assert!(!applied.replayed);
            if self.forest.predict(&row).expect("score") {
                flagged.insert((partition, offset));
            }
            rows.insert((partition, offset), row);
        }
        assert!(flagged.len() >= 10, "flagged: {}", flagged.len());
        Offline { rows, flagged }
    }

    fn config(&self) -> detector::config::ConfigBuilder {
        let kafka = bus::ClientSettings::new(self.cluster.bootstrap_servers())
            .with("session.timeout.ms", "6000");
        detector::Config::builder(self.model.clone())
            .kafka(kafka)
            .group(GROUP)
            .input_topic(INPUT)
            .dead_letter_topic(DLQ)
            .batch_size(100)
            .startup_timeout(Duration::from_secs(10))
    }

    /// Sets the group's committed offsets to `offsets`, as a member of the group (the mock
    /// cluster takes commits from members only).
    fn commit(&self, offsets: &BTreeMap<i32, i64>) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .expect("consumer");
        consumer.subscribe(&[INPUT]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.assignment().expect("assignment").count() < PARTITIONS as usize {
            assert!(Instant::now() < deadline, "no assignment");
            // Nothing is read: the assignment is not yet positioned when a record arrives.
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in offsets {
            list.add_partition_offset(INPUT, partition, Offset::Offset(offset))
                .expect("offset");
        }
        consumer.commit(&list, CommitMode::Sync).expect("commit");
        consumer.unsubscribe();
    }

    /// The group's committed offsets.
    fn committed(&self) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", GROUP)
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            list.add_partition(INPUT, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed");
        committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect()
    }

    /// Every anomaly written: (partition, offset) → each copy's features.
    fn anomalies(&self, expected: usize) -> BTreeMap<(i32, i64), Vec<Vec<f64>>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", "reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(OUTPUT, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen: BTreeMap<(i32, i64), Vec<Vec<f64>>> = BTreeMap::new();
        let mut count = 0;
        let mut last = Instant::now();
        while Instant::now() < deadline
            && (count < expected || last.elapsed() < Duration::from_secs(1))
        {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("read");
                let anomaly = schema::Anomaly::decode(message.payload().unwrap_or_default())
                    .expect("an anomaly");
                seen.entry((anomaly.partition, anomaly.offset))
                    .or_default()
                    .push(anomaly.features);
                count += 1;
                last = Instant::now();
            }
        }
        seen
    }
}

fn bits(row: &[f64]) -> Vec<u64> {
    row.iter().map(|value| value.to_bits()).collect()
}

/// The first run stops after 600 records; the group's offsets are then set back by up to 150
/// records per partition, as a crash between the state writes and the commit leaves them.
/// The second run restores every partition's key states, replays (without output) the
/// records already applied, and scores the rest with the states an uninterrupted run has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_and_its_successor_give_every_anomaly_the_uninterrupted_features() {
    let setup = Setup::new("restart", RECORDS).await;
    let first = detector::run(
        setup.config().max_records(600).build().expect("config"),
        std::future::pending(),
    )
    .await
    .expect("first run");
    assert_eq!(first.consumed, 600);
    let committed = setup.committed();
    assert!(!committed.is_empty(), "the first run committed offsets");
    let set_back: BTreeMap<i32, i64> = committed
        .iter()
        .map(|(&partition, &offset)| (partition, (offset - 150).max(0)))
        .collect();
    let replays: i64 = committed
        .values()
        .zip(set_back.values())
        .map(|(a, b)| a - b)
        .sum();
    assert!(replays > 0, "offsets set back: {committed:?}");
    setup.commit(&set_back);

    let metrics = detector::metrics::Metrics::new();
    let second = detector::run(
        setup
            .config()
            .idle_exit(Duration::from_secs(1))
            .metrics(metrics.clone())
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("second run");
    assert_eq!(
        second.consumed as i64,
        RECORDS - 600 + replays,
        "the second run reads the rest and the records set back"
    );
    assert_eq!(
        second.scored + second.dead_letters,
        (RECORDS - 600) as u64,
        "records already applied to their key's state are not scored again"
    );
    let text = metrics.render();
    let replayed = per_partition(&text, "detector_records_replayed_total");
    assert_eq!(replayed as i64, replays, "{text}");
    assert!(
        sample(&text, "detector_state_restores_total") >= 1.0,
        "{text}"
    );

    let offline = &setup.offline();
    let seen = setup.anomalies(offline.flagged.len());
    let sources: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    let lost: Vec<_> = offline.flagged.difference(&sources).collect();
    let unexpected: Vec<_> = sources.difference(&offline.flagged).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    for (source, copies) in &seen {
        let expected = bits(&offline.rows[source]);
        for features in copies {
            assert_eq!(bits(features), expected, "features of {source:?}");
        }
    }
    let duplicates: usize = seen.values().map(|copies| copies.len() - 1).sum();
    assert_eq!(duplicates, 0, "a replayed record is not written again");
}

/// The value of the sample named exactly `name` in OpenMetrics `text` (0 when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// With `--exactly-once` the state changes go into each batch's transaction. The mock cluster
/// keeps no offsets committed in transactions, so the second run reads the topic from its
/// start: every record the first run committed is replayed from its key's state, without
/// output, and the rest meet exactly the states the first run left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_writes_the_states_in_the_transactions_and_a_rerun_replays_them() {
    let setup = Setup::new("eos", RECORDS).await;
    let first = detector::run(
        setup
            .config()
            .exactly_once(Some("keyed-1".into()))
            .max_records(600)
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("first run");
    assert_eq!((first.consumed, first.aborted), (600, 0));
    let metrics = detector::metrics::Metrics::new();
    let second = detector::run(
        setup
            .config()
            .exactly_once(Some("keyed-2".into()))
            .idle_exit(Duration::from_secs(1))
            .metrics(metrics.clone())
            .build()
            .expect("config"),
        std::future::pending(),
    )
    .await
    .expect("second run");
    let text = metrics.render();
    let replayed = per_partition(&text, "detector_records_replayed_total");
    assert_eq!(second.consumed as i64, RECORDS, "read from the start");
    assert_eq!(replayed as i64, 600, "{text}");
    assert_eq!(second.scored + second.dead_letters, (RECORDS - 600) as u64);
    assert!(sample(&text, "detector_state_writes_total") > 0.0, "{text}");

    let offline = &setup.offline();
    let seen = setup.anomalies(offline.flagged.len());
    let sources: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    assert_eq!(
        sources, offline.flagged,
        "anomalies as offline scoring flags them"
    );
    for (source, copies) in &seen {
        assert_eq!(copies.len(), 1, "{source:?} written once");
        assert_eq!(bits(&copies[0]), bits(&offline.rows[source]), "{source:?}");
    }
}

/// The sum over partitions of a per-partition sample.
fn per_partition(text: &str, name: &str) -> f64 {
    (0..PARTITIONS)
        .map(|p| sample(text, &format!("{name}{{partition=\"{p}\"}}")))
        .sum()
}

/// Polls `condition` every 50 ms for up to 60 s.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second detector joins while the first is reading: the rebalance revokes every partition
/// of the first (which drops its states, keeps neither the state nor the offsets of batches
/// read before it, and restores what it is assigned again) while payments keep coming. Every
/// anomaly has the uninterrupted run's features; none is lost or invented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_mid_stream_keeps_every_anomaly_s_features() {
    let mut setup = Setup::new("rebalance", 400).await;
    let start = |metrics: &detector::metrics::Metrics| {
        let config = setup
            .config()
            .idle_exit(Duration::from_secs(10))
            .metrics(metrics.clone())
            .build()
            .expect("config");
        tokio::spawn(detector::run(config, std::future::pending()))
    };
    let (metrics_a, metrics_b) = (
        detector::metrics::Metrics::new(),
        detector::metrics::Metrics::new(),
    );
    let first = start(&metrics_a);
    until("the first detector to read 400 records", || {
        per_partition(&metrics_a.render(), "detector_records_consumed_total") >= 400.0
    })
    .await;
    let second = start(&metrics_b);
    // Payments keep coming while the group rebalances.
    for chunk in 0..10 {
        let from = 400 + chunk * 50;
        setup.produce(from..from + 50).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("the rebalance", || {
        sample(&metrics_a.render(), "detector_rebalances_total") >= 3.0
            && sample(&metrics_b.render(), "detector_rebalances_total") >= 1.0
    })
    .await;
    setup.produce(900..RECORDS).await;
    let first = first.await.expect("first task").expect("first run");
    let second = second.await.expect("second task").expect("second run");
    println!("first: {first:?}\nsecond: {second:?}");
    assert!(second.consumed > 0, "the second detector got partitions");
    for metrics in [&metrics_a, &metrics_b] {
        let text = metrics.render();
        let consumed = per_partition(&text, "detector_records_consumed_total");
        let accounted = per_partition(&text, "detector_records_scored_total")
            + per_partition(&text, "detector_records_dead_lettered_total")
            + per_partition(&text, "detector_records_replayed_total");
        assert_eq!(consumed, accounted, "{text}");
    }

    let offline = &setup.offline();
    let seen = setup.anomalies(offline.flagged.len());
    let sources: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    let lost: Vec<_> = offline.flagged.difference(&sources).collect();
    let unexpected: Vec<_> = sources.difference(&offline.flagged).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    for (source, copies) in &seen {
        for features in copies {
            assert_eq!(bits(features), bits(&offline.rows[source]), "{source:?}");
        }
    }
    let duplicates: usize = seen.values().map(|copies| copies.len() - 1).sum();
    println!(
        "{} anomalies, {duplicates} duplicates",
        offline.flagged.len()
    );
}
