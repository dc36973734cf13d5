//! `inspector tail`: a topic's records as they arrive, read as kcat reads them (every
//! partition assigned at its beginning or end, no group joined, nothing committed), so the
//! detectors' group never notices.

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema::{DeadLetter, DecodeLimits, Transaction};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cli::TailArgs;
use crate::reason::TopReason;

/// Longest value text shown in a human line before it is cut with `…`.
const SHOWN_CHARS: usize = 240;

/// What `tail` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailSummary {
    /// Records printed.
    pub printed: u64,
    /// Records left out of `--json` output because they were not JSON.
    pub skipped: u64,
}

/// Prints `args.topic`'s records to `out` until `--max-messages` were printed, none came for
/// `--timeout` seconds, or `stop` is cancelled.
pub fn tail(
    kafka: &bus::ClientSettings,
    args: &TailArgs,
    out: &mut dyn Write,
    stop: &CancellationToken,
) -> Result<TailSummary> {
    if let Some(timeout) = args.timeout {
        if !(timeout >= 0.0 && timeout.is_finite()) {
            bail!("--timeout must be 0 or more seconds, not {timeout}");
        }
    }
    log::debug!("tailing {} with {}", args.topic, kafka.describe());
    let consumer = kafka.base_consumer()?;
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .with_context(|| format!("cannot read metadata from {}", kafka.brokers))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == args.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {} does not exist", args.topic);
    }
    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&args.topic, *partition, start)?;
    }
    consumer.assign(&assignment)?;
    log::info!(
        "tailing {} ({} partitions, from the {})",
        args.topic,
        partitions.len(),
        if args.from_beginning {
            "beginning"
        } else {
            "end"
        }
    );

    let idle = args.timeout.map(Duration::from_secs_f64);
    let mut last = Instant::now();
    let mut summary = TailSummary {
        printed: 0,
        skipped: 0,
    };
    while args.max_messages.is_none_or(|max| summary.printed < max) && !stop.is_cancelled() {
        if idle.is_some_and(|idle| last.elapsed() >= idle) {
            log::info!("no record for {:?}: stopping", idle.unwrap_or_default());
            break;
        }
        let wait = idle.map_or(Duration::from_millis(200), |idle| {
            idle.saturating_sub(last.elapsed())
                .min(Duration::from_millis(200))
        });
        let message = match consumer.poll(wait) {
            None => continue,
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                log::warn!("reading {}: {error}", args.topic);
                continue;
            }
        };
        last = Instant::now();
        let value = message.payload().unwrap_or_default();
        let line = if args.json {
            match json_line(value) {
                Some(line) => line,
                None => {
                    log::warn!(
                        "{}/{} is not JSON ({} bytes): left out of --json output",
                        message.partition(),
                        message.offset(),
                        value.len()
                    );
                    summary.skipped += 1;
                    continue;
                }
            }
        } else {
            describe_record(message.partition(), message.offset(), message.key(), value)
        };
        match writeln!(out, "{line}") {
            Ok(()) => summary.printed += 1,
            // The reader went away (`| head`): that is the end, not an error.
            Err(error) if error.kind() == ErrorKind::BrokenPipe => return Ok(summary),
            Err(error) => return Err(error.into()),
        }
    }
    match out.flush() {
        Err(error) if error.kind() != ErrorKind::BrokenPipe => return Err(error.into()),
        _ => {}
    }
    log::info!("printed {} records from {}", summary.printed, args.topic);
    Ok(summary)
}

/// The value as one line of JSON: as it came when it is JSON on one line, else compacted;
/// `None` when it is not JSON.
pub fn json_line(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let parsed: Value = serde_json::from_str(text).ok()?;
    if text.contains(['\n', '\r']) {
        Some(parsed.to_string())
    } else {
        Some(text.trim().to_string())
    }
}

/// One line for a person: where the record was, its key, and a compact view of the value
/// (transactions, anomalies and dead letters by their important fields; other JSON compacted;
/// anything else as lossy text), cut at a few hundred characters.
pub fn describe_record(partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) -> String {
    let key = key.map_or_else(
        || "-".to_string(),
        |k| String::from_utf8_lossy(k).into_owned(),
    );
    format!("{partition}/{offset} key={key} {}", describe_value(value))
}

