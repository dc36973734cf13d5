//! `inspector alert`: anomalies posted to a Slack-compatible webhook (`{"text": …}`), a burst
//! of them as one incident message, without ever holding the pipeline back.
//!
//! The anomalies topic is read as `tail` reads it (no group joined, nothing committed). A
//! [`Grouper`] puts anomalies whose Kafka timestamps are within the group window of each
//! other into one [`Incident`] (at most [`MAX_INCIDENT_SPAN_MS`] long), closed by the first
//! anomaly beyond the window or once none came for a window's time. Each message names the
//! ids, and the highest-scoring anomalies with their score, features and the explanation's
//! top feature (from the model file, when one is readable).
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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use iforest::{Direction, IsolationForest};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::Anomaly;
use tokio_util::sync::CancellationToken;

use crate::cli::AlertArgs;

/// Longest incident, from its first anomaly's timestamp to its last: a steady stream of
/// anomalies still makes a message a minute (subject to the rate limit).
pub const MAX_INCIDENT_SPAN_MS: i64 = 60_000;
/// Ids listed in a message; the rest are counted ("and 37 more").
pub const LISTED_IDS: usize = 50;
/// Anomalies shown in detail (highest scores first).
pub const SHOWN_ANOMALIES: usize = 5;
/// Longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The feature that contributed most to isolating an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct TopFeature {
    /// Its name, or `feature N`.
    pub name: String,
    /// Its share of the isolation, 0..=1.
    pub share: f64,
    /// Unusually high or low.
    pub direction: Direction,
}

/// One anomaly, as a message shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertItem {
    /// The transaction's id.
    pub id: String,
    /// Anomaly score.
    pub anomaly_score: f64,
    /// The model's threshold.
    pub threshold: f64,
    /// The features.
    pub features: Vec<f64>,
    /// The explanation's top feature, when a model was available and fits the features.
    pub top: Option<TopFeature>,
    /// The anomaly record's Kafka timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Where the transaction was: partition and offset.
    pub source: (i32, i64),
}

impl AlertItem {
    /// The anomaly written at `timestamp_ms`, explained by `model` when there is one.
    pub fn new(anomaly: &Anomaly, timestamp_ms: i64, model: Option<&IsolationForest>) -> Self {
        let top = model.and_then(|model| match model.explain(&anomaly.features) {
            Ok(explanation) => explanation.contributions.first().map(|c| TopFeature {
                name: c
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("feature {}", c.feature)),
                share: c.share,
                direction: c.direction,
            }),
            Err(error) => {
                log::debug!("anomaly {} not explained: {error}", anomaly.id);
                None
            }
        });
        Self {
            id: anomaly.id.to_string(),
            anomaly_score: anomaly.anomaly_score,
            threshold: anomaly.threshold,
            features: anomaly.features.clone(),
            top,
            timestamp_ms,
            source: (anomaly.partition, anomaly.offset),
        }
    }

    /// `id=4 score=0.7123 (threshold 0.6200) features=[2.39,-1.22] top feature: feature 1
    /// high (62%) source 1/33`.
    pub fn line(&self) -> String {
        let features = serde_json::to_string(&self.features).unwrap_or_default();
        let top = self.top.as_ref().map_or(String::new(), |top| {
            format!(
                " top feature: {} {} ({:.0}%)",
                top.name,
                top.direction,
                top.share * 100.0
            )
        });
        format!(
            "id={} score={:.4} (threshold {:.4}) features={features}{top} source {}/{}",
            self.id, self.anomaly_score, self.threshold, self.source.0, self.source.1
        )
    }
}

/// Anomalies close in time, sent as one message; or several incidents folded together while
/// the sender was busy.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Earliest anomaly timestamp, ms.
    pub first_ms: i64,
    /// Latest anomaly timestamp, ms.
    pub last_ms: i64,
    /// Anomalies in it.
    pub count: u64,
    /// Incidents folded into it (1 when none was).
    pub incidents: u64,
    /// The first [`LISTED_IDS`] ids.
    pub ids: Vec<String>,
    /// The [`SHOWN_ANOMALIES`] highest-scoring anomalies, highest first.
    pub shown: Vec<AlertItem>,
}

