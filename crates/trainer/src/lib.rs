//! The trainer: fits Isolation Forest models for the detector and checks them offline.
//!
//! `trainer fit` reads training rows from the original pipeline's synthetic clusters, a CSV
//! table or a Kafka topic, fits an [`iforest::IsolationForest`] and saves it atomically
//! (default `models/model.bin`, where the detector looks). `score`, `eval` and `show` work on
//! CSV tables and model files without Kafka.
//!
//! `trainer fit --topic T --follow` keeps running: it refits on the recent stream when it
//! drifts from the model's training data or the model is old, and replaces the model file
//! ([`follow`]).
//!
//! Layout: [`cli`] holds the raw arguments, [`topic`] reading training records from Kafka,
//! [`follow`] the drift-following refits; tables and metrics come from the `dataset` crate;
//! this file wires them.
#![deny(missing_docs)]

pub mod cli;
pub mod follow;
pub mod topic;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use iforest::{Contamination, IsolationForest, IsolationForestParams, SplitRule};
use indicatif::{ProgressBar, ProgressStyle};

use cli::{Command, EvalArgs, FitArgs, ParamArgs, ScoreArgs, ShowArgs};
use dataset::{Confusion, CsvSelection, Table};

/// Where `fit` writes and the other commands (and the detector) read by default.
pub const DEFAULT_MODEL_PATH: &str = "models/model.bin";

/// Rows scored per progress-bar step.
const SCORE_CHUNK_ROWS: usize = 16_384;

/// Runs one command. `stop`, once set, ends `fit --follow` cleanly (the binary sets it on
/// SIGINT or SIGTERM); the other commands finish on their own.
pub fn run(cli: cli::Cli, stop: &Arc<AtomicBool>) -> Result<()> {
    match cli.command {
        Command::Fit(args) => fit(&args, stop),
        Command::Score(args) => score(&args),
        Command::Eval(args) => eval(&args),
        Command::Show(args) => show(&args),
    }
}

/// The original pipeline's hyper-parameters, used for its synthetic data.
const SYNTHETIC_TREES: usize = 50;
const SYNTHETIC_SAMPLE_SIZE: usize = 500;
const SYNTHETIC_CONTAMINATION: f64 = 0.01;

fn fit(args: &FitArgs, stop: &Arc<AtomicBool>) -> Result<()> {
    if args.follow.follow {
        return fit_following(args, stop);
    }
    let source = &args.source;
    let (table, synthetic) = if let Some(path) = &source.csv {
        let selection = CsvSelection {
            label_column: source.label_column.as_deref(),
            columns: source.columns.as_deref(),
        };
        (dataset::read_csv(path, &selection)?, false)
    } else if let Some(topic_name) = &source.topic {
        let limits = topic::ReadLimits {
            max_records: source.max_records,
            timeout: Duration::from_secs_f64(source.topic_timeout.max(0.0)),
        };
        (
            topic::read_training_rows(&source.kafka.settings()?, topic_name, &limits)?,
            false,
        )
    } else {
        (dataset::synthetic_training_data(args.params.seed), true)
    };
    let params = build_params(&args.params, synthetic, table.feature_names.clone());
    log::info!(
        "fitting on {} rows × {} features ({})",
        table.rows(),
        table.n_features(),
        if synthetic {
            "the original pipeline's synthetic clusters"
        } else {
            "given data"
        }
    );
    let spinner = spinner("fitting");
    let started = Instant::now();
    let model = params
        .fit(&table.data, table.n_features())
        .context("cannot fit the model")?;
    spinner.finish_and_clear();
    let fit_time = started.elapsed();
    if let Some(parent) = args
        .out
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    model
        .save(&args.out)
        .with_context(|| format!("cannot save the model to {}", args.out.display()))?;
    let bytes = std::fs::read(&args.out)
        .with_context(|| format!("cannot read back {}", args.out.display()))?;
    let flagged = model
        .score_batch(&table.data)
        .context("cannot score the training rows")?
        .iter()
        .filter(|&&score| score > model.threshold())
        .count();
    println!(
        "trainer: wrote {} (model {}, {} trees, {} features, threshold {:.4}, fitted in {:.1} ms; \
         {} of {} training rows above the threshold)",
        args.out.display(),
        iforest::model_id(&bytes),
        model.n_trees(),
        model.n_features(),
        model.threshold(),
        fit_time.as_secs_f64() * 1e3,
        flagged,
        table.rows(),
    );
    Ok(())
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
    let params = build_params(&args.params, false, Vec::new());
    let mut follower = follow::Follower::new(policy, params, &args.out)?;
    follow::follow(&args.source.kafka.settings()?, topic, &mut follower, stop)?;
    Ok(())
}

