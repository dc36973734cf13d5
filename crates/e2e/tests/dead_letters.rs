//! Bad input, each kind between good records: every bad record goes to the dead-letter topic
//! with its reason, source offset and original bytes; the good records around it are scored;
//! the detector keeps running.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::Pipeline;
use testkit::{produce, read_topic, run_ok, unique, Record};

#[test]
fn every_kind_of_bad_record_is_a_dead_letter_with_its_reason() {
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_utf8", b"\xff\xfe\x00 binary".to_vec()),
        ("not_json", b"hello, detector".to_vec()),
        ("not_an_object", b"[1, 2]".to_vec()),
        ("missing_id", br#"{"data": [[1, 2]]}"#.to_vec()),
        ("invalid_id", br#"{"id": [1], "data": [[1, 2]]}"#.to_vec()),
        ("missing_data", br#"{"id": 1}"#.to_vec()),
        ("empty_data", br#"{"id": 1, "data": []}"#.to_vec()),
        (
            "ragged_data",
            br#"{"id": 1, "data": [[1, 2], [3]]}"#.to_vec(),
        ),
        (
            "too_deep",
            format!(
                "{{\"id\": 1, \"data\": {}1{}}}",
                "[".repeat(64),
                "]".repeat(64)
            )
            .into_bytes(),
        ),
        (
            "feature_count",
            br#"{"id": 1, "data": [[1, 2, 3]]}"#.to_vec(),
        ),
        ("non_numeric", br#"{"id": 1, "data": [["a", 2]]}"#.to_vec()),
        ("non_finite", br#"{"id": 1, "data": [[NaN, 2]]}"#.to_vec()),
        // Beyond f64 in the features: located, like NaN; elsewhere in the record: out of range.
        ("non_finite", br#"{"id": 1, "data": [[1e999, 2]]}"#.to_vec()),
        (
            "number_out_of_range",
            br#"{"id": 1, "data": [[1, 2]], "amount": 1e999}"#.to_vec(),
        ),
        (
            "oversized",
            format!(
                r#"{{"id": 1, "data": [[1, 2]], "pad": "{}"}}"#,
                "x".repeat(3000)
            )
            .into_bytes(),
        ),
    ];
    // Good records between the bad ones: far points (anomalies) and cluster points (normal).
    let good = |i: usize| -> Vec<u8> {
        let (x, y) = if i.is_multiple_of(2) {
            (3.9, -3.9)
        } else {
            (2.0, 2.0)
        };
        format!(
            r#"{{"id": {}, "data": [[{x}, {y}]], "current_time": "not a time"}}"#,
            1000 + i
        )
        .into_bytes()
    };
    let mut records = Vec::new();
    for (i, (_, bytes)) in bad.iter().enumerate() {
        records.push((format!("{}", 1000 + 2 * i), good(2 * i)));
        records.push((format!("bad-{i}"), bytes.clone()));
        records.push((format!("{}", 1000 + 2 * i + 1), good(2 * i + 1)));
    }
    let pipeline = Pipeline::new("dlq", 1);
    let (transactions, anomalies, dead_letters) = (
        &pipeline.transactions,
        &pipeline.anomalies,
        &pipeline.dead_letters,
    );
    let records: Vec<Record> = records
        .into_iter()
        .map(|(key, value)| Record {
            partition: Some(0),
            ..Record::keyed(key, value)
        })
        .collect();
    produce(transactions, &records);

    let output = run_ok(pipeline.detector(&unique("dlq-group")).args([
        "--max-record-bytes",
        "2048",
        "--idle-exit",
        "5",
    ]));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(&format!("consumed={}", records.len())),
        "{summary}"
    );

    let letters = read_topic(dead_letters, Duration::from_secs(30), |got| {
        got.len() >= bad.len()
    });
    let mut by_offset = BTreeMap::new();
    for letter in &letters {
        let letter = schema::DeadLetter::decode(&letter.value).unwrap();
        by_offset.insert(letter.offset, letter);
    }
    assert_eq!(by_offset.len(), bad.len(), "one dead letter per bad record");
    for (i, (reason, bytes)) in bad.iter().enumerate() {
        let offset = (3 * i + 1) as i64;
        let letter = &by_offset[&offset];
        println!("{reason:>20}: {}", letter.detail);
        assert_eq!(letter.reason, *reason, "record at offset {offset}");
        assert_eq!(
            (letter.partition, letter.source_topic.as_str()),
            (0, transactions.as_str())
        );
        assert_eq!(
            letter.original().unwrap(),
            *bytes,
            "original bytes of {reason}"
        );
        assert_eq!(letter.key.as_deref(), Some(format!("bad-{i}").as_str()));
    }
    // Every far good point is an anomaly; no cluster point is; a bad time did not stop them.
    let flagged = read_topic(anomalies, Duration::from_secs(30), |got| {
        got.len() >= bad.len()
    });
    let mut ids: Vec<i64> = flagged
        .iter()
        .map(|r| match schema::Anomaly::decode(&r.value).unwrap().id {
            schema::RecordId::Int(id) => id,
            other => panic!("unexpected id {other}"),
        })
        .collect();
    ids.sort();
    let expected: Vec<i64> = (0..2 * bad.len() as i64)
        .filter(|i| i % 2 == 0)
        .map(|i| 1000 + i)
        .collect();
    assert_eq!(ids, expected);
}
