//! The inspector: reads the pipeline's topics for people. `tail` prints records as they
//! arrive, `topics` lists topics with their partitions and watermarks, `create-topics`
//! creates the pipeline's topics, `stats` shows how the pipeline is doing (rates, lag,
//! latency, precision/recall), `alert` posts anomalies to a webhook, `plot` draws a model
//! and its points, `serve` shows all of it on a live page. It reads as kcat does
//! (partitions assigned, no consumer group joined, nothing committed), so it never moves or
//! rebalances the detectors' group.
//!
//! # Layout
//!
//! One module per command, dispatched by [`run`]. Dependencies go one way (`a → b`: `a`
//! uses `b`), with no cycles:
//!
//! ```text
//! run → tail, topics, stats, alert, plot, serve → cli
//! stats:  mod → reader → counters → tracker → latency
//!               reader → group → snapshot;  counters → snapshot;  mod → render → snapshot
//! alert:  mod → webhook → incident, limit, counters, options;  mod → incident, options
//! plot:   mod → draw → grid → points;  mod → points
//! serve:  mod → http → routes, assets, page;  mod → board → model, page;  routes → board
//!         serve → stats (reader, counters, snapshot, group), plot (grid, histogram)
//! ```
//!
//! - [`cli`]: every command's arguments.
//! - [`tail`], [`topics`] (with `create-topics`): one file each.
//! - [`stats`]: the typed [`stats::Snapshot`], counters, rendering, the reading loop.
//! - [`alert`]: incidents, rate limit, the webhook thread, the reading loop.
//! - [`plot`]: points, the score grid, drawing.
//! - [`serve`]: the live page: what it counts beside `stats`, the page's data, the HTTP
//!   server, the page's files (HTML, CSS, JS) compiled in.
//!
//! Signals are the binary's: `main.rs` cancels the shutdown token that [`run`] hands to the
//! long-running commands.
#![deny(missing_docs)]

pub mod alert;
pub mod cli;
pub mod plot;
pub mod serve;
pub mod stats;
pub mod tail;
pub mod topics;

use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

pub use cli::{
    AlertArgs, Cli, Command, CreateTopicsArgs, PipelineArgs, PlotArgs, ServeArgs, StatsArgs,
    TailArgs, TopicsArgs,
};

/// Runs one command, writing its output to stdout. The long-running ones (`tail`, live
/// `stats`, `alert`) finish cleanly once `shutdown` is cancelled: the binary cancels it on
/// SIGINT or SIGTERM; this library installs no signal handler.
pub fn run(cli: &Cli, shutdown: &CancellationToken) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let kafka = cli.kafka.settings()?;
    match &cli.command {
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
    }
}
