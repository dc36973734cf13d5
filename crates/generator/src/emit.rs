//! Sending: batched asynchronous producing, paced by a schedule, counted from the broker's
//! acknowledgements.
//!
//! A record whose delivery fails for a reason that may pass (a broker restarting, an
//! idempotent producer's state lost by the broker) is sent again after a pause, up to
//! [`MAX_ATTEMPTS`] times; if librdkafka declares the producer unusable (a fatal idempotence
//! error), a new producer takes over and re-sends what the old one had not delivered. At least
//! once: a record the broker stored but could not confirm may be stored twice.

use std::collections::VecDeque;
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::Config;

/// What a run sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Records handed to the producer.
    pub sent: u64,
    /// Records the broker acknowledged.
    pub acknowledged: u64,
    /// Records that failed, or were still unacknowledged when the flush timed out.
    pub failed: u64,
    /// Seconds from the first record to the end of the flush.
    pub seconds: f64,
}

impl fmt::Display for Summary {
    /// `generator: sent=N acknowledged=N failed=N seconds=S rate=R/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "generator: sent={} acknowledged={} failed={} seconds={:.1} rate={:.1}/s",
            self.sent,
            self.acknowledged,
            self.failed,
            self.seconds,
            self.acknowledged as f64 / self.seconds.max(1e-9)
        )
    }
}

/// Most times one record is handed to the producer before it counts as failed.
pub const MAX_ATTEMPTS: usize = 5;

/// Pause before sending a record again: 1 s, 2 s, 4 s, … at most 10 s.
pub fn resend_pause(attempt: usize) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(4)).min(Duration::from_secs(10))
}

/// Failures that sending again cannot cure.
pub fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::MessageBatchTooLarge
    )
}

/// A record to send again once `due`.
struct Resend {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    attempt: usize,
    due: Instant,
}

/// Delivery counts and records to send again, shared by every producer of a run (a fatal
/// error replaces the producer).
#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    resent: AtomicU64,
    first_failure: Mutex<Option<String>>,
    first_resend: Mutex<bool>,
    resends: Mutex<VecDeque<Resend>>,
}

impl Tally {
    fn resends(&self) -> std::sync::MutexGuard<'_, VecDeque<Resend>> {
        self.resends.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The producer's context: librdkafka's logs through `bus` (secrets masked), deliveries
/// counted, failed ones queued to be sent again. The delivery opaque is the attempt number.
struct Deliveries {
    logging: bus::LoggingContext,
    tally: Arc<Tally>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, attempt: usize) {
        let (error, message) = match result {
            Ok(_) => {
                self.tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(failure) => failure,
        };
        let permanent = error.rdkafka_error_code().is_some_and(is_permanent);
        if !permanent && attempt < MAX_ATTEMPTS {
            let mut first = self
                .tally
                .first_resend
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !*first {
                // One line, not one per record: a broker outage fails thousands at once.
                log::warn!(
                    "delivery failed: {error}; sending again (further re-sends are counted)"
                );
                *first = true;
            }
            self.tally.resends().push_back(Resend {
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                attempt: attempt + 1,
                due: Instant::now() + resend_pause(attempt + 1),
            });
            return;
        }
        let mut first = self
            .tally
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            log::error!("delivery failed for good: {error} (further failures are counted)");
            *first = Some(error.to_string());
        }
    }
}

type Sender = BaseProducer<Deliveries>;

fn producer(config: &Config, tally: &Arc<Tally>) -> Result<Sender> {
    let context = Deliveries {
        logging: bus::LoggingContext::new(&config.producer),
        tally: Arc::clone(tally),
    };
    Ok(config
        .producer
        .create_with_context(context)
        .map_err(|error| bus::creation_error(error, "producer"))?)
}

/// Hands `record` to the producer, serving acknowledgements while its queue is full.
fn hand_over(producer: &Sender, mut record: BaseRecord<'_, [u8], [u8], usize>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                // The local queue is full: serve acknowledgements until there is room.
                record = returned;
                producer.poll(Duration::from_millis(50));
            }
            Err((error, _)) => bail!("cannot send a record: {error}"),
        }
    }
}

