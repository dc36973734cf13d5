//! The HTTP/1.1 server (hyper): the page's files, its event stream and a little JSON, with
//! bounds everywhere a client could make it grow.
//!
//! - Connections: at most `max_connections` at once; one more is answered 503 and closed.
//! - Requests: headers at most [`MAX_BUF`] bytes (hyper answers 431 beyond), read within
//!   [`HEADER_READ_TIMEOUT`] (idle keep-alive connections are closed then too); the address
//!   is checked by [`route`] (400, 404, 405, 414).
//! - Event streams: every stream sends the same bytes, made once a second by the reader
//!   (a `watch` channel holds the newest [`Frame`]; a slow stream skips frames, it never
//!   queues them). What waits for one client is bounded by hyper's write buffer ([`MAX_BUF`])
//!   and the socket's send buffer ([`SEND_BUFFER`]); a stream that falls [`STALL_FRAMES`]
//!   frames behind (its client stopped reading) is dropped, so it holds nothing for long.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame as BodyFrame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::assets;
use super::page::Page;
use super::routes::{route, Route};

/// Request headers (and hyper's write buffer) at most this many bytes.
pub const MAX_BUF: usize = 16 * 1024;
/// A request's headers must come within this time (also the keep-alive idle limit).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The socket send buffer asked for each connection (the kernel doubles it).
pub const SEND_BUFFER: usize = 32 * 1024;
/// An event stream this many frames behind the newest is dropped.
pub const STALL_FRAMES: u64 = 5;
/// Connections refused with a 503 at once, at most (beyond: closed without an answer).
const REFUSING: usize = 64;
/// Time given to open connections at the stop.
const GRACE: Duration = Duration::from_secs(2);

/// One second's page, serialized once for every client.
#[derive(Debug)]
pub struct Frame {
    /// 1 for the first reading, then one more per second; 0 before any.
    pub seq: u64,
    /// The page.
    pub page: Option<Arc<Page>>,
    /// The page as JSON.
    pub json: Bytes,
    /// The page as a server-sent event (`data: …\n\n`).
    pub event: Bytes,
}

impl Frame {
    /// The frame before the first reading.
    pub fn empty() -> Self {
        Self {
            seq: 0,
            page: None,
            json: Bytes::from_static(b"null"),
            event: Bytes::from_static(b": no reading yet\n\n"),
        }
    }

    /// Frame `seq` of `page`.
    pub fn new(seq: u64, page: Page) -> serde_json::Result<Self> {
        let json = serde_json::to_vec(&page)?;
        let mut event = Vec::with_capacity(json.len() + 8);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(&json);
        event.extend_from_slice(b"\n\n");
        Ok(Self {
            seq,
            page: Some(Arc::new(page)),
            json: Bytes::from(json),
            event: Bytes::from(event),
        })
    }
}

/// What every connection reads.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The newest frame.
    pub frames: watch::Receiver<Arc<Frame>>,
    /// `/api/model`'s JSON, when a model file is given.
    pub model: watch::Receiver<Option<Bytes>>,
    /// Cancelled at the stop.
    pub shutdown: CancellationToken,
}

/// How far one connection's event stream got.
#[derive(Debug, Default)]
struct Progress {
    streaming: AtomicBool,
    delivered: AtomicU64,
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves `listener` until `shared.shutdown` is cancelled, then gives open connections
/// a few seconds to finish.
pub async fn serve_http(listener: TcpListener, shared: Shared, max_connections: usize) {
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, mostly: wait rather than spin.
                log::warn!("accepting a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            tasks.spawn(connection(stream, shared.clone(), permit));
        } else if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
            tasks.spawn(refuse_busy(stream, permit));
        }
    }
    tasks.close();
    if tokio::time::timeout(GRACE * 2, tasks.wait()).await.is_err() {
        log::warn!("some connections were still open at the stop");
    }
}

async fn refuse_busy(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\n\
        content-type: text/plain; charset=utf-8\r\ncontent-length: 22\r\nconnection: close\r\n\r\n\
        too many connections\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
}

