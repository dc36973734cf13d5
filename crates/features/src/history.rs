//! The per-key step: one record's row from its [`Reading`] and its key's [`KeyState`], and the
//! record added to the state. Pure and deterministic: the same states and records give the
//! same rows, bit for bit, offline and online.
//!
//! What a key without history gets (its first record, or its first after its time to live):
//!
//! - `zscore`: the training mean and standard deviation stand in for the key's own until it
//!   has `min_history` values, so a new key is measured against the population.
//! - `delta`: the median training delta (about 0: "no change"), and `since_last` the median
//!   training gap, both values that a record with history commonly has, so that the missing
//!   history neither isolates a record nor hides what else is unusual about it.
//! - `lag:K`: the current value in every slot the key has no value for yet (the series held
//!   constant backwards), so a new key's row sits on its own level, not the population's.
//! - `count:WINDOW`: 0, which is simply true.
//!
//! A field missing under [`Missing::Impute`](crate::Missing::Impute): `zscore` gives the
//! median training z-score, `delta` the median delta, `lag:K` the key's previous values as
//! usual (the median where there are none); the field's history is left as it was, while the
//! record still counts for `count:WINDOW`, `since_last` and the time to live.

use crate::extract::{ExtractError, Learned, NamedFeatures};
use crate::item::PerKey;
use crate::reading::Reading;
use crate::state::{finite, KeyState, SourceState, StateLayout};

/// The smallest standard deviation a `zscore` divides by, as a share of the field's training
/// standard deviation: a key whose values never varied gives a large but finite z-score for a
/// new value.
const STD_FLOOR: f64 = 1e-3;

impl KeyState {
    /// An empty history for `features` (what a key without history has).
    pub fn new(features: &NamedFeatures) -> KeyState {
        KeyState::empty(features.layout())
    }
}

impl NamedFeatures {
    /// Appends the row of a record to `row` (one value per column) from its `reading` and its
    /// key's history `state`, then adds the record to `state`: `time_ms` is its record time
    /// ([`record_time`](Self::record_time)), `offset` its input offset (kept in the state
    /// for a changelog). Per-key items see the key's previous records only.
    ///
    /// A `state` older than the time to live at `time_ms`, or built for other features
    /// (another layout), is started afresh first, so rows never depend on when expired keys
    /// were swept. Deterministic, no I/O, never fails: every check was made by the reading.
    pub fn step(
        &self,
        state: &mut KeyState,
        reading: &Reading,
        time_ms: i64,
        offset: i64,
        row: &mut Vec<f64>,
    ) {
        self.step_observed(state, reading, time_ms, offset, row, None);
    }

    /// [`step`](Self::step), noting in `stand_ins` (one per item) which per-key items had no
    /// history or no value and took their stand-in: learning leaves those out of medians.
    pub(crate) fn step_observed(
        &self,
        state: &mut KeyState,
        reading: &Reading,
        time_ms: i64,
        offset: i64,
        row: &mut Vec<f64>,
        mut stand_ins: Option<&mut Vec<bool>>,
    ) {
        let layout = self.layout();
        if state.layout != layout.fingerprint
            || state.sources.len() != layout.sources.len()
            || state.is_expired(layout.ttl_ms, time_ms)
        {
            *state = KeyState::empty(layout);
        }
        if let Some(stand_ins) = stand_ins.as_deref_mut() {
            stand_ins.clear();
        }
        let items = self.features().iter().zip(self.learned());
        for (index, (feature, learned)) in items.enumerate() {
            let value = reading.values.get(index).copied().unwrap_or(f64::NAN);
            let source = layout.item_source[index].map(|at| &state.sources[at]);
            let stand_in = match (feature.per_key(), source) {
                (None, _) => {
                    row.push(value);
                    false
                }
                (Some(per_key), source) => {
                    per_key_value(per_key, layout, learned, state, source, value, time_ms, row)
                }
            };
            if let Some(stand_ins) = stand_ins.as_deref_mut() {
                stand_ins.push(stand_in);
            }
        }
        add(layout, state, reading, time_ms, offset);
    }

    /// A record's time: the time field's, else the Kafka timestamp. A record without one is
    /// refused when rows depend on time ([`FeatureSpec::needs_time`](crate::FeatureSpec::needs_time));
    /// otherwise its time does not matter and is 0.
    pub fn record_time(
        &self,
        reading: &Reading,
        kafka_timestamp_ms: Option<i64>,
    ) -> Result<i64, ExtractError> {
        match (reading.time_ms(), kafka_timestamp_ms) {
            (Some(time), _) => Ok(time),
            (None, Some(time)) => Ok(time),
            (None, None) if !self.spec().needs_time() => Ok(0),
            (None, None) => Err(ExtractError::MissingTime {
                field: self.spec().per_key().time_field().map(ToString::to_string),
            }),
        }
    }

