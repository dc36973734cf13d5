//! The generator: produces records into Kafka: the original pipeline's synthetic stream
//! (seeded, so tests know every record in advance: [`dataset::synthetic_records`]), a
//! replayed CSV table with its labels ([`dataset::csv_records`]), a replayed JSON-lines file
//! (each line sent as it is written, keyed by `--key-field` when given), or a scenario: card
//! payments with labelled frauds ([`dataset::PaymentsParams`]) or sensor readings with
//! labelled faults ([`dataset::SensorsParams`]), seeded.
//!
//! Records are keyed by id (or `--key-field`) and sent asynchronously in batches (never a
//! flush per record),
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
pub use config::{Config, Outgoing, ScenarioParams, Source};
pub use emit::Summary;

/// Runs the generator as the command line asks, until it has sent everything or `stop` is
/// set (the binary sets it on SIGINT or SIGTERM); either way it flushes before returning.
/// With `--print` the records go to standard output instead.
pub fn run(cli: &Cli, stop: &Arc<AtomicBool>) -> Result<Summary> {
    let config = Config::from_cli(cli)?;
    if cli.print {
        if config.total().is_none() {
            anyhow::bail!("--print needs a --count other than 0 for an endless stream");
        }
        let stdout = std::io::stdout().lock();
        return emit::print(&config, &mut std::io::BufWriter::new(stdout), stop);
    }
    emit::run(&config, stop)
}