fn build_params(args: &ParamArgs, synthetic: bool, names: Vec<String>) -> IsolationForestParams {
    let (default_trees, default_samples, default_contamination) = if synthetic {
        (
            SYNTHETIC_TREES,
            SYNTHETIC_SAMPLE_SIZE,
            Contamination::Fraction(SYNTHETIC_CONTAMINATION),
        )
    } else {
        (100, 256, Contamination::Auto)
    };
    let split = match args.split {
        SplitRule::Extended { .. } => SplitRule::Extended {
            extension_level: args.extension_level,
        },
        axis => axis,
    };
    IsolationForestParams::new()
        .n_trees(args.trees.unwrap_or(default_trees))
        .sample_size(args.sample_size.unwrap_or(default_samples))
        .max_depth(args.max_depth)
        .contamination(args.contamination.unwrap_or(default_contamination))
        .seed(args.seed)
        .split_rule(split)
        .threads(args.threads)
        .feature_names(names)
}

/// Loads a model and the CSV columns it was trained on (by name when the model has names).
fn load_model_and_table(
    model_path: &Path,
    csv_path: &Path,
    label_column: Option<&str>,
) -> Result<(IsolationForest, Table)> {
    let model = IsolationForest::load(model_path)
        .with_context(|| format!("cannot load the model {}", model_path.display()))?;
    let names: Option<Vec<String>> = model.feature_names().map(<[String]>::to_vec);
    let selection = CsvSelection {
        label_column,
        columns: names.as_deref(),
    };
    let table = dataset::read_csv(csv_path, &selection)?;
    model
        .check_feature_count(table.n_features())
        .with_context(|| format!("{} does not fit the model", csv_path.display()))?;
    Ok((model, table))
}

/// Scores every row with a progress bar.
fn score_table(model: &IsolationForest, table: &Table) -> Result<Vec<f64>> {
    let bar = progress_bar(table.rows() as u64, "scoring");
    let mut scores = vec![0.0; table.rows()];
    let width = table.n_features();
    for (rows, out) in table
        .data
        .chunks(SCORE_CHUNK_ROWS * width)
        .zip(scores.chunks_mut(SCORE_CHUNK_ROWS))
    {
        model
            .score_batch_into(rows, out)
            .context("cannot score the table")?;
        bar.inc(out.len() as u64);
    }
    bar.finish_and_clear();
    Ok(scores)
}

fn score(args: &ScoreArgs) -> Result<()> {
    let (model, table) =
        load_model_and_table(&args.model, &args.csv, args.label_column.as_deref())?;
    let scores = score_table(&model, &table)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write_scores(
        &mut out,
        &scores,
        model.threshold(),
        table.labels.as_deref(),
    )
    .and_then(|()| out.flush())
    .context("cannot write the scores")?;
    Ok(())
}

/// Writes `row,score,anomaly[,label]`, one line per row in input order.
fn write_scores(
    out: &mut dyn Write,
    scores: &[f64],
    threshold: f64,
    labels: Option<&[u8]>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "row,score,anomaly{}",
        if labels.is_some() { ",label" } else { "" }
    )?;
    for (row, &score) in scores.iter().enumerate() {
        let anomaly = u8::from(score > threshold);
        match labels {
            Some(labels) => writeln!(out, "{row},{score},{anomaly},{}", labels[row])?,
            None => writeln!(out, "{row},{score},{anomaly}")?,
        }
    }
    Ok(())
}

/// What `eval` measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Rows scored.
    pub rows: usize,
    /// Rows labelled 1.
    pub labelled_anomalies: usize,
    /// ROC AUC (None with a single class).
    pub roc_auc: Option<f64>,
    /// Average precision (None without positives).
    pub average_precision: Option<f64>,
    /// Predictions at the model's threshold against the labels.
    pub confusion: Confusion,
    /// The model's threshold.
    pub threshold: f64,
}

/// Measures scores against labels at `threshold`.
pub fn evaluate(scores: &[f64], labels: &[u8], threshold: f64) -> Evaluation {
    let predicted: Vec<bool> = scores.iter().map(|&score| score > threshold).collect();
    Evaluation {
        rows: scores.len(),
        labelled_anomalies: labels.iter().filter(|&&label| label == 1).count(),
        roc_auc: dataset::roc_auc(scores, labels),
        average_precision: dataset::average_precision(scores, labels),
        confusion: Confusion::tally(&predicted, labels),
        threshold,
    }
}

