//! The accounting harness: a seeded stream of ids `0..N−1` flows through detectors while one
//! scenario disturbs it (a detector killed, detectors added and removed, the broker restarted,
//! the broker down for 10 s); at the end every record is accounted for. The anomalies the
//! detectors must find are known in advance from offline scoring with the same model, so the
//! anomalies and dead-letter topics give, per scenario: expected, found, lost, unexpected and
//! duplicated anomalies, and the transactions topic gives missing and duplicated records.
//!
//! The harness owns its broker (a Tansu process with sqlite storage on a free port), because
//! two scenarios kill it. It points `$KAFKA_BOOTSTRAP` at that broker, so [`Pipeline`],
//! [`read_topic`] and every child process use it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{read_topic, run_ok, tally, unique, wait_until, workspace_bin, Guard, Received};

use crate::Pipeline;

mod broker;
mod per_key;

pub use broker::Broker;
pub use per_key::{Stream, PER_KEY_FEATURES};

/// A disturbance applied while the stream flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Two detectors; one is killed with SIGKILL and a new one started.
    DetectorKilled,
    /// One detector; a second joins (rebalance), then the first stops with SIGTERM (rebalance).
    DetectorsAddedAndRemoved,
    /// Two detectors; the broker is killed with SIGKILL and started again at once.
    BrokerRestarted,
    /// Two detectors; the broker is killed, and started again 10 s later.
    BrokerDown10s,
}

impl Scenario {
    /// Every scenario, in the order the table lists them.
    pub const ALL: [Scenario; 4] = [
        Scenario::DetectorKilled,
        Scenario::DetectorsAddedAndRemoved,
        Scenario::BrokerRestarted,
        Scenario::BrokerDown10s,
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::DetectorKilled => "kill -9 one of two detectors, start another",
            Scenario::DetectorsAddedAndRemoved => "add a detector, then stop one (rebalances)",
            Scenario::BrokerRestarted => "broker killed and restarted (sqlite)",
            Scenario::BrokerDown10s => "broker down for 10 s",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Scenario::DetectorKilled => "acct-kill",
            Scenario::DetectorsAddedAndRemoved => "acct-rebalance",
            Scenario::BrokerRestarted => "acct-restart",
            Scenario::BrokerDown10s => "acct-down",
        }
    }
}

/// How big and how fast the stream is.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Records per scenario (ids `0..records`).
    pub records: u64,
    /// Records per second: slow enough that the disturbance comes mid-stream.
    pub rate: f64,
    /// Seed of the synthetic stream.
    pub seed: u64,
    /// Where the broker's database and every process's log go.
    pub work_dir: PathBuf,
    /// What flows: the synthetic stream, or card payments through a model with per-key
    /// features.
    pub stream: Stream,
}

/// What one scenario delivered.
#[derive(Debug, Clone)]
pub struct Account {
    /// The scenario.
    pub scenario: Scenario,
    /// Anomalies offline scoring flags.
    pub expected: usize,
    /// Distinct ids in the anomalies topic.
    pub found: usize,
    /// Expected ids in neither the anomalies nor the dead-letter topic although the group has
    /// committed past their record: what at-least-once forbids.
    pub lost: usize,
    /// Expected ids in neither topic whose record the group has not committed past: waiting
    /// in the topic for a detector to be assigned its partition (Tansu's stuck group).
    pub pending: usize,
    /// Ids in the anomalies topic that offline scoring does not flag.
    pub unexpected: usize,
    /// Anomaly records beyond the first for their id.
    pub duplicates: usize,
    /// Expected anomalies that came only after the detectors were stopped and one was started
    /// again (0 unless the group left a partition unassigned: see [`run_scenario`]).
    pub after_restart: usize,
    /// Records in the dead-letter topic.
    pub dead_letters: usize,
    /// Per-key streams: anomaly records whose `features` were compared with the offline
    /// computation, and of those, how many differ in any bit.
    pub features_checked: usize,
    /// See `features_checked`.
    pub features_differ: usize,
    /// Ids `0..N` missing from the transactions topic.
    pub transactions_missing: usize,
    /// Transaction records beyond the first for their id.
    pub transactions_duplicated: usize,
    /// Whether the generator was still sending when the disturbance came.
    pub mid_stream: bool,
    /// The generator's summary line.
    pub generator: String,
    /// Each detector's summary line, or how it ended without one.
    pub detectors: Vec<String>,
    /// Wall-clock seconds of the scenario, model training included.
    pub seconds: f64,
}

