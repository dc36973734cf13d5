//! The top reason an anomaly carries: the first entry of its `explanation` array
//! (`{"feature", "value", "direction", "share"}`), read tolerantly (anomalies written before
//! detectors explained them have none), and shown as `amount:log high (58%)`.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// The feature that isolated an anomaly most, as the anomaly says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TopReason {
    /// The feature's name.
    pub feature: String,
    /// The value scored.
    #[serde(default)]
    pub value: Option<f64>,
    /// `high` or `low`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Its share of the isolation, 0..=1.
    #[serde(default)]
    pub share: Option<f64>,
}

impl TopReason {
    /// The first entry of `record`'s `explanation`, when it has a readable one.
    pub fn of(record: &Value) -> Option<TopReason> {
        let first = record.get("explanation")?.as_array()?.first()?;
        TopReason::deserialize(first).ok()
    }

    /// The same from the record's bytes.
    pub fn of_bytes(bytes: &[u8]) -> Option<TopReason> {
        #[derive(Deserialize)]
        struct Explained {
            #[serde(default)]
            explanation: Option<Vec<Value>>,
        }
        let first = serde_json::from_slice::<Explained>(bytes)
            .ok()?
            .explanation?
            .into_iter()
            .next()?;
        TopReason::deserialize(first).ok()
    }
}

impl fmt::Display for TopReason {
    /// `amount:log high (58%)`; what the entry lacks is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.feature)?;
        if let Some(direction) = &self.direction {
            write!(f, " {direction}")?;
        }
        if let Some(share) = self.share {
            write!(f, " ({:.0}%)", share * 100.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_is_the_reason() {
        let record = br#"{"id": 1, "explanation": [
            {"feature": "amount:log", "value": 6.8, "direction": "high", "share": 0.584},
            {"feature": "ts:hour", "value": 3.2, "direction": "low", "share": 0.3}]}"#;
        let reason = TopReason::of_bytes(record).unwrap();
        assert_eq!(reason.to_string(), "amount:log high (58%)");
        assert_eq!(reason.value, Some(6.8));
        let value: Value = serde_json::from_slice(record).unwrap();
        assert_eq!(TopReason::of(&value), Some(reason));
    }

    #[test]
    fn no_explanation_no_reason_and_partial_entries_show_what_they_have() {
        for record in [
            &br#"{"id": 1}"#[..],
            br#"{"explanation": []}"#,
            br#"{"explanation": "amount"}"#,
            br#"{"explanation": [{"share": 0.5}]}"#,
            b"not json",
        ] {
            assert_eq!(TopReason::of_bytes(record), None);
        }
        let partial = TopReason::of_bytes(br#"{"explanation": [{"feature": "x"}]}"#).unwrap();
        assert_eq!(partial.to_string(), "x");
    }
}
