//! Named features end to end, on the broker: nested JSON payments, a model fitted by
//! `trainer fit --jsonl … --features` (a JSON Pointer, a `:log`, a `:category`, an `:hour`),
//! and a detector given no flag about them. The anomalies are exactly the offline verdicts of
//! `trainer score --jsonl` on the same records (same ids, same scores bit for bit); each
//! record's fields reach its anomaly as written, followed by the values scored by name and
//! the explanation; a record without an id is keyed by `<partition>:<offset>`; a missing and
//! a wrongly typed feature are dead letters whose reasons name it. A new model with other
//! features, written over the model file, is picked up and reads the next records its way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use schema::{Anomaly, DeadLetter, Direction};
use testkit::{
    create_topics, produce, read_topic, run_ok, unique, wait_until, workspace_bin, Guard, Record,
};

/// The first model's features: a JSON Pointer, a `:log`, a `:category` (integer and string
/// categories), an `:hour`.
const FEATURES: &str = "/merchant/geo/lat,amount:log,/merchant/mcc:category,ts:hour";
/// The second model's: other fields, one of which the first never reads; missing ones imputed.
const OTHER_FEATURES: &str = "amount,/device/os:category";

/// xorshift64*: the same records on every run, without a dependency.
struct Draw(u64);

impl Draw {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() * items.len() as f64) as usize % items.len()]
    }
}

/// What a payment is made to look like.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Usual,
    /// An amount far beyond any in training.
    Huge,
    /// A merchant category never seen in training.
    NewCategory,
    /// At 3 a.m. (training is 8–20 h).
    Night,
    /// Far from the merchants' usual place.
    Far,
    /// No merchant category at all.
    WithoutCategory,
    /// The latitude as a string.
    LatitudeAsText,
    /// No merchant at all (only the second model can read it).
    WithoutMerchant,
    /// No merchant, and a huge amount.
    HugeWithoutMerchant,
}

