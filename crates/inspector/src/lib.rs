//! The inspector: reads the pipeline's topics for people. `tail` prints records as they
//! arrive, `topics` lists topics with their partitions and watermarks, `create-topics`
//! creates the pipeline's topics, `stats` shows how the pipeline is doing (rates, lag,
//! latency, precision/recall), `alert` posts anomalies to a webhook, `plot` draws a model
//! and its points. It reads as kcat does (partitions assigned, no consumer group joined,
//! nothing committed), so it never moves or rebalances the detectors' group.
//!
//! # Layout
//!
//! One module per command, dispatched by [`run`]: [`tail`], [`topics`] (with
//! `create-topics`), [`stats`], [`alert`], [`plot`]; [`cli`] holds their arguments.

pub mod alert;
pub mod cli;
pub mod plot;
pub mod stats;
pub mod tail;
pub mod topics;

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

pub use cli::{
    AlertArgs, Cli, Command, CreateTopicsArgs, PlotArgs, StatsArgs, TailArgs, TopicsArgs,
};

/// Runs one command, writing its output to stdout.
pub fn run(cli: &Cli) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let kafka = cli.kafka.settings()?;
    match &cli.command {
        Command::Tail(args) => tail::tail(&kafka, args, &mut stdout).map(|_| ()),
        Command::Topics(args) => topics::topics(&kafka, args, &mut stdout),
        Command::CreateTopics(args) => topics::create_topics(&kafka, args),
        Command::Stats(args) => {
            let clear = std::io::stdout().is_terminal();
            stats::stats(&kafka, args, &mut stdout, clear, &stop_on_ctrl_c())
        }
        Command::Alert(args) => {
            let options = alert::AlertOptions::from_args(args)?;
            let counters = Arc::new(alert::AlertCounters::default());
            alert::alert(&kafka, &options, &stop_on_ctrl_c(), &counters)
        }
        Command::Plot(args) => plot::plot(&kafka, args, &mut stdout).map(|_| ()),
    }
}

/// A flag set by the first Ctrl-C (so a command can finish cleanly); a second one exits at
/// once.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let watcher = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    log::info!("Ctrl-C: stopping (again to quit at once)");
                    flag.store(true, Ordering::Relaxed);
                }
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            });
        });
    if let Err(error) = watcher {
        log::warn!("Ctrl-C will not stop cleanly: {error}");
    }
    stop
}
