//! The changelog against a real broker at `$KAFKA_BOOTSTRAP` (default 127.0.0.1:9092; start
//! one with `scripts/broker.sh start --storage sqlite`): the topic, restores and writes.

use std::collections::HashMap;
use std::future::{pending, ready};
use std::time::Duration;

use bus::changelog::{self, Restored, Update};
use bus::{ClientSettings, Error};
use rdkafka::consumer::Consumer as _;
use rdkafka::producer::FutureRecord;
use rdkafka::producer::Producer as _;
use testkit::{settings as broker, unique};

/// A restore that has not ended by then hangs: the test fails instead of waiting forever.
const HANG: Duration = Duration::from_secs(120);

async fn restore(settings: &ClientSettings, topic: &str, partition: i32) -> Restored {
    tokio::time::timeout(
        HANG,
        changelog::restore(settings, topic, partition, pending()),
    )
    .await
    .unwrap_or_else(|_| panic!("the restore of {topic}/{partition} did not end"))
    .unwrap_or_else(|error| panic!("restore of {topic}/{partition}: {error}"))
}

fn text(states: &HashMap<Vec<u8>, Vec<u8>>) -> HashMap<String, String> {
    states
        .iter()
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

/// An input topic with `partitions` partitions and its changelog for a new group.
async fn changelog_for(settings: &ClientSettings, partitions: i32) -> (String, String) {
    let input = unique("t-input");
    bus::ensure_topics(settings, &[(&input, partitions)])
        .await
        .unwrap();
    let group = unique("g");
    let topic = changelog::ensure(settings, &group, &input, 1)
        .await
        .unwrap();
    (group, topic)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_changelog_is_created_compacted_with_the_inputs_partitions_and_checked_after() {
    let settings = broker();
    let input = unique("t-input");
    bus::ensure_topics(&settings, &[(&input, 3)]).await.unwrap();
    let group = unique("g");
    let topic = changelog::ensure(&settings, &group, &input, 1)
        .await
        .unwrap();
    assert_eq!(topic, format!("{group}.{input}.state"));
    let consumer = settings.base_consumer().unwrap();
    assert_eq!(bus::topic_partitions(&consumer, &topic).unwrap(), [0, 1, 2]);
    // Again: it exists, has the input's partitions and is compacted (read back from the
    // broker), which is fine.
    assert_eq!(
        changelog::ensure(&settings, &group, &input, 1)
            .await
            .unwrap(),
        topic
    );

    // A topic of that name made without compaction is refused: retention would delete
    // states.
    let plain_group = unique("g");
    let plain = changelog::topic_name(&plain_group, &input).unwrap();
    bus::ensure_topics(&settings, &[(&plain, 3)]).await.unwrap();
    let error = changelog::ensure(&settings, &plain_group, &input, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotCompacted { topic, .. } if *topic == plain),
        "{error}"
    );

    // One with other partitions is refused: partition p would not hold partition p's keys.
    let other_group = unique("g");
    let other = changelog::topic_name(&other_group, &input).unwrap();
    bus::ensure_topics(&settings, &[(&other, 2)]).await.unwrap();
    let error = changelog::ensure(&settings, &other_group, &input, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::ChangelogPartitions {
                partitions: 2,
                input_partitions: 3,
                ..
            }
        ),
        "{error}"
    );

    // No input topic, no changelog.
    let missing = unique("t-missing");
    let error = changelog::ensure(&settings, &group, &missing, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NoSuchTopic(ref t) if *t == missing),
        "{error}"
    );
    assert!(
        bus::topic_partitions(&consumer, &changelog::topic_name(&group, &missing).unwrap())
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_keeps_each_keys_newest_value_of_its_own_partition_only() {
    let settings = broker();
    let (_, topic) = changelog_for(&settings, 3).await;
    let producer = settings.future_producer(None).unwrap();
    // Partition 1's history: a and b updated, b then removed, c removed before it ever had a
    // state; the same key names in partitions 0 and 2 hold other values.
    let batches: [&[Update<'_>]; 3] = [
        &[
            Update::put(1, b"a", b"a1"),
            Update::put(1, b"b", b"b1"),
            Update::put(0, b"a", b"partition 0's a"),
            Update::put(2, b"b", b"partition 2's b"),
        ],
        &[
            Update::put(1, b"a", b"a2"),
            Update::tombstone(1, b"b"),
            Update::tombstone(1, b"c"),
            Update::put(1, b"d", b"d1"),
            Update::put(2, b"x", b"partition 2's x"),
        ],
        &[Update::put(1, b"a", b"a3"), Update::put(1, b"d", b"")],
    ];
    for batch in batches {
        let acknowledged = changelog::write(&producer, &topic, batch).await.unwrap();
        assert_eq!(acknowledged, batch.len());
    }

    let restored = restore(&settings, &topic, 1).await;
    assert_eq!(
        text(&restored.states),
        HashMap::from([("a".into(), "a3".into()), ("d".into(), String::new())]),
        "an empty value is a state, not a tombstone"
    );
    let stats = &restored.stats;
    assert_eq!((stats.low, stats.high), (0, 8));
    assert_eq!((stats.records, stats.tombstones, stats.keys), (8, 2, 2));
    assert_eq!(stats.bytes_kept, 1 + 2 + 1);

    let zero = restore(&settings, &topic, 0).await;
    assert_eq!(
        text(&zero.states),
        HashMap::from([("a".into(), "partition 0's a".into())])
    );
    let two = restore(&settings, &topic, 2).await;
    assert_eq!(
        text(&two.states),
        HashMap::from([
            ("b".into(), "partition 2's b".into()),
            ("x".into(), "partition 2's x".into())
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_partition_restores_to_nothing_and_a_stop_ends_a_restore() {
    let settings = broker();
    let (_, topic) = changelog_for(&settings, 2).await;
    let empty = restore(&settings, &topic, 0).await;
    assert!(empty.states.is_empty());
    assert_eq!(empty.stats.records, 0);
    assert_eq!(empty.stats.low, empty.stats.high);

    // A partition whose only records are gone again restores to nothing as well.
    let producer = settings.future_producer(None).unwrap();
    let updates = [Update::put(1, b"k", b"v"), Update::tombstone(1, b"k")];
    changelog::write(&producer, &topic, &updates).await.unwrap();
    let gone = restore(&settings, &topic, 1).await;
    assert!(gone.states.is_empty());
    assert_eq!((gone.stats.records, gone.stats.tombstones), (2, 1));

    // Asked to stop, it stops and returns no partial state.
    let error = changelog::restore(&settings, &topic, 1, ready(()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RestoreStopped { partition: 1, .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_without_a_key_are_counted_and_skipped() {
    let settings = broker();
    let (_, topic) = changelog_for(&settings, 1).await;
    let producer = settings.future_producer(None).unwrap();
    changelog::write(&producer, &topic, &[Update::put(0, b"k", b"v")])
        .await
        .unwrap();
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to(&topic)
                .partition(0)
                .payload(b"no key"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();
    let restored = restore(&settings, &topic, 0).await;
    assert_eq!(
        text(&restored.states),
        HashMap::from([("k".into(), "v".into())])
    );
    assert_eq!((restored.stats.records, restored.stats.unkeyed), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_fails_says_where_after_waiting_for_the_rest() {
    let settings = broker();
    let (_, topic) = changelog_for(&settings, 2).await;
    let producer = settings.future_producer(None).unwrap();
    // Make the producer know the topic's partitions, so partition 5 is refused.
    producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    let updates = [
        Update::put(0, b"a", b"1"),
        Update::put(5, b"b", b"2"),
        Update::put(1, b"c", b"3"),
    ];
    let error = changelog::write(&producer, &topic, &updates)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("{topic}/5")), "{error}");
    // What was queued before the failure was still delivered and waited for.
    let restored = restore(&settings, &topic, 0).await;
    assert_eq!(
        text(&restored.states),
        HashMap::from([("a".into(), "1".into())])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_transactions_updates_are_not_restored_and_do_not_hold_the_restore() {
    let settings = broker();
    let (_, topic) = changelog_for(&settings, 1).await;
    let plain = settings.future_producer(None).unwrap();
    changelog::write(&plain, &topic, &[Update::put(0, b"a", b"committed")])
        .await
        .unwrap();
    let transactional = settings
        .clone()
        .with("transactional.id", unique("txn"))
        .with("message.timeout.ms", "30000")
        .future_producer(None)
        .unwrap();
    let wait = Duration::from_secs(30);
    transactional.init_transactions(wait).unwrap();
    transactional.begin_transaction().unwrap();
    let open = [
        Update::put(0, b"a", b"uncommitted"),
        Update::put(0, b"b", b"uncommitted"),
    ];
    changelog::write(&transactional, &topic, &open)
        .await
        .unwrap();
    // Left open (Tansu 0.6.0 does not serve EndTxn; on Kafka it would end when it times out).
    // The records are in the partition: a read_uncommitted reader's high watermark shows them
    // (librdkafka's own default is read_committed).
    let uncommitted = settings
        .clone()
        .with("isolation.level", "read_uncommitted")
        .base_consumer()
        .unwrap();
    let (_, high) = uncommitted
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(high, 3);

    // The restore ends at the last stable offset, before the open transaction.
    let restored = restore(&settings, &topic, 0).await;
    assert_eq!(
        text(&restored.states),
        HashMap::from([("a".into(), "committed".into())])
    );
    assert_eq!((restored.stats.high, restored.stats.records), (1, 1));
}
