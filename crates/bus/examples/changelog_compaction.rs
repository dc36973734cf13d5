//! Does the broker compact a changelog? Writes UPDATES updates round-robin over KEYS keys to a
//! new compacted changelog partition, then restores it every INTERVAL seconds for MINUTES
//! minutes and prints the watermarks and how many records the restore read: a compacting
//! broker makes the count fall towards KEYS.
//!
//! ```sh
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --release -p bus --example changelog_compaction \
//!     -- [KEYS [UPDATES [MINUTES [INTERVAL]]]]      # defaults 100 100000 15 30
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
    println!("wrote {updates} updates to {keys} keys of {topic}");
    println!(
        "{:>8}  {:>8}  {:>8}  {:>10}  {:>6}",
        "minute", "low", "high", "read", "keys"
    );

    let started = Instant::now();
    loop {
        let restored = changelog::restore(&settings, &topic, 0, std::future::pending()).await?;
        let stats = &restored.stats;
        println!(
            "{:>8.1}  {:>8}  {:>8}  {:>10}  {:>6}",
            started.elapsed().as_secs_f64() / 60.0,
            stats.low,
            stats.high,
            stats.records,
            stats.keys
        );
        assert_eq!(stats.keys as u64, keys, "every key is restored");
        for (k, name) in names.iter().enumerate() {
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
