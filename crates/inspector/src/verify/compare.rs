//! One anomaly against its source record re-scored: the score (bit for bit), the threshold,
//! the features scored, and either the record's own fields (a whole anomaly carries them
//! unchanged) or its size and SHA-256 (a reduced one). Each difference is one sentence.

use schema::RecordId;
use serde_json::Value;

use super::anomaly::{same_json, AnomalyRecord, ADDED_FIELDS};
use super::models::{Refusal, Rescored, Rescorer};

/// Longest JSON value quoted in a sentence before it is cut with `…`.
const QUOTED_CHARS: usize = 80;

/// What differs between `anomaly` and `source` re-scored by `rescorer` (`rescored`); empty
/// when they are identical.
pub fn problems(
    anomaly: &AnomalyRecord,
    source: &[u8],
    rescorer: &Rescorer,
    rescored: &Result<Rescored, Refusal>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match &anomaly.truncated {
        Some(reduced) => {
            let digest = schema::Digest::of(source);
            match &reduced.sha256 {
                Some(sha256) if *sha256 == digest.sha256 => {}
                Some(sha256) => problems.push(format!(
                    "original_sha256 {sha256} in the anomaly, {} of the source record",
                    digest.sha256
                )),
                None => problems.push("a reduced anomaly without original_sha256".into()),
            }
            match reduced.bytes {
                Some(bytes) if bytes == digest.bytes => {}
                Some(bytes) => problems.push(format!(
                    "original_bytes {bytes} in the anomaly, {} in the source record",
                    digest.bytes
                )),
                None => problems.push("a reduced anomaly without original_bytes".into()),
            }
        }
        None => own_fields(anomaly, source, &mut problems),
    }
    let rescored = match rescored {
        Ok(rescored) => rescored,
        Err(refusal) => {
            problems.push(format!("the model refuses the source record: {refusal}"));
            return problems;
        }
    };
    verdict(anomaly, rescorer, rescored, &mut problems);
    features(anomaly, rescorer, rescored, &mut problems);
    if let Some(written) = anomaly.fields.get("record_id") {
        let read = match &rescored.id {
            Some(RecordId::Int(id)) => Value::from(*id),
            Some(RecordId::Str(id)) => Value::from(id.as_str()),
            None => Value::Null,
        };
        if !same_json(written, &read) {
            problems.push(format!(
                "record_id {} in the anomaly, {} re-read",
                quoted(written),
                quoted(&read)
            ));
        }
    }
    problems
}

/// Score, `score` and threshold, bit for bit, and the score above the threshold.
fn verdict(
    anomaly: &AnomalyRecord,
    rescorer: &Rescorer,
    rescored: &Rescored,
    problems: &mut Vec<String>,
) {
    let score = rescored.score;
    match anomaly.anomaly_score {
        Some(written) if written.to_bits() == score.to_bits() => {}
        Some(written) => problems.push(format!(
            "anomaly_score {written} in the anomaly, {score} re-scored"
        )),
        None => problems.push("no anomaly_score".into()),
    }
    match &anomaly.score {
        Some(written) if written.len() == 1 && written[0].to_bits() == (-score).to_bits() => {}
        Some(written) => problems.push(format!(
            "score {} in the anomaly, [{}] re-scored",
            quoted(&Value::from(written.clone())),
            -score
        )),
        None => problems.push("no score".into()),
    }
    let threshold = rescorer.forest.threshold();
    match anomaly.threshold {
        Some(written) if written.to_bits() == threshold.to_bits() => {}
        Some(written) => problems.push(format!(
            "threshold {written} in the anomaly, {threshold} in the model"
        )),
        None => problems.push("no threshold".into()),
    }
    if score <= threshold {
        problems.push(format!(
            "re-scored {score}, not above the model's threshold {threshold}"
        ));
    }
}