fn eval(args: &EvalArgs) -> Result<()> {
    let (model, table) = load_model_and_table(&args.model, &args.csv, Some(&args.label_column))?;
    let scores = score_table(&model, &table)?;
    let labels = table.labels.as_deref().unwrap_or_default();
    let evaluation = evaluate(&scores, labels, model.threshold());
    let c = &evaluation.confusion;
    if args.json {
        let json = serde_json::json!({
            "rows": evaluation.rows,
            "labelled_anomalies": evaluation.labelled_anomalies,
            "roc_auc": evaluation.roc_auc,
            "average_precision": evaluation.average_precision,
            "threshold": evaluation.threshold,
            "precision": c.precision(),
            "recall": c.recall(),
            "f1": c.f1(),
            "true_positives": c.true_positives,
            "false_positives": c.false_positives,
            "false_negatives": c.false_negatives,
            "true_negatives": c.true_negatives,
        });
        println!("{json}");
        return Ok(());
    }
    let show =
        |value: Option<f64>| value.map_or("n/a (one class)".to_string(), |v| format!("{v:.4}"));
    println!("rows               {}", evaluation.rows);
    println!("labelled anomalies {}", evaluation.labelled_anomalies);
    println!("ROC AUC            {}", show(evaluation.roc_auc));
    println!("average precision  {}", show(evaluation.average_precision));
    println!("threshold          {:.4}", evaluation.threshold);
    println!(
        "at the threshold   precision {:.4}  recall {:.4}  F1 {:.4}  (TP {} FP {} FN {} TN {})",
        c.precision(),
        c.recall(),
        c.f1(),
        c.true_positives,
        c.false_positives,
        c.false_negatives,
        c.true_negatives
    );
    Ok(())
}

fn show(args: &ShowArgs) -> Result<()> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let model = IsolationForest::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable model", args.model.display()))?;
    let params = model.params();
    println!("model              {}", args.model.display());
    println!("id                 {}", iforest::model_id(&bytes));
    println!("format version     {}", iforest::FORMAT_VERSION);
    println!("trees              {}", model.n_trees());
    println!(
        "sample size        {} (asked {})",
        model.sample_size(),
        params.sample_size()
    );
    println!(
        "max depth          {}",
        params
            .max_depth()
            .map_or("ceil(log2(sample size))".to_string(), |d| d.to_string())
    );
    println!("split rule         {:?}", params.split_rule());
    println!("contamination      {}", params.contamination());
    println!("seed               {}", params.seed());
    println!("training rows      {}", model.training_rows());
    println!("threshold          {}", model.threshold());
    println!("features           {}", model.n_features());
    println!(
        "  {:<16} {:>12} {:>12} {:>12} {:>12}",
        "name", "min", "max", "mean", "std dev"
    );
    for (index, summary) in model.summary().iter().enumerate() {
        let name = model
            .feature_names()
            .and_then(|names| names.get(index).cloned())
            .unwrap_or_else(|| format!("#{index}"));
        println!(
            "  {:<16} {:>12.4} {:>12.4} {:>12.4} {:>12.4}",
            name, summary.min, summary.max, summary.mean, summary.std_dev
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_lines_keep_input_order_and_flag_above_the_threshold() {
        let mut out = Vec::new();
        write_scores(&mut out, &[0.4, 0.7, 0.5], 0.5, Some(&[0, 1, 1])).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "row,score,anomaly,label\n0,0.4,0,0\n1,0.7,1,1\n2,0.5,0,1\n"
        );
    }

    #[test]
    fn synthetic_defaults_are_the_original_pipelines() {
        let args = ParamArgs {
            trees: None,
            sample_size: None,
            max_depth: None,
            contamination: None,
            seed: 42,
            split: SplitRule::Axis,
            extension_level: None,
            threads: 1,
        };
        let params = build_params(&args, true, vec![]).check().unwrap();
        assert_eq!(params.n_trees(), 50);
        assert_eq!(params.sample_size(), 500);
        assert_eq!(params.contamination(), Contamination::Fraction(0.01));
        let params = build_params(&args, false, vec![]).check().unwrap();
        assert_eq!((params.n_trees(), params.sample_size()), (100, 256));
    }

    #[test]
    fn evaluation_at_the_threshold() {
        let evaluation = evaluate(&[0.9, 0.2, 0.6, 0.3], &[1, 0, 0, 1], 0.5);
        assert_eq!(evaluation.labelled_anomalies, 2);
        assert_eq!(evaluation.confusion.true_positives, 1);
        assert_eq!(evaluation.confusion.false_positives, 1);
        assert_eq!(evaluation.roc_auc, Some(0.75));
    }
}
