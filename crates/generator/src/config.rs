//! The checked configuration: what [`crate::Cli`] asks for, validated and resolved.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use dataset::{csv_records, shifted_synthetic_records, PaymentsParams, SensorsParams, Shift};
use features::FieldPath;
use rdkafka::ClientConfig;
use schema::Transaction;
use serde_json::Value;

use crate::cli::Scenario;
use crate::Cli;

/// Where the records come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The original pipeline's synthetic stream.
    Synthetic {
        /// Random seed.
        seed: u64,
        /// Probability of an outlier.
        outlier_probability: f64,
        /// Records to send; 0 = without end.
        count: u64,
        /// How the clusters move (none by default).
        shift: Shift,
    },
    /// A CSV table's rows, already read.
    Table(Vec<Transaction>),
    /// A JSON-lines file's records as written, with their keys, already read.
    Lines(Vec<Outgoing>),
    /// A scenario's seeded records.
    Scenario {
        /// Which, with its settings (seed, first id).
        params: ScenarioParams,
        /// Records to send; 0 = without end.
        count: u64,
        /// The field keying each record (`None`: the id).
        key_field: Option<FieldPath>,
    },
}

/// A scenario and its settings.
#[derive(Debug, Clone)]
pub enum ScenarioParams {
    /// Card payments ([`dataset::payments`]).
    Payments(PaymentsParams),
    /// Sensor readings ([`dataset::sensors`]).
    Sensors(SensorsParams),
}

impl ScenarioParams {
    /// The scenario's records as JSON values, each with its text; checked in
    /// [`Config::from_cli`], so settings the scenario refuses give no records here.
    fn records(&self) -> Box<dyn Iterator<Item = (Value, String)> + '_> {
        match self {
            ScenarioParams::Payments(params) => Box::new(
                params
                    .records()
                    .into_iter()
                    .flatten()
                    .map(|p| (p.to_value(), p.to_json())),
            ),
            ScenarioParams::Sensors(params) => Box::new(
                params
                    .records()
                    .into_iter()
                    .flatten()
                    .map(|r| (r.to_value(), r.to_json())),
            ),
        }
    }
}

/// A record to send: its key and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The Kafka key, if any.
    pub key: Option<String>,
    /// The record.
    pub payload: Vec<u8>,
}

