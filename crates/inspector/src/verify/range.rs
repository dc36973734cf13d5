//! The range check: with one model in use, every transaction of the range is re-scored, and
//! what it flags is compared with the anomalies read. The range ([`plan`]) is, per input
//! partition, the source offsets from the first anomaly read to the last, or the whole topic
//! (`--from-beginning`); [`RangeCount`] does the accounting record by record.

use std::collections::{BTreeMap, BTreeSet};

use super::models::{Refusal, Rescored};
use super::report::{Missing, RangeReport, Span, Unexpected, LISTED};

/// Where an anomaly read came from and what it names, as the range needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its partition in the anomalies topic.
    pub anomaly_partition: i32,
    /// The model it names.
    pub model: String,
    /// Its source partition and offset.
    pub source: (i32, i64),
}

/// What the range is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The anomalies read (those that name a source and a model).
    pub seen: &'a [Seen],
    /// The input topic's watermarks, `partition → (low, high)`.
    pub input: &'a BTreeMap<i32, (i64, i64)>,
    /// Anomaly partitions read from past their beginning (`--last`), with the first offset
    /// read: their older anomalies are not known.
    pub cut: &'a BTreeMap<i32, i64>,
    /// The whole input topic (`--from-beginning`).
    pub whole_topic: bool,
}

/// The range to re-score: the model, and per input partition `(first, last)`; or why the
/// range cannot be checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The one model in use.
    pub model: String,
    /// Offsets to re-score, per partition, inclusive.
    pub spans: BTreeMap<i32, (i64, i64)>,
    /// Partitions left out, and why.
    pub notes: Vec<String>,
}

/// The range for `inputs`, or why there is none (`input_topic` names partitions in notes).
pub fn plan(inputs: &Inputs<'_>, input_topic: &str) -> Result<Plan, String> {
    let models: BTreeSet<&str> = inputs.seen.iter().map(|s| s.model.as_str()).collect();
    let model = match models.len() {
        0 => return Err("no anomaly read names a model".into()),
        1 => models.first().copied().unwrap_or_default().to_string(),
        n => {
            let listed: Vec<&str> = models.iter().copied().take(5).collect();
            return Err(format!(
                "{n} models in use over the range ({}{}); it needs one",
                listed.join(", "),
                if n > 5 { ", …" } else { "" }
            ));
        }
    };
    let mut notes = Vec::new();
    let spans: BTreeMap<i32, (i64, i64)> = if inputs.whole_topic {
        inputs
            .input
            .iter()
            .filter(|(_, (low, high))| high > low)
            .map(|(&partition, &(low, high))| (partition, (low, high - 1)))
            .collect()
    } else {
        let mut spans: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for seen in inputs.seen {
            let (partition, offset) = seen.source;
            let Some(&(low, high)) = inputs.input.get(&partition) else {
                continue;
            };
            if offset < low || offset >= high {
                continue;
            }
            let span = spans.entry(partition).or_insert((offset, offset));
            span.0 = span.0.min(offset);
            span.1 = span.1.max(offset);
        }
        // An anomalies partition read from past its beginning holds older anomalies of a
        // source partition only below the first one read there (a source partition's
        // anomalies are written in its order): the range starts at the latest such start.
        for (&cut_partition, &from) in inputs.cut {
            spans.retain(|&partition, span| {
                let first_here = inputs
                    .seen
                    .iter()
                    .filter(|s| s.anomaly_partition == cut_partition && s.source.0 == partition)
                    .map(|s| s.source.1)
                    .min();
                match first_here {
                    Some(first) => {
                        span.0 = span.0.max(first);
                        true
                    }
                    None => {
                        notes.push(format!(
                            "{input_topic}/{partition} left out: none of the anomalies read \
                             from offset {from} of anomalies partition {cut_partition} names \
                             it, so its older ones there are not known"
                        ));
                        false
                    }
                }
            });
        }
        spans
    };
    Ok(Plan {
        model,
        spans,
        notes,
    })
}

/// The accounting of the range, record by record.
#[derive(Debug)]
pub struct RangeCount {
    plan: Plan,
    threshold: f64,
    /// The group's committed offsets: an expected anomaly at or past one is pending.
    committed: BTreeMap<i32, i64>,
    input_topic: String,
    report: RangeReport,
    missing: BTreeMap<(i32, i64), Missing>,
    unexpected: BTreeMap<(i32, i64), Unexpected>,
}