/// One payment's JSON text, written by hand so that the fields no model reads have
/// spellings a re-encoding would change (`1.250e3`, `1.50`, escapes, spaces).
fn payment(id: Option<String>, kind: Kind, draw: &mut Draw) -> String {
    let mut amount = (2.5 + 1.5 * draw.next()).exp();
    let mut mcc = draw
        .pick(&["\"5411\"", "5812", "\"4111\"", "5411"])
        .to_string();
    let mut lat = format!("{:.5}", 48.80 + 0.2 * draw.next());
    let mut hour = 8 + (draw.next() * 12.0) as u32;
    match kind {
        Kind::Huge | Kind::HugeWithoutMerchant => amount *= 400.0,
        Kind::NewCategory => mcc = "\"7995\"".into(),
        Kind::Night => hour = 3,
        Kind::Far => lat = "35.50000".into(),
        Kind::LatitudeAsText => lat = format!("\"{lat}\""),
        _ => {}
    }
    let os = draw.pick(&["ios", "android", "web"]);
    let minute = (draw.next() * 60.0) as u32;
    let day = 1 + (draw.next() * 27.0) as u32;
    let merchant = match kind {
        Kind::WithoutMerchant | Kind::HugeWithoutMerchant => String::new(),
        Kind::WithoutCategory => format!(
            r#""merchant": {{"name": "Zoë's \"corner\" café", "geo": {{"lat": {lat}, "lon": 2.35}}}}, "#
        ),
        _ => format!(
            r#""merchant": {{"mcc": {mcc}, "name": "Zoë's \"corner\" café", "geo": {{"lat": {lat}, "lon": 2.35}}}}, "#
        ),
    };
    let id = id.map_or(String::new(), |id| format!(r#""id": {id}, "#));
    format!(
        r#"{{{id}"card": "c-{card}", "amount": {amount:.2}, {merchant}"ts": "2026-12-{day:02}T{hour:02}:{minute:02}:09Z", "device": {{"os": "{os}"}}, "cents" : 1.250e3, "tags": ["a", 1.50, true, null], "note": "\u00e9\n", "extra":  {{ "k" : [ ] }}}}"#,
        card = (draw.next() * 50.0) as u32,
    )
}

/// `count` payments, ids from `first`, alternately integers and text, none at every seventh
/// position from the fourth; with `unusual`, every 23rd unusual in one way (in turn); the
/// `special` kinds at their positions.
fn payments(
    first: usize,
    count: usize,
    seed: u64,
    unusual: bool,
    special: &[(usize, Kind)],
) -> Vec<String> {
    let mut draw = Draw(seed);
    let kinds = [Kind::Huge, Kind::NewCategory, Kind::Night, Kind::Far];
    (0..count)
        .map(|position| {
            let i = first + position;
            let id = match position % 7 {
                3 => None,
                _ if i.is_multiple_of(2) => Some(i.to_string()),
                _ => Some(format!("\"p-{i}\"")),
            };
            let kind = match special.iter().find(|(at, _)| *at == position) {
                Some(&(_, kind)) => kind,
                None if unusual && position % 23 == 5 => kinds[(position / 23) % kinds.len()],
                None => Kind::Usual,
            };
            payment(id, kind, &mut draw)
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// `trainer fit --jsonl` on `training` with `features` (and `extra` flags) into `out`; the
/// model's id.
fn fit(training: &Path, features: &str, extra: &[&str], out: &Path) -> String {
    run_ok(
        Command::new(workspace_bin("trainer"))
            .args(["fit", "--jsonl"])
            .arg(training)
            .args([
                "--features",
                features,
                "--contamination",
                "0.02",
                "--seed",
                "5",
            ])
            .args(extra)
            .arg("--out")
            .arg(out),
    );
    iforest::model_id(&std::fs::read(out).unwrap())
}

/// One record's offline verdict, a line of `trainer score --jsonl`.
#[derive(Debug, Clone, PartialEq)]
enum Offline {
    Scored { score: f64, anomaly: bool },
    Refused(String),
}

/// `trainer score --jsonl` of `records` with `model`: one verdict per record, in order.
fn score_offline(dir: &Path, model: &Path, records: &[String]) -> Vec<Offline> {
    let input = dir.join(unique("score")).with_extension("jsonl");
    write_lines(&input, records);
    let output = run_ok(
        Command::new(workspace_bin("trainer"))
            .args(["score", "--model"])
            .arg(model)
            .arg("--jsonl")
            .arg(&input),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("line,id,score,anomaly,label,reason"));
    let verdicts: Vec<Offline> = lines
        .enumerate()
        .map(|(index, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells[0], (index + 1).to_string(), "{line}");
            match cells[..] {
                [_, _, "", "", _, reason] => Offline::Refused(reason.to_string()),
                [_, _, score, anomaly, _, ""] => Offline::Scored {
                    score: score.parse().unwrap(),
                    anomaly: anomaly == "1",
                },
                _ => panic!("unexpected line {line}"),
            }
        })
        .collect();
    assert_eq!(verdicts.len(), records.len());
    verdicts
}

/// The records' JSON ids, as the detector keys their anomalies (`None`: no id).
fn record_id(record: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(record).unwrap();
    match value.get("id")? {
        serde_json::Value::String(id) => Some(id.clone()),
        other => Some(other.to_string()),
    }
}

/// Produces `records`, record `i` to partition `i % partitions`; where each landed.
fn produce_spread(topic: &str, records: &[String], partitions: usize) -> Vec<(i32, i64)> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            partition: Some((i % partitions) as i32),
            value: value.clone().into_bytes(),
            ..Record::default()
        })
        .collect();
    produce(topic, &records)
}

/// What the detector should write for `records` (landed at `at`) scored offline: the
/// anomalies by Kafka key, with the offline score and the record, and the refusals by
/// position, with their reason.
struct Expected<'a> {
    anomalies: BTreeMap<String, (f64, &'a str, (i32, i64))>,
    refused: BTreeMap<(i32, i64), (String, &'a str)>,
}

fn expected<'a>(records: &'a [String], at: &[(i32, i64)], offline: &[Offline]) -> Expected<'a> {
    let mut anomalies = BTreeMap::new();
    let mut refused = BTreeMap::new();
    for ((record, &(partition, offset)), verdict) in records.iter().zip(at).zip(offline) {
        match verdict {
            Offline::Scored {
                score,
                anomaly: true,
            } => {
                let key = record_id(record).unwrap_or(format!("{partition}:{offset}"));
                anomalies.insert(key, (*score, record.as_str(), (partition, offset)));
            }
            Offline::Scored { .. } => {}
            Offline::Refused(reason) => {
                refused.insert((partition, offset), (reason.clone(), record.as_str()));
            }
        }
    }
    Expected { anomalies, refused }
}

