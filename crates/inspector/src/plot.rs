//! `inspector plot`: a picture of a model and the points it scored. For a 2-feature model,
//! the anomaly score over the plane (filled bands), the threshold contour (score = threshold)
//! and the points on top, normal and anomalous; for more features, the histogram of the
//! points' scores with the threshold. SVG or PNG, by the output's extension.
//!
//! The points come from a CSV table (scored with the model), from the anomalies topic (drawn
//! as anomalies: a detector flagged them), from a transactions topic (scored with the model),
//! or from both topics (a transaction whose id is among the anomalies is drawn as one).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use iforest::IsolationForest;
use plotters::coord::Shift;
use plotters::prelude::*;
use rdkafka::message::Message;
use rdkafka::Offset;
use schema::{Anomaly, DecodeLimits, Transaction};

use crate::cli::PlotArgs;

/// A topic has been read to its end when nothing arrived for this long.
const QUIET: Duration = Duration::from_secs(2);

/// Colours: low scores pale, high scores orange; points and the threshold stand out on both.
const LOW_SCORE: RGBColor = RGBColor(247, 251, 255);
const HIGH_SCORE: RGBColor = RGBColor(253, 141, 60);
const THRESHOLD: RGBColor = RGBColor(165, 15, 21);
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALY: RGBColor = RGBColor(214, 39, 40);

/// The points to draw: row-major features, and for each whether it is drawn as an anomaly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// Features per point.
    pub n_features: usize,
    /// Row-major feature values.
    pub data: Vec<f64>,
    /// Per point: drawn as an anomaly.
    pub flagged: Vec<bool>,
    /// Per point, when the source had labels: 1 = labelled anomaly.
    pub labels: Option<Vec<u8>>,
}

impl Points {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.flagged.len()
    }

    /// True when there is no point.
    pub fn is_empty(&self) -> bool {
        self.flagged.is_empty()
    }

    fn row(&self, index: usize) -> &[f64] {
        &self.data[index * self.n_features..(index + 1) * self.n_features]
    }
}

/// How to draw.
#[derive(Debug, Clone)]
pub struct Style {
    /// Picture size in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Grid cells per axis for the score contour (2 features).
    pub grid: usize,
    /// Score bands of the contour (2 features).
    pub bands: usize,
    /// Histogram bins (more features).
    pub bins: usize,
    /// Title above the chart.
    pub title: String,
}

/// What was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawing {
    /// Score contour with points (2 features).
    Contour,
    /// Score histogram (more features).
    Histogram,
}

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

/// A CSV table's rows, scored: anomalies are the rows above the model's threshold.
pub fn csv_points(
    model: &IsolationForest,
    path: &Path,
    label_column: Option<&str>,
) -> Result<Points> {
    // A model trained on a CSV knows its columns by name; a table without those names
    // (the model came from synthetic data or a topic) gives every non-label column in order.
    let names: Option<Vec<String>> = model.feature_names().map(<[String]>::to_vec);
    let all_columns = dataset::CsvSelection {
        label_column,
        columns: None,
    };
    let table = match &names {
        Some(names) => dataset::read_csv(
            path,
            &dataset::CsvSelection {
                label_column,
                columns: Some(names),
            },
        )
        .or_else(|_| dataset::read_csv(path, &all_columns))?,
        None => dataset::read_csv(path, &all_columns)?,
    };
    model
        .check_feature_count(table.n_features())
        .with_context(|| format!("{} does not fit the model", path.display()))?;
    let scores = model
        .score_batch(&table.data)
        .context("cannot score the table")?;
    Ok(Points {
        n_features: table.n_features(),
        data: table.data,
        flagged: scores.iter().map(|&s| s > model.threshold()).collect(),
        labels: table.labels,
    })
}

