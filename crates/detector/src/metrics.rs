//! Prometheus metrics (`--metrics-addr`): what the detector has done, served as OpenMetrics
//! text at `http://ADDR/metrics` by a small HTTP thread.
//!
//! Per partition, `detector_records_consumed_total` = `detector_records_scored_total` +
//! `detector_records_dead_lettered_total` + `detector_records_replayed_total` (records a
//! model with per-key features had already applied before a restart), so anyone can see that
//! no record went missing.
//! Encoding is `prometheus-client` (the Prometheus project's Rust client); the server is a
//! plain `TcpListener`, as one GET path needs no HTTP framework.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::output::{Destination, Form};
use crate::scoring::{BatchOutcome, Model};

type Labels = Vec<(String, String)>;

/// The detector's metrics; cheap to clone (shared counters).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    consumed: Family<Labels, Counter>,
    scored: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    replayed: Family<Labels, Counter>,
    key_differs: Counter,
    state_keys: Gauge,
    state_bytes: Gauge,
    state_restores: Counter,
    state_restored_keys: Counter,
    state_restore_seconds: Histogram,
    state_writes: Counter,
    state_skipped_batches: Counter,
    dead_letters: Family<Labels, Counter>,
    anomalies: Counter,
    scoring_seconds: Histogram,
    end_to_end_seconds: Histogram,
    model: Family<Labels, Gauge>,
    model_written: Gauge,
    model_age: Gauge,
    rebalances: Counter,
    transactions: Family<Labels, Counter>,
    in_flight: Gauge,
    reduced: Counter,
    refused: Family<Labels, Counter>,
    /// The model id shown, to notice a reload.
    shown_model: Arc<std::sync::Mutex<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Arc::new(Registry::default()),
            consumed: Family::default(),
            scored: Family::default(),
            dead_lettered: Family::default(),
            replayed: Family::default(),
            key_differs: Counter::default(),
            state_keys: Gauge::default(),
            state_bytes: Gauge::default(),
            state_restores: Counter::default(),
            state_restored_keys: Counter::default(),
            state_restore_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            state_writes: Counter::default(),
            state_skipped_batches: Counter::default(),
            dead_letters: Family::default(),
            anomalies: Counter::default(),
            scoring_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            end_to_end_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            model: Family::default(),
            model_written: Gauge::default(),
            model_age: Gauge::default(),
            rebalances: Counter::default(),
            transactions: Family::default(),
            in_flight: Gauge::default(),
            reduced: Counter::default(),
            refused: Family::default(),
            shown_model: Arc::default(),
        };
        registry.register(
            "detector_records_consumed",
            "Records read from the input topic, by partition",
            metrics.consumed.clone(),
        );
        registry.register(
            "detector_records_scored",
            "Records scored, by partition",
            metrics.scored.clone(),
        );
        registry.register(
            "detector_records_dead_lettered",
            "Records sent to the dead-letter topic, by partition",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "detector_records_replayed",
            "Records already applied to their key's state (per-key features) before a restart \
             or rebalance, by partition: scored before, no output now",
            metrics.replayed.clone(),
        );
        registry.register(
            "detector_records_key_differs",
            "Records whose Kafka key is not their key field's value (per-key features are \
             exact only when the input is partitioned by the key)",
            metrics.key_differs.clone(),
        );
        registry.register(
            "detector_state_keys",
            "Keys whose per-key state the detector holds",
            metrics.state_keys.clone(),
        );
        registry.register(
            "detector_state_bytes",
            "Estimated memory of the per-key states held",
            metrics.state_bytes.clone(),
        );
        registry.register(
            "detector_state_restores",
            "Partitions whose per-key states were restored from the changelog",
            metrics.state_restores.clone(),
        );
        registry.register(
            "detector_state_restored_keys",
            "Keys restored from the changelog",
            metrics.state_restored_keys.clone(),
        );
        registry.register(
            "detector_state_restore_seconds",
            "Time to restore one partition's per-key states from the changelog",
            metrics.state_restore_seconds.clone(),
        );
        registry.register(
            "detector_state_writes",
            "Per-key state updates (and tombstones) acknowledged by the changelog",
            metrics.state_writes.clone(),
        );
        registry.register(
            "detector_state_skipped_batches",
            "Batches read before a rebalance: no state written, no offset stored (read again)",
            metrics.state_skipped_batches.clone(),
        );
        registry.register(
            "detector_dead_letters",
            "Dead letters by reason",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "detector_anomalies",
            "Anomalies written",
            metrics.anomalies.clone(),
        );
        registry.register(
            "detector_scoring_seconds",
            "Time to decode, check and score one batch",
            metrics.scoring_seconds.clone(),
        );
        registry.register(
            "detector_end_to_end_seconds",
            "From a record's Kafka timestamp to its verdict (scored or dead-lettered)",
            metrics.end_to_end_seconds.clone(),
        );
        registry.register(
            "detector_model",
            "The model in use (1), by id",
            metrics.model.clone(),
        );
        registry.register(
            "detector_model_written_timestamp_seconds",
            "When the model file in use was written (Unix time)",
            metrics.model_written.clone(),
        );
        registry.register(
            "detector_model_age_seconds",
            "Seconds since the model file in use was written",
            metrics.model_age.clone(),
        );
        registry.register(
            "detector_rebalances",
            "Partition assignments and revocations seen",
            metrics.rebalances.clone(),
        );
        registry.register(
            "detector_transactions",
            "With --exactly-once: transactions by outcome (committed, aborted)",
            metrics.transactions.clone(),
        );
        registry.register(
            "detector_batches_in_flight",
            "Batches whose outputs await the broker's acknowledgement",
            metrics.in_flight.clone(),
        );
        registry.register(
            "detector_outputs_reduced",
            "Outputs reduced before sending because they would not fit their topic",
            metrics.reduced.clone(),
        );
        registry.register(
            "detector_outputs_refused",
            "Outputs the broker or librdkafka refused for themselves, by topic and form; each \
             was sent again in a smaller form",
            metrics.refused.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// A batch processed (or, with `--exactly-once`, committed): its counts by partition and
    /// reason, how long scoring took, and each record's age at its verdict.
    pub fn batch(&self, outcome: &BatchOutcome, scoring: Duration, record_timestamps_ms: &[i64]) {
        for (partition, counts) in &outcome.per_partition {
            let labels = vec![("partition".to_string(), partition.to_string())];
            self.consumed.get_or_create(&labels).inc_by(counts.consumed);
            self.scored.get_or_create(&labels).inc_by(counts.scored);
            self.dead_lettered
                .get_or_create(&labels)
                .inc_by(counts.dead_lettered);
            if outcome.per_key {
                self.replayed.get_or_create(&labels).inc_by(counts.replayed);
            }
        }
        for (reason, count) in &outcome.reasons {
            self.dead_letters
                .get_or_create(&vec![("reason".to_string(), reason.to_string())])
                .inc_by(*count);
        }
        self.anomalies.inc_by(outcome.anomalies);
        self.key_differs.inc_by(outcome.key_differs);
        self.reduced.inc_by(outcome.reduced);
        self.scoring_seconds.observe(scoring.as_secs_f64());
        let now_ms = unix_ms(SystemTime::now());
        for &timestamp in record_timestamps_ms {
            if timestamp > 0 {
                self.end_to_end_seconds
                    .observe((now_ms - timestamp).max(0) as f64 / 1000.0);
            }
        }
    }

    /// The per-key states held: keys and estimated bytes.
    pub fn state_held(&self, keys: usize, bytes: usize) {
        self.state_keys.set(keys as i64);
        self.state_bytes.set(bytes as i64);
    }

    /// One partition's states restored from the changelog.
    pub fn state_restored(&self, keys: usize, elapsed: Duration) {
        self.state_restores.inc();
        self.state_restored_keys.inc_by(keys as u64);
        self.state_restore_seconds.observe(elapsed.as_secs_f64());
    }

    /// State updates acknowledged by the changelog.
    pub fn state_written(&self, updates: usize) {
        self.state_writes.inc_by(updates as u64);
    }

    /// A batch read before a rebalance: neither its state nor its offsets were kept.
    pub fn state_skipped(&self) {
        self.state_skipped_batches.inc();
    }

    /// An output refused for itself (to be sent again smaller).
    pub fn refused(&self, destination: Destination, form: Form) {
        let topic = match destination {
            Destination::Anomalies => "anomalies",
            Destination::DeadLetters => "dead_letters",
        };
        let form = match form {
            Form::Whole => "whole",
            Form::Reduced => "reduced",
            Form::Minimal => "minimal",
        };
        self.refused
            .get_or_create(&vec![
                ("topic".to_string(), topic.to_string()),
                ("form".to_string(), form.to_string()),
            ])
            .inc();
    }

    /// Outputs refused so far (all topics and forms).
    pub fn refused_total(&self) -> u64 {
        let mut total = 0;
        for topic in ["anomalies", "dead_letters"] {
            for form in ["whole", "reduced", "minimal"] {
                let labels = vec![
                    ("topic".to_string(), topic.to_string()),
                    ("form".to_string(), form.to_string()),
                ];
                total += self.refused.get_or_create(&labels).get();
            }
        }
        total
    }

    /// A transaction ended (`committed` or `aborted`).
    pub fn transaction(&self, outcome: &str) {
        self.transactions
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
    }

    /// Between batches: the model in use (and its file's age), rebalances so far, batches in
    /// flight.
    pub fn state(
        &self,
        model: &Model,
        model_path: Option<&Path>,
        rebalances: u64,
        in_flight: usize,
    ) {
        if let Ok(mut shown) = self.shown_model.lock() {
            if *shown != model.id {
                self.model.clear();
                self.model
                    .get_or_create(&vec![("model".to_string(), model.id.clone())])
                    .set(1);
                let written = model_path
                    .and_then(|path| std::fs::metadata(path).ok())
                    .and_then(|metadata| metadata.modified().ok())
                    .map_or(0, |time| unix_ms(time) / 1000);
                self.model_written.set(written);
                shown.clone_from(&model.id);
            }
        }
        let written = self.model_written.get();
        if written > 0 {
            self.model_age
                .set(unix_ms(SystemTime::now()) / 1000 - written);
        }
        let seen = self.rebalances.get();
        self.rebalances.inc_by(rebalances.saturating_sub(seen));
        self.in_flight.set(in_flight as i64);
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Serves `GET /metrics` on `address` from a thread of its own; fails at once when the
    /// address cannot be bound. Returns the bound address (port 0 picks a free one).
    pub fn serve(&self, address: &str) -> Result<SocketAddr> {
        let listener = TcpListener::bind(address)
            .with_context(|| format!("--metrics-addr: cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if let Err(error) = metrics.answer(stream) {
                        log::debug!("metrics request: {error}");
                    }
                }
            })
            .context("cannot start the metrics thread")?;
        log::info!("metrics at http://{bound}/metrics");
        Ok(bound)
    }

    /// One request: the metrics for `GET /metrics`, 404 for any other path.
    fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                break;
            }
            request.extend_from_slice(&chunk[..read]);
        }
        let line = String::from_utf8_lossy(&request);
        let mut words = line.split_whitespace();
        let (method, path) = (words.next(), words.next());
        let (status, body) = match (method, path) {
            (Some("GET"), Some("/metrics")) => ("200 OK", self.render()),
            _ => ("404 Not Found", "not found; try /metrics\n".to_string()),
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; \
             charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::PartitionCounts;
    use std::collections::BTreeMap;

    #[test]
    fn a_batch_shows_up_per_partition_and_reason() {
        let metrics = Metrics::new();
        let outcome = BatchOutcome {
            anomalies: 2,
            reasons: BTreeMap::from([("not_json", 1)]),
            per_partition: BTreeMap::from([(
                3,
                PartitionCounts {
                    consumed: 10,
                    scored: 9,
                    dead_lettered: 1,
                    replayed: 0,
                },
            )]),
            ..BatchOutcome::default()
        };
        metrics.batch(&outcome, Duration::from_micros(300), &[0]);
        let text = metrics.render();
        for line in [
            "detector_records_consumed_total{partition=\"3\"} 10",
            "detector_records_scored_total{partition=\"3\"} 9",
            "detector_records_dead_lettered_total{partition=\"3\"} 1",
            "detector_dead_letters_total{reason=\"not_json\"} 1",
            "detector_anomalies_total 2",
            "detector_scoring_seconds_count 1",
            // A record without a timestamp has no end-to-end latency.
            "detector_end_to_end_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
