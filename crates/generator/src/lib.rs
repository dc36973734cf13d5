//! The generator: produces transactions into Kafka, either the original pipeline's synthetic
//! stream (seeded, so tests know every record in advance: [`dataset::synthetic_records`]) or a replayed
//! CSV table with its labels ([`dataset::csv_records`]).
//!
//! Records are keyed by id and sent asynchronously in batches (never a flush per record),
//! paced by a schedule rather than a pause per record, and counted from the broker's
//! acknowledgements. At the end, or on SIGINT/SIGTERM, it flushes and prints one line:
//! `generator: sent=N acknowledged=N failed=N seconds=S rate=R/s`.
//!
//! # Layout
//!
//! - [`cli`]: the command line as typed. [`config`]: checked and resolved ([`Config`]).
//! - the records themselves come from the `dataset` crate.
//! - [`emit`]: the producer loop, its schedule and its [`Summary`].
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod emit;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

pub use cli::Cli;
pub use config::{Config, Source};
pub use emit::Summary;

/// Runs the generator as the command line asks, until it has sent everything or `stop` is
/// set (the binary sets it on SIGINT or SIGTERM); either way it flushes before returning.
pub fn run(cli: &Cli, stop: &Arc<AtomicBool>) -> Result<Summary> {
    let config = Config::from_cli(cli)?;
    emit::run(&config, stop)
}
