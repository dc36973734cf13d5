//! Reading chosen offsets of a topic, and only those: each partition assigned (no group
//! joined, nothing committed) at its first wanted offset, read straight through gaps of up
//! to [`READ_THROUGH`] offsets and sought past longer ones, and left alone (paused) once its
//! last wanted offset is behind it. Offsets that do not exist (compacted away, past the end)
//! are passed over: the partition's end is reported by the client (`enable.partition.eof`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// A gap of at most this many offsets between wanted ones is read through rather than
/// sought over: a seek costs a fetch round trip (on Tansu, the whole `fetch.wait.max.ms`).
pub const READ_THROUGH: i64 = 2_000;

/// Per partition, the offsets wanted: inclusive `(first, last)` spans, in any order.
pub type Wanted = BTreeMap<i32, Vec<(i64, i64)>>;

/// A client for reading chosen offsets: partition ends reported, and (unless the user's
/// settings say otherwise) fetches answered within 100 ms when no record is there.
pub fn reading_consumer(kafka: &bus::ClientSettings) -> Result<BaseConsumer<bus::LoggingContext>> {
    let mut settings = kafka.clone().with("enable.partition.eof", "true");
    if !kafka
        .properties
        .iter()
        .any(|(key, _)| key == "fetch.wait.max.ms")
    {
        settings = settings.with("fetch.wait.max.ms", "100");
    }
    Ok(settings.base_consumer()?)
}

/// One partition's reading.
#[derive(Debug)]
struct Cursor {
    /// Spans read through (wanted spans joined across short gaps), sorted.
    runs: Vec<(i64, i64)>,
    run: usize,
    /// Wanted spans, sorted and joined where they touch.
    wanted: Vec<(i64, i64)>,
    want: usize,
    /// Records below this are left over from before a seek.
    floor: i64,
    done: bool,
}

/// What to do after a record.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Read,
    Seek(i64),
    Done,
}

impl Cursor {
    fn new(spans: &[(i64, i64)]) -> Option<Cursor> {
        let wanted = join(spans, 1);
        let runs = join(&wanted, READ_THROUGH);
        let floor = runs.first()?.0;
        Some(Cursor {
            runs,
            run: 0,
            wanted,
            want: 0,
            floor,
            done: false,
        })
    }

    /// Takes record `offset`: whether it is wanted, and what to do next.
    fn record(&mut self, offset: i64) -> (bool, Step) {
        if self.done || offset < self.floor {
            return (false, Step::Read);
        }
        while self.runs.get(self.run).is_some_and(|run| run.1 < offset) {
            self.run += 1;
        }
        let Some(&(first, last)) = self.runs.get(self.run) else {
            self.done = true;
            return (false, Step::Done);
        };
        if offset < first {
            self.floor = first;
            return (false, Step::Seek(first));
        }
        while self
            .wanted
            .get(self.want)
            .is_some_and(|span| span.1 < offset)
        {
            self.want += 1;
        }
        let wanted = self
            .wanted
            .get(self.want)
            .is_some_and(|span| span.0 <= offset);
        if offset < last {
            return (wanted, Step::Read);
        }
        self.run += 1;
        match self.runs.get(self.run) {
            Some(&(next, _)) => {
                self.floor = next;
                (wanted, Step::Seek(next))
            }
            None => {
                self.done = true;
                (wanted, Step::Done)
            }
        }
    }
}

/// Sorted spans, those less than `gap` apart joined.
fn join(spans: &[(i64, i64)], gap: i64) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, i64)> = spans.iter().copied().filter(|s| s.0 <= s.1).collect();
    sorted.sort_unstable();
    let mut joined: Vec<(i64, i64)> = Vec::with_capacity(sorted.len());
    for (first, last) in sorted {
        match joined.last_mut() {
            Some(previous) if first <= previous.1.saturating_add(gap) => {
                previous.1 = previous.1.max(last);
            }
            _ => joined.push((first, last)),
        }
    }
    joined
}

