//! The inspector: reads the pipeline's topics for people. `tail` prints records as they
//! arrive, `topics` lists topics with their partitions and watermarks, `create-topics`
//! creates the pipeline's topics. It reads as kcat does (partitions assigned, no consumer
//! group joined, nothing committed), so it never moves or rebalances the detectors' group.
//!
//! # Layout
//!
//! One module per command, dispatched by [`run`]: [`tail`], [`topics`] (with
//! `create-topics`); [`cli`] holds their arguments. Commands still to come (`stats`,
//! `alert`, `plot`) get a module and a [`cli::Command`] variant each.

pub mod cli;
pub mod plot;
pub mod tail;
pub mod topics;

use anyhow::Result;

pub use cli::{Cli, Command, CreateTopicsArgs, PlotArgs, TailArgs, TopicsArgs};

/// Runs one command, writing its output to stdout.
pub fn run(cli: &Cli) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match &cli.command {
        Command::Tail(args) => tail::tail(&cli.kafka, args, &mut stdout).map(|_| ()),
        Command::Topics(args) => topics::topics(&cli.kafka, args, &mut stdout),
        Command::CreateTopics(args) => topics::create_topics(&cli.kafka, args),
        Command::Plot(args) => plot::plot(&cli.kafka, args, &mut stdout).map(|_| ()),
    }
}
