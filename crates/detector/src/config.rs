//! The checked configuration. [`Config::builder`] takes plain values (a model or its file,
//! topics, limits, [`bus::ClientSettings`]) and checks them once, in
//! [`ConfigBuilder::build`], into a [`Config`] or a [`ConfigError`] naming the flag;
//! [`Config::from_cli`] is the command line's way to it. A bad setting or a bad model stops
//! the detector before it touches Kafka. Only a `Config` reaches [`run()`](crate::run()).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use schema::DecodeLimits;

use crate::cli::Cli;
use crate::metrics::Metrics;
use crate::reload::ReloadTrigger;
use crate::scoring::{Model, ModelLoadError};

/// The topics a detector reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Transactions, read in a consumer group.
    pub input: String,
    /// Anomalies, written.
    pub output: String,
    /// Dead letters, written.
    pub dead_letters: String,
}

impl Topics {
    /// The topic an output goes to.
    pub fn of(&self, destination: crate::output::Destination) -> &str {
        match destination {
            crate::output::Destination::Anomalies => &self.output,
            crate::output::Destination::DeadLetters => &self.dead_letters,
        }
    }
}

/// Everything a detector run needs, checked.
#[derive(Debug)]
pub struct Config {
    /// The model, loaded and validated.
    pub model: Model,
    /// Where it was loaded from (watched for hot reload); None when it was handed over in
    /// memory.
    pub model_path: Option<PathBuf>,
    /// Consumer group.
    pub group: String,
    /// Topic names.
    pub topics: Topics,
    /// Most records per batch (at least 1).
    pub batch_size: usize,
    /// Longest wait for a batch to fill once its first record is in.
    pub batch_wait: Duration,
    /// Batches whose outputs may await acknowledgement at once (at least 1). Their offsets
    /// are stored oldest first, each once all its outputs (and those of every older batch)
    /// are acknowledged.
    pub in_flight_batches: usize,
    /// Decoding limits (record size).
    pub limits: DecodeLimits,
    /// Stop after this many records.
    pub max_records: Option<u64>,
    /// Stop after this long without a record.
    pub idle_exit: Option<Duration>,
    /// How long to wait for the broker at start.
    pub startup_timeout: Duration,
    /// With `--exactly-once`: the producer's transactional id.
    pub transactional_id: Option<String>,
    /// Where to serve Prometheus metrics.
    pub metrics_addr: Option<String>,
    /// The metrics the run counts into (a caller holding a clone can read them).
    pub metrics: Metrics,
    /// Pulled from outside (the binary does on SIGHUP) to reload the model file.
    pub reload: ReloadTrigger,
    /// Kafka connection settings.
    pub kafka: bus::ClientSettings,
}

/// A setting the detector cannot run with; the message names the flag (the builder's setter
/// of the same name sets it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--batch-size` is 0.
    #[error("--batch-size must be at least 1")]
    BatchSize,
    /// `--in-flight-batches` is 0.
    #[error("--in-flight-batches must be at least 1")]
    InFlightBatches,
    /// `--max-record-bytes` is 0.
    #[error("--max-record-bytes must be at least 1")]
    MaxRecordBytes,
    /// A topic, the group or the transactional id is empty.
    #[error("{flag} must not be empty")]
    Empty {
        /// The flag.
        flag: &'static str,
    },
    /// An output topic is the input topic (the detector would score its own output).
    #[error("{flag} must differ from --input-topic ({topic})")]
    OutputIsInput {
        /// `--output-topic` or `--dlq-topic`.
        flag: &'static str,
        /// The topic.
        topic: String,
    },
    /// A number of seconds that is negative, not finite or too large.
    #[error("{flag} must be a number of seconds, 0 or more, not {value}")]
    Seconds {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: f64,
    },
    /// A client setting that cannot be read, or one that contradicts the delivery mode.
    #[error(transparent)]
    Kafka(#[from] bus::Error),
    /// The model file cannot be used.
    #[error(transparent)]
    Model(#[from] ModelLoadError),
    /// A model with per-key features and a cooperative assignment strategy: the key states
    /// are exact only when every rebalance revokes every partition (the eager protocol).
    #[error(
        "partition.assignment.strategy={strategy}: a model with per-key features needs an \
         eager strategy (range, roundrobin: the default), under which every rebalance \
         revokes every partition and its records are read again with the states restored"
    )]
    CooperativeWithPerKey {
        /// The strategy set.
        strategy: String,
    },
}

