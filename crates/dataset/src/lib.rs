//! Data for training, replaying and evaluating, shared by the processes and the tests so that
//! each of these exists once: numeric tables read from CSV ([`Table`], [`read_csv`]), records
//! read from JSON lines ([`read_jsonl`]), the original pipeline's synthetic data
//! ([`synthetic_training_data`], [`synthetic_records`]), the payments and sensors scenarios
//! ([`PaymentsParams`], [`SensorsParams`]), a table's rows as transactions ([`csv_records`]) and the detection
//! metrics ([`roc_auc`], [`average_precision`], [`Confusion`]), defined as scikit-learn
//! defines them.
//!
//! ```
//! use dataset::{roc_auc, synthetic_training_data};
//!
//! let table = synthetic_training_data(42);
//! assert_eq!((table.rows(), table.n_features()), (1000, 2));
//! assert_eq!(roc_auc(&[0.1, 0.9], &[0, 1]), Some(1.0));
//! ```
//!
//! # Layout
//!
//! - [`table`]: [`Table`] and the CSV reader, with [`TableError`] naming line and column.
//! - [`jsonl`]: JSON lines, one object per line, with [`JsonlError`] naming the line.
//! - [`synthetic`]: the original's training clusters and stream (no I/O).
//! - [`payments`]: card payments, each card with its habits, with labelled frauds of five
//!   kinds (no I/O).
//! - [`sensors`]: sensors reading noisy periodic series, with labelled faults (no I/O).
//! - [`replay`]: a CSV table's rows as transactions (uses `table`).
//! - [`metrics`]: ROC AUC, average precision, the confusion counts.
#![deny(missing_docs)]

pub mod jsonl;
pub mod metrics;
pub mod payments;
pub mod replay;
pub mod sensors;
pub mod synthetic;
pub mod table;

pub use jsonl::{parse_jsonl, read_jsonl, JsonLine, JsonlError};
pub use metrics::{average_precision, roc_auc, Confusion};
pub use payments::{FraudKind, Payment, Payments, PaymentsError, PaymentsParams};
pub use replay::csv_records;
pub use sensors::{FaultKind, SensorReading, SensorReadings, SensorsError, SensorsParams};
pub use synthetic::{
    shifted_synthetic_records, synthetic_records, synthetic_training_data, Shift, SyntheticPoints,
    SYNTHETIC_CLUSTER_POINTS,
};
pub use table::{parse_csv, read_csv, CsvSelection, Table, TableError};
