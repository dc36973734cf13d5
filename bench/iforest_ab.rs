//! Scoring speed of two versions of crates/iforest in one process: `base` (an older commit)
//! and this checkout with the range check off and on, timed in turn on the same data, round
//! after round. Built and run by bench/iforest-ab.sh, which supplies the two crates.
//!
//! `iforest_ab ODDS_DIR [ROUNDS] [TABLES]` (TABLES: comma-separated; `synthetic-2d` is a
//! fixed 1000-row table). Per table and scorer: the medians over the rounds of batch µs per
//! row (the table tiled to at least 100 000 rows) and of single-row µs (20 000 rows), and the
//! median [quartiles] of the per-round ratios to `base` (for `on`, to `off`); and of
//! `IsolationForest::attribute` µs per row, with the ratio to `base`'s, for the same 20 000
//! rows and for 20 000 outlying rows (drawn evenly over the table's bounding box widened by
//! half its width on each side, as the generator's outliers are: mostly the rows a detector
//! explains).
//! The three scorers run back to back within a round, in an order that rotates, so a machine
//! that is busier at some moments weighs on all of them alike. The scores of `base` and `off`
//! (of `base` and `on` when base has the range check) are checked to be identical.
//!
//! The script sets `--cfg base_range` when base has the range check (then `base` is fitted
//! with it, as `on` is) and `--cfg base_attribute` when base has `attribute` (else base's
//! attribution column is empty).

use std::hint::black_box;
use std::time::Instant;

fn read(path: &str) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let width = lines.next().expect("a header").split(',').count() - 1;
    let mut data = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let fields: Vec<f64> = line.split(',').map(|f| f.parse().expect("a number")).collect();
        data.extend_from_slice(&fields[..width]);
    }
    (data, width)
}

/// 1000 points on two small rings around (2, 2) and (−2, −2).
fn synthetic() -> (Vec<f64>, usize) {
    let data = (0..1000)
        .flat_map(|i| {
            let centre = if i < 500 { 2.0 } else { -2.0 };
            let angle = f64::from(i) * 0.618 * std::f64::consts::TAU;
            [centre + 0.3 * angle.sin(), centre + 0.3 * (1.3 * angle).cos()]
        })
        .collect();
    (data, 2)
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// `count` rows spread evenly (a low-discrepancy sequence) over the bounding box of `data`
/// widened by half its width on each side.
fn outlying(data: &[f64], width: usize, count: usize) -> Vec<f64> {
    let (mut low, mut high) = (vec![f64::INFINITY; width], vec![f64::NEG_INFINITY; width]);
    for row in data.chunks_exact(width) {
        for (f, &value) in row.iter().enumerate() {
            low[f] = low[f].min(value);
            high[f] = high[f].max(value);
        }
    }
    (0..count * width)
        .map(|i| {
            let f = i % width;
            let span = high[f] - low[f];
            // Weyl sequence with an irrational step per feature.
            let u = ((i / width) as f64 * (0.618_033_988_7 + f as f64 * 0.414_213_562)).fract();
            low[f] - 0.5 * span + 2.0 * span * u
        })
        .collect()
}

/// One scorer's timings in one round, µs: batch per row, single row, attribution per row of
/// the table and of outlying rows (NaN without attribution).
type Timing = (f64, f64, f64, f64);

/// Times one scorer.
fn time(
    scorer: &Scorer,
    batch: &[f64],
    out: &mut [f64],
    singles: &[&[f64]],
    far: &[&[f64]],
) -> Timing {
    let start = Instant::now();
    (scorer.batch)(batch, out);
    let batch_us = start.elapsed().as_secs_f64() * 1e6 / out.len() as f64;
    let start = Instant::now();
    for row in singles {
        black_box((scorer.single)(black_box(row)));
    }
    let single_us = start.elapsed().as_secs_f64() * 1e6 / singles.len() as f64;
    let attribute_us = |rows: &[&[f64]]| match &scorer.attribute {
        Some(attribute) => {
            let start = Instant::now();
            for row in rows {
                attribute(black_box(row));
            }
            start.elapsed().as_secs_f64() * 1e6 / rows.len() as f64
        }
        None => f64::NAN,
    };
    (batch_us, single_us, attribute_us(singles), attribute_us(far))
}

type Attribute<'a> = Option<Box<dyn Fn(&[f64]) + 'a>>;

struct Scorer<'a> {
    name: &'static str,
    batch: Box<dyn Fn(&[f64], &mut [f64]) + 'a>,
    single: Box<dyn Fn(&[f64]) -> f64 + 'a>,
    attribute: Attribute<'a>,
}

