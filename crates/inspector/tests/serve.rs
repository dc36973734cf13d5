//! `inspector serve` under load and bad input, over loopback against a real broker: 220 event
//! streams at once, each receiving fresh frames; unknown paths, oversize and malformed
//! queries, other methods and garbage get clear statuses; a client that never reads is
//! dropped without holding the others back; past --max-connections a connection is answered
//! 503; and through all of it the server keeps answering. Every loop is counted and every
//! read has a time-out, so the test ends by itself.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{bootstrap, create_topics, now_ms, produce, unique, wait_until, Record};

const INSPECTOR: &str = env!("CARGO_BIN_EXE_inspector");
/// Event streams held open at once.
const STREAMS: usize = 220;
/// The server's connection limit in this test.
const MAX_CONNECTIONS: usize = 240;

/// A running `inspector serve`, its address and its log lines so far.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fresh topics with 60 anomalies (so each frame is tens of kilobytes), and a server on them.
fn server() -> Server {
    let (input, output, dlq) = (
        unique("t-serve-in"),
        unique("t-serve-out"),
        unique("t-serve-dlq"),
    );
    create_topics(&[(&input, 2), (&output, 1), (&dlq, 1)]);
    let now = now_ms();
    let anomalies: Vec<Record> = (0..60)
        .map(|id| Record::at(0, id.to_string(), format!(
                r#"{{"id": {id}, "data": [[{id}.25, -3.5]], "score": [-0.71], "anomaly_score": 0.71,
                "threshold": 0.62, "model": "0123456789abcdef", "detected_at": "2026-01-01T00:00:00Z",
                "partition": 0, "offset": {id}, "explanation": [{{"feature": "amount",
                "value": {id}.25, "direction": "high", "share": 0.6}}]}}"#
            )
            .into_bytes(), now))
        .collect();
    produce(&output, &anomalies);
    let mut child = Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "serve", "--addr", "127.0.0.1:0"])
        .args(["--input-topic", &input, "--output-topic", &output])
        .args(["--dlq-topic", &dlq, "--group", &unique("g-serve")])
        .args([
            "--from-beginning",
            "--max-connections",
            &MAX_CONNECTIONS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    let addr = said
        .trim()
        .strip_prefix("inspector: serving http://")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("serve said {said:?}"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = BufReader::new(child.stderr.take().unwrap());
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    Server { child, addr, log }
}

/// Sends `request` bytes on a fresh connection; the answer's status and text (read until
/// the server closes, at most 10 s).
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer (and close) before it has read all of an oversize request.
    let _ = socket.write_all(request);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// An open event stream and how many page frames it has received.
struct EventStream {
    socket: TcpStream,
    received: String,
    frames: usize,
}

impl EventStream {
    fn open(addr: SocketAddr) -> EventStream {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        EventStream {
            socket,
            received: String::new(),
            frames: 0,
        }
    }

    /// Reads what has come, waiting at most `wait` for something.
    fn read(&mut self, wait: Duration) {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buffer = [0; 64 * 1024];
        match self.socket.read(&mut buffer) {
            Ok(n) => {
                self.received
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
                self.frames = self.received.matches("data: {").count();
                // Keep only the tail (a frame may be cut across reads).
                if self.received.len() > 256 * 1024 {
                    let cut = self.received.len() - 64;
                    let cut = (cut..self.received.len())
                        .find(|&i| self.received.is_char_boundary(i))
                        .unwrap_or(cut);
                    let counted = self.received[..cut].matches("data: {").count();
                    self.received.drain(..cut);
                    self.frames = counted + self.received.matches("data: {").count();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("event stream: {e}"),
        }
    }
}

#[test]
fn the_server_holds_many_streams_refuses_bad_input_and_drops_a_client_that_never_reads() {
    let server = server();
    let addr = server.addr;
    let reasons = |text: &str| text.matches("\"reason\":{\"feature\":\"amount\"").count();
    wait_until(Duration::from_secs(30), "a page with the anomalies", || {
        let (status, text) = get(addr, "/api/anomalies?limit=3");
        status == 200 && reasons(&text) == 3
    });

    // Bad input: clear statuses, each on its own connection.
    let long = "a".repeat(10_000);
    for (target, status) in [
        ("/nothing-here", 404),
        ("/app.js/../../etc/passwd", 404),
        (&format!("/?q={long}") as &str, 414),
        ("/api/anomalies?limit=abc", 400),
        ("/api/anomalies?limit=100000", 400),
        ("/?%zz", 400),
        ("/events?x=1&x=2", 400),
    ] {
        let (got, text) = get(addr, target);
        assert_eq!(got, status, "GET {:.60}: {text:.300}", target);
    }
    let (got, _) = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(got, 405);
    let (got, _) = exchange(addr, b"\x00\x01\x02 not http at all\r\n\r\n");
    assert_eq!(got, 400, "garbage");
    // Headers beyond the server's buffer: refused by hyper before any of our code runs.
    let huge = format!(
        "GET /?q={} HTTP/1.1\r\nHost: t\r\n\r\n",
        "b".repeat(100_000)
    );
    let (got, text) = exchange(addr, huge.as_bytes());
    assert!(
        matches!(got, 414 | 431) || text.is_empty(),
        "{got}: {text:.200}"
    );
    let (got, anomalies) = get(addr, "/api/anomalies?limit=3");
    assert_eq!(got, 200);
    assert_eq!(
        anomalies
            .matches("\"reason\":{\"feature\":\"amount\"")
            .count(),
        3,
        "{anomalies:.600}"
    );

    // A client that asks for the stream and never reads, with a small receive window.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled.set_recv_buffer_size(4096).unwrap();
    stalled.connect(&addr.into()).unwrap();
    let mut stalled: TcpStream = stalled.into();
    stalled
        .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();

    // Many streams at once, each receiving new frames.
    let mut streams: Vec<EventStream> = (0..STREAMS).map(|_| EventStream::open(addr)).collect();
    let started = Instant::now();
    for round in 0..120 {
        for stream in &mut streams {
            stream.read(Duration::from_millis(1));
        }
        if streams.iter().all(|s| s.frames >= 3) {
            break;
        }
        assert!(
            round < 119,
            "streams starved: {:?}",
            streams.iter().map(|s| s.frames).min()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "{STREAMS} streams had three frames each after {:?}",
        started.elapsed()
    );

    // The stalled client is dropped while the others keep receiving.
    let dropped = |server: &Server| {
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("dropped an event stream"))
    };
    let before: Vec<usize> = streams.iter().map(|s| s.frames).collect();
    let waiting = Instant::now();
    for round in 0..240 {
        for stream in &mut streams {
            stream.read(Duration::from_millis(1));
        }
        if dropped(&server) {
            break;
        }
        assert!(round < 239, "the client that never reads was not dropped");
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "the client that never reads was dropped {:?} later",
        waiting.elapsed()
    );
    for _ in 0..8 {
        for stream in &mut streams {
            stream.read(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let gained = streams
        .iter()
        .zip(&before)
        .filter(|(s, &b)| s.frames > b)
        .count();
    assert_eq!(gained, STREAMS, "every reading stream kept receiving");
    // Its socket was closed by the server: reading it now ends (after what was buffered).
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = vec![0; 1 << 20];
    let mut ended = false;
    for _ in 0..1000 {
        match stalled.read(&mut sink) {
            Ok(0) | Err(_) => {
                ended = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(ended, "the dropped stream's socket is closed");

    // Past the limit: 503, said in so many words.
    let mut idle = Vec::new();
    let mut refused = None;
    for _ in 0..(MAX_CONNECTIONS - STREAMS + 10) {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut answer = [0; 256];
        if let Ok(n) = socket.read(&mut answer) {
            if n > 0 {
                refused = Some(String::from_utf8_lossy(&answer[..n]).into_owned());
                break;
            }
        }
        idle.push(socket);
    }
    let refused = refused.expect("a connection past the limit is refused");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too many connections"), "{refused}");
    assert!(
        idle.len() <= MAX_CONNECTIONS - STREAMS,
        "{} idle accepted",
        idle.len()
    );
    drop(idle);
    drop(streams);

    // And it still answers.
    wait_until(Duration::from_secs(15), "the page again", || {
        get(addr, "/").0 == 200
    });
    let (got, page) = get(addr, "/api/snapshot");
    assert_eq!(got, 200);
    assert!(page.contains("\"stats\":{"), "{page:.200}");
}

#[test]
fn a_bad_model_or_a_missing_topic_is_refused_at_start() {
    let missing = unique("t-missing");
    let topics = [
        "--input-topic",
        missing.as_str(),
        "--output-topic",
        "o",
        "--dlq-topic",
        "d",
    ];
    let dir = std::env::temp_dir().join(unique("serve-model"));
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_model = dir.join("model.bin");
    std::fs::write(&not_a_model, b"not a model").unwrap();
    let refused = |extra: &[&str]| {
        let output = Command::new(INSPECTOR)
            .args(["--brokers", &bootstrap(), "serve", "--addr", "127.0.0.1:0"])
            .args(topics)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(&["--model", not_a_model.to_str().unwrap()]);
    assert!(stderr.contains("is not a usable model"), "{stderr}");
    testkit::settings(); // the broker is there: the topic is what is missing
    let stderr = refused(&[]);
    assert!(
        stderr.contains(&format!("topic {missing} does not exist")),
        "{stderr}"
    );
    let stderr = refused(&["--max-connections", "0"]);
    assert!(stderr.contains("--max-connections"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
