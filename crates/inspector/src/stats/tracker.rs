//! Anomalies matched to the transactions they came from: latency and label counts.

use std::collections::{HashMap, VecDeque};

use dataset::Confusion;

use super::latency::LatencyWindow;

/// Transactions whose timestamp and label are kept for matching their anomalies; the oldest
/// is forgotten first. Detectors answer within milliseconds, so this is many seconds of
/// traffic even at tens of thousands of records a second.
pub const TRACKED_TRANSACTIONS: usize = 500_000;
/// Anomalies kept while their transaction has not been read yet.
pub const PENDING_ANOMALIES: usize = 100_000;
/// Most latency samples kept for percentiles (the oldest go first).
pub const LATENCY_SAMPLES: usize = 1_000_000;

/// Flagged and labelled transactions, for precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelCounts {
    /// Labelled transactions read with label 1.
    pub positives: u64,
    /// Labelled transactions read with label 0.
    pub negatives: u64,
    /// Label-1 transactions with an anomaly.
    pub true_positives: u64,
    /// Label-0 transactions with an anomaly.
    pub false_positives: u64,
}

impl LabelCounts {
    /// Label-1 transactions without an anomaly (yet).
    pub fn false_negatives(&self) -> u64 {
        self.positives.saturating_sub(self.true_positives)
    }

    /// The counts as a confusion matrix (flagged = predicted anomaly).
    pub fn confusion(&self) -> Confusion {
        Confusion {
            true_positives: self.true_positives as usize,
            false_positives: self.false_positives as usize,
            false_negatives: self.false_negatives() as usize,
            true_negatives: self.negatives.saturating_sub(self.false_positives) as usize,
        }
    }

    /// Flagged that were labelled 1; `None` before anything is flagged.
    pub fn precision(&self) -> Option<f64> {
        (self.true_positives + self.false_positives > 0).then(|| self.confusion().precision())
    }

    /// Labelled 1 that were flagged; `None` before a label-1 transaction is read.
    pub fn recall(&self) -> Option<f64> {
        (self.positives > 0).then(|| self.confusion().recall())
    }

    /// Harmonic mean of precision and recall (0 when both are 0); `None` when either is.
    pub fn f1(&self) -> Option<f64> {
        self.precision()?;
        self.recall()?;
        Some(self.confusion().f1())
    }

    /// Whether any labelled transaction was read.
    pub fn any(&self) -> bool {
        self.positives + self.negatives > 0
    }
}

/// A transaction as remembered for its anomaly.
#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp_ms: Option<i64>,
    label: Option<u8>,
    flagged: bool,
}

/// Matches anomalies to the transactions they came from, by source (partition, offset): the
/// latency between their timestamps, and the label counts.
///
/// Precision and recall are over the transactions read so far: a transaction whose anomaly is
/// still in flight (or not read yet) counts as missed until it comes, so recall lags a little
/// behind the truth while records flow, and settles once they stop. An anomaly whose
/// transaction was not read (before the start of reading, or forgotten past
/// [`TRACKED_TRANSACTIONS`]) counts for neither latency nor labels. Duplicate anomalies of one
/// transaction (at-least-once redelivery) count once.
#[derive(Debug)]
pub struct Tracker {
    transactions: HashMap<(i32, i64), Seen>,
    transaction_order: VecDeque<(i32, i64)>,
    transaction_capacity: usize,
    /// Anomalies read before their transaction: source position → anomaly timestamp.
    pending: HashMap<(i32, i64), Option<i64>>,
    pending_order: VecDeque<(i32, i64)>,
    pending_capacity: usize,
    /// Pending anomalies given up for room.
    abandoned: u64,
    labels: LabelCounts,
    /// Latencies of matched anomalies (over the live window, or the whole run for `--once`).
    pub window: LatencyWindow,
}

impl Tracker {
    /// A tracker keeping latencies over the last `window_ms` (all with `None`).
    pub fn new(window_ms: Option<i64>) -> Self {
        Self::with_capacity(window_ms, TRACKED_TRANSACTIONS, PENDING_ANOMALIES)
    }

    /// As [`new`](Self::new), with other bounds (tests).
    pub fn with_capacity(window_ms: Option<i64>, transactions: usize, pending: usize) -> Self {
        Self {
            transactions: HashMap::new(),
            transaction_order: VecDeque::new(),
            transaction_capacity: transactions.max(1),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            pending_capacity: pending.max(1),
            abandoned: 0,
            labels: LabelCounts::default(),
            window: LatencyWindow::new(window_ms, LATENCY_SAMPLES),
        }
    }

    /// A transaction read at `(partition, offset)`.
    pub fn transaction(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        label: Option<u8>,
    ) {
        let key = (partition, offset);
        match label {
            Some(1) => self.labels.positives += 1,
            Some(_) => self.labels.negatives += 1,
            None => {}
        }
        if self.transactions.len() == self.transaction_capacity {
            if let Some(oldest) = self.transaction_order.pop_front() {
                self.transactions.remove(&oldest);
            }
        }
        self.transactions.insert(
            key,
            Seen {
                timestamp_ms,
                label,
                flagged: false,
            },
        );
        self.transaction_order.push_back(key);
        // Its entry in `pending_order` stays behind and is skipped when it comes up.
        if let Some(anomaly_ms) = self.pending.remove(&key) {
            self.matched(key, anomaly_ms);
        }
    }

