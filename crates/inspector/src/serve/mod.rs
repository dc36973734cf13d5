//! `inspector serve`: one page, everything in the binary, that updates itself every second
//! over server-sent events: records and anomalies per second, the anomaly share, the group's
//! lag and members, latency percentiles, the score histogram (and for a 2-feature model the
//! score contour with the latest points), the latest anomalies with their top reason, dead
//! letters by reason, and the model.
//!
//! Three threads of work: the reader (the loop `stats` uses, [`stats::live`](crate::stats::live),
//! counting into a [`Board`]) makes one [`Page`] a second and publishes it serialized once;
//! the group's description is asked on a thread of its own (a slow or failing coordinator
//! never delays a page); and a small tokio runtime serves HTTP ([`http`]), every event stream
//! sending the same published bytes.
//!
//! # Layout
//!
//! - [`page`]: the typed page ([`Page`]) sent each second (holds a `stats` [`Snapshot`]).
//! - [`board`]: the counts behind it (uses `page`, `model`, `stats`, `plot`'s histogram).
//! - [`model`]: the `--model` file and its contour (uses `page`, `plot`'s grid).
//! - [`routes`]: requests checked into routes (uses `board`'s bounds).
//! - `assets`: the page's files. [`http`]: the server (uses `routes`, `assets`, `page`).
//! - this module: the command, tying them together.
//!
//! [`Snapshot`]: crate::stats::Snapshot

mod assets;
pub mod board;
pub mod http;
pub mod model;
pub mod page;
pub mod routes;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use board::Board;
pub use page::Page;

use crate::cli::ServeArgs;
use crate::stats::group::describe_group;
use crate::stats::{live, now_ms, Reader, Stats};
use http::{Frame, Shared};
use model::LoadedModel;
use page::GroupView;

/// The group is described this often while its coordinator answers.
const DESCRIBE_EVERY: Duration = Duration::from_secs(3);
/// … and this often after it failed to (a broker without DescribeGroups).
const DESCRIBE_RETRY: Duration = Duration::from_secs(30);
/// The model file is checked for changes this often.
const MODEL_CHECK: Duration = Duration::from_secs(2);

/// Serves the page on `args.addr` until `shutdown` is cancelled (or `--seconds` pass),
/// writing the page's address to `out` once it listens.
pub fn serve(
    kafka: &bus::ClientSettings,
    args: &ServeArgs,
    out: &mut dyn Write,
    shutdown: &CancellationToken,
) -> Result<()> {
    if !(args.window > 0.0 && args.window.is_finite()) {
        bail!(
            "--window must be a positive number of seconds, not {}",
            args.window
        );
    }
    if !(10..=86_400).contains(&args.history) {
        bail!(
            "--history must be 10 to 86400 seconds, not {}",
            args.history
        );
    }
    if !(1..=100_000).contains(&args.max_connections) {
        bail!(
            "--max-connections must be 1 to 100000, not {}",
            args.max_connections
        );
    }
    let limit = args
        .seconds
        .map(|s| Duration::try_from_secs_f64(s).context("--seconds must be 0 or more"))
        .transpose()?;
    let model = args
        .model
        .as_deref()
        .map(LoadedModel::load)
        .transpose()?
        .map(Arc::new);
    let reader = Reader::new(kafka, &args.pipeline)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-http")
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.addr))
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let address = listener.local_addr()?;
    log::info!("serving the page on http://{address}/");
    writeln!(out, "inspector: serving http://{address}/")?;
    out.flush()?;

    // Cancelled by the caller, at --seconds, or when the reader fails.
    let stop = shutdown.child_token();
    let (frames, frames_seen) = watch::channel(Arc::new(Frame::empty()));
    let (drawings, drawing_seen) = watch::channel(model.as_ref().map(|m| m.drawing.clone()));
    let group = Arc::new(Mutex::new(GroupView {
        note: Some("asking the group's coordinator".into()),
        ..GroupView::default()
    }));
    let describing = {
        let (kafka, group, stop) = (kafka.clone(), Arc::clone(&group), stop.clone());
        let (id, topic) = (
            args.pipeline.group.clone(),
            args.pipeline.input_topic.clone(),
        );
        std::thread::Builder::new()
            .name("describe-group".into())
            .spawn(move || describe_loop(&kafka, &id, &topic, &group, &stop))?
    };
    let reading = {
        let stop = stop.clone();
        let stats = Stats::new(
            &args.pipeline.input_topic,
            &args.pipeline.output_topic,
            &args.pipeline.dlq_topic,
            Some((args.window * 1000.0) as i64),
            (!args.from_beginning).then(now_ms),
        );
        let mut board = Board::new(stats, &args.pipeline.group, args.history);
        board.set_model(model.clone());
        let reading = Reading {
            reader,
            from_beginning: args.from_beginning,
            limit,
            model,
            frames,
            drawings,
            group,
        };
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let result = reading.run(&mut board, &stop);
                stop.cancel();
                result
            })?
    };
    let shared = Shared {
        frames: frames_seen,
        model: drawing_seen,
        shutdown: stop.clone(),
    };
    runtime.block_on(http::serve_http(listener, shared, args.max_connections));
    let result = reading
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader thread failed")));
    if describing.join().is_err() {
        log::error!("the group thread failed");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    log::info!("stopped serving");
    result
}

