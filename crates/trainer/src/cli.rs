//! Command-line arguments, as typed by the user; [`crate::run`] validates and acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use iforest::{Contamination, SplitRule};

/// Fit, inspect and evaluate Isolation Forest models for the detector.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The trainer's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit a model and write it (atomically) to --out. With no data source, trains on the
    /// original pipeline's synthetic data with its parameters (50 trees, 500 samples,
    /// contamination 0.01) unless flags say otherwise.
    Fit(Box<FitArgs>),
    /// Score every row of a CSV table: writes `row,score,anomaly[,label]` in input order.
    Score(ScoreArgs),
    /// Print ROC AUC, average precision and precision/recall/F1 at the model's threshold.
    Eval(EvalArgs),
    /// Print a model file's header: format, parameters, features, threshold.
    Show(ShowArgs),
}

/// Where `fit` reads its training rows.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Train on this CSV table (header line; numeric columns).
    #[arg(long, value_name = "FILE", conflicts_with = "topic")]
    pub csv: Option<PathBuf>,
    /// Column of the CSV holding 0/1 labels; left out of the features.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// Feature columns to use, in order (default: all but the label column).
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', requires = "csv")]
    pub columns: Option<Vec<String>>,
    /// Train on transactions already in this Kafka topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// With --topic: read at most this many records (from the beginning of each partition).
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "topic")]
    pub max_records: usize,
    /// With --topic: give up waiting for records after this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        requires = "topic"
    )]
    pub topic_timeout: f64,
    /// Kafka connection (used with --topic).
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}

/// Hyper-parameters; unset ones take the library defaults (or the original pipeline's values
/// for the synthetic data).
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// Number of trees [default: 100; synthetic data: 50].
    #[arg(long, value_name = "N")]
    pub trees: Option<usize>,
    /// Rows sampled per tree, capped at the row count [default: 256; synthetic data: 500].
    #[arg(long, value_name = "N")]
    pub sample_size: Option<usize>,
    /// Depth limit [default: ceil(log2(sample size))].
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// `auto` (threshold 0.5 on the score) or the expected anomaly fraction q in (0, 0.5]
    /// [default: auto; synthetic data: 0.01].
    #[arg(long, value_name = "auto|Q")]
    pub contamination: Option<Contamination>,
    /// Random seed: the same data and seed give a bit-identical model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Split rule: `axis` (Liu et al. 2008) or `extended` (random hyperplanes, Hariri et al.).
    #[arg(long, value_name = "axis|extended", default_value = "axis")]
    pub split: SplitRule,
    /// Extended forest only: hyperplane extension level [default: features − 1].
    #[arg(long, value_name = "N")]
    pub extension_level: Option<usize>,
    /// Threads for fitting (0 = all cores); the model is the same for any value.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `trainer fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The training data.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The model's hyper-parameters.
    #[command(flatten)]
    pub params: ParamArgs,
    /// Where to write the model.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub out: PathBuf,
    /// Keep the model fitted to the stream (with --topic).
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// `trainer fit --topic T --follow`: refit on the recent stream, without end.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// With --topic: run until stopped, refitting on the newest --window records when the
    /// stream drifts from the model's training data (--drift-threshold) or the model reaches
    /// --interval's age; each model replaces --out atomically, and detectors watching it
    /// reload it. Starts from the model already in --out, if any.
    #[arg(long, requires = "topic")]
    pub follow: bool,
    /// Records to keep and refit on: the newest usable ones.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "follow")]
    pub window: usize,
    /// No refit before the window holds this many records [default: the window].
    #[arg(long, value_name = "N", requires = "follow")]
    pub min_records: Option<usize>,
    /// Refit when the model (the file's write time) is this old [default: never].
    #[arg(long, value_name = "SECONDS", requires = "follow")]
    pub interval: Option<f64>,
    /// Refit when a feature's mean in the window has moved more than X training standard
    /// deviations, or its standard deviation changed by more than a factor e^X; `inf`:
    /// refit on --interval only.
    #[arg(long, value_name = "X", default_value_t = 0.5, requires = "follow")]
    pub drift_threshold: f64,
}

/// `trainer score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model file.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub model: PathBuf,
    /// Table to score.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Column holding 0/1 labels: left out of the features, copied to the output.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `trainer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model file.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub model: PathBuf,
    /// Labelled table.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Column holding 0/1 labels (1 = anomaly).
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_column: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `trainer show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Model file.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub model: PathBuf,
}
