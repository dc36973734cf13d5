//! librdkafka's in-process mock cluster, served over TCP for other processes: a broker that
//! keeps records in memory and answers a fetch as soon as it has records, with none of a real
//! broker's storage. The latency benchmark runs the pipeline on it to tell the client path's
//! latency (generator, detector, librdkafka settings) from the broker's.
//!
//! ```text
//! cargo run --release -p detector --example mock_broker -- transactions:3 anomalies dlq
//! ```
//!
//! Prints `bootstrap=HOST:PORT` once the topics exist, then serves until stdin closes or the
//! process is stopped.

use std::io::{BufRead as _, Write as _};

use anyhow::{Context as _, Result};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

fn main() -> Result<()> {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).context("cannot start librdkafka's mock cluster")?;
    for spec in std::env::args().skip(1) {
        let (name, partitions) = match spec.split_once(':') {
            Some((name, partitions)) => (
                name.to_string(),
                partitions
                    .parse::<i32>()
                    .with_context(|| format!("{spec}: partitions must be a number"))?,
            ),
            None => (spec.clone(), 1),
        };
        cluster
            .create_topic(&name, partitions, 1)
            .with_context(|| format!("cannot create {name}"))?;
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "bootstrap={}", cluster.bootstrap_servers())?;
    stdout.flush()?;
    // Serve until whoever started us closes our stdin (or stops us).
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    Ok(())
}
