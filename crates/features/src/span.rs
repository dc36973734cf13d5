//! Spans of record time, as a feature list and the settings write them: `500ms`, `60s`,
//! `10m`, `1h`, `7d` (a count window, a key's time to live).

use std::fmt;
use std::str::FromStr;

/// A span of record time: a whole, positive number of a unit (`60s`, `10m`, `7d`). It keeps
/// the unit it was written in, so a feature's name reads as written; two spans are equal when
/// they last as long (`60s` and `1m`).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    amount: u64,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    const ALL: [Unit; 5] = [
        Unit::Millis,
        Unit::Seconds,
        Unit::Minutes,
        Unit::Hours,
        Unit::Days,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
        }
    }

    fn millis(self) -> u64 {
        match self {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
        }
    }
}

/// The longest span: ten thousand days (about 27 years), far beyond any window or time to
/// live, and far within what record times (±8.64e15 ms) can subtract.
const MAX_MILLIS: u64 = 10_000 * 86_400_000;

/// Why a span cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a span of time: a whole number above 0 and a unit, ms, s, m, h or d \
     (`60s`, `10m`, `7d`), at most 10000 days"
)]
pub struct SpanError(pub String);

impl Span {
    /// Reads `500ms`, `60s`, `10m`, `1h`, `7d`.
    pub fn parse(text: &str) -> Result<Span, SpanError> {
        let error = || SpanError(text.to_string());
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = text.split_at(digits);
        let unit = Unit::ALL
            .into_iter()
            .find(|unit| unit.suffix() == suffix)
            .ok_or_else(error)?;
        let amount: u64 = number.parse().map_err(|_| error())?;
        let span = Span { amount, unit };
        match amount.checked_mul(unit.millis()) {
            Some(millis) if amount > 0 && millis <= MAX_MILLIS => Ok(span),
            _ => Err(error()),
        }
    }

    /// A span of whole days, at most 10000 (more is taken as 10000).
    pub fn days(days: u64) -> Span {
        Span {
            amount: days.min(MAX_MILLIS / Unit::Days.millis()),
            unit: Unit::Days,
        }
    }

    /// Its length in milliseconds (at most 8.64e14, so it fits any arithmetic on times).
    pub fn millis(self) -> i64 {
        // Checked when built: at most MAX_MILLIS.
        (self.amount * self.unit.millis()) as i64
    }
}

impl PartialEq for Span {
    fn eq(&self, other: &Self) -> bool {
        self.millis() == other.millis()
    }
}

impl Eq for Span {}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}{}", self.amount, self.unit.suffix()))
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Span, SpanError> {
        Span::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_every_unit_and_print_as_written() {
        for (text, millis) in [
            ("500ms", 500),
            ("60s", 60_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
        ] {
            let span = Span::parse(text).unwrap();
            assert_eq!((span.millis(), span.to_string()), (millis, text.into()));
        }
        assert_eq!(Span::parse("60s"), Span::parse("1m"), "as long");
        assert_eq!(Span::days(7), Span::parse("168h").unwrap());
        assert_eq!(
            Span::days(u64::MAX),
            Span::parse("10000d").unwrap(),
            "at most"
        );
    }

    #[test]
    fn a_span_is_a_positive_whole_number_and_a_unit() {
        for bad in [
            "", "60", "s", "0s", "-1s", "1.5h", "60 s", "60S", "1w", "+5m", "10001d",
        ] {
            assert_eq!(Span::parse(bad), Err(SpanError(bad.into())), "{bad}");
        }
        assert!(Span::parse("10000d").is_ok());
        assert!(Span::parse("99999999999999999999999s").is_err());
    }
}
