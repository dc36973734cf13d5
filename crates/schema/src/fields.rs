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

/// Fields an anomaly with reasons adds: the verdict's, then `record_id`, `features` and
/// `explanation`. A record's own fields of these names are replaced.
pub(crate) const ANOMALY_FIELDS: [&str; 10] = [
    "score",
    "anomaly_score",
    "threshold",
    "model",
    "detected_at",
    "partition",
    "offset",
    "record_id",
    "features",
    "explanation",
];
