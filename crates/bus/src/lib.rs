//! The Kafka connection every process shares: the `--brokers` / `-X` / `--client-config`
//! arguments, the librdkafka configuration built from them and `schema::settings`, clients
//! whose logs go through `log` with secrets masked, and small admin helpers.
//!
//! Precedence: our defaults < `--client-config FILE` < `-X key=value`; `--brokers` (or
//! `KAFKA_BOOTSTRAP`) sets `bootstrap.servers` unless the file or `-X` set it.
//!
//! Secrets (`sasl.password`, key passwords, OAuth secrets, JAAS configs: see
//! `schema::settings::is_secret`) never reach a log line or an error message: [`redacted`]
//! and [`KafkaArgs::describe`] replace them with `[redacted]`, `Debug` for [`KafkaArgs`] does
//! too, [`LoggingContext`] masks their values in everything librdkafka logs, and
//! [`creation_error`] in configuration errors.
#![deny(missing_docs)]

pub mod api_versions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use schema::settings;

/// Connection arguments, flattened into every process's command line. `Debug` shows the
/// `-X` settings with secrets redacted.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, global = true, env = settings::BOOTSTRAP_ENV, default_value = settings::DEFAULT_BROKERS, value_name = "HOST:PORT")]
    pub brokers: String,
    /// A librdkafka property, as kcat takes it (repeatable): -X security.protocol=SASL_SSL.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A Java properties file of librdkafka settings, as Kafka's own tools take it.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_config: Option<PathBuf>,
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|property| match property.split_once('=') {
                Some((key, value)) => format!("{key}={}", settings::redact(key.trim(), value)),
                None => property.clone(),
            })
            .collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .field("client_config", &self.client_config)
            .finish()
    }
}

impl KafkaArgs {
    /// Arguments for `brokers` with nothing else set (tests, tools).
    pub fn for_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            client_config: None,
        }
    }

    /// The user's settings: properties file, then `-X`, with `bootstrap.servers` from
    /// `--brokers` unless they set it.
    fn user_settings(&self) -> Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        if let Some(path) = &self.client_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the client config {}", path.display()))?;
            pairs.extend(
                settings::parse_properties_file_text(&text)
                    .with_context(|| format!("{}", path.display()))?,
            );
        }
        for property in &self.properties {
            pairs.push(settings::parse_property(property).context("bad -X setting")?);
        }
        if !pairs.iter().any(|(key, _)| key == "bootstrap.servers") {
            pairs.insert(0, ("bootstrap.servers".into(), self.brokers.clone()));
        }
        Ok(pairs)
    }

    fn build(&self, defaults: Vec<(String, String)>) -> Result<ClientConfig> {
        let mut config = ClientConfig::new();
        for (key, value) in defaults.into_iter().chain(self.user_settings()?) {
            config.set(key, value);
        }
        Ok(config)
    }

    /// Base configuration (no producer or consumer defaults).
    pub fn client_config(&self) -> Result<ClientConfig> {
        self.build(Vec::new())
    }

    /// Producer configuration: `schema::settings::PRODUCER_DEFAULTS`, then the user's.
    pub fn producer_config(&self) -> Result<ClientConfig> {
        let defaults = settings::PRODUCER_DEFAULTS
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self.build(defaults)
    }

    /// Consumer-group member configuration: `schema::settings::consumer_defaults`, then the
    /// user's.
    pub fn consumer_config(&self, group: &str) -> Result<ClientConfig> {
        self.build(settings::consumer_defaults(group))
    }

    /// The effective settings for logs, secrets redacted.
    pub fn describe(&self) -> String {
        self.client_config()
            .map_or_else(|error| format!("(invalid: {error:#})"), |c| redacted(&c))
    }

    /// An asynchronous producer.
    pub fn future_producer(&self) -> Result<FutureProducer<LoggingContext>> {
        self.future_producer_with(&[])
    }

    /// An asynchronous producer with `required` settings applied last, over the user's: for
    /// settings a mode cannot work without (e.g. `transactional.id`).
    pub fn future_producer_with(
        &self,
        required: &[(&str, &str)],
    ) -> Result<FutureProducer<LoggingContext>> {
        let mut config = self.producer_config()?;
        for (key, value) in required {
            config.set(*key, *value);
        }
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "producer"))
    }

    /// A consumer-group member whose context logs rebalances and commits.
    pub fn stream_consumer(&self, group: &str) -> Result<LoggingConsumer> {
        self.stream_consumer_with(group, &[])
    }

    /// A consumer-group member with `required` settings applied last, over the user's (e.g.
    /// `enable.auto.commit=false` when offsets are committed in transactions).
    pub fn stream_consumer_with(
        &self,
        group: &str,
        required: &[(&str, &str)],
    ) -> Result<LoggingConsumer> {
        let mut config = self.consumer_config(group)?;
        for (key, value) in required {
            config.set(*key, *value);
        }
        config
            .create_with_context(LoggingContext::new(&config))
            .map_err(|error| creation_error(error, "consumer"))
    }

    /// A consumer for manual assignment (tools): no commits.
    pub fn base_consumer(&self) -> Result<BaseConsumer<LoggingContext>> {
        let mut config = self.client_config()?;
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
        let config = self.client_config()?;
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
pub fn creation_error(error: KafkaError, what: &str) -> anyhow::Error {
    match error {
        KafkaError::ClientConfig(_, _, key, _) if settings::is_secret(&key) => {
            anyhow!(
                "cannot create the Kafka {what}: invalid value for {key} ({})",
                settings::REDACTED
            )
        }
        KafkaError::ClientConfig(_, description, key, value) => {
            anyhow!("cannot create the Kafka {what}: invalid {key}={value}: {description}")
        }
        other => anyhow!("cannot create the Kafka {what}: {other}"),
    }
}

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

/// The partitions of `topic`, sorted; an error naming the topic when it does not exist (or
/// has none).
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("cannot read the metadata of {topic}"))?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist or has no partitions");
    }
    Ok(partitions)
}

