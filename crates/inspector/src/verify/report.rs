//! What `verify` found ([`Report`]), printed for people ([`Report::write_text`]) or as one
//! JSON object (`--json`, the same struct serialized), and whether it passes
//! ([`Report::passed`]).

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

/// How many differences, missing and unexpected anomalies are listed (all are counted).
pub const LISTED: usize = 10;

/// Everything `verify` counted, and the first few of each finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The anomalies topic.
    pub anomalies_topic: String,
    /// The transactions topic.
    pub input_topic: String,
    /// Where models were looked for.
    pub models_dir: String,
    /// Which anomalies were read: `all`, `from-beginning` (all, and the range is the whole
    /// input topic) or `last N` (of each partition).
    pub read: String,
    /// Anomaly records read and checked: identical + different + source gone + model not
    /// found.
    pub checked: u64,
    /// Re-scored to the same score, bit for bit, with the same features.
    pub identical: u64,
    /// Not identical (or not an anomaly record at all); the first [`LISTED`] are in
    /// `differences`.
    pub different: u64,
    /// The source record is gone: its offset is below the partition's low watermark.
    pub source_gone: u64,
    /// The model the anomaly names is not in the models folder (or not usable).
    pub model_not_found: u64,
    /// Anomaly records beyond the first for their source record (at-least-once delivery
    /// writes some twice): counted, not an error.
    pub duplicates: u64,
    /// Reduced anomalies among those checked (checked by score and by `original_sha256`).
    pub truncated: u64,
    /// The first differences.
    pub differences: Vec<Difference>,
    /// Each model not found, with where it was looked for.
    pub models_not_found: Vec<ModelNotFound>,
    /// Every transaction of the range re-scored: anomalies missing and unexpected.
    pub range: RangeReport,
    /// Whether it passed (exit code 0): see [`Report::passed`].
    pub passed: bool,
}

/// One anomaly record that is not what re-scoring its source gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Where the anomaly record is: `anomalies/PARTITION/OFFSET`.
    pub anomaly: String,
    /// Where its source is said to be: `transactions/PARTITION/OFFSET` (when it says).
    pub source: Option<String>,
    /// The transaction's id, as the anomaly gives it.
    pub id: Option<String>,
    /// The model it names.
    pub model: Option<String>,
    /// What differs, one sentence each.
    pub problems: Vec<String>,
}

/// A model named by anomalies that could not be used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelNotFound {
    /// The id the anomalies name.
    pub model: String,
    /// The file looked for.
    pub looked_for: String,
    /// Why it cannot be used.
    pub why: String,
    /// Anomaly records naming it.
    pub anomalies: u64,
}

/// The re-scoring of every transaction in the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RangeReport {
    /// Whether it was done.
    pub checked: bool,
    /// Why not, when it was not.
    pub skipped: Option<String>,
    /// The one model in use over the range.
    pub model: Option<String>,
    /// The offsets re-scored, per input partition.
    pub partitions: Vec<Span>,
    /// Partitions left out of the range, and why.
    pub notes: Vec<String>,
    /// Transactions re-scored.
    pub scored: u64,
    /// Transactions the model refuses (the detectors' dead letters): not expected as
    /// anomalies.
    pub refused: u64,
    /// Transactions above the threshold.
    pub flagged: u64,
    /// Flagged, before the group's committed offset, and no anomaly names them.
    pub missing: u64,
    /// Anomalies whose transaction is not above the threshold (or refused), counted once
    /// per transaction.
    pub unexpected: u64,
    /// Flagged, no anomaly yet, at or past the group's committed offset: the detectors
    /// have not finished with them.
    pub pending: u64,
    /// The first missing ones.
    pub missing_list: Vec<Missing>,
    /// The first unexpected ones.
    pub unexpected_list: Vec<Unexpected>,
}

/// Offsets `first..=last` of an input partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// The partition.
    pub partition: i32,
    /// The first offset.
    pub first: i64,
    /// The last offset.
    pub last: i64,
}

/// A transaction the model flags that no anomaly names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missing {
    /// `transactions/PARTITION/OFFSET`.
    pub source: String,
    /// Its id, when it has one.
    pub id: Option<String>,
    /// Its score.
    pub anomaly_score: f64,
}

