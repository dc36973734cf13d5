//! A [`Snapshot`] as a block of text for people.

use std::fmt::Write as _;

use super::snapshot::Snapshot;

/// `value` with `digits` decimals, `-` when undefined.
fn fixed(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The summary as a block of text for people.
pub fn render(snapshot: &Snapshot) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write_block(&mut text, snapshot);
    text
}

fn write_block(text: &mut String, snapshot: &Snapshot) -> std::fmt::Result {
    writeln!(
        text,
        "inspector stats  {}\n{:<28} {:>12} {:>10}",
        snapshot.at.as_deref().unwrap_or("?"),
        "topic",
        "records",
        "per s"
    )?;
    for (name, topic) in &snapshot.topics {
        writeln!(
            text,
            "{name:<28} {:>12} {:>10}  ({})",
            topic.records,
            fixed(Some(topic.per_second), 1),
            topic.role.name()
        )?;
    }
    let share = snapshot
        .anomaly_share
        .map_or_else(|| "-".to_string(), |s| format!("{:.3} %", s * 100.0));
    writeln!(
        text,
        "anomaly share {share}   dead letters {}",
        snapshot.dead_letters
    )?;
    let group = &snapshot.group;
    match (&group.lag, group.total_lag) {
        (Some(lag), Some(total)) => {
            let parts: Vec<String> = lag
                .iter()
                .map(|l| {
                    let committed = l
                        .committed
                        .map_or_else(|| "none".to_string(), |c| c.to_string());
                    format!(
                        "{}: {} (committed {committed}, high {})",
                        l.partition, l.lag, l.high
                    )
                })
                .collect();
            writeln!(
                text,
                "group {} lag {total}   {}",
                group.id,
                parts.join("  ")
            )?;
        }
        _ => writeln!(text, "group {} lag unknown", group.id)?,
    }
    let latency = &snapshot.latency_ms;
    writeln!(
        text,
        "latency ms  p50 {}  p95 {}  p99 {}  ({} matched, {} unmatched)",
        fixed(latency.p50, 1),
        fixed(latency.p95, 1),
        fixed(latency.p99, 1),
        latency.count,
        latency.unmatched
    )?;
    if let Some(model) = &snapshot.model {
        writeln!(
            text,
            "model {} in use for {} s ({} anomalies; {} models seen)",
            model.id,
            fixed(Some(model.in_use_s), 0),
            model.anomalies,
            model.models_seen
        )?;
    }
    if let Some(labels) = &snapshot.labels {
        writeln!(
            text,
            "labels  precision {}  recall {}  f1 {}  (tp {} fp {} fn {})",
            fixed(labels.precision, 3),
            fixed(labels.recall, 3),
            fixed(labels.f1, 3),
            labels.true_positives,
            labels.false_positives,
            labels.false_negatives
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::counters::Stats;
    use super::super::snapshot::{PartitionLag, Role, Watermarks};
    use super::*;

    #[test]
    fn a_summary_reads_as_a_block_for_people() {
        let mut stats = Stats::new("tx", "an", "dlq", None, None);
        let tx = br#"{"id": 0, "data": [[1.0, 2.0]], "label": 1}"#;
        stats.record(Role::Input, 0, 0, Some(1_000), tx);
        let anomaly = br#"{"id": 0, "data": [[1.0, 2.0]], "label": 1, "score": [-0.7],
            "anomaly_score": 0.7, "threshold": 0.6, "model": "m",
            "detected_at": "2026-01-01T00:00:00Z", "partition": 0, "offset": 0}"#;
        stats.record(Role::Output, 0, 0, Some(1_025), anomaly);
        let marks = Watermarks {
            partition: 0,
            low: 0,
            high: 2,
        };
        stats.set_watermarks(Role::DeadLetters, vec![marks]);
        let lag = [PartitionLag::new(marks, Some(1))];
        assert_eq!(
            render(&stats.snapshot(5_000, "detectors", Some(&lag))),
            "inspector stats  1970-01-01T00:00:05.000Z\n\
             topic                             records      per s\n\
             an                                      1        0.1  (anomalies)\n\
             dlq                                     0        0.0  (dead_letters)\n\
             tx                                      1        0.1  (input)\n\
             anomaly share 100.000 %   dead letters 2\n\
             group detectors lag 1   0: 1 (committed 1, high 2)\n\
             latency ms  p50 25.0  p95 25.0  p99 25.0  (1 matched, 0 unmatched)\n\
             model m in use for 4 s (1 anomalies; 1 models seen)\n\
             labels  precision 1.000  recall 1.000  f1 1.000  (tp 1 fp 0 fn 0)\n"
        );
        let text = render(&Stats::new("tx", "an", "dlq", None, None).snapshot(0, "g", None));
        assert!(text.contains("group g lag unknown\n"), "{text}");
        assert!(
            text.contains("anomaly share -   dead letters 0\n"),
            "{text}"
        );
        assert!(text.contains("p50 -  p95 -  p99 -"), "{text}");
        assert!(
            !text.contains("model") && !text.contains("labels"),
            "{text}"
        );
    }
}