impl Account {
    /// Asserts what every accounting run must show, whatever its stream: the disturbance hit
    /// mid-stream, the generator delivered all `records`, no input record missing, no expected
    /// anomaly lost, none unexpected, nothing left unread (except where Tansu 0.6.0 assigned a
    /// killed member's partition to nobody: README, Known limits), and every detector the
    /// harness did not kill ended cleanly with its summary.
    pub fn assert_accounted(&self, records: u64) {
        let name = self.scenario.name();
        assert!(
            self.mid_stream,
            "{name}: the stream ended before the disturbance"
        );
        assert!(
            self.generator
                .contains(&format!("acknowledged={records} failed=0")),
            "{name}: the generator lost records: {}",
            self.generator
        );
        assert_eq!(self.transactions_missing, 0, "{name}: records missing");
        assert_eq!(self.lost, 0, "{name}: expected anomalies lost");
        if self.scenario == Scenario::DetectorKilled {
            if self.pending > 0 {
                println!(
                    "{name}: {} expected anomalies wait in a partition Tansu assigned to nobody",
                    self.pending
                );
            }
        } else {
            assert_eq!(self.pending, 0, "{name}: records left unread");
        }
        assert_eq!(
            self.unexpected, 0,
            "{name}: anomalies offline scoring does not flag"
        );
        let killed = usize::from(self.scenario == Scenario::DetectorKilled);
        let unclean: Vec<_> = self
            .detectors
            .iter()
            .filter(|line| !line.contains(": detector: consumed="))
            .collect();
        assert_eq!(unclean.len(), killed, "{name}: {unclean:?}");
    }
}

/// The accounts as a Markdown table.
pub struct Table<'a>(pub &'a [Account]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| scenario | expected | found | lost | unexpected | duplicates | found after a \
             restart | not yet read | dead letters | features checked | features differ | \
             transactions missing | transactions duplicated | seconds |"
        )?;
        writeln!(
            f,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for a in self.0 {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                a.scenario.name(),
                a.expected,
                a.found,
                a.lost,
                a.unexpected,
                a.duplicates,
                a.after_restart,
                a.pending,
                a.dead_letters,
                a.features_checked,
                a.features_differ,
                a.transactions_missing,
                a.transactions_duplicated,
                a.seconds
            )?;
        }
        Ok(())
    }
}

/// A detector process and its log.
struct Detector {
    name: String,
    process: Guard,
    log: PathBuf,
}

impl Detector {
    /// Stops it with SIGTERM and returns its summary line (or how it ended).
    fn stop(mut self) -> String {
        run_ok(Command::new("kill").args(["-TERM", &self.process.0.id().to_string()]));
        self.ended(Duration::from_secs(30))
    }

    /// Waits up to `timeout` for it to exit (killing it then), and returns its summary line,
    /// or how it ended without one.
    fn ended(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.process.0.try_wait() {
                Ok(Some(status)) => break Some(status),
                _ if Instant::now() >= deadline => break None,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let Some(status) = status else {
            let _ = self.process.0.kill();
            return format!("{}: did not exit within {timeout:?}; killed", self.name);
        };
        let mut stdout = String::new();
        if let Some(out) = self.process.0.stdout.as_mut() {
            let _ = out.read_to_string(&mut stdout);
        }
        match stdout.lines().find(|line| line.starts_with("detector:")) {
            Some(summary) if status.success() => format!("{}: {summary}", self.name),
            summary => format!(
                "{}: exited {status} {}; log {}",
                self.name,
                summary.unwrap_or("without a summary"),
                self.log.display()
            ),
        }
    }
}

/// One scenario's pipeline, detectors and generator.
struct Run<'a> {
    pipeline: Pipeline,
    group: String,
    settings: &'a Settings,
    scenario: Scenario,
    detectors: Vec<Detector>,
    summaries: Vec<String>,
    started: u32,
}

