//! `inspector alert`: anomalies posted to a Slack-compatible webhook (`{"text": …}`), a burst
//! of them as one incident message, without ever holding the pipeline back.
//!
//! The anomalies topic is read as `tail` reads it (no group joined, nothing committed). A
//! [`Grouper`] puts anomalies whose Kafka timestamps are within the group window of each
//! other into one [`Incident`] (at most [`MAX_INCIDENT_SPAN_MS`] long), closed by the first
//! anomaly beyond the window or once none came for a window's time. Each message names the
//! ids, and the highest-scoring anomalies with their score, features and top feature: the
//! first entry of the anomaly's own `explanation`, or for an anomaly written without one,
//! the model file's explanation (when the file is readable).
//!
//! Posting happens on its own thread, fed through a queue of one message: the reader only
//! ever `try_send`s, so a slow, failing or hanging webhook never slows the reading. While the
//! sender is busy (waiting for the [`RateLimiter`], retrying with exponential backoff, or
//! stuck until the time-out), newly closed incidents are folded into one waiting incident,
//! which goes out as the next message ("3 incidents, 41 anomalies … and 37 more").
//! Nothing is dropped silently: a message given up after its tries, or not sent when
//! stopping, is logged with its anomaly count.
//!
//! Stopping (the caller's token, which the binary cancels on SIGINT or SIGTERM, or
//! `--seconds`): the open incident is handed over, and the sender gets one `--timeout` more
//! to finish; so `alert` returns within about two time-outs.
//!
//! # Layout
//!
//! - [`incident`]: anomalies gathered into incidents, and a message's text.
//! - [`limit`]: the rate limit and the backoff. [`counters`]: what was done.
//! - [`options`]: the checked flags. `webhook`: the posting thread (uses `incident`,
//!   `limit`, `counters`, `options`).
//! - this module: the reading loop and the outbox between it and the posting thread.

pub mod counters;
pub mod incident;
pub mod limit;
pub mod options;
mod webhook;

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::Anomaly;
use tokio_util::sync::CancellationToken;

pub use counters::AlertCounters;
pub use incident::{
    AlertItem, Grouper, Incident, TopFeature, LISTED_IDS, MAX_INCIDENT_SPAN_MS, SHOWN_ANOMALIES,
};
pub use limit::{backoff, RateLimiter, MAX_BACKOFF};
pub use options::AlertOptions;

use crate::reason::TopReason;
use webhook::Sender;

/// Reads anomalies and posts incidents until `stop` is cancelled (or `run_for` passed),
/// counting in `counters`; returns once the sender has finished or given up (about two
/// time-outs at most after the stop).
pub fn alert(
    kafka: &bus::ClientSettings,
    options: &AlertOptions,
    stop: &CancellationToken,
    counters: &Arc<AlertCounters>,
) -> Result<()> {
    let consumer = kafka.base_consumer()?;
    let metadata = consumer
        .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
        .with_context(|| format!("cannot read metadata from {}", kafka.brokers))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == options.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {} does not exist", options.topic);
    }
    let start = if options.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&options.topic, *partition, start)?;
    }
    consumer.assign(&assignment)?;

    let (queue, waiting) = mpsc::sync_channel::<Incident>(1);
    let deadline = Arc::new(OnceLock::new());
    let sender = Sender::new(options, Arc::clone(counters), Arc::clone(&deadline));
    let sending = std::thread::Builder::new()
        .name("webhook".into())
        .spawn(move || sender.run(waiting))
        .context("cannot start the webhook thread")?;
    log::info!(
        "alerting on {} ({} partitions, from the {}) to the webhook",
        options.topic,
        partitions.len(),
        if options.from_beginning {
            "beginning"
        } else {
            "end"
        }
    );

    let started = Instant::now();
    let mut grouper = Grouper::new(options.group_window);
    let mut outbox = Outbox {
        queue,
        waiting: None,
        counters: Arc::clone(counters),
    };
    while !stop.is_cancelled() && options.run_for.is_none_or(|t| started.elapsed() < t) {
        if let Some(Ok(message)) = consumer
            .poll(Duration::from_millis(100))
            .map(|m| m.map_err(|error| log::warn!("reading {}: {error}", options.topic)))
        {
            let value = message.payload().unwrap_or_default();
            match Anomaly::decode(value) {
                Ok(anomaly) => {
                    AlertCounters::bump(&counters.anomalies, 1);
                    let timestamp = message
                        .timestamp()
                        .to_millis()
                        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                    let carried = TopReason::of_bytes(value)
                        .as_ref()
                        .and_then(TopFeature::carried);
                    let item = AlertItem::new(&anomaly, timestamp, carried, options.model.as_ref());
                    if let Some(closed) = grouper.add(item, Instant::now()) {
                        outbox.hand(closed);
                    }
                }
                Err(error) => {
                    if AlertCounters::get(&counters.undecodable) == 0 {
                        log::warn!(
                            "{}/{} is not an anomaly record ({error}): skipped",
                            message.partition(),
                            message.offset()
                        );
                    }
                    AlertCounters::bump(&counters.undecodable, 1);
                }
            }
        }
        if let Some(closed) = grouper.due(Instant::now()) {
            outbox.hand(closed);
        }
        outbox.offer();
    }
    log::info!("stopping: the webhook gets {:?} more", options.timeout);
    let _ = deadline.set(Instant::now() + options.timeout);
    if let Some(open) = grouper.take() {
        outbox.hand(open);
    }
    outbox.finish();
    if sending.join().is_err() {
        log::error!("the webhook thread failed");
    }
    Ok(())
}

