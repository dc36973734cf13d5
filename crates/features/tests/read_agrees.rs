//! `NamedFeatures::read` (one parser pass, no tree) gives exactly what `extract_into` and
//! `record_id` give on the parsed record: the same rows, bit for bit, and the same refusals.

use dataset::PaymentsParams;
use features::{FeatureParams, Missing, NamedFeatures};
use serde_json::{json, Value};

/// Both ways on one record's text: (id, row) or the reason.
fn both(features: &NamedFeatures, text: &str) -> (Result<String, String>, Result<String, String>) {
    let mut row = Vec::new();
    let streamed = features
        .read(text.as_bytes(), &mut row)
        .map(|id| {
            format!(
                "{id:?} {:?}",
                row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            )
        })
        .map_err(|e| format!("{}: {e}", e.reason()));
    let value: Value = serde_json::from_str(text).unwrap();
    let parsed = features
        .record_id(&value)
        .and_then(|id| {
            if !value.is_object() {
                return Err(features::ExtractError::NotAnObject);
            }
            features.extract(&value).map(|row| {
                format!(
                    "{id:?} {:?}",
                    row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                )
            })
        })
        .map_err(|e| format!("{}: {e}", e.reason()));
    (streamed, parsed)
}

#[test]
fn payments_read_the_same_both_ways() {
    let payments: Vec<Value> = PaymentsParams::default()
        .records()
        .unwrap()
        .take(3000)
        .map(|p| p.to_value())
        .collect();
    for missing in [Missing::DeadLetter, Missing::Impute] {
        let features = FeatureParams::new(
            "amount,amount:log,/merchant/mcc:category,/merchant/mcc:rarity,/merchant/country:category,ts:hour,ts:weekday,card:category,card:rarity",
        )
        .missing(missing)
        .check()
        .unwrap()
        .fit(&payments[..2000])
        .unwrap()
        .features;
        for payment in &payments[2000..] {
            let text = payment.to_string();
            let (streamed, parsed) = both(&features, &text);
            assert!(streamed.is_ok(), "{text}: {streamed:?}");
            assert_eq!(streamed, parsed, "{text}");
        }
    }
}

#[test]
fn odd_records_read_the_same_both_ways() {
    let training = [
        json!({"id": 1, "a": 1.5, "m": {"c": "x", "list": [1, 2, 3]}, "t": "2026-12-01T03:00:00Z", "k~/": 2}),
        json!({"id": 2, "a": 2.5, "m": {"c": 7, "list": [4, 5, 6]}, "t": 1_796_094_900_000i64, "k~/": 3}),
    ];
    // The id field is also an ancestor of a feature's field in the second specification.
    for (missing, id) in [
        (Missing::DeadLetter, "id"),
        (Missing::Impute, "id"),
        (Missing::Impute, "/m"),
    ] {
        let features =
            FeatureParams::new("a,a:log,/m/c:category,/m/list/1,t:hour,t:weekday,/k~0~1")
                .missing(missing)
                .id_field(id)
                .check()
                .unwrap()
                .fit(&training)
                .unwrap()
                .features;
        let base = r#""a": 3, "m": {"c": "x", "list": [0, 9]}, "t": "2026-12-01T04:00:00+01:00", "k~/": 1"#;
        let records = [
            format!("{{{base}}}"),
            format!(r#"{{"id": 5, {base}}}"#),
            format!(r#"{{"id": "s-5", {base}}}"#),
            format!(r#"{{"id": 18446744073709551615, {base}}}"#),
            format!(r#"{{"id": 1.5, {base}}}"#),
            format!(r#"{{"id": "", {base}}}"#),
            format!(r#"{{"id": null, {base}}}"#),
            // Duplicate keys: the last one wins, and replaces what was under the first.
            format!(r#"{{{base}, "a": 4}}"#),
            format!(r#"{{{base}, "m": 5}}"#),
            format!(r#"{{{base}, "m": {{"c": "y"}}}}"#),
            r#"{"m": {"c": "y", "list": [1, 2]}, "m": {"list": [7, 8]}, "a": 1, "t": 0, "k~/": 0}"#.to_string(),
            // Escapes in keys and values.
            r#"{"\u0061": 2, "m": {"\u0063": "\u0078", "list": [0, 1]}, "t": "2026-12-01T03:00:00Z", "k~/": 0}"#.to_string(),
            // Wrong types, missing fields, nulls, other numbers.
            format!(r#"{{{base}, "a": "3"}}"#),
            format!(r#"{{{base}, "a": -2}}"#),
            format!(r#"{{{base}, "a": null}}"#),
            format!(r#"{{{base}, "a": 1e300}}"#),
            format!(r#"{{{base}, "a": 12345678901234567890}}"#),
            format!(r#"{{{base}, "m": {{"c": 1.5, "list": [0, 1]}}}}"#),
            format!(r#"{{{base}, "m": {{"c": true, "list": [0, 1]}}}}"#),
            format!(r#"{{{base}, "m": {{"c": "x", "list": [0]}}}}"#),
            format!(r#"{{{base}, "m": {{"c": "x", "list": {{"1": 4}}}}}}"#),
            format!(r#"{{{base}, "m": {{"c": "x", "list": [0, [1]]}}}}"#),
            format!(r#"{{{base}, "t": "later"}}"#),
            format!(r#"{{{base}, "t": -1}}"#),
            format!(r#"{{{base}, "t": 9e15}}"#),
            format!(r#"{{{base}, "t": null}}"#),
            format!(r#"{{{base}, "k~/": {{}}}}"#),
            r#"{"a": 1}"#.to_string(),
            "{}".to_string(),
            r#"{"a": {"a": {"a": [[[[{}]]]]}}, "z": [1, "two", {"three": null}]}"#.to_string(),
            "[1, 2]".to_string(),
            "\"a\"".to_string(),
            "null".to_string(),
        ];
        for text in &records {
            let (streamed, parsed) = both(&features, text);
            assert_eq!(streamed, parsed, "{missing}, id {id}: {text}");
        }
    }
}
