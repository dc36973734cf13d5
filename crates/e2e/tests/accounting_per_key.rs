//! The accounting harness with per-key state: card payments keyed by card (`generator
//! --scenario payments --key-field card`, 500/s) through detectors whose model has per-key
//! features, under each disturbance (a detector killed with SIGKILL, detectors added and
//! removed, the broker restarted, the broker down 10 s). Every anomaly's `features` must equal
//! the offline computation over the card's earlier payments, bit for bit; no expected anomaly
//! may be lost and none invented; duplicates are reported.
//!
//! It starts its own broker (Tansu, sqlite storage). `ACCOUNTING_RECORDS` changes the size;
//! `cargo run -p e2e --example accounting -- --stream per-key` runs the full-size table.

use e2e::accounting::{self, Scenario, Settings, Stream, Table};

#[test]
fn every_anomaly_of_a_per_key_model_has_the_uninterrupted_features_under_each_disturbance() {
    let records = std::env::var("ACCOUNTING_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let work_dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        records,
        rate: 500.0,
        seed: 13,
        work_dir: work_dir.path().to_path_buf(),
        stream: Stream::PerKey,
    };
    let accounts = accounting::run(&Scenario::ALL, &settings);
    println!("\n{}", Table(&accounts));

    for account in &accounts {
        account.assert_accounted(records);
        let name = account.scenario.name();
        assert!(account.expected >= 20, "{name}: too few anomalies to tell");
        assert_eq!(
            account.features_checked,
            account.found + account.duplicates,
            "{name}: every anomaly record's features compared"
        );
        assert_eq!(
            account.features_differ, 0,
            "{name}: anomalies whose features differ from the uninterrupted run's"
        );
    }
}
