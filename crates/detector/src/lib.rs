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
//! - [`cli`]: the flags as typed; [`config`]: checked, with the model loaded
//!   ([`Config::from_cli`]), so bad flags and bad models stop the detector before it connects.
//! - [`scoring`]: the pure part, no Kafka: a batch of raw records in, the anomalies and dead
//!   letters to write and the offsets that may then be stored out. Unit-tested.
//! - [`pipeline`]: the Kafka loop around it ([`run`]): batching, sending, acknowledgements,
//!   offsets, progress, and the clean stop (signal, `--max-records`, `--idle-exit`).
//! - [`metrics`]: Prometheus metrics at `--metrics-addr`.
//! - [`reload`]: the model's hot reload between batches (SIGHUP or a replaced file).
//! - `transactional`: the `--exactly-once` loop, one Kafka transaction per batch.

pub mod cli;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod scoring;
mod transactional;

pub use cli::Cli;
pub use config::Config;
pub use pipeline::{run, Stats, SHUTDOWN_DEADLINE};

/// Resolves on SIGINT or SIGTERM.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => {
            log::warn!("cannot listen for SIGTERM; only Ctrl-C stops the detector");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