impl Incident {
    /// An incident of one anomaly.
    pub fn new(item: AlertItem) -> Self {
        Self {
            first_ms: item.timestamp_ms,
            last_ms: item.timestamp_ms,
            count: 1,
            incidents: 1,
            ids: vec![item.id.clone()],
            shown: vec![item],
        }
    }

    /// Adds an anomaly.
    pub fn add(&mut self, item: AlertItem) {
        self.first_ms = self.first_ms.min(item.timestamp_ms);
        self.last_ms = self.last_ms.max(item.timestamp_ms);
        self.count += 1;
        if self.ids.len() < LISTED_IDS {
            self.ids.push(item.id.clone());
        }
        self.show(item);
    }

    fn show(&mut self, item: AlertItem) {
        let at = self
            .shown
            .partition_point(|shown| shown.anomaly_score >= item.anomaly_score);
        if at < SHOWN_ANOMALIES {
            self.shown.insert(at, item);
            self.shown.truncate(SHOWN_ANOMALIES);
        }
    }

    /// Folds `other` into this one.
    pub fn merge(&mut self, other: Incident) {
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.count += other.count;
        self.incidents += other.incidents;
        let room = LISTED_IDS.saturating_sub(self.ids.len());
        self.ids.extend(other.ids.into_iter().take(room));
        for item in other.shown {
            self.show(item);
        }
    }

    /// The message text for people.
    pub fn text(&self) -> String {
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                || ms.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        };
        let mut text = if self.count == 1 {
            format!("Anomaly at {}", time(self.first_ms))
        } else {
            format!(
                "Incident: {} anomalies{} from {} to {} ({:.1} s)",
                self.count,
                if self.incidents > 1 {
                    format!(
                        " in {} incidents (folded while the webhook was busy or rate-limited)",
                        self.incidents
                    )
                } else {
                    String::new()
                },
                time(self.first_ms),
                time(self.last_ms),
                (self.last_ms - self.first_ms) as f64 / 1000.0
            )
        };
        for item in &self.shown {
            text.push_str("\n• ");
            text.push_str(&item.line());
        }
        let unshown = self.count.saturating_sub(self.shown.len() as u64);
        if unshown > 0 {
            text.push_str(&format!("\n…and {unshown} more"));
        }
        text.push_str("\nids: ");
        text.push_str(&self.ids.join(", "));
        let unlisted = self.count.saturating_sub(self.ids.len() as u64);
        if unlisted > 0 {
            text.push_str(&format!(" and {unlisted} more"));
        }
        text
    }

    /// The webhook body: `{"text": …}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "text": self.text() }).to_string()
    }
}

/// Groups anomalies into incidents by their timestamps.
#[derive(Debug)]
pub struct Grouper {
    window_ms: i64,
    idle: Duration,
    open: Option<Incident>,
    last_arrival: Option<Instant>,
}

impl Grouper {
    /// Anomalies within `window` of each other are one incident; an incident closes when an
    /// anomaly comes beyond it, or `window` after the last one arrived.
    pub fn new(window: Duration) -> Self {
        Self {
            window_ms: window.as_millis().min(i64::MAX as u128) as i64,
            idle: window,
            open: None,
            last_arrival: None,
        }
    }

    /// Adds an anomaly that arrived at `now`; returns the incident it closed, if any.
    pub fn add(&mut self, item: AlertItem, now: Instant) -> Option<Incident> {
        self.last_arrival = Some(now);
        let ts = item.timestamp_ms;
        let belongs = self.open.as_ref().is_some_and(|open| {
            ts <= open.last_ms.saturating_add(self.window_ms)
                && ts >= open.first_ms.saturating_sub(self.window_ms)
                && ts.max(open.last_ms) - ts.min(open.first_ms) <= MAX_INCIDENT_SPAN_MS
        });
        if belongs {
            if let Some(open) = &mut self.open {
                open.add(item);
            }
            None
        } else {
            self.open.replace(Incident::new(item))
        }
    }

