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
    /// A name that Kafka does not accept as a topic's.
    #[error(
        "{name:?} is not a valid topic name ({reason}); topic names are 1 to 249 of \
         a-z A-Z 0-9 . _ -"
    )]
    InvalidTopicName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A changelog topic whose partitions do not match its input topic's: changelog
    /// partition p holds the state of input partition p's keys.
    #[error(
        "changelog {topic} has {partitions} partitions but its input {input} has \
         {input_partitions}; delete it or make them equal"
    )]
    ChangelogPartitions {
        /// The changelog topic.
        topic: String,
        /// Its partitions.
        partitions: i32,
        /// The input topic.
        input: String,
        /// The input's partitions.
        input_partitions: i32,
    },
    /// A changelog topic that the broker does not compact: old states would be deleted by
    /// retention, and a restore would miss them.
    #[error(
        "changelog {topic} has cleanup.policy={policy}, not compact: its states would be \
         deleted by retention; set cleanup.policy=compact or delete the topic"
    )]
    NotCompacted {
        /// The changelog topic.
        topic: String,
        /// Its cleanup policy.
        policy: String,
    },
    /// A restore stopped before it was complete because it was asked to.
    #[error("the restore of {topic}/{partition} was stopped before it was complete")]
    RestoreStopped {
        /// The changelog topic.
        topic: String,
        /// Its partition.
        partition: i32,
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