/// Where the model comes from: a file (read when the builder builds, and watched for hot
/// reload) or a model already in memory.
#[derive(Debug)]
pub enum ModelSource {
    /// A model file.
    File(PathBuf),
    /// A loaded model (no file to watch).
    Loaded(Box<Model>),
}

impl From<PathBuf> for ModelSource {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl From<&Path> for ModelSource {
    fn from(path: &Path) -> Self {
        Self::File(path.to_path_buf())
    }
}

impl From<Model> for ModelSource {
    fn from(model: Model) -> Self {
        Self::Loaded(Box::new(model))
    }
}

/// Unchecked settings for a [`Config`], with the command line's defaults: by-value setters,
/// one check in [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct ConfigBuilder {
    model: ModelSource,
    group: String,
    input_topic: String,
    output_topic: String,
    dead_letter_topic: String,
    batch_size: usize,
    batch_wait: Duration,
    in_flight_batches: usize,
    max_record_bytes: usize,
    max_records: Option<u64>,
    idle_exit: Option<Duration>,
    startup_timeout: Duration,
    exactly_once: bool,
    transactional_id: Option<String>,
    metrics_addr: Option<String>,
    metrics: Metrics,
    reload: ReloadTrigger,
    kafka: bus::ClientSettings,
}

impl ConfigBuilder {
    /// The consumer group (`--group`, default `detectors`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// The topic of transactions (`--input-topic`, default `transactions`).
    pub fn input_topic(mut self, topic: impl Into<String>) -> Self {
        self.input_topic = topic.into();
        self
    }

    /// The anomalies topic (`--output-topic`, default `anomalies`).
    pub fn output_topic(mut self, topic: impl Into<String>) -> Self {
        self.output_topic = topic.into();
        self
    }

    /// The dead-letter topic (`--dlq-topic`, default `transactions.dlq`).
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = topic.into();
        self
    }

    /// Most records scored together (`--batch-size`, default 1000).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch_size = records;
        self
    }

    /// Longest wait for a batch to fill (`--batch-wait-ms`, default 0).
    pub fn batch_wait(mut self, wait: Duration) -> Self {
        self.batch_wait = wait;
        self
    }

    /// Batches awaiting acknowledgement at once (`--in-flight-batches`, default 4).
    pub fn in_flight_batches(mut self, batches: usize) -> Self {
        self.in_flight_batches = batches;
        self
    }

    /// Records larger than this are dead letters (`--max-record-bytes`, default 1 MiB).
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Stop after this many records (`--max-records`; 0 = no limit, the default).
    pub fn max_records(mut self, records: u64) -> Self {
        self.max_records = (records > 0).then_some(records);
        self
    }

    /// Stop after this long without a record (`--idle-exit`; zero = never, the default).
    pub fn idle_exit(mut self, idle: Duration) -> Self {
        self.idle_exit = (!idle.is_zero()).then_some(idle);
        self
    }

    /// How long to wait for the broker at start (`--startup-timeout`, default 300 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Exactly-once delivery (`--exactly-once`), with this transactional id
    /// (`--transactional-id`) or, with None, `detector-<group>-<hostname>-<pid>`.
    pub fn exactly_once(mut self, transactional_id: Option<String>) -> Self {
        self.exactly_once = true;
        self.transactional_id = transactional_id;
        self
    }

    /// Serve Prometheus metrics at this address (`--metrics-addr`).
    pub fn metrics_addr(mut self, address: impl Into<String>) -> Self {
        self.metrics_addr = Some(address.into());
        self
    }

    /// Count into these metrics (a clone kept by the caller reads them).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Reload the model file whenever `trigger` is pulled.
    pub fn reload_trigger(mut self, trigger: ReloadTrigger) -> Self {
        self.reload = trigger;
        self
    }

    /// The Kafka connection (`--brokers`, `-X`, `--client-config`).
    pub fn kafka(mut self, settings: bus::ClientSettings) -> Self {
        self.kafka = settings;
        self
    }

    /// The delivery mode the settings ask for.
    fn delivery_mode(&self) -> DeliveryMode {
        if self.exactly_once {
            DeliveryMode::ExactlyOnce
        } else {
            DeliveryMode::AtLeastOnce
        }
    }

    /// Checks every setting (no I/O): the first rule broken, naming its flag.
    fn check(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::BatchSize);
        }
        if self.in_flight_batches == 0 {
            return Err(ConfigError::InFlightBatches);
        }
        if self.max_record_bytes == 0 {
            return Err(ConfigError::MaxRecordBytes);
        }
        for (flag, name) in [
            ("--input-topic", &self.input_topic),
            ("--output-topic", &self.output_topic),
            ("--dlq-topic", &self.dead_letter_topic),
            ("--group", &self.group),
        ] {
            if name.trim().is_empty() {
                return Err(ConfigError::Empty { flag });
            }
        }
        if self
            .transactional_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(ConfigError::Empty {
                flag: "--transactional-id",
            });
        }
        // Writing into the topic being read would score the detector's own output.
        for (flag, topic) in [
            ("--output-topic", &self.output_topic),
            ("--dlq-topic", &self.dead_letter_topic),
        ] {
            if *topic == self.input_topic {
                return Err(ConfigError::OutputIsInput {
                    flag,
                    topic: topic.clone(),
                });
            }
        }
        // No client setting contradicts the delivery mode.
        let mode = self.delivery_mode();
        self.kafka.check(&mode.producer_requirements(None))?;
        self.kafka.check(&mode.consumer_requirements())?;
        Ok(())
    }

    /// Checks the settings, then loads the model file if one was given (the only I/O).
    pub fn build(self) -> Result<Config, ConfigError> {
        self.check()?;
        let (model, model_path) = match self.model {
            ModelSource::File(path) => (Model::load(&path)?, Some(path)),
            ModelSource::Loaded(model) => (*model, None),
        };
        let strategy = self
            .kafka
            .client_config()
            .get("partition.assignment.strategy")
            .map(str::to_string);
        if let Some(strategy) = strategy.filter(|s| s.contains("cooperative")) {
            if model.per_key().is_some() {
                return Err(ConfigError::CooperativeWithPerKey { strategy });
            }
        }
        let transactional_id = self.exactly_once.then(|| {
            self.transactional_id
                .unwrap_or_else(|| default_transactional_id(&self.group))
        });
        Ok(Config {
            model,
            model_path,
            group: self.group,
            topics: Topics {
                input: self.input_topic,
                output: self.output_topic,
                dead_letters: self.dead_letter_topic,
            },
            batch_size: self.batch_size,
            batch_wait: self.batch_wait,
            in_flight_batches: self.in_flight_batches,
            limits: DecodeLimits {
                max_bytes: self.max_record_bytes,
                ..DecodeLimits::default()
            },
            max_records: self.max_records,
            idle_exit: self.idle_exit,
            startup_timeout: self.startup_timeout,
            transactional_id,
            metrics_addr: self.metrics_addr,
            metrics: self.metrics,
            reload: self.reload,
            kafka: self.kafka,
        })
    }
}

