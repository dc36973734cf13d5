//! The common case of `Transaction::decode`, read straight into typed fields with no JSON
//! tree: a well-formed record costs its features' vector, not a map of `Value`s (that map was
//! about a fifth of the detector's time, in malloc and free). Anything unusual gives `None`,
//! and the full reader then finds the exact reason, so both agree on every record they accept.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A record's known fields, as read.
pub(crate) struct FastRead<'a> {
    pub(crate) id: FastId<'a>,
    pub(crate) features: Vec<f64>,
    pub(crate) label: Option<u8>,
    pub(crate) current_time: Option<Cow<'a, str>>,
    /// The record already carries fields an anomaly adds (it is a re-scored anomaly).
    pub(crate) has_verdict_fields: bool,
}

pub(crate) enum FastId<'a> {
    Int(i64),
    Str(Cow<'a, str>),
}

/// The record, if it is an object nested at most `max_depth` deep with a usable `id` and
/// `data`, `label` 0/1 or null or absent, and `current_time` a string or null or absent; else
/// `None`. (Numbers JSON cannot hold, such as `NaN`, are not JSON to serde_json: `None`.)
pub(crate) fn read<'a>(
    text: &'a str,
    verdict_fields: &[&str],
    max_depth: usize,
) -> Option<FastRead<'a>> {
    // The object is one level and a nested `data` two more.
    if max_depth < 3 {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = deserializer
        .deserialize_map(RecordVisitor {
            verdict_fields,
            levels_below: max_depth - 1,
        })
        .ok()?;
    deserializer.end().ok()?;
    Some(read)
}

/// Any error: the full reader says which.
fn refuse<T, E: de::Error>() -> Result<T, E> {
    Err(E::custom("not the common case"))
}

enum Field {
    Id,
    Data,
    Label,
    CurrentTime,
    Verdict,
    Other,
}

struct FieldVisitor<'v> {
    verdict_fields: &'v [&'v str],
}

impl<'de> de::DeserializeSeed<'de> for FieldVisitor<'_> {
    type Value = Field;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldVisitor<'_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(match name {
            "id" => Field::Id,
            "data" => Field::Data,
            "label" => Field::Label,
            "current_time" => Field::CurrentTime,
            _ if self.verdict_fields.contains(&name) => Field::Verdict,
            _ => Field::Other,
        })
    }
}

struct RecordVisitor<'v> {
    verdict_fields: &'v [&'v str],
    /// Nesting levels the fields' values may use.
    levels_below: usize,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = FastRead<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transaction object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastRead<'de>, A::Error> {
        let (mut id, mut features, mut label, mut current_time) = (None, None, None, None);
        let mut has_verdict_fields = false;
        let key = || FieldVisitor {
            verdict_fields: self.verdict_fields,
        };
        // A repeated field: the last one counts, as in a `serde_json::Map`.
        while let Some(field) = map.next_key_seed(key())? {
            match field {
                Field::Id => id = Some(map.next_value_seed(Seed(IdVisitor))?),
                Field::Data => features = Some(map.next_value_seed(Seed(DataVisitor))?),
                Field::Label => label = Some(map.next_value_seed(Seed(LabelVisitor))?),
                Field::CurrentTime => {
                    current_time = Some(map.next_value_seed(Seed(TimeVisitor))?);
                }
                Field::Verdict => {
                    has_verdict_fields = true;
                    map.next_value_seed(Skip(self.levels_below))?;
                }
                Field::Other => {
                    map.next_value_seed(Skip(self.levels_below))?;
                }
            }
        }
        match (id, features) {
            (Some(id), Some(features)) => Ok(FastRead {
                id,
                features,
                label: label.flatten(),
                current_time: current_time.flatten(),
                has_verdict_fields,
            }),
            _ => refuse(),
        }
    }
}

/// Passes over a value of an unknown field, refusing one nested deeper than the levels it
/// may use (the full reader then says `too_deep`).
#[derive(Clone, Copy)]
struct Skip(usize);

impl<'de> de::DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(inner) = self.0.checked_sub(1) else {
            return refuse();
        };
        while seq.next_element_seed(Skip(inner))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(inner) = self.0.checked_sub(1) else {
            return refuse();
        };
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip(inner))?;
        }
        Ok(())
    }
}

/// Deserializes any value with a visitor (`deserialize_any`: JSON says what it is).
struct Seed<V>(V);

impl<'de, V: Visitor<'de>> de::DeserializeSeed<'de> for Seed<V> {
    type Value = V::Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_any(self.0)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = FastId<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a non-empty string")
    }
    fn visit_i64<E: de::Error>(self, id: i64) -> Result<FastId<'de>, E> {
        Ok(FastId::Int(id))
    }
    fn visit_u64<E: de::Error>(self, id: u64) -> Result<FastId<'de>, E> {
        i64::try_from(id).map(FastId::Int).or_else(|_| refuse())
    }
    fn visit_borrowed_str<E: de::Error>(self, id: &'de str) -> Result<FastId<'de>, E> {
        if id.is_empty() {
            return refuse();
        }
        Ok(FastId::Str(Cow::Borrowed(id)))
    }
    fn visit_str<E: de::Error>(self, id: &str) -> Result<FastId<'de>, E> {
        if id.is_empty() {
            return refuse();
        }
        Ok(FastId::Str(Cow::Owned(id.to_string())))
    }
}

/// A number (JSON numbers only: no strings, no null).
struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        if value.is_finite() {
            Ok(value)
        } else {
            refuse()
        }
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        Ok(value as f64)
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        Ok(value as f64)
    }
}

impl<'de> de::Deserialize<'de> for Number {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberVisitor).map(Number)
    }
}

struct Number(f64);

/// A value of `data`: a number (flat data) or a row of numbers (nested data).
enum Cell {
    Number(f64),
    Row(Vec<f64>),
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a list of numbers")
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Cell, E> {
        NumberVisitor.visit_f64(value).map(Cell::Number)
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Cell, E> {
        NumberVisitor.visit_i64(value).map(Cell::Number)
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Cell, E> {
        NumberVisitor.visit_u64(value).map(Cell::Number)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
        let mut row = Vec::new();
        while let Some(Number(value)) = seq.next_element()? {
            row.push(value);
        }
        Ok(Cell::Row(row))
    }
}

impl<'de> de::Deserialize<'de> for Cell {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

/// `data`: `[x, y, …]` or `[[x, y, …]]`, not empty.
struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Vec<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers, or a list holding one list of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut flat: Vec<f64> = Vec::new();
        let mut nested: Option<Vec<f64>> = None;
        while let Some(cell) = seq.next_element()? {
            match cell {
                Cell::Number(value) if nested.is_none() => flat.push(value),
                Cell::Row(row) if flat.is_empty() && nested.is_none() => nested = Some(row),
                _ => return refuse(),
            }
        }
        let features = nested.unwrap_or(flat);
        if features.is_empty() {
            return refuse();
        }
        Ok(features)
    }
}

/// `label`: 0, 1 or null.
struct LabelVisitor;

impl Visitor<'_> for LabelVisitor {
    type Value = Option<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0, 1 or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u8>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Option<u8>, E> {
        if value == 0.0 {
            Ok(Some(0))
        } else if value == 1.0 {
            Ok(Some(1))
        } else {
            refuse()
        }
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Option<u8>, E> {
        self.visit_f64(value as f64)
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Option<u8>, E> {
        self.visit_f64(value as f64)
    }
}

/// `current_time`: a string or null (whether the string is a time is checked after).
struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_string())))
    }
}
