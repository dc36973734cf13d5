//! The records on the wire and their JSON encoding, and the topic names. Pure data: no Kafka
//! client here.
//!
//! # Records
//!
//! A [`Transaction`] is the original pipeline's record,
//! `{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}`.
//! [`Transaction::decode`] also takes flat `data` (`[2.39, -1.22]`), any number of features,
//! times with an offset, an optional 0/1 `label` and any unknown fields, which it keeps; or it
//! says precisely why not with a [`DecodeError`], whose [`reason`](DecodeError::reason) is the
//! machine-readable code a dead letter carries. Records are keyed by id
//! ([`Transaction::key`]).
//!
//! An anomaly is the record with every field it had, as written, plus the verdict and the
//! reasons ([`encode_scored_anomaly`]): `record_id` (the record's id as the model reads it,
//! `null` for a record without one, which its partition and offset identify), `features` (the
//! values scored, by feature name) and `explanation` (the three features that isolated it
//! most: `feature`, `value`, `direction` and `share`). [`Anomaly::decode`] reads it, and the
//! form without reasons that [`encode_anomaly`] writes. A [`DeadLetter`] carries the
//! [`Rejection`] (or another reason, [`DeadLetter::refused`]), where the record came from and
//! its original bytes.
//!
//! An output too large for its topic is reduced, never dropped:
//! [`encode_reduced_scored_anomaly`] keeps every verdict field and the reasons (and a `data`
//! record's `id` and `data`) and replaces the record's other fields by `truncated: true` with
//! its size and SHA-256 ([`Digest`]); [`DeadLetter::reduced_to_fit`]
//! keeps the reason, the source and the first bytes of the original with the whole
//! original's size and SHA-256. Anyone can still read the whole record at its partition and
//! offset, and check it against the digest.
//!
//! ```
//! use schema::{encode_anomaly, Anomaly, DecodeLimits, Transaction, Verdict};
//!
//! let bytes = br#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387"}"#;
//! let tx = Transaction::decode(bytes, &DecodeLimits::default()).unwrap();
//! assert_eq!((tx.key(), tx.features.as_slice()), ("4".to_string(), &[2.39, -1.22][..]));
//!
//! let verdict = Verdict {
//!     anomaly_score: 0.71,
//!     threshold: 0.62,
//!     model: "3f2a".into(),
//!     partition: 0,
//!     offset: 17,
//!     detected_at: chrono::Utc::now(),
//! };
//! let anomaly = Anomaly::decode(&encode_anomaly(&tx, &verdict)).unwrap();
//! assert_eq!(anomaly.score, [-0.71]); // scikit-learn's sign: lower = more anomalous
//!
//! let refused = Transaction::decode(br#"{"id": 5, "data": [[1, NaN]]}"#, &DecodeLimits::default());
//! assert_eq!(refused.unwrap_err().reason(), "non_finite");
//! ```
//!
//! # Layout
//!
//! One way, top to bottom (a module uses only those below it):
//!
//! - `dead_letter`: [`DeadLetter`]; `anomaly`: [`Verdict`], [`encode_scored_anomaly`],
//!   [`encode_anomaly`], [`Anomaly`]; both use `digest` ([`Digest`], [`reduced_key`]) for what
//!   they reduce; `anomaly` also uses `reasons` ([`Scored`], [`FeatureShare`],
//!   [`Contribution`], [`Direction`]: the reasons on the wire) and `members` (a record's
//!   fields passed on as written, with the anomaly's added).
//! - `transaction`: [`Transaction`], [`DecodeLimits`], encoding; it reads with `fast_read`
//!   (the common shape, straight into typed fields) or else `full_read` (through a `Value`
//!   tree, with the exact reason for every refusal).
//! - `full_read`, `fast_read`; below them `time` (reading `current_time`), `id`
//!   ([`RecordId`]), `fields` (the names an anomaly adds, which both readers know so that a
//!   re-scored anomaly gets one verdict, not two) and `error` ([`DecodeError`],
//!   [`Rejection`]).
//! - [`topics`]: topic names, partitions, the detectors' group.
//!
//! serde_json is built with `float_roundtrip`, so features and scores cross the JSON hop bit
//! for bit.
#![deny(missing_docs)]

mod anomaly;
mod dead_letter;
mod digest;
mod error;
mod fast_read;
mod fields;
mod full_read;
mod id;
mod members;
mod reasons;
mod time;
mod transaction;

pub use anomaly::{
    encode_anomaly, encode_reduced_anomaly, encode_reduced_scored_anomaly, encode_scored_anomaly,
    Anomaly, Verdict,
};
pub use dead_letter::{DeadLetter, SourceRecord, Truncation, ORIGINAL_PREFIX_BYTES};
pub use digest::{reduced_key, Digest, KEY_PREFIX_BYTES};
pub use error::{DecodeError, Rejection};
pub use id::RecordId;
pub use reasons::{Contribution, Direction, FeatureShare, Scored};
pub use transaction::{DecodeLimits, Transaction};

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