/// Closed incidents on their way to the sender: one in the queue, the rest folded here.
struct Outbox {
    queue: SyncSender<Incident>,
    waiting: Option<Incident>,
    counters: Arc<AlertCounters>,
}

impl Outbox {
    fn hand(&mut self, incident: Incident) {
        AlertCounters::bump(&self.counters.incidents, 1);
        match &mut self.waiting {
            Some(waiting) => {
                AlertCounters::bump(&self.counters.folded, 1);
                waiting.merge(incident);
            }
            None => self.waiting = Some(incident),
        }
        self.offer();
    }

    /// Gives the waiting incident to the sender if it has room; never blocks.
    fn offer(&mut self) {
        if let Some(incident) = self.waiting.take() {
            match self.queue.try_send(incident) {
                Ok(()) => {}
                Err(TrySendError::Full(incident)) | Err(TrySendError::Disconnected(incident)) => {
                    self.waiting = Some(incident)
                }
            }
        }
    }

    /// Offers the waiting incident a last time, then closes the queue.
    fn finish(mut self) {
        self.offer();
        if let Some(incident) = self.waiting.take() {
            log::warn!(
                "not sent at the stop (the webhook was busy): {} anomalies",
                incident.count
            );
            AlertCounters::bump(&self.counters.lost_anomalies, incident.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, ms: i64, score: f64) -> AlertItem {
        AlertItem {
            id: id.to_string(),
            anomaly_score: score,
            threshold: 0.6,
            features: vec![1.5, -2.0],
            top: None,
            timestamp_ms: ms,
            source: (0, id),
        }
    }

    #[test]
    fn the_outbox_folds_while_the_sender_is_busy_and_never_blocks() {
        let (queue, waiting) = mpsc::sync_channel(1);
        let counters = Arc::new(AlertCounters::default());
        let mut outbox = Outbox {
            queue,
            waiting: None,
            counters: Arc::clone(&counters),
        };
        for id in 0..4 {
            outbox.hand(Incident::new(item(id, id * 10_000, 0.7)));
        }
        // The first is in the queue, the other three folded into one.
        assert_eq!(waiting.try_recv().unwrap().ids, ["0"]);
        outbox.offer();
        let folded = waiting.try_recv().unwrap();
        assert_eq!((folded.count, folded.incidents), (3, 3));
        assert_eq!(AlertCounters::get(&counters.folded), 2);
        assert_eq!(AlertCounters::get(&counters.incidents), 4);
    }
}
