//! [`LoggingContext`]: the client context of every process. librdkafka's logs go through
//! `log` with secret values masked; rebalances and failed commits are logged and rebalances
//! counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use crate::settings;

/// A consumer-group member with [`LoggingContext`].
pub type LoggingConsumer = StreamConsumer<LoggingContext>;

/// Client context for every process: librdkafka's logs through `log` with secret values
/// masked, rebalances and failed commits logged, rebalances counted.
#[derive(Clone)]
pub struct LoggingContext {
    secrets: Arc<Vec<String>>,
    rebalances: Arc<AtomicU64>,
}

impl LoggingContext {
    /// A context that masks the secret values in `config`.
    pub fn new(config: &ClientConfig) -> Self {
        // config_map() already hides librdkafka's own list of sensitive keys; get() has the
        // real values, which are what log lines would contain.
        let secrets = config
            .config_map()
            .keys()
            .filter(|key| settings::is_secret(key))
            .filter_map(|key| config.get(key))
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect();
        Self {
            secrets: Arc::new(secrets),
            rebalances: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Rebalances seen so far (assignments and revocations).
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), settings::REDACTED)
        })
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let message = self.mask(message);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => log::error!(target: "librdkafka", "{facility} {message}"),
            RDKafkaLogLevel::Warning => log::warn!(target: "librdkafka", "{facility} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                log::info!(target: "librdkafka", "{facility} {message}")
            }
            RDKafkaLogLevel::Debug => log::debug!(target: "librdkafka", "{facility} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log::warn!(target: "librdkafka", "{}: {}", self.mask(&error.to_string()), self.mask(reason));
    }
}

impl ConsumerContext for LoggingContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.rebalances.fetch_add(1, Ordering::Relaxed);
                log::info!("assigned partitions: {}", describe_partitions(partitions));
            }
            Rebalance::Revoke(partitions) => {
                self.rebalances.fetch_add(1, Ordering::Relaxed);
                log::info!("revoked partitions: {}", describe_partitions(partitions));
            }
            Rebalance::Error(error) => log::warn!("rebalance failed: {error}"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => log::debug!("committed {}", describe_offsets(offsets)),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => log::warn!("commit of {} failed: {error}", describe_offsets(offsets)),
        }
    }
}

/// `topic/partition` list, for logs.
pub fn describe_partitions(partitions: &TopicPartitionList) -> String {
    let names: Vec<String> = partitions
        .elements()
        .iter()
        .map(|element| format!("{}/{}", element.topic(), element.partition()))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn describe_offsets(offsets: &TopicPartitionList) -> String {
    offsets
        .elements()
        .iter()
        .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_in_log_lines() {
        let mut config = ClientConfig::new();
        config
            .set("sasl.password", "TopSecret-1")
            .set("sasl.username", "alice");
        let context = LoggingContext::new(&config);
        assert_eq!(
            context.mask("auth of alice with TopSecret-1 failed"),
            "auth of alice with [redacted] failed"
        );
    }

    #[test]
    fn partitions_are_described_for_logs() {
        let mut list = TopicPartitionList::new();
        assert_eq!(describe_partitions(&list), "none");
        list.add_partition("t", 0);
        list.add_partition("t", 2);
        assert_eq!(describe_partitions(&list), "t/0, t/2");
    }
}