/// Assigns every partition of `topic` to `consumer` (no group joined), each from `start`;
/// returns the partitions.
pub fn assign_all<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    start: rdkafka::Offset,
) -> Result<Vec<i32>> {
    let partitions = topic_partitions(consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, start)?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot read {topic}"))?;
    Ok(partitions)
}

/// A consumer-group member with [`LoggingContext`].
pub type LoggingConsumer = StreamConsumer<LoggingContext>;

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

/// Creates the topics that are missing (`(name, partitions)`, one replica each), and waits
/// until their metadata shows them.
pub async fn ensure_topics(args: &KafkaArgs, topics: &[(&str, i32)]) -> Result<()> {
    ensure_topics_replicated(args, topics, 1).await
}

/// [`ensure_topics`] with `replication` copies of each partition (a cluster of several
/// brokers wants 3; one broker can only hold 1).
pub async fn ensure_topics_replicated(
    args: &KafkaArgs,
    topics: &[(&str, i32)],
    replication: i32,
) -> Result<()> {
    let admin = args.admin()?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(replication))
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(&new_topics, &options)
        .await
        .context("cannot create topics")?
    {
        match result {
            Ok(name) => log::info!("created topic {name}"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => log::info!("topic {name} exists"),
            Err((name, code)) => bail!("cannot create topic {name}: {code}"),
        }
    }
    let consumer = args.base_consumer()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for (name, partitions) in topics {
        loop {
            let seen = consumer
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32));
            if seen.is_some_and(|seen| seen >= *partitions) {
                break;
            }
            if Instant::now() > deadline {
                bail!("topic {name} did not appear with {partitions} partitions");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// What a client configuration can be built from: the command line's [`KafkaArgs`] or a
/// ready [`ClientConfig`].
pub trait ClientSettings {
    /// The base client configuration.
    fn base_config(&self) -> Result<ClientConfig>;
}

impl ClientSettings for KafkaArgs {
    fn base_config(&self) -> Result<ClientConfig> {
        self.client_config()
    }
}

impl ClientSettings for ClientConfig {
    fn base_config(&self) -> Result<ClientConfig> {
        Ok(self.clone())
    }
}

/// Waits until the cluster answers a metadata request, retrying with exponential backoff
/// (0.25 s doubling to 8 s) and logging each failure at warn; fails after `timeout`. Takes
/// [`KafkaArgs`] or a [`ClientConfig`].
pub fn wait_for_broker<S: ClientSettings + ?Sized>(settings: &S, timeout: Duration) -> Result<()> {
    let mut config = settings.base_config()?;
    config
        .set("group.id", "kafka-iforest-tools")
        .set("enable.auto.commit", "false");
    let brokers = config.get("bootstrap.servers").unwrap_or("?").to_string();
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new(&config))
        .map_err(|error| creation_error(error, "consumer"))?;
    let deadline = Instant::now() + timeout;
    let mut backoff = Duration::from_millis(250);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.clamp(Duration::from_millis(100), Duration::from_secs(5));
        match consumer.fetch_metadata(None, attempt) {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() + backoff < deadline => {
                log::warn!("broker {brokers} not reachable ({error}); retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
            Err(error) => bail!("broker {brokers} not reachable after {timeout:?}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_x_then_brokers_and_secrets_redacted() {
        let dir = std::env::temp_dir().join(format!("bus-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("client.properties");
        std::fs::write(
            &file,
            "security.protocol=SASL_SSL\nsasl.password=FromFile\nlinger.ms=50\n",
        )
        .unwrap();
        let args = KafkaArgs {
            brokers: "h:1".into(),
            properties: vec!["linger.ms=7".into(), "sasl.password=TopSecret-1".into()],
            client_config: Some(file),
        };
        let config = args.producer_config().unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("h:1"));
        assert_eq!(
            config.get("linger.ms"),
            Some("7"),
            "-X wins over the file and defaults"
        );
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("acks"), Some("all"));
        let shown = args.describe();
        assert!(
            !shown.contains("TopSecret") && !shown.contains("FromFile"),
            "{shown}"
        );
        assert!(shown.contains("sasl.password=[redacted]"), "{shown}");
        let masked = LoggingContext::new(&config).mask("auth with TopSecret-1 failed");
        assert_eq!(masked, "auth with [redacted] failed");
    }

    #[test]
    fn bootstrap_from_the_file_or_x_wins_over_brokers() {
        let args = KafkaArgs {
            brokers: "default:9092".into(),
            properties: vec!["bootstrap.servers=other:9093".into()],
            client_config: None,
        };
        assert_eq!(
            args.client_config().unwrap().get("bootstrap.servers"),
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
        assert!(!format!("{error:#}").contains("hunter2"));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn the_command_line_takes_x_repeated_and_a_properties_file() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "p",
            "--brokers",
            "b:1",
            "-X",
            "a=1",
            "-Xb=2",
            "--client-config",
            "f.properties",
        ])
        .unwrap();
        assert_eq!(cli.kafka.brokers, "b:1");
        assert_eq!(cli.kafka.properties, ["a=1", "b=2"]);
        assert_eq!(
            cli.kafka.client_config.as_deref(),
            Some(std::path::Path::new("f.properties"))
        );
        let error = Cli::try_parse_from(["p", "-X", "novalue"])
            .unwrap()
            .kafka
            .client_config()
            .unwrap_err();
        assert!(format!("{error:#}").contains("novalue"), "{error:#}");
    }

    #[test]
    fn every_setting_is_shown_and_only_secrets_are_hidden() {
        let args = KafkaArgs {
            brokers: "h:1".into(),
            properties: vec![
                "sasl.username=alice".into(),
                "sasl.password=TopSecret-2".into(),
                "ssl.key.password=KeyPass-3".into(),
                "sasl.jaas.config=x required password=\"Jaas-4\";".into(),
                "security.protocol=SASL_SSL".into(),
            ],
            client_config: None,
        };
        let config = args.consumer_config("g").unwrap();
        let shown = redacted(&config);
        for secret in ["TopSecret-2", "KeyPass-3", "Jaas-4"] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!format!("{args:?}").contains(secret), "{args:?}");
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

    #[test]
    fn waiting_for_no_broker_gives_up_on_time_without_naming_secrets() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("sasl.password", "TopSecret-5");
        let started = Instant::now();
        let error = wait_for_broker(&config, Duration::from_millis(1500)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let text = format!("{error:#}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(!text.contains("TopSecret"), "{text}");
        // The same through the command line's arguments.
        let args = KafkaArgs::for_brokers("127.0.0.1:1");
        assert!(wait_for_broker(&args, Duration::from_millis(500)).is_err());
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