impl RangeCount {
    /// Counting for `plan`, whose model's threshold is `threshold`.
    pub fn new(
        plan: Plan,
        threshold: f64,
        committed: BTreeMap<i32, i64>,
        input_topic: &str,
    ) -> Self {
        Self {
            plan,
            threshold,
            committed,
            input_topic: input_topic.to_string(),
            report: RangeReport::default(),
            missing: BTreeMap::new(),
            unexpected: BTreeMap::new(),
        }
    }

    /// The model of the range.
    pub fn model(&self) -> &str {
        &self.plan.model
    }

    /// The spans to read, as [`fetch::read`](super::fetch::read) takes them.
    pub fn spans(&self) -> impl Iterator<Item = (i32, (i64, i64))> + '_ {
        self.plan.spans.iter().map(|(&p, &span)| (p, span))
    }

    /// Whether `partition`/`offset` is in the range.
    pub fn contains(&self, partition: i32, offset: i64) -> bool {
        self.plan
            .spans
            .get(&partition)
            .is_some_and(|&(first, last)| first <= offset && offset <= last)
    }

    /// One transaction of the range re-scored, and whether an anomaly names it.
    pub fn record(
        &mut self,
        partition: i32,
        offset: i64,
        rescored: &Result<Rescored, Refusal>,
        has_anomaly: bool,
    ) {
        let source = || format!("{}/{partition}/{offset}", self.input_topic);
        let (flagged, why_not) = match rescored {
            Ok(rescored) => {
                self.report.scored += 1;
                let flagged = rescored.score > self.threshold;
                (
                    flagged,
                    format!(
                        "re-scored {}, not above the threshold {}",
                        rescored.score, self.threshold
                    ),
                )
            }
            Err(refusal) => {
                self.report.refused += 1;
                (false, format!("the model refuses it: {refusal}"))
            }
        };
        if flagged {
            self.report.flagged += 1;
        }
        if has_anomaly && !flagged {
            self.report.unexpected += 1;
            let why = why_not;
            keep_first(
                &mut self.unexpected,
                (partition, offset),
                Unexpected {
                    source: source(),
                    why,
                },
            );
        }
        if flagged && !has_anomaly {
            let pending = self
                .committed
                .get(&partition)
                .is_some_and(|&committed| offset >= committed);
            if pending {
                self.report.pending += 1;
                return;
            }
            self.report.missing += 1;
            if let Ok(rescored) = rescored {
                let missing = Missing {
                    source: source(),
                    id: rescored.id.as_ref().map(ToString::to_string),
                    anomaly_score: rescored.score,
                };
                keep_first(&mut self.missing, (partition, offset), missing);
            }
        }
    }

    /// The finished count.
    pub fn report(self) -> RangeReport {
        RangeReport {
            checked: true,
            skipped: None,
            model: Some(self.plan.model.clone()),
            partitions: self
                .plan
                .spans
                .iter()
                .map(|(&partition, &(first, last))| Span {
                    partition,
                    first,
                    last,
                })
                .collect(),
            notes: self.plan.notes,
            missing_list: self.missing.into_values().collect(),
            unexpected_list: self.unexpected.into_values().collect(),
            ..self.report
        }
    }
}