/// Reads the `wanted` offsets of `topic` with `consumer` (from [`reading_consumer`]),
/// calling `visit(partition, offset, value)` for each record among them, each partition's
/// in offset order; an error when they are not all read by `deadline`.
pub fn read(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
    wanted: &Wanted,
    deadline: Instant,
    mut visit: impl FnMut(i32, i64, &[u8]),
) -> Result<()> {
    let mut cursors: BTreeMap<i32, Cursor> = wanted
        .iter()
        .filter_map(|(&partition, spans)| Some((partition, Cursor::new(spans)?)))
        .collect();
    if cursors.is_empty() {
        return Ok(());
    }
    let mut assignment = TopicPartitionList::new();
    for (&partition, cursor) in &cursors {
        assignment.add_partition_offset(topic, partition, Offset::Offset(cursor.floor))?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot read {topic}"))?;
    let result = read_assigned(consumer, topic, &mut cursors, deadline, &mut visit);
    let _ = consumer.unassign();
    result
}

fn read_assigned(
    consumer: &BaseConsumer<bus::LoggingContext>,
    topic: &str,
    cursors: &mut BTreeMap<i32, Cursor>,
    deadline: Instant,
    visit: &mut impl FnMut(i32, i64, &[u8]),
) -> Result<()> {
    let mut left = cursors.len();
    while left > 0 {
        if Instant::now() > deadline {
            let behind: Vec<String> = cursors
                .iter()
                .filter(|(_, cursor)| !cursor.done)
                .map(|(partition, cursor)| {
                    let last = cursor.runs.last().map_or(0, |run| run.1);
                    format!("{topic}/{partition} up to offset {last}")
                })
                .collect();
            bail!(
                "could not read {} within --timeout (is the broker answering?)",
                behind.join(", ")
            );
        }
        let (partition, step) = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Ok(message)) => {
                let partition = message.partition();
                let Some(cursor) = cursors.get_mut(&partition) else {
                    continue;
                };
                let was_done = cursor.done;
                let (wanted, step) = cursor.record(message.offset());
                if wanted {
                    visit(
                        partition,
                        message.offset(),
                        message.payload().unwrap_or_default(),
                    );
                }
                if was_done {
                    continue;
                }
                (partition, step)
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => match cursors.get_mut(&partition) {
                Some(cursor) if !cursor.done => {
                    cursor.done = true;
                    (partition, Step::Done)
                }
                _ => continue,
            },
            Some(Err(error)) => {
                log::warn!("reading {topic}: {error}");
                continue;
            }
        };
        match step {
            Step::Read => {}
            Step::Seek(offset) => consumer
                .seek(
                    topic,
                    partition,
                    Offset::Offset(offset),
                    Duration::from_secs(10),
                )
                .with_context(|| format!("cannot seek {topic}/{partition} to {offset}"))?,
            Step::Done => {
                left -= 1;
                let mut paused = TopicPartitionList::new();
                paused.add_partition(topic, partition);
                if let Err(error) = consumer.pause(&paused) {
                    log::debug!("pausing {topic}/{partition}: {error}");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets visited and the seeks made when `present` offsets exist.
    fn walk(spans: &[(i64, i64)], present: impl Iterator<Item = i64>) -> (Vec<i64>, Vec<i64>) {
        let mut cursor = Cursor::new(spans).unwrap();
        let (mut visited, mut seeks) = (Vec::new(), Vec::new());
        let mut position = cursor.floor;
        let present: Vec<i64> = present.collect();
        while let Some(&offset) = present.iter().find(|&&o| o >= position) {
            let (wanted, step) = cursor.record(offset);
            if wanted {
                visited.push(offset);
            }
            match step {
                Step::Read => position = offset + 1,
                Step::Seek(to) => {
                    seeks.push(to);
                    position = to;
                }
                Step::Done => break,
            }
        }
        (visited, seeks)
    }

    #[test]
    fn wanted_offsets_are_visited_once_and_long_gaps_sought_over() {
        let far = 12 + READ_THROUGH + 1;
        let (visited, seeks) = walk(
            &[(12, 12), (10, 10), (11, 12), (far, far + 1), (20, 19)],
            0..far + 100,
        );
        assert_eq!(visited, [10, 11, 12, far, far + 1]);
        assert_eq!(seeks, [far], "the short gap is read through");
    }

    #[test]
    fn offsets_that_do_not_exist_are_passed_over() {
        // Offsets 3..=7 compacted away; 40 and beyond never written.
        let present = (0..3).chain(8..40);
        let (visited, _) = walk(&[(2, 4), (6, 9), (39, 45)], present);
        assert_eq!(visited, [2, 8, 9, 39]);
    }

    #[test]
    fn records_from_before_a_seek_are_ignored() {
        let far = 5 + READ_THROUGH * 2;
        let mut cursor = Cursor::new(&[(5, 5), (far, far)]).unwrap();
        assert_eq!(cursor.record(5), (true, Step::Seek(far)));
        assert_eq!(
            cursor.record(6),
            (false, Step::Read),
            "left over from before"
        );
        assert_eq!(cursor.record(far), (true, Step::Done));
        assert_eq!(cursor.record(far + 1), (false, Step::Read));
    }

    #[test]
    fn spans_join_when_they_touch_or_are_close() {
        assert_eq!(join(&[(5, 6), (1, 2), (3, 3)], 1), [(1, 3), (5, 6)]);
        assert_eq!(join(&[(5, 6), (1, 2)], 3), [(1, 6)]);
        assert_eq!(join(&[(1, 9), (2, 3)], 1), [(1, 9)]);
        assert!(Cursor::new(&[]).is_none());
    }
}
