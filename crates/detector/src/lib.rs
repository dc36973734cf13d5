//! The detector: a consumer-group member that scores every record with the Isolation Forest
//! and writes anomalies (and records it cannot use, as dead letters).
//!
//! It reads a record as its model does: the features the model file names (any JSON record,
//! fields by name or JSON Pointer, with their transforms; `features` crate), or the `data`
//! array of a model without named features. A new model with new features needs no flag:
//! hot reload reads the next batch its way. Each anomaly is the record, every field as
//! written, plus the verdict and its reasons: the values scored by feature name
//! (`features`) and the three features that isolated it most (`explanation`). A record
//! without an id (the model's id field) is identified, and its anomaly keyed, by its source
//! partition and offset, `<partition>:<offset>`.
//!
//! A model with per-key features (a key's z-score, delta, lags, counts in a window, time since
//! its last record) reads each record through its partition's key states, which live in memory
//! and in the compacted changelog `<group>.<input>.state`: restored before a partition's
//! records are scored, written after a batch's outputs are acknowledged and before its offsets
//! are stored (inside the transaction with `--exactly-once`), so every record is scored with
//! the state an uninterrupted run gives it (`keystate` states the rules).
//!
//! Delivery is at-least-once, as rust-rdkafka's `at_least_once.rs`: offsets are stored
//! (`enable.auto.offset.store=false`) only after every output of a batch has been acknowledged
//! by the broker, and auto-commit commits what was stored. A batch is up to `--batch-size`
//! records, scored with one `score_batch` call; its outputs are all in flight at once, and
//! while they await acknowledgement the next batches are read and scored.
//!
//! # Layout
//!
//! One way, top to bottom (a module uses only those below it):
//!
//! - `run` ([`run()`]: connect, learn the output limits, pick the delivery mode, shut down)
//!   uses `at_least_once` and `exactly_once`, each one delivery mode's loop, which both use
//!   `worker` (batch filling, scoring, enqueueing with refused outputs made smaller, totals).
//! - `at_least_once` and `exactly_once` apply the rules of `keystate` (per-key state: when a
//!   batch's state changes are written, and when a batch read before a rebalance keeps
//!   nothing) through `statelog` (the changelog: made sure of, restored, written), which uses
//!   [`scoring`] and [`metrics`].
//! - `worker` uses [`config`] (checked settings: [`Config::builder`] for plain values,
//!   [`Config::from_cli`] for the command line, which uses [`cli`]), [`metrics`]
//!   (Prometheus, `--metrics-addr`), [`reload`] (the model's hot reload between batches) and
//!   [`scoring`] (the pure part, no Kafka: a batch of raw records in, the anomalies and dead
//!   letters to write and the offsets that may then be stored out).
//! - [`scoring`] uses `keystate` (the assigned partitions' key states, for a model with
//!   per-key features: each record read through its partition's store, replays counted) and
//!   `reading` (a record's row and id as the model reads it, or the refusal a dead letter
//!   carries), `explaining` (an anomaly's top three features, from iforest's attribution)
//!   and `fit` (each output whole when it fits its topic, reduced when
//!   not, and the next smaller form of one refused), which uses [`limits`] (the largest
//!   record each output topic takes, learned at start) and [`output`] (records in and out).
//!
//! # Records that do not fit
//!
//! No record stops the detector. An output larger than its topic takes is reduced before it
//! is sent (schema's reduced anomaly and dead letter: the record's id or first bytes, its
//! size and SHA-256, its partition and offset). A produce error about the record itself
//! (too large, invalid) sends it again smaller, down to a minimal dead letter; only errors
//! of the connection, the broker or the authorisation, or a refused minimal dead letter, stop
//! the detector, with the offsets of the batch unstored.
//!
//! The binary (`main.rs`) parses the flags, installs the signal handlers (SIGINT and SIGTERM
//! resolve the shutdown future it passes to [`run()`], SIGHUP pulls the config's
//! [`ReloadTrigger`](reload::ReloadTrigger)) and maps the result to an exit code. The library
//! installs no signal handler.

mod at_least_once;
pub mod cli;
pub mod config;
mod exactly_once;
mod explaining;
mod fit;
mod keystate;
pub mod limits;
pub mod metrics;
pub mod output;
mod reading;
pub mod reload;
mod run;
pub mod scoring;
mod statelog;
mod worker;

pub use cli::Cli;
pub use config::Config;
pub use run::run;
pub use worker::{Stats, SHUTDOWN_DEADLINE};
