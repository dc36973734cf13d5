//! The command line: one subcommand per job, each with its own arguments.

use std::path::PathBuf;

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
    /// Draw a model: for 2 features the score contour over the plane with the threshold
    /// line and the points on top; for more, the histogram of the points' scores with the
    /// threshold. SVG or PNG by the extension of --out.
    Plot(PlotArgs),
    /// Serve a live page (updated every second, no reload) with the figures of `stats`, the
    /// group's members and lag, the score histogram (and contour for a 2-feature model), the
    /// latest anomalies with their top reason, the dead letters by reason and the model.
    Serve(ServeArgs),
    /// Check the anomalies against their source records: fetch each one's transaction by
    /// partition and offset, re-score it with the model the anomaly names (from
    /// --models-dir) and compare score and features bit for bit; with one model over the
    /// range, also re-score every transaction in it and report anomalies missing from the
    /// output and anomalies that should not be there. Exit code 1 when anything differs or is
    /// missing.
    Verify(VerifyArgs),
}

impl Command {
    /// Whether the command runs until it is told to stop (so a signal should ask it to
    /// finish cleanly rather than end the process at once).
    pub fn runs_until_stopped(&self) -> bool {
        match self {
            Command::Tail(_) | Command::Alert(_) | Command::Serve(_) => true,
            Command::Stats(args) => !args.once,
            Command::Topics(_)
            | Command::CreateTopics(_)
            | Command::Plot(_)
            | Command::Verify(_) => false,
        }
    }
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
    #[arg(
        required_unless_present = "state_for",
        value_name = "NAME[:PARTITIONS]"
    )]
    pub topics: Vec<String>,
    /// Also create the changelog of GROUP's per-key state for --input-topic,
    /// `GROUP.INPUT.state`: compacted, with the input's partitions (after the topics above,
    /// so the input can be one of them). One that exists with other partitions or without
    /// compaction is refused.
    #[arg(long, value_name = "GROUP")]
    pub state_for: Option<String>,
    /// The input topic whose per-key state --state-for keeps.
    #[arg(long, default_value = schema::topics::TRANSACTIONS, value_name = "TOPIC")]
    pub input_topic: String,
    /// Copies of each partition. 1 suits one broker (Tansu, the demo); a cluster usually
    /// wants 3, and a managed one may refuse less.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub replication_factor: i32,
}

/// The pipeline's topics and the detectors' group, as `stats` and `serve` read them.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
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
}

/// `inspector stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Topics and group.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
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
    /// Model file for the top feature of anomalies written without an explanation (an
    /// anomaly's own explanation comes first); without a readable one, their messages leave
    /// it out.
    #[arg(long, default_value = "models/model.bin", value_name = "FILE")]
    pub model: std::path::PathBuf,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
}

/// `inspector plot`.
///
/// Points (optional for a 2-feature model): `--csv FILE` scores a table's rows with the model
/// (anomaly = above the threshold; with `--label-column`, labelled anomalies are ringed, or
/// split the histogram); `--topic anomalies` draws the detectors' anomalies as anomalies;
/// `--transactions-topic transactions` scores transactions with the model, and with `--topic`
/// too, a transaction among the anomalies is drawn as one. Topics are read from the beginning
/// (no group joined) until --max-records or until they are quiet.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Model file.
    #[arg(long, value_name = "FILE", default_value = "models/model.bin")]
    pub model: PathBuf,
    /// Picture to write: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Points from this CSV table (header line; numeric columns).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["topic", "transactions_topic"])]
    pub csv: Option<PathBuf>,
    /// Column of the CSV holding 0/1 labels; left out of the features.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// Anomalies topic to read points from (drawn as anomalies).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Transactions topic to read points from (scored with the model).
    #[arg(long, value_name = "TOPIC")]
    pub transactions_topic: Option<String>,
    /// Most records read from each topic.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_records: usize,
    /// Most seconds spent reading each topic.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Most points drawn (every k-th kept); 0 = all.
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    pub max_points: usize,
    /// Picture width in pixels.
    #[arg(long, default_value_t = 900)]
    pub width: u32,
    /// Picture height in pixels.
    #[arg(long, default_value_t = 700)]
    pub height: u32,
    /// Grid nodes per axis where the score is computed (2 features).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub grid: usize,
    /// Colour bands of the score (2 features).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub bands: usize,
    /// Histogram bins (more features).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub bins: usize,
}

/// `inspector serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Topics and group.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Address to listen on (port 0: any free port; the address is logged).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: std::net::SocketAddr,
    /// The model file, for its feature names, the score histogram of every transaction and
    /// (2 features) the score contour; reread when it changes. Without it, the page shows the
    /// model the anomalies name, and the histogram of the anomalies' scores.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Read the topics from the beginning instead of from now.
    #[arg(long)]
    pub from_beginning: bool,
    /// Latency percentiles over this many seconds of anomalies.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub window: f64,
    /// Seconds of rates and latency the page's charts show.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub history: u32,
    /// Most open connections (event streams included); more are answered 503.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Stop after this many seconds (default: at SIGINT or SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
}

/// `inspector verify`.
///
/// Without `--from-beginning` or `--last`, every anomaly is read and the range re-scored
/// for missing anomalies is, per input partition, the source offsets from the first
/// anomaly's to the last one's.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Read every anomaly, and re-score the whole input topic for missing ones.
    #[arg(long, conflicts_with = "last")]
    pub from_beginning: bool,
    /// Read only the last N anomalies of each partition of the anomalies topic.
    #[arg(long, value_name = "N")]
    pub last: Option<u64>,
    /// Where the models are kept by id, as `trainer fit` writes them (`<DIR>/<id>.bin`).
    #[arg(long, default_value = "models/by-id", value_name = "DIR")]
    pub models_dir: PathBuf,
    /// Print one JSON object with every count and the first differences.
    #[arg(long)]
    pub json: bool,
    /// The transactions topic (the anomalies' sources).
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub input_topic: String,
    /// The anomalies topic.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub output_topic: String,
    /// The detectors' consumer group (not joined): an expected anomaly at or past its
    /// committed offset is pending, not missing.
    #[arg(long, default_value = schema::topics::DEFAULT_GROUP)]
    pub group: String,
    /// Records larger than this are refused, as the detectors refuse them (set it as theirs
    /// was).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_record_bytes: usize,
    /// Give up (exit code 2) when the topics are not read within this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub timeout: f64,
}
