//! Benchmark: do 200 open event streams of `inspector serve` slow a detector down?
//!
//! On the broker at `$KAFKA_BOOTSTRAP`: RECORDS synthetic transactions are produced once into
//! a 3-partition topic; `inspector serve` watches the pipeline's topics (it reads every
//! anomaly the detectors write) for the whole run; then one detector reads all the records in
//! a fresh group, ROUNDS times with no client on the page and ROUNDS times with STREAMS event
//! streams open (one client thread reading them all, as browsers would), alternating
//! (ABBA). Printed: each run's records/s (from the detector's own first_ms/last_ms), the
//! medians, their ratio, and the serve process's CPU time per second of each run.
//!
//! ```text
//! cargo build --release --bins && cargo build --release -p inspector --example serve_streams
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 target/release/examples/serve_streams
//! ```
//!
//! Everything runs on this machine: the clients' CPU is taken from the same cores as the
//! detector's and the broker's, which makes the figure pessimistic for real browsers.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A workspace binary beside this example (`target/release/`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(|examples| examples.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build --release --bins",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `name=value` in the detector's summary line.
fn field(summary: &str, name: &str) -> f64 {
    summary
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.trim_end_matches("/s").parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {summary:?}"))
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0 // USER_HZ
}

/// STREAMS open event streams, read by one thread until dropped.
struct Clients {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn open(addr: SocketAddr, count: usize) -> Clients {
        let mut sockets: Vec<TcpStream> = (0..count)
            .map(|_| {
                let mut socket = TcpStream::connect(addr).expect("connect");
                socket
                    .write_all(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
                    .expect("request");
                socket.set_nonblocking(true).expect("nonblocking");
                socket
            })
            .collect();
        let (stop, bytes) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = {
            let (stop, bytes) = (Arc::clone(&stop), Arc::clone(&bytes));
            std::thread::spawn(move || {
                let mut buffer = vec![0; 256 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    let mut idle = true;
                    for socket in &mut sockets {
                        match socket.read(&mut buffer) {
                            Ok(0) => panic!("the server closed an event stream"),
                            Ok(n) => {
                                idle = false;
                                bytes.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            Err(e) => panic!("event stream: {e}"),
                        }
                    }
                    // Frames come once a second: a pass every 50 ms keeps up without spinning.
                    if idle {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        };
        Clients {
            stop,
            bytes,
            thread: Some(thread),
        }
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn main() {
    let brokers = std::env::var("KAFKA_BOOTSTRAP").expect("set KAFKA_BOOTSTRAP");
    let records = setting("RECORDS", 200_000);
    let rounds = setting("ROUNDS", 4) as usize;
    let streams = setting("STREAMS", 200) as usize;
    let id = format!("bench-serve-{}", std::process::id());
    let (tx, an, dlq) = (format!("{id}-tx"), format!("{id}-an"), format!("{id}-dlq"));
    let dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let model = dir.join("model.bin");

    let inspector = binary("inspector");
    run(Command::new(&inspector)
        .args(["--brokers", &brokers, "create-topics"])
        .args([format!("{tx}:3"), an.clone(), dlq.clone()]));
    run(Command::new(binary("trainer"))
        .args(["fit", "--out"])
        .arg(&model));
    eprintln!("producing {records} records into {tx}");
    run(Command::new(binary("generator"))
        .args(["--brokers", &brokers, "--topic", &tx, "--rate", "0"])
        .args(["--count", &records.to_string(), "--seed", "1"]));

    let mut serve: Child = Command::new(&inspector)
        .args(["--brokers", &brokers, "serve", "--addr", "127.0.0.1:0"])
        .arg("--model")
        .arg(&model)
        .args([
            "--input-topic",
            &tx,
            "--output-topic",
            &an,
            "--dlq-topic",
            &dlq,
        ])
        .args(["--group", &format!("{id}-g0")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("inspector serve");
    let mut said = String::new();
    BufReader::new(serve.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("serve's address");
    let addr: SocketAddr = said
        .trim()
        .trim_start_matches("inspector: serving http://")
        .trim_end_matches('/')
        .parse()
        .expect("serve's address");

    // ABBA: with and without clients alternate, so drift hits both alike.
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut serve_cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut clients_cpu: Vec<f64> = Vec::new();
    let mut run_number = 0;
    for round in 0..rounds {
        let order = if round.is_multiple_of(2) {
            [0, 1]
        } else {
            [1, 0]
        };
        for with_clients in order {
            run_number += 1;
            let clients = (with_clients == 1).then(|| Clients::open(addr, streams));
            if let Some(clients) = &clients {
                // Every stream has had its first frame.
                let deadline = Instant::now() + Duration::from_secs(30);
                while clients.bytes.load(Ordering::Relaxed) < 1000 * streams as u64 {
                    assert!(Instant::now() < deadline, "the streams got nothing");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let cpu_before = cpu_seconds(serve.id());
            let own_before = cpu_seconds(std::process::id());
            let started = Instant::now();
            let summary = run(Command::new(binary("detector"))
                .args(["--brokers", &brokers, "--model"])
                .arg(&model)
                .args([
                    "--input-topic",
                    &tx,
                    "--output-topic",
                    &an,
                    "--dlq-topic",
                    &dlq,
                ])
                .args([
                    "--group",
                    &format!("{id}-g{run_number}"),
                    "--idle-exit",
                    "3",
                ]));
            let wall = started.elapsed().as_secs_f64();
            let summary = summary
                .lines()
                .find(|line| line.starts_with("detector: consumed="))
                .unwrap_or_else(|| panic!("no summary in {summary:?}"))
                .to_string();
            let consumed = field(&summary, "consumed");
            let seconds = (field(&summary, "last_ms") - field(&summary, "first_ms")) / 1000.0;
            let rate = consumed / seconds;
            let cpu = (cpu_seconds(serve.id()) - cpu_before) / wall;
            if with_clients == 1 {
                clients_cpu.push((cpu_seconds(std::process::id()) - own_before) / wall);
            }
            let received = clients
                .as_ref()
                .map_or(0, |c| c.bytes.load(Ordering::Relaxed));
            drop(clients);
            assert_eq!(consumed as u64, records, "{summary}");
            eprintln!(
                "run {run_number}: {} streams: {rate:.0} records/s; serve used {:.1}% of a core; \
                 clients read {:.1} MB",
                if with_clients == 1 { streams } else { 0 },
                cpu * 100.0,
                received as f64 / 1e6
            );
            rates[with_clients].push(rate);
            serve_cpu[with_clients].push(cpu);
        }
    }
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (without, with) = (median(&rates[0]), median(&rates[1]));
    println!("detector records/s, {records} records, {rounds} runs each (medians):");
    println!(
        "  no client on the page:  {without:>9.0}   runs {:?}",
        rates[0].iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!(
        "  {streams} event streams:     {with:>9.0}   runs {:?}",
        rates[1].iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!("  with / without: {:.1}%", with / without * 100.0);
    println!(
        "  inspector serve CPU: {:.1}% of a core without clients, {:.1}% with {streams} streams \
         (the clients' thread: {:.1}%)",
        median(&serve_cpu[0]) * 100.0,
        median(&serve_cpu[1]) * 100.0,
        median(&clients_cpu) * 100.0
    );
}
