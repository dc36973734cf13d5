//! A key's state as bytes, for a compacted changelog topic: compact, versioned, and read back
//! with checks, so that bad bytes are an error, never a panic or a wrong history.
//!
//! Format 1, in order (varints are LEB128, signed ones zigzag-encoded first):
//!
//! ```text
//! u8       format (1)
//! u32 LE   the layout's fingerprint (what the bytes mean: sources, windows, half-life, key
//!          and time fields); a state written under other features is refused
//! varint   records applied
//! svarint  input offset of the last record
//! svarint  record time of the last record, epoch milliseconds
//! per source, in the layout's order:
//!   varint   values folded into the moments (0 when the source keeps none)
//!   [f64 LE mean, f64 LE variance]   when that count is above 0
//!   varint   recent values kept, then each as f64 LE, the latest first
//! varint   times kept (0 unless the layout keeps times), then each as svarint (last record
//!          time − time), oldest first
//! ```
//!
//! Floats are stored bit for bit, so a state restored from its bytes gives the same rows as
//! the state that was written.

use std::collections::VecDeque;

use crate::extract::NamedFeatures;
use crate::state::{KeyState, SourceState};

/// The format written.
pub const STATE_FORMAT: u8 = 1;

/// Why bytes are not a key's state for these features.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// No bytes.
    #[error("the state is empty")]
    Empty,
    /// A format this build does not read.
    #[error("the state has format {0}; this build reads format {STATE_FORMAT}")]
    Format(u8),
    /// Written for other per-key features (or another key or time field): the history does
    /// not mean the same; start the key afresh.
    #[error(
        "the state was written for other per-key features (layout {found:08x}, these \
         features {expected:08x})"
    )]
    OtherFeatures {
        /// The fingerprint in the bytes.
        found: u32,
        /// These features' fingerprint.
        expected: u32,
    },
    /// The bytes end before the state does.
    #[error("the state ends early, in {0}")]
    Truncated(&'static str),
    /// A value that no state holds.
    #[error("the state is corrupt: {0}")]
    Corrupt(&'static str),
}

impl KeyState {
    /// The state as bytes (format [`STATE_FORMAT`]), for a changelog.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_into(&mut out);
        out
    }

    /// Appends the state's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(STATE_FORMAT);
        out.extend_from_slice(&self.layout.to_le_bytes());
        put_varint(out, self.records);
        put_svarint(out, self.offset);
        put_svarint(out, self.time_ms);
        for source in &self.sources {
            put_varint(out, u64::from(source.seen));
            if source.seen > 0 {
                out.extend_from_slice(&source.mean.to_le_bytes());
                out.extend_from_slice(&source.var.to_le_bytes());
            }
            put_varint(out, source.recent.len() as u64);
            for value in &source.recent {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        put_varint(out, self.times.len() as u64);
        for &time in &self.times {
            put_svarint(out, self.time_ms.wrapping_sub(time));
        }
    }

    /// Reads a state that [`encode`](Self::encode) wrote for `features` (or for features of
    /// the same layout), checking every part.
    pub fn decode(features: &NamedFeatures, bytes: &[u8]) -> Result<KeyState, StateError> {
        let layout = features.layout();
        let mut input = Input(bytes);
        let format = input.byte("the format").map_err(|_| StateError::Empty)?;
        if format != STATE_FORMAT {
            return Err(StateError::Format(format));
        }
        let found = u32::from_le_bytes(input.array("the layout")?);
        if found != layout.fingerprint {
            return Err(StateError::OtherFeatures {
                found,
                expected: layout.fingerprint,
            });
        }
        let records = input.varint("the record count")?;
        let offset = input.svarint("the offset")?;
        let time_ms = input.svarint("the time")?;
        let mut sources = Vec::with_capacity(layout.sources.len());
        for source in &layout.sources {
            let seen = u32::try_from(input.varint("a source's count")?)
                .map_err(|_| StateError::Corrupt("a source's count is beyond 32 bits"))?;
            let (mean, var) = match seen {
                0 => (0.0, 0.0),
                _ if !source.moments => {
                    return Err(StateError::Corrupt("moments for a source that keeps none"))
                }
                _ => (input.float("a mean")?, input.float("a variance")?),
            };
            if !(mean.is_finite() && var.is_finite() && var >= 0.0) {
                return Err(StateError::Corrupt(
                    "a mean or variance is not finite and ≥ 0",
                ));
            }
            let kept = input.varint("a source's recent values")?;
            if kept > source.recent as u64 {
                return Err(StateError::Corrupt(
                    "more recent values than the layout keeps",
                ));
            }
            let mut recent = VecDeque::with_capacity(kept as usize);
            for _ in 0..kept {
                let value = input.float("a recent value")?;
                if !value.is_finite() {
                    return Err(StateError::Corrupt("a recent value is not finite"));
                }
                recent.push_back(value);
            }
            sources.push(SourceState {
                seen,
                mean,
                var,
                recent,
            });
        }
        let kept = input.varint("the times")?;
        let most = if layout.keeps_times {
            layout.max_window_records as u64
        } else {
            0
        };
        if kept > most {
            return Err(StateError::Corrupt("more times than the layout keeps"));
        }
        let mut times = VecDeque::with_capacity(kept as usize);
        for _ in 0..kept {
            let before = input.svarint("a time")?;
            times.push_back(time_ms.wrapping_sub(before));
        }
        if !input.0.is_empty() {
            return Err(StateError::Corrupt("bytes after the end"));
        }
        if records == 0
            && (!times.is_empty() || sources.iter().any(|s| *s != SourceState::default()))
        {
            return Err(StateError::Corrupt("history for a key without records"));
        }
        Ok(KeyState {
            layout: found,
            records,
            offset,
            time_ms,
            sources,
            times,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_svarint(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The bytes still to read.
struct Input<'b>(&'b [u8]);

impl Input<'_> {
    fn byte(&mut self, what: &'static str) -> Result<u8, StateError> {
        let (&byte, rest) = self.0.split_first().ok_or(StateError::Truncated(what))?;
        self.0 = rest;
        Ok(byte)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], StateError> {
        let (bytes, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(StateError::Truncated(what))?;
        self.0 = rest;
        Ok(*bytes)
    }

    fn float(&mut self, what: &'static str) -> Result<f64, StateError> {
        self.array(what).map(f64::from_le_bytes)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, StateError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(StateError::Corrupt("a number beyond 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                // One encoding per number: no trailing zero groups.
                if byte == 0 && shift > 0 {
                    return Err(StateError::Corrupt("a number not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(StateError::Corrupt("a number beyond 64 bits"))
    }

    fn svarint(&mut self, what: &'static str) -> Result<i64, StateError> {
        let value = self.varint(what)?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Reading;
    use crate::spec::FeatureParams;
    use serde_json::{json, Value};

    fn features(list: &str) -> NamedFeatures {
        let training: Vec<Value> = (0..60)
            .map(|i| json!({"k": i % 3, "x": (i * 7 % 11) as f64, "t": 1_000 * i}))
            .collect();
        FeatureParams::new(list)
            .key_field(Some("k".into()))
            .time_field(Some("t".into()))
            .check()
            .unwrap()
            .fit(&training)
            .unwrap()
            .features
    }

    /// A state after `n` records of one key, x = 0.5, 1.5, …, one every 7 s.
    fn state(features: &NamedFeatures, n: usize) -> KeyState {
        let mut state = KeyState::new(features);
        let mut reading = Reading::default();
        for i in 0..n {
            let record =
                json!({"k": 1, "x": i as f64 + 0.5, "t": 1_796_094_900_000i64 + 7_000 * i as i64});
            features.reading_of(&record, &mut reading).unwrap();
            let time = features.record_time(&reading, None).unwrap();
            features.step(
                &mut state,
                &reading,
                time,
                1_000_000 + i as i64,
                &mut Vec::new(),
            );
        }
        state
    }

    const LIST: &str = "x:zscore,x:log:delta,x:lag:3,count:30s,since_last";

    #[test]
    fn states_round_trip_bit_for_bit() {
        for list in [LIST, "x:zscore", "count:1m", "since_last"] {
            let features = features(list);
            for n in [0, 1, 2, 5, 40] {
                let state = state(&features, n);
                let bytes = state.encode();
                let read = KeyState::decode(&features, &bytes).unwrap();
                assert_eq!(read, state, "{list} after {n}");
                assert_eq!(read.encode(), bytes);
            }
        }
        let features = features(LIST);
        let state = state(&features, 40);
        assert_eq!(state.records(), 40);
        assert_eq!(state.offset(), Some(1_000_039));
        assert_eq!(state.time_ms(), Some(1_796_094_900_000 + 7_000 * 39));
        assert_eq!(KeyState::new(&features).offset(), None);
        // 2 sources (moments and recent values), 5 times within 30 s: small.
        assert!(state.encode().len() < 90, "{} bytes", state.encode().len());
    }

    #[test]
    fn a_restored_state_gives_the_same_rows_as_the_one_kept() {
        let features = features(LIST);
        let mut kept = state(&features, 12);
        let mut restored = KeyState::decode(&features, &kept.encode()).unwrap();
        let mut reading = Reading::default();
        for i in 0..5 {
            let record =
                json!({"k": 1, "x": 3.25 * i as f64, "t": 1_796_095_000_000i64 + 3_000 * i});
            features.reading_of(&record, &mut reading).unwrap();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            features.step(
                &mut kept,
                &reading,
                1_796_095_000_000 + 3_000 * i,
                i,
                &mut a,
            );
            features.step(
                &mut restored,
                &reading,
                1_796_095_000_000 + 3_000 * i,
                i,
                &mut b,
            );
            let bits = |row: &[f64]| row.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b));
        }
    }

    #[test]
    fn bad_bytes_are_refused_never_a_panic() {
        let features = features(LIST);
        let bytes = state(&features, 9).encode();
        assert_eq!(KeyState::decode(&features, &[]), Err(StateError::Empty));
        for cut in 1..bytes.len() {
            assert!(
                KeyState::decode(&features, &bytes[..cut]).is_err(),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            KeyState::decode(&features, &longer),
            Err(StateError::Corrupt("bytes after the end"))
        );
        let mut format = bytes.clone();
        format[0] = 2;
        assert_eq!(
            KeyState::decode(&features, &format),
            Err(StateError::Format(2))
        );
        let other = features_other();
        assert!(matches!(
            KeyState::decode(&other, &bytes),
            Err(StateError::OtherFeatures { .. })
        ));
        // Every single-bit flip: an error or a state, never a panic; a state that reads
        // encodes back to the same bytes.
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                if let Ok(state) = KeyState::decode(&features, &flipped) {
                    assert_eq!(state.encode(), flipped, "byte {at} bit {bit}");
                }
            }
        }
        // Pseudo-random bytes after a valid header.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut noise = bytes[..5].to_vec();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                noise.push(seed as u8);
            }
            let _ = KeyState::decode(&features, &noise);
        }
    }

    fn features_other() -> NamedFeatures {
        features("x:zscore")
    }

    #[test]
    fn impossible_values_are_refused() {
        let features = features("x:zscore,x:lag:2,count:30s");
        let good = state(&features, 5);
        let mut nan = good.clone();
        nan.sources[0].mean = f64::NAN;
        assert!(matches!(
            KeyState::decode(&features, &nan.encode()),
            Err(StateError::Corrupt(_))
        ));
        let mut negative = good.clone();
        negative.sources[0].var = -1.0;
        assert!(KeyState::decode(&features, &negative.encode()).is_err());
        let mut too_many = good.clone();
        too_many.sources[0].recent.extend([1.0, 2.0, 3.0]);
        assert_eq!(
            KeyState::decode(&features, &too_many.encode()),
            Err(StateError::Corrupt(
                "more recent values than the layout keeps"
            ))
        );
        let mut no_records = good.clone();
        no_records.records = 0;
        assert_eq!(
            KeyState::decode(&features, &no_records.encode()),
            Err(StateError::Corrupt("history for a key without records"))
        );
        let lag_only = self::features("x:lag:2");
        let mut times = state(&lag_only, 3);
        times.times.push_back(5);
        assert_eq!(
            KeyState::decode(&lag_only, &times.encode()),
            Err(StateError::Corrupt("more times than the layout keeps"))
        );
        let mut varint = good.encode();
        // The record count as an 11-byte varint.
        varint.splice(5..6, [0xff; 10].into_iter().chain([0x01]));
        assert!(KeyState::decode(&features, &varint).is_err());
    }
}