/// Points from the anomalies topic (flagged) and the transactions topic (scored), as asked.
fn topic_points(
    kafka: &bus::ClientSettings,
    model: &IsolationForest,
    args: &PlotArgs,
) -> Result<Points> {
    let limits = DecodeLimits::default();
    let width = model.n_features();
    let mut points = Points {
        n_features: width,
        ..Points::default()
    };
    let mut anomaly_ids = HashSet::new();
    let mut skipped = 0usize;
    if let Some(topic) = &args.topic {
        for value in read_values(kafka, topic, args.max_records, args.timeout)? {
            match Anomaly::decode(&value) {
                Ok(anomaly) if anomaly.features.len() == width => {
                    anomaly_ids.insert(anomaly.id.to_string());
                    if args.transactions_topic.is_none() {
                        points.data.extend_from_slice(&anomaly.features);
                        points.flagged.push(true);
                    }
                }
                _ => skipped += 1,
            }
        }
    }
    if let Some(topic) = &args.transactions_topic {
        let mut data = Vec::new();
        let mut ids = Vec::new();
        for value in read_values(kafka, topic, args.max_records, args.timeout)? {
            match Transaction::decode(&value, &limits) {
                Ok(tx) if tx.features.len() == width => {
                    data.extend_from_slice(&tx.features);
                    ids.push(tx.id.to_string());
                }
                _ => skipped += 1,
            }
        }
        let scores = model
            .score_batch(&data)
            .context("cannot score the transactions")?;
        points.data.extend_from_slice(&data);
        points.flagged.extend(
            scores
                .iter()
                .zip(&ids)
                .map(|(&score, id)| score > model.threshold() || anomaly_ids.contains(id)),
        );
    }
    if skipped > 0 {
        log::warn!("{skipped} records left out: not decodable, or not {width} features");
    }
    Ok(points)
}

/// Every record's value in `topic`, read from the beginning of each partition until
/// `max_records` or until the topic is quiet (as kcat reads: no group, nothing committed).
fn read_values(
    kafka: &bus::ClientSettings,
    topic: &str,
    max_records: usize,
    timeout: f64,
) -> Result<Vec<Vec<u8>>> {
    let timeout = Duration::try_from_secs_f64(timeout)
        .with_context(|| format!("--timeout must be 0 or more seconds, not {timeout}"))?;
    let consumer = kafka.base_consumer()?;
    bus::assign_all(&consumer, topic, Offset::Beginning)?;
    let deadline = Instant::now() + timeout;
    let mut last = Instant::now();
    let mut values = Vec::new();
    while values.len() < max_records && Instant::now() < deadline && last.elapsed() < QUIET {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                last = Instant::now();
                values.push(message.payload().unwrap_or_default().to_vec());
            }
            Some(Err(error)) => log::warn!("reading {topic}: {error}"),
        }
    }
    log::info!("read {} records from {topic}", values.len());
    Ok(values)
}

/// At most `max` points, every k-th kept (so the picture keeps the points' mix).
fn thin(points: Points, max: usize) -> Points {
    if max == 0 || points.len() <= max {
        return points;
    }
    let step = points.len().div_ceil(max);
    let keep: Vec<usize> = (0..points.len()).step_by(step).collect();
    Points {
        n_features: points.n_features,
        data: keep
            .iter()
            .flat_map(|&i| points.row(i).iter().copied())
            .collect(),
        flagged: keep.iter().map(|&i| points.flagged[i]).collect(),
        labels: points
            .labels
            .as_ref()
            .map(|labels| keep.iter().map(|&i| labels[i]).collect()),
    }
}

/// Draws `points` and the model to `out` (`.svg` or `.png`): the score contour for a 2-feature
/// model, else the score histogram.
pub fn render(
    model: &IsolationForest,
    points: &Points,
    style: &Style,
    out: &Path,
) -> Result<Drawing> {
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(extension.as_deref(), Some("svg" | "png")) {
        bail!("--out must end in .svg or .png, not {}", out.display());
    }
    if !points.is_empty() && points.n_features != model.n_features() {
        bail!(
            "the points have {} features, the model {}",
            points.n_features,
            model.n_features()
        );
    }
    if style.width < 200 || style.height < 150 {
        bail!("the picture must be at least 200×150 pixels");
    }
    let drawing = if model.n_features() == 2 {
        Drawing::Contour
    } else {
        Drawing::Histogram
    };
    if drawing == Drawing::Histogram && points.is_empty() {
        bail!(
            "a {}-feature model is drawn as a histogram of scores, which needs points \
             (--csv, --topic or --transactions-topic)",
            model.n_features()
        );
    }
    register_font();
    let size = (style.width, style.height);
    let drawn = match (extension.as_deref(), drawing) {
        (Some("svg"), Drawing::Contour) => draw_contour(
            SVGBackend::new(out, size).into_drawing_area(),
            model,
            points,
            style,
        ),
        (Some("svg"), Drawing::Histogram) => draw_histogram(
            SVGBackend::new(out, size).into_drawing_area(),
            model,
            points,
            style,
        ),
        (_, Drawing::Contour) => draw_contour(
            BitMapBackend::new(out, size).into_drawing_area(),
            model,
            points,
            style,
        ),
        (_, Drawing::Histogram) => draw_histogram(
            BitMapBackend::new(out, size).into_drawing_area(),
            model,
            points,
            style,
        ),
    };
    drawn.with_context(|| format!("cannot draw {}", out.display()))?;
    Ok(drawing)
}

