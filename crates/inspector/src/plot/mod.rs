//! `inspector plot`: a picture of a model and the points it scored. For a 2-feature model,
//! the anomaly score over the plane (filled bands), the threshold contour (score = threshold)
//! and the points on top, normal and anomalous; for more features, the histogram of the
//! points' scores with the threshold. SVG or PNG, by the output's extension.
//!
//! The points come from a CSV table (scored with the model), from the anomalies topic (drawn
//! as anomalies: a detector flagged them), from a transactions topic (scored with the model),
//! or from both topics (a transaction whose id is among the anomalies is drawn as one).
//!
//! # Layout
//!
//! - [`points`]: the points, from a table or the topics.
//! - [`grid`]: the score field, its bands and threshold contour, histograms (uses `points`).
//! - [`draw`]: the pictures (uses `grid`, `points`).
//! - this module: the command.

pub mod draw;
#[cfg(test)]
mod fixtures;
pub mod grid;
pub mod points;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use iforest::IsolationForest;

pub use draw::{render, Drawing, Style};
pub use grid::{band_runs, contour_segments, histogram, Run};
pub use points::{csv_points, Points};

use crate::cli::PlotArgs;
use points::{thin, topic_points};

/// What `plot` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotSummary {
    /// The kind of chart.
    pub drawing: Drawing,
    /// Points drawn as normal.
    pub normal: usize,
    /// Points drawn as anomalies.
    pub anomalies: usize,
    /// The file written.
    pub out: PathBuf,
}

/// Reads the model and the points as `args` asks, and writes the picture.
pub fn plot(
    kafka: &bus::ClientSettings,
    args: &PlotArgs,
    out: &mut dyn Write,
) -> Result<PlotSummary> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read the model {}", args.model.display()))?;
    let model = IsolationForest::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable model", args.model.display()))?;
    let model_id = iforest::model_id(&bytes);
    let points = if let Some(csv) = &args.csv {
        csv_points(&model, csv, args.label_column.as_deref())?
    } else if args.topic.is_some() || args.transactions_topic.is_some() {
        topic_points(kafka, &model, args)?
    } else {
        Points {
            n_features: model.n_features(),
            ..Points::default()
        }
    };
    let points = thin(points, args.max_points);
    let style = Style {
        width: args.width,
        height: args.height,
        grid: args.grid,
        bands: args.bands,
        bins: args.bins,
        title: format!(
            "model {model_id}: {} trees, threshold {:.4}",
            model.n_trees(),
            model.threshold()
        ),
    };
    let drawing = render(&model, &points, &style, &args.out)?;
    let anomalies = points.flagged.iter().filter(|&&f| f).count();
    let summary = PlotSummary {
        drawing,
        normal: points.len() - anomalies,
        anomalies,
        out: args.out.clone(),
    };
    writeln!(
        out,
        "inspector: wrote {} ({}, {} normal and {} anomalous points)",
        summary.out.display(),
        match drawing {
            Drawing::Contour => "score contour",
            Drawing::Histogram => "score histogram",
        },
        summary.normal,
        summary.anomalies
    )?;
    Ok(summary)
}