impl Run<'_> {
    fn start_detector(&mut self) {
        self.started += 1;
        let name = format!("detector-{}", self.started);
        let log = self
            .settings
            .work_dir
            .join(format!("{}-{name}.log", self.scenario.slug()));
        let process = self
            .pipeline
            .detector(&self.group)
            // librdkafka's default session timeout (45 s): a member killed with SIGKILL keeps
            // its partitions that long. With 10 s, Tansu 0.6.0 ended the rebalance with no
            // partition assigned to anyone and stayed so (seen in this harness).
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("detector log"))
            .spawn()
            .expect("start a detector");
        println!("  {name} started (pid {})", process.id());
        self.detectors.push(Detector {
            name,
            process: Guard(process),
            log,
        });
    }

    /// Waits until the anomalies topic holds `count` records.
    fn wait_for_anomalies(&self, count: usize) {
        let got = read_topic(&self.pipeline.anomalies, Duration::from_secs(180), |got| {
            got.len() >= count
        });
        assert!(
            got.len() >= count,
            "{}: only {} of the {count} anomalies awaited arrived within 180 s",
            self.scenario.name(),
            got.len()
        );
    }
}

/// Reads `topic` until `complete` holds and nothing new came for `quiet`, or nothing new came
/// for `stall` (the caller then finds what is missing), or `timeout` passes.
fn read_settled(
    topic: &str,
    mut complete: impl FnMut(&[Received]) -> bool,
    quiet: Duration,
    stall: Duration,
    timeout: Duration,
) -> Vec<Received> {
    let mut seen = 0;
    let mut last_growth = Instant::now();
    read_topic(topic, timeout, |got| {
        if got.len() > seen {
            seen = got.len();
            last_growth = Instant::now();
        }
        let idle = last_growth.elapsed();
        (idle >= quiet && complete(got)) || idle >= stall
    })
}

/// A completion test for [`read_settled`]: true once every id in `wanted` was seen as a key.
/// It looks at each record once (topics hold up to N records).
fn covers(wanted: &BTreeSet<String>) -> impl FnMut(&[Received]) -> bool + '_ {
    let mut missing: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut looked_at = 0;
    move |got| {
        for record in &got[looked_at..] {
            if let Some(key) = &record.key {
                missing.remove(key.as_str());
            }
        }
        looked_at = got.len();
        missing.is_empty()
    }
}

/// The ids (record keys) of `records`, as text.
fn keys(records: &[Received]) -> Vec<String> {
    records.iter().filter_map(|r| r.key.clone()).collect()
}

