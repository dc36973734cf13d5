//! Outputs that fit: an anomaly or dead letter whole when it fits its topic's limit, reduced
//! when it does not ([`anomaly`], [`dead_letter`]), and, when the broker (or librdkafka)
//! refuses one for itself anyway, its next smaller form ([`smaller`]): whole → reduced →
//! minimal dead letter. No record is dropped: only a refused minimal dead letter has no
//! smaller form, and then the detector stops without storing the record's offset.
//!
//! The whole forms are built first and measured (a size check, no extra allocation); the
//! reduced ones only for the records that need them.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use schema::{
    encode_reduced_anomaly, encode_reduced_scored_anomaly, reduced_key, Anomaly, DeadLetter,
    DecodeLimits, Digest, FeatureShare, RecordId, Scored, Transaction, Verdict,
};

use crate::limits::OutputLimits;
use crate::output::{Destination, Form, Incoming, Output};

/// The dead-letter reason of a record whose output did not fit even reduced.
pub const OUTPUT_TOO_LARGE: &str = "output_too_large";
/// The dead-letter reason of a record whose output the broker refused, even reduced.
pub const OUTPUT_REFUSED: &str = "output_refused";

/// Whether a produce error concerns the record itself and would come back on every retry
/// (too large, an invalid record, a timestamp the topic refuses), as opposed to the
/// connection, the broker or the authorisation, which stop the detector.
pub fn is_record_level(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTimestamp
        )
    )
}

/// The Kafka key of an anomaly: the record's id, or for a record without one its position,
/// `<partition>:<offset>`.
pub fn anomaly_key(record_id: Option<&RecordId>, record: &Incoming<'_>) -> Vec<u8> {
    match record_id {
        Some(id) => id.to_string().into_bytes(),
        None => RecordId::position(record.partition, record.offset)
            .to_string()
            .into_bytes(),
    }
}

/// The anomaly of `record` (the `index`th of its batch, which the detector read and scored
/// as `scored` says), whole when it fits the anomalies topic; else reduced; else a minimal
/// dead letter.
pub fn anomaly(
    scored: &Scored<'_>,
    verdict: &Verdict,
    record: &Incoming<'_>,
    index: usize,
    source_topic: &str,
    limits: &OutputLimits,
) -> Output {
    let key = anomaly_key(scored.record_id, record);
    // A scored record is UTF-8 (both readers checked it).
    let text = std::str::from_utf8(record.payload.unwrap_or_default()).unwrap_or("{}");
    let payload = schema::encode_scored_anomaly(text, verdict, scored);
    if limits.fits(Destination::Anomalies, key.len(), payload.len()) {
        return Output {
            destination: Destination::Anomalies,
            key,
            payload,
            form: Form::Whole,
            source: index,
        };
    }
    let reduced = reduced_anomaly(&key, scored, verdict, record, index);
    if limits.fits(
        Destination::Anomalies,
        reduced.key.len(),
        reduced.payload.len(),
    ) {
        return reduced;
    }
    let detail = format!(
        "the record's anomaly (anomaly_score {}) does not fit the anomalies topic's limit of {} \
         bytes, even reduced",
        verdict.anomaly_score,
        limits.of(Destination::Anomalies)
    );
    minimal(OUTPUT_TOO_LARGE, &detail, record, index, source_topic)
}

/// The anomaly of `record`, reduced: verdict, reasons (id, features, explanation) and the
/// record's digest.
fn reduced_anomaly(
    key: &[u8],
    scored: &Scored<'_>,
    verdict: &Verdict,
    record: &Incoming<'_>,
    index: usize,
) -> Output {
    let original = Digest::of(record.payload.unwrap_or_default());
    Output {
        destination: Destination::Anomalies,
        key: reduced_key(key).into_owned(),
        payload: encode_reduced_scored_anomaly(verdict, scored, &original),
        form: Form::Reduced,
        source: index,
    }
}

