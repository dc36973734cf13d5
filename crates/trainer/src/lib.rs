//! The trainer: fits Isolation Forest models for the detector and checks them offline.
//!
//! `trainer fit` reads training records from the original pipeline's synthetic clusters, a CSV
//! table, a JSON-lines file or a Kafka topic, fits an [`iforest::IsolationForest`] and saves
//! it atomically (default `models/model.bin`, where the detector looks), and keeps a copy
//! under its id (`models/by-id/<id>.bin`). Records carry their features as a `data` array, or
//! `--features` names them (`amount:log,/merchant/mcc:category,ts:hour`): the `features`
//! crate learns what they need, and the model file keeps the specification, so the detector
//! reads the same fields the same way. `score`, `eval` and `show` work on CSV tables,
//! JSON-lines files and model files without Kafka, computing verdicts as the detector does.
//!
//! `trainer fit --topic T --follow` keeps running: it refits on the recent stream when it
//! drifts from the model's training data or the model is old, and replaces the model file
//! ([`follow`]).
//!
//! # Layout
//!
//! - [`cli`]: the raw arguments.
//! - [`fit`]: training data from a source, the features, the forest; [`model`]: the model
//!   file (features in its metadata, the copy by id).
//! - [`records`]: JSON records with their origin, labels, the tally of records left out;
//!   [`topic`]: reading training records from Kafka.
//! - [`score`]: `score` and `eval`; [`show`]: `show`.
//! - [`follow`]: the drift-following refits.
//!
//! Tables, JSON lines, the payments scenario and metrics come from the `dataset` crate; this
//! file wires the commands.
#![deny(missing_docs)]

pub mod cli;
pub mod fit;
pub mod follow;
pub mod model;
pub mod records;
pub mod score;
pub mod show;
pub mod topic;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use cli::{Command, FitArgs};

pub use score::{evaluate, Evaluation};

/// Where `fit` writes and the other commands (and the detector) read by default.
pub const DEFAULT_MODEL_PATH: &str = "models/model.bin";

/// Runs one command. `stop`, once set, ends `fit --follow` cleanly (the binary sets it on
/// SIGINT or SIGTERM); the other commands finish on their own.
pub fn run(cli: cli::Cli, stop: &Arc<AtomicBool>) -> Result<()> {
    match cli.command {
        Command::Fit(args) if args.follow.follow => fit_following(&args, stop),
        Command::Fit(args) => fit::fit(&args),
        Command::Score(args) => score::score(&args),
        Command::Eval(args) => score::eval(&args),
        Command::Show(args) => show::show(&args),
    }
}

/// `fit --topic T --follow`: refits until `stop` is set.
fn fit_following(args: &FitArgs, stop: &Arc<AtomicBool>) -> Result<()> {
    let topic = args
        .source
        .topic
        .as_deref()
        .context("--follow needs --topic")?;
    let follow = &args.follow;
    let interval = follow
        .interval
        .map(|seconds| {
            Duration::try_from_secs_f64(seconds)
                .with_context(|| format!("--interval must be a number of seconds, not {seconds}"))
        })
        .transpose()?;
    let policy = follow::Policy {
        window: follow.window,
        min_records: follow.min_records.unwrap_or(follow.window),
        interval,
        drift_threshold: follow.drift_threshold,
    };
    let spec = fit::feature_spec(&args.features)?;
    if spec.as_ref().is_some_and(features::FeatureSpec::is_per_key) {
        anyhow::bail!(
            "--follow does not refit per-key features: fit them with `trainer fit` on a file or \
             a topic"
        );
    }
    let params = fit::build_params(&args.params, false, Vec::new());
    let output = follow::output(&args.out, args.models_dir.as_deref());
    let mut follower = follow::Follower::new(policy, params, output, spec)?;
    follow::follow(&args.source.kafka.settings()?, topic, &mut follower, stop)?;
    Ok(())
}

fn spinner(message: &'static str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

fn progress_bar(length: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length).with_message(message);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