/// A number of seconds from the command line as a duration; the error names the flag.
fn seconds(flag: &'static str, value: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(value).map_err(|_| ConfigError::Seconds { flag, value })
}

/// How outputs and offsets are made durable; each mode declares the client settings it
/// cannot do without, and a user setting that contradicts one is refused at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Offsets stored only once a batch's outputs are acknowledged, committed by
    /// auto-commit.
    AtLeastOnce,
    /// One Kafka transaction per batch, holding its outputs and its offsets.
    ExactlyOnce,
}

impl DeliveryMode {
    /// The mode's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "the detector's at-least-once delivery",
            Self::ExactlyOnce => "the detector's exactly-once delivery (--exactly-once)",
        }
    }

    /// The producer's required settings: every output acknowledged by all in-sync
    /// replicas, idempotent; with exactly-once, the transactional id (when known).
    pub fn producer_requirements(self, transactional_id: Option<&str>) -> bus::Requirements {
        let required = bus::Requirements::new(self.name())
            .require("acks", "all")
            .require("enable.idempotence", "true");
        match transactional_id {
            Some(id) => required.require("transactional.id", id),
            None => required,
        }
    }

    /// The consumer's required settings. At-least-once: offsets stored by the detector only
    /// (after acknowledgement) and committed by auto-commit. Exactly-once: never committed
    /// by itself (the transactions carry the offsets), and only committed records read.
    pub fn consumer_requirements(self) -> bus::Requirements {
        let required =
            bus::Requirements::new(self.name()).require("enable.auto.offset.store", "false");
        match self {
            Self::AtLeastOnce => required.require("enable.auto.commit", "true"),
            Self::ExactlyOnce => required
                .require("enable.auto.commit", "false")
                .require("isolation.level", "read_committed"),
        }
    }
}

