//! Does the broker compact a changelog? Writes UPDATES updates round-robin over KEYS keys to a
//! new compacted changelog partition, then a tombstone for each of the first GONE keys, then
//! restores it every INTERVAL seconds for MINUTES minutes and prints the watermarks, how
//! many records the restore read and how long it took: a compacting broker makes the count fall towards KEYS (a
//! tombstone stays until the broker removes it, Kafka after `delete.retention.ms`).
//!
//! ```sh
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --release -p bus --example changelog_compaction \
//!     -- [KEYS [UPDATES [MINUTES [INTERVAL [GONE]]]]]      # defaults 100 100000 15 30 0
//! ```

use std::time::{Duration, Instant};

use bus::changelog::{self, Update};
use bus::ClientSettings;

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .map(|text| text.parse().expect("a number"))
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> bus::Result<()> {
    let (keys, updates, minutes, interval) = (arg(1, 100), arg(2, 100_000), arg(3, 15), arg(4, 30));
    let gone = arg(5, 0).min(keys) as usize;
    let brokers = std::env::var(bus::settings::BOOTSTRAP_ENV)
        .unwrap_or_else(|_| bus::settings::DEFAULT_BROKERS.to_string());
    let settings = ClientSettings::new(brokers);
    bus::wait_for_broker(&settings, Duration::from_secs(15))?;
    let suffix = std::process::id();
    let input = format!("compaction-input-{suffix}");
    bus::ensure_topics(&settings, &[(&input, 1)]).await?;
    let topic = changelog::ensure(&settings, "compaction", &input, 1).await?;

    let producer = settings.future_producer(None)?;
    let names: Vec<Vec<u8>> = (0..keys).map(|k| format!("key-{k}").into_bytes()).collect();
    let values: Vec<Vec<u8>> = (0..updates)
        .map(|u| format!("{u:060}").into_bytes())
        .collect();
    let batch: Vec<Update<'_>> = (0..updates as usize)
        .map(|u| Update::put(0, &names[u % keys as usize], &values[u]))
        .collect();
    changelog::write(&producer, &topic, &batch).await?;
    let tombstones: Vec<Update<'_>> = names[..gone]
        .iter()
        .map(|name| Update::tombstone(0, name))
        .collect();
    changelog::write(&producer, &topic, &tombstones).await?;
    println!("wrote {updates} updates to {keys} keys of {topic}, then {gone} tombstones");
    println!(
        "{:>8}  {:>8}  {:>8}  {:>10}  {:>6}  {:>9}",
        "minute", "low", "high", "read", "keys", "restore s"
    );

    let started = Instant::now();
    loop {
        let restored = changelog::restore(&settings, &topic, 0, std::future::pending()).await?;
        let stats = &restored.stats;
        println!(
            "{:>8.1}  {:>8}  {:>8}  {:>10}  {:>6}  {:>9.2}",
            started.elapsed().as_secs_f64() / 60.0,
            stats.low,
            stats.high,
            stats.records,
            stats.keys,
            stats.elapsed.as_secs_f64()
        );
        assert_eq!(
            stats.keys,
            keys as usize - gone,
            "every live key is restored"
        );
        for (k, name) in names.iter().enumerate().skip(gone) {
            let newest = (0..updates as usize).rev().find(|u| u % keys as usize == k);
            let expected = newest.map(|u| values[u].as_slice());
            assert_eq!(restored.states.get(name).map(Vec::as_slice), expected);
        }
        if started.elapsed() >= Duration::from_secs(minutes * 60) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(interval)).await;
    }
    Ok(())
}
