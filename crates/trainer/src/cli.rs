//! Command-line arguments, as typed by the user; [`crate::run`] validates and acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use features::Missing;
use iforest::{Contamination, RangeCheck, SplitRule};

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
    /// Fit a model and write it (atomically) to --out, and a copy under its id in
    /// --models-dir. With no data source, trains on the original pipeline's synthetic data
    /// with its parameters (50 trees, 500 samples, contamination 0.01) unless flags say
    /// otherwise.
    Fit(Box<FitArgs>),
    /// Score every record of a CSV table (`row,score,anomaly[,label]`) or a JSON-lines file
    /// (`line,id,score,anomaly,label,reason`), in input order, exactly as the detector would.
    Score(ScoreArgs),
    /// Print ROC AUC, average precision and precision/recall/F1 at the model's threshold.
    Eval(EvalArgs),
    /// Print a model file's header: format, parameters, features, threshold.
    Show(ShowArgs),
}

/// Where `fit` reads its training records.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Train on this CSV table (header line; numeric columns).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["topic", "jsonl"])]
    pub csv: Option<PathBuf>,
    /// Column of the CSV holding 0/1 labels; never a feature.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// Feature columns to use, in order (default: all but the label column).
    #[arg(
        long,
        value_name = "A,B,…",
        value_delimiter = ',',
        requires = "csv",
        conflicts_with = "features"
    )]
    pub columns: Option<Vec<String>>,
    /// Train on this JSON-lines file: one JSON record per line.
    #[arg(long, value_name = "FILE", conflicts_with = "topic")]
    pub jsonl: Option<PathBuf>,
    /// Train on records already in this Kafka topic.
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

/// Which fields of a JSON record are the features.
#[derive(Debug, Args, Clone)]
pub struct FeatureArgs {
    /// The features, comma-separated, each a field and a transform: `amount` (a top-level
    /// number), `/merchant/geo/lat` (a JSON Pointer), `amount:log` (ln(1 + x)),
    /// `/merchant/mcc:category` (its training frequency), `/merchant/mcc:rarity` (its
    /// surprisal in bits; unseen values far beyond the rarest), `ts:hour`, `ts:weekday`; and
    /// per key, from the key's previous records: `amount:log:zscore` (against the key's own
    /// weighted mean and spread), `value:delta`, `value:lag:K` (its previous K values),
    /// `count:10m` (its records in the window), `since_last` (seconds since its previous
    /// record). They are stored in the model, and the detector reads them. Without it, records
    /// carry their features as a `data` array.
    #[arg(long, value_name = "LIST")]
    pub features: Option<String>,
    /// A record missing a feature: `dead-letter` (refused, and left out of training) or
    /// `impute` (the training median, or the most frequent category).
    #[arg(
        long,
        value_name = "dead-letter|impute",
        default_value = "dead-letter",
        requires = "features"
    )]
    pub missing: Missing,
    /// The field identifying a record (a name or a JSON Pointer); records without one are
    /// identified by where they were read.
    #[arg(long, value_name = "NAME", default_value = features::DEFAULT_ID_FIELD, requires = "features")]
    pub id_field: String,
    /// The field holding a record's 0/1 label (JSON records), where there is one; never a
    /// feature.
    #[arg(long, value_name = "NAME")]
    pub label_field: Option<String>,
    /// How per-key items keep each key's history.
    #[command(flatten)]
    pub per_key: PerKeyArgs,
}

