//! The posting thread: takes incidents from a queue of one, waits for the rate limit,
//! posts with retries and backoff, and gives up (counted, logged) past its tries or the
//! deadline set at the stop.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::counters::AlertCounters;
use super::incident::Incident;
use super::limit::{backoff, RateLimiter, MAX_BACKOFF};
use super::options::AlertOptions;

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
pub(super) struct Sender {
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
    /// A sender as `options` say, counting in `counters`; it tries nothing new past
    /// `deadline` once that is set.
    pub(super) fn new(
        options: &AlertOptions,
        counters: Arc<AlertCounters>,
        deadline: Arc<OnceLock<Instant>>,
    ) -> Self {
        Self {
            agent: agent(options.timeout),
            url: options.webhook.clone(),
            tries: options.tries,
            backoff: options.backoff,
            limiter: RateLimiter::new(options.max_per_minute),
            counters,
            deadline,
        }
    }

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

    /// Posts what comes from `waiting` until it is closed.
    pub(super) fn run(mut self, waiting: Receiver<Incident>) {
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
