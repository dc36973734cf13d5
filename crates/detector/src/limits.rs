//! How large an output may be ([`OutputLimits`]), and learning it at start ([`learn`]).
//!
//! A record is refused when it is larger than the producer's `message.max.bytes` (librdkafka
//! refuses it before sending) or than its topic's `max.message.bytes` (the broker refuses the
//! record batch that holds it). Both count more than the value: the key, the record's own
//! framing (at most 36 bytes without headers, which the detector does not write) and, for
//! the broker, the record batch's header (61 bytes): [`RECORD_FRAMING`] in all. A further
//! [`MARGIN`] stays unused, for what that count cannot see (a compression codec's own framing
//! on a value that does not compress).

use std::time::Duration;

use rdkafka::admin::{AdminOptions, ResourceSpecifier};

use crate::output::Destination;

/// Bytes a record written alone costs beyond its key and value: the record batch header (61)
/// and the record's framing without headers (at most 36).
pub const RECORD_FRAMING: usize = 97;
/// Bytes left unused below each limit.
pub const MARGIN: usize = 1024;
/// librdkafka's default `message.max.bytes`.
pub const LIBRDKAFKA_DEFAULT: usize = 1_000_000;
/// How long the broker may take to answer DescribeConfigs at start.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest record (key, value and framing) each output topic takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// The anomalies topic's.
    pub anomalies: usize,
    /// The dead-letter topic's.
    pub dead_letters: usize,
}

impl Default for OutputLimits {
    /// librdkafka's default `message.max.bytes` for both.
    fn default() -> Self {
        Self::uniform(LIBRDKAFKA_DEFAULT)
    }
}

impl OutputLimits {
    /// The same limit for both topics.
    pub fn uniform(bytes: usize) -> Self {
        Self {
            anomalies: bytes,
            dead_letters: bytes,
        }
    }

    /// The limit of `destination`'s topic.
    pub fn of(&self, destination: Destination) -> usize {
        match destination {
            Destination::Anomalies => self.anomalies,
            Destination::DeadLetters => self.dead_letters,
        }
    }

    /// The most bytes a value may have, next to a key of `key_len` bytes, in `destination`'s
    /// topic, framing and margin counted.
    pub fn value_budget(&self, destination: Destination, key_len: usize) -> usize {
        self.of(destination)
            .saturating_sub(RECORD_FRAMING + MARGIN + key_len)
    }

    /// Whether a record of this key and value fits `destination`'s topic.
    pub fn fits(&self, destination: Destination, key_len: usize, value_len: usize) -> bool {
        value_len <= self.value_budget(destination, key_len)
    }
}

/// The limits of the output topics: the producer's `message.max.bytes` (what the detector's
/// producer settings resolve to in librdkafka, defaults included), lowered to each topic's
/// `max.message.bytes` where the broker answers DescribeConfigs with one. Logs where each
/// came from.
pub async fn learn(
    kafka: &bus::ClientSettings,
    producer: usize,
    anomalies: &str,
    dead_letters: &str,
) -> OutputLimits {
    let described = describe(kafka, [anomalies, dead_letters]).await;
    let mut limits = OutputLimits::uniform(producer);
    for (destination, topic) in [
        (Destination::Anomalies, anomalies),
        (Destination::DeadLetters, dead_letters),
    ] {
        let (limit, source) = match described.iter().find(|(name, _)| name == topic) {
            Some((_, Ok(Some(topic_limit)))) if *topic_limit < producer => (
                *topic_limit,
                format!("the topic's max.message.bytes={topic_limit}"),
            ),
            Some((_, Ok(Some(topic_limit)))) => (
                producer,
                format!(
                    "the producer's message.max.bytes={producer} (the topic's \
                     max.message.bytes={topic_limit} is larger)"
                ),
            ),
            Some((_, Ok(None))) => (
                producer,
                format!(
                    "the producer's message.max.bytes={producer} (the broker names no \
                     max.message.bytes for the topic)"
                ),
            ),
            Some((_, Err(why))) => (
                producer,
                format!("the producer's message.max.bytes={producer} (DescribeConfigs: {why})"),
            ),
            None => (
                producer,
                format!("the producer's message.max.bytes={producer}"),
            ),
        };
        match destination {
            Destination::Anomalies => limits.anomalies = limit,
            Destination::DeadLetters => limits.dead_letters = limit,
        }
        log::info!(
            "{topic}: records up to {limit} bytes, from {source}; larger outputs are reduced"
        );
    }
    limits
}