/// An anomaly whose transaction the model does not flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unexpected {
    /// `transactions/PARTITION/OFFSET`.
    pub source: String,
    /// Why it should not be there: its score and the threshold, or the refusal.
    pub why: String,
}

impl Report {
    /// Whether everything checked is identical and nothing is missing or unexpected (exit
    /// code 0); pending anomalies and duplicates do not fail it.
    pub fn passed(&self) -> bool {
        self.different == 0
            && self.source_gone == 0
            && self.model_not_found == 0
            && self.range.missing == 0
            && self.range.unexpected == 0
    }

    /// The report as one JSON object on one line.
    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        writeln!(out)
    }

    /// The report for people.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self.text().as_bytes())
    }

    fn text(&self) -> String {
        let mut text = String::new();
        let mut line = |label: &str, value: u64, note: &str| {
            let _ = writeln!(text, "{label:<20}{value:>10}{note}");
        };
        line("checked", self.checked, "");
        line("identical", self.identical, "");
        line("different", self.different, "");
        line(
            "source gone",
            self.source_gone,
            "  (below the low watermark)",
        );
        line("model not found", self.model_not_found, "");
        line(
            "duplicates",
            self.duplicates,
            "  (at-least-once; not an error)",
        );
        line(
            "truncated",
            self.truncated,
            "  (checked by score and SHA-256)",
        );
        let range = &self.range;
        if range.checked {
            line("range scored", range.scored, "");
            line(
                "range refused",
                range.refused,
                "  (dead letters; not expected)",
            );
            line("range flagged", range.flagged, "");
            line("missing", range.missing, "");
            line("should not be there", range.unexpected, "");
            line(
                "pending",
                range.pending,
                "  (past the group's committed offset)",
            );
        }
        let read = match self.read.strip_prefix("last ") {
            Some(n) => format!("the last {n} anomalies of each partition of"),
            None => "every anomaly in".to_string(),
        };
        let _ = writeln!(
            text,
            "read: {read} {}; sources in {}; models in {}",
            self.anomalies_topic, self.input_topic, self.models_dir
        );
        match (&range.model, &range.skipped) {
            (Some(model), None) => {
                let spans: Vec<String> = range
                    .partitions
                    .iter()
                    .map(|s| {
                        format!(
                            "{}/{} {}..={}",
                            self.input_topic, s.partition, s.first, s.last
                        )
                    })
                    .collect();
                let spans = if spans.is_empty() {
                    "no offsets".to_string()
                } else {
                    spans.join(", ")
                };
                let _ = writeln!(text, "range: model {model}; {spans}");
            }
            (_, Some(why)) => {
                let _ = writeln!(text, "range: not checked: {why}");
            }
            (None, None) => {}
        }
        for note in &range.notes {
            let _ = writeln!(text, "range: {note}");
        }
        if !self.differences.is_empty() {
            let _ = writeln!(
                text,
                "different ({}):",
                listed(self.differences.len(), self.different)
            );
            for difference in &self.differences {
                let mut head = difference.anomaly.clone();
                if let Some(source) = &difference.source {
                    let _ = write!(head, " from {source}");
                }
                let about: Vec<String> = [
                    difference.id.as_ref().map(|id| format!("id {id}")),
                    difference.model.as_ref().map(|m| format!("model {m}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !about.is_empty() {
                    let _ = write!(head, " ({})", about.join(", "));
                }
                let _ = writeln!(text, "  {head}: {}", difference.problems.join("; "));
            }
        }
        if !self.models_not_found.is_empty() {
            let _ = writeln!(text, "model not found:");
            for model in &self.models_not_found {
                let _ = writeln!(
                    text,
                    "  {} ({} anomal{}): {} ({})",
                    model.model,
                    model.anomalies,
                    if model.anomalies == 1 { "y" } else { "ies" },
                    model.why,
                    model.looked_for
                );
            }
        }
        if !range.missing_list.is_empty() {
            let _ = writeln!(
                text,
                "missing ({}):",
                listed(range.missing_list.len(), range.missing)
            );
            for missing in &range.missing_list {
                let id = missing
                    .id
                    .as_ref()
                    .map_or(String::new(), |id| format!(" (id {id})"));
                let _ = writeln!(
                    text,
                    "  {}{id}: anomaly_score {}",
                    missing.source, missing.anomaly_score
                );
            }
        }
        if !range.unexpected_list.is_empty() {
            let _ = writeln!(
                text,
                "should not be there ({}):",
                listed(range.unexpected_list.len(), range.unexpected)
            );
            for unexpected in &range.unexpected_list {
                let _ = writeln!(text, "  {}: {}", unexpected.source, unexpected.why);
            }
        }
        let _ = writeln!(text, "result: {}", self.verdict());
        text
    }

    /// `all 1520 identical, nothing missing`, or what failed.
    fn verdict(&self) -> String {
        if self.passed() {
            let range = if self.range.checked {
                ", nothing missing"
            } else {
                ""
            };
            return format!("all {} identical{range}", self.identical);
        }
        let findings: Vec<String> = [
            (self.different, "different"),
            (self.source_gone, "source gone"),
            (self.model_not_found, "model not found"),
            (self.range.missing, "missing"),
            (self.range.unexpected, "should not be there"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
        findings.join(", ")
    }
}

/// `first 10 of 37`, or `2` when all are listed.
fn listed(shown: usize, total: u64) -> String {
    if shown as u64 >= total {
        total.to_string()
    } else {
        format!("first {shown} of {total}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            anomalies_topic: "anomalies".into(),
            input_topic: "transactions".into(),
            models_dir: "models/by-id".into(),
            read: "all".into(),
            checked: 3,
            identical: 3,
            ..Report::default()
        }
    }

    #[test]
    fn a_clean_report_passes_and_says_so() {
        let mut clean = report();
        clean.range = RangeReport {
            checked: true,
            model: Some("00112233445566aa".into()),
            partitions: vec![Span {
                partition: 0,
                first: 4,
                last: 90,
            }],
            scored: 87,
            flagged: 3,
            ..RangeReport::default()
        };
        assert!(clean.passed());
        let text = clean.text();
        assert!(
            text.contains("\nidentical                    3\n"),
            "{text}"
        );
        assert!(
            text.contains("range: model 00112233445566aa; transactions/0 4..=90\n"),
            "{text}"
        );
        assert!(
            text.ends_with("result: all 3 identical, nothing missing\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "read: every anomaly in anomalies; sources in transactions; models in \
                 models/by-id\n"
            ),
            "{text}"
        );
        clean.read = "last 5".into();
        assert!(
            clean
                .text()
                .contains("read: the last 5 anomalies of each partition of anomalies;"),
            "{}",
            clean.text()
        );
        // Pending anomalies and duplicates do not fail it.
        clean.range.pending = 2;
        clean.duplicates = 1;
        assert!(clean.passed());
    }

    #[test]
    fn each_finding_fails_the_report_and_is_named() {
        type Finding = fn(&mut Report);
        let findings: [(Finding, &str); 5] = [
            (|r| r.different = 1, "1 different"),
            (|r| r.source_gone = 2, "2 source gone"),
            (|r| r.model_not_found = 1, "1 model not found"),
            (|r| r.range.missing = 4, "4 missing"),
            (|r| r.range.unexpected = 1, "1 should not be there"),
        ];
        for (set, named) in findings {
            let mut failed = report();
            set(&mut failed);
            assert!(!failed.passed(), "{named}");
            assert!(
                failed.text().ends_with(&format!("result: {named}\n")),
                "{}",
                failed.text()
            );
        }
    }

    #[test]
    fn differences_are_listed_with_where_and_why() {
        let mut failed = report();
        failed.identical = 2;
        failed.different = 12;
        failed.differences = vec![Difference {
            anomaly: "anomalies/0/57".into(),
            source: Some("transactions/1/332".into()),
            id: Some("4711".into()),
            model: Some("00112233445566aa".into()),
            problems: vec!["anomaly_score 0.75 in the anomaly, 0.71 re-scored".into()],
        }];
        let text = failed.text();
        assert!(
            text.contains(
                "different (first 1 of 12):\n  anomalies/0/57 from transactions/1/332 (id 4711, \
                 model 00112233445566aa): anomaly_score 0.75 in the anomaly, 0.71 re-scored\n"
            ),
            "{text}"
        );
        let mut json = Vec::new();
        failed.write_json(&mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["different"], 12);
        assert_eq!(value["differences"][0]["source"], "transactions/1/332");
        assert_eq!(value["range"]["checked"], false);
    }
}
