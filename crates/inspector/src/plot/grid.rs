//! The score field of a 2-feature model over a plane, and what is drawn from it: colour
//! bands merged into runs, the threshold contour by marching squares; and score histograms.

use anyhow::{Context as _, Result};
use iforest::IsolationForest;

use super::points::Points;

/// The plane to draw: the points' and the training data's range, plus a margin.
pub fn plane(model: &IsolationForest, points: &Points) -> [(f64, f64); 2] {
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
pub fn score_grid(
    model: &IsolationForest,
    plane: &[(f64, f64); 2],
    grid: usize,
) -> Result<Vec<f64>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