    /// A record's key: the key field's, else the Kafka key.
    pub fn record_key<'r>(
        &self,
        reading: &'r Reading,
        kafka_key: Option<&'r [u8]>,
    ) -> Result<&'r [u8], ExtractError> {
        reading
            .key()
            .or(kafka_key)
            .ok_or_else(|| ExtractError::MissingKey {
                field: self.spec().per_key().key_field().map(ToString::to_string),
            })
    }
}

/// One per-key item's columns, appended to `row`; true when it took its stand-in.
#[allow(clippy::too_many_arguments)]
fn per_key_value(
    per_key: PerKey,
    layout: &StateLayout,
    learned: &Learned,
    state: &KeyState,
    source: Option<&SourceState>,
    x: f64,
    time_ms: i64,
    row: &mut Vec<f64>,
) -> bool {
    let median = match *learned {
        Learned::Median(median) | Learned::Moments { median, .. } => median,
        _ => 0.0,
    };
    let present = !x.is_nan();
    let (value, stand_in) = match (per_key, source) {
        (PerKey::ZScore, Some(source)) if present => {
            let (mean, std) = match *learned {
                Learned::Moments { mean, std, .. } => (mean, if std > 0.0 { std } else { 1.0 }),
                _ => (0.0, 1.0),
            };
            let z = if source.seen >= layout.min_history {
                (x - source.mean) / source.var.sqrt().max(std * STD_FLOOR)
            } else {
                (x - mean) / std
            };
            (z, false)
        }
        (PerKey::Delta, Some(source)) if present => match source.recent.front() {
            Some(previous) => (x - previous, false),
            None => (median, true),
        },
        (PerKey::Lag(k), Some(source)) => {
            for slot in 0..usize::from(k) {
                let value = match source.recent.get(slot) {
                    Some(&value) => value,
                    None if present => x,
                    None => median,
                };
                row.push(finite(value));
            }
            return false;
        }
        (PerKey::Count(window), _) => {
            let since = time_ms.saturating_sub(window.millis());
            // Times after this record's (a clock that went back) are not before it.
            let within = |time: i64| since < time && time <= time_ms;
            let count = state.times.iter().filter(|&&time| within(time)).count();
            (count as f64, false)
        }
        (PerKey::SinceLast, _) => match state.time_ms() {
            Some(last) => (time_ms.saturating_sub(last).max(0) as f64 / 1000.0, false),
            None => (median, true),
        },
        // A missing field (imputed).
        _ => (median, true),
    };
    row.push(finite(value));
    stand_in
}

