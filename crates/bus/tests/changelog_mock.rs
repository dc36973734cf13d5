//! The changelog on librdkafka's in-process mock cluster, the one broker here that runs the
//! transaction protocol: states written by a transactional producer, as the exactly-once
//! detector writes them, are restored.
//!
//! The mock writes no transaction markers and reports no aborted transactions (an aborted
//! transaction's records are read as committed, even `read_committed`), so what a restore
//! does with those is left to Apache Kafka: see docs/design.md (the changelog of per-key state).

use std::collections::BTreeMap;
use std::future::pending;
use std::time::Duration;

use bus::changelog::{self, Restored, Update};
use bus::ClientSettings;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::Producer as _;

async fn restore(settings: &ClientSettings, topic: &str, partition: i32) -> Restored {
    tokio::time::timeout(
        Duration::from_secs(60),
        changelog::restore(settings, topic, partition, pending()),
    )
    .await
    .unwrap_or_else(|_| panic!("the restore of {topic}/{partition} did not end"))
    .unwrap()
}

fn sorted(restored: &Restored) -> BTreeMap<&[u8], &[u8]> {
    restored
        .states
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_written_in_transactions_are_restored_and_the_restore_ends() {
    let cluster = MockCluster::new(1).unwrap();
    let settings = ClientSettings::new(cluster.bootstrap_servers());
    // The mock does not serve CreateTopics or DescribeConfigs: the topics are made here, and
    // `ensure` accepts the changelog on its partitions alone.
    cluster.create_topic("input", 2, 1).unwrap();
    let topic = changelog::topic_name("g", "input").unwrap();
    cluster.create_topic(&topic, 2, 1).unwrap();
    assert_eq!(
        changelog::ensure(&settings, "g", "input", 1).await.unwrap(),
        topic
    );

    let producer = settings
        .clone()
        .with("transactional.id", "changelog-test")
        .with("message.timeout.ms", "30000")
        .future_producer(None)
        .unwrap();
    let wait = Duration::from_secs(30);
    producer.init_transactions(wait).unwrap();
    // Many transactions of many records, so the restore spans many fetches and ends at the
    // last one.
    let keys: Vec<Vec<u8>> = (0..500).map(|k| format!("key-{k}").into_bytes()).collect();
    let values: Vec<Vec<u8>> = (0..20).map(|t| format!("{t:060}").into_bytes()).collect();
    let mut written = 0;
    for value in &values {
        let updates: Vec<Update<'_>> = keys.iter().map(|key| Update::put(0, key, value)).collect();
        producer.begin_transaction().unwrap();
        written += changelog::write(&producer, &topic, &updates).await.unwrap();
        producer.commit_transaction(wait).unwrap();
    }
    producer.begin_transaction().unwrap();
    let last = [
        Update::tombstone(0, b"key-7"),
        Update::put(0, b"key-8", b"eight"),
    ];
    written += changelog::write(&producer, &topic, &last).await.unwrap();
    producer.commit_transaction(wait).unwrap();

    let restored = restore(&settings, &topic, 0).await;
    let mut expected: BTreeMap<&[u8], &[u8]> = keys
        .iter()
        .map(|key| (key.as_slice(), values[19].as_slice()))
        .collect();
    expected.remove(&b"key-7"[..]);
    expected.insert(b"key-8", b"eight");
    assert_eq!(sorted(&restored), expected);
    assert_eq!(restored.stats.records, written as u64);
    assert_eq!(restored.stats.tombstones, 1);

    let empty = restore(&settings, &topic, 1).await;
    assert!(empty.states.is_empty());
    assert_eq!(empty.stats.records, 0);
}
