//! A development broker: librdkafka's mock cluster (`rdkafka::mocking::MockCluster`, which
//! our rdkafka build compiles anyway) served over TCP to other processes, so that the demo
//! and the benchmarks run with nothing installed beyond this workspace's build.
//!
//! What it is: one process holding one mock broker that speaks the Kafka protocol over
//! TCP, with topics created at start, produce and fetch, offsets and watermarks, consumer
//! groups with committed offsets, idempotent and transactional producers. It answers on a
//! chosen loopback address (`--listen 127.0.0.1:9092`) by forwarding connections to the
//! mock broker's own port, which the kernel picks.
//!
//! What it is not: a Kafka broker for anything but development. Records are kept in memory
//! only and lost when it stops; each partition keeps only its newest records (librdkafka
//! drops the oldest past about 5 MB or 100,000 batches per partition, and the low
//! watermark moves up); there is one broker and no replication; it serves clients on this
//! machine only; it has no TLS, SASL or ACLs; and the Kafka admin API is not served, so
//! topics are created from its command line, not with `CreateTopics`.
//!
//! # Layout
//!
//! [`Cli`] holds the arguments as typed and [`Config`] checks them; [`DevBroker`] starts the
//! cluster, creates the [`TopicSpec`]s and serves until a shutdown future completes (the
//! binary passes SIGINT, SIGTERM and, if asked, the end of standard input); a private
//! module forwards the chosen address to the mock broker.

#![deny(missing_docs)]

mod broker;
mod cli;
mod config;
mod forward;
mod topics;

use std::net::SocketAddr;

pub use broker::DevBroker;
pub use cli::Cli;
pub use config::Config;
pub use topics::TopicSpec;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic on the command line is not `NAME[:PARTITIONS]`.
    #[error("topic {spec:?}: {why}")]
    TopicSpec {
        /// What was given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The same topic was named twice.
    #[error("topic {0} is named twice")]
    DuplicateTopic(String),
    /// `--listen` named an address other machines could reach.
    #[error(
        "--listen {0}: only a loopback address (127.0.0.1, ::1) can be served, because the \
         mock broker that clients are sent to listens on 127.0.0.1 only"
    )]
    NotLoopback(SocketAddr),
    /// librdkafka could not start the mock cluster.
    #[error("cannot start librdkafka's mock cluster")]
    Cluster(#[source] rdkafka::error::KafkaError),
    /// The mock cluster named an address that is not `HOST:PORT`.
    #[error("the mock cluster gave an unexpected address {0:?}")]
    BrokerAddress(String),
    /// A topic could not be created.
    #[error("cannot create topic {topic}")]
    CreateTopic {
        /// The topic, `NAME:PARTITIONS`.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The chosen address could not be bound (in use, or not ours).
    #[error("cannot listen on {address}")]
    Listen {
        /// The chosen address.
        address: SocketAddr,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn autotraits<T: Send + Sync + Unpin>() {}

    #[test]
    fn settings_and_errors_cross_threads() {
        autotraits::<Config>();
        autotraits::<TopicSpec>();
        autotraits::<Error>();
    }
}
