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
    /// Records per second, anomaly share, dead letters, the detectors' lag, latency
    /// percentiles and (labelled data) precision/recall, live every second or `--once`.
    Stats(StatsArgs),
    /// Post anomalies to a Slack-compatible webhook, a burst as one incident message.
    Alert(AlertArgs),
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

/// `inspector stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// The transactions topic.
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub input_topic: String,
    /// The anomalies topic.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub output_topic: String,
    /// The dead-letter topic.
    #[arg(long, default_value = schema::topics::DEAD_LETTERS)]
    pub dlq_topic: String,
    /// The detectors' consumer group, whose lag is shown (it is not joined).
    #[arg(long, default_value = schema::topics::DEFAULT_GROUP)]
    pub group: String,
    /// Read what is there now (from the beginning, or the last `--last` records of each
    /// partition), print one summary and exit.
    #[arg(long)]
    pub once: bool,
    /// JSON: one object with --once, one line per second live.
    #[arg(long)]
    pub json: bool,
    /// With --once: read only the last N records of each partition.
    #[arg(long, value_name = "N")]
    pub last: Option<u64>,
    /// Live: latency percentiles over this many seconds of anomalies.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub window: f64,
    /// Live: read the topics from the beginning instead of from now.
    #[arg(long)]
    pub from_beginning: bool,
    /// Live: stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
    /// With --once: give up reading after this many seconds (the summary says
    /// `"complete": false`).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub timeout: f64,
}

/// `inspector alert`.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// Where to post: a Slack-compatible incoming webhook URL (`{"text": …}` bodies).
    #[arg(long, value_name = "URL")]
    pub webhook: String,
    /// The anomalies topic.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub topic: String,
    /// Start from the oldest anomaly instead of the newest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Anomalies less than this many seconds apart (by their Kafka timestamps) are one
    /// incident; an incident is also sent once no anomaly came for this long.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub group_window: f64,
    /// At most this many messages in any minute; what comes meanwhile is folded into the
    /// next message.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_per_minute: u32,
    /// Time-out of one post (connect, send and answer), in seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Tries per message before it is given up (with a log line).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub tries: u32,
    /// Wait before the first retry, doubled for each further one (at most 60 s).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub backoff: f64,
    /// Model file for the explanation's top feature; without a readable one, messages
    /// leave it out.
    #[arg(long, default_value = "models/model.bin", value_name = "FILE")]
    pub model: std::path::PathBuf,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
}