/// Text is laid out with the DejaVu Sans face the binary carries, so PNGs have text on any
/// machine (no system fonts needed).
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_err()
        {
            log::warn!("the embedded font is unusable: text may be missing from PNGs");
        }
    });
}

/// A drawing error as an `anyhow` error (plotters' errors are generic over the backend).
/// The series' legend, in the upper right corner on a pale box (both kinds of picture).
fn draw_legend<'a, DB, X, Y>(chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(drawing_error)
}

fn drawing_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

/// The plane to draw: the points' and the training data's range, plus a margin.
fn plane(model: &IsolationForest, points: &Points) -> [(f64, f64); 2] {
    let mut ranges = [0usize, 1].map(|feature| {
        let summary = &model.summary()[feature];
        (summary.min, summary.max)
    });
    for index in 0..points.len() {
        for (feature, range) in ranges.iter_mut().enumerate() {
            let value = points.row(index)[feature];
            if value.is_finite() {
                *range = (range.0.min(value), range.1.max(value));
            }
        }
    }
    ranges.map(|(low, high)| {
        let margin = ((high - low) * 0.1).max(0.5);
        (low - margin, high + margin)
    })
}

/// Scores at the grid's nodes: `grid × grid` values, row `j` at y = y0 + j·dy.
fn score_grid(model: &IsolationForest, plane: &[(f64, f64); 2], grid: usize) -> Result<Vec<f64>> {
    let [xs, ys] = plane.map(|(low, high)| {
        (0..grid)
            .map(|i| low + (high - low) * i as f64 / (grid - 1) as f64)
            .collect::<Vec<f64>>()
    });
    let nodes: Vec<f64> = ys
        .iter()
        .flat_map(|&y| xs.iter().flat_map(move |&x| [x, y]))
        .collect();
    model.score_batch(&nodes).context("cannot score the grid")
}

/// A horizontal run of grid cells in one score band: row, first and last column, band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Grid row.
    pub row: usize,
    /// First cell.
    pub from: usize,
    /// Last cell (inclusive).
    pub to: usize,
    /// Band index, 0 = lowest scores.
    pub band: usize,
}

/// Cells of equal band merged along each row, so a picture holds hundreds of rectangles, not
/// tens of thousands. `values` is `width × rows`, row-major; bands split [low, high] evenly.
pub fn band_runs(values: &[f64], width: usize, bands: usize, low: f64, high: f64) -> Vec<Run> {
    let band = |value: f64| -> usize {
        if high.is_nan() || low.is_nan() || high <= low || !value.is_finite() {
            return 0;
        }
        let position = ((value - low) / (high - low) * bands as f64).floor();
        (position.max(0.0) as usize).min(bands.saturating_sub(1))
    };
    let mut runs = Vec::new();
    for (row, cells) in values.chunks(width.max(1)).enumerate() {
        let mut start = 0;
        for column in 1..=cells.len() {
            if column == cells.len() || band(cells[column]) != band(cells[start]) {
                runs.push(Run {
                    row,
                    from: start,
                    to: column - 1,
                    band: band(cells[start]),
                });
                start = column;
            }
        }
    }
    runs
}

