//! `inspector alert` against a real broker and a local HTTP server each test starts: one that
//! answers 200, one that fails a few times first, one that accepts and never answers.
//! Anomalies are produced with chosen Kafka timestamps, so the bursts are known.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inspector::alert::{self, AlertCounters, AlertOptions};
use schema::{encode_anomaly, Transaction, Verdict};
use serde_json::Value;
use testkit::{
    bootstrap, create_topics, now_ms, produce, settings, sigterm, unique, wait_exit, wait_until,
    Record,
};
use tokio_util::sync::CancellationToken;

const INSPECTOR: &str = env!("CARGO_BIN_EXE_inspector");

#[derive(Clone, Copy)]
enum Behaviour {
    /// 200 to everything.
    Answer,
    /// 500 to the first N requests, then 200.
    FailFirst(usize),
    /// Reads the request and never answers.
    Hang,
}

/// A local webhook: the bodies of every request it got, in order.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    fn start(behaviour: Behaviour) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let recorded = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (bodies, served) = (Arc::clone(&recorded), Arc::clone(&served));
                std::thread::spawn(move || serve(stream, behaviour, &bodies, &served));
            }
        });
        Webhook { url, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    fn texts(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|body| {
                let json: Value = serde_json::from_str(body).unwrap();
                assert_eq!(json.as_object().unwrap().len(), 1, "only text: {body}");
                json["text"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

/// One connection: requests one after another (keep-alive), each recorded, then answered as
/// `behaviour` says.
fn serve(
    stream: TcpStream,
    behaviour: Behaviour,
    bodies: &Mutex<Vec<String>>,
    served: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        bodies
            .lock()
            .unwrap()
            .push(String::from_utf8(body).unwrap());
        let number = served.fetch_add(1, Ordering::SeqCst);
        let answer = match behaviour {
            Behaviour::Hang => loop {
                std::thread::park();
            },
            Behaviour::FailFirst(n) if number < n => {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nfail"
            }
            _ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        };
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn anomaly(id: i64) -> Vec<u8> {
    let time = DateTime::<Utc>::from_timestamp(1_700_000_000 + id, 0)
        .unwrap()
        .naive_utc();
    // Far out on the second feature: the model's explanation names it, high.
    let transaction = Transaction::new(id, vec![0.1, 8.0 + id as f64 / 100.0], time);
    let verdict = Verdict {
        anomaly_score: 0.70 + id as f64 / 10_000.0,
        threshold: 0.62,
        model: "test".into(),
        partition: 0,
        offset: id,
        detected_at: Utc::now(),
    };
    encode_anomaly(&transaction, &verdict)
}

/// A fresh one-partition anomalies topic holding `(id, timestamp_ms)` anomalies in order.
fn topic_with(anomalies: &[(i64, i64)]) -> String {
    let topic = unique("t-alert");
    create_topics(&[(&topic, 1)]);
    add(&topic, anomalies);
    topic
}

fn add(topic: &str, anomalies: &[(i64, i64)]) {
    let records: Vec<Record> = anomalies
        .iter()
        .map(|&(id, ms)| Record::at(0, id.to_string(), anomaly(id), ms))
        .collect();
    produce(topic, &records);
}

/// Bursts of ids, each burst's anomalies 100 ms apart, bursts 10 s apart (event time), all in
/// the past.
fn bursts(ids: &[&[i64]]) -> Vec<(i64, i64)> {
    let base = now_ms() - 120_000;
    ids.iter()
        .enumerate()
        .flat_map(|(burst, ids)| {
            ids.iter()
                .enumerate()
                .map(move |(i, &id)| (id, base + burst as i64 * 10_000 + i as i64 * 100))
        })
        .collect()
}

/// A model fitted on points around (0, 0), so the test anomalies' second feature stands out.
fn model() -> iforest::IsolationForest {
    let rows: Vec<[f64; 2]> = (0..300)
        .map(|i| {
            let jitter = |step: f64| ((i as f64 * step).fract() - 0.5) * 0.6;
            [jitter(0.618), jitter(0.414)]
        })
        .collect();
    iforest::IsolationForestParams::new()
        .n_trees(50)
        .seed(3)
        .fit_rows(&rows)
        .unwrap()
}

fn options(topic: &str, webhook: &Webhook) -> AlertOptions {
    AlertOptions {
        webhook: webhook.url.clone(),
        topic: topic.to_string(),
        from_beginning: true,
        group_window: Duration::from_secs(1),
        max_per_minute: 10,
        timeout: Duration::from_secs(1),
        tries: 5,
        backoff: Duration::from_millis(200),
        run_for: None,
        model: None,
    }
}

/// `alert` running on a thread until [`Running::stop`].
struct Running {
    stop: CancellationToken,
    counters: Arc<AlertCounters>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(options: AlertOptions) -> Running {
        let stop = CancellationToken::new();
        let counters = Arc::new(AlertCounters::default());
        let thread = {
            let (stop, counters) = (stop.clone(), Arc::clone(&counters));
            std::thread::spawn(move || alert::alert(&settings(), &options, &stop, &counters))
        };
        Running {
            stop,
            counters,
            thread,
        }
    }

    fn count(&self, counter: impl Fn(&AlertCounters) -> &std::sync::atomic::AtomicU64) -> u64 {
        AlertCounters::get(counter(&self.counters))
    }

    /// Stops it; returns how long it took to return.
    fn stop(self) -> (Duration, Arc<AlertCounters>) {
        let asked = Instant::now();
        self.stop.cancel();
        self.thread.join().unwrap().unwrap();
        (asked.elapsed(), self.counters)
    }
}

/// The ids a message lists (its last line, `ids: 1, 2, 3`).
fn ids(text: &str) -> Vec<i64> {
    let line = text.lines().last().unwrap();
    line.strip_prefix("ids: ")
        .unwrap_or_else(|| panic!("no ids line: {text}"))
        .split(", ")
        .map(|id| id.parse().unwrap())
        .collect()
}

#[test]
fn each_burst_becomes_one_message_with_its_ids_and_top_feature() {
    let topic = topic_with(&bursts(&[&[1, 2, 3], &[10], &[20, 21, 22, 23]]));
    let webhook = Webhook::start(Behaviour::Answer);
    let mut options = options(&topic, &webhook);
    options.model = Some(model());
    let running = Running::start(options);
    wait_until(Duration::from_secs(30), "three messages", || {
        webhook.bodies().len() >= 3
    });
    let (_, counters) = running.stop();
    let texts = webhook.texts();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert_eq!(ids(&texts[0]), [1, 2, 3]);
    assert_eq!(ids(&texts[1]), [10]);
    assert_eq!(ids(&texts[2]), [20, 21, 22, 23]);
    assert!(
        texts[0].starts_with("Incident: 3 anomalies from "),
        "{}",
        texts[0]
    );
    assert!(texts[1].starts_with("Anomaly at "), "{}", texts[1]);
    assert!(
        texts[2].starts_with("Incident: 4 anomalies from "),
        "{}",
        texts[2]
    );
    // Every anomaly is shown (at most 5 per message) with score, features, top feature.
    let line = texts[1].lines().nth(1).unwrap();
    assert!(
        line.starts_with("• id=10 score=0.7010 (threshold 0.6200) features=[0.1,8.1] top feature: feature 1 high ("),
        "{line}"
    );
    let shown = texts[2].lines().filter(|l| l.starts_with("• id=2")).count();
    assert_eq!(shown, 4);
    assert_eq!(AlertCounters::get(&counters.anomalies), 8);
    assert_eq!(AlertCounters::get(&counters.delivered), 3);
    assert_eq!(AlertCounters::get(&counters.attempts), 3);
}

#[test]
fn an_anomaly_s_own_explanation_is_its_top_feature() {
    // The model would name feature 1; the anomaly's explanation names another, and wins.
    let mut explained: Value = serde_json::from_slice(&anomaly(30)).unwrap();
    explained["explanation"] = serde_json::json!([
        {"feature": "amount:log", "value": 6.8, "direction": "high", "share": 0.584},
        {"feature": "ts:hour", "value": 3.2, "direction": "low", "share": 0.416},
    ]);
    let topic = topic_with(&[]);
    let at = now_ms() - 60_000;
    produce(
        &topic,
        &[
            Record::at(0, "30", serde_json::to_vec(&explained).unwrap(), at),
            // Written before anomalies carried explanations: the model explains it.
            Record::at(0, "31", anomaly(31), at + 100),
        ],
    );
    let webhook = Webhook::start(Behaviour::Answer);
    let mut options = options(&topic, &webhook);
    options.model = Some(model());
    let running = Running::start(options);
    wait_until(Duration::from_secs(30), "a message", || {
        !webhook.bodies().is_empty()
    });
    running.stop();
    let text = &webhook.texts()[0];
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("• id={id} ")))
            .unwrap_or_else(|| panic!("no line for {id}: {text}"))
            .to_string()
    };
    assert!(
        line("30").contains(" top feature: amount:log high (58%) source 0/30"),
        "{text}"
    );
    assert!(
        line("31").contains(" top feature: feature 1 high ("),
        "{text}"
    );
}

#[test]
fn the_rate_limit_holds_and_nothing_is_dropped_silently() {
    let topic = topic_with(&bursts(&[&[1], &[2], &[3], &[4], &[5]]));
    let webhook = Webhook::start(Behaviour::Answer);
    let mut options = options(&topic, &webhook);
    options.max_per_minute = 2;
    let running = Running::start(options);
    wait_until(Duration::from_secs(30), "every incident closed", || {
        running.count(|c| &c.incidents) == 5
    });
    // Give a third message every chance to go out wrongly: the limit is per minute.
    std::thread::sleep(Duration::from_secs(2));
    let texts = webhook.texts();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    // The second message holds incident 2, and the ones that closed while the first was
    // being posted folded into it (how many depends on the machine's speed).
    let (first, second) = (ids(&texts[0]), ids(&texts[1]));
    assert_eq!(first, vec![1]);
    assert!(
        !second.is_empty() && second.iter().copied().eq(2..2 + second.len() as i64),
        "{second:?}"
    );
    let (took, counters) = running.stop();
    assert!(took < Duration::from_secs(4), "stopping took {took:?}");
    assert_eq!(webhook.texts().len(), 2, "none past the limit at the stop");
    // The ones held back are accounted for (given up or not sent at the stop).
    let delivered = 1 + second.len() as u64;
    assert_eq!(AlertCounters::get(&counters.delivered_anomalies), delivered);
    assert_eq!(AlertCounters::get(&counters.lost_anomalies), 5 - delivered);
}

#[test]
fn a_failing_webhook_gets_the_message_after_retries() {
    let topic = topic_with(&bursts(&[&[7, 8]]));
    let webhook = Webhook::start(Behaviour::FailFirst(2));
    let running = Running::start(options(&topic, &webhook));
    wait_until(Duration::from_secs(30), "the message delivered", || {
        running.count(|c| &c.delivered) == 1
    });
    let (_, counters) = running.stop();
    let bodies = webhook.bodies();
    assert_eq!(bodies.len(), 3, "two failures, then success: {bodies:#?}");
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "the same message each time"
    );
    assert_eq!(ids(&webhook.texts()[2]), [7, 8]);
    assert_eq!(AlertCounters::get(&counters.attempts), 3);
    assert_eq!(AlertCounters::get(&counters.given_up), 0);
}

#[test]
fn a_hanging_webhook_does_not_hold_the_reading_back() {
    let topic = topic_with(&bursts(&[&[1, 2, 3]]));
    let webhook = Webhook::start(Behaviour::Hang);
    let mut options = options(&topic, &webhook);
    options.tries = 2;
    let timeout = options.timeout;
    let running = Running::start(options);
    wait_until(Duration::from_secs(30), "the first post", || {
        !webhook.bodies().is_empty()
    });
    // The sender is stuck on its first post; 50 more anomalies in 5 bursts come meanwhile.
    let later: Vec<(i64, i64)> = bursts(&[
        &(100..110).collect::<Vec<_>>(),
        &(200..210).collect::<Vec<_>>(),
        &(300..310).collect::<Vec<_>>(),
        &(400..410).collect::<Vec<_>>(),
        &(500..510).collect::<Vec<_>>(),
    ])
    .into_iter()
    .map(|(id, ms)| (id, ms + 60_000))
    .collect();
    add(&topic, &later);
    let produced = Instant::now();
    // Posting them one by one would take at least 6 messages × 2 tries × 1 s.
    wait_until(Duration::from_secs(5), "all 53 anomalies read", || {
        running.count(|c| &c.anomalies) == 53
    });
    wait_until(Duration::from_secs(5), "the later bursts closed", || {
        running.count(|c| &c.incidents) == 6
    });
    let read_in = produced.elapsed();
    assert_eq!(running.count(|c| &c.delivered), 0);
    assert!(running.count(|c| &c.folded) >= 1, "folded while busy");
    let (took, counters) = running.stop();
    assert!(
        took <= timeout * 2 + Duration::from_secs(2),
        "stopping took {took:?}"
    );
    // Nothing delivered, nothing unaccounted for.
    assert_eq!(AlertCounters::get(&counters.lost_anomalies), 53);
    eprintln!("read the later anomalies in {read_in:?}, stopped in {took:?}");
}

#[test]
fn the_command_posts_without_a_model_and_stops_after_its_seconds() {
    let topic = topic_with(&bursts(&[&[4, 5], &[6]]));
    let webhook = Webhook::start(Behaviour::Answer);
    let missing_model = std::env::temp_dir().join(unique("no-model"));
    let output = Command::new(INSPECTOR)
        .args([
            "--brokers",
            &bootstrap(),
            "alert",
            "--webhook",
            &webhook.url,
        ])
        .args(["--topic", &topic, "--from-beginning", "--group-window", "1"])
        .args(["--model", missing_model.to_str().unwrap(), "--seconds", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("no model"), "said once: {stderr}");
    let texts = webhook.texts();
    assert_eq!(texts.len(), 2, "{texts:#?}\n{stderr}");
    assert_eq!((ids(&texts[0]), ids(&texts[1])), (vec![4, 5], vec![6]));
    assert!(!texts[0].contains("top feature"), "{}", texts[0]);
}

#[test]
fn sigterm_posts_the_open_incident_and_exits_cleanly() {
    // Two bursts a minute apart (event time): the second closes the first, and stays open for
    // the 30 s group window unless the process is stopped.
    let base = now_ms() - 120_000;
    let topic = topic_with(&[(1, base), (2, base + 100), (3, base + 60_000)]);
    let webhook = Webhook::start(Behaviour::Answer);
    let mut child = Command::new(INSPECTOR)
        .args([
            "--brokers",
            &bootstrap(),
            "alert",
            "--webhook",
            &webhook.url,
        ])
        .args([
            "--topic",
            &topic,
            "--from-beginning",
            "--group-window",
            "30",
        ])
        .args(["--model", "/nonexistent/model.bin"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first incident", || {
        webhook.bodies().len() == 1
    });
    let asked = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let took = asked.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    let texts = webhook.texts();
    assert_eq!(
        texts.len(),
        2,
        "the open incident went out at the stop: {texts:#?}"
    );
    assert_eq!((ids(&texts[0]), ids(&texts[1])), (vec![1, 2], vec![3]));
}