    /// An anomaly of the transaction at `(partition, offset)`, written at `timestamp_ms`.
    pub fn anomaly(&mut self, partition: i32, offset: i64, timestamp_ms: Option<i64>) {
        let key = (partition, offset);
        if self.transactions.contains_key(&key) {
            self.matched(key, timestamp_ms);
            return;
        }
        if self.pending.contains_key(&key) {
            return; // a duplicate of one already waiting
        }
        while self.pending.len() >= self.pending_capacity {
            let Some(oldest) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending.remove(&oldest).is_some() {
                self.abandoned += 1;
            }
        }
        self.pending.insert(key, timestamp_ms);
        self.pending_order.push_back(key);
    }

    fn matched(&mut self, key: (i32, i64), anomaly_ms: Option<i64>) {
        let Some(seen) = self.transactions.get_mut(&key) else {
            return;
        };
        if seen.flagged {
            return;
        }
        seen.flagged = true;
        match seen.label {
            Some(1) => self.labels.true_positives += 1,
            Some(_) => self.labels.false_positives += 1,
            None => {}
        }
        if let (Some(from), Some(to)) = (seen.timestamp_ms, anomaly_ms) {
            self.window.add(to, (to - from) as f64);
        }
    }

    /// Anomalies whose transaction has not been read (waiting, or given up).
    pub fn unmatched(&self) -> u64 {
        self.pending.len() as u64 + self.abandoned
    }

    /// The label counts so far.
    pub fn labels(&self) -> LabelCounts {
        self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_f1_follow_their_definitions() {
        let counts = LabelCounts {
            positives: 10,
            negatives: 90,
            true_positives: 6,
            false_positives: 2,
        };
        assert_eq!(counts.precision(), Some(0.75));
        assert_eq!(counts.recall(), Some(0.6));
        let f1 = counts.f1().unwrap();
        assert!((f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12, "{f1}");
        assert_eq!(counts.false_negatives(), 4);
        assert_eq!(counts.confusion().true_negatives, 88);
        let nothing_flagged = LabelCounts {
            positives: 3,
            ..LabelCounts::default()
        };
        assert_eq!(nothing_flagged.precision(), None);
        assert_eq!(nothing_flagged.recall(), Some(0.0));
        assert_eq!(nothing_flagged.f1(), None);
        let all_wrong = LabelCounts {
            positives: 1,
            negatives: 1,
            true_positives: 0,
            false_positives: 1,
        };
        assert_eq!(all_wrong.f1(), Some(0.0));
        assert!(!LabelCounts::default().any());
    }

    #[test]
    fn anomalies_match_their_transactions_in_either_order_and_count_once() {
        let mut tracker = Tracker::with_capacity(None, 100, 100);
        // Transaction first, then its anomaly 40 ms later; a duplicate anomaly changes nothing.
        tracker.transaction(0, 5, Some(1_000), Some(1));
        tracker.anomaly(0, 5, Some(1_040));
        tracker.anomaly(0, 5, Some(1_090));
        // Anomaly first (read from another topic ahead of its transaction).
        tracker.anomaly(1, 7, Some(2_010));
        assert_eq!(tracker.unmatched(), 1);
        tracker.transaction(1, 7, Some(2_000), Some(0));
        assert_eq!(tracker.unmatched(), 0);
        // A labelled transaction without an anomaly, and one unlabelled with one.
        tracker.transaction(2, 0, Some(3_000), Some(1));
        tracker.transaction(2, 1, Some(3_000), None);
        tracker.anomaly(2, 1, Some(3_100));
        let p = tracker.window.percentiles().unwrap();
        assert_eq!(p.count, 3);
        assert_eq!((p.p50, p.p99), (40.0, 100.0));
        assert_eq!(
            tracker.labels(),
            LabelCounts {
                positives: 2,
                negatives: 1,
                true_positives: 1,
                false_positives: 1,
            }
        );
    }

    #[test]
    fn the_tracker_stays_bounded() {
        let mut tracker = Tracker::with_capacity(None, 2, 2);
        for offset in 0..3 {
            tracker.transaction(0, offset, Some(0), Some(1));
        }
        // Offset 0 was forgotten: its anomaly waits (and is given up for room later).
        tracker.anomaly(0, 0, Some(5));
        tracker.anomaly(0, 100, Some(5));
        tracker.anomaly(0, 101, Some(5));
        assert_eq!(tracker.unmatched(), 3);
        assert_eq!(tracker.labels().true_positives, 0);
        tracker.anomaly(0, 2, Some(7));
        assert_eq!(tracker.labels().true_positives, 1);
        assert_eq!(tracker.window.percentiles().unwrap().p50, 7.0);
    }
}