/// The `level` contour of a field sampled at grid nodes (`width × rows`, row-major, node
/// `(i, j)` at `(i, j)` in grid units), by marching squares: line segments in grid units.
pub fn contour_segments(values: &[f64], width: usize, level: f64) -> Vec<[(f64, f64); 2]> {
    let rows = values.len().checked_div(width).unwrap_or(0);
    let at = |i: usize, j: usize| values[j * width + i];
    let mut segments = Vec::new();
    for j in 0..rows.saturating_sub(1) {
        for i in 0..width.saturating_sub(1) {
            // Corners counter-clockwise from the bottom left; edge k joins corner k and k+1.
            let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let value = corners.map(|(x, y)| at(x, y));
            if value.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let above = value.map(|v| v > level);
            let mut crossings = Vec::with_capacity(4);
            for edge in 0..4 {
                let next = (edge + 1) % 4;
                if above[edge] != above[next] {
                    let t = (level - value[edge]) / (value[next] - value[edge]);
                    let (x0, y0) = corners[edge];
                    let (x1, y1) = corners[next];
                    crossings.push((
                        x0 as f64 + t * (x1 as f64 - x0 as f64),
                        y0 as f64 + t * (y1 as f64 - y0 as f64),
                    ));
                }
            }
            match crossings[..] {
                [a, b] => segments.push([a, b]),
                // A saddle: the centre decides which corners it joins. Joined to corner 0,
                // the lines cut off corners 1 and 3 (edges 0-1 and 2-3); else corners 0 and 2.
                [a, b, c, d] => {
                    let centre = value.iter().sum::<f64>() / 4.0 > level;
                    if centre == above[0] {
                        segments.push([a, b]);
                        segments.push([c, d]);
                    } else {
                        segments.push([a, d]);
                        segments.push([b, c]);
                    }
                }
                _ => {}
            }
        }
    }
    segments
}

