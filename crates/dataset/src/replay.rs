//! A table's rows as transactions, for replaying labelled data through the pipeline: every
//! column but the label is a feature, in file order, exactly as the trainer reads the same file.

use std::path::Path;

use chrono::Utc;
use schema::Transaction;

use crate::table::{read_csv, CsvSelection, TableError};

/// The rows of a CSV table (header line, numeric cells) as transactions, ids counting up from
/// `first_id`. Every column but `label_column` is a feature, in file order (as the trainer
/// reads the same file); the label column's 0/1 rides along as `label`.
pub fn csv_records(
    path: &Path,
    label_column: Option<&str>,
    first_id: i64,
) -> Result<Vec<Transaction>, TableError> {
    let selection = CsvSelection {
        label_column,
        columns: None,
    };
    let table = read_csv(path, &selection)?;
    let now = Utc::now().naive_utc();
    Ok((0..table.rows())
        .map(|row| {
            let transaction = Transaction::new(first_id + row as i64, table.row(row).to_vec(), now);
            match &table.labels {
                Some(labels) => transaction.with_label(labels[row]),
                None => transaction,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_replays_with_its_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,label,b,c\n1,0,2,3\n-1.5,1,0.25,9e3\n").unwrap();
        let records = csv_records(&path, Some("label"), 100).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].features, [1.0, 2.0, 3.0]);
        assert_eq!(records[1].features, [-1.5, 0.25, 9000.0]);
        assert_eq!((records[0].label, records[1].label), (Some(0), Some(1)));
        assert_eq!(
            (records[0].key(), records[1].key()),
            ("100".into(), "101".into())
        );
        let unlabelled = csv_records(&path, None, 0).unwrap();
        assert_eq!(
            unlabelled[1].features.len(),
            4,
            "no label column: every column"
        );
        assert_eq!(unlabelled[1].label, None);
        let error = csv_records(&path, Some("nope"), 0).unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }
}