/// Checks one anomaly against its record and its offline verdict: the record's text as
/// written, then the verdict and the reasons, and the offline score bit for bit.
fn check_anomaly(
    key: &str,
    value: &[u8],
    expected: &(f64, &str, (i32, i64)),
    model: &str,
    names: &[&str],
) -> Anomaly {
    let (score, record, (partition, offset)) = *expected;
    let text = std::str::from_utf8(value).unwrap();
    let unchanged = record.strip_suffix('}').unwrap();
    assert!(
        text.starts_with(unchanged) && text.as_bytes()[unchanged.len()] == b',',
        "the record's fields, as written, then the verdict:\n{record}\n{text}"
    );
    let anomaly = Anomaly::decode(value).unwrap();
    assert_eq!(anomaly.anomaly_score.to_bits(), score.to_bits(), "{key}");
    assert_eq!(anomaly.model, model, "{key}");
    assert_eq!((anomaly.partition, anomaly.offset), (partition, offset));
    assert_eq!(anomaly.id.to_string(), key);
    let json: serde_json::Value = serde_json::from_slice(value).unwrap();
    match record_id(record) {
        Some(_) => assert!(!anomaly.identified_by_position, "{key}"),
        None => {
            assert!(anomaly.identified_by_position, "{key}");
            assert!(json["record_id"].is_null(), "{text}");
        }
    }
    assert_eq!(anomaly.feature_names, names, "{key}");
    let by_name = json["features"].as_object().unwrap();
    for (name, value) in names.iter().zip(&anomaly.features) {
        assert_eq!(
            by_name[*name].as_f64().map(f64::to_bits),
            Some(value.to_bits())
        );
    }
    let top = &anomaly.explanation;
    assert_eq!(top.len(), names.len().min(3), "{text}");
    let shares: f64 = top.iter().map(|c| c.share).sum();
    assert!(shares <= 1.0 + 1e-12, "{text}");
    for pair in top.windows(2) {
        assert!(pair[0].share >= pair[1].share, "largest first: {text}");
    }
    for contribution in top {
        let index = names
            .iter()
            .position(|name| *name == contribution.feature)
            .unwrap_or_else(|| panic!("{} is not a feature: {text}", contribution.feature));
        assert_eq!(
            contribution.value.to_bits(),
            anomaly.features[index].to_bits()
        );
        assert!(matches!(
            contribution.direction,
            Direction::High | Direction::Low
        ));
    }
    anomaly
}