/// Linear blend of two colours, `t` in [0, 1].
fn blend(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_contour<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    model: &IsolationForest,
    points: &Points,
    style: &Style,
) -> Result<()> {
    let grid = style.grid.max(2);
    let bands = style.bands.max(1);
    let plane = plane(model, points);
    let scores = score_grid(model, &plane, grid)?;
    let (low, high) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    let [(x0, x1), (y0, y1)] = plane;
    let (dx, dy) = ((x1 - x0) / (grid - 1) as f64, (y1 - y0) / (grid - 1) as f64);
    let names = model.feature_names().unwrap_or_default();
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("feature {i}"))
    };

    root.fill(&WHITE).map_err(drawing_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&style.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .x_desc(name(0))
        .y_desc(name(1))
        .draw()
        .map_err(drawing_error)?;

    // Each grid node stands for the cell around it.
    let runs = band_runs(&scores, grid, bands, low, high);
    chart
        .draw_series(runs.iter().map(|run| {
            let colour = blend(
                LOW_SCORE,
                HIGH_SCORE,
                (run.band as f64 + 0.5) / bands as f64,
            );
            let (left, right) = (run.from as f64 - 0.5, run.to as f64 + 0.5);
            let (bottom, top) = (run.row as f64 - 0.5, run.row as f64 + 0.5);
            Rectangle::new(
                [
                    ((x0 + left * dx).max(x0), (y0 + top * dy).min(y1)),
                    ((x0 + right * dx).min(x1), (y0 + bottom * dy).max(y0)),
                ],
                colour.filled(),
            )
        }))
        .map_err(drawing_error)?
        .label(format!(
            "anomaly score {low:.2} (pale) to {high:.2} (orange)"
        ))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], HIGH_SCORE.filled()));

    let to_plane = |(i, j): (f64, f64)| (x0 + i * dx, y0 + j * dy);
    let threshold = model.threshold();
    chart
        .draw_series(
            contour_segments(&scores, grid, threshold)
                .into_iter()
                .map(|[a, b]| {
                    PathElement::new(vec![to_plane(a), to_plane(b)], THRESHOLD.stroke_width(2))
                }),
        )
        .map_err(drawing_error)?
        .label(format!("threshold: score = {threshold:.4}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], THRESHOLD.stroke_width(2)));

    let point = |index: usize| {
        let row = points.row(index);
        (row[0], row[1])
    };
    let (normal, anomalous): (Vec<usize>, Vec<usize>) =
        (0..points.len()).partition(|&i| !points.flagged[i]);
    chart
        .draw_series(
            normal
                .iter()
                .map(|&i| Circle::new(point(i), 2, NORMAL.filled())),
        )
        .map_err(drawing_error)?
        .label(format!("normal ({})", normal.len()))
        .legend(|(x, y)| Circle::new((x + 10, y), 3, NORMAL.filled()));
    chart
        .draw_series(
            anomalous
                .iter()
                .map(|&i| Circle::new(point(i), 3, ANOMALY.filled())),
        )
        .map_err(drawing_error)?
        .label(format!("anomaly ({})", anomalous.len()))
        .legend(|(x, y)| Circle::new((x + 10, y), 3, ANOMALY.filled()));
    if let Some(labels) = &points.labels {
        let labelled: Vec<usize> = (0..points.len()).filter(|&i| labels[i] == 1).collect();
        chart
            .draw_series(
                labelled
                    .iter()
                    .map(|&i| Circle::new(point(i), 5, BLACK.stroke_width(1))),
            )
            .map_err(drawing_error)?
            .label(format!("labelled anomaly ({})", labelled.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(1)));
    }
    draw_legend(&mut chart)?;
    root.present().map_err(drawing_error)?;
    Ok(())
}

/// Counts of `scores` in `bins` equal bins over [low, high], split by `group` (true = the
/// second count).
pub fn histogram(
    scores: &[f64],
    group: &[bool],
    bins: usize,
    low: f64,
    high: f64,
) -> Vec<[usize; 2]> {
    let bins = bins.max(1);
    let mut counts = vec![[0usize; 2]; bins];
    let width = (high - low) / bins as f64;
    for (&score, &second) in scores.iter().zip(group) {
        if !score.is_finite() {
            continue;
        }
        let bin = if width > 0.0 {
            (((score - low) / width).floor().max(0.0) as usize).min(bins - 1)
        } else {
            0
        };
        counts[bin][usize::from(second)] += 1;
    }
    counts
}

fn draw_histogram<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    model: &IsolationForest,
    points: &Points,
    style: &Style,
) -> Result<()> {
    let scores = model
        .score_batch(&points.data)
        .context("cannot score the points")?;
    let threshold = model.threshold();
    let (low, high) = scores.iter().fold((threshold, threshold), |(lo, hi), &s| {
        (lo.min(s), hi.max(s))
    });
    let margin = ((high - low) * 0.02).max(1e-3);
    let (low, high) = (low - margin, high + margin);
    // With labels the bars tell the labels apart, else the verdicts.
    let (group, names): (Vec<bool>, [&str; 2]) = match &points.labels {
        Some(labels) => (
            labels.iter().map(|&l| l == 1).collect(),
            ["labelled normal", "labelled anomaly"],
        ),
        None => (points.flagged.clone(), ["normal", "anomaly"]),
    };
    let counts = histogram(&scores, &group, style.bins, low, high);
    let totals = [0, 1].map(|g| counts.iter().map(|c| c[g]).sum::<usize>());
    let tallest = counts.iter().map(|c| c[0] + c[1]).max().unwrap_or(0).max(1);
    let width = (high - low) / counts.len() as f64;

    root.fill(&WHITE).map_err(drawing_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&style.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(low..high, 0.0..tallest as f64 * 1.08)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .x_desc(format!(
            "anomaly score ({} points, {} features)",
            points.len(),
            model.n_features()
        ))
        .y_desc("points")
        .y_label_formatter(&|count| format!("{count:.0}"))
        .draw()
        .map_err(drawing_error)?;
    // Stacked: the second group on top of the first.
    for (g, colour) in [(0usize, NORMAL), (1, ANOMALY)] {
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c[g] > 0)
                    .map(|(bin, c)| {
                        let left = low + bin as f64 * width;
                        let base = if g == 0 { 0 } else { c[0] };
                        Rectangle::new(
                            [(left, base as f64), (left + width, (base + c[g]) as f64)],
                            colour.mix(0.85).filled(),
                        )
                    }),
            )
            .map_err(drawing_error)?
            .label(format!("{} ({})", names[g], totals[g]))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], colour.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(threshold, 0.0), (threshold, tallest as f64 * 1.08)],
            THRESHOLD.stroke_width(2),
        )))
        .map_err(drawing_error)?
        .label(format!("threshold: score = {threshold:.4}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], THRESHOLD.stroke_width(2)));
    draw_legend(&mut chart)?;
    root.present().map_err(drawing_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::{Contamination, IsolationForestParams};

    fn style() -> Style {
        Style {
            width: 640,
            height: 480,
            grid: 80,
            bands: 10,
            bins: 30,
            title: "test model".into(),
        }
    }

    /// The original's two clusters, and a few points far from both.
    fn two_d() -> (IsolationForest, Points) {
        let table = dataset::synthetic_training_data(3);
        let model = IsolationForestParams::new()
            .n_trees(50)
            .contamination(Contamination::Fraction(0.01))
            .seed(3)
            .fit(&table.data, 2)
            .unwrap();
        let mut data = table.data[..400].to_vec();
        data.extend_from_slice(&[3.5, -3.5, -3.8, 3.1, 0.0, 0.1, 3.9, 3.9]);
        let flagged = data
            .chunks(2)
            .map(|row| model.predict(row).unwrap())
            .collect();
        let points = Points {
            n_features: 2,
            data,
            flagged,
            labels: None,
        };
        (model, points)
    }

    /// Six features: a Gaussian-like cloud and a few far rows (labelled 1).
    fn many_features() -> (IsolationForest, Points) {
        let n_features = 6;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for row in 0..1500 {
            let anomaly = row % 100 == 0;
            for feature in 0..n_features {
                let jitter = ((row * 7 + feature * 13) as f64 * 0.618_034).fract() - 0.5;
                data.push(if anomaly { 6.0 + jitter } else { jitter });
            }
            labels.push(u8::from(anomaly));
        }
        let model = IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .seed(1)
            .fit(&data, n_features)
            .unwrap();
        let flagged = data
            .chunks(n_features)
            .map(|row| model.predict(row).unwrap())
            .collect();
        let points = Points {
            n_features,
            data,
            flagged,
            labels: Some(labels),
        };
        (model, points)
    }

    fn count(points: &Points) -> (usize, usize) {
        let anomalies = points.flagged.iter().filter(|&&f| f).count();
        (points.len() - anomalies, anomalies)
    }

    #[test]
    fn a_two_feature_model_is_drawn_as_a_contour_with_its_threshold_and_points() {
        let (model, points) = two_d();
        let (normal, anomalies) = count(&points);
        assert!(normal > 150 && anomalies >= 4, "{normal} {anomalies}");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.svg");
        assert_eq!(
            render(&model, &points, &style(), &out).unwrap(),
            Drawing::Contour
        );
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let threshold = format!("threshold: score = {:.4}", model.threshold());
        for text in [
            threshold.as_str(),
            &format!("normal ({normal})"),
            &format!("anomaly ({anomalies})"),
            "test model",
        ] {
            assert!(svg.contains(text), "no {text:?} in the picture");
        }
        // The threshold line: polylines in its colour; one circle per point (+ 2 in the legend).
        assert!(svg.matches("stroke=\"#A50F15\"").count() > 10);
        assert_eq!(svg.matches("<circle").count(), points.len() + 2);
    }

    #[test]
    fn a_png_has_the_size_asked_and_the_colours_drawn() {
        let (model, points) = two_d();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.png");
        render(&model, &points, &style(), &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (640, 480));
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        let has = |colour: RGBColor| {
            pixels[..frame.buffer_size()]
                .chunks(3)
                .any(|p| p == [colour.0, colour.1, colour.2])
        };
        assert!(has(ANOMALY), "anomalies drawn");
        assert!(has(NORMAL), "normal points drawn");
        assert!(has(THRESHOLD), "threshold drawn");
        // Text (title, ticks, legend) is black, drawn with the embedded font.
        assert!(has(BLACK), "text drawn");
    }

    #[test]
    fn more_features_give_a_histogram_with_the_threshold() {
        let (model, points) = many_features();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("scores.svg");
        assert_eq!(
            render(&model, &points, &style(), &out).unwrap(),
            Drawing::Histogram
        );
        let svg = std::fs::read_to_string(&out).unwrap();
        let threshold = format!("threshold: score = {:.4}", model.threshold());
        assert!(svg.contains(&threshold));
        // With labels the bars split labelled normal from labelled anomalies.
        assert!(svg.contains("labelled normal (1485)"), "{svg}");
        assert!(svg.contains("labelled anomaly (15)"));
        assert!(svg.contains("1500 points, 6 features"));
        let png = dir.path().join("scores.png");
        render(&model, &points, &style(), &png).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    }

    #[test]
    fn bad_requests_are_refused() {
        let (model, points) = many_features();
        let dir = tempfile::tempdir().unwrap();
        let error = render(&model, &points, &style(), &dir.path().join("x.pdf")).unwrap_err();
        assert!(error.to_string().contains(".svg or .png"), "{error}");
        let empty = Points {
            n_features: 6,
            ..Points::default()
        };
        let error = render(&model, &empty, &style(), &dir.path().join("x.svg")).unwrap_err();
        assert!(error.to_string().contains("needs points"), "{error}");
        let (two_d, _) = two_d();
        let error = render(&two_d, &points, &style(), &dir.path().join("x.svg")).unwrap_err();
        assert!(error.to_string().contains("6 features"), "{error}");
        // A 2-feature model needs no points: the contour alone.
        let alone = Points {
            n_features: 2,
            ..Points::default()
        };
        render(&two_d, &alone, &style(), &dir.path().join("alone.svg")).unwrap();
    }

    #[test]
    fn the_contour_of_a_bowl_is_a_circle() {
        // f = (i − 20)² + (j − 20)² on a 41 × 41 grid: the level 100 is the circle of radius 10.
        let width = 41;
        let values: Vec<f64> = (0..width * width)
            .map(|k| {
                let (i, j) = ((k % width) as f64 - 20.0, (k / width) as f64 - 20.0);
                i * i + j * j
            })
            .collect();
        let segments = contour_segments(&values, width, 100.0);
        // About 2πr / cell = 63 cells are crossed; each gives one segment.
        assert!((50..90).contains(&segments.len()), "{}", segments.len());
        for point in segments.iter().flatten() {
            let radius = (point.0 - 20.0).hypot(point.1 - 20.0);
            assert!((radius - 10.0).abs() < 0.1, "{point:?} at radius {radius}");
        }
        assert!(
            contour_segments(&values, width, 5000.0).is_empty(),
            "level above the field"
        );
    }

    #[test]
    fn a_saddle_is_split_by_its_centre() {
        // Corners 0 and 2 high, 1 and 3 low; the centre (mean 0.5) is above 0.4 and joins the
        // high corners, so the lines cut off the low corners 1 and 3.
        let values = [1.0, 0.0, 0.0, 1.0];
        let segments = contour_segments(&values, 2, 0.4);
        assert_eq!(segments.len(), 2);
        let cuts_off = |corner: (f64, f64)| {
            segments.iter().any(|[a, b]| {
                let near = |p: &(f64, f64)| (p.0 - corner.0).abs() + (p.1 - corner.1).abs() < 0.7;
                near(a) && near(b)
            })
        };
        assert!(cuts_off((1.0, 0.0)) && cuts_off((0.0, 1.0)), "{segments:?}");
    }

    #[test]
    fn equal_bands_along_a_row_are_one_run() {
        let values = [
            0.1, 0.15, 0.9, 0.95, 0.1, /* row 1 */ 0.5, 0.5, 0.5, 0.5, 0.5,
        ];
        let runs = band_runs(&values, 5, 2, 0.0, 1.0);
        let run = |row, from, to, band| Run {
            row,
            from,
            to,
            band,
        };
        assert_eq!(
            runs,
            [
                run(0, 0, 1, 0),
                run(0, 2, 3, 1),
                run(0, 4, 4, 0),
                run(1, 0, 4, 1)
            ]
        );
    }

    #[test]
    fn the_histogram_counts_each_group_in_its_bin() {
        let counts = histogram(
            &[0.0, 0.1, 0.55, 0.99, 1.0, f64::NAN],
            &[false, true, false, true, true, true],
            2,
            0.0,
            1.0,
        );
        assert_eq!(counts, [[1, 1], [1, 2]]);
    }

    #[test]
    fn thinning_keeps_every_kth_point_with_its_verdict_and_label() {
        let points = Points {
            n_features: 1,
            data: (0..10).map(f64::from).collect(),
            flagged: (0..10).map(|i| i % 3 == 0).collect(),
            labels: Some((0..10).map(|i| (i % 2) as u8).collect()),
        };
        let thinned = thin(points.clone(), 4);
        assert_eq!(thinned.data, [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(thinned.flagged, [true; 4]);
        assert_eq!(thinned.labels, Some(vec![0, 1, 0, 1]));
        assert_eq!(thin(points.clone(), 0), points, "0 = all");
    }

    #[test]
    fn csv_points_are_scored_and_keep_their_labels() {
        let (model, _) = two_d();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,b,label\n2.0,2.0,0\n3.9,-3.9,1\n-2.1,-1.9,0\n").unwrap();
        let points = csv_points(&model, &path, Some("label")).unwrap();
        assert_eq!(points.data, [2.0, 2.0, 3.9, -3.9, -2.1, -1.9]);
        assert_eq!(points.flagged, [false, true, false]);
        assert_eq!(points.labels, Some(vec![0, 1, 0]));
    }
}
