//! Graceful shutdown under load: SIGTERM mid-stream ends the detector with exit 0 within 10 s,
//! its offsets committed, so a restarted detector in the same group reads exactly the rest:
//! nothing lost, nothing read twice.

use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use e2e::Pipeline;
use testkit::{read_topic, run_ok, unique, wait_until, Guard};

const RECORDS: u64 = 100_000;

fn consumed(summary: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|field| field.strip_prefix("consumed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no consumed= in {summary:?}"))
}

#[test]
fn sigterm_commits_and_a_restart_reads_only_the_rest() {
    let pipeline = Pipeline::new("shutdown", 3);
    pipeline.generate(RECORDS, 0, 0);
    let group = unique("shutdown-group");
    let detector = |extra: &[&str]| {
        pipeline
            .detector(&group)
            // Small batches keep the first detector mid-stream when the signal comes.
            .args(["--batch-size", "100"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    let mut first = Guard(detector(&[]));
    read_topic(&pipeline.anomalies, Duration::from_secs(60), |got| {
        got.len() >= 1_000
    });
    let signalled = Instant::now();
    run_ok(Command::new("kill").args(["-TERM", &first.0.id().to_string()]));
    wait_until(
        Duration::from_secs(10),
        "the detector to exit after SIGTERM",
        || first.0.try_wait().unwrap().is_some(),
    );
    let stopped_in = signalled.elapsed();
    let status = first.0.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM must end the detector with exit 0, not {status}"
    );
    let mut summary = String::new();
    std::io::Read::read_to_string(first.0.stdout.as_mut().unwrap(), &mut summary).unwrap();
    let before = consumed(&summary);
    assert!(
        before > 0 && before < RECORDS,
        "not stopped mid-stream: {summary}"
    );

    let second = detector(&["--idle-exit", "5"]).wait_with_output().unwrap();
    assert!(second.status.success());
    let after = consumed(&String::from_utf8_lossy(&second.stdout));
    println!("stopped in {stopped_in:?}; first read {before}, the restart {after}, of {RECORDS}");
    assert_eq!(
        before + after,
        RECORDS,
        "the restart re-read committed records or lost some"
    );
}
