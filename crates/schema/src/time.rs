//! Reading `current_time`: the original's naive ISO-8601 shape by hand (fast), anything else
//! through chrono.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Parses a naive ISO-8601 time (taken as UTC) or one with an offset.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(time) = parse_naive_time_quickly(text) {
        return Some(time);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// The original's own shape, `YYYY-MM-DDTHH:MM:SS[.f…]` (up to 9 decimals, `T` or a space),
/// read by hand: chrono's format parser was a sixth of the detector's decoding time. Anything
/// else, or any doubt, is `None` and left to chrono, which reads the same text the same way.
fn parse_naive_time_quickly(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes.get(from..to)?.iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 19
        || !matches!(bytes[10], b'T' | b' ')
        || separators.iter().any(|&(at, byte)| bytes[at] != byte)
    {
        return None;
    }
    let nanos = match bytes.len() {
        19 => 0,
        21..=29 if bytes[19] == b'.' => {
            number(20, bytes.len())? * 10u32.pow(29 - bytes.len() as u32)
        }
        _ => return None,
    };
    let second = number(17, 19).filter(|&second| second < 60)?;
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    date.and_hms_nano_opt(number(11, 13)?, number(14, 16)?, second, nanos)
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written reader of the original's time shape agrees with chrono on every
    /// text it takes, and leaves the rest to it.
    #[test]
    fn quick_times_agree_with_chrono() {
        let chrono_only = |text: &str| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|naive| naive.and_utc())
        };
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut quick = 0;
        for _ in 0..20_000 {
            let mut text = format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
                1990 + next(50),
                next(14),
                next(33),
                ["T", " ", "t"][next(3) as usize],
                next(26),
                next(61),
                next(62)
            );
            let digits = next(12);
            if digits > 0 {
                text.push('.');
                text.extend((0..digits - 1).map(|_| char::from(b'0' + next(10) as u8)));
            }
            if next(10) == 0 {
                text.push_str(["Z", "+02:00", "x", "0"][next(4) as usize]);
            }
            if let Some(time) = parse_naive_time_quickly(&text) {
                quick += 1;
                assert_eq!(Some(time), chrono_only(&text), "{text}");
            }
        }
        assert!(quick > 5_000, "{quick} read quickly");
        assert_eq!(
            parse_naive_time_quickly("2024-04-27T21:17:34.733387"),
            Some(
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 4, 27, 21, 17, 34).unwrap()
                    + chrono::Duration::microseconds(733_387)
            )
        );
    }
}