/// Keeps the [`LISTED`] smallest keys.
pub fn keep_first<T>(kept: &mut BTreeMap<(i32, i64), T>, key: (i32, i64), value: T) {
    kept.insert(key, value);
    if kept.len() > LISTED {
        kept.pop_last();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(anomaly_partition: i32, model: &str, partition: i32, offset: i64) -> Seen {
        Seen {
            anomaly_partition,
            model: model.into(),
            source: (partition, offset),
        }
    }

    fn inputs<'a>(
        seen: &'a [Seen],
        input: &'a BTreeMap<i32, (i64, i64)>,
        cut: &'a BTreeMap<i32, i64>,
        whole_topic: bool,
    ) -> Inputs<'a> {
        Inputs {
            seen,
            input,
            cut,
            whole_topic,
        }
    }

    #[test]
    fn the_range_runs_from_the_first_source_to_the_last_or_over_the_whole_topic() {
        let input = BTreeMap::from([(0, (0, 100)), (1, (10, 50)), (2, (0, 0))]);
        let seen = [
            seen(0, "m", 0, 40),
            seen(0, "m", 0, 7),
            seen(0, "m", 1, 12),
            seen(0, "m", 1, 3), // gone: below the low watermark
        ];
        let none = BTreeMap::new();
        let plan = plan(&inputs(&seen, &input, &none, false), "tx").unwrap();
        assert_eq!(plan.model, "m");
        assert_eq!(plan.spans, BTreeMap::from([(0, (7, 40)), (1, (12, 12))]));
        let whole = super::plan(&inputs(&seen, &input, &none, true), "tx").unwrap();
        assert_eq!(whole.spans, BTreeMap::from([(0, (0, 99)), (1, (10, 49))]));
    }

    #[test]
    fn one_model_is_needed() {
        let input = BTreeMap::from([(0, (0, 100))]);
        let none = BTreeMap::new();
        let two = [seen(0, "a", 0, 1), seen(0, "b", 0, 2)];
        let why = plan(&inputs(&two, &input, &none, false), "tx").unwrap_err();
        assert_eq!(why, "2 models in use over the range (a, b); it needs one");
        let why = plan(&inputs(&[], &input, &none, true), "tx").unwrap_err();
        assert_eq!(why, "no anomaly read names a model");
    }

    #[test]
    fn a_cut_anomalies_partition_bounds_the_range_or_leaves_a_partition_out() {
        let input = BTreeMap::from([(0, (0, 100)), (1, (0, 100))]);
        let seen = [
            seen(0, "m", 0, 10),
            seen(0, "m", 0, 30),
            seen(1, "m", 0, 20),
            seen(0, "m", 1, 5),
        ];
        let cut = BTreeMap::from([(1, 500)]);
        let plan = plan(&inputs(&seen, &input, &cut, false), "tx").unwrap();
        assert_eq!(plan.spans, BTreeMap::from([(0, (20, 30))]));
        assert_eq!(plan.notes.len(), 1);
        assert!(
            plan.notes[0].starts_with("tx/1 left out"),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn flagged_records_without_anomaly_are_missing_or_pending_and_the_others_unexpected() {
        let plan = Plan {
            model: "m".into(),
            spans: BTreeMap::from([(0, (0, 100))]),
            notes: Vec::new(),
        };
        let mut count = RangeCount::new(plan, 0.5, BTreeMap::from([(0, 50)]), "tx");
        let scored = |score: f64| {
            Ok(Rescored {
                id: Some(schema::RecordId::Int(7)),
                row: vec![],
                score,
            })
        };
        count.record(0, 1, &scored(0.7), true); // an anomaly, as it should be
        count.record(0, 2, &scored(0.3), false); // normal
        count.record(0, 3, &scored(0.7), false); // missing
        count.record(0, 60, &scored(0.7), false); // past the committed offset: pending
        count.record(0, 4, &scored(0.5), true); // not above the threshold
        let refused = Err(Refusal {
            reason: "not_json".into(),
            detail: "…".into(),
        });
        count.record(0, 5, &refused, false); // a dead letter
        count.record(0, 6, &refused, true);
        assert!(count.contains(0, 100) && !count.contains(0, 101) && !count.contains(1, 5));
        let report = count.report();
        assert_eq!((report.scored, report.refused, report.flagged), (5, 2, 3));
        assert_eq!(
            (report.missing, report.pending, report.unexpected),
            (1, 1, 2)
        );
        assert_eq!(report.missing_list[0].source, "tx/0/3");
        assert_eq!(report.missing_list[0].id.as_deref(), Some("7"));
        assert_eq!(
            report.unexpected_list[0].why,
            "re-scored 0.5, not above the threshold 0.5"
        );
        assert!(report.unexpected_list[1]
            .why
            .starts_with("the model refuses it: not_json"));
    }

    #[test]
    fn only_the_first_few_are_kept() {
        let mut kept = BTreeMap::new();
        for offset in (0..30).rev() {
            keep_first(&mut kept, (0, offset), offset);
        }
        assert_eq!(kept.len(), LISTED);
        assert_eq!(kept.keys().next_back(), Some(&(0, LISTED as i64 - 1)));
    }
}
