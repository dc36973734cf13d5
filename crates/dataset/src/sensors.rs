//! The sensors scenario: many sensors, each reading a noisy periodic series at its own level,
//! with labelled faults, seeded so that every record is known in advance.
//!
//! Each record is `{"id": 17, "sensor": "s-12", "value": 41.731, "ts": "2026-11-02T00:01:00Z",
//! "label": 0}`, with `"fault": "<kind>"` added on the readings of a fault (label 1). Every
//! sensor reads once per interval (default a minute), each at its own second of it, so the
//! records come in time order, the sensors interleaved.
//!
//! A sensor ([`Sensor`]) has a level (log-uniform from 5 to 500 across sensors: one sensor's
//! normal is another's fault), a noise (1% to 3% of its level), a cycle (a sine of 2 to 5
//! times the noise, over 30 to 120 readings) and a phase. A reading is its level, plus the
//! cycle, plus Gaussian noise, to three decimals.
//!
//! Faults ([`FaultKind`]) start on a reading with a small probability (default 0.2%) and are
//! sized against the sensor's own spread s (the standard deviation of its cycle and noise),
//! so they stay within the population's values: a spike (one reading 5 to 9 s away), a level
//! shift (5 to 15 readings 3 to 5 s away), a stuck value (8 to 20 readings repeating the one
//! before them exactly) and a drift (10 to 25 readings moving away linearly to 4 to 8 s). Every
//! reading of a fault is labelled.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// One reading, serialising to the record's JSON (fields in this order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorReading {
    /// Counts up from the first id.
    pub id: i64,
    /// The sensor, `s-<n>`.
    pub sensor: String,
    /// The value read, three decimals.
    pub value: f64,
    /// When, RFC 3339 UTC to the second.
    pub ts: String,
    /// 1 for a reading of a fault.
    pub label: u8,
    /// The fault's kind, on faults only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
}

impl SensorReading {
    /// The record's JSON text.
    pub fn to_json(&self) -> String {
        // Strings, finite numbers and small integers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A fault's kind; serialised as its [`name`](Self::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// One reading far from the sensor's series.
    Spike,
    /// Several readings moved by the same amount.
    LevelShift,
    /// Several readings repeating the one before them exactly.
    Stuck,
    /// Several readings moving away linearly.
    Drift,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Spike,
        FaultKind::LevelShift,
        FaultKind::Stuck,
        FaultKind::Drift,
    ];

    /// `spike`, `level_shift`, `stuck`, `drift`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::LevelShift => "level_shift",
            FaultKind::Stuck => "stuck",
            FaultKind::Drift => "drift",
        }
    }
}

/// A sensor and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// `s-<n>`.
    pub name: String,
    /// The series' level.
    pub level: f64,
    /// The noise's standard deviation.
    pub noise: f64,
    /// The cycle's amplitude.
    pub amplitude: f64,
    /// The cycle's length, in readings.
    pub period: f64,
    /// The cycle's phase, radians.
    pub phase: f64,
    /// Its second within each interval.
    pub offset: u32,
}

impl Sensor {
    /// The standard deviation of its series without faults: √(amplitude²/2 + noise²).
    pub fn spread(&self) -> f64 {
        (self.amplitude * self.amplitude / 2.0 + self.noise * self.noise).sqrt()
    }

    /// Its series at reading `n`, noise aside.
    pub fn expected(&self, n: u64) -> f64 {
        let angle = std::f64::consts::TAU * n as f64 / self.period + self.phase;
        self.level + self.amplitude * angle.sin()
    }
}

/// The scenario's settings. [`Default`] gives the values listed on each field.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorsParams {
    /// Random seed (default 0): the same settings give the same records.
    pub seed: u64,
    /// Id of the first record (default 0).
    pub first_id: i64,
    /// Sensors (default 200).
    pub sensors: usize,
    /// Seconds between two readings of a sensor (default 60).
    pub interval_seconds: u32,
    /// Probability that a fault starts on a reading (default 0.002).
    pub fault_share: f64,
    /// The time the stream starts (default 2026-11-02T00:00:00Z).
    pub start: DateTime<Utc>,
}

impl Default for SensorsParams {
    fn default() -> Self {
        SensorsParams {
            seed: 0,
            first_id: 0,
            sensors: 200,
            interval_seconds: 60,
            fault_share: 0.002,
            start: DateTime::from_timestamp(1_793_577_600, 0).unwrap_or_default(),
        }
    }
}