/// The reader thread's part.
struct Reading {
    reader: Reader,
    from_beginning: bool,
    limit: Option<Duration>,
    model: Option<Arc<LoadedModel>>,
    frames: watch::Sender<Arc<Frame>>,
    drawings: watch::Sender<Option<bytes::Bytes>>,
    group: Arc<Mutex<GroupView>>,
}

impl Reading {
    /// Reads until `stop`, publishing a frame each second; rereads the model file when it
    /// changes (keeping the previous one while the new one is unreadable).
    fn run(mut self, board: &mut Board, stop: &CancellationToken) -> Result<()> {
        self.reader.start_live(self.from_beginning, board)?;
        let (mut seq, mut checked, mut model_error) = (0, Instant::now(), None::<String>);
        let (frames, drawings, group) = (&self.frames, &self.drawings, &self.group);
        let model = &mut self.model;
        live(
            &mut self.reader,
            board,
            self.limit,
            stop,
            |board, lag, _| {
                if let Some(current) = model.as_ref().filter(|_| checked.elapsed() >= MODEL_CHECK) {
                    checked = Instant::now();
                    if current.changed_on_disk() {
                        match LoadedModel::load(current.path()) {
                            Ok(new) => {
                                log::info!("the model file changed: now model {}", new.id);
                                let new = Arc::new(new);
                                board.set_model(Some(Arc::clone(&new)));
                                drawings.send_replace(Some(new.drawing.clone()));
                                *model = Some(new);
                                model_error = None;
                            }
                            Err(error) => {
                                let error = format!("{error:#}");
                                if model_error.as_ref() != Some(&error) {
                                    log::warn!("the model file changed but is unusable: {error}");
                                }
                                model_error = Some(error);
                            }
                        }
                    }
                }
                seq += 1;
                let view = group.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let page = board.page(now_ms(), lag.as_deref(), view, model_error.clone());
                frames.send_replace(Arc::new(Frame::new(seq, page)?));
                Ok(())
            },
        )
    }
}

/// Asks the group's coordinator for its members until `stop`, into `view`.
fn describe_loop(
    kafka: &bus::ClientSettings,
    group: &str,
    input_topic: &str,
    view: &Mutex<GroupView>,
    stop: &CancellationToken,
) {
    let set = |new: GroupView| *view.lock().unwrap_or_else(PoisonError::into_inner) = new;
    // A client of its own: a broker that drops the connection on DescribeGroups (Tansu 0.6)
    // must not take the reader's requests with it.
    let client = match kafka.base_consumer() {
        Ok(client) => client,
        Err(error) => {
            set(GroupView {
                note: Some(format!("cannot ask the group's coordinator: {error:#}")),
                ..GroupView::default()
            });
            return;
        }
    };
    let mut failed_before = false;
    while !stop.is_cancelled() {
        let wait = match describe_group(&client, group, Duration::from_secs(3)) {
            Ok((state, members)) => {
                failed_before = false;
                let mut owners = std::collections::BTreeMap::new();
                for member in &members {
                    for owned in member.assignment.iter().filter(|a| a.topic == input_topic) {
                        for &partition in &owned.partitions {
                            owners.insert(
                                partition,
                                format!("{} @ {}", member.client_id, member.host),
                            );
                        }
                    }
                }
                let note = members
                    .is_empty()
                    .then(|| "no member: is a detector running?".to_string());
                set(GroupView {
                    state: Some(state),
                    members,
                    owners,
                    note,
                });
                DESCRIBE_EVERY
            }
            Err(error) => {
                if !failed_before {
                    log::warn!("group {group}: {error:#}; asking again every {DESCRIBE_RETRY:?}");
                }
                failed_before = true;
                set(GroupView {
                    note: Some(format!("owners unknown: {error:#}")),
                    ..GroupView::default()
                });
                DESCRIBE_RETRY
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
