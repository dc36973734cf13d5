//! A key's history: what per-key items keep of a key's previous records ([`KeyState`]), and
//! its shape for one specification ([`StateLayout`]).
//!
//! Each field that per-key items read (with its transform) is a *source*: a `zscore` keeps
//! the source's exponentially weighted mean and variance, `delta` and `lag:K` its most recent
//! values. `count:WINDOW` keeps the key's recent record times; `since_last` the time of its
//! last record, which every key keeps anyway (for its time to live).

use std::collections::VecDeque;
use std::mem::size_of;

use crate::item::{PerKey, Transform};
use crate::path::FieldPath;
use crate::spec::FeatureSpec;

/// What a key's history holds under one specification; derived, never stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateLayout {
    /// The sources, in order of first use.
    pub(crate) sources: Vec<SourceLayout>,
    /// For each item, its source (items reading a field).
    pub(crate) item_source: Vec<Option<usize>>,
    /// Whether record times are kept (some `count:WINDOW`).
    pub(crate) keeps_times: bool,
    /// The longest window, in milliseconds: older times are dropped.
    pub(crate) longest_window_ms: i64,
    /// The most times kept.
    pub(crate) max_window_records: usize,
    /// The weight of a new value in a weighted mean: 1 − 2^(−1 / half-life).
    pub(crate) alpha: f64,
    /// Values of a source before its own moments replace the training ones.
    pub(crate) min_history: u32,
    /// How long a key outlives its last record, in milliseconds.
    pub(crate) ttl_ms: Option<i64>,
    /// Identifies the layout (and the key and time fields) in encoded states, so a state
    /// written under another specification is not read as this one's.
    pub(crate) fingerprint: u32,
}

/// One source: a field and its transform, read by per-key items.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceLayout {
    pub(crate) field: FieldPath,
    pub(crate) transform: Transform,
    /// The first item reading it (where its value is in a reading).
    pub(crate) item: usize,
    /// Whether a `zscore` reads it: the weighted mean and variance are kept.
    pub(crate) moments: bool,
    /// How many recent values are kept: the largest K of its `lag:K`, at least 1 with a
    /// `delta`.
    pub(crate) recent: usize,
}

impl StateLayout {
    pub(crate) fn new(spec: &FeatureSpec) -> StateLayout {
        let mut sources: Vec<SourceLayout> = Vec::new();
        let mut item_source = Vec::with_capacity(spec.features().len());
        let (mut keeps_times, mut longest_window_ms) = (false, 0);
        for (index, feature) in spec.features().iter().enumerate() {
            let source = match (feature.field(), feature.per_key()) {
                (Some(field), Some(per_key)) => {
                    let at = match sources
                        .iter()
                        .position(|s| s.field == *field && s.transform == feature.transform())
                    {
                        Some(at) => at,
                        None => {
                            sources.push(SourceLayout {
                                field: field.clone(),
                                transform: feature.transform(),
                                item: index,
                                moments: false,
                                recent: 0,
                            });
                            sources.len() - 1
                        }
                    };
                    let source = &mut sources[at];
                    match per_key {
                        PerKey::ZScore => source.moments = true,
                        PerKey::Delta => source.recent = source.recent.max(1),
                        PerKey::Lag(k) => source.recent = source.recent.max(usize::from(k)),
                        PerKey::Count(_) | PerKey::SinceLast => {}
                    }
                    Some(at)
                }
                (_, Some(PerKey::Count(window))) => {
                    keeps_times = true;
                    longest_window_ms = longest_window_ms.max(window.millis());
                    None
                }
                _ => None,
            };
            item_source.push(source);
        }
        let settings = spec.per_key();
        let mut layout = StateLayout {
            sources,
            item_source,
            keeps_times,
            longest_window_ms,
            max_window_records: settings.max_window_records() as usize,
            alpha: 1.0 - (-1.0 / settings.half_life()).exp2(),
            min_history: settings.min_history(),
            ttl_ms: settings.state_ttl().map(|ttl| ttl.millis()),
            fingerprint: 0,
        };
        layout.fingerprint = layout.fingerprint(
            settings.half_life(),
            settings.key_field(),
            settings.time_field(),
        );
        layout
    }

    /// FNV-1a (32 bits) of a canonical text of what a state's bytes mean: the sources and
    /// what each keeps, the times kept, the half-life, the key and time fields. The time to
    /// live and the minimum history are left out: they change how a state is used, not
    /// what it holds.
    fn fingerprint(
        &self,
        half_life: f64,
        key: Option<&FieldPath>,
        time: Option<&FieldPath>,
    ) -> u32 {
        let mut text = String::from("key-state-1");
        for source in &self.sources {
            text.push_str(&format!(
                "|source {} {} {} {}",
                source.field.pointer(),
                source.transform.name(),
                u8::from(source.moments),
                source.recent
            ));
        }
        text.push_str(&format!(
            "|times {} {} {}|half-life {:016x}|key {}|time {}",
            u8::from(self.keeps_times),
            self.longest_window_ms,
            self.max_window_records,
            half_life.to_bits(),
            key.map_or("-".into(), FieldPath::pointer),
            time.map_or("-".into(), FieldPath::pointer),
        ));
        text.bytes().fold(0x811c_9dc5, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        })
    }
}

