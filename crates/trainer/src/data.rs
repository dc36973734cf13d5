//! Training and scoring data: CSV tables and the original pipeline's synthetic clusters.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A numeric table in row-major order, with optional 0/1 labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Names of the feature columns, in order.
    pub feature_names: Vec<String>,
    /// Row-major feature values, `rows × feature_names.len()`.
    pub data: Vec<f64>,
    /// One label per row (1 = anomaly) when a label column was named.
    pub labels: Option<Vec<u8>>,
}

impl Table {
    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.n_features()).unwrap_or(0)
    }

    /// Row `index` as a slice.
    pub fn row(&self, index: usize) -> &[f64] {
        let width = self.n_features();
        &self.data[index * width..(index + 1) * width]
    }
}

/// Which columns of a CSV file to read.
#[derive(Debug, Clone, Default)]
pub struct CsvSelection<'a> {
    /// Column holding 0/1 labels, left out of the features.
    pub label_column: Option<&'a str>,
    /// Feature columns to keep, in this order; all other (non-label) columns when `None`.
    pub columns: Option<&'a [String]>,
}

/// Reads a CSV table with a header line. Every selected cell must be a finite number; an error
/// names the file, the line and the column.
pub fn read_csv(path: &Path, selection: &CsvSelection) -> Result<Table> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    parse_csv(file, &path.display().to_string(), selection)
}

/// [`read_csv`] on any reader; `source` names it in error messages.
pub fn parse_csv<R: std::io::Read>(
    reader: R,
    source: &str,
    selection: &CsvSelection,
) -> Result<Table> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: Vec<String> = csv_reader
        .headers()
        .with_context(|| format!("{source}: cannot read the header line"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let position = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|column| column == name)
            .with_context(|| {
                format!(
                    "{source}: no column named {name:?} (columns: {})",
                    header.join(",")
                )
            })
    };
    let label_index = selection.label_column.map(position).transpose()?;
    let feature_indices: Vec<usize> = match selection.columns {
        Some(names) => names
            .iter()
            .map(|name| position(name))
            .collect::<Result<_>>()?,
        None => (0..header.len())
            .filter(|&index| Some(index) != label_index)
            .collect(),
    };
    if feature_indices.is_empty() {
        bail!("{source}: no feature columns");
    }
    if let Some(label_index) = label_index {
        if feature_indices.contains(&label_index) {
            bail!(
                "{source}: the label column {:?} cannot also be a feature",
                header[label_index]
            );
        }
    }
    let feature_names = feature_indices
        .iter()
        .map(|&index| header[index].clone())
        .collect();

    let mut data = Vec::new();
    let mut labels = label_index.map(|_| Vec::new());
    for record in csv_reader.records() {
        let record = record.with_context(|| format!("{source}: malformed CSV"))?;
        let line = record.position().map_or(0, |position| position.line());
        if record.len() != header.len() {
            bail!(
                "{source}:{line}: {} fields, the header has {}",
                record.len(),
                header.len()
            );
        }
        for &index in &feature_indices {
            let cell = &record[index];
            match cell.parse::<f64>() {
                Ok(value) if value.is_finite() => data.push(value),
                _ => bail!(
                    "{source}:{line}: column {:?}: {cell:?} is not a finite number",
                    header[index]
                ),
            }
        }
        if let (Some(index), Some(labels)) = (label_index, labels.as_mut()) {
            let label = match record[index].parse::<f64>() {
                Ok(0.0) => 0,
                Ok(1.0) => 1,
                _ => bail!(
                    "{source}:{line}: label {:?} must be 0 or 1, not {:?}",
                    header[index],
                    &record[index]
                ),
            };
            labels.push(label);
        }
    }
    if data.is_empty() {
        bail!("{source}: no data rows");
    }
    Ok(Table {
        feature_names,
        data,
        labels,
    })
}

/// Points per cluster in the original pipeline's training set.
pub const SYNTHETIC_CLUSTER_POINTS: usize = 500;

/// The original pipeline's training data: one draw of `0.3·N(0, 1)` points, shifted to (2, 2)
/// and to (−2, −2), rounded to 3 decimals (1000 rows, two features `x`, `y`).
pub fn synthetic_training_data(seed: u64) -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cluster: Vec<f64> = (0..SYNTHETIC_CLUSTER_POINTS * 2)
        .map(|_| {
            let normal: f64 = StandardNormal.sample(&mut rng);
            0.3 * normal
        })
        .collect();
    let round3 = |value: f64| (value * 1000.0).round() / 1000.0;
    let data = [2.0, -2.0]
        .iter()
        .flat_map(|&centre| cluster.iter().map(move |&offset| round3(offset + centre)))
        .collect();
    Table {
        feature_names: vec!["x".into(), "y".into()],
        data,
        labels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, selection: &CsvSelection) -> Result<Table> {
        parse_csv(text.as_bytes(), "t.csv", selection)
    }

    #[test]
    fn label_column_is_left_out_of_the_features() {
        let table = parse(
            "a,label,b\n1,0,2\n3,1,4\n",
            &CsvSelection {
                label_column: Some("label"),
                columns: None,
            },
        )
        .unwrap();
        assert_eq!(table.feature_names, ["a", "b"]);
        assert_eq!(table.data, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(table.labels, Some(vec![0, 1]));
        assert_eq!(table.rows(), 2);
    }

    #[test]
    fn selected_columns_keep_their_order() {
        let columns = vec!["c".to_string(), "a".to_string()];
        let table = parse(
            "a,b,c\n1,2,3\n",
            &CsvSelection {
                label_column: None,
                columns: Some(&columns),
            },
        )
        .unwrap();
        assert_eq!(table.feature_names, ["c", "a"]);
        assert_eq!(table.row(0), [3.0, 1.0]);
    }

    #[test]
    fn a_bad_cell_names_its_line_and_column() {
        let error = parse("a,b\n1,2\n3,x\n", &CsvSelection::default()).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("t.csv:3"), "{message}");
        assert!(message.contains("\"b\""), "{message}");
    }

    #[test]
    fn nan_and_bad_labels_and_unknown_columns_are_refused() {
        assert!(parse("a\nNaN\n", &CsvSelection::default()).is_err());
        let labelled = CsvSelection {
            label_column: Some("label"),
            columns: None,
        };
        assert!(parse("a,label\n1,2\n", &labelled).is_err());
        let missing = CsvSelection {
            label_column: Some("nope"),
            columns: None,
        };
        assert!(format!("{:#}", parse("a\n1\n", &missing).unwrap_err()).contains("nope"));
        assert!(parse("a,b\n1\n", &CsvSelection::default()).is_err());
        assert!(parse("a\n", &CsvSelection::default()).is_err());
    }

    #[test]
    fn synthetic_data_is_two_rounded_clusters_and_repeats_per_seed() {
        let table = synthetic_training_data(42);
        assert_eq!(table.rows(), 1000);
        assert_eq!(table, synthetic_training_data(42));
        assert_ne!(table, synthetic_training_data(43));
        let (upper, lower) = table.data.split_at(1000);
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean(upper) - 2.0).abs() < 0.05 && (mean(lower) + 2.0).abs() < 0.05);
        for value in &table.data {
            assert!(((value * 1000.0).round() - value * 1000.0).abs() < 1e-6);
        }
    }
}
