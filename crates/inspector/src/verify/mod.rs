//! `inspector verify`: the anomalies checked against their source records. Each anomaly's
//! transaction is fetched from the input topic by partition and offset and re-scored with the
//! model the anomaly names (found by id in the models folder); the score must be the same bit
//! for bit, and so must the features and the record's own fields (a reduced anomaly: its
//! size and SHA-256). With one model in use, every transaction of the range is re-scored too,
//! giving the anomalies missing from the output and those that should not be there.
//!
//! Reading is as `tail`'s (partitions assigned, no group joined, nothing committed): the
//! anomalies first (all, or the last `--last N` of each partition), held in memory; then
//! only the input offsets needed, in one pass per partition (module `fetch`).
//!
//! # Layout
//!
//! `mod → fetch, models, anomaly, compare, range, report`; `compare → anomaly, models`;
//! `range → models, report`. [`report`] is the leaf: the counts and their printing.

mod anomaly;
mod compare;
mod fetch;
mod models;
mod range;
pub mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use schema::DecodeLimits;

use crate::cli::VerifyArgs;
use anomaly::{AnomalyRecord, Header};
use models::{Models, Refusal, Rescored};
use range::{keep_first, Inputs, RangeCount, Seen};
pub use report::Report;
use report::{Difference, ModelNotFound};

/// An anomaly record as read: where it is, its bytes, and its header (or why it has none).
struct Stored {
    at: (i32, i64),
    bytes: Vec<u8>,
    header: Result<Header, String>,
}

/// Checks the anomalies of `args.output_topic` against `args.input_topic`; the report says
/// what was found ([`Report::passed`]). An error is a usage or connection problem.
pub fn verify(kafka: &bus::ClientSettings, args: &VerifyArgs) -> Result<Report> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        );
    }
    if args.max_record_bytes == 0 {
        bail!("--max-record-bytes must be at least 1");
    }
    if args.last == Some(0) {
        bail!("--last must be at least 1");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let consumer = fetch::reading_consumer(kafka)?;
    let output = &args.output_topic;
    let input = &args.input_topic;
    let output_marks = watermarks(&consumer, output)?;
    let input_partitions = bus::topic_partitions(&consumer, input)
        .with_context(|| format!("cannot read {input} at {}", kafka.brokers))?;

    // The anomalies.
    let mut wanted = fetch::Wanted::new();
    let mut cut = BTreeMap::new();
    for (&partition, &(low, high)) in &output_marks {
        let start = args.last.map_or(low, |n| {
            high.saturating_sub(i64::try_from(n).unwrap_or(i64::MAX))
                .max(low)
        });
        if start > low {
            cut.insert(partition, start);
        }
        if start < high {
            wanted.insert(partition, vec![(start, high - 1)]);
        }
    }
    let mut stored = Vec::new();
    fetch::read(
        &consumer,
        output,
        &wanted,
        deadline,
        |partition, offset, bytes| {
            stored.push(Stored {
                at: (partition, offset),
                bytes: bytes.to_vec(),
                header: Header::read(bytes),
            });
        },
    )?;
    log::info!("read {} anomalies from {output}", stored.len());
    // Asked after the anomalies were read, so every source they name is below these.
    let input_marks = watermarks_of(&consumer, input, &input_partitions)?;

    let limits = DecodeLimits {
        max_bytes: args.max_record_bytes,
        ..DecodeLimits::default()
    };
    let mut check = Check::new(args, &args.models_dir, limits);
    check.report.checked = stored.len() as u64;
    let mut by_source: HashMap<(i32, i64), Vec<usize>> = HashMap::new();
    let mut seen = Vec::new();
    for (index, anomaly) in stored.iter().enumerate() {
        let header = match &anomaly.header {
            Ok(header) => header,
            Err(why) => {
                check.different(anomaly, None, vec![why.clone()]);
                continue;
            }
        };
        let (partition, offset) = (header.partition, header.offset);
        let Some(&(low, high)) = input_marks.get(&partition) else {
            let why = format!("{input} has no partition {partition}");
            check.different(anomaly, None, vec![why]);
            continue;
        };
        seen.push(Seen {
            anomaly_partition: anomaly.at.0,
            model: header.model.clone(),
            source: (partition, offset),
        });
        if !check.model_found(header) {
            continue;
        }
        if offset < low {
            check.report.source_gone += 1;
        } else if offset >= high {
            let why = format!("{input}/{partition} ends before offset {offset}");
            check.different(anomaly, None, vec![why]);
        } else {
            by_source
                .entry((partition, offset))
                .or_default()
                .push(index);
        }
    }
    check.report.duplicates = duplicates(&seen);

    // The range, when one model is in use.
    let mut range = match range::plan(
        &Inputs {
            seen: &seen,
            input: &input_marks,
            cut: &cut,
            whole_topic: args.from_beginning,
        },
        input,
    ) {
        Ok(plan) => match check.models.get(&plan.model) {
            Some(model) => {
                let threshold = model.forest.threshold();
                let partitions: Vec<i32> = plan.spans.keys().copied().collect();
                let committed = committed(kafka, &args.group, input, &partitions);
                Some(RangeCount::new(plan, threshold, committed, input))
            }
            None => {
                check.report.range.skipped = Some(format!("its model {} is not found", plan.model));
                None
            }
        },
        Err(why) => {
            check.report.range.skipped = Some(why);
            None
        }
    };

    // The sources, and the range, in one pass.
    let mut wanted = fetch::Wanted::new();
    for &(partition, offset) in by_source.keys() {
        wanted.entry(partition).or_default().push((offset, offset));
    }
    if let Some(range) = &range {
        for (partition, span) in range.spans() {
            wanted.entry(partition).or_default().push(span);
        }
    }
    let range_model = range.as_ref().map(|range| range.model().to_string());
    let mut visited = HashSet::new();
    fetch::read(
        &consumer,
        input,
        &wanted,
        deadline,
        |partition, offset, bytes| {
            let here = by_source.get(&(partition, offset));
            let mut rescored: Vec<(&str, Result<Rescored, Refusal>)> = Vec::new();
            for &index in here.into_iter().flatten() {
                let anomaly = &stored[index];
                let Ok(header) = &anomaly.header else {
                    continue;
                };
                check.source(anomaly, header, bytes, &mut rescored);
                visited.insert((partition, offset));
            }
            if let (Some(range), Some(model)) = (&mut range, &range_model) {
                if range.contains(partition, offset) {
                    let result = rescore_once(&check.models, model, bytes, &mut rescored);
                    range.record(partition, offset, result, here.is_some());
                }
            }
        },
    )?;
    for (&(partition, offset), indices) in &by_source {
        if visited.contains(&(partition, offset)) {
            continue;
        }
        for &index in indices {
            let why = format!("no record at {input}/{partition}/{offset}");
            check.different(&stored[index], None, vec![why]);
        }
    }
    if let Some(range) = range {
        check.report.range = range.report();
    }
    Ok(check.finish())
}

