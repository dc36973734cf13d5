//! The shared Kafka glue against a real broker at `$KAFKA_BOOTSTRAP` (default
//! 127.0.0.1:9092; start one with `scripts/broker.sh start`).

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use testkit::{settings as args, unique};

#[tokio::test(flavor = "multi_thread")]
async fn topics_are_created_once_and_a_group_member_sees_its_assignment() {
    let args = args();
    let topic = unique("t-bus");
    bus::ensure_topics(&args, &[(&topic, 3)]).await.unwrap();
    // Again: the topic exists, which is fine.
    bus::ensure_topics(&args, &[(&topic, 3)]).await.unwrap();
    let admin_view = args.base_consumer().unwrap();
    let metadata = admin_view
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let producer = args.future_producer(None).unwrap();
    for id in 0..3 {
        let key = id.to_string();
        let payload = format!(r#"{{"id": {id}, "data": [[1, 2]]}}"#);
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&payload)
                    .partition(id),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .unwrap();
    }

    let consumer = args.stream_consumer(&unique("g-bus"), None).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut keys = Vec::new();
    while keys.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "read only {keys:?} of 3 records");
        if let Ok(message) = tokio::time::timeout(left, consumer.recv()).await {
            let message = message.unwrap();
            keys.push(String::from_utf8_lossy(message.key().unwrap()).into_owned());
        }
    }
    keys.sort();
    assert_eq!(keys, ["0", "1", "2"]);
    assert!(
        consumer.context().rebalances() >= 1,
        "the assignment was not seen by the context"
    );
    let assignment = consumer.assignment().unwrap();
    assert_eq!(
        assignment.count(),
        3,
        "{}",
        bus::describe_partitions(&assignment)
    );
}
