//! [`ClientSettings`]: the user's connection settings, plain data, and the librdkafka clients
//! built from them over our defaults.
//!
//! Precedence: our defaults < the user's settings (a properties file's, then `-X`'s) < what a
//! mode requires ([`Requirements`]), which a contradicting user setting cannot reach: it is
//! refused first. `bootstrap.servers` comes from `brokers` unless the user's settings set it.

use std::fmt;

use rdkafka::admin::AdminClient;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use crate::context::{LoggingConsumer, LoggingContext};
use crate::error::{Error, Result};
use crate::settings::{self, Requirements};

/// Where the cluster is and how to talk to it: plain data, built by the command line's
/// [`KafkaArgs`](crate::KafkaArgs) or directly (`ClientSettings::new(brokers).with(k, v)`).
/// `Debug` shows secrets as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// librdkafka properties in order of precedence: a later one wins over an earlier one.
    pub properties: Vec<(String, String)>,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(key, value)| format!("{key}={}", settings::redact(key, value)))
            .collect();
        f.debug_struct("ClientSettings")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .finish()
    }
}

impl ClientSettings {
    /// Settings for `brokers` and nothing else.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
        }
    }

    /// The same with one more property, winning over those before it.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The user's settings with `bootstrap.servers` first, unless they set it.
    fn user_settings(&self) -> impl Iterator<Item = (&str, &str)> {
        let bootstrap = (!self
            .properties
            .iter()
            .any(|(key, _)| key == "bootstrap.servers"))
        .then_some(("bootstrap.servers", self.brokers.as_str()));
        bootstrap.into_iter().chain(
            self.properties
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
    }

    fn build(
        &self,
        defaults: &[(String, String)],
        required: Option<&Requirements>,
    ) -> Result<ClientConfig> {
        if let Some(required) = required {
            self.check(required)?;
        }
        let mut config = ClientConfig::new();
        for (key, value) in defaults {
            config.set(key, value);
        }
        for (key, value) in self.user_settings() {
            config.set(key, value);
        }
        for (key, value) in required.map_or(&[][..], Requirements::settings) {
            config.set(key, value);
        }
        Ok(config)
    }

    /// Refuses a user setting that contradicts what `required`'s mode needs. The processes
    /// call this at start, before connecting, so such a run never begins.
    pub fn check(&self, required: &Requirements) -> Result<()> {
        required.check(&self.properties).map_err(Error::from)
    }

    /// Base configuration (no producer or consumer defaults).
    pub fn client_config(&self) -> ClientConfig {
        self.build(&[], None)
            .unwrap_or_else(|_| unreachable!("nothing is required, so nothing is refused"))
    }

    /// Producer configuration: [`settings::producer_defaults`], then the user's, then what
    /// `required` needs (refused if the user's contradict it).
    pub fn producer_config(&self, required: Option<&Requirements>) -> Result<ClientConfig> {
        self.build(&settings::producer_defaults(), required)
    }

    /// Consumer-group member configuration: [`settings::consumer_defaults`], then the
    /// user's, then what `required` needs.
    pub fn consumer_config(
        &self,
        group: &str,
        required: Option<&Requirements>,
    ) -> Result<ClientConfig> {
        self.build(&settings::consumer_defaults(group), required)
    }

    /// Configuration for a client of this crate's own that needs some settings whatever the
    /// user's are (the restore's `isolation.level=read_committed`): the user's settings, then
    /// `fixed`.
    pub(crate) fn config_over(&self, fixed: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.client_config();
        for (key, value) in fixed {
            config.set(*key, *value);
        }
        config
    }

    /// The effective settings for logs, secrets redacted.
    pub fn describe(&self) -> String {
        redacted(&self.client_config())
    }

    /// An asynchronous producer, with what `required` needs.
    pub fn future_producer(
        &self,
        required: Option<&Requirements>,
    ) -> Result<FutureProducer<LoggingContext>> {
        let config = self.producer_config(required)?;
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "producer"))
    }

    /// A consumer-group member whose context logs rebalances and commits, with what
    /// `required` needs.
    pub fn stream_consumer(
        &self,
        group: &str,
        required: Option<&Requirements>,
    ) -> Result<LoggingConsumer> {
        let config = self.consumer_config(group, required)?;
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "consumer"))
    }

    /// A consumer for manual assignment (tools): no group joined, nothing committed.
    pub fn base_consumer(&self) -> Result<BaseConsumer<LoggingContext>> {
        let mut config = self.client_config();
        config
            .set("group.id", "kafka-iforest-tools")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "consumer"))
    }

    /// An admin client.
    pub fn admin(&self) -> Result<AdminClient<LoggingContext>> {
        let config = self.client_config();
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "admin client"))
    }
}

