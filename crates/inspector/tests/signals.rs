//! SIGTERM (as a service manager or `docker stop` sends it) stops the long-running commands
//! cleanly: exit code 0, everything read so far printed, the last summary, and for `serve`
//! its open event streams ended.
//! (`alert`'s case is in `alert.rs`, beside its webhook.)

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::{bootstrap, create_topics, now_ms, produce, sigterm, unique, wait_exit, Record};

const INSPECTOR: &str = env!("CARGO_BIN_EXE_inspector");

fn transactions(topic: &str, count: i64) {
    let now = now_ms();
    let records: Vec<Record> = (0..count)
        .map(|id| {
            Record::at(
                0,
                id.to_string(),
                format!(r#"{{"id": {id}, "data": [[{id}.5, -1.25]], "label": 0}}"#).into_bytes(),
                now,
            )
        })
        .collect();
    produce(topic, &records);
}

#[test]
fn sigterm_stops_tail_after_printing_what_it_read() {
    let topic = unique("t-sig-tail");
    create_topics(&[(&topic, 1)]);
    transactions(&topic, 5);
    let mut child = Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "tail", "--topic", &topic])
        .args(["--from-beginning", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let read: Vec<String> = (&mut lines).take(5).map(Result::unwrap).collect();
    assert_eq!(read.len(), 5);
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(lines.count(), 0, "nothing more after the stop");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(
        stderr.contains(&format!("printed 5 records from {topic}")),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_live_stats_with_a_last_summary() {
    let (input, output, dlq) = (unique("t-sig-in"), unique("t-sig-out"), unique("t-sig-dlq"));
    create_topics(&[(&input, 1), (&output, 1), (&dlq, 1)]);
    transactions(&input, 7);
    let mut child = Command::new(INSPECTOR)
        .args([
            "--brokers",
            &bootstrap(),
            "stats",
            "--json",
            "--from-beginning",
        ])
        .args(["--input-topic", &input, "--output-topic", &output])
        .args(["--dlq-topic", &dlq, "--group", &unique("g-sig")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let records = |line: &str| {
        let summary: Value = serde_json::from_str(line).unwrap();
        summary["topics"][&input]["records"].as_i64().unwrap()
    };
    // Summaries come every second; wait for one that has read all seven.
    loop {
        let line = lines.next().expect("a summary every second").unwrap();
        if records(&line) == 7 {
            break;
        }
    }
    sigterm(&child);
    let after: Vec<String> = lines.map(Result::unwrap).collect();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    let last = after.last().expect("a last summary at the stop");
    assert_eq!(records(last), 7, "{last}");
}

#[test]
fn sigterm_stops_serve_and_ends_its_event_streams() {
    use std::io::Write;
    let (input, output, dlq) = (unique("t-sig-in"), unique("t-sig-out"), unique("t-sig-dlq"));
    create_topics(&[(&input, 1), (&output, 1), (&dlq, 1)]);
    let mut child = Command::new(INSPECTOR)
        .args(["--brokers", &bootstrap(), "serve", "--addr", "127.0.0.1:0"])
        .args(["--input-topic", &input, "--output-topic", &output])
        .args(["--dlq-topic", &dlq, "--group", &unique("g-sig")])
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
        .trim_start_matches("inspector: serving http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 65536];
    while !String::from_utf8_lossy(&received).contains("data: {") {
        let n = stream.read(&mut buffer).expect("a first frame");
        assert!(n > 0, "the stream ended early");
        received.extend_from_slice(&buffer[..n]);
    }
    sigterm(&child);
    // The stream ends (chunked encoding's last chunk, then the connection closes).
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the stream ends at the stop");
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "{rest:?}"
    );
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(stderr.contains("stopped serving"), "{stderr}");
}
