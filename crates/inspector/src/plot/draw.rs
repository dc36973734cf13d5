//! Drawing with plotters, to SVG or PNG from one code: the score contour with the threshold
//! and the points (2 features), or the score histogram with the threshold (more).

use std::path::Path;
use std::sync::Once;

use anyhow::{bail, Context as _, Result};
use iforest::IsolationForest;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::grid::{band_runs, contour_segments, histogram, plane, score_grid};
use super::points::Points;

/// Colours: low scores pale, high scores orange; points and the threshold stand out on both.
const LOW_SCORE: RGBColor = RGBColor(247, 251, 255);
const HIGH_SCORE: RGBColor = RGBColor(253, 141, 60);
const THRESHOLD: RGBColor = RGBColor(165, 15, 21);
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALY: RGBColor = RGBColor(214, 39, 40);

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

/// A drawing error as an `anyhow` error (plotters' errors are generic over the backend).
fn drawing_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
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
    use super::super::fixtures::{many_features, two_d};
    use super::*;

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
}