/// Every setting as `key=value`, secrets replaced by `[redacted]`, sorted by key.
pub fn redacted(config: &ClientConfig) -> String {
    config
        .config_map()
        .iter()
        .map(|(key, value)| format!("{key}={}", settings::redact(key, value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a client librdkafka would not create (`what`: "producer", "consumer", …).
/// librdkafka's configuration errors quote the key and the value: here a secret's value is
/// replaced by `[redacted]`.
pub fn creation_error(error: KafkaError, what: &'static str) -> Error {
    let detail = match error {
        KafkaError::ClientConfig(_, _, key, _) if settings::is_secret(&key) => {
            format!("invalid value for {key} ({})", settings::REDACTED)
        }
        KafkaError::ClientConfig(_, description, key, value) => {
            format!("invalid {key}={value}: {description}")
        }
        other => other.to_string(),
    };
    Error::Create { what, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_settings_win_over_defaults_and_requirements_over_both() {
        let settings = ClientSettings::new("h:1")
            .with("linger.ms", "50")
            .with("linger.ms", "7")
            .with("sasl.password", "TopSecret-1");
        let config = settings.producer_config(None).unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("h:1"));
        assert_eq!(config.get("linger.ms"), Some("7"), "the later setting wins");
        assert_eq!(config.get("acks"), Some("all"), "our default stays");
        let required = Requirements::new("a mode")
            .require("linger.ms", "7")
            .require("acks", "-1");
        let config = settings.producer_config(Some(&required)).unwrap();
        assert_eq!(
            config.get("acks"),
            Some("-1"),
            "the requirement is applied last"
        );
        let shown = settings.describe();
        assert!(!shown.contains("TopSecret"), "{shown}");
        assert!(shown.contains("sasl.password=[redacted]"), "{shown}");
        assert!(!format!("{settings:?}").contains("TopSecret"));
    }

    #[test]
    fn a_contradicting_setting_is_refused_before_a_client_is_made() {
        let settings = ClientSettings::new("h:1").with("enable.idempotence", "false");
        let required =
            Requirements::new("the idempotent producer").require("enable.idempotence", "true");
        let error = settings
            .future_producer(Some(&required))
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("enable.idempotence=false"), "{error}");
        assert!(error.contains("the idempotent producer"), "{error}");
    }

    #[test]
    fn bootstrap_from_the_settings_wins_over_brokers() {
        let settings = ClientSettings::new("default:9092").with("bootstrap.servers", "other:9093");
        assert_eq!(
            settings.client_config().get("bootstrap.servers"),
            Some("other:9093")
        );
    }

    #[test]
    fn a_bad_secret_setting_does_not_leak_its_value() {
        let error = creation_error(
            KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "Invalid value \"hunter2\"".into(),
                "sasl.password".into(),
                "hunter2".into(),
            ),
            "producer",
        );
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn every_setting_is_shown_and_only_secrets_are_hidden() {
        let settings = ClientSettings::new("h:1")
            .with("sasl.username", "alice")
            .with("sasl.password", "TopSecret-2")
            .with("ssl.key.password", "KeyPass-3")
            .with("sasl.jaas.config", "x required password=\"Jaas-4\";")
            .with("security.protocol", "SASL_SSL");
        let config = settings.consumer_config("g", None).unwrap();
        let shown = redacted(&config);
        for secret in ["TopSecret-2", "KeyPass-3", "Jaas-4"] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!format!("{settings:?}").contains(secret), "{settings:?}");
        }
        for visible in [
            "bootstrap.servers=h:1",
            "sasl.username=alice",
            "security.protocol=SASL_SSL",
            "group.id=g",
            "enable.auto.offset.store=false",
            "sasl.password=[redacted]",
            "ssl.key.password=[redacted]",
            "sasl.jaas.config=[redacted]",
        ] {
            assert!(shown.contains(visible), "{visible} missing from {shown}");
        }
        assert_eq!(
            shown.split(' ').count(),
            config.config_map().len(),
            "one entry per setting: {shown}"
        );
    }
}