/// A running detector: the process and its log.
fn start_detector(
    model: &Path,
    input: &str,
    anomalies: &str,
    dlq: &str,
    group: &str,
    log: &Path,
) -> Guard {
    Guard(
        Command::new(workspace_bin("detector"))
            .arg("--model")
            .arg(model)
            .args(["--input-topic", input, "--output-topic", anomalies])
            .args(["--dlq-topic", dlq, "--group", group])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
}

fn summary_field(summary: &str, name: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|field| field.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {summary}"))
}

struct Topics {
    payments: String,
    anomalies: String,
    dead_letters: String,
}

fn topics(prefix: &str) -> Topics {
    let topics = Topics {
        payments: unique(&format!("{prefix}-payments")),
        anomalies: unique(&format!("{prefix}-anomalies")),
        dead_letters: unique(&format!("{prefix}-dlq")),
    };
    create_topics(&[
        (&topics.payments, 3),
        (&topics.anomalies, 1),
        (&topics.dead_letters, 1),
    ]);
    topics
}

/// The training payments (all usual, all with ids), written to `dir`.
fn training(dir: &Path) -> PathBuf {
    let path = dir.join("training.jsonl");
    write_lines(&path, &payments(0, 3_000, 17, false, &[]));
    path
}

#[test]
fn payments_are_read_by_name_and_their_anomalies_are_the_offline_verdicts() {
    let topics = topics("named");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    let model_id = fit(&training(dir.path()), FEATURES, &[], &model);
    let names: Vec<&str> = FEATURES.split(',').collect();

    // Position 3 has no id (3 % 7) and an amount far beyond training's: an anomaly keyed by
    // where it was read. Two records no model of these features can read.
    let records = payments(
        10_000,
        400,
        99,
        true,
        &[
            (3, Kind::Huge),
            (40, Kind::WithoutCategory),
            (41, Kind::LatitudeAsText),
        ],
    );
    let at = produce_spread(&topics.payments, &records, 3);
    let offline = score_offline(dir.path(), &model, &records);
    let expected = expected(&records, &at, &offline);

    let log = dir.path().join("detector.log");
    let group = unique("named-group");
    let mut detector = Command::new(workspace_bin("detector"));
    detector
        .arg("--model")
        .arg(&model)
        .args(["--input-topic", &topics.payments])
        .args(["--output-topic", &topics.anomalies])
        .args(["--dlq-topic", &topics.dead_letters])
        .args(["--group", &group, "--idle-exit", "5"])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap());
    let output = run_ok(&mut detector);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert_eq!(summary_field(&summary, "consumed"), records.len() as u64);
    assert_eq!(
        summary_field(&summary, "anomalies"),
        expected.anomalies.len() as u64,
        "{summary}"
    );
    assert_eq!(summary_field(&summary, "dead_letters"), 2, "{summary}");
    assert!(
        log_has(&log, &format!("reads named features {}", names.join(", "))),
        "the detector names what it reads"
    );

    // Anomalies: exactly the offline ones, each with the record as written and its reasons.
    assert!(
        expected.anomalies.len() >= 10,
        "{}",
        expected.anomalies.len()
    );
    let received = read_topic(&topics.anomalies, Duration::from_secs(30), |got| {
        got.len() >= expected.anomalies.len()
    });
    let keys: BTreeSet<&str> = received.iter().filter_map(|r| r.key.as_deref()).collect();
    assert_eq!(
        keys,
        expected.anomalies.keys().map(String::as_str).collect(),
        "the anomalies' keys are the offline verdicts' ids"
    );
    assert_eq!(received.len(), expected.anomalies.len(), "none twice");
    let mut by_position = 0;
    for record in &received {
        let key = record.key.as_deref().unwrap();
        let anomaly = check_anomaly(
            key,
            &record.value,
            &expected.anomalies[key],
            &model_id,
            &names,
        );
        by_position += usize::from(anomaly.identified_by_position);
    }
    let (partition, offset) = at[3];
    assert!(
        keys.contains(format!("{partition}:{offset}").as_str()),
        "the huge payment without an id is keyed by where it was read"
    );
    assert!(by_position >= 1);
    println!(
        "{} of {} records anomalies ({by_position} keyed by position), as offline",
        received.len(),
        records.len()
    );

    // Dead letters: the refused records, with reasons naming the feature, as offline.
    let letters = read_topic(&topics.dead_letters, Duration::from_secs(30), |got| {
        got.len() >= 2
    });
    assert_eq!(letters.len(), 2);
    assert_eq!(expected.refused.len(), 2);
    let mut details = BTreeMap::new();
    for letter in &letters {
        let letter = DeadLetter::decode(&letter.value).unwrap();
        let (reason, record) = &expected.refused[&(letter.partition, letter.offset)];
        assert_eq!(&letter.reason, reason);
        assert_eq!(letter.source_topic, topics.payments);
        assert_eq!(letter.original().unwrap(), record.as_bytes());
        details.insert(letter.reason, letter.detail);
    }
    assert_eq!(
        details.get("missing_feature").map(String::as_str),
        Some("/merchant/mcc is missing (feature /merchant/mcc:category)")
    );
    assert_eq!(
        details.get("not_numeric").map(String::as_str),
        Some("/merchant/geo/lat is a string")
    );

    // Anyone can re-check the run: every anomaly re-scored from its source record is
    // identical, and re-scoring the whole topic finds none missing and none extra.
    let report = verify(&topics, &group, &dir.path().join("by-id"));
    let count = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    let written = expected.anomalies.len() as u64;
    assert_eq!((count("checked"), count("identical")), (written, written));
    for key in ["different", "source_gone", "model_not_found"] {
        assert_eq!(count(key), 0, "{key}: {report}");
    }
    let range = &report["range"];
    assert_eq!(range["checked"], true, "{range}");
    assert_eq!(range["model"], model_id.as_str());
    assert_eq!(
        (range["flagged"].as_u64(), range["refused"].as_u64()),
        (Some(written), Some(2))
    );
    for key in ["missing", "unexpected", "pending"] {
        assert_eq!(range[key].as_u64(), Some(0), "{key}: {range}");
    }
}

