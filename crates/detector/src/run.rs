//! A run from start to stop ([`run`]): connect, pick the delivery mode's loop, and shut down
//! (flush, final commit, leave the group, summary line).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::consumer::Consumer as _;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::util::Timeout;

use crate::config::{Config, Topics};
use crate::reload::ModelWatcher;
use crate::scoring::Scorer;
use crate::worker::{Progress, Stats, Stop, Worker, SHUTDOWN_FLUSH};

/// Runs until `shutdown` resolves (or a `--max-records` / `--idle-exit` limit), then stops
/// consuming, waits (at most [`SHUTDOWN_DEADLINE`](crate::SHUTDOWN_DEADLINE)) for the outputs in flight, stores and
/// commits their offsets, flushes, leaves the group and prints one summary line.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Stats> {
    // Watch the model file from now: a model replaced while the broker is awaited is seen.
    let watcher = ModelWatcher::new(config.model_path.as_deref(), config.reload.clone());
    let forest = &config.model.forest;
    log::info!(
        "model {} ({}): {} trees, {} features, threshold {:.4}; reads {}",
        config.model.id,
        config
            .model_path
            .as_ref()
            .map_or("in memory".into(), |path| path.display().to_string()),
        forest.n_trees(),
        forest.n_features(),
        forest.threshold(),
        config.model.describe_features()
    );
    log::info!(
        "reading {} in group {}; anomalies to {}, dead letters to {}; batches of up to {} \
         records, {}, {}",
        config.topics.input,
        config.group,
        config.topics.output,
        config.topics.dead_letters,
        config.batch_size,
        if config.batch_wait.is_zero() {
            "scored as they arrive".to_string()
        } else {
            format!("waiting up to {:?} for more", config.batch_wait)
        },
        match &config.transactional_id {
            Some(id) => format!("exactly-once, one transaction per batch (transactional.id {id})"),
            None => format!("at-least-once, {} in flight", config.in_flight_batches),
        }
    );
    let metrics = config.metrics.clone();
    if let Some(address) = &config.metrics_addr {
        metrics.serve(address)?;
    }
    log::info!("connecting: {}", config.kafka.describe());
    let kafka = config.kafka.clone();
    let startup_timeout = config.startup_timeout;
    tokio::task::spawn_blocking(move || bus::wait_for_broker(&kafka, startup_timeout))
        .await
        .context("broker check failed")??;
    let producer = config.producer()?;
    if let Some(id) = &config.transactional_id {
        crate::exactly_once::init(
            &producer,
            &config.kafka,
            id,
            config.startup_timeout.min(Duration::from_secs(30)),
        )
        .await?;
    }
    warm_up(&producer, &config.topics).await;
    // The largest output each topic takes: larger ones are reduced before they are sent.
    let producer_limit = crate::limits::producer_limit(&config.kafka.producer_config(None)?);
    let output_limits = crate::limits::learn(
        &config.kafka,
        producer_limit,
        &config.topics.output,
        &config.topics.dead_letters,
    )
    .await;
    // Per-key features: the changelog, before the group is joined.
    let state_log = match config.model.per_key() {
        Some(_) => Some(Arc::new(
            crate::statelog::StateLog::open(
                &config.kafka,
                &config.group,
                &config.topics.input,
                config.metrics.clone(),
            )
            .await?,
        )),
        None => None,
    };
    let consumer = Arc::new(config.consumer()?);

    let Config {
        model,
        topics,
        limits,
        ..
    } = config;
    let mut scorer = Scorer::new(model, limits, &topics.input);
    scorer.set_output_limits(output_limits);
    let mut worker = Worker {
        scorer,
        watcher,
        model_path: config.model_path.clone(),
        metrics,
        topics,
        batch_size: config.batch_size,
        batch_wait: config.batch_wait,
        max_records: config.max_records,
        idle_exit: config.idle_exit,
        stats: Stats::default(),
        progress: Progress::new(),
        first_record_at: None,
        last_record: Instant::now(),
        last_done_at: None,
        state_log,
        kafka: config.kafka.clone(),
        group: config.group.clone(),
        expired_at: Instant::now(),
        generation: 0,
        received_at: Vec::new(),
    };
    let exactly_once = config.transactional_id.is_some();
    let result = if exactly_once {
        crate::exactly_once::run(&mut worker, &consumer, &producer, shutdown).await
    } else {
        crate::at_least_once::run(
            &mut worker,
            &consumer,
            &producer,
            config.in_flight_batches,
            shutdown,
        )
        .await
    };
    let commit_result = match result {
        Ok(stop) => {
            match stop {
                Stop::Signal => log::info!("shutdown requested: stopping"),
                Stop::MaxRecords(max) => log::info!("read {max} records: stopping"),
                Stop::Idle(idle) => log::info!("no record for {idle:.1?}: stopping"),
            }
            Ok(())
        }
        Err(error) => Err(error),
    };
    // Stored offsets committed now rather than at the next auto-commit (at-least-once; in
    // exactly-once mode the transactions committed them), then leave the group. Both with
    // deadlines: a broker that is gone must not hold the exit.
    let flushing = producer.clone();
    let flushed =
        tokio::task::spawn_blocking(move || flushing.flush(Timeout::After(SHUTDOWN_FLUSH)));
    if let Ok(Ok(Err(error))) =
        tokio::time::timeout(SHUTDOWN_FLUSH + Duration::from_secs(1), flushed).await
    {
        log::warn!("flush: {error}");
    }
    if commit_result.is_ok() && !exactly_once {
        crate::at_least_once::commit(&consumer).await;
    }
    // Leaving the group is librdkafka's business from here (the consumer's close), and the
    // process does not wait for it past the runtime's shutdown (see main).
    // Leaving the group waits for the coordinator; a broker that is gone must not hold the
    // exit, so that happens on a blocking thread with a deadline (main does not wait for it).
    consumer.unsubscribe();
    let leaving = tokio::task::spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(SHUTDOWN_FLUSH, leaving).await.is_err() {
        log::warn!("the group was not left within {SHUTDOWN_FLUSH:?}; its coordinator will time the member out");
    }
    commit_result?;
    worker.stats.refused = worker.metrics.refused_total();
    let states = worker.scorer.states();
    if states.keys() > 0 {
        let (keys, bytes) = (states.keys(), states.memory_bytes());
        log::info!(
            "per-key state held at the end: {keys} keys of {} partitions, ~{bytes} bytes in \
             memory ({} bytes per key)",
            states.partitions(),
            bytes / keys
        );
    }
    worker.print_summary();
    Ok(worker.stats)
}

/// Looks up the output topics through the producer before the first batch, so its first
/// sends do not wait for their metadata (and a missing topic is reported up front).
async fn warm_up(producer: &FutureProducer<bus::LoggingContext>, topics: &Topics) {
    for topic in [&topics.output, &topics.dead_letters] {
        let producer = producer.clone();
        let name = topic.clone();
        let started = Instant::now();
        let found = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map(|metadata| {
                    metadata
                        .topics()
                        .iter()
                        .any(|t| t.error().is_none() && !t.partitions().is_empty())
                })
        })
        .await;
        match found {
            Ok(Ok(true)) => log::debug!("topic {topic} found in {:.1?}", started.elapsed()),
            Ok(Ok(false)) => {
                log::warn!("topic {topic} does not exist (yet); sends to it will wait for it")
            }
            Ok(Err(error)) => log::warn!("cannot look up topic {topic}: {error}"),
            Err(error) => log::warn!("cannot look up topic {topic}: {error}"),
        }
    }
}