/// The features scored: the `features` object by name when the anomaly has one, and the
/// `data` row of a reduced anomaly of a `data` model (a whole anomaly's `data` is one of
/// the record's own fields, compared with the source's).
fn features(
    anomaly: &AnomalyRecord,
    rescorer: &Rescorer,
    rescored: &Rescored,
    problems: &mut Vec<String>,
) {
    if let Some(written) = &anomaly.features {
        for (name, value) in rescorer.names.iter().zip(&rescored.row) {
            match written.get(name).map(|v| (v, v.as_f64())) {
                Some((_, Some(x))) if x.to_bits() == value.to_bits() => {}
                Some((shown, _)) => problems.push(format!(
                    "feature {name}: {} in the anomaly, {value} re-read",
                    quoted(shown)
                )),
                None => problems.push(format!("feature {name} is not in the anomaly's features")),
            }
        }
        for name in written.keys() {
            if !rescorer.names.contains(name) {
                problems.push(format!(
                    "the anomaly's features name {name}, which the model does not read"
                ));
            }
        }
    }
    let reads_data = rescorer.features.named().is_none();
    if anomaly.truncated.is_some() && reads_data && anomaly.fields.contains_key("data") {
        let same = anomaly.data().is_some_and(|data| {
            data.len() == rescored.row.len()
                && data
                    .iter()
                    .zip(&rescored.row)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
        });
        if !same {
            problems.push(format!(
                "data {} in the anomaly, {} re-read",
                quoted(&anomaly.fields["data"]),
                quoted(&Value::from(rescored.row.clone()))
            ));
        }
    }
}

/// A whole anomaly carries every field of its source unchanged, and no other but those it
/// adds.
fn own_fields(anomaly: &AnomalyRecord, source: &[u8], problems: &mut Vec<String>) {
    let Ok(Value::Object(source)) = serde_json::from_slice::<Value>(source) else {
        // Not an object: the model refuses it, which is reported.
        return;
    };
    let own = |name: &String| !ADDED_FIELDS.contains(&name.as_str());
    for (name, value) in source.iter().filter(|(name, _)| own(name)) {
        match anomaly.fields.get(name) {
            Some(written) if same_json(written, value) => {}
            Some(written) => problems.push(format!(
                "field {name}: {} in the anomaly, {} in the source",
                quoted(written),
                quoted(value)
            )),
            None => problems.push(format!("field {name} of the source is not in the anomaly")),
        }
    }
    for name in anomaly.fields.keys().filter(|name| own(name)) {
        if !source.contains_key(name) {
            problems.push(format!("field {name} is not in the source record"));
        }
    }
}