fn describe_value(value: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(value) else {
        return format!(
            "(not JSON, {} bytes) {}",
            value.len(),
            cut(&String::from_utf8_lossy(value))
        );
    };
    let has = |name: &str| json.get(name).is_some();
    if has("anomaly_score") {
        if let Some(line) = describe_anomaly(&json) {
            return line;
        }
    }
    if has("reason") && has("original_base64") {
        if let Ok(letter) = DeadLetter::decode(value) {
            let original = letter
                .original_text
                .clone()
                .unwrap_or_else(|| format!("({} bytes, not UTF-8)", letter.original.len()));
            return cut(&format!(
                "dead letter reason={} from {}/{}/{}: {} | {}",
                letter.reason,
                letter.source_topic,
                letter.partition,
                letter.offset,
                letter.detail,
                original
            ));
        }
    }
    if let Ok(tx) = Transaction::decode(value, &DecodeLimits::default()) {
        let known = ["id", "data", "label", "current_time"];
        let others = tx
            .fields()
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .count();
        return cut(&format!(
            "id={} data={}{}{}{}",
            tx.id,
            features(&tx.features),
            tx.label.map_or(String::new(), |l| format!(" label={l}")),
            tx.current_time
                .as_deref()
                .map_or(String::new(), |t| format!(" time={t}")),
            if others > 0 {
                format!(" (+{others} fields)")
            } else {
                String::new()
            }
        ));
    }
    cut(&json.to_string())
}

/// An anomaly by its verdict, its features (`data`, or the `features` object of a record
/// without `data`) and where its transaction was, then its top reason when it carries one
/// (`reason: amount:log high (58%)`). Read tolerantly, so anomalies of any form are shown.
fn describe_anomaly(json: &Value) -> Option<String> {
    let number = |name: &str| json.get(name)?.as_f64();
    let (anomaly_score, threshold) = (number("anomaly_score")?, number("threshold")?);
    let model = json.get("model")?.as_str()?;
    let partition = json.get("partition")?.as_i64()?;
    let offset = json.get("offset")?.as_i64()?;
    let present = |name: &str| json.get(name).filter(|v| !v.is_null());
    let id = match present("id").or_else(|| present("record_id")) {
        Some(Value::String(id)) => id.clone(),
        Some(id) => id.to_string(),
        // A record without an id is known by where it was.
        None => format!("{partition}:{offset}"),
    };
    let shown = match (present("data"), present("features")) {
        (Some(data), _) => format!("data={}", row(data)),
        (None, Some(named)) => format!("features={}", cut_to(&named.to_string(), 120)),
        (None, None) => "data=-".to_string(),
    };
    let label = match present("label") {
        Some(Value::Bool(label)) => format!(" label={}", u8::from(*label)),
        Some(label) => format!(" label={label}"),
        None => String::new(),
    };
    let line = cut(&format!(
        "anomaly id={id} score={anomaly_score:.4} threshold={threshold:.4} {shown}{label} \
         model={} from {partition}/{offset}",
        cut_to(model, 12),
    ));
    Some(match TopReason::of(json) {
        Some(reason) => format!("{line} reason: {}", cut_to(&reason.to_string(), 80)),
        None => line,
    })
}