/// Adds a record to its key's state.
fn add(layout: &StateLayout, state: &mut KeyState, reading: &Reading, time_ms: i64, offset: i64) {
    for (source, layout_source) in state.sources.iter_mut().zip(&layout.sources) {
        let x = reading
            .values
            .get(layout_source.item)
            .copied()
            .unwrap_or(f64::NAN);
        if x.is_nan() {
            continue;
        }
        if layout_source.moments {
            source.seen = source.seen.saturating_add(1);
            // The plain running mean and variance while they weigh more than the exponential
            // ones (their first ~half-life values), so a young key's moments are not biased
            // towards its first value.
            let alpha = layout.alpha.max(1.0 / f64::from(source.seen));
            let difference = x - source.mean;
            let increment = alpha * difference;
            source.mean = finite(source.mean + increment);
            source.var = finite((1.0 - alpha) * (source.var + difference * increment)).max(0.0);
        }
        if layout_source.recent > 0 {
            source.recent.push_front(x);
            source.recent.truncate(layout_source.recent);
        }
    }
    if layout.keeps_times {
        state.times.push_back(time_ms);
        let oldest_useful = time_ms.saturating_sub(layout.longest_window_ms);
        while state
            .times
            .front()
            .is_some_and(|&time| time <= oldest_useful)
            || state.times.len() > layout.max_window_records
        {
            state.times.pop_front();
        }
    }
    state.records = state.records.saturating_add(1);
    state.offset = offset;
    state.time_ms = time_ms;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Learned;
    use crate::span::Span;
    use crate::spec::{FeatureParams, Missing};
    use serde_json::{json, Value};

    /// Training records: keys `a` and `b`, one record a minute, x = 10, 12, 14, … for `a`
    /// and 100, 90, 80, … for `b`.
    fn training() -> Vec<Value> {
        (0..40)
            .map(|i| {
                let (key, x) = if i % 2 == 0 {
                    ("a", 10.0 + i as f64)
                } else {
                    ("b", 100.0 - 5.0 * i as f64)
                };
                json!({"k": key, "x": x, "t": 60_000 * i})
            })
            .collect()
    }

    fn features(list: &str, change: impl FnOnce(FeatureParams) -> FeatureParams) -> NamedFeatures {
        change(
            FeatureParams::new(list)
                .key_field(Some("k".into()))
                .time_field(Some("t".into())),
        )
        .check()
        .unwrap()
        .fit(&training())
        .unwrap()
        .features
    }

    /// Rows of `records` (JSON values) for one key's state, in order.
    fn rows(features: &NamedFeatures, records: &[Value]) -> Vec<Vec<f64>> {
        let mut state = KeyState::new(features);
        let mut reading = Reading::default();
        records
            .iter()
            .enumerate()
            .map(|(offset, record)| {
                features.reading_of(record, &mut reading).unwrap();
                let time = features.record_time(&reading, None).unwrap();
                let mut row = Vec::new();
                features.step(&mut state, &reading, time, offset as i64, &mut row);
                row
            })
            .collect()
    }

    fn record(x: impl Into<Value>, t: i64) -> Value {
        json!({"k": "c", "x": x.into(), "t": t})
    }

    fn learned_median(features: &NamedFeatures, item: usize) -> f64 {
        match features.learned()[item] {
            Learned::Median(median) | Learned::Moments { median, .. } => median,
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zscore_uses_the_training_moments_until_the_key_has_history() {
        let features = features("x:zscore", |p| p.min_history(3).half_life(2.0));
        let Learned::Moments { mean, std, .. } = features.learned()[0] else {
            panic!()
        };
        let xs = [1.0, 3.0, 5.0, 7.0, 100.0];
        let records: Vec<Value> = xs.iter().map(|&x| record(x, 0)).collect();
        let rows = rows(&features, &records);
        for (row, x) in rows.iter().zip(xs).take(3) {
            assert_eq!(
                row[0],
                (x - mean) / std,
                "before 3 values: the training moments"
            );
        }
        // After 1, 3, 5 (the plain running moments while 1/n ≥ alpha = 1 − 2^(−1/2) ≈ 0.29):
        // mean 3, population variance 8/3.
        let z = rows[3][0];
        assert!(
            (z - (7.0 - 3.0) / (8.0f64 / 3.0).sqrt()).abs() < 1e-12,
            "{z}"
        );
        // Then 7 folds in with weight 0.29: the key's own moments, and 100 stands out.
        assert!(rows[4][0] > 20.0, "{}", rows[4][0]);
    }

    #[test]
    fn a_key_that_never_varied_gives_a_large_finite_zscore() {
        let features = features("x:zscore", |p| p.min_history(2));
        let Learned::Moments { std, .. } = features.learned()[0] else {
            panic!()
        };
        let records: Vec<Value> = [5.0, 5.0, 5.0, 5.0, 6.0]
            .iter()
            .map(|&x| record(x, 0))
            .collect();
        let rows = rows(&features, &records);
        assert_eq!(rows[3][0], 0.0, "the same value again");
        assert_eq!(rows[4][0], 1.0 / (std * STD_FLOOR));
        let huge: Vec<Value> = [-1e308, 1e308, 1e308, -1e308]
            .iter()
            .map(|&x| record(x, 0))
            .collect();
        for row in super::tests::rows(&features, &huge) {
            assert!(row[0].is_finite(), "{row:?}");
        }
    }

    #[test]
    fn delta_is_the_change_and_a_first_record_gets_the_median_delta() {
        let features = features("x:delta", |p| p);
        let median = learned_median(&features, 0);
        // Training deltas: +2 for `a`, −10 for `b`, 19 each: the median is their middle.
        assert_eq!(median, -4.0);
        let records = [record(7.5, 0), record(10.0, 1), record(4.0, 2)];
        assert_eq!(rows(&features, &records), [[median], [2.5], [-6.0]]);
    }

    #[test]
    fn lag_gives_previous_values_latest_first_and_the_current_one_before_the_first() {
        let features = features("x:lag:3", |p| p);
        let records = [
            record(1.0, 0),
            record(2.0, 1),
            record(3.0, 2),
            record(4.0, 3),
            record(5.0, 4),
        ];
        assert_eq!(
            rows(&features, &records),
            [
                [1.0, 1.0, 1.0],
                [1.0, 2.0, 2.0],
                [2.0, 1.0, 3.0],
                [3.0, 2.0, 1.0],
                [4.0, 3.0, 2.0],
            ]
        );
    }

    #[test]
    fn count_holds_the_keys_earlier_records_within_the_window() {
        let features = features("count:60s,count:10s", |p| p.max_window_records(3));
        let times = [
            0, 5_000, 9_000, 30_000, 61_000, 62_000, 63_000, 64_000, 200_000,
        ];
        let records: Vec<Value> = times.iter().map(|&t| record(1, t)).collect();
        let counts: Vec<Vec<f64>> = rows(&features, &records);
        assert_eq!(
            counts,
            [
                [0.0, 0.0],
                [1.0, 1.0],
                [2.0, 2.0],
                [3.0, 0.0],
                // 0 is out of the minute, and was dropped anyway: at most 3 times are kept.
                [3.0, 0.0],
                [3.0, 1.0],
                [3.0, 2.0],
                [3.0, 3.0],
                [0.0, 0.0],
            ]
        );
    }

    #[test]
    fn since_last_is_seconds_and_a_first_record_gets_the_median_gap() {
        let features = features("since_last", |p| p);
        assert_eq!(
            learned_median(&features, 0),
            120.0,
            "training: every 2 minutes per key"
        );
        let records = [record(1, 1_000), record(1, 91_500), record(1, 31_500)];
        assert_eq!(
            rows(&features, &records),
            [[120.0], [90.5], [0.0]],
            "time going back: 0"
        );
    }

    #[test]
    fn a_key_past_its_time_to_live_starts_afresh() {
        let ttl = Span::parse("1h").unwrap();
        let expiring = features("x:delta,since_last,count:2h", |p| p.state_ttl(Some(ttl)));
        let (delta, gap) = (learned_median(&expiring, 0), learned_median(&expiring, 1));
        let hour = 3_600_000;
        let records = [record(1.0, 0), record(2.0, hour), record(4.0, 2 * hour + 1)];
        assert_eq!(
            rows(&expiring, &records),
            [[delta, gap, 0.0], [1.0, 3600.0, 1.0], [delta, gap, 0.0]],
            "exactly the time to live is still alive; a millisecond more is not"
        );
        let forever = features("x:delta", |p| p.state_ttl(None));
        let far = [record(1.0, 0), record(2.0, 1_000 * hour)];
        assert_eq!(rows(&forever, &far)[1], [1.0]);
    }

    #[test]
    fn an_imputed_field_leaves_its_history_alone_and_the_record_still_counts() {
        let features = features("x:zscore,x:delta,x:lag:2,count:1h,since_last", |p| {
            p.missing(Missing::Impute)
        });
        let z_median = learned_median(&features, 0);
        let delta_median = learned_median(&features, 1);
        let x_median = learned_median(&features, 2);
        let gap = learned_median(&features, 4);
        let missing = |t: i64| json!({"k": "c", "t": t});
        let records = [
            missing(2_000),
            record(5.0, 3_000),
            missing(4_000),
            record(9.0, 5_000),
        ];
        let rows = rows(&features, &records);
        assert_eq!(
            rows[0],
            [z_median, delta_median, x_median, x_median, 0.0, gap]
        );
        assert_eq!(rows[1][1..], [delta_median, 5.0, 5.0, 1.0, 1.0]);
        assert_eq!(rows[2][1..], [delta_median, 5.0, x_median, 2.0, 1.0]);
        // The missing value is not history: the delta is from 5, and before 5 there is none.
        assert_eq!(rows[3][1..], [4.0, 5.0, 9.0, 3.0, 1.0]);
    }

    #[test]
    fn a_state_built_for_other_features_starts_afresh() {
        let zscore = features("x:zscore,since_last", |p| p);
        let other = features("x:delta,since_last", |p| p);
        let mut reading = Reading::default();
        let mut state = KeyState::new(&other);
        let mut row = Vec::new();
        other.reading_of(&record(3.0, 0), &mut reading).unwrap();
        other.step(&mut state, &reading, 0, 0, &mut row);
        zscore.reading_of(&record(3.0, 0), &mut reading).unwrap();
        row.clear();
        zscore.step(&mut state, &reading, 60_000, 1, &mut row);
        assert_eq!(row[1], learned_median(&zscore, 1), "no history kept");
        assert_eq!(state, {
            let mut fresh = KeyState::new(&zscore);
            zscore.step(&mut fresh, &reading, 60_000, 1, &mut Vec::new());
            fresh
        });
    }

    #[test]
    fn the_same_records_give_the_same_rows_bit_for_bit() {
        let features = features("x:log:zscore,x:delta,x:lag:2,count:90s,since_last,x", |p| p);
        let records: Vec<Value> = (0..300)
            .map(|i| json!({"k": (["a", "b", "c"][i % 3]), "x": (i * 37 % 101) as f64 / 7.0, "t": i as i64 * 20_000}))
            .collect();
        let run = || {
            let mut store = crate::StateStore::new(&features);
            let mut rows = Vec::new();
            for (offset, record) in records.iter().enumerate() {
                let meta = crate::RecordMeta::at(offset as i64);
                store
                    .read(&features, record.to_string().as_bytes(), meta, &mut rows)
                    .unwrap();
            }
            rows.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert_eq!(run().len(), 300 * 7);
    }
}
