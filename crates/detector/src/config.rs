//! The checked configuration: [`Config::from_cli`] validates the command line, resolves it
//! into durations, limits and topics, and loads the model, so a bad flag or a bad model stops
//! the detector before it touches Kafka. Only a `Config` reaches [`run`](crate::run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::producer::FutureProducer;
use schema::DecodeLimits;

use crate::cli::Cli;
use crate::scoring::Model;

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
    pub fn of(&self, destination: crate::scoring::Destination) -> &str {
        match destination {
            crate::scoring::Destination::Anomalies => &self.output,
            crate::scoring::Destination::DeadLetters => &self.dead_letters,
        }
    }
}

/// Everything a detector run needs, checked.
#[derive(Debug)]
pub struct Config {
    /// The model, loaded and validated.
    pub model: Model,
    /// Where it was loaded from (watched for hot reload).
    pub model_path: PathBuf,
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
    /// Kafka connection settings.
    pub kafka: bus::ClientSettings,
}

/// A number of seconds from the command line as a duration; the error names the flag.
fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a number of seconds, 0 or more, not {value}"))
}

/// What the flag checks resolve: the idle limit, the start-up timeout and the client
/// settings.
struct Checked {
    idle_exit: Duration,
    startup_timeout: Duration,
    kafka: bus::ClientSettings,
}

/// The checks of every flag (no I/O); the error names the flag.
fn check(cli: &Cli) -> Result<Checked> {
    if cli.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if cli.in_flight_batches == 0 {
        bail!("--in-flight-batches must be at least 1");
    }
    if cli.max_record_bytes == 0 {
        bail!("--max-record-bytes must be at least 1");
    }
    for (flag, name) in [
        ("--input-topic", &cli.input_topic),
        ("--output-topic", &cli.output_topic),
        ("--dlq-topic", &cli.dlq_topic),
        ("--group", &cli.group),
    ] {
        if name.trim().is_empty() {
            bail!("{flag} must not be empty");
        }
    }
    if cli
        .transactional_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        bail!("--transactional-id must not be empty");
    }
    // Writing into the topic being read would score the detector's own output.
    for (flag, topic) in [
        ("--output-topic", &cli.output_topic),
        ("--dlq-topic", &cli.dlq_topic),
    ] {
        if *topic == cli.input_topic {
            bail!("{flag} must differ from --input-topic ({topic})");
        }
    }
    // The -X and --client-config settings parse (a bad file is named now, not later), and
    // none of them contradicts the delivery mode.
    let kafka = cli.kafka.settings()?;
    let mode = if cli.exactly_once {
        DeliveryMode::ExactlyOnce
    } else {
        DeliveryMode::AtLeastOnce
    };
    kafka.check(&mode.producer_requirements(None))?;
    kafka.check(&mode.consumer_requirements())?;
    Ok(Checked {
        idle_exit: seconds("--idle-exit", cli.idle_exit)?,
        startup_timeout: seconds("--startup-timeout", cli.startup_timeout)?,
        kafka,
    })
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
    /// Checks the flags, then loads the model (the only I/O); the error names the flag or
    /// the model file and the problem.
    pub fn from_cli(cli: Cli) -> Result<Config> {
        let Checked {
            idle_exit,
            startup_timeout,
            kafka,
        } = check(&cli)?;
        let model = Model::load(&cli.model)?;
        let transactional_id = cli.exactly_once.then(|| {
            cli.transactional_id
                .clone()
                .unwrap_or_else(|| default_transactional_id(&cli.group))
        });
        Ok(Config {
            model,
            model_path: cli.model,
            group: cli.group,
            topics: Topics {
                input: cli.input_topic,
                output: cli.output_topic,
                dead_letters: cli.dlq_topic,
            },
            batch_size: cli.batch_size,
            batch_wait: Duration::from_millis(cli.batch_wait_ms),
            in_flight_batches: cli.in_flight_batches,
            limits: DecodeLimits {
                max_bytes: cli.max_record_bytes,
                ..DecodeLimits::default()
            },
            max_records: (cli.max_records > 0).then_some(cli.max_records),
            idle_exit: (!idle_exit.is_zero()).then_some(idle_exit),
            startup_timeout,
            transactional_id,
            metrics_addr: cli.metrics_addr,
            kafka,
        })
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
    pub fn producer(&self) -> Result<FutureProducer<bus::LoggingContext>> {
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
    pub fn consumer(&self) -> Result<bus::LoggingConsumer> {
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

    fn error(args: &[&str]) -> String {
        match check(&cli(args)) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(error) => format!("{error:#}"),
        }
    }

    /// A config from `args` with a small model written to a scratch file.
    fn config(args: &[&str]) -> Config {
        let dir = std::env::temp_dir().join(format!("detector-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel and must not read each other's writes.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("model-{call}.bin"));
        crate::scoring::tests::model().save(&path).unwrap();
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
            assert!(check(&cli(args)).is_ok(), "{args:?}");
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
        assert!(format!("{error:#}").contains("/nonexistent/model.bin"));
    }
}
