//! Helpers shared by the stats and alert tests: the broker at `$KAFKA_BOOTSTRAP` (default
//! 127.0.0.1:9092; start one with `scripts/broker.sh start`), unique topics, producing with
//! chosen partitions and timestamps, and polling for a condition.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus::ClientSettings;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub fn brokers() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn args() -> ClientSettings {
    let args = ClientSettings::new(brokers());
    if let Err(error) = bus::wait_for_broker(&args, Duration::from_secs(15)) {
        panic!("no Kafka broker: {error:#}; start one with scripts/broker.sh start");
    }
    args
}

/// Creates fresh topics `(name, partitions)`.
pub fn create(topics: &[(&str, i32)]) {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(bus::ensure_topics(&args(), topics))
        .unwrap();
}

/// A record to produce: partition, key, value, timestamp (ms).
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
}

/// Produces the records in order (one partition's records keep their order: the producer is
/// idempotent) and waits for every acknowledgement.
pub fn produce(topic: &str, records: &[Record]) {
    let producer: BaseProducer = args().producer_config(None).unwrap().create().unwrap();
    for record in records {
        producer
            .send(
                BaseRecord::to(topic)
                    .key(&record.key)
                    .payload(&record.value)
                    .partition(record.partition)
                    .timestamp(record.timestamp_ms),
            )
            .map_err(|(error, _)| error)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Polls `condition` every 50 ms; panics after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to a child process.
pub fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// Waits for a child to exit, at most `timeout`; kills it and panics if it does not.
pub fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("the process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