    /// The open incident, once no anomaly arrived for a window's time.
    pub fn due(&mut self, now: Instant) -> Option<Incident> {
        match self.last_arrival {
            Some(last) if now.saturating_duration_since(last) >= self.idle => self.open.take(),
            _ => None,
        }
    }

    /// The open incident, whatever its age (stopping).
    pub fn take(&mut self) -> Option<Incident> {
        self.open.take()
    }
}

/// At most N messages in any 60 seconds.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: usize,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter of `per_minute` (at least 1) messages.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: (per_minute as usize).max(1),
            sent: VecDeque::new(),
        }
    }

    /// How long until a message may go (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        const MINUTE: Duration = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= MINUTE)
        {
            self.sent.pop_front();
        }
        match self.sent.front() {
            Some(&oldest) if self.sent.len() >= self.per_minute => {
                (oldest + MINUTE).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// Counts a message sent at `now`.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }
}

/// The wait before try `attempt + 1` after `attempt` failed (1-based): `first`, doubled for
/// each further try, at most [`MAX_BACKOFF`].
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    first.saturating_mul(factor).min(MAX_BACKOFF)
}

/// What `alert` did, counted as it goes (shared with the caller, who may watch it).
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Anomaly records read.
    pub anomalies: AtomicU64,
    /// Records that were not anomalies (skipped).
    pub undecodable: AtomicU64,
    /// Incidents closed.
    pub incidents: AtomicU64,
    /// Incidents folded into a waiting one.
    pub folded: AtomicU64,
    /// HTTP posts tried.
    pub attempts: AtomicU64,
    /// Messages delivered (2xx).
    pub delivered: AtomicU64,
    /// Anomalies in delivered messages.
    pub delivered_anomalies: AtomicU64,
    /// Messages given up after their tries (or at the stop).
    pub given_up: AtomicU64,
    /// Anomalies in messages given up or not sent at the stop.
    pub lost_anomalies: AtomicU64,
}

impl AlertCounters {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A checked `alert` configuration.
#[derive(Debug)]
pub struct AlertOptions {
    /// Webhook URL.
    pub webhook: String,
    /// Anomalies topic.
    pub topic: String,
    /// Read from the oldest anomaly.
    pub from_beginning: bool,
    /// Grouping window.
    pub group_window: Duration,
    /// Messages per minute.
    pub max_per_minute: u32,
    /// Time-out of one post.
    pub timeout: Duration,
    /// Tries per message (at least 1).
    pub tries: u32,
    /// First retry wait.
    pub backoff: Duration,
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// The model for explanations.
    pub model: Option<IsolationForest>,
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a number of seconds, 0 or more, not {value}"))
}

impl AlertOptions {
    /// Checks the flags and loads the model; a missing or unreadable model is said once and
    /// the messages go without explanations.
    pub fn from_args(args: &AlertArgs) -> Result<Self> {
        if args.max_per_minute == 0 {
            bail!("--max-per-minute must be at least 1");
        }
        if args.tries == 0 {
            bail!("--tries must be at least 1");
        }
        if !(args.webhook.starts_with("http://") || args.webhook.starts_with("https://")) {
            bail!("--webhook must be an http:// or https:// URL");
        }
        let timeout = seconds("--timeout", args.timeout)?;
        if timeout.is_zero() {
            bail!("--timeout must be more than 0 seconds");
        }
        let model = match IsolationForest::load(&args.model) {
            Ok(model) => Some(model),
            Err(error) => {
                log::warn!(
                    "no model ({}: {error}): messages go without the top feature",
                    args.model.display()
                );
                None
            }
        };
        Ok(Self {
            webhook: args.webhook.clone(),
            topic: args.topic.clone(),
            from_beginning: args.from_beginning,
            group_window: seconds("--group-window", args.group_window)?,
            max_per_minute: args.max_per_minute,
            timeout,
            tries: args.tries,
            backoff: seconds("--backoff", args.backoff)?,
            run_for: args.seconds.map(|s| seconds("--seconds", s)).transpose()?,
            model,
        })
    }
}

/// Reads anomalies and posts incidents until `stop` is cancelled (or `run_for` passed), counting in
/// `counters`; returns once the sender has finished or given up (about two time-outs at most
/// after the stop).
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
    let sender = Sender {
        agent: agent(options.timeout),
        url: options.webhook.clone(),
        tries: options.tries,
        backoff: options.backoff,
        limiter: RateLimiter::new(options.max_per_minute),
        counters: Arc::clone(counters),
        deadline: Arc::clone(&deadline),
    };
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
                    let item = AlertItem::new(&anomaly, timestamp, options.model.as_ref());
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

fn agent(timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// The posting thread.
struct Sender {
    agent: ureq::Agent,
    url: String,
    tries: u32,
    backoff: Duration,
    limiter: RateLimiter,
    counters: Arc<AlertCounters>,
    /// Set at the stop: nothing new is tried after it.
    deadline: Arc<OnceLock<Instant>>,
}

impl Sender {
    fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|&d| Instant::now() >= d)
    }

