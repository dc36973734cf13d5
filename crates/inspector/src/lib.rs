//! The inspector: reads the pipeline's topics for people. `tail` prints records as they
//! arrive, `topics` lists topics with their partitions and watermarks, `create-topics`
//! creates the pipeline's topics, `stats` shows how the pipeline is doing (rates, lag,
//! latency, precision/recall), `alert` posts anomalies to a webhook, `plot` draws a model
//! and its points, `serve` shows all of it on a live page, `verify` re-scores the anomalies'
//! source records and checks that the output is exactly what the models give. It reads as kcat does
//! (partitions assigned, no consumer group joined, nothing committed), so it never moves or
//! rebalances the detectors' group.
//!
//! # Layout
//!
//! One module per command, dispatched by [`run`]. Dependencies go one way (`a → b`: `a`
//! uses `b`), with no cycles:
//!
//! ```text
//! run → tail, topics, stats, alert, plot, serve, verify → cli;  tail, alert → reason
//! stats:  mod → reader → counters → tracker → latency
//!               reader → group → snapshot;  counters → snapshot;  mod → render → snapshot
//! alert:  mod → webhook → incident, limit, counters, options;  mod → incident, options
//! plot:   mod → draw → grid → points;  mod → points
//! serve:  mod → http → routes, assets, page;  mod → board → model, page;  routes → board
//!         serve → stats (reader, counters, snapshot, group), plot (grid, histogram)
//! verify: mod → fetch, models, anomaly, compare, range, report;  compare → anomaly, models
//!         range → models, report;  verify → stats (group)
//! ```
//!
//! - [`cli`]: every command's arguments.
//! - [`tail`], [`topics`] (with `create-topics`): one file each.
//! - [`reason`]: the top reason an anomaly carries (its explanation's first entry).
//! - [`stats`]: the typed [`stats::Snapshot`], counters, rendering, the reading loop.
//! - [`alert`]: incidents, rate limit, the webhook thread, the reading loop.
//! - [`plot`]: points, the score grid, drawing.
//! - [`serve`]: the live page: what it counts beside `stats`, the page's data, the HTTP
//!   server, the page's files (HTML, CSS, JS) compiled in.
//! - [`verify`]: the anomalies re-scored from their sources: reading chosen offsets, models
//!   by id, the comparison, the range check, the report.
//!
//! Signals are the binary's: `main.rs` cancels the shutdown token that [`run`] hands to the
//! long-running commands.
#![deny(missing_docs)]

pub mod alert;
pub mod cli;
pub mod plot;
pub mod reason;
pub mod serve;
pub mod stats;
pub mod tail;
pub mod topics;
pub mod verify;

use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

pub use cli::{
    AlertArgs, Cli, Command, CreateTopicsArgs, PipelineArgs, PlotArgs, ServeArgs, StatsArgs,
    TailArgs, TopicsArgs, VerifyArgs,
};

/// How a command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It did its job (exit code 0).
    Done,
    /// `verify` found anomalies that differ, are missing or should not be there (exit code
    /// 1).
    Findings,
}

/// Runs one command, writing its output to stdout. The long-running ones (`tail`, live
/// `stats`, `alert`, `serve`) finish cleanly once `shutdown` is cancelled: the binary cancels
/// it on SIGINT or SIGTERM; this library installs no signal handler. An error is a usage or
/// connection problem (exit code 2).
pub fn run(cli: &Cli, shutdown: &CancellationToken) -> Result<Status> {
    let mut stdout = std::io::stdout().lock();
    let kafka = cli.kafka.settings()?;
    let done = match &cli.command {
        Command::Tail(args) => tail::tail(&kafka, args, &mut stdout, shutdown).map(|_| ()),
        Command::Topics(args) => topics::topics(&kafka, args, &mut stdout),
        Command::CreateTopics(args) => topics::create_topics(&kafka, args),
        Command::Stats(args) => {
            let clear = std::io::stdout().is_terminal();
            stats::stats(&kafka, args, &mut stdout, clear, shutdown)
        }
        Command::Alert(args) => {
            let options = alert::AlertOptions::from_args(args)?;
            let counters = Arc::new(alert::AlertCounters::default());
            alert::alert(&kafka, &options, shutdown, &counters)
        }
        Command::Plot(args) => plot::plot(&kafka, args, &mut stdout).map(|_| ()),
        Command::Serve(args) => serve::serve(&kafka, args, &mut stdout, shutdown),
        Command::Verify(args) => {
            let report = verify::verify(&kafka, args)?;
            if args.json {
                report.write_json(&mut stdout)?;
            } else {
                report.write_text(&mut stdout)?;
            }
            if !report.passed {
                return Ok(Status::Findings);
            }
            Ok(())
        }
    };
    done.map(|()| Status::Done)
}
