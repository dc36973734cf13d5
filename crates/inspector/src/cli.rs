//! The command line: one subcommand per job, each with its own arguments.

use clap::{Parser, Subcommand};

/// Read the pipeline's topics for people, without disturbing the detectors: no consumer
/// group is joined and no offset is committed.
#[derive(Debug, Parser)]
#[command(name = "inspector", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}

/// The inspector's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a topic's records as they arrive.
    Tail(TailArgs),
    /// List topics, their partitions and low/high watermarks.
    Topics(TopicsArgs),
    /// Create topics that do not exist yet: `NAME[:PARTITIONS]` (default 1 partition).
    CreateTopics(CreateTopicsArgs),
}

/// `inspector tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Topic to read.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub topic: String,
    /// Start from the oldest record of every partition instead of the newest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop after this many seconds without a record.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print each record's JSON value alone, one per line.
    #[arg(long)]
    pub json: bool,
}

/// `inspector topics`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicsArgs {
    /// Include internal topics (names starting with `__`).
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait for the cluster's answer.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
}

/// `inspector create-topics`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateTopicsArgs {
    /// Topics to create, e.g. transactions:3 anomalies.
    #[arg(required = true, value_name = "NAME[:PARTITIONS]")]
    pub topics: Vec<String>,
}
