//! The Kafka connection every process shares: plain [`ClientSettings`] (built from the
//! command line's [`KafkaArgs`]: `--brokers`, `-X key=value`, `--client-config FILE`), the
//! librdkafka clients made from them over our [`settings`] defaults, the settings a delivery
//! mode requires ([`Requirements`]), clients whose logs go through `log` with secrets masked
//! ([`LoggingContext`]), small admin helpers, and per-key state kept in a compacted
//! [`changelog`] topic (its creation, restore and writes).
//!
//! Precedence: our defaults < the user's settings (a properties file's, then `-X`'s) < a
//! mode's [`Requirements`], which a contradicting user setting never reaches: it is refused
//! first, naming the key and the mode.
//!
//! Secrets (`sasl.password`, key passwords, OAuth secrets, JAAS configs: see
//! [`settings::is_secret`]) never reach a log line or an error message: [`redacted`],
//! [`ClientSettings::describe`] and the `Debug` of [`ClientSettings`] and [`KafkaArgs`]
//! replace them with `[redacted]`, [`LoggingContext`] masks their values in everything
//! librdkafka logs, and [`creation_error`] in configuration errors.
//!
//! ```
//! use bus::{ClientSettings, Requirements};
//!
//! let settings = ClientSettings::new("127.0.0.1:9092").with("acks", "1");
//! let at_least_once = Requirements::new("at-least-once").require("acks", "all");
//! let refused = settings.check(&at_least_once).unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "bad setting: acks=1 contradicts at-least-once, which needs acks=all"
//! );
//! ```
//!
//! # Layout
//!
//! - [`settings`]: defaults, `-X` and properties-file parsing, requirements, secrets (no
//!   client here).
//! - `client`: [`ClientSettings`] and the clients it builds; `args`: [`KafkaArgs`].
//! - `context`: [`LoggingContext`]; `admin`: topics and waiting for a broker.
//! - [`api_versions`]: which APIs a broker serves, asked over plain TCP.
//! - [`changelog`]: the changelog topic of a group's per-key state, restoring a partition
//!   of it, writing updates to it.
//! - `error`: [`Error`], this crate's one error type.
#![deny(missing_docs)]

mod admin;
pub mod api_versions;
mod args;
pub mod changelog;
mod client;
mod context;
mod error;
pub mod settings;

pub use admin::{
    assign_all, ensure_topics, ensure_topics_replicated, topic_partitions, wait_for_broker,
};
pub use args::KafkaArgs;
pub use client::{creation_error, redacted, ClientSettings};
pub use context::{describe_partitions, LoggingConsumer, LoggingContext};
pub use error::{Error, Result};
pub use settings::{Requirements, SettingsError};
