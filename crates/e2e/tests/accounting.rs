//! The accounting harness at CI size: a seeded stream of 20,000 ids (1,000/s) through the
//! detectors under each disturbance (a detector killed, detectors added and removed, the broker
//! restarted, the broker down 10 s). No expected anomaly may be lost (missing although the
//! group committed past its record), none may appear that offline scoring does not flag, and
//! every transaction must reach the broker; duplicates are reported.
//!
//! It starts its own broker (Tansu, sqlite storage): two scenarios kill it.
//! `ACCOUNTING_RECORDS` changes the size; `scripts/accounting.sh` runs the full-size table.

use e2e::accounting::{self, Scenario, Settings, Stream, Table};

#[test]
fn every_record_is_accounted_for_under_each_disturbance() {
    let records = std::env::var("ACCOUNTING_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let work_dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        records,
        rate: 1_000.0,
        seed: 11,
        work_dir: work_dir.path().to_path_buf(),
        stream: Stream::Synthetic,
    };
    let accounts = accounting::run(&Scenario::ALL, &settings);
    println!("\n{}", Table(&accounts));

    for account in &accounts {
        account.assert_accounted(records);
        assert!(
            account.expected > records as usize / 2,
            "{}: ~70% are outliers",
            account.scenario.name()
        );
    }
}