/// The reduced form of an anomaly that was sent whole and refused: from what it says.
fn reduced_from_sent(
    sent: &Anomaly,
    payload: &[u8],
    verdict: &Verdict,
    record: &Incoming<'_>,
    index: usize,
) -> Output {
    if sent.feature_names.is_empty() {
        // An anomaly without reasons (not what this detector writes, but readable).
        let original = Digest::of(record.payload.unwrap_or_default());
        return Output {
            destination: Destination::Anomalies,
            key: reduced_key(sent.id.to_string().as_bytes()).into_owned(),
            payload: encode_reduced_anomaly(&sent.id, &sent.features, verdict, &original),
            form: Form::Reduced,
            source: index,
        };
    }
    let top: Vec<FeatureShare> = sent
        .explanation
        .iter()
        .filter_map(|contribution| {
            Some(FeatureShare {
                feature: sent
                    .feature_names
                    .iter()
                    .position(|name| *name == contribution.feature)?,
                direction: contribution.direction,
                share: contribution.share,
            })
        })
        .collect();
    let record_id = (!sent.identified_by_position).then_some(&sent.id);
    // A `data` record's anomaly is the transaction with its `id` and `data`.
    let unlimited = DecodeLimits {
        max_bytes: usize::MAX,
        ..DecodeLimits::default()
    };
    let from_data = Transaction::decode(payload, &unlimited).is_ok_and(|transaction| {
        Some(&transaction.id) == record_id && transaction.features == sent.features
    });
    let scored = Scored {
        record_id,
        names: &sent.feature_names,
        row: &sent.features,
        top: &top,
        from_data,
    };
    let key = anomaly_key(record_id, record);
    reduced_anomaly(&key, &scored, verdict, record, index)
}

/// The dead letter of `record` (the `index`th of its batch), refused for `reason` (with
/// `detail`): whole when it fits the dead-letter topic; else reduced; else minimal.
pub fn dead_letter(
    reason: &str,
    detail: &str,
    record: &Incoming<'_>,
    index: usize,
    source_topic: &str,
    limits: &OutputLimits,
) -> Output {
    let key = record.key.unwrap_or_default();
    let value = record.payload.unwrap_or_default();
    // The base64 copy alone is 4/3 of the value: a value that cannot fit is not copied
    // whole (a 20 MiB record would cost over 50 MiB of letter to find that out).
    let budget = limits.value_budget(Destination::DeadLetters, key.len());
    if value.len().div_ceil(3) * 4 < budget {
        let letter = DeadLetter::refused(reason, detail, &record.source(source_topic));
        let payload = letter.encode();
        if payload.len() <= budget {
            return Output {
                destination: Destination::DeadLetters,
                key: key.to_vec(),
                payload,
                form: Form::Whole,
                source: index,
            };
        }
    }
    reduced_dead_letter(reason, detail, record, index, source_topic, limits)
}

/// A reduced dead letter of `record` that fits, or else a minimal one.
fn reduced_dead_letter(
    reason: &str,
    detail: &str,
    record: &Incoming<'_>,
    index: usize,
    source_topic: &str,
    limits: &OutputLimits,
) -> Output {
    let key = reduced_key(record.key.unwrap_or_default()).into_owned();
    let budget = limits.value_budget(Destination::DeadLetters, key.len());
    match DeadLetter::reduced_to_fit(reason, detail, &record.source(source_topic), budget) {
        Some((_, payload)) => Output {
            destination: Destination::DeadLetters,
            key,
            payload,
            form: Form::Reduced,
            source: index,
        },
        None => minimal(reason, detail, record, index, source_topic),
    }
}

/// The minimal dead letter of `record`: where it is, its digest and why.
fn minimal(
    reason: &str,
    detail: &str,
    record: &Incoming<'_>,
    index: usize,
    source_topic: &str,
) -> Output {
    let letter = DeadLetter::minimal(reason, detail, &record.source(source_topic));
    Output {
        destination: Destination::DeadLetters,
        key: reduced_key(record.key.unwrap_or_default()).into_owned(),
        payload: letter.encode(),
        form: Form::Minimal,
        source: index,
    }
}

