//! The detector: a consumer-group member that scores every transaction with the Isolation
//! Forest and writes anomalies (and records it cannot use, as dead letters).
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
//! - `run` ([`run()`]: connect, pick the delivery mode, shut down) uses `at_least_once` and
//!   `exactly_once`, each one delivery mode's loop, which both use `worker` (batch filling,
//!   scoring, enqueueing, totals).
//! - `worker` uses [`scoring`] (the pure part, no Kafka: a batch of raw records in, the
//!   anomalies and dead letters to write and the offsets that may then be stored out),
//!   [`metrics`] (Prometheus, `--metrics-addr`) and [`reload`] (the model's hot reload between
//!   batches).
//! - [`config`] (checked settings: [`Config::builder`] for plain values, [`Config::from_cli`]
//!   for the command line) uses [`cli`]
//!   (the flags as typed) and [`scoring`]'s [`Model`](scoring::Model).
//!
//! The binary (`main.rs`) parses the flags, installs the signal handlers (SIGINT and SIGTERM
//! resolve the shutdown future it passes to [`run()`], SIGHUP pulls the config's
//! [`ReloadTrigger`](reload::ReloadTrigger)) and maps the result to an exit code. The library
//! installs no signal handler.

mod at_least_once;
pub mod cli;
pub mod config;
mod exactly_once;
mod fit;
pub mod limits;
pub mod metrics;
pub mod output;
pub mod reload;
mod run;
pub mod scoring;
mod worker;

pub use cli::Cli;
pub use config::Config;
pub use run::run;
pub use worker::{Stats, SHUTDOWN_DEADLINE};