/// One key's history, as per-key items need it: how many records it has, the input offset
/// and record time of the last one, each source's weighted moments and recent values, and
/// the recent record times for `count:WINDOW`. Small and bounded: the recent values are at
/// most the largest `lag:K`, the times at most `--max-window-records`.
///
/// Built empty for a specification ([`KeyState::new`]), advanced one record at a time
/// ([`NamedFeatures::step`](crate::NamedFeatures::step)), and kept in a changelog as bytes
/// ([`KeyState::encode`], [`KeyState::decode`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// The fingerprint of the layout it was built for.
    pub(crate) layout: u32,
    /// Records applied since the key's history began (0: none).
    pub(crate) records: u64,
    /// The input offset of the last record applied.
    pub(crate) offset: i64,
    /// The record time of the last record applied, epoch milliseconds.
    pub(crate) time_ms: i64,
    pub(crate) sources: Vec<SourceState>,
    /// Recent record times, in the order applied.
    pub(crate) times: VecDeque<i64>,
}

/// One source's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SourceState {
    /// Values folded into the moments (saturating; 0 when the source keeps none).
    pub(crate) seen: u32,
    /// The weighted mean.
    pub(crate) mean: f64,
    /// The weighted (population) variance.
    pub(crate) var: f64,
    /// The most recent values, the latest first.
    pub(crate) recent: VecDeque<f64>,
}

impl KeyState {
    /// An empty history for `layout`.
    pub(crate) fn empty(layout: &StateLayout) -> KeyState {
        KeyState {
            layout: layout.fingerprint,
            records: 0,
            offset: 0,
            time_ms: 0,
            sources: vec![SourceState::default(); layout.sources.len()],
            times: VecDeque::new(),
        }
    }

    /// Records applied since the key's history began (0 for a new key).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The input offset of the last record applied (`None` for a new key): a consumer
    /// restoring this state from a changelog skips the input records up to it.
    pub fn offset(&self) -> Option<i64> {
        (self.records > 0).then_some(self.offset)
    }

    /// The record time of the last record applied, epoch milliseconds (`None` for a new
    /// key): the key expires a time to live after it.
    pub fn time_ms(&self) -> Option<i64> {
        (self.records > 0).then_some(self.time_ms)
    }

    /// The memory the state takes, in bytes: itself and what it holds (the capacity of its
    /// lists, not only their length).
    pub fn memory_bytes(&self) -> usize {
        let recent: usize = self
            .sources
            .iter()
            .map(|source| source.recent.capacity() * size_of::<f64>())
            .sum();
        size_of::<KeyState>()
            + self.sources.capacity() * size_of::<SourceState>()
            + recent
            + self.times.capacity() * size_of::<i64>()
    }

    /// True when the key's last record is more than `ttl_ms` before `now_ms` (never for a
    /// new key, or without a time to live).
    pub(crate) fn is_expired(&self, ttl_ms: Option<i64>, now_ms: i64) -> bool {
        match (self.time_ms(), ttl_ms) {
            (Some(last), Some(ttl)) => now_ms.saturating_sub(last) > ttl,
            _ => false,
        }
    }
}

/// `value` as a finite number: NaN as 0, infinities as the largest finite numbers. Rows must
/// be finite for the forest, and a key's moments stay usable whatever its values were.
pub(crate) fn finite(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(f64::MIN, f64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureParams;

    fn layout(list: &str, params: impl FnOnce(FeatureParams) -> FeatureParams) -> StateLayout {
        StateLayout::new(&params(FeatureParams::new(list)).check().unwrap())
    }

    #[test]
    fn sources_are_shared_by_the_items_reading_them() {
        let layout = layout(
            "amount:log:zscore,amount:log:delta,amount:zscore,value:lag:3,value:lag:5,value:delta,count:60s,count:10m,since_last,amount:log",
            |p| p,
        );
        let sources: Vec<(&str, Transform, bool, usize)> = layout
            .sources
            .iter()
            .map(|s| (s.field.as_str(), s.transform, s.moments, s.recent))
            .collect();
        assert_eq!(
            sources,
            [
                ("amount", Transform::Log, true, 1),
                ("amount", Transform::Number, true, 0),
                ("value", Transform::Number, false, 5),
            ]
        );
        assert_eq!(
            layout.item_source,
            [
                Some(0),
                Some(0),
                Some(1),
                Some(2),
                Some(2),
                Some(2),
                None,
                None,
                None,
                None
            ]
        );
        assert!(layout.keeps_times);
        assert_eq!(layout.longest_window_ms, 600_000);
        assert!((layout.alpha - (1.0 - 0.5f64.powf(1.0 / 20.0))).abs() < 1e-15);
    }

    #[test]
    fn the_fingerprint_changes_with_what_a_state_holds_only() {
        let base = layout("amount:zscore,count:60s", |p| p).fingerprint;
        assert_eq!(base, layout("amount:zscore,count:1m", |p| p).fingerprint);
        assert_eq!(
            base,
            layout("amount:zscore,count:60s", |p| p
                .min_history(9)
                .state_ttl(None))
            .fingerprint,
            "how a state is used is not what it holds"
        );
        for other in [
            layout("amount:log:zscore,count:60s", |p| p),
            layout("amount:zscore,count:2m", |p| p),
            layout("amount:zscore,count:60s,amount:delta", |p| p),
            layout("amount:zscore,count:60s", |p| p.half_life(10.0)),
            layout("amount:zscore,count:60s", |p| p.max_window_records(10)),
            layout("amount:zscore,count:60s", |p| {
                p.key_field(Some("card".into()))
            }),
            layout("amount:zscore,count:60s", |p| {
                p.time_field(Some("ts".into()))
            }),
        ] {
            assert_ne!(other.fingerprint, base);
        }
    }

    #[test]
    fn finite_keeps_rows_usable() {
        assert_eq!(finite(f64::NAN), 0.0);
        assert_eq!(finite(f64::INFINITY), f64::MAX);
        assert_eq!(finite(f64::NEG_INFINITY), f64::MIN);
        assert_eq!(finite(-2.5), -2.5);
    }
}
