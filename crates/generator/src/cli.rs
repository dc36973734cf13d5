//! The command line, as typed: raw values, checked by [`crate::Config::from_cli`].

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The scenarios `--scenario` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Card payments, each card with its habits, with labelled frauds
    /// ([`dataset::payments`]); `--key-field card` keeps each card's payments in one
    /// partition.
    Payments,
    /// Sensors reading noisy periodic series, with labelled faults ([`dataset::sensors`]);
    /// `--key-field sensor` keeps each sensor's readings in one partition.
    Sensors,
}

/// Produce records into Kafka: the original pipeline's synthetic stream (seeded), a replayed
/// CSV table with its labels, a replayed JSON-lines file, or a scenario (`payments`,
/// `sensors`). Prints
/// one summary line at the end and exits non-zero if any record was not acknowledged.
#[derive(Debug, Parser)]
#[command(name = "generator", version, about)]
pub struct Cli {
    /// Records to send; 0 = until stopped (synthetic, --scenario) or the whole file (--csv,
    /// --jsonl).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub count: u64,
    /// Records per second; 0 = as fast as the broker takes them.
    #[arg(long, default_value_t = 100.0, value_name = "R")]
    pub rate: f64,
    /// Probability that a synthetic record is an outlier, uniform in [−4, 4]².
    #[arg(long, default_value_t = 0.7, value_name = "P")]
    pub outlier_probability: f64,
    /// Move the synthetic clusters by DX,DY (a drifting stream; outliers stay where they are).
    #[arg(
        long,
        value_name = "DX,DY",
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with_all = ["csv", "jsonl", "scenario"]
    )]
    pub shift: Option<Vec<f64>>,
    /// With --shift: the first this many records keep the original clusters.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "shift")]
    pub shift_after: u64,
    /// Random seed: the same seed gives the same records.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Id of the first record; the next ones count up.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub first_id: i64,
    /// Replay this CSV table (header line, numeric columns) instead of the synthetic stream.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["jsonl", "scenario"])]
    pub csv: Option<PathBuf>,
    /// Column of the CSV holding 0/1 labels: sent as the record's `label`, not as a feature.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// Replay this JSON-lines file: each line's record sent as it is written.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub jsonl: Option<PathBuf>,
    /// Send a scenario's seeded records instead of the synthetic stream: `payments` (card
    /// payments with labelled frauds) or `sensors` (sensor readings with labelled faults);
    /// --seed, --first-id.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<Scenario>,
    /// Key each record by this field (a name or a JSON Pointer; `card` keeps each card's
    /// payments in one partition, as per-key features need): with --jsonl (default: no key)
    /// or --scenario (default: the id). A string is the key as it is, an integer its digits.
    #[arg(long, value_name = "NAME")]
    pub key_field: Option<String>,
    /// Write the records to standard output, one per line, instead of sending them (no
    /// broker needed; --rate is ignored; the summary line goes to standard error):
    /// `generator --scenario payments --count 50000 --print > payments.jsonl`.
    #[arg(long)]
    pub print: bool,
    /// Topic to write to.
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub topic: String,
    /// Seconds to wait at the end for the broker to acknowledge what is still in flight.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub flush_timeout: f64,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}
