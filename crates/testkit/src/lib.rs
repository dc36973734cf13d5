//! Helpers for the workspace's tests, written once: the broker the tests use and topics on
//! it, names no other test run has used, polling until a condition holds, reading a topic back
//! and producing records with chosen partitions and timestamps, finding and running the
//! workspace's binaries, and checking that secrets never reach a process's output.
//!
//! A dev-dependency only: no process or library crate depends on it.
//!
//! The tests run against the broker at `$KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`);
//! `scripts/test.sh` starts one on 127.0.0.1:19092 and sets it.
//!
//! # Layout
//!
//! - [`broker`]: the test broker's address and settings, waiting for it, creating topics.
//! - [`topic`]: reading a topic from the beginning, producing records, committed offsets.
//! - [`process`]: workspace binaries, running a command, killing a child at the end.
//! - [`secrets`]: a command given secrets in every way a user can, and the check that none
//!   is printed.
//! - here: [`unique`], [`wait_until`], [`now_ms`], [`tally`].
#![deny(missing_docs)]

pub mod broker;
pub mod process;
pub mod secrets;
pub mod topic;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use broker::{bootstrap, create_topics, settings};
pub use process::{repo_root, run_ok, sigterm, wait_exit, workspace_bin, Guard};
pub use topic::{committed, produce, read_topic, Received, Record};

/// A name no other test or run has used: `<prefix>-<pid>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Polls `condition` every 50 ms until it holds; panics after `timeout` naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts how often each value occurs.
pub fn tally<T: std::hash::Hash + Eq>(values: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for value in values {
        *counts.entry(value).or_insert(0) += 1;
    }
    counts
}