/// A JSON value on one line, cut at [`QUOTED_CHARS`].
fn quoted(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= QUOTED_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(QUOTED_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::models::Models;
    use iforest::{Contamination, IsolationForestParams};
    use schema::{encode_anomaly, encode_reduced_anomaly, DecodeLimits, Transaction, Verdict};

    struct Fixture {
        _dir: tempfile::TempDir,
        models: Models,
        id: String,
    }

    fn fixture() -> Fixture {
        let rows: Vec<[f64; 2]> = (0..300)
            .map(|i| {
                let jitter = |step: f64| ((i as f64 * step).fract() - 0.5) * 0.6;
                [2.0 + jitter(0.618), 2.0 + jitter(0.414)]
            })
            .collect();
        let forest = IsolationForestParams::new()
            .n_trees(20)
            .contamination(Contamination::Fraction(0.05))
            .seed(3)
            .fit_rows(&rows)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes = forest.to_bytes();
        let id = iforest::model_id(&bytes);
        std::fs::write(dir.path().join(format!("{id}.bin")), &bytes).unwrap();
        Fixture {
            models: Models::new(dir.path(), DecodeLimits::default()),
            _dir: dir,
            id,
        }
    }

    /// The anomaly the detector writes for `source` (whole, or reduced).
    fn detected(fixture: &mut Fixture, source: &[u8], reduced: bool) -> Vec<u8> {
        let rescorer = fixture.models.load(&fixture.id).unwrap();
        let tx = Transaction::decode(source, &DecodeLimits::default()).unwrap();
        let verdict = Verdict {
            anomaly_score: rescorer.forest.score(&tx.features).unwrap(),
            threshold: rescorer.forest.threshold(),
            model: fixture.id.clone(),
            partition: 0,
            offset: 7,
            detected_at: chrono::Utc::now(),
        };
        if reduced {
            encode_reduced_anomaly(&tx.id, &tx.features, &verdict, &schema::Digest::of(source))
        } else {
            encode_anomaly(&tx, &verdict)
        }
    }

    fn check(fixture: &mut Fixture, anomaly: &[u8], source: &[u8]) -> Vec<String> {
        let rescorer = fixture.models.load(&fixture.id).unwrap();
        let anomaly = AnomalyRecord::read(anomaly).unwrap();
        problems(&anomaly, source, rescorer, &rescorer.rescore(source))
    }

    const SOURCE: &[u8] = br#"{"id": 4, "data": [[3.9, -3.5]], "shop": {"name": "x"}, "n": 1e2}"#;

    #[test]
    fn what_the_detector_writes_is_identical() {
        let mut fixture = fixture();
        for reduced in [false, true] {
            let anomaly = detected(&mut fixture, SOURCE, reduced);
            assert_eq!(check(&mut fixture, &anomaly, SOURCE), Vec::<String>::new());
        }
    }

    /// The anomaly with `change` applied to its JSON.
    fn forged(fixture: &mut Fixture, reduced: bool, change: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut value: Value = serde_json::from_slice(&detected(fixture, SOURCE, reduced)).unwrap();
        change(&mut value);
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn a_changed_score_threshold_or_field_is_named() {
        let mut fixture = fixture();
        let anomaly = forged(&mut fixture, false, |v| {
            let score = v["anomaly_score"].as_f64().unwrap();
            v["anomaly_score"] = Value::from(f64::from_bits(score.to_bits() + 1));
        });
        let found = check(&mut fixture, &anomaly, SOURCE);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("anomaly_score "), "{found:?}");

        let anomaly = forged(&mut fixture, false, |v| {
            v["score"] = serde_json::json!([-0.99]);
            v["threshold"] = Value::from(0.1);
            v["shop"]["name"] = Value::from("y");
            v.as_object_mut().unwrap().remove("n");
            v["extra"] = Value::from(true);
        });
        let found = check(&mut fixture, &anomaly, SOURCE);
        let expected = [
            "score [-0.99] in the anomaly, [",
            "threshold 0.1 in the anomaly, ",
            r#"field shop: {"name":"y"} in the anomaly, {"name":"x"} in the source"#,
            "field n of the source is not in the anomaly",
            "field extra is not in the source record",
        ];
        assert_eq!(found.len(), expected.len(), "{found:?}");
        for start in expected {
            assert!(
                found.iter().any(|p| p.starts_with(start)),
                "{start}: {found:?}"
            );
        }
    }

    #[test]
    fn a_features_object_is_compared_by_name() {
        let mut fixture = fixture();
        let anomaly = forged(&mut fixture, false, |v| {
            v["features"] = serde_json::json!({"x0": 3.9, "x1": -3.5});
            v["record_id"] = serde_json::json!(4);
        });
        assert_eq!(check(&mut fixture, &anomaly, SOURCE), Vec::<String>::new());
        let anomaly = forged(&mut fixture, false, |v| {
            v["features"] = serde_json::json!({"x0": 3.9, "x1": -3.4, "x": 1});
            v["record_id"] = serde_json::json!("4");
        });
        let found = check(&mut fixture, &anomaly, SOURCE);
        assert_eq!(
            found,
            [
                "feature x1: -3.4 in the anomaly, -3.5 re-read",
                "the anomaly's features name x, which the model does not read",
                r#"record_id "4" in the anomaly, 4 re-read"#,
            ]
        );
    }

    #[test]
    fn a_reduced_anomaly_is_checked_by_digest_and_data() {
        let mut fixture = fixture();
        let anomaly = detected(&mut fixture, SOURCE, true);
        let other = br#"{"id": 4, "data": [[3.9, -3.5]], "shop": {"name": "z"}, "n": 1e2}"#;
        let found = check(&mut fixture, &anomaly, other);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("original_sha256 "), "{found:?}");

        let anomaly = forged(&mut fixture, true, |v| {
            v["data"] = serde_json::json!([[3.9, 0]])
        });
        let found = check(&mut fixture, &anomaly, SOURCE);
        assert_eq!(found, ["data [[3.9,0]] in the anomaly, [3.9,-3.5] re-read"]);
    }

    #[test]
    fn a_source_the_model_refuses_or_does_not_flag_is_named() {
        let mut fixture = fixture();
        let anomaly = detected(&mut fixture, SOURCE, false);
        let normal = br#"{"id": 4, "data": [[2.0, 2.0]], "shop": {"name": "x"}, "n": 1e2}"#;
        let found = check(&mut fixture, &anomaly, normal);
        assert!(
            found
                .iter()
                .any(|p| p.contains("not above the model's threshold")),
            "{found:?}"
        );
        let found = check(&mut fixture, &anomaly, b"not json");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("the model refuses the source record: not_json"),
            "{found:?}"
        );
    }
}
