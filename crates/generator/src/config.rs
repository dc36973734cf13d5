//! The checked configuration: what [`crate::Cli`] asks for, validated and resolved.

use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::ClientConfig;
use schema::Transaction;

use crate::Cli;
use dataset::{csv_records, shifted_synthetic_records, Shift};

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
        let source = match &cli.csv {
            Some(path) => {
                let mut rows = csv_records(path, cli.label_column.as_deref(), cli.first_id)?;
                if cli.count > 0 {
                    rows.truncate(usize::try_from(cli.count).unwrap_or(usize::MAX));
                }
                Source::Table(rows)
            }
            None => Source::Synthetic {
                seed: cli.seed,
                outlier_probability: cli.outlier_probability,
                count: cli.count,
                shift,
            },
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
        }
    }

    /// The records, in the order they are sent.
    pub fn records(&self) -> Box<dyn Iterator<Item = Transaction> + '_> {
        match &self.source {
            Source::Synthetic {
                seed,
                outlier_probability,
                count,
                shift,
            } => Box::new(shifted_synthetic_records(
                *seed,
                *outlier_probability,
                self.first_id,
                *count,
                *shift,
            )),
            Source::Table(rows) => Box::new(rows.iter().cloned()),
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
        let keys: Vec<String> = config.records().take(3).map(|t| t.key()).collect();
        assert_eq!(keys, ["-5", "-4", "-3"]);
        assert_eq!(
            self::config(&["--count", "7"]).unwrap().records().count(),
            7
        );
    }
}
