//! The mock cluster, its topics, and the address clients are given.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::forward::Forwarder;
use crate::{Config, Error, TopicSpec};

/// A running development broker: librdkafka's mock cluster (one broker, on a port the
/// kernel picked on 127.0.0.1) and, when an address was chosen, a listener there whose
/// connections are forwarded to it.
///
/// The cluster handle is not `Send`: keep the broker on the thread that started it (serve
/// it with `Runtime::block_on`, not `tokio::spawn`).
pub struct DevBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
    /// The mock broker's own address, where its metadata sends clients.
    broker: SocketAddr,
    /// Serves the chosen address, when there is one.
    forwarder: Option<Forwarder>,
    topics: Vec<TopicSpec>,
}

impl DevBroker {
    /// Starts the mock cluster, creates the topics and binds the chosen address (if any).
    pub fn start(config: &Config) -> Result<DevBroker, Error> {
        let cluster = MockCluster::new(1).map_err(Error::Cluster)?;
        let bootstrap = cluster.bootstrap_servers();
        let broker = bootstrap
            .parse::<SocketAddr>()
            .map_err(|_| Error::BrokerAddress(bootstrap.clone()))?;
        for topic in config.topics() {
            cluster
                .create_topic(&topic.name, topic.partitions, 1)
                .map_err(|source| Error::CreateTopic {
                    topic: topic.to_string(),
                    source,
                })?;
            let plural = if topic.partitions == 1 { "" } else { "s" };
            log::info!(
                "created topic {} ({} partition{plural})",
                topic.name,
                topic.partitions
            );
        }
        let forwarder = match config.listen() {
            Some(address) => Some(
                TcpListener::bind(address)
                    .and_then(|listener| Forwarder::start(listener, broker))
                    .map_err(|source| Error::Listen { address, source })?,
            ),
            None => None,
        };
        if let Some(forwarder) = &forwarder {
            log::info!(
                "{} forwards to the mock broker at {broker}, where the cluster's metadata sends \
                 clients next",
                forwarder.address()
            );
        }
        Ok(DevBroker {
            cluster,
            broker,
            forwarder,
            topics: config.topics().to_vec(),
        })
    }

    /// The address to give clients as `bootstrap.servers`: the chosen one (with the port the
    /// kernel picked for port 0), or else the mock broker's own.
    pub fn address(&self) -> SocketAddr {
        self.forwarder
            .as_ref()
            .map_or(self.broker, Forwarder::address)
    }

    /// The mock broker's own address. Clients bootstrapped through the chosen address are
    /// sent here by the cluster's metadata, and talk to it directly from then on.
    pub fn broker_address(&self) -> SocketAddr {
        self.broker
    }

    /// The topics created at start.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    /// The one line that says the broker is ready, and what it is.
    pub fn ready_line(&self) -> String {
        format!(
            "devbroker: listening on {} (development broker: records are kept in memory and \
             lost when it stops)",
            self.address()
        )
    }

    /// Serves until `shutdown` completes, then stops: the listener closes, forwarded
    /// connections are dropped and the mock cluster is destroyed with every record in it.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        if let Some(forwarder) = self.forwarder {
            forwarder.stop();
        }
        drop(self.cluster);
        log::info!("stopped; its records are gone");
    }
}