/// Runs one scenario on `broker` (which it may kill and restart) and accounts for its records.
pub fn run_scenario(broker: &mut Broker, scenario: Scenario, settings: &Settings) -> Account {
    let started = Instant::now();
    println!("{}:", scenario.name());
    let stream = settings.stream;
    let slug = match stream {
        Stream::Synthetic => scenario.slug().to_string(),
        Stream::PerKey => format!("{}-keyed", scenario.slug()),
    };
    let pipeline = Pipeline::new(&slug, 3);
    let group = unique(&format!("{slug}-group"));
    let offline = match stream {
        Stream::Synthetic => per_key::synthetic(&pipeline, settings.seed, settings.records),
        Stream::PerKey => per_key::per_key(
            &pipeline,
            &group,
            settings.seed,
            settings.records,
            &settings.work_dir,
        ),
    };
    let expected = &offline.expected;
    let mut run = Run {
        pipeline,
        group,
        settings,
        scenario,
        detectors: Vec::new(),
        summaries: Vec::new(),
        started: 0,
    };
    let first_detectors = match scenario {
        Scenario::DetectorsAddedAndRemoved => 1,
        _ => 2,
    };
    for _ in 0..first_detectors {
        run.start_detector();
    }

    let generator_log = settings
        .work_dir
        .join(format!("{}-generator.log", scenario.slug()));
    let mut generator = Guard(
        Command::new(workspace_bin("generator"))
            .args(["--topic", &run.pipeline.transactions])
            .args(stream.generator_args())
            .args(["--count", &settings.records.to_string()])
            .args(["--rate", &settings.rate.to_string()])
            .args(["--seed", &settings.seed.to_string(), "--first-id", "0"])
            // Long enough for everything queued during a broker outage to be acknowledged.
            .args(["--flush-timeout", "300"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&generator_log).expect("generator log"))
            .spawn()
            .expect("start the generator"),
    );
    let sending = |generator: &mut Guard| matches!(generator.0.try_wait(), Ok(None));

    let part = |fraction: f64| (expected.len() as f64 * fraction) as usize;
    let mid_stream = match scenario {
        Scenario::DetectorKilled => {
            run.wait_for_anomalies(part(1.0 / 3.0));
            let mid_stream = sending(&mut generator);
            let mut killed = run.detectors.remove(0);
            let _ = killed.process.0.kill();
            run.summaries.push(killed.ended(Duration::from_secs(10)));
            println!("  {} killed (SIGKILL)", killed.name);
            run.start_detector();
            mid_stream
        }
        Scenario::DetectorsAddedAndRemoved => {
            run.wait_for_anomalies(part(0.25));
            let added_mid_stream = sending(&mut generator);
            run.start_detector();
            run.wait_for_anomalies(part(0.5));
            let removed_mid_stream = sending(&mut generator);
            let first = run.detectors.remove(0);
            println!("  {} stopping (SIGTERM)", first.name);
            run.summaries.push(first.stop());
            added_mid_stream && removed_mid_stream
        }
        Scenario::BrokerRestarted | Scenario::BrokerDown10s => {
            run.wait_for_anomalies(part(1.0 / 3.0));
            let mid_stream = sending(&mut generator);
            broker.kill();
            println!("  broker killed (SIGKILL)");
            if scenario == Scenario::BrokerDown10s {
                // The outage itself is the point here, not a stand-in for a condition.
                std::thread::sleep(Duration::from_secs(10));
            }
            broker.start_again();
            mid_stream
        }
    };

    wait_until(Duration::from_secs(600), "the generator to finish", || {
        !sending(&mut generator)
    });
    let mut generator_summary = String::new();
    if let Some(out) = generator.0.stdout.as_mut() {
        let _ = out.read_to_string(&mut generator_summary);
    }
    let generator_summary = generator_summary.trim().to_string();
    println!("  {generator_summary}");

    // Let the detectors finish: every expected anomaly in, or nothing new for a minute.
    let anomalies = &run.pipeline.anomalies.clone();
    let before_stop: BTreeSet<String> = keys(&read_settled(
        anomalies,
        covers(expected),
        Duration::ZERO,
        Duration::from_secs(60),
        Duration::from_secs(600),
    ))
    .into_iter()
    .collect();
    for detector in std::mem::take(&mut run.detectors) {
        run.summaries.push(detector.stop());
    }
    // Tansu 0.6.0 can leave a killed member's partition assigned to nobody (README, Known
    // limits): its records wait, uncommitted, in the topic. What an operator does then, stop
    // the detectors and start one, is done here, and what only came after it is counted in
    // its own column rather than hidden.
    let waiting = expected.difference(&before_stop).count();
    if waiting > 0 {
        println!("  {waiting} expected anomalies missing with the detectors stopped: starting one");
        run.start_detector();
        read_settled(
            anomalies,
            covers(expected),
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_secs(300),
        );
        for detector in std::mem::take(&mut run.detectors) {
            run.summaries.push(detector.stop());
        }
    }
    for summary in &run.summaries {
        println!("  {summary}");
    }

    // Read everything back now that nothing writes any more.
    let all_ids: BTreeSet<String> = (0..settings.records).map(|id| id.to_string()).collect();
    let transaction_records = read_settled(
        &run.pipeline.transactions,
        covers(&all_ids),
        Duration::from_secs(1),
        Duration::from_secs(15),
        Duration::from_secs(300),
    );
    // Where each id's (first) record is, and how far the group has committed.
    let mut position: HashMap<String, (i32, i64)> = HashMap::new();
    let transactions: Vec<String> = transaction_records
        .iter()
        .filter_map(|record| stream.id_of(record))
        .collect();
    for (record, id) in transaction_records.iter().zip(&transactions) {
        position
            .entry(id.clone())
            .or_insert((record.partition, record.offset));
    }
    let committed = committed_offsets(&run.group, &run.pipeline.transactions);
    let anomaly_records = read_settled(
        anomalies,
        covers(expected),
        Duration::from_secs(2),
        Duration::from_secs(15),
        Duration::from_secs(300),
    );
    let (features_checked, features_differ) = offline.check_features(&anomaly_records);
    let found = keys(&anomaly_records);
    let dead_letters = read_settled(
        &run.pipeline.dead_letters,
        |_| true,
        Duration::from_secs(2),
        Duration::from_secs(2),
        Duration::from_secs(60),
    );
    let dead_letter_ids: BTreeSet<String> = dead_letters
        .iter()
        .filter_map(|r| stream.dead_letter_id(&schema::DeadLetter::decode(&r.value).ok()?))
        .collect();

    let transaction_counts = tally(transactions);
    let counts = tally(found);
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !found.contains(*id) && !dead_letter_ids.contains(*id))
        .collect();
    // Not committed past: the record waits in the topic for whoever gets its partition.
    let waiting = |id: &&String| {
        position.get(*id).is_some_and(|(partition, offset)| {
            committed.get(partition).is_none_or(|&done| *offset >= done)
        })
    };
    let account = Account {
        scenario,
        expected: expected.len(),
        found: found.len(),
        lost: missing.iter().filter(|id| !waiting(id)).count(),
        pending: missing.iter().filter(|id| waiting(id)).count(),
        unexpected: found.difference(expected).count(),
        duplicates: counts.values().map(|n| n - 1).sum(),
        after_restart: expected
            .iter()
            .filter(|id| found.contains(*id) && !before_stop.contains(*id))
            .count(),
        dead_letters: dead_letters.len(),
        features_checked,
        features_differ,
        transactions_missing: all_ids
            .iter()
            .filter(|id| !transaction_counts.contains_key(*id))
            .count(),
        transactions_duplicated: transaction_counts.values().map(|n| n - 1).sum(),
        mid_stream,
        generator: generator_summary,
        detectors: run.summaries,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!(
        "  expected {} found {} lost {} unexpected {} duplicates {} after a restart {} not yet \
         read {} dead letters {} features checked {} differ {} transactions missing {} \
         duplicated {} ({:.0} s)",
        account.expected,
        account.found,
        account.lost,
        account.unexpected,
        account.duplicates,
        account.after_restart,
        account.pending,
        account.dead_letters,
        account.features_checked,
        account.features_differ,
        account.transactions_missing,
        account.transactions_duplicated,
        account.seconds
    );
    account
}

/// The group's committed offset per partition of `topic` (partitions without one left out).
fn committed_offsets(group: &str, topic: &str) -> HashMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = match bus::ClientSettings::new(testkit::bootstrap())
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
    {
        Ok(consumer) => consumer,
        Err(error) => panic!("a consumer to read {group}'s offsets: {error}"),
    };
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut partitions = rdkafka::TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            rdkafka::Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// Starts a broker in `settings.work_dir`, points `$KAFKA_BOOTSTRAP` at it, and runs the
/// scenarios one after the other, each on topics of its own.
pub fn run(scenarios: &[Scenario], settings: &Settings) -> Vec<Account> {
    let mut broker = Broker::start(&settings.work_dir.join("broker"));
    // Pipeline, read_topic and the child processes all find the broker here.
    std::env::set_var(bus::settings::BOOTSTRAP_ENV, broker.address());
    scenarios
        .iter()
        .map(|&scenario| run_scenario(&mut broker, scenario, settings))
        .collect()
}