async fn connection(stream: TcpStream, shared: Shared, _permit: OwnedSemaphorePermit) {
    let _ = stream.set_nodelay(true);
    if let Err(error) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER) {
        log::debug!("send buffer: {error}");
    }
    let progress = Arc::new(Progress::default());
    let service = {
        let (shared, progress) = (shared.clone(), Arc::clone(&progress));
        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |target| target.as_str());
            let response = respond(request.method().as_str(), target, &shared, &progress);
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    log::debug!("connection ended: {error}");
                }
                return;
            }
            () = stalled(&progress, &shared.frames) => {
                log::info!("dropped an event stream {STALL_FRAMES} frames behind: its client \
                            stopped reading");
                return;
            }
            () = shared.shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(GRACE), if closing => return,
        }
    }
}

/// Returns once this connection's event stream is [`STALL_FRAMES`] behind.
async fn stalled(progress: &Progress, frames: &watch::Receiver<Arc<Frame>>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        if progress.streaming.load(Ordering::Relaxed) {
            let newest = frames.borrow().seq;
            if newest.saturating_sub(progress.delivered.load(Ordering::Relaxed)) >= STALL_FRAMES {
                return;
            }
        }
    }
}

fn respond(
    method: &str,
    target: &str,
    shared: &Shared,
    progress: &Arc<Progress>,
) -> Response<Body> {
    let route = match route(method, target) {
        Ok(route) => route,
        Err(refusal) => {
            log::debug!(
                "{method} {target:.80}: {} {}",
                refusal.status,
                refusal.message
            );
            return text(refusal.status, refusal.message);
        }
    };
    match route {
        Route::Page => {
            let mut response = full(200, "text/html; charset=utf-8", assets::INDEX.into());
            response.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
            );
            response
        }
        Route::Asset(name) => match assets::asset(name) {
            Some((content_type, body)) => full(200, content_type, body.into()),
            None => text(404, format!("nothing at /{name}")),
        },
        Route::Events => events(shared, Arc::clone(progress)),
        Route::Snapshot => {
            let frame = Arc::clone(&shared.frames.borrow());
            if frame.page.is_none() {
                return not_yet();
            }
            full(200, "application/json", frame.json.clone())
        }
        Route::Model => match shared.model.borrow().clone() {
            Some(drawing) => full(200, "application/json", drawing),
            None => text(404, "no model: serve was started without --model"),
        },
        Route::Anomalies { limit } => {
            let Some(page) = shared.frames.borrow().page.clone() else {
                return not_yet();
            };
            let latest = &page.latest[..limit.min(page.latest.len())];
            match serde_json::to_vec(latest) {
                Ok(json) => full(200, "application/json", json.into()),
                Err(error) => text(500, format!("cannot write the anomalies: {error}")),
            }
        }
    }
}

/// The event stream: a `retry` hint, the newest frame at once, then each new one.
fn events(shared: &Shared, progress: Arc<Progress>) -> Response<Body> {
    let hint = futures::stream::once(async {
        Ok::<_, Infallible>(BodyFrame::data(Bytes::from_static(b"retry: 3000\n\n")))
    });
    let state = (
        shared.frames.clone(),
        shared.shutdown.clone(),
        progress,
        false,
    );
    let frames = futures::stream::unfold(
        state,
        |(mut frames, shutdown, progress, started)| async move {
            if started {
                tokio::select! {
                    changed = frames.changed() => changed.ok()?,
                    () = shutdown.cancelled() => return None,
                }
            } else {
                progress.streaming.store(true, Ordering::Relaxed);
            }
            let frame = Arc::clone(&frames.borrow_and_update());
            progress.delivered.store(frame.seq, Ordering::Relaxed);
            let data = BodyFrame::data(frame.event.clone());
            Some((Ok(data), (frames, shutdown, progress, true)))
        },
    );
    let mut response =
        Response::new(StreamBody::new(futures::StreamExt::chain(hint, frames)).boxed());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn full(status: u16, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn text(status: u16, message: impl Into<String>) -> Response<Body> {
    let mut message = message.into();
    message.push('\n');
    full(status, "text/plain; charset=utf-8", Bytes::from(message))
}

fn not_yet() -> Response<Body> {
    let mut response = text(503, "no reading yet: try again in a second");
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
