//! Sending: batched asynchronous producing, paced by a schedule, counted from the broker's
//! acknowledgements.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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

/// The producer's context: librdkafka's logs through `bus` (secrets masked), deliveries
/// counted.
struct Deliveries {
    logging: bus::LoggingContext,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
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
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_failure.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    // One line, not one per record: a broker outage fails thousands at once.
                    log::error!("delivery failed: {error} (further failures are counted)");
                    *first = Some(error.to_string());
                }
            }
        }
    }
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

    /// When record `n` is due (`None`: unpaced, always).
    pub fn due(&self, n: u64) -> Option<Instant> {
        (self.rate > 0.0).then(|| self.started + Duration::from_secs_f64(n as f64 / self.rate))
    }
}

/// Sends the configured records to the configured topic until they run out or `stop` is set,
/// then flushes and counts. Never flushes per record.
pub fn run(config: &Config, stop: &AtomicBool) -> Result<Summary> {
    let context = Deliveries {
        logging: bus::LoggingContext::new(&config.producer),
        acknowledged: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_failure: Mutex::new(None),
    };
    log::info!(
        "producing to {} with {}",
        config.topic,
        bus::redacted(&config.producer)
    );
    let producer: BaseProducer<Deliveries> = config
        .producer
        .create_with_context(context)
        .map_err(|error| bus::creation_error(error, "producer"))?;
    let bar = progress_bar(config);
    let started = Instant::now();
    let schedule = Schedule::new(started, config.rate);
    let mut sent = 0u64;
    let mut unpolled = 0u32;
    for transaction in config.records() {
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
        let key = transaction.key();
        let payload = transaction.encode();
        let mut record = BaseRecord::to(&config.topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // The local queue is full: serve acknowledgements until there is room.
                    record = returned;
                    producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => bail!("cannot send record {key}: {error}"),
            }
        }
        sent += 1;
        unpolled += 1;
        if unpolled == 256 {
            // Serve acknowledgements now and then, not per record.
            unpolled = 0;
            producer.poll(Duration::ZERO);
            bar.set_position(sent);
        }
    }
    producer.poll(Duration::ZERO);
    bar.set_position(sent);
    bar.set_message("flushing");
    if let Err(error) = producer.flush(config.flush_timeout) {
        log::error!(
            "{} records still unacknowledged after {:?}: {error}",
            producer.in_flight_count(),
            config.flush_timeout
        );
    }
    bar.finish_and_clear();
    let context = producer.context();
    let acknowledged = context.acknowledged.load(Ordering::Relaxed);
    let summary = Summary {
        sent,
        acknowledged,
        failed: sent - acknowledged.min(sent),
        seconds: started.elapsed().as_secs_f64(),
    };
    if summary.failed > 0 {
        let first = context
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

/// Serves the producer's events until `due`, in slices short enough to see `stop` within
/// 100 ms; false if stopped.
fn wait_until(producer: &BaseProducer<Deliveries>, due: Instant, stop: &AtomicBool) -> bool {
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