/// `data` as one row: `[[x, y]]` and `[x, y]` both give `[x,y]`.
fn row(data: &Value) -> String {
    let values = match data.as_array().map(Vec::as_slice) {
        Some([inner @ Value::Array(_)]) => inner,
        _ => data,
    };
    match values
        .as_array()
        .and_then(|v| v.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
    {
        Some(row) => features(&row),
        None => cut_to(&values.to_string(), 120),
    }
}

fn features(values: &[f64]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

fn cut(text: &str) -> String {
    cut_to(text, SHOWN_CHARS)
}

/// `text` with at most `chars` characters, `…` marking a cut; line breaks shown as `⏎` so the
/// result stays on one line.
fn cut_to(text: &str, chars: usize) -> String {
    let mut shown: String = text
        .chars()
        .take(chars)
        .map(|c| if c == '\n' || c == '\r' { '⏎' } else { c })
        .collect();
    if text.chars().nth(chars).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use schema::{encode_anomaly, Rejection, Verdict};

    #[test]
    fn transactions_show_id_data_label_and_time() {
        let line = describe_record(
            2,
            7,
            Some(b"4"),
            br#"{"id": 4, "data": [[2.39, -1.22]], "current_time": "2024-04-27T21:17:34.733387", "label": 1, "shop": "x"}"#,
        );
        assert_eq!(
            line,
            "2/7 key=4 id=4 data=[2.39,-1.22] label=1 time=2024-04-27T21:17:34.733387 (+1 fields)"
        );
    }

    #[test]
    fn anomalies_show_their_verdict_and_source() {
        let tx = Transaction::decode(
            br#"{"id": 9, "data": [[3.5, -3.9]]}"#,
            &DecodeLimits::default(),
        )
        .unwrap();
        let verdict = Verdict {
            anomaly_score: 0.712345,
            threshold: 0.62,
            model: "0123456789abcdef0123".into(),
            partition: 1,
            offset: 33,
            detected_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        };
        let line = describe_record(0, 5, Some(b"9"), &encode_anomaly(&tx, &verdict));
        assert_eq!(
            line,
            "0/5 key=9 anomaly id=9 score=0.7123 threshold=0.6200 data=[3.5,-3.9] \
             model=0123456789ab… from 1/33"
        );
    }

    #[test]
    fn anomalies_show_their_top_reason_when_they_carry_one() {
        let explained = br#"{"card": "c-81", "amount": 912.4, "score": [-0.71],
            "anomaly_score": 0.71, "threshold": 0.62, "model": "0123456789abcdef",
            "detected_at": "2026-12-01T03:12:10.000000Z", "partition": 2, "offset": 40,
            "record_id": null, "features": {"amount:log": 6.8176, "ts:hour": 3.2025},
            "explanation": [{"feature": "amount:log", "value": 6.8176, "direction": "high",
            "share": 0.584}, {"feature": "ts:hour", "value": 3.2025, "direction": "low",
            "share": 0.416}]}"#;
        assert_eq!(
            describe_record(0, 9, Some(b"2:40"), explained),
            r#"0/9 key=2:40 anomaly id=2:40 score=0.7100 threshold=0.6200 features={"amount:log":6.8176,"ts:hour":3.2025} model=0123456789ab… from 2/40 reason: amount:log high (58%)"#
        );
        let with_data = br#"{"id": "tx-9", "data": [[3.5, -3.9]], "label": true,
            "anomaly_score": 0.7, "threshold": 0.6, "model": "m", "partition": 0,
            "offset": 1, "explanation": [{"feature": "y", "value": -3.9,
            "direction": "low", "share": 0.9}]}"#;
        assert_eq!(
            describe_record(0, 1, None, with_data),
            "0/1 key=- anomaly id=tx-9 score=0.7000 threshold=0.6000 data=[3.5,-3.9] label=1 \
             model=m from 0/1 reason: y low (90%)"
        );
    }

    #[test]
    fn dead_letters_show_the_reason_and_the_original() {
        let letter = DeadLetter::new(
            &Rejection::FeatureCount {
                expected: 2,
                found: 3,
            },
            "transactions",
            2,
            41,
            None,
            br#"{"id": 1, "data": [1, 2, 3]}"#,
        );
        let line = describe_record(0, 0, None, &letter.encode());
        assert_eq!(
            line,
            r#"0/0 key=- dead letter reason=feature_count from transactions/2/41: the record has 3 features, the model expects 2 | {"id": 1, "data": [1, 2, 3]}"#
        );
    }

    #[test]
    fn anything_else_is_compacted_and_cut() {
        assert_eq!(
            describe_record(0, 1, None, b"{\n  \"a\": 1\n}"),
            r#"0/1 key=- {"a":1}"#
        );
        let line = describe_record(0, 0, None, b"\xffline one\nline two");
        assert!(
            line.starts_with("0/0 key=- (not JSON, 18 bytes) "),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        let long = format!(r#"{{"text": "{}"}}"#, "x".repeat(1000));
        let line = describe_record(0, 0, None, long.as_bytes());
        assert!(line.ends_with('…') && line.chars().count() < 300, "{line}");
    }

    #[test]
    fn json_lines_are_the_value_on_one_line() {
        let raw = br#"{"id": 4, "data": [[2.39, -1.22]]}"#;
        assert_eq!(json_line(raw).unwrap().as_bytes(), raw, "kept as it came");
        assert_eq!(
            json_line(b"{\n\"a\": [1,\n2]\n}\n").unwrap(),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(json_line(b"not json"), None);
        assert_eq!(json_line(b"\xff"), None);
    }
}