/// How per-key items (`zscore`, `delta`, `lag:K`, `count:WINDOW`, `since_last`) keep each
/// key's history; stored in the model with the features.
#[derive(Debug, Args, Clone, PartialEq)]
pub struct PerKeyArgs {
    /// The field keying each record (a name or a JSON Pointer), e.g. `card` [default: the
    /// record's Kafka key; records of a file have none].
    #[arg(long, value_name = "NAME", requires = "features")]
    pub key_field: Option<String>,
    /// The field holding each record's time (RFC 3339, naive ISO 8601 as UTC, or epoch
    /// milliseconds) [default: the record's Kafka timestamp; records of a file have none].
    #[arg(long, value_name = "NAME", requires = "features")]
    pub time_field: Option<String>,
    /// The half-life of a key's weighted mean and variance (`zscore`), in records.
    #[arg(long, value_name = "N", default_value_t = features::DEFAULT_HALF_LIFE, requires = "features")]
    pub half_life: f64,
    /// Values a key needs before its own mean and variance replace the training ones.
    #[arg(long, value_name = "N", default_value_t = features::DEFAULT_MIN_HISTORY, requires = "features")]
    pub min_history: u32,
    /// The most record times a key keeps for `count:WINDOW` (a count is at most this).
    #[arg(long, value_name = "N", default_value_t = features::DEFAULT_MAX_WINDOW_RECORDS, requires = "features")]
    pub max_window_records: u32,
    /// How long (record time) a key's history outlives its last record: a span (`7d`,
    /// `12h`, `30m`) or `never`.
    #[arg(
        long,
        value_name = "SPAN|never",
        default_value = "7d",
        requires = "features"
    )]
    pub state_ttl: String,
}

impl Default for PerKeyArgs {
    /// The command line's defaults.
    fn default() -> Self {
        PerKeyArgs {
            key_field: None,
            time_field: None,
            half_life: features::DEFAULT_HALF_LIFE,
            min_history: features::DEFAULT_MIN_HISTORY,
            max_window_records: features::DEFAULT_MAX_WINDOW_RECORDS,
            state_ttl: format!("{}d", features::DEFAULT_STATE_TTL_DAYS),
        }
    }
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
    /// Range-aware isolation: `on` (a value beyond a split's training range ends its path
    /// there, as isolated) or `off` (plain isolation forests, as in scikit-learn)
    /// [default: the library's, on].
    #[arg(long, value_name = "on|off")]
    pub range_check: Option<RangeCheck>,
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
    /// Named features of JSON records.
    #[command(flatten)]
    pub features: FeatureArgs,
    /// The model's hyper-parameters.
    #[command(flatten)]
    pub params: ParamArgs,
    /// Where to write the model.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub out: PathBuf,
    /// Where to keep a copy of each model written, as `<model id>.bin`, so that a model an
    /// anomaly names can be found later [default: `by-id` beside --out, so
    /// `models/by-id`].
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
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
    /// reload it. Starts from the model already in --out, if any, with its features unless
    /// --features says otherwise.
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

/// What to score or evaluate: a CSV table or a JSON-lines file.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct InputArgs {
    /// A CSV table (the model's feature columns by name, or all columns in order).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// A JSON-lines file of records, read as the detector reads records: named features as
    /// the model names them, else the `data` array.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
}

/// `trainer score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model file.
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_MODEL_PATH)]
    pub model: PathBuf,
    /// The records.
    #[command(flatten)]
    pub input: InputArgs,
    /// CSV: column holding 0/1 labels, left out of the features and copied to the output.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub label_column: Option<String>,
    /// JSON lines: field holding 0/1 labels, copied to the output.
    #[arg(long, value_name = "NAME", requires = "jsonl")]
    pub label_field: Option<String>,
    /// JSON lines: also write each scored record's largest contributor to its isolation
    /// (`top_feature`, `direction`, `share`).
    #[arg(long, requires = "jsonl")]
    pub explain: bool,
    /// JSON lines: also write each scored record's row of features (`features`, a JSON array
    /// whose numbers read back bit for bit), as the model scored it.
    #[arg(long, requires = "jsonl")]
    pub rows: bool,
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
    /// The labelled records.
    #[command(flatten)]
    pub input: InputArgs,
    /// CSV: column holding 0/1 labels (1 = anomaly).
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_column: String,
    /// JSON lines: field holding 0/1 labels (1 = anomaly).
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_field: String,
    /// JSON lines: also measure each kind of anomaly on its own, against all the normal
    /// records; the kind is this field's value on records labelled 1 (`--group-field fraud`).
    #[arg(long, value_name = "NAME", requires = "jsonl")]
    pub group_field: Option<String>,
    /// JSON lines: read the first N records without measuring them, so that per-key features
    /// measure the rest with their keys' histories (the training records, say), as a detector
    /// running since then would.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "jsonl")]
    pub warm_up: usize,
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