/// Sends again the failed records whose pause is over.
fn resend_due(producer: &Sender, tally: &Tally, topic: &str) -> Result<()> {
    let now = Instant::now();
    loop {
        let next = {
            let mut resends = tally.resends();
            match resends.front() {
                // Queued in failure order with one pause per attempt: near enough to due order.
                Some(resend) if resend.due <= now => resends.pop_front(),
                _ => None,
            }
        };
        let Some(resend) = next else { return Ok(()) };
        let mut record = BaseRecord::with_opaque_to(topic, resend.attempt);
        if let Some(key) = &resend.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &resend.payload {
            record = record.payload(payload.as_slice());
        }
        hand_over(producer, record)?;
        tally.resent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Replaces a producer librdkafka has declared unusable (a fatal idempotence error). Dropping
/// the old one purges what it still held; those records come back as failures to send again.
fn replace_if_fatal(producer: &mut Sender, config: &Config, tally: &Arc<Tally>) -> Result<()> {
    if let Some((code, reason)) = producer.client().fatal_error() {
        log::warn!(
            "the producer failed for good ({code:?}: {reason}); a new one re-sends what it had \
             not delivered"
        );
        producer.poll(Duration::ZERO);
        *producer = self::producer(config, tally)?;
    }
    Ok(())
}

/// When record `n` (from 0) is due: `n / rate` after the start. Records already due are sent
/// at once, so the rate holds however long each send takes (no drift, no sleep per record
/// when behind).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    started: Instant,
    rate: f64,
}

impl Schedule {
    /// A schedule of `rate` records per second from `started`; 0 = unpaced.
    pub fn new(started: Instant, rate: f64) -> Self {
        Self { started, rate }
    }

    /// The same rate with `n` records already sent: record `n` is due at the start.
    pub fn after(self, n: u64) -> Self {
        let ahead = Duration::from_secs_f64(n as f64 / self.rate.max(f64::MIN_POSITIVE));
        Self {
            started: self.started.checked_sub(ahead).unwrap_or(self.started),
            ..self
        }
    }

    /// When record `n` is due (`None`: unpaced, always).
    pub fn due(&self, n: u64) -> Option<Instant> {
        (self.rate > 0.0).then(|| self.started + Duration::from_secs_f64(n as f64 / self.rate))
    }
}

/// Sends the configured records to the configured topic until they run out or `stop` is set,
/// then flushes and counts. Never flushes per record.
pub fn run(config: &Config, stop: &AtomicBool) -> Result<Summary> {
    let tally = Arc::new(Tally::default());
    log::info!(
        "producing to {} with {}",
        config.topic,
        bus::redacted(&config.producer)
    );
    let mut producer = producer(config, &tally)?;
    let bar = progress_bar(config);
    let started = Instant::now();
    let mut schedule = Schedule::new(started, config.rate);
    let mut sent = 0u64;
    let mut unpolled = 0u32;
    let mut served = Instant::now();
    for outgoing in config.records() {
        if stop.load(Ordering::Relaxed) {
            log::info!("stopping on a signal after {sent} records");
            break;
        }
        if let Some(due) = schedule.due(sent) {
            if !wait_until(&producer, due, stop) {
                log::info!("stopping on a signal after {sent} records");
                break;
            }
        }
        let mut record =
            BaseRecord::with_opaque_to(&config.topic, 1).payload(outgoing.payload.as_slice());
        if let Some(key) = &outgoing.key {
            record = record.key(key.as_bytes());
        }
        hand_over(&producer, record).with_context(|| format!("record {}", sent + 1))?;
        sent += 1;
        unpolled += 1;
        if sent == 1 && config.rate > 0.0 {
            // Pace from the first acknowledgement, not from the start: a new idempotent
            // producer gets its producer id only when librdkafka's PID timer fires (500 ms),
            // and records handed over meanwhile wait in its queue with their CreateTime
            // already set. Paced from the start, 5,000 records at 10,000/s were up to 500 ms
            // late, the whole p99 of a 20 s latency run.
            wait_for_first_delivery(&producer, &tally, stop);
            schedule = Schedule::new(Instant::now(), config.rate).after(1);
        }
        if unpolled == 256 || served.elapsed() >= Duration::from_millis(100) {
            // Serve acknowledgements and re-sends now and then, not per record.
            unpolled = 0;
            served = Instant::now();
            producer.poll(Duration::ZERO);
            replace_if_fatal(&mut producer, config, &tally)?;
            resend_due(&producer, &tally, &config.topic)?;
            bar.set_position(sent);
        }
    }
    producer.poll(Duration::ZERO);
    bar.set_position(sent);
    bar.set_message("flushing");
    let deadline = Instant::now() + config.flush_timeout;
    loop {
        replace_if_fatal(&mut producer, config, &tally)?;
        resend_due(&producer, &tally, &config.topic)?;
        let waiting = tally.resends().len();
        if producer.in_flight_count() == 0 && waiting == 0 {
            break;
        }
        if Instant::now() >= deadline {
            log::error!(
                "{} records still unacknowledged and {waiting} awaiting a re-send after {:?}",
                producer.in_flight_count(),
                config.flush_timeout
            );
            break;
        }
        producer.poll(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    let resent = tally.resent.load(Ordering::Relaxed);
    if resent > 0 {
        log::warn!("{resent} records were sent again after a failed delivery");
    }
    let summary = Summary {
        sent,
        acknowledged,
        failed: sent - acknowledged.min(sent),
        seconds: started.elapsed().as_secs_f64(),
    };
    if summary.failed > 0 {
        let first = tally
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log::error!(
            "{} of {sent} records were not acknowledged{}",
            summary.failed,
            first
                .as_ref()
                .map_or(String::new(), |error| format!(" (first failure: {error})"))
        );
    }
    Ok(summary)
}

/// Writes the configured records to `out`, one per line, until they run out or `stop` is set.
pub fn print(config: &Config, out: &mut dyn std::io::Write, stop: &AtomicBool) -> Result<Summary> {
    let started = Instant::now();
    let mut sent = 0u64;
    for outgoing in config.records() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        out.write_all(&outgoing.payload)
            .and_then(|()| out.write_all(b"\n"))
            .context("cannot write a record")?;
        sent += 1;
    }
    out.flush().context("cannot write the records")?;
    Ok(Summary {
        sent,
        acknowledged: sent,
        failed: 0,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Serves the producer's events until the first record is acknowledged, fails, awaits a
/// re-send, or 10 s pass (then pacing starts anyway), or `stop` is set.
fn wait_for_first_delivery(producer: &Sender, tally: &Tally, stop: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while producer.in_flight_count() > 0
        && tally.acknowledged.load(Ordering::Relaxed) == 0
        && tally.resends().is_empty()
        && Instant::now() < deadline
        && !stop.load(Ordering::Relaxed)
    {
        producer.poll(Duration::from_millis(1));
    }
}

/// Serves the producer's events until `due`, in slices short enough to see `stop` within
/// 100 ms; false if stopped.
fn wait_until(producer: &Sender, due: Instant, stop: &AtomicBool) -> bool {
    loop {
        let now = Instant::now();
        if now >= due {
            return true;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let slice = (due - now).min(Duration::from_millis(100));
        // Serve acknowledgements that arrived, then sleep: poll() with a timeout would return
        // at the first event and spin.
        producer.poll(Duration::ZERO);
        std::thread::sleep(slice);
    }
}

fn progress_bar(config: &Config) -> ProgressBar {
    let bar = match config.total() {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    if !config.progress || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template = match config.total() {
        Some(_) => "{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
        None => "{spinner} {msg} {pos} records ({per_sec})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("sending to {}", config.topic));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_records_by_the_rate_without_drift() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 100.0);
        assert_eq!(schedule.due(0), Some(start));
        assert_eq!(schedule.due(1), Some(start + Duration::from_millis(10)));
        assert_eq!(schedule.due(1000), Some(start + Duration::from_secs(10)));
        assert_eq!(Schedule::new(start, 0.0).due(5), None, "0 = unpaced");
        let later = start + Duration::from_secs(1);
        let resumed = Schedule::new(later, 100.0).after(1);
        assert_eq!(resumed.due(1), Some(later), "record 1 due at the restart");
        assert_eq!(resumed.due(2), Some(later + Duration::from_millis(10)));
    }

    #[test]
    fn failed_records_are_sent_again_after_growing_pauses_unless_hopeless() {
        assert_eq!(resend_pause(1), Duration::from_secs(1));
        assert_eq!(resend_pause(2), Duration::from_secs(2));
        assert_eq!(resend_pause(4), Duration::from_secs(8));
        assert_eq!(resend_pause(9), Duration::from_secs(10), "capped");
        assert!(
            !is_permanent(RDKafkaErrorCode::Unknown),
            "Tansu's answer after a restart"
        );
        assert!(!is_permanent(RDKafkaErrorCode::OutOfOrderSequenceNumber));
        assert!(!is_permanent(RDKafkaErrorCode::UnknownProducerId));
        assert!(!is_permanent(RDKafkaErrorCode::Fatal));
        assert!(is_permanent(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(is_permanent(RDKafkaErrorCode::TopicAuthorizationFailed));
    }

    #[test]
    fn records_the_broker_refuses_are_sent_again_until_acknowledged() {
        use clap::Parser;
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("refused", 1, 1).unwrap();
        // An error librdkafka does not retry by itself: without re-sends these records fail.
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN; 2],
        );
        let brokers = cluster.bootstrap_servers();
        let cli = crate::Cli::parse_from([
            "generator",
            "--topic",
            "refused",
            "--count",
            "300",
            "--rate",
            "0",
            "--brokers",
            &brokers,
        ]);
        let config = Config::from_cli(&cli).unwrap();
        let summary = run(&config, &AtomicBool::new(false)).unwrap();
        assert_eq!(
            (summary.sent, summary.acknowledged, summary.failed),
            (300, 300, 0)
        );
    }

    #[test]
    fn the_summary_line_has_the_agreed_shape() {
        let summary = Summary {
            sent: 10,
            acknowledged: 8,
            failed: 2,
            seconds: 2.0,
        };
        assert_eq!(
            summary.to_string(),
            "generator: sent=10 acknowledged=8 failed=2 seconds=2.0 rate=4.0/s"
        );
    }
}