/// Each output topic's `max.message.bytes` as the broker describes it (None: it names none),
/// or why it did not answer.
async fn describe(
    kafka: &bus::ClientSettings,
    names: [&str; 2],
) -> Vec<(String, Result<Option<usize>, String>)> {
    // librdkafka waits out the whole timeout on a broker that does not serve DescribeConfigs
    // (librdkafka's mock cluster): ask its ApiVersions first where that is plain TCP.
    let settings = kafka.clone();
    let served = tokio::task::spawn_blocking(move || serves_describe_configs(&settings))
        .await
        .ok()
        .flatten();
    if served == Some(false) {
        return names
            .iter()
            .map(|name| {
                let why = "the broker does not serve DescribeConfigs".to_string();
                (name.to_string(), Err(why))
            })
            .collect();
    }
    let admin = match kafka.admin() {
        Ok(admin) => admin,
        Err(error) => {
            return names
                .iter()
                .map(|name| (name.to_string(), Err(error.to_string())))
                .collect()
        }
    };
    let resources: Vec<ResourceSpecifier<'_>> = names
        .iter()
        .map(|name| ResourceSpecifier::Topic(name))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_TIMEOUT));
    let answer = tokio::time::timeout(
        DESCRIBE_TIMEOUT + Duration::from_secs(1),
        admin.describe_configs(&resources, &options),
    )
    .await;
    match answer {
        Ok(Ok(results)) => names
            .iter()
            .zip(results)
            .map(|(name, result)| {
                let limit = result
                    .map(|resource| {
                        resource
                            .get("max.message.bytes")
                            .and_then(|entry| entry.value.as_deref())
                            .and_then(|value| value.parse().ok())
                    })
                    .map_err(|code| code.to_string());
                (name.to_string(), limit)
            })
            .collect(),
        Ok(Err(error)) => names
            .iter()
            .map(|name| (name.to_string(), Err(error.to_string())))
            .collect(),
        Err(_) => names
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    Err(format!("no answer within {DESCRIBE_TIMEOUT:?}")),
                )
            })
            .collect(),
    }
}

/// Whether the first bootstrap server that answers ApiVersions lists DescribeConfigs (key
/// 32); None when it cannot be asked over plain TCP (TLS, SASL) or none answers.
fn serves_describe_configs(kafka: &bus::ClientSettings) -> Option<bool> {
    const DESCRIBE_CONFIGS: i16 = 32;
    let config = kafka.client_config();
    let plain = config
        .get("security.protocol")
        .is_none_or(|protocol| protocol.eq_ignore_ascii_case("plaintext"));
    if !plain {
        return None;
    }
    let servers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    servers
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .find_map(|server| bus::api_versions::api_versions(server, Duration::from_secs(2)).ok())
        .map(|versions| versions.contains_key(&DESCRIBE_CONFIGS))
}

/// What the producer's `message.max.bytes` resolves to in librdkafka (the user's setting or
/// librdkafka's default).
pub fn producer_limit(config: &rdkafka::ClientConfig) -> usize {
    config
        .create_native_config()
        .ok()
        .and_then(|native| native.get("message.max.bytes").ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(LIBRDKAFKA_DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_margin_and_key_count_against_the_limit() {
        let limits = OutputLimits {
            anomalies: 10_000,
            dead_letters: 1_000_000,
        };
        let budget = 10_000 - RECORD_FRAMING - MARGIN - 5;
        assert_eq!(limits.value_budget(Destination::Anomalies, 5), budget);
        assert!(limits.fits(Destination::Anomalies, 5, budget));
        assert!(!limits.fits(Destination::Anomalies, 5, budget + 1));
        assert!(limits.fits(Destination::DeadLetters, 5, budget + 1));
        assert_eq!(
            OutputLimits::uniform(100).value_budget(Destination::Anomalies, 0),
            0
        );
    }

    #[test]
    fn the_producer_limit_is_librdkafka_s_default_or_the_setting() {
        let settings = bus::ClientSettings::new("127.0.0.1:1");
        let config = settings.producer_config(None).unwrap();
        assert_eq!(producer_limit(&config), 1_000_000);
        let raised = settings.with("message.max.bytes", "33554432");
        let config = raised.producer_config(None).unwrap();
        assert_eq!(producer_limit(&config), 33_554_432);
    }
}
