//! The values transforms read, whichever way the record was parsed, and the stateless
//! arithmetic of each transform: numbers, `ln(1 + x)`, times, category keys.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// A JSON value as a transform sees it: scalars in full, containers by kind only.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl<'a> Scalar<'a> {
    pub(crate) fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Scalar::Int(i),
                (None, Some(u)) => Scalar::UInt(u),
                // serde_json holds only finite floats.
                _ => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
            Value::Array(_) => Scalar::Array,
            Value::Object(_) => Scalar::Object,
        }
    }

    /// The value as a number, when it is a JSON number.
    pub(crate) fn number(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::UInt(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// What the value is, for messages: `a string`, `an object`, `-3.5`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(_) => "a boolean".into(),
            Scalar::Int(i) => i.to_string(),
            Scalar::UInt(u) => u.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(_) => "a string".into(),
            Scalar::Array => "an array".into(),
            Scalar::Object => "an object".into(),
        }
    }

    /// The value quoted for messages, shortened: `"yesterday"`.
    pub(crate) fn quote(&self) -> String {
        match self {
            Scalar::Str(s) => {
                const MAX: usize = 40;
                match s.char_indices().nth(MAX) {
                    Some((cut, _)) => format!("{:?}…", &s[..cut]),
                    None => format!("{s:?}"),
                }
            }
            other => other.describe(),
        }
    }
}

/// `ln(1 + x)`, for `x ≥ 0`.
pub(crate) fn log1p(x: f64) -> Option<f64> {
    (x >= 0.0).then(|| x.ln_1p())
}

/// A point in time, UTC: days since 1970-01-01 and seconds into the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Instant {
    days: i64,
    seconds: f64,
}

/// 1970-01-01 was a Thursday: day 3 counting Monday as 0.
const EPOCH_WEEKDAY: i64 = 3;
const MS_PER_DAY: i64 = 86_400_000;
/// The epoch milliseconds a time may have: ±8.64e15, as JavaScript's `Date` allows.
pub(crate) const MAX_EPOCH_MS: f64 = 8.64e15;

impl Instant {
    /// Hour of day, 0 ≤ h < 24, fractional.
    pub(crate) fn hour(self) -> f64 {
        (self.seconds / 3600.0).min(24.0 - f64::EPSILON * 32.0)
    }

    /// Day of week, 0 = Monday.
    pub(crate) fn weekday(self) -> f64 {
        (self.days + EPOCH_WEEKDAY).rem_euclid(7) as f64
    }

    /// Milliseconds since 1970-01-01T00:00:00Z, to the nearest millisecond.
    pub(crate) fn epoch_ms(self) -> i64 {
        self.days * MS_PER_DAY + (self.seconds * 1000.0).round() as i64
    }

    /// A time given as text (RFC 3339 or naive ISO 8601) or as epoch milliseconds.
    pub(crate) fn of(value: &Scalar) -> Option<Instant> {
        match value {
            Scalar::Str(text) => Instant::parse(text),
            other => Instant::from_epoch_ms(other),
        }
    }

    /// A time given as epoch milliseconds (an integer or not).
    pub(crate) fn from_epoch_ms(value: &Scalar) -> Option<Instant> {
        match *value {
            Scalar::Int(ms) if (ms as f64).abs() <= MAX_EPOCH_MS => Some(Instant {
                days: ms.div_euclid(MS_PER_DAY),
                seconds: ms.rem_euclid(MS_PER_DAY) as f64 / 1000.0,
            }),
            Scalar::Float(ms) if ms.abs() <= MAX_EPOCH_MS => {
                let days = (ms / MS_PER_DAY as f64).floor();
                let rest = (ms - days * MS_PER_DAY as f64).clamp(0.0, MS_PER_DAY as f64 - 1e-3);
                Some(Instant {
                    days: days as i64,
                    seconds: rest / 1000.0,
                })
            }
            _ => None,
        }
    }