/// `detector-<group>-<hostname>-<pid>`: unique per running detector, and stable across
/// restarts in a container (where the pid is always the same), so a restarted container
/// aborts what its predecessor left open.
fn default_transactional_id(group: &str) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("detector-{group}-{hostname}-{}", std::process::id())
}

impl Config {
    /// Settings with the command line's defaults, for the model in `model` (a file path or a
    /// loaded [`Model`]); the brokers are `KAFKA_BOOTSTRAP` or 127.0.0.1:9092, as for the
    /// command line.
    pub fn builder(model: impl Into<ModelSource>) -> ConfigBuilder {
        let brokers = std::env::var(bus::settings::BOOTSTRAP_ENV)
            .unwrap_or_else(|_| bus::settings::DEFAULT_BROKERS.to_string());
        ConfigBuilder {
            model: model.into(),
            group: schema::topics::DEFAULT_GROUP.to_string(),
            input_topic: schema::topics::TRANSACTIONS.to_string(),
            output_topic: schema::topics::ANOMALIES.to_string(),
            dead_letter_topic: schema::topics::DEAD_LETTERS.to_string(),
            batch_size: 1000,
            batch_wait: Duration::ZERO,
            in_flight_batches: 4,
            max_record_bytes: 1 << 20,
            max_records: None,
            idle_exit: None,
            startup_timeout: Duration::from_secs(300),
            exactly_once: false,
            transactional_id: None,
            metrics_addr: None,
            metrics: Metrics::new(),
            reload: ReloadTrigger::new(),
            kafka: bus::ClientSettings::new(brokers),
        }
    }