/// A closure timing `attribute` into a buffer it keeps.
macro_rules! attribution {
    ($model:expr, $contribution:ty) => {{
        let out = std::cell::RefCell::new(Vec::<$contribution>::new());
        Some(Box::new(move |row: &[f64]| {
            $model.attribute(row, &mut out.borrow_mut()).unwrap();
            black_box(&out);
        }) as Box<dyn Fn(&[f64])>)
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: iforest_ab ODDS_DIR [ROUNDS] [TABLES]");
    let rounds: usize = args.get(2).map_or(31, |r| r.parse().expect("rounds"));
    let tables = args.get(3).map_or("synthetic-2d,http,shuttle,satellite", String::as_str);
    println!("table\tscorer\tbatch_us_per_row\tsingle_us\tattribute_us\tattribute_far_us\tbatch_ratio [quartiles]\tsingle_ratio [quartiles]\tattribute_ratio [quartiles]\tattribute_far_ratio [quartiles]");
    for name in tables.split(',') {
        let (data, width) = match name {
            "synthetic-2d" => synthetic(),
            _ => read(&format!("{dir}/{name}.csv")),
        };
        let copies = 100_000usize.div_ceil(data.len() / width);
        let batch = data.repeat(copies);
        #[cfg(base_range)]
        let base = base::IsolationForestParams::new()
            .seed(1)
            .range_check(base::RangeCheck::On)
            .fit(&data, width)
            .unwrap();
        #[cfg(not(base_range))]
        let base = base::IsolationForestParams::new().seed(1).fit(&data, width).unwrap();
        let fit = |check| {
            new::IsolationForestParams::new()
                .seed(1)
                .range_check(check)
                .fit(&data, width)
                .unwrap()
        };
        let (off, on) = (fit(new::RangeCheck::Off), fit(new::RangeCheck::On));
        let (base, off, on) = (&base, &off, &on);
        let alike = if cfg!(base_range) { on } else { off };
        assert_eq!(
            base.score_batch(&batch).unwrap(),
            alike.score_batch(&batch).unwrap(),
            "base and {} score alike",
            if cfg!(base_range) { "on" } else { "off" }
        );
        #[cfg(base_attribute)]
        let base_attribute = attribution!(base, base::FeatureContribution);
        #[cfg(not(base_attribute))]
        let base_attribute: Attribute = None;
        let scorers = [
            Scorer {
                name: "base",
                batch: Box::new(|d, o| base.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| base.score(r).unwrap()),
                attribute: base_attribute,
            },
            Scorer {
                name: "off",
                batch: Box::new(|d, o| off.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| off.score(r).unwrap()),
                attribute: attribution!(off, new::FeatureContribution),
            },
            Scorer {
                name: "on",
                batch: Box::new(|d, o| on.score_batch_into(d, o).unwrap()),
                single: Box::new(|r| on.score(r).unwrap()),
                attribute: attribution!(on, new::FeatureContribution),
            },
        ];
        let mut out = vec![0.0; batch.len() / width];
        let singles: Vec<&[f64]> = data.chunks_exact(width).cycle().take(20_000).collect();
        let far_rows = outlying(&data, width, 20_000);
        let far: Vec<&[f64]> = far_rows.chunks_exact(width).collect();
        // Per scorer: each round's (batch, single) timings.
        let mut timings = vec![Vec::new(); scorers.len()];
        for round in 0..rounds {
            for k in 0..scorers.len() {
                let which = (round + k) % scorers.len();
                timings[which].push(time(&scorers[which], &batch, &mut out, &singles, &far));
            }
        }
        for (which, scorer) in scorers.iter().enumerate() {
            let reference = if which == 2 { 1 } else { 0 };
            let column = |pick: fn(&Timing) -> f64, reference: usize| {
                let mine: Vec<f64> = timings[which].iter().map(pick).collect();
                let ratios: Vec<f64> = timings[which]
                    .iter()
                    .zip(&timings[reference])
                    .map(|(a, b)| pick(a) / pick(b))
                    .collect();
                let ratio = format!(
                    "{:.3} [{:.3}, {:.3}]",
                    quantile(&ratios, 0.5),
                    quantile(&ratios, 0.25),
                    quantile(&ratios, 0.75)
                );
                (quantile(&mine, 0.5), ratio)
            };
            let (batch_us, batch_ratio) = column(|t| t.0, reference);
            let (single_us, single_ratio) = column(|t| t.1, reference);
            let (attribute_us, attribute_ratio) = column(|t| t.2, 0);
            let (far_us, far_ratio) = column(|t| t.3, 0);
            println!(
                "{name}\t{}\t{batch_us:.3}\t{single_us:.3}\t{attribute_us:.3}\t{far_us:.3}\t{batch_ratio}\t{single_ratio}\t{attribute_ratio}\t{far_ratio}",
                scorer.name
            );
        }
    }
}