/// Settings that cannot make a stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SensorsError {
    /// No sensors.
    #[error("the scenario needs at least one sensor")]
    NoSensors,
    /// No time between readings.
    #[error("the interval between readings must be at least one second")]
    Interval,
    /// A probability outside [0, 1].
    #[error("the fault share must be between 0 and 1, not {0}")]
    FaultShare(f64),
}

impl SensorsParams {
    /// The readings, in time order, without end (take as many as needed).
    pub fn records(&self) -> Result<SensorReadings, SensorsError> {
        if self.sensors == 0 {
            return Err(SensorsError::NoSensors);
        }
        if self.interval_seconds == 0 {
            return Err(SensorsError::Interval);
        }
        if !(0.0..=1.0).contains(&self.fault_share) {
            return Err(SensorsError::FaultShare(self.fault_share));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut sensors: Vec<Sensor> = (0..self.sensors)
            .map(|n| {
                let level = rng.random_range(5f64.ln()..500f64.ln()).exp();
                let noise = level * rng.random_range(0.01..0.03);
                Sensor {
                    name: format!("s-{n}"),
                    level,
                    noise,
                    amplitude: noise * rng.random_range(2.0..5.0),
                    period: rng.random_range(30.0..120.0),
                    phase: rng.random_range(0.0..std::f64::consts::TAU),
                    offset: rng.random_range(0..self.interval_seconds),
                }
            })
            .collect();
        // Read in the order of their second within the interval: time order.
        sensors.sort_by_key(|sensor| sensor.offset);
        let states = vec![State::default(); sensors.len()];
        Ok(SensorReadings {
            params: self.clone(),
            rng,
            sensors,
            states,
            next_id: self.first_id,
            cycle: 0,
            next: 0,
        })
    }
}

/// A sensor's fault in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct State {
    fault: Option<FaultKind>,
    /// Readings of the fault so far, and its length.
    step: u32,
    length: u32,
    /// The fault's size, in the sensor's values (signed).
    size: f64,
    /// The last value read.
    last: f64,
}

/// The readings stream ([`SensorsParams::records`]).
#[derive(Debug, Clone)]
pub struct SensorReadings {
    params: SensorsParams,
    rng: ChaCha8Rng,
    sensors: Vec<Sensor>,
    states: Vec<State>,
    next_id: i64,
    /// The interval being read, and the next sensor in it.
    cycle: u64,
    next: usize,
}

impl SensorReadings {
    /// The sensors, in the order they read within an interval.
    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    /// Starts a fault of a random kind on `index`.
    fn start_fault(&mut self, index: usize) {
        let spread = self.sensors[index].spread();
        let sign = if self.rng.random::<bool>() { 1.0 } else { -1.0 };
        let kind = FaultKind::ALL[self.rng.random_range(0..FaultKind::ALL.len())];
        let (length, size) = match kind {
            FaultKind::Spike => (1, self.rng.random_range(5.0..9.0)),
            FaultKind::LevelShift => (
                self.rng.random_range(5..=15),
                self.rng.random_range(3.0..5.0),
            ),
            FaultKind::Stuck => (self.rng.random_range(8..=20), 0.0),
            FaultKind::Drift => (
                self.rng.random_range(10..=25),
                self.rng.random_range(4.0..8.0),
            ),
        };
        let state = &mut self.states[index];
        state.fault = Some(kind);
        state.step = 0;
        state.length = length;
        state.size = sign * size * spread;
    }
}

impl Iterator for SensorReadings {
    type Item = SensorReading;

