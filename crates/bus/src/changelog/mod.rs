//! Per-key state backed by a compacted changelog topic, as Kafka's stream processors keep it:
//! the Kafka side only. Values are opaque bytes here; what they mean is the caller's.
//!
//! A consumer group reading an input topic keeps its state in `<group>.<input>.state`
//! ([`topic_name`]), compacted, with the input's partition count: changelog partition p holds
//! the state of input partition p's keys, one record per key, the newest winning, a tombstone
//! (null value) removing the key.
//!
//! - [`ensure`] creates the topic (`cleanup.policy=compact`, the input's partitions read from
//!   the metadata) or checks the one that exists.
//! - [`restore`] reads one changelog partition from its beginning to the end it had when the
//!   restore began, `read_committed`, and returns each key's newest value.
//! - [`write`](fn@write) sends a batch of [`Update`]s with the caller's producer and waits for every
//!   acknowledgement; [`record`] makes one record for callers that send themselves.
//!
//! The order that makes a restore give exactly the state an uninterrupted run would have had:
//! a batch's state updates are written only after all its outputs are acknowledged, and its
//! input offsets are stored only after the updates are acknowledged. With transactions the
//! updates are sent inside the batch's transaction, with its outputs and offsets.
//!
//! ```no_run
//! # async fn sketch(
//! #     settings: bus::ClientSettings,
//! #     producer: rdkafka::producer::FutureProducer<bus::LoggingContext>,
//! #     shutdown: tokio::sync::watch::Receiver<bool>,
//! # ) -> bus::Result<()> {
//! use bus::changelog::{self, Update};
//!
//! // At start: the topic, compacted, with the input's partitions.
//! let topic = changelog::ensure(&settings, "detectors", "transactions", 1).await?;
//!
//! // On the assignment of input partition 2, before any of its records is scored:
//! let mut stop = shutdown.clone();
//! let restored = changelog::restore(&settings, &topic, 2, async move {
//!     let _ = stop.wait_for(|&stopped| stopped).await;
//! })
//! .await?;
//! log::info!("{}", restored.stats);
//! let states = restored.states; // key → newest value
//!
//! // After a batch's outputs are acknowledged, before its offsets are stored:
//! let updates = [
//!     Update::put(2, b"card-17", b"state bytes"),
//!     Update::tombstone(2, b"card-3"), // aged out
//! ];
//! changelog::write(&producer, &topic, &updates).await?;
//! # let _ = states;
//! # Ok(())
//! # }
//! ```

mod restore;
mod topic;
mod write;

pub use restore::{restore, RestoreStats, Restored};
pub use topic::{ensure, topic_name};
pub use write::{record, write, Update};