    /// The command line's settings, checked, with the model loaded; the error names the flag
    /// or the model file and the problem.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let idle_exit = seconds("--idle-exit", cli.idle_exit)?;
        let startup_timeout = seconds("--startup-timeout", cli.startup_timeout)?;
        // A bad -X or --client-config is named now, not when a client is made.
        let kafka = cli.kafka.settings()?;
        let mut builder = Config::builder(cli.model)
            .group(cli.group)
            .input_topic(cli.input_topic)
            .output_topic(cli.output_topic)
            .dead_letter_topic(cli.dlq_topic)
            .batch_size(cli.batch_size)
            .batch_wait(Duration::from_millis(cli.batch_wait_ms))
            .in_flight_batches(cli.in_flight_batches)
            .max_record_bytes(cli.max_record_bytes)
            .max_records(cli.max_records)
            .idle_exit(idle_exit)
            .startup_timeout(startup_timeout)
            .kafka(kafka);
        if cli.exactly_once {
            builder = builder.exactly_once(cli.transactional_id);
        }
        if let Some(address) = cli.metrics_addr {
            builder = builder.metrics_addr(address);
        }
        builder.build()
    }

    /// The delivery mode.
    pub fn delivery_mode(&self) -> DeliveryMode {
        if self.transactional_id.is_some() {
            DeliveryMode::ExactlyOnce
        } else {
            DeliveryMode::AtLeastOnce
        }
    }

    /// The producer of anomalies and dead letters (idempotent, `acks=all`; transactional
    /// with `--exactly-once`).
    pub fn producer(&self) -> anyhow::Result<FutureProducer<bus::LoggingContext>> {
        let mut required = self
            .delivery_mode()
            .producer_requirements(self.transactional_id.as_deref());
        // librdkafka requires message.timeout.ms <= transaction.timeout.ms (60 s); a user's
        // own value is kept (librdkafka names it if it is too long).
        if self.transactional_id.is_some()
            && !self
                .kafka
                .properties
                .iter()
                .any(|(key, _)| key == "message.timeout.ms")
        {
            required = required.require("message.timeout.ms", "60000");
        }
        Ok(self.kafka.future_producer(Some(&required))?)
    }

    /// A member of the consumer group, subscribed to the input topic; it logs its
    /// partition assignments.
    pub fn consumer(&self) -> anyhow::Result<bus::LoggingConsumer> {
        use anyhow::Context as _;
        use rdkafka::consumer::Consumer as _;
        let required = self.delivery_mode().consumer_requirements();
        let consumer = self.kafka.stream_consumer(&self.group, Some(&required))?;
        consumer
            .subscribe(&[&self.topics.input])
            .with_context(|| format!("cannot subscribe to {}", self.topics.input))?;
        Ok(consumer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("detector").chain(args.iter().copied())).unwrap()
    }

    /// The refusal of `args`, which must be a flag's (the default model file does not exist
    /// here, and the flags are checked before the model is read).
    fn error(args: &[&str]) -> String {
        match Config::from_cli(cli(args)) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(ConfigError::Model(error)) => panic!("{args:?} accepted, then {error}"),
            Err(error) => format!("{:#}", anyhow::Error::new(error)),
        }
    }

    /// A small model written to a scratch file of its own.
    fn model_file() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("detector-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel and must not read each other's writes.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("model-{call}.bin"));
        crate::scoring::tests::model().save(&path).unwrap();
        path
    }

    /// A config from `args` with a small model.
    fn config(args: &[&str]) -> Config {
        let path = model_file();
        let path = path.to_str().unwrap();
        let mut all = vec!["--model", path];
        all.extend_from_slice(args);
        Config::from_cli(cli(&all)).unwrap()
    }

    #[test]
    fn defaults_are_the_pipeline_s_topics_and_group() {
        let defaults = cli(&[]);
        assert_eq!(defaults.model, PathBuf::from("models/model.bin"));
        let config = config(&[]);
        assert_eq!(config.topics.input, "transactions");
        assert_eq!(config.topics.output, "anomalies");
        assert_eq!(config.topics.dead_letters, "transactions.dlq");
        assert_eq!(config.group, "detectors");
        assert_eq!(config.limits.max_bytes, 1 << 20);
        assert_eq!((config.max_records, config.idle_exit), (None, None));
        assert_eq!(config.model.forest.n_features(), 2);
    }

    #[test]
    fn batch_size_cannot_be_zero() {
        assert!(error(&["--batch-size", "0"]).contains("--batch-size"));
    }

    #[test]
    fn in_flight_batches_cannot_be_zero() {
        assert!(error(&["--in-flight-batches", "0"]).contains("--in-flight-batches"));
    }

    #[test]
    fn max_record_bytes_cannot_be_zero() {
        assert!(error(&["--max-record-bytes", "0"]).contains("--max-record-bytes"));
    }

    #[test]
    fn topics_and_group_cannot_be_empty() {
        assert!(error(&["--input-topic", ""]).contains("--input-topic"));
        assert!(error(&["--group", " "]).contains("--group"));
    }

    #[test]
    fn outputs_cannot_go_to_the_input_topic() {
        assert!(error(&["--output-topic", "transactions"]).contains("--output-topic"));
        assert!(error(&["--dlq-topic", "transactions"]).contains("--dlq-topic"));
    }

    #[test]
    fn seconds_must_be_finite_and_not_negative() {
        assert!(error(&["--idle-exit=-1"]).contains("--idle-exit"));
        assert!(error(&["--idle-exit", "inf"]).contains("--idle-exit"));
        assert!(error(&["--startup-timeout", "NaN"]).contains("--startup-timeout"));
    }

    #[test]
    fn limits_become_options() {
        let config = config(&["--max-records", "5", "--idle-exit", "1.5"]);
        assert_eq!(config.max_records, Some(5));
        assert_eq!(config.idle_exit, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_bad_client_setting_is_refused_before_connecting() {
        assert!(error(&["-X", "no-equals-sign"]).contains("no-equals-sign"));
    }

    #[test]
    fn a_setting_that_voids_the_delivery_guarantee_is_refused() {
        for (args, key) in [
            (
                &["-X", "enable.auto.offset.store=true"][..],
                "enable.auto.offset.store",
            ),
            (
                &["-X", "enable.auto.commit=false"][..],
                "enable.auto.commit",
            ),
            (
                &["-X", "enable.idempotence=false"][..],
                "enable.idempotence",
            ),
            (&["-X", "acks=1"][..], "acks"),
            (
                &["--exactly-once", "-X", "isolation.level=read_uncommitted"][..],
                "isolation.level",
            ),
            (
                &["--exactly-once", "-X", "enable.auto.commit=true"][..],
                "enable.auto.commit",
            ),
        ] {
            let message = error(args);
            assert!(message.contains(key), "{args:?}: {message}");
            let mode = if args.contains(&"--exactly-once") {
                "exactly-once"
            } else {
                "at-least-once"
            };
            assert!(message.contains(mode), "{args:?}: {message}");
        }
        // Settings that agree with the mode, in another spelling, are fine.
        for args in [
            &["-X", "acks=-1", "-X", "enable.auto.offset.store=0"][..],
            &["--exactly-once", "-X", "enable.auto.commit=false"][..],
        ] {
            config(args);
        }
    }

    #[test]
    fn exactly_once_gets_a_transactional_id() {
        assert_eq!(config(&[]).transactional_id, None);
        let id = config(&["--exactly-once"]).transactional_id.unwrap();
        assert!(id.starts_with("detector-detectors-"), "{id}");
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        let given = config(&["--exactly-once", "--transactional-id", "d1"]);
        assert_eq!(given.transactional_id.as_deref(), Some("d1"));
        assert!(
            error(&["--exactly-once", "--transactional-id", " "]).contains("--transactional-id")
        );
        assert!(cli_error(&["--transactional-id", "d1"]).contains("--exactly-once"));
    }

    fn cli_error(args: &[&str]) -> String {
        Cli::try_parse_from(std::iter::once("detector").chain(args.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_missing_model_file_is_named() {
        let error = Config::from_cli(cli(&["--model", "/nonexistent/model.bin"])).unwrap_err();
        assert!(matches!(error, ConfigError::Model(_)), "{error:?}");
        let error = anyhow::Error::new(error);
        assert!(format!("{error:#}").contains("/nonexistent/model.bin"));
        assert!(format!("{error:#}").contains("No such file"), "{error:#}");
    }

    #[test]
    fn the_builder_has_the_command_line_s_defaults() {
        let path = model_file();
        let built = Config::builder(path.clone()).build().unwrap();
        let parsed = Config::from_cli(cli(&["--model", path.to_str().unwrap()])).unwrap();
        assert_eq!(built.topics, parsed.topics);
        assert_eq!(built.group, parsed.group);
        assert_eq!(
            (built.batch_size, built.batch_wait, built.in_flight_batches),
            (
                parsed.batch_size,
                parsed.batch_wait,
                parsed.in_flight_batches
            )
        );
        assert_eq!(built.limits, parsed.limits);
        assert_eq!(
            (built.max_records, built.idle_exit, built.startup_timeout),
            (parsed.max_records, parsed.idle_exit, parsed.startup_timeout)
        );
        assert_eq!(built.model_path.as_deref(), Some(path.as_path()));
        assert_eq!(built.kafka, parsed.kafka);
    }

    #[test]
    fn the_builder_checks_each_rule_and_names_the_flag() {
        let model = || Model::new(crate::scoring::tests::model(), "m").unwrap();
        let refused = |builder: ConfigBuilder| builder.build().unwrap_err();
        assert!(matches!(
            refused(Config::builder(model()).batch_size(0)),
            ConfigError::BatchSize
        ));
        assert!(matches!(
            refused(Config::builder(model()).in_flight_batches(0)),
            ConfigError::InFlightBatches
        ));
        assert!(matches!(
            refused(Config::builder(model()).max_record_bytes(0)),
            ConfigError::MaxRecordBytes
        ));
        assert!(matches!(
            refused(Config::builder(model()).group("")),
            ConfigError::Empty { flag: "--group" }
        ));
        assert!(matches!(
            refused(Config::builder(model()).dead_letter_topic("transactions")),
            ConfigError::OutputIsInput {
                flag: "--dlq-topic",
                ..
            }
        ));
        let voiding = bus::ClientSettings::new("h:1").with("enable.auto.offset.store", "true");
        let error = refused(Config::builder(model()).kafka(voiding));
        assert!(matches!(error, ConfigError::Kafka(_)), "{error:?}");
        assert!(error.to_string().contains("at-least-once"), "{error}");
    }

    #[test]
    fn a_per_key_model_refuses_a_cooperative_assignment_strategy() {
        let cooperative = || {
            bus::ClientSettings::new("h:1")
                .with("partition.assignment.strategy", "cooperative-sticky")
        };
        let per_key = crate::keystate::tests::per_key_model("k");
        let error = Config::builder(per_key)
            .kafka(cooperative())
            .build()
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::CooperativeWithPerKey { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("eager"), "{error}");
        Config::builder(Model::new(crate::scoring::tests::model(), "m").unwrap())
            .kafka(cooperative())
            .build()
            .expect("other models are not concerned");
    }

    #[test]
    fn a_model_in_memory_needs_no_file() {
        let config =
            Config::builder(Model::new(crate::scoring::tests::model(), "in-memory").unwrap())
                .exactly_once(Some("t1".into()))
                .max_records(7)
                .build()
                .unwrap();
        assert_eq!(config.model_path, None);
        assert_eq!(config.model.id, "in-memory");
        assert_eq!(config.transactional_id.as_deref(), Some("t1"));
        assert_eq!(config.delivery_mode(), DeliveryMode::ExactlyOnce);
        assert_eq!(config.max_records, Some(7));
    }
}
