//! Command-line arguments, as typed.

use std::net::SocketAddr;

use clap::Parser;

use crate::TopicSpec;

/// A development broker: librdkafka's mock cluster served over TCP. Records are kept in
/// memory and lost when it stops; one process, one broker, not for production.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Topics to create at start, `NAME[:PARTITIONS]` (default 1 partition). Without any,
    /// the pipeline's: transactions:3, anomalies, transactions.dlq.
    #[arg(value_name = "TOPIC[:PARTITIONS]")]
    pub topics: Vec<TopicSpec>,
    /// Answer on this address (a loopback one; port 0 lets the kernel pick). Without it,
    /// clients use the mock broker's own address, which the ready line names.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Also stop when standard input closes (for a parent process that holds a pipe).
    #[arg(long)]
    pub stdin_close_stops: bool,
}
