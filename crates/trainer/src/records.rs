//! Training and scoring records: JSON records with where each came from, labels, and the
//! tally of records left out.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use dataset::{CsvSelection, JsonLine, Table};
use features::FieldPath;
use serde_json::{Map, Value};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A line of a JSON-lines file (1-based).
    Line(u64),
    /// A row of a CSV table (1-based line of the file).
    Row(u64),
    /// A message of a topic.
    Message {
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(line) => write!(f, "line {line}"),
            Origin::Row(line) => write!(f, "CSV line {line}"),
            Origin::Message { partition, offset } => {
                write!(f, "partition {partition} offset {offset}")
            }
        }
    }
}

/// A JSON record, where it came from, and its Kafka key and timestamp when it came from a
/// topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where.
    pub origin: Origin,
    /// The record.
    pub value: Value,
    /// Its Kafka key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its Kafka timestamp, epoch milliseconds, if it has one.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// A record of a file: no Kafka key or timestamp.
    pub fn unkeyed(origin: Origin, value: Value) -> Record {
        Record {
            origin,
            value,
            key: None,
            timestamp_ms: None,
        }
    }

    /// The record as per-key features learn from it: a file is one partition whose offsets
    /// are its line numbers; a topic's records keep their partition and offset.
    pub fn training(&self) -> features::TrainingRecord<'_> {
        let (partition, offset) = match self.origin {
            Origin::Line(line) | Origin::Row(line) => (0, line as i64),
            Origin::Message { partition, offset } => (partition, offset),
        };
        features::TrainingRecord {
            value: &self.value,
            partition,
            meta: features::RecordMeta {
                key: self.key.as_deref(),
                timestamp_ms: self.timestamp_ms,
                offset,
            },
        }
    }
}

impl From<JsonLine> for Record {
    fn from(line: JsonLine) -> Self {
        Record::unkeyed(Origin::Line(line.line), line.value)
    }
}

/// A CSV table's rows as JSON records, `{"column": number, …}` (the label column left out),
/// so that named features read them as they read any record.
pub fn csv_records(path: &Path, label_column: Option<&str>) -> Result<Vec<Record>> {
    let table = dataset::read_csv(
        path,
        &CsvSelection {
            label_column,
            columns: None,
        },
    )?;
    Ok(table_records(&table))
}

fn table_records(table: &Table) -> Vec<Record> {
    (0..table.rows())
        .map(|row| {
            let fields: Map<String, Value> = table
                .feature_names
                .iter()
                .zip(table.row(row))
                .map(|(name, &value)| (name.clone(), Value::from(value)))
                .collect();
            // The header is line 1.
            Record::unkeyed(Origin::Row(row as u64 + 2), Value::Object(fields))
        })
        .collect()
}

/// Reads a record's 0/1 label at `field`: `None` when absent or null; 0, 1, `false` and
/// `true` are labels; anything else is an error.
pub fn label(record: &Value, field: &FieldPath) -> Result<Option<u8>, String> {
    match field.lookup(record) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(u8::from(*flag))),
        Some(value) => match value.as_f64() {
            Some(0.0) => Ok(Some(0)),
            Some(1.0) => Ok(Some(1)),
            _ => Err(format!("label {field} must be 0 or 1, not {value}")),
        },
    }
}

/// Parses a `--label-field`.
pub fn label_field(name: &str) -> Result<FieldPath> {
    FieldPath::parse(name).with_context(|| format!("--label-field {name:?}"))
}

/// Counts of records left out, by reason, with the first of each.
#[derive(Debug, Default, Clone)]
pub struct LeftOut {
    by_reason: BTreeMap<String, (usize, String)>,
    total: usize,
}

impl LeftOut {
    /// Counts one.
    pub fn add(&mut self, reason: &str, origin: Origin, detail: impl fmt::Display) {
        self.total += 1;
        self.by_reason
            .entry(reason.to_string())
            .or_insert_with(|| (0, format!("{origin}: {detail}")))
            .0 += 1;
    }

    /// Records left out.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Stops when nothing is left.
    pub fn check_some_left(&self, kept: usize, what: &str) -> Result<()> {
        if kept == 0 {
            bail!("no usable {what}: {self}");
        }
        Ok(())
    }
}

impl fmt::Display for LeftOut {
    /// `missing_feature ×3 (first: line 4: …), not_numeric ×1 (first: …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (reason, (count, first))) in self.by_reason.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{reason} ×{count} (first: {first})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_zero_or_one_or_absent() {
        let field = FieldPath::parse("label").unwrap();
        for (value, expected) in [
            (json!(0), Ok(Some(0))),
            (json!(1.0), Ok(Some(1))),
            (json!(true), Ok(Some(1))),
            (json!(null), Ok(None)),
        ] {
            assert_eq!(
                label(&json!({ "label": value }), &field),
                expected,
                "{value}"
            );
        }
        assert_eq!(label(&json!({}), &field), Ok(None));
        assert!(label(&json!({"label": 2}), &field)
            .unwrap_err()
            .contains("label"));
        assert!(label(&json!({"label": "1"}), &field).is_err());
    }

    #[test]
    fn a_table_row_is_a_record_of_its_columns() {
        let table = Table {
            feature_names: vec!["a".into(), "b".into()],
            data: vec![1.0, 2.0, 3.0, 4.5],
            labels: None,
        };
        let records = table_records(&table);
        assert_eq!(records[1].value, json!({"a": 3.0, "b": 4.5}));
        assert_eq!(records[1].origin.to_string(), "CSV line 3");
    }

    #[test]
    fn left_out_records_are_counted_by_reason_with_the_first() {
        let mut left_out = LeftOut::default();
        left_out.add("not_numeric", Origin::Line(3), "a is a string");
        left_out.add("missing_feature", Origin::Line(4), "b is missing");
        left_out.add("not_numeric", Origin::Line(9), "a is a boolean");
        assert_eq!(left_out.total(), 3);
        assert_eq!(
            left_out.to_string(),
            "missing_feature ×1 (first: line 4: b is missing), not_numeric ×2 (first: line 3: a is a string)"
        );
        assert!(left_out.check_some_left(1, "records").is_ok());
        let error = left_out
            .check_some_left(0, "records")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("no usable records: missing_feature"),
            "{error}"
        );
    }
}