/// `inspector verify --json --from-beginning` on the topics; its report, once it has
/// passed (exit code 0).
fn verify(topics: &Topics, group: &str, models_dir: &Path) -> serde_json::Value {
    let output = Command::new(workspace_bin("inspector"))
        .args(["verify", "--json", "--from-beginning"])
        .args(["--input-topic", &topics.payments])
        .args(["--output-topic", &topics.anomalies])
        .args(["--group", group, "--models-dir"])
        .arg(models_dir)
        .output()
        .expect("run inspector verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    report
}

#[test]
fn a_model_with_other_features_is_picked_up_and_reads_the_next_records_its_way() {
    let topics = topics("named-reload");
    let dir = tempfile::tempdir().unwrap();
    let training = training(dir.path());
    let model = dir.path().join("model.bin");
    let first_id = fit(&training, FEATURES, &[], &model);
    let first_names: Vec<&str> = FEATURES.split(',').collect();

    let log = dir.path().join("detector.log");
    let group = unique("named-group");
    let detector = start_detector(
        &model,
        &topics.payments,
        &topics.anomalies,
        &topics.dead_letters,
        &group,
        &log,
    );
    wait_until(Duration::from_secs(60), "the detector to join", || {
        log_has(&log, "assigned partitions")
    });

    // Read by the first model: one record without a merchant category is refused.
    let first = payments(20_000, 300, 5, true, &[(7, Kind::WithoutCategory)]);
    let first_at = produce_spread(&topics.payments, &first, 3);
    let first_expected = expected(
        &first,
        &first_at,
        &score_offline(dir.path(), &model, &first),
    );
    assert_eq!(first_expected.refused.len(), 1);
    assert!(!first_expected.anomalies.is_empty());
    read_topic(&topics.anomalies, Duration::from_secs(60), |got| {
        got.len() >= first_expected.anomalies.len()
    });

    // A model of other fields (one the first never reads, missing ones imputed) replaces the
    // file: no detector flag, no restart.
    let first_model = dir.path().join("first.bin");
    std::fs::copy(&model, &first_model).unwrap();
    let second_id = fit(&training, OTHER_FEATURES, &["--missing", "impute"], &model);
    assert_ne!(first_id, second_id);
    wait_until(
        Duration::from_secs(30),
        "the new model to be in use",
        || log_has(&log, &format!("model {second_id} in use")),
    );
    let second_names: Vec<&str> = OTHER_FEATURES.split(',').collect();
    assert!(log_has(
        &log,
        &format!("reads named features {}", second_names.join(", "))
    ));

    // Payments without a merchant: every one would be a dead letter to the first model.
    let special: Vec<(usize, Kind)> = (0..300)
        .map(|i| match i % 50 {
            9 => (i, Kind::HugeWithoutMerchant),
            _ => (i, Kind::WithoutMerchant),
        })
        .collect();
    let mut second = payments(30_000, 300, 6, false, &special);
    // A device the training never saw, and a record without a device (imputed).
    for os in ["ios", "android", "web"] {
        second[11] = second[11].replace(&format!(r#""os": "{os}""#), r#""os": "blackberry""#);
    }
    assert!(second[11].contains("blackberry"));
    second[12] = second[12].replace(r#", "device": {"os": "#, r#", "phone": {"os": "#);
    assert!(!second[12].contains("device"));
    let refused_by_first = score_offline(dir.path(), &first_model, &second);
    assert!(refused_by_first
        .iter()
        .all(|verdict| *verdict == Offline::Refused("missing_feature".into())));
    let second_at = produce_spread(&topics.payments, &second, 3);
    let second_expected = expected(
        &second,
        &second_at,
        &score_offline(dir.path(), &model, &second),
    );
    assert!(second_expected.refused.is_empty());
    assert!(!second_expected.anomalies.is_empty());

    let total = first_expected.anomalies.len() + second_expected.anomalies.len();
    let received = read_topic(&topics.anomalies, Duration::from_secs(60), |got| {
        got.len() >= total
    });
    detector.sigterm();
    let (status, summary) = detector.finish(Duration::from_secs(30), "the detector to stop");
    assert!(status.success(), "{summary}");
    assert_eq!(
        summary_field(&summary, "consumed"),
        (first.len() + second.len()) as u64
    );
    assert_eq!(summary_field(&summary, "anomalies"), total as u64);
    assert_eq!(
        summary_field(&summary, "dead_letters"),
        1,
        "only the first model's refusal: {summary}"
    );

    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for record in &received {
        let key = record.key.clone().unwrap();
        let anomaly = match (
            first_expected.anomalies.get(&key),
            second_expected.anomalies.get(&key),
        ) {
            (Some(expected), None) => {
                check_anomaly(&key, &record.value, expected, &first_id, &first_names)
            }
            (None, Some(expected)) => {
                check_anomaly(&key, &record.value, expected, &second_id, &second_names)
            }
            _ => panic!("anomaly {key} was not expected"),
        };
        found.insert(key, anomaly.model);
    }
    assert_eq!(found.len(), total, "each expected anomaly once");

    // Each anomaly re-scored with the model it names is identical (two models in use: the
    // range is not re-scored).
    let report = verify(&topics, &group, &dir.path().join("by-id"));
    assert_eq!(report["checked"].as_u64(), Some(total as u64), "{report}");
    assert_eq!(report["identical"].as_u64(), Some(total as u64), "{report}");
    println!(
        "{} anomalies by the first model, {} by the second, as offline",
        first_expected.anomalies.len(),
        second_expected.anomalies.len()
    );
}