    /// Sleeps `duration` in short steps; false if the deadline came first.
    fn pause(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            if self.past_deadline() {
                return false;
            }
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        true
    }

    fn run(mut self, waiting: Receiver<Incident>) {
        loop {
            let incident = match waiting.recv_timeout(Duration::from_millis(100)) {
                Ok(incident) => incident,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let wait = self.limiter.wait(Instant::now());
            if !wait.is_zero() {
                log::info!("rate limit: the next message waits {wait:.1?}");
                if !self.pause(wait) {
                    self.give_up(&incident, "stopping while rate-limited");
                    continue;
                }
            }
            self.limiter.record(Instant::now());
            self.send(&incident);
        }
    }

    fn send(&self, incident: &Incident) {
        let body = incident.body();
        for attempt in 1..=self.tries {
            // After the stop, nothing new starts past the deadline (the first try included),
            // so the stop is bounded by about two time-outs.
            if self.past_deadline() {
                self.give_up(incident, "stopping");
                return;
            }
            AlertCounters::bump(&self.counters.attempts, 1);
            let retry_after = match self.post(&body) {
                Ok(()) => {
                    AlertCounters::bump(&self.counters.delivered, 1);
                    AlertCounters::bump(&self.counters.delivered_anomalies, incident.count);
                    log::info!("posted an incident of {} anomalies", incident.count);
                    return;
                }
                Err((error, retry_after)) => {
                    log::warn!(
                        "posting an incident of {} anomalies failed (try {attempt} of {}): {error}",
                        incident.count,
                        self.tries
                    );
                    retry_after
                }
            };
            if attempt < self.tries {
                let wait = backoff(self.backoff, attempt).max(retry_after.unwrap_or_default());
                if !self.pause(wait.min(MAX_BACKOFF)) {
                    self.give_up(incident, "stopping");
                    return;
                }
            }
        }
        self.give_up(incident, &format!("{} tries failed", self.tries));
    }

    fn give_up(&self, incident: &Incident, why: &str) {
        log::error!(
            "gave up a message of {} anomalies (ids {}…): {why}",
            incident.count,
            incident
                .ids
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        AlertCounters::bump(&self.counters.given_up, 1);
        AlertCounters::bump(&self.counters.lost_anomalies, incident.count);
    }

    /// One post; on failure, why, and the server's `Retry-After` when it gave one.
    fn post(&self, body: &str) -> Result<(), (String, Option<Duration>)> {
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|error| (error.to_string(), None))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err((format!("HTTP {status}"), retry_after))
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
    fn anomalies_close_in_time_are_one_incident() {
        let mut grouper = Grouper::new(Duration::from_secs(2));
        let now = Instant::now();
        assert_eq!(grouper.add(item(1, 10_000, 0.7), now), None);
        assert_eq!(grouper.add(item(2, 11_500, 0.7), now), None);
        // Out of order within the window still belongs.
        assert_eq!(grouper.add(item(3, 10_900, 0.7), now), None);
        let first = grouper.add(item(4, 14_000, 0.7), now).unwrap();
        assert_eq!(first.ids, ["1", "2", "3"]);
        assert_eq!(
            (first.first_ms, first.last_ms, first.count),
            (10_000, 11_500, 3)
        );
        // Not due until a window passed without anomalies.
        assert_eq!(grouper.due(now + Duration::from_millis(1900)), None);
        let second = grouper.due(now + Duration::from_secs(2)).unwrap();
        assert_eq!(second.ids, ["4"]);
        assert_eq!(grouper.take(), None);
    }

    #[test]
    fn a_steady_stream_still_makes_a_message_a_minute() {
        let mut grouper = Grouper::new(Duration::from_secs(2));
        let now = Instant::now();
        let mut closed = Vec::new();
        for second in 0..=130 {
            closed.extend(grouper.add(item(second, second * 1000, 0.7), now));
        }
        assert_eq!(closed.len(), 2);
        assert_eq!(closed[0].count, 61);
        assert!(closed[0].last_ms - closed[0].first_ms <= MAX_INCIDENT_SPAN_MS);
    }

    #[test]
    fn the_rate_limiter_allows_n_per_sliding_minute() {
        let mut limiter = RateLimiter::new(3);
        let start = Instant::now();
        for i in 0..3 {
            let at = start + Duration::from_secs(i * 10);
            assert_eq!(limiter.wait(at), Duration::ZERO);
            limiter.record(at);
        }
        // The fourth waits until the first is a minute old.
        let at = start + Duration::from_secs(25);
        assert_eq!(limiter.wait(at), Duration::from_secs(35));
        let at = start + Duration::from_secs(60);
        assert_eq!(limiter.wait(at), Duration::ZERO);
        limiter.record(at);
        assert_eq!(
            limiter.wait(start + Duration::from_secs(61)),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let first = Duration::from_millis(500);
        let waits: Vec<Duration> = (1..=4).map(|a| backoff(first, a)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000].map(Duration::from_millis).to_vec()
        );
        assert_eq!(backoff(first, 40), MAX_BACKOFF);
    }

    #[test]
    fn a_message_names_the_anomalies_and_their_top_feature() {
        let mut one = item(17, 1_700_000_000_000, 0.71234);
        one.top = Some(TopFeature {
            name: "amount".into(),
            share: 0.625,
            direction: Direction::High,
        });
        let incident = Incident::new(one);
        let body: serde_json::Value = serde_json::from_str(&incident.body()).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
        assert_eq!(
            text,
            "Anomaly at 2023-11-14T22:13:20.000Z\n\
             • id=17 score=0.7123 (threshold 0.6000) features=[1.5,-2.0] \
             top feature: amount high (62%) source 0/17\nids: 17"
        );
    }

    #[test]
    fn an_incident_shows_its_highest_scores_and_counts_the_rest() {
        let mut incident = Incident::new(item(0, 1_000, 0.61));
        for id in 1..80 {
            incident.add(item(id, 1_000 + id, 0.61 + id as f64 / 1000.0));
        }
        let text = incident.text();
        assert!(
            text.starts_with("Incident: 80 anomalies from 1970-01-01T00:00:01.000Z to "),
            "{text}"
        );
        let shown: Vec<&str> = text.lines().filter(|l| l.starts_with("• ")).collect();
        assert_eq!(shown.len(), SHOWN_ANOMALIES);
        assert!(shown[0].starts_with("• id=79 "), "highest first: {text}");
        assert!(text.contains("\n…and 75 more\n"), "{text}");
        let ids = text.lines().last().unwrap();
        assert!(ids.starts_with("ids: 0, 1, 2,"), "{ids}");
        assert!(ids.ends_with("49 and 30 more"), "{ids}");
    }

    #[test]
    fn folded_incidents_add_up() {
        let mut waiting = Incident::new(item(1, 5_000, 0.7));
        let mut later = Incident::new(item(2, 9_000, 0.9));
        later.add(item(3, 9_100, 0.65));
        waiting.merge(later);
        assert_eq!(
            (
                waiting.count,
                waiting.incidents,
                waiting.first_ms,
                waiting.last_ms
            ),
            (3, 2, 5_000, 9_100)
        );
        assert_eq!(waiting.ids, ["1", "2", "3"]);
        assert_eq!(waiting.shown[0].id, "2");
        assert!(waiting
            .text()
            .starts_with("Incident: 3 anomalies in 2 incidents"));
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