/// What is counted while checking.
struct Check {
    report: Report,
    models: Models,
    input_topic: String,
    differences: BTreeMap<(i32, i64), Difference>,
    not_found: BTreeMap<String, ModelNotFound>,
}

impl Check {
    fn new(args: &VerifyArgs, models_dir: &Path, limits: DecodeLimits) -> Self {
        let read = match (args.from_beginning, args.last) {
            (true, _) => "from-beginning".to_string(),
            (false, Some(n)) => format!("last {n}"),
            (false, None) => "all".to_string(),
        };
        Self {
            report: Report {
                anomalies_topic: args.output_topic.clone(),
                input_topic: args.input_topic.clone(),
                models_dir: models_dir.display().to_string(),
                read,
                ..Report::default()
            },
            models: Models::new(models_dir, limits),
            input_topic: args.input_topic.clone(),
            differences: BTreeMap::new(),
            not_found: BTreeMap::new(),
        }
    }

    /// Whether the anomaly's model is usable; if not, it is counted as not found.
    fn model_found(&mut self, header: &Header) -> bool {
        let why = match self.models.load(&header.model) {
            Ok(_) => return true,
            Err(why) => why.to_string(),
        };
        self.report.model_not_found += 1;
        let looked_for = self.models.path_of(&header.model).map_or_else(
            || format!("{}/<id>.bin", self.report.models_dir),
            |path| path.display().to_string(),
        );
        self.not_found
            .entry(header.model.clone())
            .or_insert_with(|| ModelNotFound {
                model: header.model.clone(),
                looked_for,
                why,
                anomalies: 0,
            })
            .anomalies += 1;
        false
    }