    fn next(&mut self) -> Option<SensorReading> {
        let index = self.next;
        let n = self.cycle;
        self.next += 1;
        if self.next == self.sensors.len() {
            self.next = 0;
            self.cycle += 1;
        }
        // No fault on a sensor's first reading: a stuck value repeats the one before.
        let starts = n > 0 && self.rng.random::<f64>() < self.params.fault_share;
        if self.states[index].fault.is_none() && starts {
            self.start_fault(index);
        }
        let sensor = &self.sensors[index];
        let noise: f64 = StandardNormal.sample(&mut self.rng);
        let clean = sensor.expected(n) + sensor.noise * noise;
        let state = &mut self.states[index];
        let fault = state.fault;
        let value = match fault {
            None => clean,
            Some(FaultKind::Spike | FaultKind::LevelShift) => clean + state.size,
            Some(FaultKind::Stuck) => state.last,
            Some(FaultKind::Drift) => {
                clean + state.size * f64::from(state.step + 1) / f64::from(state.length)
            }
        };
        let value = (value * 1000.0).round() / 1000.0;
        state.last = value;
        if fault.is_some() {
            state.step += 1;
            if state.step >= state.length {
                state.fault = None;
            }
        }
        let seconds = n as i64 * i64::from(self.params.interval_seconds) + i64::from(sensor.offset);
        let ts = (self.params.start + Duration::seconds(seconds))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Some(SensorReading {
            id,
            sensor: sensor.name.clone(),
            value,
            ts,
            label: u8::from(fault.is_some()),
            fault,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn stream(seed: u64, n: usize) -> (Vec<Sensor>, Vec<SensorReading>) {
        let mut readings = SensorsParams {
            seed,
            ..SensorsParams::default()
        }
        .records()
        .unwrap();
        let sensors = readings.sensors().to_vec();
        (sensors, readings.by_ref().take(n).collect())
    }

    #[test]
    fn a_record_is_the_user_shaped_json() {
        let (_, readings) = stream(1, 2000);
        let value: serde_json::Value = serde_json::from_str(&readings[0].to_json()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["id", "label", "sensor", "ts", "value"]);
        assert!(readings[0]
            .to_json()
            .starts_with("{\"id\":0,\"sensor\":\"s-"));
        let fault = readings.iter().find(|r| r.label == 1).unwrap().to_value();
        assert!(
            FaultKind::ALL.iter().any(|k| fault["fault"] == k.name()),
            "{fault}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_in_time_order() {
        let (_, a) = stream(7, 5000);
        assert_eq!(a, stream(7, 5000).1);
        assert_ne!(a, stream(8, 5000).1);
        assert!(a.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
        // Every sensor once per minute.
        let first: Vec<&str> = a[..200].iter().map(|r| r.sensor.as_str()).collect();
        let second: Vec<&str> = a[200..400].iter().map(|r| r.sensor.as_str()).collect();
        assert_eq!(first, second);
        assert_eq!(a[0].ts[..16], a[199].ts[..16]);
    }

    #[test]
    fn each_sensor_reads_its_own_series_and_faults_are_of_their_kind() {
        let (sensors, readings) = stream(3, 200 * 1500);
        let by_name: HashMap<&str, &Sensor> =
            sensors.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut kinds: HashMap<FaultKind, usize> = HashMap::new();
        let mut residuals: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut previous: HashMap<&str, f64> = HashMap::new();
        let mut faults = 0usize;
        for (index, reading) in readings.iter().enumerate() {
            let sensor = by_name[reading.sensor.as_str()];
            let n = (index / 200) as u64;
            let residual = (reading.value - sensor.expected(n)) / sensor.spread();
            match reading.fault {
                None => residuals.entry(&reading.sensor).or_default().push(residual),
                Some(kind) => {
                    faults += 1;
                    *kinds.entry(kind).or_default() += 1;
                    match kind {
                        FaultKind::Stuck => {
                            assert_eq!(Some(&reading.value), previous.get(reading.sensor.as_str()))
                        }
                        FaultKind::Spike => assert!(residual.abs() > 3.0, "{reading:?}"),
                        _ => {}
                    }
                }
            }
            previous.insert(&reading.sensor, reading.value);
        }
        // Normal readings sit on their sensor's series, within its spread.
        for (sensor, residuals) in &residuals {
            let rms =
                (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len() as f64).sqrt();
            let noise_share = by_name[sensor].noise / by_name[sensor].spread();
            assert!(
                (rms - noise_share).abs() < 0.1,
                "{sensor}: {rms} vs {noise_share}"
            );
        }
        // A fault starts on 0.2% of readings and lasts 10.5 readings on average.
        let share = faults as f64 / readings.len() as f64;
        assert!((0.012..0.03).contains(&share), "{share}");
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        let levels: Vec<f64> = sensors.iter().map(|s| s.level).collect();
        let (low, high) = levels
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(
            low < 10.0 && high > 250.0,
            "levels over two orders of magnitude"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |change: fn(&mut SensorsParams)| {
            let mut params = SensorsParams::default();
            change(&mut params);
            params.records().unwrap_err()
        };
        assert_eq!(bad(|p| p.sensors = 0), SensorsError::NoSensors);
        assert_eq!(bad(|p| p.interval_seconds = 0), SensorsError::Interval);
        assert_eq!(bad(|p| p.fault_share = 2.0), SensorsError::FaultShare(2.0));
    }
}
