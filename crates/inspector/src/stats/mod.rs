//! `inspector stats`: how the pipeline is doing, read from its topics without joining the
//! detectors' group: records per second into and out of the detectors, the anomaly share, the
//! dead letters, the detectors' lag per partition, end-to-end latency percentiles and, for
//! labelled data, live precision, recall and F1.
//!
//! Every topic is read as `tail` reads it (partitions assigned, nothing committed). The lag
//! compares the detector group's committed offsets, fetched by a client that carries the
//! group's id but never subscribes (so it never joins or rebalances the group), with the input
//! topic's high watermarks.
//!
//! Latency runs from the transaction's Kafka timestamp to its anomaly's: the anomaly names its
//! source partition and offset, and [`Tracker`] keeps the timestamps of recent transactions
//! (at most [`TRACKED_TRANSACTIONS`]) by that position, and anomalies read before their
//! transaction (the topics are read side by side) until it comes.
//!
//! Two modes: live (a block every second, JSON lines with `--json`, and a last one at the
//! stop) reads from the end (or `--from-beginning`); `--once` reads each topic from its
//! beginning (or its last `--last N` records per partition) up to the high watermarks seen at
//! the start, prints one summary and exits.
//!
//! # Layout
//!
//! Leaves first; each module uses only those above it:
//! - [`snapshot`]: the typed summary ([`Snapshot`], serialized as `--json` prints it).
//! - [`latency`]: percentiles over a window. [`tracker`]: anomalies matched to their
//!   transactions (latency, label counts; uses `latency`).
//! - [`counters`]: [`Stats`], the counts of one reading, making [`Snapshot`]s (uses
//!   `snapshot`, `tracker`).
//! - [`render`](mod@render): a [`Snapshot`] as text (uses `snapshot`).
//! - [`group`]: the detectors' group read without joining it (uses `snapshot`).
//! - [`reader`]: the Kafka reading loop feeding any [`Count`] (uses `counters`, `group`,
//!   `snapshot`).
//! - this module: the command, tying them together.

pub mod counters;
pub mod group;
pub mod latency;
pub mod reader;
pub mod render;
pub mod snapshot;
pub mod tracker;

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio_util::sync::CancellationToken;

pub use counters::{RateCounter, Stats, RATE_WINDOW_MS};
pub use group::group_lag;
pub use latency::{percentile, LatencyWindow, Percentiles};
pub use reader::{live, Count, Reader};
pub use render::render;
pub use snapshot::{
    GroupSummary, LabelSummary, LatencySummary, ModelSummary, PartitionLag, Role, Snapshot,
    TopicSummary, Watermarks,
};
pub use tracker::{LabelCounts, Tracker, LATENCY_SAMPLES, PENDING_ANOMALIES, TRACKED_TRANSACTIONS};

use crate::cli::{PipelineArgs, StatsArgs};

/// Runs `inspector stats` until `stop` is cancelled (or `--seconds` pass), writing to `out`,
/// a last summary at the stop; `clear` clears the screen before each live block (a
/// terminal). `--once`: one summary.
pub fn stats(
    kafka: &bus::ClientSettings,
    args: &StatsArgs,
    out: &mut dyn Write,
    clear: bool,
    stop: &CancellationToken,
) -> Result<()> {
    if !(args.window > 0.0 && args.window.is_finite()) {
        bail!(
            "--window must be a positive number of seconds, not {}",
            args.window
        );
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        );
    }
    let mut reader = Reader::new(kafka, &args.pipeline)?;
    let group = &args.pipeline.group;
    if args.once {
        let mut stats = new_stats(&args.pipeline, None, None);
        let timeout = Duration::from_secs_f64(args.timeout);
        let complete = reader.read_to_end(args.last, timeout, &mut stats)?;
        let lag = reader.lag();
        let mut snapshot = stats.snapshot(now_ms(), group, lag.as_deref());
        snapshot.complete = Some(complete);
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&snapshot)?)?;
        } else {
            write!(out, "{}", render(&snapshot))?;
        }
        out.flush()?;
        return Ok(());
    }
    let since = (!args.from_beginning).then(now_ms);
    let window_ms = (args.window * 1000.0) as i64;
    let mut stats = new_stats(&args.pipeline, Some(window_ms), since);
    reader.start_live(args.from_beginning, &mut stats)?;
    let limit = args.seconds.map(Duration::from_secs_f64);
    live(&mut reader, &mut stats, limit, stop, |stats, lag, _| {
        let snapshot = stats.snapshot(now_ms(), group, lag.as_deref());
        let written = if args.json {
            writeln!(out, "{}", serde_json::to_string(&snapshot)?)
        } else if clear {
            write!(out, "\x1b[2J\x1b[H{}", render(&snapshot))
        } else {
            writeln!(out, "{}", render(&snapshot))
        };
        Ok(written.and_then(|()| out.flush())?)
    })
}

fn new_stats(pipeline: &PipelineArgs, window_ms: Option<i64>, since: Option<i64>) -> Stats {
    Stats::new(
        &pipeline.input_topic,
        &pipeline.output_topic,
        &pipeline.dlq_topic,
        window_ms,
        since,
    )
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
