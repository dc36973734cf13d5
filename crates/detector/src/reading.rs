//! From a record's bytes to its row and id, as the model reads it ([`Reader`]): a model
//! without named features reads the record's `data` (`schema::Transaction`), a model with
//! named features reads its fields (`features::NamedFeatures`). A record that gives no row is
//! a [`Refusal`], the dead letter's reason and detail.

use features::Features;
use schema::{DecodeError, DecodeLimits, RecordId, Rejection, Transaction};

/// Why a record cannot be scored: the dead letter's machine-readable reason and its detail
/// for people (which names the field or feature at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `not_json`, `missing_feature`, `not_numeric`, `feature_count`, …
    pub reason: &'static str,
    /// `/merchant/geo/lat is a string`, …
    pub detail: String,
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Refusal {
            reason: rejection.reason(),
            detail: rejection.to_string(),
        }
    }
}

impl From<features::ExtractError> for Refusal {
    fn from(error: features::ExtractError) -> Self {
        Refusal {
            reason: error.reason(),
            detail: error.to_string(),
        }
    }
}

/// Reads records the way one model does.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// What the model reads.
    pub features: &'a Features,
    /// The model's width.
    pub width: usize,
    /// The largest record, and (for `data` records) the deepest nesting, accepted.
    pub limits: &'a DecodeLimits,
}

impl Reader<'_> {
    /// Refuses a record larger than the limit (before anything reads it).
    pub fn check_size(&self, payload: &[u8]) -> Result<(), Refusal> {
        if payload.len() > self.limits.max_bytes {
            let error = DecodeError::Oversized {
                size: payload.len(),
                limit: self.limits.max_bytes,
            };
            return Err(Rejection::from(error).into());
        }
        Ok(())
    }

    /// Appends the record's row (the model's width of values) to `rows` and gives its id
    /// (None: a record without an id, which its partition and offset identify); or the
    /// refusal, with nothing appended. `where_read` names the record in the log.
    pub fn read(
        &self,
        payload: &[u8],
        rows: &mut Vec<f64>,
        where_read: (i32, i64),
    ) -> Result<Option<RecordId>, Refusal> {
        self.check_size(payload)?;
        match self.features {
            Features::Named(named) => Ok(named.read(payload, rows)?),
            Features::Data => {
                let transaction =
                    Transaction::decode(payload, self.limits).map_err(Rejection::from)?;
                if transaction.features.len() != self.width {
                    return Err(Rejection::FeatureCount {
                        expected: self.width,
                        found: transaction.features.len(),
                    }
                    .into());
                }
                if let Some(problem) = transaction.time_problem() {
                    let (partition, offset) = where_read;
                    log::debug!(
                        "record {} at {partition}/{offset}: {problem}; scored anyway",
                        transaction.id
                    );
                }
                rows.extend_from_slice(&transaction.features);
                Ok(Some(transaction.id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use features::FeatureParams;
    use serde_json::json;

    fn named() -> Features {
        let spec = FeatureParams::new("amount:log,/merchant/geo/lat,ts:hour")
            .check()
            .unwrap();
        let training: Vec<_> = (0..10)
            .map(|i| {
                json!({"amount": 10.0 * f64::from(i), "merchant": {"geo": {"lat": 48.0}},
                       "ts": format!("2026-12-01T{:02}:00:00Z", 8 + i)})
            })
            .collect();
        let text = spec.fit(&training).unwrap().features.to_metadata();
        Features::from_metadata_entry(Some(&text)).unwrap()
    }

    #[test]
    fn named_features_give_a_row_an_id_or_a_refusal_naming_the_feature() {
        let features = named();
        let limits = DecodeLimits::default();
        let reader = Reader {
            features: &features,
            width: 3,
            limits: &limits,
        };
        let mut rows = vec![9.0];
        let record = br#"{"id": "p-1", "amount": 0, "merchant": {"geo": {"lat": 1.5}}, "ts": "2026-12-01T03:30:00Z", "x": [1]}"#;
        let id = reader.read(record, &mut rows, (0, 1)).unwrap();
        assert_eq!(id, Some(RecordId::Str("p-1".into())));
        assert_eq!(rows, [9.0, 0.0, 1.5, 3.5]);
        let without_id = br#"{"amount": 1, "merchant": {"geo": {"lat": 1}}, "ts": 0}"#;
        assert_eq!(reader.read(without_id, &mut rows, (0, 2)).unwrap(), None);
        assert_eq!(rows.len(), 7);
        for (record, reason, detail) in [
            (
                &br#"{"amount": 1, "merchant": {"geo": {"lat": "48.1"}}, "ts": 0}"#[..],
                "not_numeric",
                "/merchant/geo/lat is a string",
            ),
            (
                br#"{"amount": 1, "ts": 0}"#,
                "missing_feature",
                "/merchant/geo/lat is missing",
            ),
            (b"{", "not_json", ""),
        ] {
            let refusal = reader.read(record, &mut rows, (0, 3)).unwrap_err();
            assert_eq!(refusal.reason, reason);
            assert!(refusal.detail.starts_with(detail), "{refusal:?}");
        }
        assert_eq!(rows.len(), 7, "a refused record appends nothing");
        let small = DecodeLimits {
            max_bytes: 8,
            ..limits
        };
        let refusal = Reader {
            limits: &small,
            ..reader
        }
        .read(record, &mut rows, (0, 4))
        .unwrap_err();
        assert_eq!(refusal.reason, "oversized");
    }

    #[test]
    fn data_records_are_read_as_transactions_of_the_model_s_width() {
        let limits = DecodeLimits::default();
        let reader = Reader {
            features: &Features::Data,
            width: 2,
            limits: &limits,
        };
        let mut rows = Vec::new();
        let id = reader
            .read(br#"{"id": 4, "data": [[1.5, 2]]}"#, &mut rows, (0, 0))
            .unwrap();
        assert_eq!((id, rows), (Some(RecordId::Int(4)), vec![1.5, 2.0]));
        let refusal = reader
            .read(br#"{"id": 4, "data": [1, 2, 3]}"#, &mut Vec::new(), (0, 1))
            .unwrap_err();
        assert_eq!(refusal.reason, "feature_count");
        let refusal = reader
            .read(br#"{"data": [1, 2]}"#, &mut Vec::new(), (0, 1))
            .unwrap_err();
        assert_eq!(refusal.reason, "missing_id");
    }
}
