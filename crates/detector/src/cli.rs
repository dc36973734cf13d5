//! The command line, as typed: raw values only. [`Config::from_cli`](crate::Config::from_cli)
//! checks them and loads the model.

use std::path::PathBuf;

use clap::Parser;

/// Score transactions from Kafka and write the anomalies.
#[derive(Debug, Clone, Parser)]
#[command(name = "detector", version, about)]
pub struct Cli {
    /// Model file (written by `trainer fit`).
    #[arg(long, default_value = "models/model.bin", value_name = "FILE")]
    pub model: PathBuf,
    /// Consumer group: detectors in one group share the partitions.
    #[arg(long, default_value = schema::topics::DEFAULT_GROUP)]
    pub group: String,
    /// Topic of transactions to score.
    #[arg(long, default_value = schema::topics::TRANSACTIONS)]
    pub input_topic: String,
    /// Topic the anomalies go to.
    #[arg(long, default_value = schema::topics::ANOMALIES)]
    pub output_topic: String,
    /// Topic the records that cannot be scored go to, with the reason.
    #[arg(long, default_value = schema::topics::DEAD_LETTERS)]
    pub dlq_topic: String,
    /// Most records scored together.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Longest wait, in milliseconds, for a batch to fill once its first record is in. 0 (the
    /// default): score what has arrived, without waiting for more; under load batches still
    /// fill, from the records that arrive while earlier batches are scored and sent.
    #[arg(long, default_value_t = 0)]
    pub batch_wait_ms: u64,
    /// Batches whose outputs may await the broker's acknowledgement at once; the next batches
    /// are read and scored meanwhile. Offsets are stored oldest batch first, each only once all
    /// its outputs are acknowledged. 1 = read, score, send, wait, store, one batch at a time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub in_flight_batches: usize,
    /// Records larger than this many bytes are dead letters.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_record_bytes: usize,
    /// Stop (cleanly) after this many records; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub max_records: u64,
    /// Stop (cleanly) after this many seconds without a record; 0 = never. Before the first
    /// record the detector waits at least 30 s (joining a group takes a few).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub idle_exit: f64,
    /// How long to keep retrying a broker that does not answer at start.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub startup_timeout: f64,
    /// Exactly-once: write each batch's anomalies and dead letters and commit its offsets in
    /// one Kafka transaction, so a `read_committed` reader sees every output once even across
    /// crashes. Needs a broker with transactions (Apache Kafka ≥ 2.5); refused at start
    /// otherwise.
    #[arg(long)]
    pub exactly_once: bool,
    /// With --exactly-once: the producer's `transactional.id`. A restart with the same id
    /// aborts the transaction a crash left open at once (otherwise it times out after
    /// `transaction.timeout.ms`). Each running detector needs its own
    /// [default: detector-GROUP-HOSTNAME-PID]
    #[arg(long, value_name = "ID", requires = "exactly_once")]
    pub transactional_id: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: bus::KafkaArgs,
}