    /// One anomaly against its source record's bytes.
    fn source<'m>(
        &mut self,
        anomaly: &Stored,
        header: &'m Header,
        source: &[u8],
        rescored: &mut Vec<(&'m str, Result<Rescored, Refusal>)>,
    ) {
        let Some(model) = self.models.get(&header.model) else {
            return;
        };
        let result = rescore_once(&self.models, &header.model, source, rescored);
        let problems = match AnomalyRecord::read(&anomaly.bytes) {
            Ok(record) => {
                if record.truncated.is_some() {
                    self.report.truncated += 1;
                }
                compare::problems(&record, source, model, result)
            }
            Err(why) => vec![why],
        };
        if problems.is_empty() {
            self.report.identical += 1;
        } else {
            let record = AnomalyRecord::read(&anomaly.bytes).ok();
            self.different(anomaly, record.and_then(|r| r.id()), problems);
        }
    }

    /// Counts a difference and keeps it if it is among the first.
    fn different(&mut self, anomaly: &Stored, id: Option<String>, problems: Vec<String>) {
        self.report.different += 1;
        let header = anomaly.header.as_ref().ok();
        let id = id.or_else(|| {
            let record = AnomalyRecord::read(&anomaly.bytes).ok()?;
            record.id()
        });
        let difference = Difference {
            anomaly: format!(
                "{}/{}/{}",
                self.report.anomalies_topic, anomaly.at.0, anomaly.at.1
            ),
            source: header.map(|h| format!("{}/{}/{}", self.input_topic, h.partition, h.offset)),
            id,
            model: header.map(|h| h.model.clone()),
            problems,
        };
        keep_first(&mut self.differences, anomaly.at, difference);
    }

    fn finish(mut self) -> Report {
        self.report.differences = self.differences.into_values().collect();
        self.report.models_not_found = self.not_found.into_values().collect();
        self.report.passed = self.report.passed();
        self.report
    }
}

/// `source` re-scored with model `id` (loaded), computed once per record and model.
fn rescore_once<'r, 'm>(
    models: &Models,
    id: &'m str,
    source: &[u8],
    rescored: &'r mut Vec<(&'m str, Result<Rescored, Refusal>)>,
) -> &'r Result<Rescored, Refusal> {
    let index = match rescored.iter().position(|(model, _)| *model == id) {
        Some(index) => index,
        None => {
            let result = match models.get(id) {
                Some(model) => model.rescore(source),
                None => Err(Refusal {
                    reason: "model_not_found".into(),
                    detail: format!("model {id} is not found"),
                }),
            };
            rescored.push((id, result));
            rescored.len() - 1
        }
    };
    &rescored[index].1
}

/// Anomaly records beyond the first for their source.
fn duplicates(seen: &[Seen]) -> u64 {
    let mut counts: HashMap<(i32, i64), u64> = HashMap::new();
    for s in seen {
        *counts.entry(s.source).or_insert(0) += 1;
    }
    counts.values().map(|n| n - 1).sum()
}

/// Every partition's `(low, high)` watermarks; an error when the topic does not exist or a
/// partition's leader does not answer.
fn watermarks(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>> {
    let partitions =
        bus::topic_partitions(consumer, topic).with_context(|| format!("cannot read {topic}"))?;
    watermarks_of(consumer, topic, &partitions)
}

fn watermarks_of(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, (i64, i64)>> {
    partitions
        .iter()
        .map(|&partition| {
            let marks = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .with_context(|| format!("no watermarks for {topic}/{partition}"))?;
            Ok((partition, marks))
        })
        .collect()
}

/// The group's committed offsets on `partitions` of `topic` (those it has); none, with a
/// warning, when they cannot be read.
fn committed(
    kafka: &bus::ClientSettings,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, i64> {
    let read = || -> Result<BTreeMap<i32, i64>> {
        let consumer = crate::stats::group::committed_reader(kafka, group)?;
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect())
    };
    read()
        .map_err(|error| {
            log::warn!(
                "the committed offsets of group {group} are not known ({error:#}): flagged \
                 records without an anomaly count as missing"
            )
        })
        .unwrap_or_default()
}