/// An output the broker or librdkafka refused for itself.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    /// Where it was going.
    pub destination: Destination,
    /// Its form.
    pub form: Form,
    /// Its value, as sent.
    pub payload: &'a [u8],
    /// Why it was refused.
    pub error: &'a KafkaError,
}

/// The next smaller form of `refused`, an output about `record` (the `index`th of its
/// batch): a whole anomaly becomes a reduced one, a whole dead letter a reduced one, a
/// reduced output a minimal dead letter naming the refusal. None for a refused minimal dead
/// letter: there is nothing smaller.
pub fn smaller(
    refused: Refused<'_>,
    record: &Incoming<'_>,
    index: usize,
    source_topic: &str,
    limits: &OutputLimits,
) -> Option<Output> {
    let what = match refused.destination {
        Destination::Anomalies => "anomaly",
        Destination::DeadLetters => "dead letter",
    };
    let refusal = format!("the broker refused the record's {what} ({})", refused.error);
    match (refused.destination, refused.form) {
        (Destination::Anomalies, Form::Whole) => {
            // The verdict is in the anomaly sent (whatever its size).
            let unlimited = DecodeLimits {
                max_bytes: usize::MAX,
                ..DecodeLimits::default()
            };
            let sent = Anomaly::decode_with(refused.payload, &unlimited).ok();
            match sent
                .as_ref()
                .and_then(|anomaly| Some((anomaly, anomaly.verdict()?)))
            {
                Some((anomaly, verdict)) => Some(reduced_from_sent(
                    anomaly,
                    refused.payload,
                    &verdict,
                    record,
                    index,
                )),
                None => Some(minimal(
                    OUTPUT_REFUSED,
                    &refusal,
                    record,
                    index,
                    source_topic,
                )),
            }
        }
        (Destination::DeadLetters, Form::Whole) => {
            let (reason, detail) = match DeadLetter::decode(refused.payload) {
                Ok(letter) => (letter.reason, format!("{}; {refusal} whole", letter.detail)),
                Err(_) => (OUTPUT_REFUSED.to_string(), refusal),
            };
            Some(reduced_dead_letter(
                &reason,
                &detail,
                record,
                index,
                source_topic,
                limits,
            ))
        }
        (_, Form::Reduced) => {
            let detail = format!("{refusal}, whole and reduced");
            Some(minimal(
                OUTPUT_REFUSED,
                &detail,
                record,
                index,
                source_topic,
            ))
        }
        (_, Form::Minimal) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::{DecodeError, Rejection};

    fn verdict() -> Verdict {
        Verdict {
            anomaly_score: 0.75,
            threshold: 0.6,
            model: "m1".into(),
            partition: 2,
            offset: 40,
            detected_at: chrono::Utc::now(),
        }
    }

    fn record<'a>(key: &'a [u8], value: &'a [u8]) -> Incoming<'a> {
        Incoming {
            partition: 2,
            offset: 40,
            key: Some(key),
            payload: Some(value),
            timestamp_ms: None,
        }
    }

    fn transaction(value: &[u8]) -> Transaction {
        let unlimited = DecodeLimits {
            max_bytes: usize::MAX,
            ..DecodeLimits::default()
        };
        Transaction::decode(value, &unlimited).unwrap()
    }

    const TOP: [FeatureShare; 1] = [FeatureShare {
        feature: 0,
        direction: schema::Direction::High,
        share: 0.75,
    }];

    /// What the detector knows of a scored `data` record.
    struct Read {
        id: Option<RecordId>,
        names: Vec<String>,
        row: Vec<f64>,
        from_data: bool,
    }

    impl Read {
        fn of(value: &[u8]) -> Read {
            let transaction = transaction(value);
            Read {
                id: Some(transaction.id),
                names: (0..transaction.features.len())
                    .map(|i| format!("x{i}"))
                    .collect(),
                row: transaction.features,
                from_data: true,
            }
        }

        fn scored(&self) -> Scored<'_> {
            Scored {
                record_id: self.id.as_ref(),
                names: &self.names,
                row: &self.row,
                top: &TOP,
                from_data: self.from_data,
            }
        }
    }

    fn big_record(pad: usize) -> Vec<u8> {
        format!(
            r#"{{"id": 7, "data": [[3.9, -3.9]], "pad": "{}"}}"#,
            "p".repeat(pad)
        )
        .into_bytes()
    }

    #[test]
    fn an_anomaly_that_fits_is_whole_and_one_that_does_not_is_reduced() {
        let limits = OutputLimits::uniform(10_000);
        let small = big_record(10);
        let whole = anomaly(
            &Read::of(&small).scored(),
            &verdict(),
            &record(b"k", &small),
            3,
            "t",
            &limits,
        );
        assert_eq!(
            (whole.form, whole.source, whole.key.as_slice()),
            (Form::Whole, 3, &b"7"[..])
        );
        let big = big_record(20_000);
        let reduced = anomaly(
            &Read::of(&big).scored(),
            &verdict(),
            &record(b"k", &big),
            4,
            "t",
            &limits,
        );
        assert_eq!(
            (reduced.form, reduced.destination),
            (Form::Reduced, Destination::Anomalies)
        );
        assert!(limits.fits(
            Destination::Anomalies,
            reduced.key.len(),
            reduced.payload.len()
        ));
        let read = Anomaly::decode(&reduced.payload).unwrap();
        assert_eq!(read.truncated, Some(Digest::of(&big)));
        assert_eq!((read.partition, read.offset), (2, 40));
    }

    #[test]
    fn a_dead_letter_that_does_not_fit_is_reduced_and_then_minimal() {
        let limits = OutputLimits::uniform(10_000);
        let rejection = Rejection::Decode(DecodeError::NotUtf8);
        let small = record(b"k", b"\xff");
        assert_eq!(
            dead_letter(
                rejection.reason(),
                &rejection.to_string(),
                &small,
                0,
                "t",
                &limits
            )
            .form,
            Form::Whole
        );
        let value = vec![b'x'; 3 << 20];
        let key = vec![b'k'; 100 << 10];
        let big = record(&key, &value);
        let output = dead_letter(
            rejection.reason(),
            &rejection.to_string(),
            &big,
            1,
            "t",
            &limits,
        );
        assert_eq!(output.form, Form::Reduced);
        assert!(limits.fits(
            Destination::DeadLetters,
            output.key.len(),
            output.payload.len()
        ));
        assert!(output.key.starts_with(b"sha256:"));
        let letter = DeadLetter::decode(&output.payload).unwrap();
        assert_eq!(letter.reason, "not_utf8");
        assert_eq!(letter.truncated.unwrap().original, Digest::of(&value));
        // A limit too small for any reduced letter: the minimal one.
        let tiny = OutputLimits::uniform(1_400);
        assert_eq!(
            dead_letter(
                rejection.reason(),
                &rejection.to_string(),
                &big,
                1,
                "t",
                &tiny
            )
            .form,
            Form::Minimal
        );
    }

    #[test]
    fn a_refused_output_gets_smaller_until_the_minimal_dead_letter() {
        let limits = OutputLimits::default();
        let value = big_record(100);
        let record = record(b"k", &value);
        let error = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(is_record_level(&error));
        let whole = anomaly(
            &Read::of(&value).scored(),
            &verdict(),
            &record,
            0,
            "t",
            &limits,
        );
        fn refused<'a>(output: &'a Output, error: &'a KafkaError) -> Refused<'a> {
            Refused {
                destination: output.destination,
                form: output.form,
                payload: &output.payload,
                error,
            }
        }
        let reduced = smaller(refused(&whole, &error), &record, 0, "t", &limits).unwrap();
        assert_eq!(reduced.form, Form::Reduced);
        assert_eq!(
            Anomaly::decode(&reduced.payload).unwrap().anomaly_score,
            0.75
        );
        let minimal = smaller(refused(&reduced, &error), &record, 0, "t", &limits).unwrap();
        assert_eq!(
            (minimal.form, minimal.destination),
            (Form::Minimal, Destination::DeadLetters)
        );
        let letter = DeadLetter::decode(&minimal.payload).unwrap();
        assert_eq!(letter.reason, OUTPUT_REFUSED);
        assert!(
            letter.detail.contains("size too large"),
            "{}",
            letter.detail
        );
        assert_eq!((letter.partition, letter.offset), (2, 40));
        assert!(smaller(refused(&minimal, &error), &record, 0, "t", &limits).is_none());
        // A whole dead letter keeps its reason when reduced.
        let rejection = Rejection::Decode(DecodeError::NotUtf8);
        let letter = dead_letter(
            rejection.reason(),
            &rejection.to_string(),
            &record,
            0,
            "t",
            &limits,
        );
        let reduced = smaller(refused(&letter, &error), &record, 0, "t", &limits).unwrap();
        assert_eq!(
            DeadLetter::decode(&reduced.payload).unwrap().reason,
            "not_utf8"
        );
        let auth = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(!is_record_level(&auth), "authorisation stops the detector");
    }

    #[test]
    fn a_record_without_an_id_is_keyed_by_its_position_and_keeps_its_reasons_when_reduced() {
        let padding = "p".repeat(20_000);
        let value = format!(r#"{{"amount": 912.4, "note": "{padding}"}}"#).into_bytes();
        let read = Read {
            id: None,
            names: vec!["amount:log".into()],
            row: vec![6.8],
            from_data: false,
        };
        let record = record(b"k", &value);
        let whole = anomaly(
            &read.scored(),
            &verdict(),
            &record,
            0,
            "t",
            &OutputLimits::default(),
        );
        assert_eq!(
            (whole.form, whole.key.as_slice()),
            (Form::Whole, &b"2:40"[..])
        );
        let limits = OutputLimits::uniform(10_000);
        let reduced = anomaly(&read.scored(), &verdict(), &record, 0, "t", &limits);
        assert_eq!(
            (reduced.form, reduced.key.as_slice()),
            (Form::Reduced, &b"2:40"[..])
        );
        let read_back = Anomaly::decode(&reduced.payload).unwrap();
        assert!(read_back.identified_by_position);
        assert_eq!(read_back.feature_names, ["amount:log"]);
        assert_eq!(read_back.features, [6.8]);
        assert_eq!(read_back.explanation[0].feature, "amount:log");
        assert_eq!(read_back.truncated, Some(Digest::of(&value)));
        // Refused whole by the broker: the reduced form says the same.
        let error = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let refused = Refused {
            destination: whole.destination,
            form: whole.form,
            payload: &whole.payload,
            error: &error,
        };
        let sent_smaller = smaller(refused, &record, 0, "t", &limits).unwrap();
        assert_eq!(sent_smaller.key, reduced.key);
        let again = Anomaly::decode(&sent_smaller.payload).unwrap();
        assert_eq!(
            (again.id, again.features, again.explanation),
            (read_back.id, read_back.features, read_back.explanation)
        );
        // A refused `data` record's anomaly keeps `id` and `data` when reduced.
        let data = big_record(100);
        let whole = anomaly(
            &Read::of(&data).scored(),
            &verdict(),
            &record_of(&data),
            0,
            "t",
            &limits,
        );
        let refused = Refused {
            destination: whole.destination,
            form: whole.form,
            payload: &whole.payload,
            error: &error,
        };
        let data_smaller = smaller(refused, &record_of(&data), 0, "t", &limits).unwrap();
        assert!(data_smaller
            .payload
            .starts_with(br#"{"id":7,"data":[[3.9,-3.9]],"truncated":true"#));
        assert_eq!(data_smaller.key, b"7");
    }

    fn record_of(value: &[u8]) -> Incoming<'_> {
        record(b"k", value)
    }
}
