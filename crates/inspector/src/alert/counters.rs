//! What `alert` did, counted as it goes.

use std::sync::atomic::{AtomicU64, Ordering};

/// What `alert` did, counted as it goes (shared with the caller, who may watch it).
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Anomaly records read.
    pub anomalies: AtomicU64,
    /// Records that were not anomalies (skipped).
    pub undecodable: AtomicU64,
    /// Incidents closed.
    pub incidents: AtomicU64,
    /// Incidents folded into a waiting one.
    pub folded: AtomicU64,
    /// HTTP posts tried.
    pub attempts: AtomicU64,
    /// Messages delivered (2xx).
    pub delivered: AtomicU64,
    /// Anomalies in delivered messages.
    pub delivered_anomalies: AtomicU64,
    /// Messages given up after their tries (or at the stop).
    pub given_up: AtomicU64,
    /// Anomalies in messages given up or not sent at the stop.
    pub lost_anomalies: AtomicU64,
}

impl AlertCounters {
    pub(super) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
