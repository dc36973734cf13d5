//! The records on the wire and their JSON, the topic names, and the Kafka client settings
//! every process shares. Pure data: no Kafka client here.
//!
//! A transaction is the original pipeline's record,
//! `{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}`;
//! [`Transaction::decode`] accepts it (and flat `data`, any number of features, an optional
//! `label`, unknown fields) or says precisely why not with a [`DecodeError`], whose
//! [`reason`](DecodeError::reason) is what a dead letter carries. An anomaly is the
//! transaction with every field it had plus the verdict ([`encode_anomaly`]); a dead letter
//! ([`DeadLetter`]) carries the reason, the source position and the original bytes.
#![deny(missing_docs)]

mod dead_letter;
mod record;
pub mod settings;

pub use dead_letter::DeadLetter;
pub use record::{
    encode_anomaly, Anomaly, DecodeError, DecodeLimits, RecordId, Rejection, Transaction, Verdict,
};

/// Topic names and the consumer group, as the scripts and docker-compose.yml create them.
pub mod topics {
    /// Transactions to score.
    pub const TRANSACTIONS: &str = "transactions";
    /// Partitions of [`TRANSACTIONS`]: up to this many detectors share the work.
    pub const TRANSACTION_PARTITIONS: i32 = 3;
    /// Anomalies found.
    pub const ANOMALIES: &str = "anomalies";
    /// Records the detector could not use, with the reason.
    pub const DEAD_LETTERS: &str = "transactions.dlq";
    /// The detectors' consumer group.
    pub const DEFAULT_GROUP: &str = "detectors";
}