    /// An RFC 3339 time (its offset honoured) or a naive ISO 8601 time (taken as UTC).
    pub(crate) fn parse(text: &str) -> Option<Instant> {
        if let Some(instant) = parse_quickly(text) {
            return Some(instant);
        }
        let utc = match DateTime::parse_from_rfc3339(text) {
            Ok(time) => time.with_timezone(&Utc),
            Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())?
                .and_utc(),
        };
        let seconds = utc.timestamp();
        // A leap second (nanoseconds ≥ 1e9) stays within its day.
        let nanos = f64::from(utc.timestamp_subsec_nanos()).min(999_999_999.0);
        Some(Instant {
            days: seconds.div_euclid(86_400),
            seconds: seconds.rem_euclid(86_400) as f64 + nanos / 1e9,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` read by hand, as most records write it; any
/// other spelling (or any doubt, such as a leap second) is `None`, left to chrono.
fn parse_quickly(text: &str) -> Option<Instant> {
    let bytes = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        bytes.get(from..to)?.iter().try_fold(0i64, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + i64::from(byte - b'0'))
        })
    };
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut fraction = 0.0;
    if bytes.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // At most nanoseconds matter; the digits after the ninth are read but not counted.
        let counted = (at - start).min(9);
        fraction = digits(start, start + counted)? as f64 / 10f64.powi(counted as i32);
    }
    let offset_seconds = match &bytes[at..] {
        [] => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1, at + 3)?, digits(at + 4, at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let magnitude = h * 3600 + m * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    let days = days_since_epoch(digits(0, 4)?, digits(5, 7)?, digits(8, 10)?)?;
    let local = hour * 3600 + minute * 60 + second - offset_seconds;
    Some(Instant {
        days: days + local.div_euclid(86_400),
        seconds: local.rem_euclid(86_400) as f64 + fraction,
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (year 0 to 9999), or
/// `None` for a date that does not exist; by hand (H. Hinnant's `days_from_civil`), as the
/// per-record cost of a time is mostly this.
fn days_since_epoch(year: i64, month: i64, day: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    // Years counted from March, so that the leap day ends the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// A category's key: a string as it is, an integer as its decimal digits (so `5411` and
/// `"5411"` are one category; `5411.0` too). `None` for anything else.
pub(crate) fn category_key<'v>(value: &'v Scalar<'_>, buffer: &'v mut String) -> Option<&'v str> {
    use std::fmt::Write;
    buffer.clear();
    match value {
        Scalar::Str(s) => return Some(s),
        Scalar::Int(i) => write!(buffer, "{i}").ok()?,
        Scalar::UInt(u) => write!(buffer, "{u}").ok()?,
        // Integral floats below 2^53 are exact integers.
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            write!(buffer, "{}", *f as i64).ok()?
        }
        _ => return None,
    }
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> (f64, f64) {
        let instant = Instant::parse(text).unwrap_or_else(|| panic!("{text} is a time"));
        (instant.hour(), instant.weekday())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_hour_is_fractional_and_the_weekday_counts_from_monday() {
        // 2026-12-01 is a Tuesday.
        let (hour, weekday) = at("2026-12-01T03:12:09Z");
        assert!(close(hour, 3.0 + 12.0 / 60.0 + 9.0 / 3600.0), "{hour}");
        assert_eq!(weekday, 1.0);
        assert_eq!(
            at("2026-11-30T00:00:00Z"),
            (0.0, 0.0),
            "a Monday at midnight"
        );
        assert_eq!(at("2026-12-06T12:00:00Z"), (12.0, 6.0), "a Sunday at noon");
        let (hour, _) = at("2026-12-01T23:59:59.999Z");
        assert!(hour < 24.0 && hour > 23.99, "{hour}");
    }

    #[test]
    fn an_offset_is_honoured_and_a_naive_time_is_utc() {
        // 04:12:09 at +01:00 is 03:12:09 UTC.
        assert_eq!(at("2026-12-01T04:12:09+01:00"), at("2026-12-01T03:12:09Z"));
        // 23:30 at −05:00 on Monday is 04:30 UTC on Tuesday.
        let (hour, weekday) = at("2026-11-30T23:30:00-05:00");
        assert_eq!((hour, weekday), (4.5, 1.0));
        // 00:30 at +02:00 on Tuesday is 22:30 UTC on Monday.
        assert_eq!(at("2026-12-01T00:30:00+02:00"), (22.5, 0.0));
        assert_eq!(at("2026-12-01T03:12:09"), at("2026-12-01T03:12:09Z"));
        assert_eq!(at("2026-12-01 03:12:09.5"), at("2026-12-01T03:12:09.5z"));
        assert_eq!(at("2026-12-01t03:12:09+00:00"), at("2026-12-01T03:12:09Z"));
    }

    #[test]
    fn the_quick_reader_agrees_with_chrono() {
        for text in [
            "2026-12-01T03:12:09Z",
            "2026-12-01T03:12:09.123456789Z",
            "2026-12-01T03:12:09.1234567891+05:30",
            "1969-12-31T23:59:59-00:00",
            "2024-02-29T12:00:00+14:00",
            "0001-01-01T00:00:00Z",
        ] {
            let quick = parse_quickly(text).unwrap();
            let utc = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            let seconds = utc.timestamp();
            assert_eq!(quick.days, seconds.div_euclid(86_400), "{text}");
            let expected =
                seconds.rem_euclid(86_400) as f64 + f64::from(utc.timestamp_subsec_nanos()) / 1e9;
            assert!(close(quick.seconds, expected), "{text}");
        }
        // Left to chrono: a leap second.
        assert_eq!(parse_quickly("2016-12-31T23:59:60Z"), None);
        let (hour, _) = at("2016-12-31T23:59:60Z");
        assert!(hour < 24.0, "{hour}");
    }

    #[test]
    fn days_since_the_epoch_are_chronos() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in [
            0, 1, 4, 100, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999,
        ] {
            for month in 1..=12 {
                for day in [1, 28, 29, 30, 31] {
                    let chrono = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day)
                        .map(|date| date.signed_duration_since(epoch).num_days());
                    assert_eq!(
                        days_since_epoch(year, month, i64::from(day)),
                        chrono,
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
        assert_eq!(days_since_epoch(2026, 13, 1), None);
        assert_eq!(days_since_epoch(2026, 0, 1), None);
        assert_eq!(days_since_epoch(2026, 1, 0), None);
    }

    #[test]
    fn what_is_not_a_time_is_refused() {
        for text in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T03:12:09+25:00",
            "2026-12-01T03:12:09.Z",
            "2026-12-01",
            "",
        ] {
            assert_eq!(Instant::parse(text), None, "{text}");
        }
    }

    #[test]
    fn epoch_milliseconds_are_utc_and_may_be_negative_or_fractional() {
        // 1764558729000 ms = 2025-12-01T03:12:09Z, a Monday.
        let instant = Instant::from_epoch_ms(&Scalar::Int(1_764_558_729_000)).unwrap();
        assert_eq!(
            (instant.hour(), instant.weekday()),
            at("2025-12-01T03:12:09Z")
        );
        let before = Instant::from_epoch_ms(&Scalar::Int(-1)).unwrap();
        assert_eq!(before.weekday(), 2.0, "1969-12-31 was a Wednesday");
        assert!(close(before.hour(), 24.0 - 0.001 / 3600.0));
        let fractional = Instant::from_epoch_ms(&Scalar::Float(1_764_558_729_000.5)).unwrap();
        assert!((fractional.hour() - instant.hour() - 0.0005 / 3600.0).abs() < 1e-9);
        assert_eq!(Instant::from_epoch_ms(&Scalar::Float(1e300)), None);
        assert_eq!(Instant::from_epoch_ms(&Scalar::Int(i64::MAX)), None);
        assert_eq!(Instant::from_epoch_ms(&Scalar::Str("1".into())), None);
    }

    #[test]
    fn times_give_epoch_milliseconds() {
        let ms = |text: &str| Instant::parse(text).unwrap().epoch_ms();
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("2026-12-01T03:12:09.123Z"), 1_796_094_729_123);
        assert_eq!(ms("2026-12-01T04:12:09.123+01:00"), 1_796_094_729_123);
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
        for epoch in [0i64, -1, 1_796_094_729_123, -86_400_001] {
            let instant = Instant::of(&Scalar::Int(epoch)).unwrap();
            assert_eq!(instant.epoch_ms(), epoch);
        }
    }

    #[test]
    fn log_takes_zero_and_positives_only() {
        assert_eq!(log1p(0.0), Some(0.0));
        assert!(close(log1p(std::f64::consts::E - 1.0).unwrap(), 1.0));
        assert_eq!(log1p(-0.01), None);
    }

    #[test]
    fn category_keys_join_integers_and_their_digits() {
        let mut buffer = String::new();
        let mut key = |value: Scalar| category_key(&value, &mut buffer).map(str::to_string);
        assert_eq!(key(Scalar::Str("5411".into())).as_deref(), Some("5411"));
        assert_eq!(key(Scalar::Int(5411)).as_deref(), Some("5411"));
        assert_eq!(key(Scalar::Float(5411.0)).as_deref(), Some("5411"));
        assert_eq!(
            key(Scalar::UInt(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(key(Scalar::Int(-7)).as_deref(), Some("-7"));
        assert_eq!(key(Scalar::Float(54.1)), None);
        assert_eq!(key(Scalar::Bool(true)), None);
        assert_eq!(key(Scalar::Object), None);
    }
}
