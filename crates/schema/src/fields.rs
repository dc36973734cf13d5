//! Field names on the wire that readers and writers share.

/// Fields an anomaly adds to its transaction.
pub(crate) const VERDICT_FIELDS: [&str; 7] = [
    "score",
    "anomaly_score",
    "threshold",
    "model",
    "detected_at",
    "partition",
    "offset",
];