/// A record's key from `field`, as per-key features key it ([`features::key_text`]): a
/// string as it is, an integer as its digits (`5411` and `5411.0` alike); anything else as
/// its JSON text; `None` when the field is absent or null.
pub fn key_of(record: &Value, field: &FieldPath) -> Option<String> {
    match field.lookup(record)? {
        Value::Null => None,
        value => features::key_text(value).or_else(|| Some(value.to_string())),
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The records.
    pub source: Source,
    /// Id of the first record.
    pub first_id: i64,
    /// Records per second; 0 = unpaced.
    pub rate: f64,
    /// Topic to write to.
    pub topic: String,
    /// How long to wait at the end for acknowledgements.
    pub flush_timeout: Duration,
    /// The producer's librdkafka settings.
    pub producer: ClientConfig,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

impl Config {
    /// Checks the command line and resolves it: reads the CSV, builds the producer settings.
    pub fn from_cli(cli: &Cli) -> Result<Config> {
        if !(0.0..=1.0).contains(&cli.outlier_probability) {
            bail!(
                "--outlier-probability must be between 0 and 1, not {}",
                cli.outlier_probability
            );
        }
        if !(cli.rate >= 0.0 && cli.rate.is_finite()) {
            bail!(
                "--rate must be 0 (unpaced) or a positive number, not {}",
                cli.rate
            );
        }
        if !(cli.flush_timeout >= 0.0 && cli.flush_timeout.is_finite()) {
            bail!(
                "--flush-timeout must be 0 or more seconds, not {}",
                cli.flush_timeout
            );
        }
        if cli.topic.is_empty() {
            bail!("--topic must not be empty");
        }
        let shift = match cli.shift.as_deref() {
            None => Shift::NONE,
            Some(&[dx, dy]) if dx.is_finite() && dy.is_finite() => Shift {
                by: [dx, dy],
                after: cli.shift_after,
            },
            Some(other) => bail!("--shift must be two finite numbers DX,DY, not {other:?}"),
        };
        let key_field = cli
            .key_field
            .as_deref()
            .map(|name| FieldPath::parse(name).with_context(|| format!("--key-field {name:?}")))
            .transpose()?;
        if key_field.is_some() && cli.jsonl.is_none() && cli.scenario.is_none() {
            bail!("--key-field needs --jsonl or --scenario (other records are keyed by id)");
        }
        let limit = |len: usize| match cli.count {
            0 => len,
            count => len.min(usize::try_from(count).unwrap_or(usize::MAX)),
        };
        let source = if let Some(path) = &cli.csv {
            let mut rows = csv_records(path, cli.label_column.as_deref(), cli.first_id)?;
            rows.truncate(limit(rows.len()));
            Source::Table(rows)
        } else if let Some(path) = &cli.jsonl {
            let mut lines = dataset::read_jsonl(path)?;
            lines.truncate(limit(lines.len()));
            Source::Lines(
                lines
                    .into_iter()
                    .map(|line| Outgoing {
                        key: key_field
                            .as_ref()
                            .and_then(|field| key_of(&line.value, field)),
                        payload: line.text.into_bytes(),
                    })
                    .collect(),
            )
        } else if let Some(scenario) = cli.scenario {
            // Settings the scenario refuses stop the run here, not at the first record.
            let params = match scenario {
                Scenario::Payments => {
                    let params = PaymentsParams {
                        seed: cli.seed,
                        first_id: cli.first_id,
                        ..PaymentsParams::default()
                    };
                    params.records()?;
                    ScenarioParams::Payments(params)
                }
                Scenario::Sensors => {
                    let params = SensorsParams {
                        seed: cli.seed,
                        first_id: cli.first_id,
                        ..SensorsParams::default()
                    };
                    params.records()?;
                    ScenarioParams::Sensors(params)
                }
            };
            Source::Scenario {
                params,
                count: cli.count,
                key_field,
            }
        } else {
            Source::Synthetic {
                seed: cli.seed,
                outlier_probability: cli.outlier_probability,
                count: cli.count,
                shift,
            }
        };
        Ok(Config {
            source,
            first_id: cli.first_id,
            rate: cli.rate,
            topic: cli.topic.clone(),
            flush_timeout: Duration::from_secs_f64(cli.flush_timeout),
            producer: cli
                .kafka
                .settings()?
                .producer_config(Some(&producer_requirements()))?,
            progress: true,
        })
    }

    /// Records to send, when known (`None` = without end).
    pub fn total(&self) -> Option<u64> {
        match &self.source {
            Source::Synthetic { count: 0, .. } => None,
            Source::Synthetic { count, .. } => Some(*count),
            Source::Table(rows) => Some(rows.len() as u64),
            Source::Lines(lines) => Some(lines.len() as u64),
            Source::Scenario { count: 0, .. } => None,
            Source::Scenario { count, .. } => Some(*count),
        }
    }

    /// The records, in the order they are sent.
    pub fn records(&self) -> Box<dyn Iterator<Item = Outgoing> + '_> {
        let transaction = |transaction: Transaction| Outgoing {
            key: Some(transaction.key()),
            payload: transaction.encode(),
        };
        match &self.source {
            Source::Synthetic {
                seed,
                outlier_probability,
                count,
                shift,
            } => Box::new(
                shifted_synthetic_records(
                    *seed,
                    *outlier_probability,
                    self.first_id,
                    *count,
                    *shift,
                )
                .map(transaction),
            ),
            Source::Table(rows) => Box::new(rows.iter().cloned().map(transaction)),
            Source::Lines(lines) => Box::new(lines.iter().cloned()),
            Source::Scenario {
                params,
                count,
                key_field,
            } => {
                let records = params.records();
                let records: Box<dyn Iterator<Item = (Value, String)>> = match count {
                    0 => records,
                    count => Box::new(records.take(usize::try_from(*count).unwrap_or(usize::MAX))),
                };
                Box::new(records.map(move |(value, text)| {
                    let key = match key_field {
                        Some(field) => key_of(&value, field),
                        None => value.get("id").map(Value::to_string),
                    };
                    Outgoing {
                        key,
                        payload: text.into_bytes(),
                    }
                }))
            }
        }
    }
}

/// What the generator's producer cannot do without: every record acknowledged by all in-sync
/// replicas, and idempotence, so that its re-sends never duplicate a record. A `-X` or
/// `--client-config` setting that contradicts one is refused at start.
pub fn producer_requirements() -> bus::Requirements {
    bus::Requirements::new("the generator's idempotent producer")
        .require("acks", "all")
        .require("enable.idempotence", "true")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        let mut argv = vec!["generator"];
        argv.extend_from_slice(args);
        Config::from_cli(&Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn defaults_are_the_originals() {
        let config = config(&[]).unwrap();
        assert_eq!(config.rate, 100.0, "the original's 0.01 s pause");
        assert_eq!(config.topic, "transactions");
        assert!(matches!(
            config.source,
            Source::Synthetic {
                outlier_probability: 0.7,
                ..
            }
        ));
        assert_eq!(config.producer.get("acks"), Some("all"));
        assert_eq!(config.producer.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for (args, flag) in [
            (
                &["--outlier-probability", "1.5"][..],
                "--outlier-probability",
            ),
            (&["--rate=-1"], "--rate"),
            (&["--rate", "NaN"], "--rate"),
            (&["--flush-timeout=-2"], "--flush-timeout"),
            (
                &["--csv", "/nonexistent/table.csv"],
                "/nonexistent/table.csv",
            ),
        ] {
            let error = format!("{:#}", config(args).unwrap_err());
            assert!(error.contains(flag), "{args:?}: {error}");
        }
    }

    #[test]
    fn a_setting_that_voids_idempotence_is_refused() {
        for (args, key) in [
            (["-X", "acks=1"], "acks=1"),
            (
                ["-X", "enable.idempotence=false"],
                "enable.idempotence=false",
            ),
        ] {
            let Err(error) = config(&args) else {
                panic!("{args:?} accepted")
            };
            let message = format!("{error:#}");
            assert!(message.contains(key), "{message}");
            assert!(message.contains("idempotent producer"), "{message}");
        }
        assert!(config(&["-X", "acks=all", "-X", "linger.ms=1"]).is_ok());
    }

    #[test]
    fn a_shift_is_two_numbers_and_moves_the_clusters() {
        let config = config(&["--shift", "3,-2.5", "--shift-after", "10"]).unwrap();
        assert!(matches!(
            config.source,
            Source::Synthetic {
                shift: Shift {
                    by: [3.0, -2.5],
                    after: 10
                },
                ..
            }
        ));
        let error = format!("{:#}", self::config(&["--shift", "1"]).unwrap_err());
        assert!(error.contains("--shift"), "two numbers: {error}");
        assert!(
            Cli::try_parse_from(["generator", "--shift-after", "5"]).is_err(),
            "needs --shift"
        );
        let error = format!("{:#}", self::config(&["--shift", "NaN,1"]).unwrap_err());
        assert!(error.contains("--shift"), "{error}");
    }

    #[test]
    fn count_zero_is_endless_and_ids_start_where_asked() {
        let config = config(&["--count", "0", "--first-id", "-5"]).unwrap();
        assert_eq!(config.total(), None);
        let keys: Vec<Option<String>> = config.records().take(3).map(|t| t.key).collect();
        assert_eq!(
            keys,
            [Some("-5".into()), Some("-4".into()), Some("-3".into())]
        );
        assert_eq!(
            self::config(&["--count", "7"]).unwrap().records().count(),
            7
        );
    }

    #[test]
    fn a_jsonl_file_is_sent_as_written_keyed_by_the_field_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let lines = [
            r#"{"card": "c-1",  "amount": 1.50}"#,
            r#"{"amount": 2, "card": {"n": 7}}"#,
            r#"{"amount": 3}"#,
        ];
        std::fs::write(
            &path,
            format!("{}\n\n{}\n{}\n", lines[0], lines[1], lines[2]),
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let keyed = config(&["--jsonl", file, "--key-field", "card"]).unwrap();
        assert_eq!(keyed.total(), Some(3));
        let sent: Vec<Outgoing> = keyed.records().collect();
        let payloads: Vec<&[u8]> = sent.iter().map(|o| o.payload.as_slice()).collect();
        assert_eq!(payloads, lines.map(str::as_bytes), "byte for byte");
        let keys: Vec<Option<&str>> = sent.iter().map(|o| o.key.as_deref()).collect();
        assert_eq!(keys, [Some("c-1"), Some(r#"{"n":7}"#), None]);
        let unkeyed = config(&["--jsonl", file, "--count", "2"]).unwrap();
        let keys: Vec<Option<String>> = unkeyed.records().map(|o| o.key).collect();
        assert_eq!(
            keys,
            [None, None],
            "--count keeps the first records; no key by default"
        );
        let nested = config(&["--jsonl", file, "--key-field", "/card/n"]).unwrap();
        assert_eq!(nested.records().nth(1).unwrap().key.as_deref(), Some("7"));
        std::fs::write(&path, "{}\n[1]\n").unwrap();
        let error = format!("{:#}", config(&["--jsonl", file]).unwrap_err());
        assert!(error.contains("r.jsonl:2"), "{error}");
    }

    #[test]
    fn the_payments_scenario_is_seeded_and_keyed_by_id_or_field() {
        let by_id = config(&["--scenario", "payments", "--count", "50", "--seed", "3"]).unwrap();
        assert_eq!(by_id.total(), Some(50));
        let expected: Vec<dataset::Payment> = PaymentsParams {
            seed: 3,
            ..PaymentsParams::default()
        }
        .records()
        .unwrap()
        .take(50)
        .collect();
        let sent: Vec<Outgoing> = by_id.records().collect();
        assert_eq!(sent.len(), 50);
        for (outgoing, payment) in sent.iter().zip(&expected) {
            assert_eq!(outgoing.payload, payment.to_json().into_bytes());
            assert_eq!(
                outgoing.key.as_deref(),
                Some(payment.id.to_string().as_str())
            );
        }
        let by_card = config(&[
            "--scenario",
            "payments",
            "--key-field",
            "card",
            "--first-id",
            "9",
        ])
        .unwrap();
        let first = by_card.records().next().unwrap();
        let value: Value = serde_json::from_slice(&first.payload).unwrap();
        assert_eq!(value["id"], 9);
        assert_eq!(first.key.as_deref(), value["card"].as_str());
        let endless = config(&["--scenario", "payments", "--count", "0"]).unwrap();
        assert_eq!(endless.total(), None);
        assert_eq!(endless.records().take(5000).count(), 5000);
        let error = format!("{:#}", config(&["--key-field", "card"]).unwrap_err());
        assert!(error.contains("--key-field needs"), "{error}");
        assert!(Cli::try_parse_from(["generator", "--scenario", "bank"]).is_err());
        assert!(
            Cli::try_parse_from(["generator", "--scenario", "payments", "--shift", "1,1"]).is_err()
        );
    }

    #[test]
    fn the_sensors_scenario_is_seeded_and_keyed_by_sensor() {
        let by_sensor = config(&[
            "--scenario",
            "sensors",
            "--count",
            "400",
            "--seed",
            "2",
            "--key-field",
            "sensor",
        ])
        .unwrap();
        let expected: Vec<dataset::SensorReading> = SensorsParams {
            seed: 2,
            ..SensorsParams::default()
        }
        .records()
        .unwrap()
        .take(400)
        .collect();
        let sent: Vec<Outgoing> = by_sensor.records().collect();
        assert_eq!(sent.len(), 400);
        for (outgoing, reading) in sent.iter().zip(&expected) {
            assert_eq!(outgoing.payload, reading.to_json().into_bytes());
            assert_eq!(outgoing.key.as_deref(), Some(reading.sensor.as_str()));
        }
        let by_id = config(&["--scenario", "sensors", "--count", "3", "--first-id", "5"]).unwrap();
        let keys: Vec<Option<String>> = by_id.records().map(|o| o.key).collect();
        assert_eq!(keys, [Some("5".into()), Some("6".into()), Some("7".into())]);
    }

    #[test]
    fn keys_are_the_ones_per_key_features_read() {
        let field = FieldPath::parse("k").unwrap();
        for (value, key) in [
            (serde_json::json!({"k": "c-1"}), Some("c-1")),
            (serde_json::json!({"k": 5411}), Some("5411")),
            (serde_json::json!({"k": 5411.0}), Some("5411")),
            (serde_json::json!({"k": {"n": 7}}), Some(r#"{"n":7}"#)),
            (serde_json::json!({"k": null}), None),
            (serde_json::json!({}), None),
        ] {
            assert_eq!(key_of(&value, &field).as_deref(), key, "{value}");
        }
    }

    #[test]
    fn printed_records_are_the_sent_ones_one_per_line() {
        let config = config(&["--scenario", "payments", "--count", "20", "--seed", "4"]).unwrap();
        let mut out = Vec::new();
        let summary = crate::emit::print(
            &config,
            &mut out,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!((summary.sent, summary.failed), (20, 0));
        let expected: Vec<u8> = config
            .records()
            .flat_map(|o| o.payload.into_iter().chain([b'\n']))
            .collect();
        assert_eq!(out, expected);
    }
}
