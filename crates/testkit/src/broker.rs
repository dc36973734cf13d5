//! The broker the tests use: its address, settings for it once it answers, and topics on it.

use std::time::Duration;

use bus::ClientSettings;

use crate::wait_until;

/// The broker's address: `$KAFKA_BOOTSTRAP`, else `127.0.0.1:9092`.
pub fn bootstrap() -> String {
    std::env::var(bus::settings::BOOTSTRAP_ENV)
        .unwrap_or_else(|_| bus::settings::DEFAULT_BROKERS.to_string())
}

/// Settings for the test broker, once it answers; a test without a broker fails here with a
/// message saying how to start one.
pub fn settings() -> ClientSettings {
    let settings = ClientSettings::new(bootstrap());
    if let Err(error) = bus::wait_for_broker(&settings, Duration::from_secs(15)) {
        panic!(
            "no Kafka broker: {error}; start one with `scripts/broker.sh start` or run \
             `scripts/test.sh`"
        );
    }
    settings
}

/// Creates the topics `(name, partitions)` that are missing and waits until the metadata
/// shows every partition.
pub fn create_topics(topics: &[(&str, i32)]) {
    let settings = settings();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(bus::ensure_topics(&settings, topics))
        .unwrap_or_else(|error| panic!("cannot create {topics:?}: {error}"));
    let consumer = settings.base_consumer().expect("consumer");
    for (name, partitions) in topics {
        wait_until(Duration::from_secs(30), &format!("topic {name}"), || {
            bus::topic_partitions(&consumer, name)
                .is_ok_and(|found| found.len() as i32 == *partitions)
        });
    }
}
