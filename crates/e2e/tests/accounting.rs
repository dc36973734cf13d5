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
        let name = account.scenario.name();
        assert!(
            account.mid_stream,
            "{name}: the stream ended before the disturbance"
        );
        assert!(
            account
                .generator
                .contains(&format!("acknowledged={records} failed=0")),
            "{name}: the generator lost records: {}",
            account.generator
        );
        assert_eq!(
            account.transactions_missing, 0,
            "{name}: transactions missing"
        );
        assert!(
            account.expected > records as usize / 2,
            "{name}: ~70% are outliers"
        );
        assert_eq!(account.lost, 0, "{name}: expected anomalies lost");
        // Records not yet read wait, uncommitted, in the topic: not lost. They come only from
        // Tansu 0.6.0 assigning a killed member's partition to nobody (README, Known limits);
        // anywhere else they would mean a detector stopped reading.
        if account.scenario == Scenario::DetectorKilled {
            if account.pending > 0 {
                println!(
                    "{name}: {} expected anomalies wait in a partition Tansu assigned to nobody",
                    account.pending
                );
            }
        } else {
            assert_eq!(account.pending, 0, "{name}: records left unread");
        }
        assert_eq!(
            account.unexpected, 0,
            "{name}: anomalies offline scoring does not flag"
        );
        // Every detector the harness did not kill ends cleanly with its summary: none
        // crashed when the broker went away or its partitions moved.
        let killed = usize::from(account.scenario == Scenario::DetectorKilled);
        let unclean: Vec<_> = account
            .detectors
            .iter()
            .filter(|line| !line.contains(": detector: consumed="))
            .collect();
        assert_eq!(unclean.len(), killed, "{name}: {unclean:?}");
    }
}
