//! The one error type of this crate. Messages never carry a secret's value: configuration
//! errors about a secret name its key only.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::SettingsError;

/// What can go wrong between our settings and a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `-X` setting that cannot be read, or one a mode cannot work with.
    #[error("bad setting: {0}")]
    Setting(#[source] Box<SettingsError>),
    /// The `--client-config` file cannot be read.
    #[error("cannot read the client config {}", path.display())]
    ClientConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the `--client-config` file is not a setting.
    #[error("{}: {source}", path.display())]
    ClientConfigLine {
        /// The file.
        path: PathBuf,
        /// Which line, and why.
        #[source]
        source: Box<SettingsError>,
    },
    /// librdkafka would not create a client from the settings.
    #[error("cannot create the Kafka {what}: {detail}")]
    Create {
        /// "producer", "consumer", "admin client".
        what: &'static str,
        /// librdkafka's reason, a secret's value replaced by `[redacted]`.
        detail: String,
    },
    /// A topic that does not exist, or has no partitions.
    #[error("topic {0} does not exist or has no partitions")]
    NoSuchTopic(String),
    /// The broker refused to create a topic.
    #[error("cannot create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// A created topic did not show up in the metadata in time.
    #[error("topic {topic} did not appear with {partitions} partitions within {waited:?}")]
    TopicNotReady {
        /// The topic.
        topic: String,
        /// The partitions it should have.
        partitions: i32,
        /// How long we waited.
        waited: Duration,
    },
    /// No broker answered within the time allowed.
    #[error("broker {brokers} not reachable after {waited:?}: {source}")]
    Unreachable {
        /// `bootstrap.servers`.
        brokers: String,
        /// How long we tried.
        waited: Duration,
        /// The last failure.
        #[source]
        source: KafkaError,
    },
    /// The broker's answer to a raw request was not what the protocol says.
    #[error("{address}: {detail}")]
    Protocol {
        /// The broker.
        address: String,
        /// What was wrong.
        detail: String,
    },
    /// A socket error talking to `address`.
    #[error("{address}: {source}")]
    Io {
        /// The broker.
        address: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Any other client error, with what we were doing.
    #[error("{context}: {source}")]
    Kafka {
        /// What failed, e.g. "cannot read the metadata of transactions".
        context: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
}

impl Error {
    /// A client error with what we were doing.
    pub(crate) fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        Self::Kafka {
            context: context.into(),
            source,
        }
    }
}

impl From<SettingsError> for Error {
    fn from(error: SettingsError) -> Self {
        Self::Setting(Box::new(error))
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
