//! Numeric tables: [`Table`] and the CSV reader. Every selected cell must be a finite number;
//! an error names the source, the line and the column.

use std::path::{Path, PathBuf};

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

/// Why a table cannot be read. Each names its source (a file's path, or what the caller
/// called it) and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The file cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CSV itself is malformed (quoting, encoding, I/O).
    #[error("{source_name}: malformed CSV")]
    Csv {
        /// The source.
        source_name: String,
        /// The csv crate's error, with its position.
        #[source]
        source: csv::Error,
    },
    /// A column named by the caller is not in the header.
    #[error("{source_name}: no column named {name:?} (columns: {columns})")]
    NoSuchColumn {
        /// The source.
        source_name: String,
        /// The missing column.
        name: String,
        /// The header's columns, comma-separated.
        columns: String,
    },
    /// The label column was also selected as a feature.
    #[error("{source_name}: the label column {name:?} cannot also be a feature")]
    LabelIsFeature {
        /// The source.
        source_name: String,
        /// The column.
        name: String,
    },
    /// No feature column is left.
    #[error("{source_name}: no feature columns")]
    NoFeatures {
        /// The source.
        source_name: String,
    },
    /// A row whose field count differs from the header's.
    #[error("{source_name}:{line}: {found} fields, the header has {expected}")]
    Ragged {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A feature cell that is not a finite number.
    #[error("{source_name}:{line}: column {column:?}: {cell:?} is not a finite number")]
    NotANumber {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        cell: String,
    },
    /// A label that is not 0 or 1.
    #[error("{source_name}:{line}: label {column:?} must be 0 or 1, not {cell:?}")]
    BadLabel {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// The label column.
        column: String,
        /// The cell as written.
        cell: String,
    },
    /// A header and nothing else.
    #[error("{source_name}: no data rows")]
    Empty {
        /// The source.
        source_name: String,
    },
}

/// Reads a CSV table with a header line. Every selected cell must be a finite number; an error
/// names the file, the line and the column.
pub fn read_csv(path: &Path, selection: &CsvSelection) -> Result<Table, TableError> {
    let file = std::fs::File::open(path).map_err(|source| TableError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(file, &path.display().to_string(), selection)
}

/// [`read_csv`] on any reader; `source` names it in error messages.
pub fn parse_csv<R: std::io::Read>(
    reader: R,
    source: &str,
    selection: &CsvSelection,
) -> Result<Table, TableError> {
    let source_name = || source.to_string();
    let malformed = |error| TableError::Csv {
        source_name: source_name(),
        source: error,
    };
    let mut csv_reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: Vec<String> = csv_reader
        .headers()
        .map_err(malformed)?
        .iter()
        .map(str::to_owned)
        .collect();
    let position = |name: &str| -> Result<usize, TableError> {
        header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| TableError::NoSuchColumn {
                source_name: source_name(),
                name: name.to_string(),
                columns: header.join(","),
            })
    };
    let label_index = selection.label_column.map(position).transpose()?;
    let feature_indices: Vec<usize> = match selection.columns {
        Some(names) => names
            .iter()
            .map(|name| position(name))
            .collect::<Result<_, _>>()?,
        None => (0..header.len())
            .filter(|&index| Some(index) != label_index)
            .collect(),
    };
    if feature_indices.is_empty() {
        return Err(TableError::NoFeatures {
            source_name: source_name(),
        });
    }
    if let Some(label_index) = label_index {
        if feature_indices.contains(&label_index) {
            return Err(TableError::LabelIsFeature {
                source_name: source_name(),
                name: header[label_index].clone(),
            });
        }
    }
    let feature_names = feature_indices
        .iter()
        .map(|&index| header[index].clone())
        .collect();

    let mut data = Vec::new();
    let mut labels = label_index.map(|_| Vec::new());
    for record in csv_reader.records() {
        let record = record.map_err(malformed)?;
        let line = record.position().map_or(0, |position| position.line());
        if record.len() != header.len() {
            return Err(TableError::Ragged {
                source_name: source_name(),
                line,
                found: record.len(),
                expected: header.len(),
            });
        }
        for &index in &feature_indices {
            let cell = &record[index];
            match cell.parse::<f64>() {
                Ok(value) if value.is_finite() => data.push(value),
                _ => {
                    return Err(TableError::NotANumber {
                        source_name: source_name(),
                        line,
                        column: header[index].clone(),
                        cell: cell.to_string(),
                    })
                }
            }
        }
        if let (Some(index), Some(labels)) = (label_index, labels.as_mut()) {
            let label = match record[index].parse::<f64>() {
                Ok(0.0) => 0,
                Ok(1.0) => 1,
                _ => {
                    return Err(TableError::BadLabel {
                        source_name: source_name(),
                        line,
                        column: header[index].clone(),
                        cell: record[index].to_string(),
                    })
                }
            };
            labels.push(label);
        }
    }
    if data.is_empty() {
        return Err(TableError::Empty {
            source_name: source_name(),
        });
    }
    Ok(Table {
        feature_names,
        data,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, selection: &CsvSelection) -> Result<Table, TableError> {
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
        let message = error.to_string();
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
        assert!(parse("a\n1\n", &missing)
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert!(parse("a,b\n1\n", &CsvSelection::default()).is_err());
        assert!(parse("a\n", &CsvSelection::default()).is_err());
    }
}
